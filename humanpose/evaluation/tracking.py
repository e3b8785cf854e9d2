"""How well people are followed through a video: ID switches, IDF1, key-point jitter.

Inputs are per-frame lists: ground truth ids ``(P,)`` and boxes ``(P, 4)`` (x, y, w, h),
and the tracker's (hypothesis) ids ``(H,)`` and boxes ``(H, 4)``. A ground-truth person and
a hypothesis can correspond in a frame when their boxes overlap with IoU >= ``iou_threshold``
(0.5, as in the MOT benchmarks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from humanpose.runtime.assignment import linear_sum_assignment

__all__ = ["TrackingScores", "box_iou", "clear_mot_matches", "frame_matches", "keypoint_jitter",
           "tracking_scores"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` ``(N, 4)`` with every box of ``b`` ``(M, 4)``, both
    (x, y, w, h) as in COCO (humanpose.runtime.boxes.box_iou takes corners)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2]) - \
        np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3]) - \
        np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def frame_matches(gt_boxes: np.ndarray, hyp_boxes: np.ndarray,
                  iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """One frame's one-to-one pairs (ground-truth index, hypothesis index) of largest total
    IoU among pairs with IoU >= ``iou_threshold``."""
    return frame_matches_iou(box_iou(gt_boxes, hyp_boxes), iou_threshold)


def frame_matches_iou(iou: np.ndarray, iou_threshold: float = 0.5) -> list[tuple[int, int]]:
    """:func:`frame_matches` from the IoU matrix ``(ground truth, hypotheses)``."""
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-np.where(iou >= iou_threshold, iou, 0.0))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= iou_threshold]


def clear_mot_matches(gt_ids: Sequence[int], hyp_ids: Sequence[int], iou: np.ndarray,
                      last: dict[int, int], iou_threshold: float = 0.5
                      ) -> list[tuple[int, int]]:
    """One frame's pairs (ground-truth index, hypothesis index) as CLEAR MOT makes them
    (Bernardin & Stiefelhagen 2008, and motmetrics): a person still overlapping (IoU >=
    ``iou_threshold``) the hypothesis id it was matched to before (``last``: ground-truth
    id -> hypothesis id) keeps it; the others are paired by largest total IoU. Without the
    first rule two crossing people whose boxes overlap both hypotheses would count as
    swapped whenever the IoUs tip, though no tracker changed an id."""
    kept = []
    hyp_at = {h: c for c, h in enumerate(hyp_ids)}
    for r, g in enumerate(gt_ids):
        c = hyp_at.get(last[g]) if g in last else None
        if c is not None and iou[r, c] >= iou_threshold:
            kept.append((r, c))
    kept_rows, kept_cols = {r for r, _ in kept}, {c for _, c in kept}
    rows = [r for r in range(len(gt_ids)) if r not in kept_rows]
    cols = [c for c in range(len(hyp_ids)) if c not in kept_cols]
    rest = frame_matches_iou(iou[np.ix_(rows, cols)], iou_threshold) if rows and cols else []
    return kept + [(rows[r], cols[c]) for r, c in rest]


@dataclass
class TrackingScores:
    """``id_switches``: times a ground-truth person is matched to another hypothesis id than
    at its previous match (CLEAR MOT's IDSW); ``switches_per_100``: per 100 frames.
    ``idf1``/``idp``/``idr``: identity F1, precision and recall (Ristani et al. 2016).
    ``matched``/``gt_count``/``hyp_count``: frame-wise matched pairs and totals."""

    frames: int
    gt_count: int
    hyp_count: int
    matched: int
    id_switches: int
    switches_per_100: float
    idtp: int
    idf1: float
    idp: float
    idr: float


def tracking_scores(gt_ids: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray],
                    hyp_ids: Sequence[np.ndarray], hyp_boxes: Sequence[np.ndarray],
                    iou_threshold: float = 0.5) -> TrackingScores:
    """ID switches and IDF1 of a tracker's output against the ground truth.

    IDF1: every ground-truth trajectory is assigned at most one hypothesis trajectory (and
    the reverse) so that the number of frames where the two are both present with box IoU
    >= ``iou_threshold`` (IDTP), summed over assigned pairs, is largest (one global
    assignment over the whole video, Hungarian algorithm). Then IDP = IDTP / hypothesis
    boxes, IDR = IDTP / ground-truth boxes, IDF1 = 2 IDTP / (ground-truth + hypothesis
    boxes). ID switches use CLEAR MOT's per-frame matching (:func:`clear_mot_matches`).
    """
    if not (len(gt_ids) == len(gt_boxes) == len(hyp_ids) == len(hyp_boxes)):
        raise ValueError(f"frame counts differ: {len(gt_ids)} gt ids, {len(gt_boxes)} gt "
                         f"boxes, {len(hyp_ids)} hyp ids, {len(hyp_boxes)} hyp boxes")
    gt_index: dict[int, int] = {}
    hyp_index: dict[int, int] = {}
    for ids in gt_ids:
        for g in np.asarray(ids).tolist():
            gt_index.setdefault(g, len(gt_index))
    for ids in hyp_ids:
        for h in np.asarray(ids).tolist():
            hyp_index.setdefault(h, len(hyp_index))
    together = np.zeros((len(gt_index), len(hyp_index)), dtype=np.int64)
    last: dict[int, int] = {}
    switches = matched = gt_count = hyp_count = 0
    for gi, gb, hi, hb in zip(gt_ids, gt_boxes, hyp_ids, hyp_boxes):
        gi, hi = np.asarray(gi).tolist(), np.asarray(hi).tolist()
        gt_count += len(gi)
        hyp_count += len(hi)
        iou = box_iou(gb, hb)
        for r, c in zip(*np.nonzero(iou >= iou_threshold)):
            together[gt_index[gi[r]], hyp_index[hi[c]]] += 1
        for r, c in clear_mot_matches(gi, hi, iou, last, iou_threshold):
            matched += 1
            if gi[r] in last and last[gi[r]] != hi[c]:
                switches += 1
            last[gi[r]] = hi[c]
    idtp = 0
    if together.size:
        rows, cols = linear_sum_assignment(-together)
        idtp = int(together[rows, cols].sum())
    frames = len(gt_ids)
    return TrackingScores(
        frames=frames, gt_count=gt_count, hyp_count=hyp_count, matched=matched,
        id_switches=switches, switches_per_100=100.0 * switches / max(frames, 1), idtp=idtp,
        idf1=2 * idtp / (gt_count + hyp_count) if gt_count + hyp_count else 1.0,
        idp=idtp / hyp_count if hyp_count else 1.0, idr=idtp / gt_count if gt_count else 1.0)


def keypoint_jitter(gt_ids: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray],
                    gt_keypoints: Sequence[np.ndarray], hyp_ids: Sequence[np.ndarray],
                    hyp_boxes: Sequence[np.ndarray], hyp_keypoints: Sequence[np.ndarray],
                    iou_threshold: float = 0.5) -> dict[str, float]:
    """Key-point jitter: the mean frame-to-frame deviation from the true trajectory, in
    pixels, and the mean position error for reference (smoothing trades one for the other).

    For a ground-truth person matched (:func:`frame_matches`) to the same hypothesis id in
    frames t-1 and t, and a joint visible (visibility 2) and predicted (confidence above 0)
    in both, let e_t = p̂_t - p_t be the predicted minus the true position. Jitter is the
    mean of ||e_t - e_{t-1}|| = ||(p̂_t - p̂_{t-1}) - (p_t - p_{t-1})|| over all such
    (person, joint, t): how much the estimated motion differs from the true motion
    between consecutive frames. A constant offset costs nothing; shaking and sudden lags
    do. ``error`` is the mean ||e_t|| over matched visible joints, ``pairs`` the count
    behind ``jitter``.
    """
    previous: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
    steps: list[np.ndarray] = []
    errors: list[np.ndarray] = []
    for gi, gb, gk, hi, hb, hk in zip(gt_ids, gt_boxes, gt_keypoints, hyp_ids, hyp_boxes,
                                      hyp_keypoints):
        gi, hi = np.asarray(gi).tolist(), np.asarray(hi).tolist()
        gk, hk = np.asarray(gk, dtype=np.float64), np.asarray(hk, dtype=np.float64)
        current: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        for r, c in frame_matches(gb, hb, iou_threshold):
            err = hk[c, :, :2] - gk[r, :, :2]
            seen = (gk[r, :, 2] >= 2) & (hk[c, :, 2] > 0)
            errors.append(np.linalg.norm(err[seen], axis=-1))
            current[gi[r]] = (hi[c], err, seen)
            before = previous.get(gi[r])
            if before is not None and before[0] == hi[c]:
                both = seen & before[2]
                steps.append(np.linalg.norm(err[both] - before[1][both], axis=-1))
        previous = current
    step = np.concatenate(steps) if steps else np.zeros(0)
    error = np.concatenate(errors) if errors else np.zeros(0)
    return {"jitter": float(step.mean()) if step.size else float("nan"),
            "error": float(error.mean()) if error.size else float("nan"),
            "pairs": int(step.size)}
