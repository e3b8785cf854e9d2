"""RTMO at inference: mmpose 1.3's bottom-up test pipeline around the network, in NumPy.

The network (:mod:`humanpose.models.rtmo`) takes the whole frame and returns, for its
``topk`` best anchors, rows ``[x1, y1, x2, y2, score, K x (x, y), K visibilities]`` in input
pixels (``(N, topk, 5 + 3K)``; boxes decoded, scores and visibilities after the sigmoid,
key points decoded by the DCC). Around it this module does what mmpose's
``inference_bottomup`` does with the RTMO configs, so the people are mmpose's:

* :func:`preprocess`: ``BottomupResize(input_size, pad_val=114)``: the image scaled to fit
  the input (aspect kept) and *centred* in it, by one ``cv2.warpAffine`` (bilinear, border
  114); ``PoseDataPreprocessor`` has mean 0, std 1 and no channel swap: BGR pixel values.
* :func:`decode`: scores strictly above ``score_thr``; NMS over the boxes (mmpose's
  ``nms_torch``: best first, a box goes when its IoU with a kept one is above ``nms_thr``);
  boxes clamped to the input; boxes and key points mapped back to the image by the inverse
  of the resize (``x / input_size * scale + centre - scale / 2``, the estimator's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from humanpose.runtime.boxes import greedy_nms

__all__ = ["PAD_VALUE", "RTMOMeta", "decode", "predict_rtmo", "preprocess", "warp_matrix"]

PAD_VALUE = 114  # the configs' BottomupResize pad_val


@dataclass(frozen=True)
class RTMOMeta:
    """Where the image sits in the input: mmpose's ``input_center``, ``input_scale`` (the
    image region, in image pixels, that the whole input covers) and ``input_size`` (w, h)."""

    center: tuple[float, float]
    scale: tuple[float, float]
    input_size: tuple[int, int]

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input pixels -> image pixels, for ``(..., 2)`` points."""
        size = np.asarray(self.input_size, dtype=np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        return xy / size * scale + np.asarray(self.center, dtype=np.float32) - 0.5 * scale


def _third(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def warp_matrix(center, scale, output_size) -> np.ndarray:
    """The 2x3 map of the region ``center`` ± ``scale / 2`` onto ``output_size`` (w, h),
    from three point pairs in float32 as mmpose builds it, so the warped pixels match."""
    center = np.asarray(center, dtype=np.float32)
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, float(scale[0]) * -0.5], dtype=np.float32)
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + np.array([0.0, dst_w * -0.5], dtype=np.float32)
    src[2] = _third(src[0], src[1])
    dst[2] = _third(dst[0], dst[1])
    return cv2.getAffineTransform(src, dst)


def preprocess(image_bgr: np.ndarray, input_size: tuple[int, int] = (640, 640),
               pad_value: int = PAD_VALUE) -> tuple[np.ndarray, RTMOMeta]:
    """uint8 BGR ``(H, W, 3)`` -> float32 ``(1, 3, h, w)`` network input and its geometry."""
    image = np.asarray(image_bgr)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"RTMO takes BGR images (H, W, 3), got shape {image.shape}")
    img_h, img_w = image.shape[:2]
    pad_w, pad_h = (int(v) for v in input_size)
    ratio = img_w / img_h
    rsz_w, rsz_h = min(pad_w, pad_h * ratio), min(pad_h, pad_w / ratio)
    center = np.array([img_w / 2, img_h / 2], dtype=np.float32)
    scale = np.array([img_w * pad_w / rsz_w, img_h * pad_h / rsz_h], dtype=np.float32)
    warped = cv2.warpAffine(image, warp_matrix(center, scale, (pad_w, pad_h)), (pad_w, pad_h),
                            flags=cv2.INTER_LINEAR, borderValue=(pad_value,) * 3)
    batch = np.ascontiguousarray(warped.transpose(2, 0, 1)[None], dtype=np.float32)
    meta = RTMOMeta((float(center[0]), float(center[1])), (float(scale[0]), float(scale[1])),
                    (pad_w, pad_h))
    return batch, meta


def decode(rows: np.ndarray, meta: RTMOMeta, score_thr: float = 0.1, nms_thr: float = 0.65
           ) -> tuple[np.ndarray, np.ndarray]:
    """One image's ``(A, 5 + 3K)`` rows -> boxes ``(P, 5)`` (x1, y1, x2, y2, score) and key
    points ``(P, K, 3)`` (x, y, visibility) in image pixels, best first."""
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim != 2 or (rows.shape[1] - 5) % 3:
        raise ValueError(f"RTMO rows must be (anchors, 5 + 3K), got shape {rows.shape}")
    k = (rows.shape[1] - 5) // 3
    rows = rows[rows[:, 4] > score_thr]
    if nms_thr < 1.0 and len(rows):
        rows = rows[greedy_nms(rows[:, :4], rows[:, 4], nms_thr)]
    else:
        rows = rows[np.argsort(-rows[:, 4], kind="stable")]
    w, h = meta.input_size
    boxes = rows[:, :4].copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    boxes = meta.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
    points = meta.to_image(rows[:, 5:5 + 2 * k].reshape(-1, k, 2))
    keypoints = np.concatenate([points, rows[:, 5 + 2 * k:, None]], axis=-1)
    return (np.concatenate([boxes, rows[:, 4:5]], axis=1).astype(np.float32),
            keypoints.astype(np.float32))


def predict_rtmo(run: Callable[[np.ndarray], object], image_bgr: np.ndarray,
                 input_size: tuple[int, int] = (640, 640), score_thr: float = 0.1,
                 nms_thr: float = 0.65) -> tuple[np.ndarray, np.ndarray]:
    """People in one frame: ``run`` maps the ``(1, 3, h, w)`` float32 input to the network's
    output (an array, a tensor, or a one-element tuple/list of them: a PyTorch model, an
    ONNX Runtime or OpenVINO session); returns :func:`decode`'s boxes and key points."""
    batch, meta = preprocess(image_bgr, input_size)
    out = run(batch)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if hasattr(out, "detach"):  # a torch tensor, without importing torch here
        out = out.detach().cpu().numpy()
    return decode(np.asarray(out)[0], meta, score_thr, nms_thr)
