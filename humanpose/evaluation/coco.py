"""COCO key-point evaluation: re-scoring, per-image OKS-NMS, results file and pycocotools AP.

This is the post-processing of the seed's ``COCODataset.evaluate`` with the same numbers
(see :mod:`humanpose.evaluation.nms` for what "the same" means), vectorised: re-scoring
is done for all people at once and grouping by image is one sort.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from contextlib import nullcontext, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from humanpose.evaluation.nms import check_sigmas, oks_nms, soft_oks_nms

if TYPE_CHECKING:
    from pycocotools.coco import COCO as CocoApi

__all__ = [
    "COCO_STATS_NAMES",
    "evaluate_keypoints",
    "format_table",
    "rescore",
    "select_people",
    "write_results",
]

# Names of COCOeval's ten key-point statistics, spelled as the seed prints them.
COCO_STATS_NAMES = (
    "AP", "Ap .5", "AP .75", "AP (M)", "AP (L)", "AR", "AR .5", "AR .75", "AR (M)", "AR (L)",
)
# The seed's tables shorten longer architecture names to their first 8 characters + "...".
_ARCH_NAME_MAX = 15


def rescore(keypoints: np.ndarray, box_scores: np.ndarray, in_vis_thre: float) -> np.ndarray:
    """Person score = box score x mean confidence of the joints scored above ``in_vis_thre``.

    A person with no such joint scores 0. Confidences are summed joint by joint in their own
    dtype, as the seed's Python loop does, so float32 predictions give the seed's exact
    values; the loop runs over joints, not people.
    """
    keypoints = np.asarray(keypoints)
    confidence = keypoints[..., 2]
    total = np.zeros(confidence.shape[0], dtype=confidence.dtype)
    count = np.zeros(confidence.shape[0], dtype=np.int64)
    for joint in range(confidence.shape[1]):
        passes = confidence[:, joint] > in_vis_thre
        total[passes] += confidence[passes, joint]
        count += passes
    mean = np.where(count > 0, total / np.maximum(count, 1).astype(total.dtype), 0)
    return mean * np.asarray(box_scores).reshape(-1)


def _group_by_image(image_ids: np.ndarray) -> list[np.ndarray]:
    """Indices of each image's people: images in order of first appearance, people in input
    order (the seed's dict-of-lists order, which the NMS tie-breaking depends on)."""
    if len(image_ids) == 0:
        return []
    _, first, inverse = np.unique(image_ids, return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(len(first))
    key = rank[inverse.reshape(-1)]
    order = np.argsort(key, kind="stable")
    return np.split(order, np.cumsum(np.bincount(key))[:-1])


def select_people(
    keypoints: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    areas: np.ndarray,
    box_scores: np.ndarray,
    image_ids: np.ndarray,
    *,
    in_vis_thre: float,
    oks_thre: float,
    soft_nms: bool,
    sigmas: np.ndarray | None = None,
    category_id: int = 1,
) -> list[dict[str, Any]]:
    """Result records of the people that survive re-scoring and OKS-NMS, image by image.

    ``keypoints`` (N, K, 3) are in image pixels with confidences; ``areas`` are the boxes'
    ``prod(scale * 200)`` as in the seed (not key-point areas). Predictions are held in
    float32 and box values in float64 as the seed holds them, so its scores and NMS
    decisions are reproduced exactly. NMS, like the seed's, does not filter joints by
    ``in_vis_thre``; soft-NMS keeps at most 20 people per image and their scores unchanged.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    n = len(keypoints)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise ValueError(f"expected key points of shape (N, K, 3), got {keypoints.shape}")
    centers = np.asarray(centers, dtype=np.float64).reshape(n, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(n, 2)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    box_scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    image_ids = np.asarray(image_ids).reshape(-1).astype(np.int64)
    if not n == len(areas) == len(box_scores) == len(image_ids):
        raise ValueError(
            f"{n} people but {len(areas)} areas, {len(box_scores)} box scores and "
            f"{len(image_ids)} image ids"
        )
    sigmas = check_sigmas(sigmas, keypoints.shape[1])

    scores = rescore(keypoints, box_scores, in_vis_thre)
    nms = soft_oks_nms if soft_nms else oks_nms
    selected = []
    for members in _group_by_image(image_ids):
        keep = nms(keypoints[members], scores[members], areas[members], oks_thre, sigmas)
        selected.append(members[keep] if len(keep) else members)
    chosen = np.concatenate(selected) if selected else np.zeros(0, dtype=np.int64)

    rows = keypoints[chosen].reshape(len(chosen), keypoints.shape[1] * 3)
    flat = rows.astype(np.float64).tolist()
    return [
        {
            "image_id": image_id,
            "category_id": category_id,
            "keypoints": points,
            "score": score,
            "center": center,
            "scale": scale,
        }
        for image_id, points, score, center, scale in zip(
            image_ids[chosen].tolist(),
            flat,
            scores[chosen].tolist(),
            centers[chosen].tolist(),
            scales[chosen].tolist(),
        )
    ]


def _json_value(value: Any) -> Any:
    """Let records holding NumPy scalars or arrays be written too."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to a COCO results file")


def write_results(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write records as a COCO results JSON list, atomically (a temp file, then a rename).

    Records keep all their keys: like the seed's files, those of :func:`select_people` carry
    ``center`` and ``scale`` besides what pycocotools reads.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are 0600, and the rename would keep that mode; a new
    # file made with 0666 gets the umask's mode, as open() would give it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        # json.dumps, not json.dump: only the one-shot call uses the C encoder (3-4x faster
        # for the ~10^6 numbers of a COCO-sized results file).
        text = json.dumps(list(records), sort_keys=True, default=_json_value)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_results(coco_gt: CocoApi, results_path: Path) -> list[dict[str, Any]]:
    try:
        with open(results_path) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read COCO results file {results_path}: {err}") from err
    if not isinstance(results, list):
        raise ValueError(f"{results_path}: expected a JSON list of results")
    _check_image_ids(coco_gt, results, str(results_path))
    return results


def _check_image_ids(coco_gt: CocoApi, results: list[dict[str, Any]], source: str) -> None:
    unknown = {r["image_id"] for r in results} - set(coco_gt.getImgIds())
    if unknown:
        raise ValueError(
            f"{source}: {len(unknown)} image ids are not in the ground truth, "
            f"e.g. {sorted(unknown)[:5]}"
        )


def evaluate_keypoints(
    coco_gt: CocoApi,
    results_path: str | os.PathLike | list[dict[str, Any]],
    sigmas: np.ndarray | None = None,
    *,
    quiet: bool = False,
    category_id: int | None = None,
) -> OrderedDict[str, float]:
    """COCO key-point AP/AR of a results file, by pycocotools' ``COCOeval``.

    ``results_path`` may also be the records just written by :func:`write_results` (plain
    Python numbers, so they equal the file's contents): that saves parsing a file of ~10^6
    numbers back. pycocotools adds ``area``, ``bbox`` and ``id`` keys to the records.
    ``sigmas`` (pycocotools' scale) replace COCO's for custom key-point sets. An empty
    results file gives zeros rather than pycocotools' crash. ``quiet`` hides its printing.
    ``category_id`` limits the evaluation to the person category (files may list others).
    """
    from pycocotools.cocoeval import COCOeval

    if isinstance(results_path, list):
        results = results_path
        _check_image_ids(coco_gt, results, "results")
    else:
        results = _load_results(coco_gt, Path(results_path))
    if not results:
        return OrderedDict((name, 0.0) for name in COCO_STATS_NAMES)
    with redirect_stdout(io.StringIO()) if quiet else nullcontext():
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, "keypoints")
        coco_eval.params.useSegm = None
        if category_id is not None:
            coco_eval.params.catIds = [int(category_id)]
        # COCO's sigmas when None (equal to pycocotools' own); checked against the joints.
        num_joints = len(results[0]["keypoints"]) // 3
        coco_eval.params.kpt_oks_sigmas = check_sigmas(sigmas, num_joints)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return OrderedDict(
        (name, float(value)) for name, value in zip(COCO_STATS_NAMES, coco_eval.stats)
    )


def format_table(name_values: Mapping[str, float], arch_name: str) -> str:
    """The seed's three-line markdown table of metrics (header, separator, values)."""
    if len(arch_name) > _ARCH_NAME_MAX:
        arch_name = arch_name[:8] + "..."
    header = "| Arch " + " ".join(f"| {name}" for name in name_values) + " |"
    separator = "|---" * (len(name_values) + 1) + "|"
    values = " ".join(f"| {value:.3f}" for value in name_values.values())
    row = f"| {arch_name} {values} |"
    return "\n".join((header, separator, row))
