"""Whole images with person boxes, letterboxed to the detector's input, with targets.

Boxes come from ``ROOT/annotations/instances_{SET}.json`` when it exists (COCO's detection
file: every person, crowds marked), else from the key-point file
``person_keypoints_{SET}.json`` (its people's ``bbox``; the synthetic sets have only that).
Only the person category counts (the one named ``person``, else the file's only category).
Images are read from ``ROOT/images/{SET}/`` as for pose.

An image is scaled to fit the input without changing its aspect ratio and centred on a grey
canvas (the letterbox, as YOLO-family detectors do, so both kinds of detector share
:func:`letterbox`). Training jitters that scale (``DATASET.SCALE_FACTOR``), shifts the image
by up to ``TRANSLATE`` of the input size and mirrors it (``DATASET.FLIP``). Samples are
``(image, targets, meta)``: the uint8 RGB input ``(H, W, 3)`` (the engine normalises it),
the targets of :func:`humanpose.detection.codec.encode_boxes`, and ``image_id``, ``scale``,
``offset`` and ``image_size`` to map predicted boxes back (``x_image = (x - offset) /
scale``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Dataset

from humanpose.data.coco import (
    DatasetError,
    annotation_file,
    are_numbers,
    check_coco_lists,
    check_images,
    field_error,
    image_folder,
    is_number,
    read_json,
)
from humanpose.data.images import read_image
from humanpose.detection.codec import encode_boxes
from humanpose.runtime.boxes import PAD_VALUE, letterbox

__all__ = ["PAD_VALUE", "TRANSLATE", "PersonBoxDataset", "build_detection_dataset",
           "detection_annotation_file", "letterbox", "load_person_boxes"]

logger = logging.getLogger(__name__)

TRANSLATE = 0.1  # training shift, a fraction of the input size
MIN_VISIBLE = 0.1  # an augmented box cut by the border stays a target if this much remains
MIN_BOX_SIDE = 2.0  # pixels of input, for a box to be a target


@dataclass
class ImageBoxes:
    """One image: its file, id, size and person boxes ``(M, 4)`` (x1, y1, x2, y2)."""

    path: str
    image_id: int
    width: int
    height: int
    boxes: np.ndarray


def detection_annotation_file(root: str, image_set: str) -> str:
    """``instances_{SET}.json`` when present, else the key-point file of the set."""
    instances = os.path.join(root, "annotations", f"instances_{image_set}.json")
    return instances if os.path.isfile(instances) else annotation_file(root, image_set)


def _validate(data, path: str) -> None:
    """Check the fields that the boxes and pycocotools' box evaluation read."""
    check_coco_lists(data, path)
    check_images(data["images"], path)
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise field_error(path, f"annotations[{i}]", "an object", ann)
        for key in ("image_id", "category_id"):
            if not is_number(ann.get(key)):
                raise field_error(path, f"annotations[{i}].{key}", "a number",
                                  ann.get(key, "<missing>"))
        if not are_numbers(ann.get("bbox"), 4):
            raise field_error(path, f"annotations[{i}].bbox", "[x, y, w, h]",
                              ann.get("bbox", "<missing>"))


def _person_category(data: dict, path: str) -> int:
    categories = [c for c in data["categories"] if isinstance(c, dict)]
    for c in categories:
        if c.get("name") == "person" and is_number(c.get("id")):
            return int(c["id"])
    if len(categories) == 1 and is_number(categories[0].get("id")):
        return int(categories[0]["id"])
    raise field_error(path, "categories", "a category named 'person' (or a single category)",
                      [c.get("name") for c in categories])


def load_person_boxes(root: str, image_set: str) -> tuple[COCO, int, list[ImageBoxes], str]:
    """(pycocotools index, person category id, one entry per image, annotation file).

    Crowd regions and boxes at most a pixel wide are not targets (COCO's box evaluation
    ignores crowds too); boxes are clipped to their image.
    """
    path = detection_annotation_file(root, image_set)
    if not os.path.isfile(path):
        raise DatasetError(f"no annotation file for the person detector: neither "
                           f"{os.path.join(root, 'annotations', f'instances_{image_set}.json')} "
                           f"nor {path} exists (check DATASET.ROOT and TRAIN_SET/TEST_SET)")
    data = read_json(path, "COCO annotations")
    _validate(data, path)
    category = _person_category(data, path)
    for i, ann in enumerate(data["annotations"]):  # fields pycocotools needs, often omitted
        ann.setdefault("id", i + 1)
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    image_dir = image_folder(root, image_set)
    entries = []
    dropped = 0
    for image_id in sorted(coco.imgs):
        im = coco.imgs[image_id]
        anns = [a for a in coco.imgToAnns.get(image_id, [])
                if a["category_id"] == category and not a["iscrowd"]]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes = np.clip(boxes, 0, [im["width"], im["height"]] * 2)
        keep = ((boxes[:, 2:] - boxes[:, :2]) > 1).all(axis=1)
        dropped += int((~keep).sum())
        boxes = boxes[keep]
        entries.append(ImageBoxes(os.path.join(image_dir, im["file_name"]), int(image_id),
                                  int(im["width"]), int(im["height"]), boxes))
    if dropped:
        logger.info("=> %s: dropped %d boxes of width or height <= 1 after clipping", path,
                    dropped)
    return coco, category, entries, path


