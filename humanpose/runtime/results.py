"""What pose estimation returns: :class:`Person` per person and :class:`Results` per image.

``Results`` is the object users of detection libraries expect: NumPy arrays for the whole
image (``boxes``, ``keypoints`` ``(N, K, 2)``, ``keypoint_scores``, ``scores``,
``track_ids``), the joint ``names``, ``plot()`` for a drawing and ``to_json()``/``to_csv()``
for files, with the same fields and rounding as ``humanpose infer`` writes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from humanpose.data.keypoints import KeypointSet

__all__ = ["Person", "Results", "csv_header", "csv_row"]


@dataclass
class Person:
    """One person: the box the crop came from, its detection score, key points ``(K, 3)``
    as (x, y, confidence) in image pixels, and the person score that COCO evaluation uses
    (box score × mean confidence of the joints above ``TEST.IN_VIS_THRE``). ``track_id``:
    the person's identity across video frames when tracked (``track()``,
    ``humanpose infer --track``), -1 for a person the tracker does not follow, None when
    nothing tracked."""

    box: tuple[float, float, float, float]
    box_score: float
    keypoints: np.ndarray
    score: float = 0.0
    track_id: int | None = None

    def to_coco(self, image_id: int, category_id: int = 1) -> dict:
        """This person as a COCO results-format record (with ``track_id`` when tracked)."""
        record = {"image_id": int(image_id), "category_id": int(category_id),
                  "keypoints": [round(float(v), 3) for v in self.keypoints.reshape(-1)],
                  "score": round(float(self.score), 6),
                  "bbox": [round(float(v), 2) for v in self.box]}
        if self.track_id is not None:
            record["track_id"] = int(self.track_id)
        return record


def csv_header(joint_names: Sequence[str]) -> list[str]:
    """The CSV columns: frame, time, track_id, box, score, then x, y, score per joint."""
    return ["frame", "time", "track_id", "x", "y", "w", "h", "score",
            *(f"{name}_{c}" for name in joint_names for c in ("x", "y", "score"))]


def csv_row(person: Person, frame: int, time: float | None = None) -> list:
    """One person's CSV row under :func:`csv_header`."""
    stamp = "" if time is None else round(float(time), 4)
    track = "" if person.track_id is None else int(person.track_id)
    return [frame, stamp, track, *(round(float(v), 2) for v in person.box),
            round(float(person.score), 6),
            *(round(float(v), 3) for v in np.asarray(person.keypoints).reshape(-1))]


@dataclass
class Results:
    """The people found in one image, with array views over all of them.

    ``image``: the image they were found in (BGR uint8), for :meth:`plot`; ``frame`` and
    ``time``: its index and timestamp in a video (0 and None for a still image).
    """

    people: list[Person]
    keypoint_set: KeypointSet
    image: np.ndarray | None = field(default=None, repr=False)
    frame: int = 0
    time: float | None = None

    def __len__(self) -> int:
        return len(self.people)

    def __iter__(self) -> Iterator[Person]:
        return iter(self.people)

    def __getitem__(self, index: int) -> Person:
        return self.people[index]

    def __repr__(self) -> str:
        return (f"Results({len(self)} people, {self.keypoint_set.num_joints} key points "
                f"each, frame {self.frame})")

    @property
    def names(self) -> tuple[str, ...]:
        """The joint names, in the order of the key-point axis."""
        return tuple(self.keypoint_set.names)

    def _stack(self) -> np.ndarray:
        if not self.people:
            return np.zeros((0, self.keypoint_set.num_joints, 3), dtype=np.float32)
        return np.stack([np.asarray(p.keypoints, dtype=np.float32) for p in self.people])

    @property
    def keypoints(self) -> np.ndarray:
        """``(N, K, 2)`` x, y in image pixels."""
        return self._stack()[..., :2]

    @property
    def keypoint_scores(self) -> np.ndarray:
        """``(N, K)`` confidences."""
        return self._stack()[..., 2]

    @property
    def boxes(self) -> np.ndarray:
        """``(N, 4)`` person boxes as (x, y, w, h)."""
        return np.array([p.box for p in self.people], dtype=np.float32).reshape(-1, 4)

    @property
    def boxes_xyxy(self) -> np.ndarray:
        """``(N, 4)`` person boxes as (x1, y1, x2, y2)."""
        b = self.boxes
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    @property
    def scores(self) -> np.ndarray:
        """``(N,)`` person scores (box score × mean confident-joint score)."""
        return np.array([p.score for p in self.people], dtype=np.float32)

    @property
    def box_scores(self) -> np.ndarray:
        """``(N,)`` detection scores of the boxes."""
        return np.array([p.box_score for p in self.people], dtype=np.float32)

    @property
    def track_ids(self) -> np.ndarray:
        """``(N,)`` track ids (-1: not tracked)."""
        return np.array([-1 if p.track_id is None else p.track_id for p in self.people],
                        dtype=np.int64)

    def plot(self, threshold: float = 0.2, draw_boxes: bool = False,
             image: np.ndarray | None = None) -> np.ndarray:
        """A copy of the image (or of ``image``) with the people drawn, BGR uint8."""
        from humanpose.vis import draw_people

        base = image if image is not None else self.image
        if base is None:
            raise ValueError("Results.plot: these results carry no image; pass image=")
        return draw_people(np.array(base, copy=True), self.people, self.keypoint_set,
                           threshold=threshold, draw_boxes=draw_boxes)

    def to_records(self, image_id: int | None = None) -> list[dict]:
        """COCO results-format records (``humanpose infer``'s results.json entries)."""
        image_id = self.frame if image_id is None else image_id
        return [p.to_coco(image_id) for p in self.people]

    def to_json(self, image_id: int | None = None) -> str:
        """:meth:`to_records` as a JSON string."""
        return json.dumps(self.to_records(image_id))

    def to_csv(self, header: bool = True) -> str:
        """One row per person, the columns of ``humanpose infer --save-csv``."""
        out = io.StringIO()
        writer = csv.writer(out)
        if header:
            writer.writerow(csv_header(self.names))
        for person in self.people:
            writer.writerow(csv_row(person, self.frame, self.time))
        return out.getvalue()
