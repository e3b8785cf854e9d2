"""Boxes at inference: IoU, greedy non-maximum suppression (vectorised in NumPy, no
torchvision), the letterbox that detectors' inputs use and its undoing.

Greedy NMS keeps box j when no *kept* box with a higher score overlaps it by more than the
threshold. That rule depends only on higher-scored boxes, so it has one solution, and
iterating ``keep = no kept overlapping predecessor`` from "keep all" reaches it: after t
rounds the first t boxes are settled. Each round is one matrix operation, and a handful of
rounds suffice in practice (at most one per box), instead of one Python step per box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["MATRIX_NMS_MAX", "PAD_VALUE", "DecodeParams", "box_iou", "greedy_nms",
           "image_detections", "letterbox", "nms", "xywh_to_xyxy", "xyxy_to_xywh"]

PAD_VALUE = 114  # the letterbox grey, YOLO's

# greedy_nms builds the full IoU matrix up to this many boxes (8 MiB of float64).
MATRIX_NMS_MAX = 1024


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of (x1, y1, x2, y2) boxes; 0 where both are empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
        max_output: int | None = None) -> np.ndarray:
    """Indices of the boxes (x1, y1, x2, y2) that greedy NMS keeps, best score first.

    A box is suppressed when its IoU with a kept, higher-scoring box exceeds
    ``iou_threshold``; ties in score keep the earlier box. At most ``max_output`` indices.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    if len(order) == 0:
        return order.astype(np.int64)
    iou = box_iou(boxes[order], boxes[order])
    # overlaps[i, j]: the better box i would suppress box j.
    overlaps = np.triu(iou > iou_threshold, k=1)
    keep = np.ones(len(order), dtype=bool)
    for _ in range(len(order)):
        new = ~(overlaps & keep[:, None]).any(axis=0)
        if np.array_equal(new, keep):
            break
        keep = new
    kept = order[keep]
    return kept[:max_output] if max_output is not None else kept


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
               max_output: int | None = None) -> np.ndarray:
    """The same boxes as :func:`nms`, decided one box at a time and stopping after
    ``max_output`` kept boxes: for the hundreds to thousands of candidates a dense detector
    can leave, where :func:`nms` needs many rounds. Up to :data:`MATRIX_NMS_MAX` boxes it
    reads one precomputed IoU matrix; above, it computes one row per kept box (memory O(n)).
    Same rule as mmcv's ``nms`` (IoU without +1, a box goes when IoU > threshold; boxes of
    no area suppress nothing)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    limit = len(order) if max_output is None else max_output
    kept: list[int] = []
    if len(order) <= MATRIX_NMS_MAX:
        over = box_iou(boxes[order], boxes[order]) > iou_threshold
        removed = np.zeros(len(order), dtype=bool)
        for i in range(len(order)):
            if len(kept) >= limit:
                break
            if not removed[i]:
                kept.append(i)
                removed |= over[i]
        return order[np.asarray(kept, dtype=np.int64)]
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1],
                                                                  0, None)
    while len(order) and len(kept) < limit:
        i, rest = order[0], order[1:]
        kept.append(i)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        union = area[i] + area[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(kept, dtype=np.int64)


def letterbox(image: np.ndarray, input_size: Sequence[int], pad_value: int = PAD_VALUE
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``image`` scaled to fit ``input_size`` (w, h), aspect kept, centred on a
    ``pad_value`` canvas. Returns (canvas, scale (sx, sy), offset (ox, oy)): image point
    ``x`` lands at ``x * scale + offset`` (continuous pixel coordinates)."""
    h, w = image.shape[:2]
    in_w, in_h = int(input_size[0]), int(input_size[1])
    s = min(in_w / w, in_h / h)
    new_w, new_h = max(1, round(w * s)), max(1, round(h * s))
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h),
                           interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    left, top = (in_w - new_w) // 2, (in_h - new_h) // 2
    canvas = np.full((in_h, in_w, image.shape[2]), pad_value, dtype=image.dtype)
    canvas[top:top + new_h, left:left + new_w] = image
    return canvas, np.array([new_w / w, new_h / h]), np.array([left, top], dtype=np.float64)


@dataclass(frozen=True)
class DecodeParams:
    """How raw outputs become final boxes (``MODEL.EXTRA.DET_*``)."""

    stride: float = 4.0
    max_detections: int = 100
    score_threshold: float = 0.01
    nms_threshold: float = 0.7

    @staticmethod
    def from_cfg(cfg, score_threshold: float | None = None) -> DecodeParams:
        extra = cfg.MODEL.EXTRA
        stride = float(cfg.MODEL.IMAGE_SIZE[0]) / float(cfg.MODEL.HEATMAP_SIZE[0])
        return DecodeParams(stride, int(extra.DET_MAX_DETECTIONS),
                            float(extra.DET_SCORE_THRE if score_threshold is None
                                  else score_threshold), float(extra.DET_NMS_THRE))


def image_detections(boxes: np.ndarray, scores: np.ndarray, scale: Sequence[float],
                     offset: Sequence[float], image_size: Sequence[float],
                     params: DecodeParams) -> tuple[np.ndarray, np.ndarray]:
    """One image's decoded boxes (input pixels) → boxes ``(M, 4)`` (x1, y1, x2, y2) in the
    original image (letterbox undone, clipped) and scores ``(M,)``, after the score
    threshold and box NMS, best first."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    keep = scores >= params.score_threshold
    boxes, scores = boxes[keep], scores[keep]
    scale = np.tile(np.asarray(scale, np.float64), 2)
    offset = np.tile(np.asarray(offset, np.float64), 2)
    limit = np.tile(np.asarray(image_size, np.float64), 2)
    boxes = np.clip((boxes - offset) / scale, 0, limit)
    size = boxes[:, 2:] - boxes[:, :2]
    keep = (size >= 1).all(axis=1)
    boxes, scores = boxes[keep], scores[keep]
    kept = nms(boxes, scores, params.nms_threshold, params.max_detections)
    return boxes[kept].astype(np.float32), scores[kept].astype(np.float32)
