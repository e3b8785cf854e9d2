"""Person identities across video frames: each person keeps a ``track_id`` while in view.

A pose model run frame by frame returns anonymous people. :class:`PoseTracker` links each
frame's people to the people of the frames before: every track predicts where its box and
key points will be (constant velocity, so that two people crossing are told apart by where
they are heading), and a frame's people are matched to the predictions by a similarity
mixing OKS (key points, with the key-point set's sigmas) and box IoU, solved as one
assignment (Hungarian algorithm). Pairs below the gate are never matched; an unmatched
person confident enough starts a new track; an unmatched track coasts on its prediction
for up to ``max_age`` frames (a person hidden for a moment comes back with the same id).

The tracker also decides when the costly person detector must run (every ``detect_every``
frames, and at once when a track is lost or uncertain) and gives the boxes that place the
next frame's crops in between (:meth:`PoseTracker.predicted_boxes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from humanpose.evaluation.nms import check_sigmas
from humanpose.evaluation.tracking import box_iou
from humanpose.inference.detector import Detections

__all__ = ["PoseTracker", "Track", "box_iou", "clip_boxes", "follow_people", "keypoint_boxes",
           "mean_confidence", "oks_matrix", "smooth_people"]


def keypoint_boxes(keypoints: np.ndarray, min_confidence: float = 0.2, min_points: int = 3,
                   expand: float = 1.15) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x, y, w, h) around the confident key points of each person ``(N, K, 3)``,
    grown by ``expand`` about their centre (key points lie inside a person, a detector's box
    goes around them); and a mask of the people with at least ``min_points`` such points.
    (The crops placed between detections in a video.)"""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.size == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=bool)
    confident = keypoints[..., 2] >= min_confidence
    valid = confident.sum(axis=1) >= min_points
    big = np.where(confident, 0.0, np.inf)
    x0 = np.min(keypoints[..., 0] + big, axis=1)
    y0 = np.min(keypoints[..., 1] + big, axis=1)
    x1 = np.max(keypoints[..., 0] - big, axis=1)
    y1 = np.max(keypoints[..., 1] - big, axis=1)
    with np.errstate(invalid="ignore"):
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w, h = (x1 - x0) * expand, (y1 - y0) * expand
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    boxes[~valid] = 0.0
    return boxes, valid


