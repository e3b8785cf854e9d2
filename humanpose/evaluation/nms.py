"""Object-keypoint-similarity (OKS) and OKS-based non-maximum suppression of people.

The numbers are those of the seed (HRNet's ``lib/nms/nms.py``): the same formula evaluated
with the same operations in the same order and the same ``argsort`` calls for the
ordering, so kept sets, their order and scores match the seed bit for bit when no
``in_vis_thre`` is given (the seed's evaluation never gives one). What changed is the
cost: OKS is computed for all pairs of an image's people at once instead of one pair per
Python iteration, so the greedy loop only indexes a table.

Sigmas are in the scale of the OKS formula, i.e. pycocotools' ``kpt_oks_sigmas``
(0.026 for the COCO nose); :func:`oks_sigmas` converts a :class:`KeypointSet`'s values,
which are written 10x larger as in the COCO API's source.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from humanpose.data.keypoints import COCO, KeypointSet

__all__ = [
    "check_sigmas",
    "oks_iou",
    "oks_nms",
    "oks_sigmas",
    "soft_oks_nms",
    "soft_oks_nms_with_scores",
]

# Added to the mean area so that zero-area people do not divide by zero (seed's value).
_AREA_EPS = np.spacing(1)
# The seed's soft-NMS stops after this many people per image (COCO's keypoint maxDets).
SOFT_NMS_MAX_DETS = 20
# Up to this many people per image the whole OKS table is built at once; beyond it rows are
# computed on demand so memory stays linear in the number of people.
_TABLE_MAX_PEOPLE = 2048
# Bound on the elements of one temporary (rows, people, joints) block of the table.
_BLOCK_ELEMENTS = 1 << 22


def oks_sigmas(keypoint_set: KeypointSet | None = None) -> np.ndarray:
    """Sigmas of ``keypoint_set`` (COCO's by default) in the scale the OKS formula uses.

    :class:`KeypointSet` stores them as the COCO API's source writes them (0.26 for the
    nose); the formula and pycocotools' ``kpt_oks_sigmas`` use a tenth of that.
    """
    return (COCO if keypoint_set is None else keypoint_set).sigmas_array() / 10.0


def check_sigmas(sigmas: np.ndarray | None, num_joints: int) -> np.ndarray:
    """``sigmas`` as float64 (COCO's when None) after checking they fit ``num_joints`` joints.

    Sigmas 10x too large would silently make every OKS near 1, so they are refused.
    """
    if sigmas is None:
        if num_joints != COCO.num_joints:
            raise ValueError(
                f"OKS needs sigmas for {num_joints} joints; the default (COCO) has "
                f"{COCO.num_joints}: pass sigmas="
            )
        sigmas = oks_sigmas()
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.shape != (num_joints,):
        raise ValueError(f"expected {num_joints} OKS sigmas, got shape {sigmas.shape}")
    if sigmas.size and sigmas.max() >= 0.5:
        raise ValueError(
            f"OKS sigmas look 10x too large (max {sigmas.max():g}); expected pycocotools' "
            "scale, e.g. 0.026 for the COCO nose: use oks_sigmas(keypoint_set)"
        )
    return sigmas


def _variances(sigmas: np.ndarray | None, num_joints: int) -> np.ndarray:
    """``(2 sigma)^2`` per joint, the OKS formula's normaliser."""
    return (check_sigmas(sigmas, num_joints) * 2) ** 2


def _oks(
    g: np.ndarray,
    area_g: np.ndarray,
    d: np.ndarray,
    area_d: np.ndarray,
    variances: np.ndarray,
    in_vis_thre: float | None,
) -> np.ndarray:
    """OKS of broadcastable people ``g`` (..., K, 3) against ``d`` (..., K, 3).

    Operations and their order are the seed's, so each value equals the seed's exactly when
    no joint is filtered out. With ``in_vis_thre``, joints whose *detected* score ``d`` is
    not above it are left out: the seed meant to filter on both people, but its
    ``list(vg > t) and list(vd > t)`` evaluates to the second list only.
    """
    dx = d[..., 0] - g[..., 0]
    dy = d[..., 1] - g[..., 1]
    mean_area = (area_g + area_d) / 2 + _AREA_EPS
    e = (dx**2 + dy**2) / variances / mean_area[..., None] / 2
    similarity = np.exp(-e)
    if in_vis_thre is None:
        return similarity.sum(axis=-1) / e.shape[-1]
    kept = np.broadcast_to(d[..., 2] > in_vis_thre, e.shape)
    count = kept.sum(axis=-1)
    total = np.where(kept, similarity, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _as_people(keypoints: np.ndarray) -> np.ndarray:
    """(N, K, 3) view of people given as (N, K, 3) or flat (N, K*3) rows."""
    keypoints = np.asarray(keypoints)
    flat_ok = keypoints.ndim == 2 and keypoints.shape[1] % 3 == 0
    if not (flat_ok or (keypoints.ndim == 3 and keypoints.shape[2] == 3)):
        raise ValueError(f"expected key points of shape (N, K, 3), got {keypoints.shape}")
    return keypoints.reshape(len(keypoints), -1, 3) if flat_ok else keypoints


def oks_iou(
    g: np.ndarray,
    d: np.ndarray,
    area_g: float,
    area_d: np.ndarray,
    sigmas: np.ndarray | None = None,
    in_vis_thre: float | None = None,
) -> np.ndarray:
    """OKS of one person ``g`` ((K*3,) or (K, 3)) against each of ``d`` ((M, K, 3)).

    ``area_g``/``area_d`` are the people's areas in pixels^2; ``sigmas`` default to COCO's.
    With ``in_vis_thre``, only joints of ``d`` scored above it count (the seed's behaviour);
    a person with none counts as OKS 0.
    """
    g = np.asarray(g).reshape(-1, 3)
    d = _as_people(d)
    if d.shape[1] != g.shape[0]:
        raise ValueError(f"g has {g.shape[0]} joints but d has {d.shape[1]}")
    variances = _variances(sigmas, g.shape[0])
    return _oks(g[None], area_g, d, np.asarray(area_d).reshape(-1), variances, in_vis_thre)


def _oks_table(
    keypoints: np.ndarray, areas: np.ndarray, variances: np.ndarray, in_vis_thre: float | None
) -> np.ndarray:
    """(N, N) OKS with row ``i`` as the reference person, built in memory-bounded blocks."""
    n, k = keypoints.shape[:2]
    step = max(1, _BLOCK_ELEMENTS // max(n * k, 1))
    blocks = [
        _oks(
            keypoints[start : start + step, None],
            areas[start : start + step, None],
            keypoints[None],
            areas[None],
            variances,
            in_vis_thre,
        )
        for start in range(0, n, step)
    ]
    return np.concatenate(blocks) if blocks else np.zeros((0, 0))


def _oks_rows(
    keypoints: np.ndarray, areas: np.ndarray, variances: np.ndarray, in_vis_thre: float | None
) -> Callable[[int, np.ndarray], np.ndarray]:
    """A function ``(i, others) -> OKS of person i against people others``."""
    if len(keypoints) <= _TABLE_MAX_PEOPLE:
        table = _oks_table(keypoints, areas, variances, in_vis_thre)
        return lambda i, others: table[i, others]
    return lambda i, others: _oks(
        keypoints[i][None], areas[i], keypoints[others], areas[others], variances, in_vis_thre
    )


def _prepare(
    keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keypoints = _as_people(keypoints)
    scores = np.asarray(scores).reshape(-1)
    areas = np.asarray(areas).reshape(-1)
    if not len(keypoints) == len(scores) == len(areas):
        counts = f"{len(scores)} scores and {len(areas)} areas"
        raise ValueError(f"{len(keypoints)} people but {counts}")
    return keypoints, scores, areas, _variances(sigmas, keypoints.shape[1])


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thresh: float,
    sigmas: np.ndarray | None = None,
    in_vis_thre: float | None = None,
) -> list[int]:
    """Greedy OKS-NMS: indices of the people kept, best score first.

    A person is dropped when its OKS with an already kept, better-scored person is above
    ``thresh`` (an OKS equal to ``thresh`` survives, as in the seed).
    """
    keypoints, scores, areas, variances = _prepare(keypoints, scores, areas, sigmas)
    if len(scores) == 0:
        return []
    oks_of = _oks_rows(keypoints, areas, variances, in_vis_thre)
    order = scores.argsort()[::-1]  # the seed's call, so equal scores tie-break the same way
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[oks_of(best, rest) <= thresh]
    return keep


def soft_oks_nms_with_scores(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thresh: float,
    sigmas: np.ndarray | None = None,
    in_vis_thre: float | None = None,
    max_dets: int = SOFT_NMS_MAX_DETS,
) -> tuple[list[int], np.ndarray]:
    """Soft OKS-NMS: the kept indices and the decayed score each had when it was picked.

    Instead of dropping overlapping people, each pick multiplies the others' scores by
    ``exp(-oks^2 / thresh)`` and re-sorts them; picking stops after ``max_dets`` people
    (20, the seed's fixed value and COCO's keypoint ``maxDets``).
    """
    keypoints, scores, areas, variances = _prepare(keypoints, scores, areas, sigmas)
    if len(scores) == 0:
        return [], np.zeros(0)
    oks_of = _oks_rows(keypoints, areas, variances, in_vis_thre)
    order = scores.argsort()[::-1]
    current = scores[order]
    keep: list[int] = []
    kept_scores = []
    while order.size and len(keep) < max_dets:
        best = order[0]
        overlap = oks_of(best, order[1:])
        keep.append(int(best))
        kept_scores.append(current[0])
        order = order[1:]
        current = current[1:] * np.exp(-(overlap**2) / thresh)
        resort = current.argsort()[::-1]
        order, current = order[resort], current[resort]
    return keep, np.asarray(kept_scores)


def soft_oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thresh: float,
    sigmas: np.ndarray | None = None,
    in_vis_thre: float | None = None,
    max_dets: int = SOFT_NMS_MAX_DETS,
) -> list[int]:
    """Soft OKS-NMS as in the seed: only the kept indices, in the order they were picked.

    The seed discards the decayed scores; :func:`soft_oks_nms_with_scores` returns them.
    """
    keep, _ = soft_oks_nms_with_scores(
        keypoints, scores, areas, thresh, sigmas, in_vis_thre, max_dets
    )
    return keep
