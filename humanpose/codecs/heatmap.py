"""The heatmap codec: key points → Gaussian heatmaps (encode) and heatmaps → key points (decode).

This is the only module that knows heatmap maths. Encoding follows the seed's
``generate_target`` exactly (plus UDP as an option); decoding offers the seed's
argmax + quarter-pixel shift, its soft-argmax, and DARK (Zhang et al., 2020).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from humanpose.codecs.base import Outputs, as_numpy
from humanpose.data.geometry import flip_heatmaps_back, transform_preds

__all__ = [
    "DECODERS",
    "HeatmapCodec",
    "decode_heatmaps",
    "encode_gaussian",
    "get_max_preds",
]

SOFT_ARGMAX_BETA = 160.0


# ----------------------------------------------------------------------------- encode
def encode_gaussian(joints: np.ndarray, joints_vis: np.ndarray, image_size: Sequence[int],
                    heatmap_size: Sequence[int], sigma: float,
                    udp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmap targets ``(K, H, W)`` and weights ``(K, 1)`` for joints in crop pixels.

    A joint gets weight 0 when it is invisible or when its Gaussian (radius 3 sigma) lies
    wholly outside the heatmap. Classic mode rounds the centre to a heatmap pixel, as the
    seed does; UDP keeps the sub-pixel centre and maps pixel centres to pixel centres.
    """
    image_size = np.asarray(image_size, dtype=np.float64)
    hm_w, hm_h = int(heatmap_size[0]), int(heatmap_size[1])
    num_joints = joints.shape[0]
    weight = np.ones((num_joints, 1), dtype=np.float32)
    weight[:, 0] = joints_vis[:, 0]
    target = np.zeros((num_joints, hm_h, hm_w), dtype=np.float32)
    radius = sigma * 3
    size = 2 * radius + 1
    if udp:
        stride = (image_size - 1.0) / (np.array([hm_w, hm_h], dtype=np.float64) - 1.0)
    else:
        stride = image_size / np.array([hm_w, hm_h], dtype=np.float64)
    grid = np.arange(0, size, 1, np.float32)
    for k in range(num_joints):
        mu_x = int(joints[k, 0] / stride[0] + 0.5)
        mu_y = int(joints[k, 1] / stride[1] + 0.5)
        left, top = int(mu_x - radius), int(mu_y - radius)
        right, bottom = int(mu_x + radius + 1), int(mu_y + radius + 1)
        if left >= hm_w or top >= hm_h or right < 0 or bottom < 0:
            weight[k] = 0
            continue
        if weight[k] <= 0.5:
            continue
        x0 = y0 = size // 2
        if udp:  # centre the Gaussian on the exact, not the rounded, position
            x0 += joints[k, 0] / stride[0] - mu_x
            y0 += joints[k, 1] / stride[1] - mu_y
        gx = grid - np.float32(x0)
        gy = grid[:, None] - np.float32(y0)
        g = np.exp(-(gx ** 2 + gy ** 2) / (2 * sigma ** 2))
        sx0, sx1 = max(0, -left), min(right, hm_w) - left
        sy0, sy1 = max(0, -top), min(bottom, hm_h) - top
        target[k, max(0, top):min(bottom, hm_h), max(0, left):min(right, hm_w)] = \
            g[sy0:sy1, sx0:sx1]
    return target, weight


# ----------------------------------------------------------------------------- decode
def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax location ``(N, K, 2)`` (x, y) and peak value ``(N, K, 1)`` per heatmap.

    Locations of heatmaps whose peak is not positive are set to (0, 0), as in the seed.
    """
    n, k, _, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)
    preds = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    preds *= (maxvals > 0.0)
    return preds, maxvals


def _quarter_offset(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Move each location a quarter pixel towards the higher neighbour (``POST_PROCESS``)."""
    n, k, h, w = heatmaps.shape
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    pxc, pyc = np.clip(px, 1, w - 2), np.clip(py, 1, h - 2)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    dx = heatmaps[ni, ki, pyc, pxc + 1] - heatmaps[ni, ki, pyc, pxc - 1]
    dy = heatmaps[ni, ki, pyc + 1, pxc] - heatmaps[ni, ki, pyc - 1, pxc]
    shift = np.stack([np.sign(dx), np.sign(dy)], axis=-1) * 0.25
    return coords + shift * inside[..., None]