def mean_confidence(keypoints: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """Mean confidence of each person's visible key points (those at or above
    ``threshold``), 0 for a person with none: how sure the pose model is of a person, not
    diluted by joints that are simply out of sight."""
    conf = np.asarray(keypoints, dtype=np.float64)[..., 2]
    visible = conf >= threshold
    count = visible.sum(axis=-1)
    total = np.where(visible, conf, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def oks_matrix(a: np.ndarray, b: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
               threshold: float = 0.2) -> np.ndarray:
    """OKS of every person of ``a`` ``(N, K, 3)`` with every person of ``b`` ``(M, K, 3)``,
    over the joints confident (>= ``threshold``) in both; ``areas`` ``(N,)`` are the scales
    of ``a``'s people (COCO's object area) and ``sigmas`` pycocotools' per-joint values. A
    pair without a joint in common scores 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    var = (2 * sigmas) ** 2  # (K,)
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, K)
    e = d2 / (var[None, None] * np.maximum(areas, 1.0)[:, None, None] * 2)
    both = (a[:, None, :, 2] >= threshold) & (b[None, :, :, 2] >= threshold)
    count = both.sum(-1)
    total = np.where(both, np.exp(-e), 0.0).sum(-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


@dataclass
class Track:
    """One followed person at the last frame it was seen: ``box`` (x, y, w, h) around the
    joints it remembers, ``keypoints`` ``(K, 3)`` as observed, ``memory`` ``(K, 3)``: every joint
    seen so far at its latest position (joints out of sight move with the person), and
    ``velocity``: the person's displacement per frame (x, y)."""

    track_id: int
    box: np.ndarray
    keypoints: np.ndarray
    memory: np.ndarray
    score: float
    confidence: float
    last_frame: int
    velocity: np.ndarray
    hits: int = 1

    def predict(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Box and remembered key points expected at ``frame`` (constant velocity)."""
        shift = self.velocity * (frame - self.last_frame)
        box = self.box.copy()
        box[:2] += shift
        memory = self.memory.copy()
        memory[:, :2] += shift
        return box, memory


class PoseTracker:
    """Track ids for the people of consecutive frames (see the module docstring).

    One call of :meth:`update` per frame, in order, with that frame's people (key points
    ``(N, K, 3)`` in image pixels, and their boxes/scores when known); it returns each
    person's track id (``-1``: not followed, too unsure to start a track). Between calls,
    :meth:`needs_detection` says whether the next frame needs the detector and
    :meth:`predicted_boxes` gives the crops otherwise.

    ``sigmas``: per-joint OKS sigmas at pycocotools' scale (0.026 for the COCO nose; use
    ``humanpose.evaluation.nms.oks_sigmas(keypoint_set)``), COCO's when None.
    ``oks_weight``: share of OKS in the similarity (the rest is box IoU).
    ``min_similarity``: the gate; a person and a track less similar are never matched.
    ``start_confidence``: mean visible key-point confidence needed to start a track;
    ``keep_confidence``: needed to continue one (a crop with nobody left in it gives a
    low-confidence "person" that must not keep the track alive).
    ``uncertain_confidence``: a matched track below this asks for the detector.
    ``max_age``: frames a track is remembered without being seen.
    ``detect_every``: the detector runs at least every that many frames (0: only when
    tracks are lost or there are none).
    ``velocity_smoothing``: weight of the newest displacement in the velocity estimate.
    ``oks_scale``: the OKS object area as a share of the predicted box's area (1: more
    tolerant than COCO's ~0.4, as limbs swing while a person is out of sight).
    ``duplicate_oks``: a person this similar to a more confident one of the same frame is
    a copy (two crops on one person) and is dropped.
    """

    def __init__(self, sigmas: Sequence[float] | np.ndarray | None = None, *,
                 oks_weight: float = 0.5, min_similarity: float = 0.2,
                 keypoint_threshold: float = 0.2, start_confidence: float = 0.4,
                 keep_confidence: float = 0.25, uncertain_confidence: float = 0.35,
                 max_age: int = 10, detect_every: int = 5, min_points: int = 3,
                 expand: float = 1.15, velocity_smoothing: float = 0.3,
                 oks_scale: float = 1.0, duplicate_oks: float = 0.8):
        if not 0.0 <= oks_weight <= 1.0:
            raise ValueError(f"oks_weight must be in [0, 1], got {oks_weight}")
        if max_age < 0 or detect_every < 0:
            raise ValueError(f"max_age and detect_every must be >= 0, got {max_age}, "
                             f"{detect_every}")
        self._sigmas_arg = sigmas
        self.sigmas: np.ndarray | None = None  # checked on the first frame (K known then)
        self.oks_weight = oks_weight
        self.oks_scale = oks_scale
        self.duplicate_oks = duplicate_oks
        self.min_similarity = min_similarity
        self.keypoint_threshold = keypoint_threshold
        self.start_confidence = start_confidence
        self.keep_confidence = keep_confidence
        self.uncertain_confidence = uncertain_confidence
        self.max_age = max_age
        self.detect_every = detect_every
        self.min_points = min_points
        self.expand = expand
        self.velocity_smoothing = velocity_smoothing
        self.reset()

    def reset(self) -> None:
        """Forget every track (e.g. at a scene cut); ids keep counting up."""
        self.tracks: list[Track] = []
        self.frame = -1  # index of the last frame given to update()
        self._since_detection: int | None = None
        self._uncertain = False
        if not hasattr(self, "_next_id"):
            self._next_id = 1

    # ------------------------------------------------------------------ queries
    @property
    def active(self) -> list[Track]:
        """Tracks seen in the last frame."""
        return [t for t in self.tracks if t.last_frame == self.frame]

    @property
    def lost(self) -> list[Track]:
        """Tracks not seen in the last frame but still remembered (``max_age``)."""
        return [t for t in self.tracks if t.last_frame < self.frame]

    def needs_detection(self) -> bool:
        """Whether the next frame should get the detector's boxes: no track yet, a track
        lost or uncertain in the last frame, or ``detect_every`` frames since the last
        detection."""
        if self._since_detection is None or not self.active or self.lost or self._uncertain:
            return True
        return self.detect_every > 0 and self._since_detection >= self.detect_every

    def predicted_boxes(self, frame: int | None = None, include_lost: bool = False
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the followed people should be in ``frame`` (the next one by default):
        their track ids ``(M,)``, boxes ``(M, 4)`` (x, y, w, h) to crop, and scores ``(M,)``
        (the box score they were last seen with). Lost tracks only with ``include_lost``
        (their crop usually shows whatever hides them)."""
        frame = self.frame + 1 if frame is None else frame
        tracks = self.tracks if include_lost else self.active
        if not tracks:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros(0)
        boxes = np.stack([t.predict(frame)[0] for t in tracks])
        return (np.array([t.track_id for t in tracks], dtype=np.int64), boxes,
                np.array([t.score for t in tracks]))

    # ------------------------------------------------------------------ update
    def update(self, keypoints: np.ndarray | Sequence[np.ndarray],
               boxes: np.ndarray | None = None, scores: np.ndarray | None = None,
               detected: bool = False, frame: int | None = None) -> np.ndarray:
        """Link this frame's people to the tracks; returns their track ids ``(N,)``
        (``-1`` for people not followed).

        ``keypoints``: ``(N, K, 3)`` (x, y, confidence). ``boxes``: ``(N, 4)`` (x, y, w, h),
        used for people with fewer than ``min_points`` confident key points (a track's box
        is otherwise the box around its key points, so that crops follow the person and not
        the crop they came from). ``scores``: their box scores. ``detected``: the boxes came
        from the detector in this frame (restarts the ``detect_every`` count). ``frame``: the
        frame index, to tell the tracker about skipped frames (default: the next one).
        """
        kpts = np.asarray(keypoints, dtype=np.float64)
        if kpts.size == 0:
            kpts = kpts.reshape(0, kpts.shape[-2] if kpts.ndim == 3 else 0, 3)
        n = len(kpts)
        if n and self.sigmas is None:
            self.sigmas = check_sigmas(None if self._sigmas_arg is None
                                       else np.asarray(self._sigmas_arg), kpts.shape[1])
        self.frame = self.frame + 1 if frame is None else int(frame)
        if detected:
            self._since_detection = 1
        elif self._since_detection is not None:
            self._since_detection += 1
        self.tracks = [t for t in self.tracks if self.frame - t.last_frame <= self.max_age]

        kp_boxes, valid = keypoint_boxes(kpts, self.keypoint_threshold, self.min_points,
                                         self.expand)
        given = (np.zeros((n, 4)) if boxes is None
                 else np.asarray(boxes, dtype=np.float64).reshape(n, 4))
        person_boxes = np.where(valid[:, None], kp_boxes, given)
        person_scores = (np.ones(n) if scores is None
                         else np.asarray(scores, dtype=np.float64).reshape(n))
        conf = mean_confidence(kpts, self.keypoint_threshold) if n else np.zeros(0)
        usable = (conf >= self.keep_confidence) & ~self._duplicates(kpts, person_boxes, conf)

        ids = np.full(n, -1, dtype=np.int64)
        matched_tracks: set[int] = set()
        if self.tracks and usable.any():
            cand = np.flatnonzero(usable)
            sim = self.similarity(kpts[cand], person_boxes[cand])
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] < self.min_similarity:
                    continue
                person = cand[c]
                self._advance(self.tracks[r], person_boxes[person], kpts[person],
                              person_scores[person], conf[person])
                ids[person] = self.tracks[r].track_id
                matched_tracks.add(r)
        self._uncertain = any(self.tracks[r].confidence < self.uncertain_confidence
                              for r in matched_tracks)
        # People left over start tracks, unless they sit on a person already followed.
        taken = [self.tracks[r].box for r in matched_tracks]
        for person in np.flatnonzero((ids < 0) & usable & (conf >= self.start_confidence)):
            if person_boxes[person][2] <= 0 or person_boxes[person][3] <= 0:
                continue
            if taken and box_iou(person_boxes[person], np.stack(taken)).max() > 0.7:
                continue  # a duplicate of someone matched (two crops on one person)
            memory = kpts[person].copy()
            memory[memory[:, 2] < self.keypoint_threshold, 2] = 0.0
            track = Track(self._next_id, self._figure_box(memory, person_boxes[person]),
                          kpts[person].copy(),
                          memory, float(person_scores[person]), float(conf[person]),
                          self.frame, np.zeros(2))
            self._next_id += 1
            self.tracks.append(track)
            taken.append(track.box)
            ids[person] = track.track_id
        return ids

    def update_people(self, people: Sequence, detected: bool = False,
                      frame: int | None = None) -> np.ndarray:
        """:meth:`update` with :class:`~humanpose.inference.estimator.Person` objects
        (their ``keypoints``, ``box`` and ``box_score``); returns ids aligned with them."""
        if not people:
            return self.update(np.zeros((0, 0, 3)), detected=detected, frame=frame)
        return self.update(np.stack([p.keypoints for p in people]),
                           np.array([p.box for p in people], dtype=np.float64),
                           np.array([p.box_score for p in people], dtype=np.float64),
                           detected=detected, frame=frame)

    def similarity(self, keypoints: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Similarity ``(tracks, people)`` of the remembered tracks' predictions for the
        current frame with these people: ``oks_weight`` x OKS + (1 - ``oks_weight``) x IoU."""
        predicted = [t.predict(self.frame) for t in self.tracks]
        pboxes = np.stack([p[0] for p in predicted])
        pkpts = np.stack([p[1] for p in predicted])
        iou = box_iou(pboxes, boxes)
        # The key-point box is ``expand`` x the person: COCO's area is about 0.53 x the box.
        areas = pboxes[:, 2] * pboxes[:, 3] * self.oks_scale
        oks = oks_matrix(pkpts, keypoints, areas, self.sigmas, self.keypoint_threshold)
        return self.oks_weight * oks + (1.0 - self.oks_weight) * iou

    def _duplicates(self, keypoints: np.ndarray, boxes: np.ndarray, conf: np.ndarray
                    ) -> np.ndarray:
        """People that repeat a more confident person of the same frame (OKS above
        ``duplicate_oks``): two crops on one person (one person's crop drifting onto a
        neighbour) give the same key points twice, and the copy must not start a track."""
        n = len(keypoints)
        drop = np.zeros(n, dtype=bool)
        if n < 2:
            return drop
        areas = np.maximum(boxes[:, 2] * boxes[:, 3] * self.oks_scale, 1.0)
        oks = oks_matrix(keypoints, keypoints, areas, self.sigmas, self.keypoint_threshold)
        for i in np.argsort(-conf, kind="stable"):
            if not drop[i]:
                later = oks[i] > self.duplicate_oks
                later[i] = False
                drop |= later & (conf <= conf[i])
        return drop

    def _figure_box(self, memory: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """The box around all the joints a track remembers: the whole person, parts hidden
        now included, so that a crop placed there still holds the person."""
        box, valid = keypoint_boxes(memory[None], self.keypoint_threshold, self.min_points,
                                    self.expand)
        return box[0] if valid[0] else np.asarray(fallback, dtype=np.float64).copy()

    def _advance(self, track: Track, box: np.ndarray, keypoints: np.ndarray, score: float,
                 confidence: float) -> None:
        """Move ``track`` to this frame's observation and update its velocity: the median
        displacement of the joints seen in both frames (a person half hidden by a pillar
        changes its box, not its joints' motion), else the box centre's."""
        gap = max(self.frame - track.last_frame, 1)
        seen = keypoints[:, 2] >= self.keypoint_threshold
        both = seen & (track.memory[:, 2] >= self.keypoint_threshold)
        if both.sum() >= 2:
            step = np.median(keypoints[both, :2] - track.memory[both, :2], axis=0) / gap
        else:
            step = (box[:2] + box[2:] / 2 - track.box[:2] - track.box[2:] / 2) / gap
        a = self.velocity_smoothing if track.hits > 1 else 1.0
        track.velocity = (1 - a) * track.velocity + a * step
        memory = track.memory.copy()
        memory[~seen, :2] += track.velocity * gap
        memory[seen] = keypoints[seen]
        track.memory = memory
        track.box = self._figure_box(memory, box)
        track.keypoints = keypoints.copy()
        track.score = float(score)
        track.confidence = float(confidence)
        track.last_frame = self.frame
        track.hits += 1


# ----------------------------------------------------------------------------- the video loop
def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes (x, y, w, h) cut to the image; the crop's padding still reaches outside where
    needed."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


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
    and ``tracking``.
    """
    clock = time.perf_counter
    t0 = clock()
    index = tracker.frame + 1 if frame is None else int(frame)
    if given is not None and len(given):
        found, detected = given, True
    elif given is None and tracker.needs_detection():
        found, detected = detect(), True
    else:
        h, w = image.shape[:2]
        _, boxes, scores = tracker.predicted_boxes(index)
        boxes = clip_boxes(boxes, w, h)
        keep = (boxes[:, 2] >= 2) & (boxes[:, 3] >= 2)  # people who left the picture
        found, detected = Detections(boxes[keep], scores[keep]), False
    t1 = clock()
    people = list(estimate(image, found.boxes, found.scores)) if len(found) else []
    t2 = clock()
    ids = tracker.update_people(people, detected=detected, frame=index)
    for person, track_id in zip(people, ids.tolist()):
        person.track_id = int(track_id)
    if times is not None:
        times.update(detection=t1 - t0, pose=t2 - t1, tracking=clock() - t2)
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
