"""Where person boxes come from when the caller gives none.

A :class:`PersonDetector` is any callable ``(image, image_id=None, file_name=None) ->
Detections``. Two exist now: the whole image as one box (what a top-down model does without
a detector) and a look-up in a COCO results-format detections file, such as the seed's
``COCO_val2017_detections_AP_H_56_person.json``. A detector network will be a third.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from humanpose.errors import HumanposeError

__all__ = ["Detections", "DetectionsFile", "PersonDetector", "WholeImageDetector",
           "checked_bgr_image", "coco_image_ids"]


def checked_bgr_image(image) -> np.ndarray:
    """``image`` as the uint8 ``(H, W, 3)`` BGR array detector networks take, or an error
    that says what came instead (the networks' own errors would be cryptic)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise HumanposeError(f"the detector takes uint8 BGR images (H, W, 3), got "
                             f"{image.dtype} {image.shape}")
    return image


@dataclass
class Detections:
    """Person boxes ``(N, 4)`` as (x, y, w, h) in image pixels and their scores ``(N,)``."""

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"{len(self.boxes)} boxes but {len(self.scores)} scores")

    def __len__(self) -> int:
        return len(self.boxes)

    @staticmethod
    def empty() -> Detections:
        return Detections(np.zeros((0, 4)), np.zeros(0))


class PersonDetector(Protocol):
    """Finds people: boxes and scores for one BGR image. ``image_id`` and ``file_name``
    identify the image for detectors that look results up rather than compute them."""

    def __call__(self, image: np.ndarray, image_id: int | None = None,
                 file_name: str | None = None) -> Detections: ...


class WholeImageDetector:
    """The whole image is one person box with score 1: right for images cropped around one
    person, and the fallback until a detector network is configured."""

    def __call__(self, image: np.ndarray, image_id: int | None = None,
                 file_name: str | None = None) -> Detections:
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            return Detections.empty()
        return Detections(np.array([[0.0, 0.0, w, h]]), np.ones(1))


class DetectionsFile:
    """Boxes looked up in a COCO results-format detections file (a JSON list of
    ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``).

    Images are found by ``image_id``; a ``file_name`` is mapped to an id through
    ``file_ids`` (e.g. from a COCO annotation file, :func:`coco_image_ids`), else through
    a ``file_name`` field in the detections, else through a file name that is a number
    (COCO's ``000000397133.jpg`` → 397133). Only person boxes (category 1) scoring at least
    ``min_score`` are returned, as the seed keeps boxes above ``TEST.IMAGE_THRE``.

    For a video, :meth:`for_frame` gives a frame's boxes by the records' ``frame`` field
    (0-based frame index) when they have one, else by ``image_id`` numbered as humanpose
    numbers video frames (frame index + 1, as in its ``images.json``).
    """

    def __init__(self, path: str | os.PathLike, min_score: float = 0.0,
                 file_ids: dict[str, int] | None = None):
        self.path = Path(path)
        try:
            records = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            raise HumanposeError(f"cannot read detections file {self.path}: {err}") from err
        if not isinstance(records, list):
            raise HumanposeError(f"{self.path}: expected a JSON list of detections in COCO "
                                 "results format")
        by_image: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
        by_frame: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
        names: dict[str, int] = {}
        for i, rec in enumerate(records):
            try:
                image_id = int(rec["image_id"])
                box = [float(v) for v in rec["bbox"]]
                score = float(rec.get("score", 1.0))
                frame = int(rec["frame"]) if "frame" in rec else None
            except (KeyError, TypeError, ValueError) as err:
                raise HumanposeError(f"{self.path}: detection {i} lacks a valid image_id, bbox, "
                                     f"score or frame: {rec!r}") from err
            if len(box) != 4:
                raise HumanposeError(f"{self.path}: detection {i} has bbox {box}; expected "
                                     "[x, y, w, h]")
            if "file_name" in rec:
                names[Path(str(rec["file_name"])).name] = image_id
            if int(rec.get("category_id", 1)) != 1 or score < min_score:
                continue
            by_image[image_id].append((box, score))
            if frame is not None:
                by_frame[frame].append((box, score))

        def detections(table: dict) -> dict[int, Detections]:
            return {k: Detections(np.array([b for b, _ in v]), np.array([s for _, s in v]))
                    for k, v in table.items()}

        self._by_image = detections(by_image)
        self._by_frame = detections(by_frame)
        self.has_frames = any("frame" in rec for rec in records)
        self.file_ids = {**names, **(file_ids or {})}
        self.image_ids = sorted({int(r["image_id"]) for r in records})

    def image_id_for(self, file_name: str) -> int | None:
        """The image id of a file name, or None when nothing maps it."""
        name = Path(file_name).name
        if name in self.file_ids:
            return self.file_ids[name]
        stem = Path(name).stem
        return int(stem) if stem.isdigit() else None

    def for_frame(self, index: int) -> Detections:
        """The boxes of a video's frame ``index`` (0-based); empty when the file has none
        for it (the caller tracks on)."""
        if self.has_frames:
            return self._by_frame.get(int(index), Detections.empty())
        return self._by_image.get(int(index) + 1, Detections.empty())

    def __call__(self, image: np.ndarray, image_id: int | None = None,
                 file_name: str | None = None) -> Detections:
        if image_id is None and file_name is not None:
            image_id = self.image_id_for(file_name)
        if image_id is None:
            raise HumanposeError(f"{self.path}: cannot tell which detections belong to "
                                 f"{file_name or 'this image'}; give an image id or a COCO "
                                 "annotation file that maps file names to ids")
        return self._by_image.get(int(image_id), Detections.empty())


def coco_image_ids(annotation_file: str | os.PathLike) -> dict[str, int]:
    """File name → image id from a COCO annotation file's ``images`` list."""
    path = Path(annotation_file)
    try:
        data = json.loads(path.read_text())
        return {Path(str(im["file_name"])).name: int(im["id"]) for im in data["images"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HumanposeError(f"cannot read image ids from COCO annotation file {path}: "
                             f"{err}") from err
