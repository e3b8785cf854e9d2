"""One video frame through detector, pose model and tracker, and the smoothing after it:
the frame loop shared by ``humanpose infer --track``, :meth:`TopDown.track` and the
benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from humanpose.inference.detector import Detections

if TYPE_CHECKING:
    from humanpose.inference.tracking import PoseTracker

__all__ = ["clip_boxes", "follow_one_stage", "follow_people", "smooth_people"]

def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes (x, y, w, h) cut to the image; the crop's padding still reaches outside where
    needed."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


def _tracked(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray
             ) -> tuple[Detections, np.ndarray]:
    """Boxes placed by the tracker, cut to the picture, without those of people who left
    it; and which of the boxes asked for remain."""
    h, w = image.shape[:2]
    boxes = clip_boxes(boxes, w, h)
    keep = (boxes[:, 2] >= 2) & (boxes[:, 3] >= 2)
    return Detections(boxes[keep], np.asarray(scores)[keep]), keep


def follow_people(tracker: PoseTracker, estimate: Callable, image: np.ndarray,
                  detect: Callable[[], Detections], given: Detections | None = None,
                  frame: int | None = None, times: dict[str, float] | None = None) -> list:
    """One video frame through detector (when due), pose model and tracker; returns the
    people, each with its ``track_id`` set (-1: not followed).

    ``estimate(image, boxes, scores)`` gives the people of the boxes (a
    :class:`~humanpose.inference.PoseEstimator`); ``detect()`` this frame's detections,
    called only when :meth:`PoseTracker.needs_detection` says so. ``given``: boxes known for
    this frame (a detections file): used when it has any, else the tracked boxes (a frame
    the file skips is tracked on). ``times`` receives the seconds of ``detection``, ``pose``
    and ``tracking``. A person followed by its box alone whose crop gave another person's
    joints (two people crossing) keeps its box and id, its key points at confidence 0.
    """
    clock = time.perf_counter
    t0 = clock()
    index = tracker.frame + 1 if frame is None else int(frame)
    if given is not None and len(given):
        found, detected = given, True
    elif given is None and tracker.needs_detection():
        found, detected = detect(), True
    else:
        found, detected = _tracked(image, *tracker.predicted_boxes(index)[1:])[0], False
    t1 = clock()
    people = list(estimate(image, found.boxes, found.scores)) if len(found) else []
    t2 = clock()
    ids = tracker.update_people(people, detected=detected, frame=index, image=image)
    borrowed = tracker.box_only & tracker.copies
    for person, track_id, copy, foreign in zip(people, ids.tolist(), borrowed.tolist(),
                                               tracker.foreign_box.tolist()):
        person.track_id = int(track_id)
        if copy:  # followed by its box; the joints found in its crop are another person's
            person.keypoints = np.array(person.keypoints, dtype=np.float32)
            person.keypoints[:, 2] = 0.0
        if foreign and track_id >= 0:  # e.g. a box around two people is neither one's box
            person.box = tuple(float(v) for v in tracker.box_of(int(track_id)))
    if detected:  # people the detector missed this time: crops where they should be
        # A box around two people does not find the second one: it may be missed.
        own = found.boxes[~tracker.merged] if len(tracker.merged) == len(found) \
            else found.boxes
        missed_ids, boxes, scores = tracker.missed_boxes(own)
        missed, keep = _tracked(image, boxes, scores)
        if len(missed):
            t3 = clock()
            extra = list(estimate(image, missed.boxes, missed.scores))
            t2 += clock() - t3  # pose time, not tracking time
            kept = tracker.follow_missed(missed_ids[keep],
                                         np.stack([p.keypoints for p in extra]),
                                         missed.boxes, image)
            for person, track_id in zip(extra, kept.tolist()):
                if track_id >= 0:
                    person.track_id = int(track_id)
                    people.append(person)
    if times is not None:
        times.update(detection=t1 - t0, pose=t2 - t1, tracking=clock() - t2)
    return people


def follow_one_stage(tracker: PoseTracker, people: list, image: np.ndarray | None = None,
                     frame: int | None = None) -> list:
    """One frame of a one-stage model's ``people`` through the tracker (every frame is a
    detection: the boxes are the model's); returns them with ``track_id`` set (-1: not
    followed)."""
    ids = tracker.update_people(people, detected=True, frame=frame, image=image)
    for person, track_id in zip(people, ids.tolist()):
        person.track_id = int(track_id)
    return people


def smooth_people(smoother: Callable, people: Sequence, timestamp: float | None) -> None:
    """Key points of the followed people (``track_id`` >= 0) through ``smoother`` (a
    :class:`~humanpose.inference.smoothing.KeypointSmoother`), in place."""
    if not people:
        smoother([], np.zeros((0, 0, 3)), timestamp)
        return
    ids = np.array([-1 if p.track_id is None else p.track_id for p in people])
    smoothed = smoother(ids, np.stack([p.keypoints for p in people]), timestamp)
    for person, track_id, keypoints in zip(people, ids, smoothed):
        if track_id >= 0:
            person.keypoints = keypoints.astype(np.float32)