def _soft_argmax(heatmaps: np.ndarray, beta: float = SOFT_ARGMAX_BETA):
    """The seed's soft-argmax: expected (x, y) under softmax(beta * heatmap); the confidence
    is the heatmap value at the rounded expected location."""
    n, k, h, w = heatmaps.shape
    logits = heatmaps.reshape(n, k, -1).astype(np.float32) * np.float32(beta)
    logits -= logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs = (probs / probs.sum(axis=-1, keepdims=True)).reshape(n, k, h, w)
    xs = (probs.sum(axis=2) * np.arange(w, dtype=np.float32)).sum(-1)
    ys = (probs.sum(axis=3) * np.arange(h, dtype=np.float32)).sum(-1)
    preds = np.stack([xs, ys], axis=-1)
    idx = np.round(preds).astype(np.int64)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    maxvals = heatmaps[ni, ki, idx[..., 1], idx[..., 0]][..., None]
    return preds, maxvals


def _dark_refine(heatmaps: np.ndarray, coords: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK: blur, take logs, and move each peak by one Newton step of a 2nd-order Taylor
    expansion, which recovers the sub-pixel mode of a Gaussian-shaped heatmap."""
    n, k, h, w = heatmaps.shape
    blurred = np.empty_like(heatmaps)
    for i in range(n):
        for j in range(k):
            hm = heatmaps[i, j]
            peak = hm.max()
            b = cv2.GaussianBlur(hm, (kernel, kernel), 0)
            bmax = b.max()
            blurred[i, j] = b * (peak / bmax) if bmax > 0 else b
    logs = np.log(np.maximum(blurred, 1e-10))
    px = coords[..., 0].astype(np.int64)
    py = coords[..., 1].astype(np.int64)
    ok = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    x, y = np.clip(px, 2, w - 3), np.clip(py, 2, h - 3)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")

    def at(dy: int, dx: int) -> np.ndarray:
        return logs[ni, ki, y + dy, x + dx]

    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    dyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    det = dxx * dyy - dxy ** 2
    ok &= det != 0
    safe = np.where(ok, det, 1.0)
    # offset = -H^-1 g
    off_x = -(dyy * dx - dxy * dy) / safe
    off_y = -(-dxy * dx + dxx * dy) / safe
    out = coords.astype(np.float64).copy()
    out[..., 0] += np.where(ok, off_x, 0.0)
    out[..., 1] += np.where(ok, off_y, 0.0)
    return out


DECODERS = ("argmax", "softargmax", "dark")


def heatmap_maxima(heatmaps, method: str = "argmax", post_process: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``(N, K, H, W)`` → peak locations ``(N, K, 2)`` in heatmap pixels and their
    values ``(N, K, 1)``.

    ``method``: ``argmax`` (the seed's default), ``softargmax`` (``TEST.SOFT_ARGMAX``) or
    ``dark``. ``post_process`` (``TEST.POST_PROCESS``) applies the seed's quarter-pixel
    shift after argmax/soft-argmax; DARK replaces it.
    """
    hm = as_numpy(heatmaps)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {hm.shape}")
    if method == "argmax":
        coords, maxvals = get_max_preds(hm)
        if post_process:
            coords = _quarter_offset(hm, coords)
    elif method == "softargmax":
        coords, maxvals = _soft_argmax(hm)
        if post_process:
            coords = _quarter_offset(hm, coords)
    elif method == "dark":
        coords, maxvals = get_max_preds(hm)
        coords = _dark_refine(hm, coords)
    else:
        raise ValueError(f"unknown heatmap decoder {method!r}; expected one of {DECODERS}")
    return coords, maxvals


def decode_heatmaps(heatmaps, center: np.ndarray, scale: np.ndarray, method: str = "argmax",
                    post_process: bool = True, udp: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``(N, K, H, W)`` of N crops → key points ``(N, K, 2)`` in image pixels and
    confidences ``(N, K, 1)``: :func:`heatmap_maxima` mapped straight to the image."""
    hm = as_numpy(heatmaps)
    coords, maxvals = heatmap_maxima(hm, method, post_process)
    h, w = hm.shape[2:]
    preds = transform_preds(coords, center, scale, (w, h), udp=udp)
    return preds.astype(np.float32), maxvals.astype(np.float32)


# ----------------------------------------------------------------------------- the codec
class HeatmapCodec:
    """Gaussian heatmaps (the seed's, or UDP's), decoded by argmax (+ quarter shift),
    soft-argmax or DARK.

    ``flip_shift`` is the seed's ``TEST.SHIFT_HEATMAP``: it compensates the one-pixel
    misalignment of the classic flip and is never applied with UDP, whose flip is aligned.
    """

    name = "heatmap"
    output_names = ("heatmaps",)

    def __init__(self, input_size: Sequence[int], heatmap_size: Sequence[int], sigma: float,
                 udp: bool = False, decoder: str = "argmax", post_process: bool = True,
                 flip_shift: bool = False):
        if decoder not in DECODERS:
            raise ValueError(f"unknown heatmap decoder {decoder!r}; expected one of {DECODERS}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        self.udp = bool(udp)
        self.decoder = decoder
        self.post_process = bool(post_process)
        self.flip_shift = bool(flip_shift) and not self.udp

    @classmethod
    def from_cfg(cls, cfg) -> HeatmapCodec:
        decoder = cfg.TEST.DECODER or ("softargmax" if cfg.TEST.SOFT_ARGMAX else "argmax")
        return cls(cfg.MODEL.IMAGE_SIZE, cfg.MODEL.HEATMAP_SIZE, cfg.MODEL.SIGMA,
                   udp=bool(cfg.DATASET.UDP), decoder=decoder,
                   post_process=bool(cfg.TEST.POST_PROCESS),
                   flip_shift=bool(cfg.TEST.SHIFT_HEATMAP))

    @property
    def stride(self) -> tuple[float, float]:
        """Input pixels per heatmap pixel; UDP maps pixel centres to pixel centres."""
        (iw, ih), (hw, hh) = self.input_size, self.heatmap_size
        if self.udp:
            return (iw - 1.0) / (hw - 1.0), (ih - 1.0) / (hh - 1.0)
        return iw / hw, ih / hh

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets ``(K, H, W)`` and weights ``(K, 1)``: :func:`encode_gaussian`."""
        visible = np.asarray(visible, dtype=np.float32).reshape(-1, 1)
        return encode_gaussian(keypoints, visible, self.input_size, self.heatmap_size,
                               self.sigma, udp=self.udp)

    @staticmethod
    def heatmaps(outputs: Outputs) -> Outputs:
        """The heatmaps among a network's outputs (the last, for multi-output networks)."""
        return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs

    network_outputs = heatmaps

    def decode(self, outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
        coords, maxvals = heatmap_maxima(self.heatmaps(outputs), self.decoder, self.post_process)
        sx, sy = self.stride
        coords = np.asarray(coords, dtype=np.float64) * np.array([sx, sy])
        return coords, maxvals[..., 0].astype(np.float32)

    def flip_back(self, outputs: Outputs, flip_pairs: Sequence[Sequence[int]]) -> Outputs:
        return flip_heatmaps_back(self.heatmaps(outputs), flip_pairs, shift=self.flip_shift)

    def meta(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "heatmap_size": list(self.heatmap_size), "sigma": self.sigma, "udp": self.udp,
                "decoder": self.decoder, "post_process": self.post_process,
                "flip_shift": self.flip_shift}