class PersonBoxDataset(Dataset):
    """Letterboxed images and their centre/size targets (see the module docstring).

    ``coco`` (test sets only) is the ground truth for COCO box evaluation.
    """

    def __init__(self, cfg, root: str, image_set: str, is_train: bool):
        if not os.path.isdir(root):
            raise DatasetError(f"data folder not found: {root!r} (DATASET.ROOT)")
        coco, self.category_id, self.entries, self.annotation_file = \
            load_person_boxes(root, image_set)
        image_dir = image_folder(root, image_set)
        if not os.path.isdir(image_dir):
            key = "DATASET.TRAIN_SET" if is_train else "DATASET.TEST_SET"
            raise DatasetError(f"image folder not found: {image_dir} (DATASET.ROOT/{key})")
        self.coco = None if is_train else coco  # forked workers would copy a big index
        self.is_train = is_train
        self.image_set = image_set
        self.input_size = (int(cfg.MODEL.IMAGE_SIZE[0]), int(cfg.MODEL.IMAGE_SIZE[1]))
        self.heatmap_size = (int(cfg.MODEL.HEATMAP_SIZE[0]), int(cfg.MODEL.HEATMAP_SIZE[1]))
        self.stride = self.input_size[0] / self.heatmap_size[0]
        self.flip = bool(cfg.DATASET.FLIP)
        self.scale_factor = float(cfg.DATASET.SCALE_FACTOR)
        logger.info("=> %s: %d images, %d person boxes (%s)", image_set, len(self.entries),
                    sum(len(e.boxes) for e in self.entries), self.annotation_file)

    def __len__(self) -> int:
        return len(self.entries)

    def _augment(self, image: np.ndarray, boxes: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Random scale, shift and mirror; returns (input, boxes, scale, offset)."""
        h, w = image.shape[:2]
        in_w, in_h = self.input_size
        s = min(in_w / w, in_h / h) * np.random.uniform(1 - self.scale_factor,
                                                        1 + self.scale_factor)
        centre = np.array([in_w, in_h]) * (0.5 + np.random.uniform(-TRANSLATE, TRANSLATE, 2))
        flip = self.flip and np.random.random() < 0.5
        ax = -s if flip else s
        bx, by = centre[0] - ax * w / 2, centre[1] - s * h / 2
        # Continuous coordinates map by x' = a x + b; OpenCV maps pixel centres (i + 0.5).
        matrix = np.array([[ax, 0.0, bx + 0.5 * ax - 0.5], [0.0, s, by + 0.5 * s - 0.5]])
        out = cv2.warpAffine(image, matrix, (in_w, in_h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)
        moved = boxes * [ax, s, ax, s] + [bx, by, bx, by]
        if flip:
            moved = moved[:, [2, 1, 0, 3]]
        clipped = np.clip(moved, 0, [in_w, in_h, in_w, in_h])
        side = clipped[:, 2:] - clipped[:, :2]
        area = np.prod(moved[:, 2:] - moved[:, :2], axis=1)
        keep = (side >= MIN_BOX_SIDE).all(axis=1) & (side.prod(axis=1) >= MIN_VISIBLE * area)
        return out, clipped[keep], np.array([ax, s]), np.array([bx, by])

    def __getitem__(self, index: int):
        entry = self.entries[index]
        image = read_image(entry.path)
        if self.is_train:
            image, boxes, scale, offset = self._augment(image, entry.boxes)
        else:
            image, scale, offset = letterbox(image, self.input_size)
            boxes = entry.boxes * np.tile(scale, 2) + np.tile(offset, 2)
        targets = {k: torch.from_numpy(v) for k, v in
                   encode_boxes(boxes, self.heatmap_size, self.stride).items()}
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        meta = {"image_id": entry.image_id, "index": index,
                "scale": scale.astype(np.float32), "offset": offset.astype(np.float32),
                "image_size": np.array([entry.width, entry.height], dtype=np.float32)}
        return torch.from_numpy(rgb), targets, meta


def build_detection_dataset(cfg, is_train: bool) -> PersonBoxDataset:
    """The training or test set of ``cfg`` (``DATASET.ROOT``, ``TRAIN_SET``/``TEST_SET``)."""
    if not cfg.DATASET.ROOT:
        raise DatasetError("DATASET.ROOT is empty: set it to the data folder")
    image_set = cfg.DATASET.TRAIN_SET if is_train else cfg.DATASET.TEST_SET
    return PersonBoxDataset(cfg, cfg.DATASET.ROOT, image_set, is_train)
