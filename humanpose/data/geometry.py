"""Crop geometry shared by training, evaluation and inference.

A person is described, as in the seed, by a ``center`` (x, y in pixels) and a ``scale``
(width, height of the crop in units of ``PIXEL_STD`` = 200 px). An affine transform maps
that region, optionally rotated, onto the network input (or the heatmap). Everything that
crops or maps key points back goes through these functions, so the three uses agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "PIXEL_STD",
    "affine_points",
    "box_to_center_scale",
    "flip_heatmaps_back",
    "flip_joints",
    "get_affine_transform",
    "get_udp_transform",
    "transform_preds",
    "warp_crop",
]

PIXEL_STD = 200.0
BOX_PADDING = 1.25


def box_to_center_scale(box: Sequence[float], aspect_ratio: float,
                        padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """(x, y, w, h) box → centre and scale, widened to the model's aspect ratio (w / h).

    The box grows in one direction to match the aspect ratio, then by ``padding`` (1.25 in
    the seed) so that limbs near the box edge stay inside the crop.
    """
    x, y, w, h = (float(v) for v in box[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / PIXEL_STD, h * 1.0 / PIXEL_STD], dtype=np.float32)
    if center[0] != -1:
        scale = scale * padding
    return center, scale


def _rotate(point: np.ndarray, rot_rad: float) -> np.ndarray:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs])


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(center: Sequence[float], scale: Sequence[float], rot: float,
                         output_size: Sequence[int], shift: Sequence[float] = (0.0, 0.0),
                         inv: bool = False) -> np.ndarray:
    """The 2x3 matrix mapping the (rotated) crop region onto an ``output_size`` (w, h) image.

    Built, like the seed's, from three point pairs: the centre, a point half a crop-width
    above it (rotated by ``rot`` degrees), and the point perpendicular to those. Only the
    crop width sets the scale; the height follows from ``output_size``'s aspect ratio.
    ``inv`` gives the map from output back to the image.
    """
    center = np.asarray(center, dtype=np.float32)
    scale_px = np.asarray(scale, dtype=np.float32) * PIXEL_STD
    shift = np.asarray(shift, dtype=np.float32)
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    rot_rad = np.pi * rot / 180
    src_dir = _rotate(np.array([0.0, scale_px[0] * -0.5]), rot_rad)
    dst_dir = np.array([0.0, dst_w * -0.5], dtype=np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center + scale_px * shift
    src[1] = center + src_dir + scale_px * shift
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def get_udp_transform(center: Sequence[float], scale: Sequence[float], rot: float,
                      output_size: Sequence[int], inv: bool = False) -> np.ndarray:
    """The unbiased (UDP, Huang et al. 2020) crop transform.

    Pixel centres map to pixel centres: the crop's extent in pixels is taken as
    ``size - 1`` on both sides, which removes the half-pixel bias that the classic transform
    introduces between the input, the heatmap and the flipped heatmap.
    """
    center = np.asarray(center, dtype=np.float64)
    scale_px = np.asarray(scale, dtype=np.float64) * PIXEL_STD
    out = np.asarray(output_size, dtype=np.float64) - 1.0
    theta = np.deg2rad(rot)
    sx, sy = out[0] / scale_px[0], out[1] / scale_px[1]
    cos, sin = np.cos(theta), np.sin(theta)
    m = np.zeros((2, 3), dtype=np.float64)
    m[0, 0] = cos * sx
    m[0, 1] = sin * sx
    m[0, 2] = sx * (-cos * center[0] - sin * center[1] + 0.5 * scale_px[0])
    m[1, 0] = -sin * sy
    m[1, 1] = cos * sy
    m[1, 2] = sy * (sin * center[0] - cos * center[1] + 0.5 * scale_px[1])
    if inv:
        m = cv2.invertAffineTransform(m)
    return m.astype(np.float32)


def affine_points(points: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to ``(..., 2)`` points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ trans[:, :2].T.astype(np.float64) + trans[:, 2].astype(np.float64)


def transform_preds(coords: np.ndarray, center: np.ndarray, scale: np.ndarray,
                    output_size: Sequence[int], udp: bool = False) -> np.ndarray:
    """Heatmap coordinates ``(N, K, 2)`` of N crops → image coordinates, crop by crop."""
    coords = np.asarray(coords, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
    out = np.empty_like(coords)
    for i in range(coords.shape[0]):
        if udp:
            trans = get_udp_transform(center[i], scale[i], 0, output_size, inv=True)
        else:
            trans = get_affine_transform(center[i], scale[i], 0, output_size, inv=True)
        out[i] = affine_points(coords[i], trans)
    return out


def warp_crop(image: np.ndarray, trans: np.ndarray, output_size: Sequence[int]) -> np.ndarray:
    """Bilinear affine warp of ``image`` into an ``output_size`` (w, h) crop, black outside."""
    return cv2.warpAffine(image, trans, (int(output_size[0]), int(output_size[1])),
                          flags=cv2.INTER_LINEAR)


def flip_joints(joints: np.ndarray, joints_vis: np.ndarray, width: int,
                flip_pairs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Mirror ``(K, 3)`` joints in an image ``width`` pixels wide and swap left/right.

    As in the seed, x becomes ``width - x - 1`` and invisible joints are zeroed.
    """
    joints = joints.copy()
    joints_vis = joints_vis.copy()
    joints[:, 0] = width - joints[:, 0] - 1
    for a, b in flip_pairs:
        joints[[a, b]] = joints[[b, a]]
        joints_vis[[a, b]] = joints_vis[[b, a]]
    return joints * joints_vis, joints_vis


def flip_heatmaps_back(heatmaps, flip_pairs: Sequence[Sequence[int]], shift: bool = False):
    """Heatmaps predicted on a mirrored crop → heatmaps of the original crop.

    Works on NumPy arrays and torch tensors ``(N, K, H, W)``. ``shift`` moves the result one
    pixel right (the seed's ``TEST.SHIFT_HEATMAP``), which compensates the misalignment of
    the classic (non-UDP) flip.
    """
    order = list(range(heatmaps.shape[1]))
    for a, b in flip_pairs:
        order[a], order[b] = order[b], order[a]
    if isinstance(heatmaps, np.ndarray):
        out = heatmaps[:, order, :, ::-1].copy()
    else:
        out = heatmaps[:, order].flip(-1).clone()
    if shift:
        out[:, :, :, 1:] = out[:, :, :, :-1].copy() if isinstance(out, np.ndarray) \
            else out[:, :, :, :-1].clone()
    return out
