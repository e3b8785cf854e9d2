"""COCO-WholeBody key-point AP/AR per part, as mmpose's CocoWholeBodyMetric reports them.

Each part (body, foot, face, left hand, right hand) and the whole body is scored by
pycocotools' COCOeval on that part's slice of the 133 joints, with that part's official
sigmas and the ground truth's ``area``. Three rules of xtcocotools' whole-body COCOeval are
reproduced around pycocotools so the numbers equal it: a person with no labelled point in
the part is ignored, a prediction with no positive score in the part is dropped, and a
prediction's area (for its area range) is that of its body points.
"""

from __future__ import annotations

import copy
import io
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from typing import Any

import numpy as np

from humanpose.data.wholebody import WHOLEBODY_FIELDS
from humanpose.evaluation.coco import COCO_STATS_NAMES, format_table

__all__ = ["WHOLEBODY_FIELDS", "WHOLEBODY_PARTS", "evaluate_wholebody", "format_parts_table",
           "split_wholebody", "wholebody_records"]

# Part names as mmpose prints them, with the fields each one is scored on.
WHOLEBODY_PARTS = (("body", ("keypoints",)), ("foot", ("foot_kpts",)), ("face", ("face_kpts",)),
                   ("lefthand", ("lefthand_kpts",)), ("righthand", ("righthand_kpts",)),
                   ("wholebody", tuple(f for f, _ in WHOLEBODY_FIELDS)))


def split_wholebody(keypoints: Sequence[float]) -> dict[str, list[float]]:
    """A flat 133x3 list cut into COCO-WholeBody's per-part fields (the results layout
    official tools read)."""
    flat = list(keypoints)
    if len(flat) != 3 * sum(n for _, n in WHOLEBODY_FIELDS):
        raise ValueError(f"expected 399 numbers (133 joints x 3), got {len(flat)}")
    out, start = {}, 0
    for field, n in WHOLEBODY_FIELDS:
        out[field] = flat[start:start + 3 * n]
        start += 3 * n
    return out


def wholebody_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Result records of 133 joints (:func:`~humanpose.evaluation.coco.select_people`'s) in
    the official results layout: ``keypoints`` (17 body points), ``foot_kpts``,
    ``face_kpts``, ``lefthand_kpts``, ``righthand_kpts``; the other keys kept."""
    return [{**r, **split_wholebody(r["keypoints"])} for r in records]


def format_parts_table(values: Mapping[str, float], arch_name: str) -> str:
    """The seed's metrics table with a Part column, one row per part of
    :func:`evaluate_wholebody`'s ``values`` (body, foot, face, lefthand, righthand,
    wholebody): the same columns and number format as the body table above it."""
    lines: list[str] = []
    for part, _ in WHOLEBODY_PARTS:
        header, separator, row = format_table(
            OrderedDict((name, values[f"{part} {name}"]) for name in COCO_STATS_NAMES),
            arch_name).splitlines()
        if not lines:
            lines = [header.replace("| Arch ", "| Arch | Part ", 1), "|---" + separator]
        lines.append(row.replace(" | ", f" | {part} | ", 1))  # after the Arch cell
    return "\n".join(lines)


def _joined(record: Mapping[str, Any], fields: Sequence[str]) -> list[float]:
    return [x for f in fields for x in record[f]]


def _part_gt(dataset: dict, fields: Sequence[str]) -> dict:
    data = copy.copy(dataset)
    anns = []
    for ann in dataset["annotations"]:
        points = _joined(ann, fields)
        anns.append({**ann, "keypoints": points,
                     "num_keypoints": int(np.count_nonzero(np.asarray(points)[2::3] > 0))})
    data["annotations"] = anns
    return data


def evaluate_wholebody(gt_dataset: dict, results: Sequence[Mapping[str, Any]],
                       sigmas: np.ndarray, *,
                       category_id: int | None = None) -> OrderedDict[str, float]:
    """``"<part> AP"``-style metrics (each part's ten COCOeval statistics) of results in
    COCO-WholeBody layout against a COCO-WholeBody annotation dict; ``sigmas`` are the 133
    official ones in pycocotools' scale. ``category_id`` limits both to the person category
    (other categories' annotations have no part fields)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if category_id is not None:
        gt_dataset = {**gt_dataset,
                      "annotations": [a for a in gt_dataset["annotations"]
                                      if a["category_id"] == category_id],
                      "categories": [c for c in gt_dataset["categories"]
                                     if c["id"] == category_id]}
        results = [r for r in results if r["category_id"] == category_id]
    sigmas = np.asarray(sigmas, dtype=np.float64)
    offsets = np.cumsum([0] + [n for _, n in WHOLEBODY_FIELDS])
    part_slices = {f: slice(a, b) for (f, _), a, b in zip(WHOLEBODY_FIELDS, offsets, offsets[1:])}
    values: OrderedDict[str, float] = OrderedDict()
    for part, fields in WHOLEBODY_PARTS:
        gt = COCO()
        gt.dataset = _part_gt(gt_dataset, fields)
        with redirect_stdout(io.StringIO()):
            gt.createIndex()
        dts = []
        for r in results:
            points = _joined(r, fields)
            if np.count_nonzero(np.asarray(points)[2::3] > 0) == 0:
                continue
            body = np.asarray(r["keypoints"], dtype=np.float64)
            area = float((body[0::3].max() - body[0::3].min())
                         * (body[1::3].max() - body[1::3].min()))
            dts.append({"image_id": r["image_id"], "category_id": r["category_id"],
                        "keypoints": points, "score": r["score"], "_area": area})
        stats = np.zeros(len(COCO_STATS_NAMES))
        if dts:
            with redirect_stdout(io.StringIO()):
                dt = gt.loadRes(dts)
                for ann in dt.dataset["annotations"]:
                    ann["area"] = ann.pop("_area")
                evaluator = COCOeval(gt, dt, "keypoints")
                evaluator.params.useSegm = None
                evaluator.params.kpt_oks_sigmas = np.concatenate(
                    [sigmas[part_slices[f]] for f in fields])
                evaluator.evaluate()
                evaluator.accumulate()
                evaluator.summarize()
            stats = evaluator.stats
        for name, value in zip(COCO_STATS_NAMES, stats):
            values[f"{part} {name}"] = float(value)
    return values
