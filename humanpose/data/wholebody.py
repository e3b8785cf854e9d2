"""COCO-WholeBody annotation files: five per-part fields that make one person's 133 joints.

The official files (``coco_wholebody_{train,val}_v1.0.json``) keep COCO's 17 body points in
``keypoints`` and the rest in ``foot_kpts`` (6), ``face_kpts`` (68), ``lefthand_kpts`` and
``righthand_kpts`` (21 each), x, y, v flat; joined in that order they are mmpose's 133
joints (:data:`~humanpose.data.keypoints.COCO_WHOLEBODY`). The part boxes and ``*_valid``
flags are not read: an unlabelled part has v = 0 on its points, which is all that training
(joint weights) and evaluation (a person without labelled points in a part is ignored there)
need, as in mmpose.
"""

from __future__ import annotations

import logging
import os
import re
from itertools import chain

from humanpose.data.keypoints import COCO_WHOLEBODY, KeypointSet

__all__ = ["WHOLEBODY_FIELDS", "check_part_fields", "is_wholebody", "official_annotation_file"]

logger = logging.getLogger(__name__)

# The annotation fields of COCO-WholeBody in mmpose's joint order, with their joint counts.
WHOLEBODY_FIELDS: tuple[tuple[str, int], ...] = (
    ("keypoints", 17), ("foot_kpts", 6), ("face_kpts", 68), ("lefthand_kpts", 21),
    ("righthand_kpts", 21))


def is_wholebody(keypoints: KeypointSet) -> bool:
    """Whether a data set's joints are COCO-WholeBody's 133 (then scored part by part)."""
    return keypoints.names == COCO_WHOLEBODY.names


def official_annotation_file(root: str, image_set: str) -> str:
    """Where the official file of ``image_set`` lies under ``root`` (mmpose's layout):
    ``train2017`` -> ``annotations/coco_wholebody_train_v1.0.json``, ``val2017`` -> ``val``'s."""
    split = re.sub(r"\d+$", "", image_set) or image_set
    return os.path.join(root, "annotations", f"coco_wholebody_{split}_v1.0.json")


def _ann_id(ann: dict, index: int) -> str:
    return f"id {ann['id']}" if "id" in ann else f"annotations[{index}] (no id)"


def check_part_fields(data: dict, path: str, category_id) -> int:
    """Check the whole-body fields of the people (``category_id``) of a loaded file, in
    place; returns how many fields of single annotations were missing and are now zeros.

    A field that no annotation has means the file is not COCO-WholeBody (a plain COCO file,
    say): that raises, naming the file, the first annotation and the field, rather than
    training on a file of zeros. A field missing from some annotations only is taken as an
    unlabelled part (zeros, v = 0) and counted in a warning. A field of the wrong length or
    with values other than numbers raises, naming the annotation.
    """
    from humanpose.data.coco import DatasetError, field_error, is_number

    people = [(i, ann) for i, ann in enumerate(data["annotations"])
              if ann.get("category_id") == category_id]
    if not people:
        return 0
    filled, first_filled = 0, None
    for field, n in WHOLEBODY_FIELDS:
        present = [(i, ann) for i, ann in people if ann.get(field) is not None]
        if not present:
            i, ann = people[0]
            raise DatasetError(
                f"{path}: annotation {_ann_id(ann, i)} has no {field!r}, nor has any other: "
                f"DATASET.KEYPOINT_SET coco_wholebody reads COCO-WholeBody's fields "
                f"{[f for f, _ in WHOLEBODY_FIELDS]} (the official files are "
                "coco_wholebody_{train,val}_v1.0.json; a plain COCO file has 17 points: "
                "KEYPOINT_SET coco)")
        if field == "keypoints":  # checked with the file (humanpose.data.coco._validate)
            values = []
        else:
            values = [ann[field] for _, ann in present]
        lengths_ok = all(isinstance(v, list) and len(v) == 3 * n for v in values)
        # One pass in C over all of the field's numbers (10^7 and more in the train file);
        # the slow search for the culprit runs only when something is wrong.
        if not lengths_ok or not set(map(type, chain.from_iterable(values))) <= {int, float}:
            for i, ann in present:
                v = ann[field]
                if not (isinstance(v, list) and len(v) == 3 * n
                        and all(is_number(x) for x in v)):
                    raise field_error(path, f"annotations[{i}].{field} ({_ann_id(ann, i)})",
                                      f"{3 * n} numbers (x, y, v for {n} points)", v)
        if len(present) < len(people):
            for i, ann in people:
                if ann.get(field) is None:
                    ann[field] = [0.0] * (3 * n)
                    filled += 1
                    first_filled = first_filled or f"{_ann_id(ann, i)} {field!r}"
    if filled:
        logger.warning("=> %s: %d part fields missing from single annotations (first: %s) are "
                       "taken as unlabelled (zeros)", path, filled, first_filled)
    return filled
