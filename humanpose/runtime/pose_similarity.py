"""How alike two people are, from their key points and boxes: what a tracker matches by.

Pure NumPy: OKS between every pair of people (over the joints confident in both), the box
around a person's confident joints, a person's mean confidence, and how much of one box
lies inside another.
"""

from __future__ import annotations

import numpy as np

__all__ = ["covered", "joints_inside", "keypoint_boxes", "mean_confidence", "oks_matrix"]


def keypoint_boxes(keypoints: np.ndarray, min_confidence: float = 0.2, min_points: int = 3,
                   expand: float = 1.15) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x, y, w, h) around the confident key points of each person ``(N, K, 3)``,
    grown by ``expand`` about their centre (key points lie inside a person, a detector's box
    goes around them); and a mask of the people with at least ``min_points`` such points.
    (The crops placed between detections in a video.)"""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.size == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=bool)
    confident = keypoints[..., 2] >= min_confidence
    valid = confident.sum(axis=1) >= min_points
    big = np.where(confident, 0.0, np.inf)
    x0 = np.min(keypoints[..., 0] + big, axis=1)
    y0 = np.min(keypoints[..., 1] + big, axis=1)
    x1 = np.max(keypoints[..., 0] - big, axis=1)
    y1 = np.max(keypoints[..., 1] - big, axis=1)
    with np.errstate(invalid="ignore"):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w, h = (x1 - x0) * expand, (y1 - y0) * expand
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    boxes[~valid] = 0.0
    return boxes, valid


def mean_confidence(keypoints: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """Mean confidence of each person's visible key points (those at or above
    ``threshold``), 0 for a person with none: how sure the pose model is of a person, not
    diluted by joints that are simply out of sight."""
    conf = np.asarray(keypoints, dtype=np.float64)[..., 2]
    visible = conf >= threshold
    count = visible.sum(axis=-1)
    total = np.where(visible, conf, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def oks_matrix(a: np.ndarray, b: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
               threshold: float = 0.2) -> np.ndarray:
    """OKS of every person of ``a`` ``(N, K, 3)`` with every person of ``b`` ``(M, K, 3)``,
    over the joints confident (>= ``threshold``) in both; ``areas`` ``(N,)`` are the scales
    of ``a``'s people (COCO's object area) and ``sigmas`` pycocotools' per-joint values. A
    pair without a joint in common scores 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    var = (2 * sigmas) ** 2  # (K,)
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, K)
    e = d2 / (var[None, None] * np.maximum(areas, 1.0)[:, None, None] * 2)
    both = (a[:, None, :, 2] >= threshold) & (b[None, :, :, 2] >= threshold)
    count = both.sum(-1)
    total = np.where(both, np.exp(-e), 0.0).sum(-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def covered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each box of ``a`` ``(N, 4)`` (x, y, w, h) inside each box of ``b`` ``(M, 4)``:
    ``(N, M)``."""
    ax0, ay0, ax1, ay1 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(ax0[:, None], bx0[None]), 0, None)
    h = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(ay0[:, None], by0[None]), 0, None)
    return w * h / np.maximum(a[:, 2] * a[:, 3], 1e-9)[:, None]


def joints_inside(keypoints: np.ndarray, boxes: np.ndarray, threshold: float = 0.2,
                  margin: float = 0.1) -> np.ndarray:
    """For people ``(N, K, 3)`` and their boxes ``(N, 4)`` (x, y, w, h): the share of each
    person's joints seen (confidence >= ``threshold``) that lie in their box widened by
    ``margin`` of its size on every side (a crop shows a little more than its box);
    ``(N,)``, 1.0 for a person with no joint seen."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0)
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(len(boxes), -1, 3)
    lo = boxes[:, None, :2] - margin * boxes[:, None, 2:]
    hi = boxes[:, None, :2] + (1 + margin) * boxes[:, None, 2:]
    xy = keypoints[..., :2]
    inside = ((xy >= lo) & (xy <= hi)).all(axis=-1)
    seen = keypoints[..., 2] >= threshold
    count = seen.sum(axis=1)
    return np.where(count > 0, (inside & seen).sum(axis=1) / np.maximum(count, 1), 1.0)
