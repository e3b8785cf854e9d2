"""Person identities across video frames: each person keeps a ``track_id`` while in view.

A pose model run frame by frame returns anonymous people. :class:`PoseTracker` links each
frame's people to the people of the frames before: every track predicts where its box and
key points will be (constant velocity, so that two people crossing are told apart by where
they are heading), and a frame's people are matched to the predictions by a similarity
mixing OKS (key points, with the key-point set's sigmas) and box IoU, solved as one
assignment (Hungarian algorithm). Pairs below the gate are never matched; an unmatched
person confident enough starts a new track; an unmatched track coasts on its prediction
for up to ``max_age`` frames (a person hidden for a moment comes back with the same id).

Boxes carry identity where joints cannot: a track's box is the detector's last box for the
person, moved with the joints in between. Where two people overlap, a crop shows both and
the pose model may give the same joints for both crops; such tracks ("crowded") are matched
by box alone and keep their velocity, and a track whose crop gave a copy of its neighbour
is followed by its box (``box_only``) until the people part. On a detector's frame, tracks
left over take the boxes left over that overlap their prediction or lie near it (a person
coming out from behind a pillar).

The tracker also decides when the costly person detector must run (every ``detect_every``
frames, and at once when a track is lost or uncertain) and gives the boxes that place the
next frame's crops in between (:meth:`PoseTracker.predicted_boxes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from humanpose.evaluation.nms import check_sigmas
from humanpose.evaluation.tracking import box_iou
from humanpose.inference.detector import Detections
from humanpose.runtime.assignment import linear_sum_assignment

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


def _covered(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each box of ``a`` ``(N, 4)`` (x, y, w, h) inside each box of ``b`` ``(M, 4)``:
    ``(N, M)``."""
    ax0, ay0, ax1, ay1 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(ax0[:, None], bx0[None]), 0, None)
    h = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(ay0[:, None], by0[None]), 0, None)
    return w * h / np.maximum(a[:, 2] * a[:, 3], 1e-9)[:, None]


@dataclass
class Track:
    """One followed person at the last frame it was seen: ``box`` (x, y, w, h) where it is,
    ``keypoints`` ``(K, 3)`` as observed, ``memory`` ``(K, 3)``: every joint
    seen so far at its latest position (joints out of sight move with the person), and
    ``velocity``: the person's displacement per frame (x, y). ``detector_box``: ``box`` is
    the detector's last box for the person, moved with the joints since (else the box
    around the joints)."""

    track_id: int
    box: np.ndarray
    keypoints: np.ndarray
    memory: np.ndarray
    score: float
    confidence: float
    last_frame: int
    velocity: np.ndarray
    hits: int = 1
    detector_box: bool = False

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
    ``max_age``: frames a track is remembered without being seen (30: 1.2 s at 25 frames/s,
    as long as two walking people take to cross).
    ``search_frames``: a lost track asks for the detector on every frame this long (for
    all of ``max_age`` when ``detect_every`` is 0).
    ``detect_every``: the detector runs at least every that many frames (0: only when
    tracks are lost or there are none).
    ``velocity_smoothing``: weight of the newest displacement in the velocity estimate.
    ``oks_scale``: the OKS object area as a share of the predicted box's area (1: more
    tolerant than COCO's ~0.4, as limbs swing while a person is out of sight).
    ``duplicate_oks``: a person this similar to a more confident one of the same frame is
    a copy (two crops on one person) and is dropped.
    ``min_box_iou``: on a detector's frame, a track its people did not match takes a
    detector box left over that overlaps its predicted box this much (box only).
    ``crowd_overlap``: a track whose predicted box is covered this much by another's is
    crowded (matched by box, velocity kept).
    ``lost_reach``: a box left over whose centre lies within this share of the person's
    height from a left-over track's prediction is that person (0: off); the share grows
    by a tenth for every frame the track was not seen, up to 1.5x, for 10 frames.

    After each :meth:`update`, ``copies`` marks the people whose key points repeat another
    person's, and ``box_only`` those followed by their detector box alone.
    """

    def __init__(self, sigmas: Sequence[float] | np.ndarray | None = None, *,
                 oks_weight: float = 0.5, min_similarity: float = 0.2,
                 keypoint_threshold: float = 0.2, start_confidence: float = 0.4,
                 keep_confidence: float = 0.25, uncertain_confidence: float = 0.35,
                 max_age: int = 30, search_frames: int = 5, detect_every: int = 5,
                 min_points: int = 3,
                 expand: float = 1.15, velocity_smoothing: float = 0.3,
                 oks_scale: float = 1.0, duplicate_oks: float = 0.8,
                 min_box_iou: float = 0.3, crowd_overlap: float = 0.3,
                 lost_reach: float = 0.5):
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
        self.min_box_iou = min_box_iou
        self.crowd_overlap = crowd_overlap
        self.lost_reach = lost_reach
        self.min_similarity = min_similarity
        self.keypoint_threshold = keypoint_threshold
        self.start_confidence = start_confidence
        self.keep_confidence = keep_confidence
        self.uncertain_confidence = uncertain_confidence
        self.max_age = max_age
        self.search_frames = search_frames
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
        self.copies = np.zeros(0, dtype=bool)
        self.box_only = np.zeros(0, dtype=bool)
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
        uncertain in the last frame or lost in the last ``search_frames`` frames (looked
        for at once; one hidden longer is looked for on the regular schedule), or
        ``detect_every`` frames since the last detection."""
        if self._since_detection is None or not self.active or self._uncertain:
            return True
        # Without a schedule (detect_every 0) the lost are looked for while remembered.
        window = self.search_frames if self.detect_every > 0 else self.max_age
        if any(self.frame - t.last_frame <= window for t in self.lost):
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
        the boxes the people were cropped from (the detector's, or this tracker's
        :meth:`predicted_boxes`); without them people are matched by the box around their
        joints. ``scores``: their box scores. ``detected``: the boxes came from the detector
        in this frame (restarts the ``detect_every`` count; tracks take these boxes). ``frame``:
        the frame index, to tell the tracker about skipped frames (default: the next one).
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
        # People are matched by the boxes they were cropped from when known: a detector's
        # box does not blend two crossing people the way a crop's joints can, and a
        # tracked frame's crop is the box its track predicted. Without boxes (key points
        # from elsewhere), by the box around the joints.
        from_detector = detected and boxes is not None
        person_boxes = np.where(valid[:, None], kp_boxes, given) if boxes is None else given
        person_scores = (np.ones(n) if scores is None
                         else np.asarray(scores, dtype=np.float64).reshape(n))
        conf = mean_confidence(kpts, self.keypoint_threshold) if n else np.zeros(0)
        # Of two copies, the one kept is the one whose joints fit the box it was cropped
        # from (the person the crop is really on); without boxes, the more confident.
        fit = conf if boxes is None else box_iou(kp_boxes, given).diagonal() * valid
        self.copies = self._duplicates(kpts, person_boxes, fit)
        usable = (conf >= self.keep_confidence) & ~self.copies

        ids = np.full(n, -1, dtype=np.int64)
        matched_tracks: set[int] = set()
        predicted = (np.stack([t.predict(self.frame)[0] for t in self.tracks]) if self.tracks
                     else np.zeros((0, 4)))
        crowded, in_front = self._crowding(predicted)
        if self.tracks and usable.any():
            cand = np.flatnonzero(usable)
            sim = self.similarity(kpts[cand], person_boxes[cand])
            if crowded.any() and boxes is not None:
                # Crops on overlapping people show both: their joints may blend, their
                # boxes do not (between detections, a crowded track's crop is its own).
                # Of people overlapping, the one whose feet are lowest in the picture is
                # in front, and the one a box around both of them shows.
                sim[crowded] = box_iou(predicted[crowded], person_boxes[cand])
                sim[crowded & in_front] += 0.1
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] < self.min_similarity:
                    continue
                person = cand[c]
                self._advance(self.tracks[r], person_boxes[person], kpts[person],
                              person_scores[person], conf[person],
                              given[person] if from_detector else None, crowded[r])
                ids[person] = self.tracks[r].track_id
                matched_tracks.add(r)
        self._uncertain = any(self.tracks[r].confidence < self.uncertain_confidence
                              for r in matched_tracks)
        self.box_only = np.zeros(n, dtype=bool)
        if from_detector:
            self._match_boxes(given, person_scores, ids, matched_tracks, predicted)
        elif boxes is not None and crowded.any():
            # Between detections, a crowded track whose crop gave a copy of its neighbour
            # goes on with its crop (its predicted box) rather than being lost.
            self._match_boxes(given, person_scores, ids, matched_tracks, predicted,
                              people=self.copies, tracks=crowded)
        # People left over start tracks, unless they sit on a person already followed.
        taken = [self.tracks[r].box for r in matched_tracks]
        for person in np.flatnonzero((ids < 0) & usable & (conf >= self.start_confidence)):
            if person_boxes[person][2] <= 0 or person_boxes[person][3] <= 0:
                continue
            if taken and box_iou(person_boxes[person], np.stack(taken)).max() > 0.7:
                continue  # a duplicate of someone matched (two crops on one person)
            memory = kpts[person].copy()
            memory[memory[:, 2] < self.keypoint_threshold, 2] = 0.0
            box = (given[person].copy() if from_detector
                   else self._figure_box(memory, person_boxes[person]))
            track = Track(self._next_id, box, kpts[person].copy(), memory,
                          float(person_scores[person]), float(conf[person]), self.frame,
                          np.zeros(2), detector_box=from_detector)
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

    def _duplicates(self, keypoints: np.ndarray, boxes: np.ndarray, rank: np.ndarray
                    ) -> np.ndarray:
        """People that repeat a person of the same frame ranked higher by ``rank`` (OKS
        above ``duplicate_oks``): two crops on one person (one person's crop drifting onto
        a neighbour) give the same key points twice, and the copy must not start a track."""
        n = len(keypoints)
        drop = np.zeros(n, dtype=bool)
        if n < 2:
            return drop
        areas = np.maximum(boxes[:, 2] * boxes[:, 3] * self.oks_scale, 1.0)
        oks = oks_matrix(keypoints, keypoints, areas, self.sigmas, self.keypoint_threshold)
        for i in np.argsort(-rank, kind="stable"):
            if not drop[i]:
                later = oks[i] > self.duplicate_oks
                later[i] = False
                drop |= later & (rank <= rank[i])
        return drop

    def _figure_box(self, memory: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """The box around all the joints a track remembers: the whole person, parts hidden
        now included, so that a crop placed there still holds the person."""
        box, valid = keypoint_boxes(memory[None], self.keypoint_threshold, self.min_points,
                                    self.expand)
        return box[0] if valid[0] else np.asarray(fallback, dtype=np.float64).copy()

    def _match_boxes(self, boxes: np.ndarray, scores: np.ndarray, ids: np.ndarray,
                     matched_tracks: set[int], predicted: np.ndarray,
                     people: np.ndarray | None = None, tracks: np.ndarray | None = None
                     ) -> None:
        """Tracks not matched by their people take the boxes left over (box IoU with the
        prediction >= ``min_box_iou``): on a detector's frame, a person half hidden behind
        another is still boxed by the detector even where the pose model, cropping there,
        finds the person in front. The track keeps its id and motion; ``ids`` and
        ``matched_tracks`` are filled in place, ``box_only`` marks the people.
        ``predicted``: every track's predicted box in this frame (the tracks left over have
        not moved since). ``people`` and ``tracks``: masks of those that may take part
        (default: all)."""
        left_tracks = [r for r in range(len(self.tracks)) if r not in matched_tracks
                       and (tracks is None or tracks[r])]
        left_people = np.flatnonzero((ids < 0) & (True if people is None else people))
        if not left_tracks or not len(left_people):
            return
        predicted = predicted[left_tracks]
        # A person coming out from behind something is boxed by a sliver at first: a box
        # mostly inside the prediction counts as well as a box overlapping it.
        iou = np.maximum(box_iou(predicted, boxes[left_people]),
                         _covered(boxes[left_people], predicted).T - 0.5)
        # A person coming out from behind a pillar may show up on its far side, where a
        # prediction from joints guessed behind it does not reach: a box left over within
        # ``lost_reach`` x the person's height of the prediction passes the gate (last);
        # the reach grows by a tenth for every frame the person was not seen, up to 1.5x,
        # and ends after 10 such frames (a prediction that old says little).
        shift = (boxes[left_people, None, :2] + boxes[left_people, None, 2:] / 2
                 - predicted[None, :, :2] - predicted[None, :, 2:] / 2)
        unseen = np.array([self.frame - self.tracks[r].last_frame - 1 for r in left_tracks])
        reach = (self.lost_reach * np.minimum(1.0 + 0.1 * unseen, 1.5)[None, :]
                 * np.maximum(predicted[None, :, 3], boxes[left_people, None, 3]))
        near = (np.hypot(shift[..., 0], shift[..., 1]) < reach).T & (unseen <= 10)[:, None]
        iou = np.maximum(iou, np.where(near, self.min_box_iou, 0.0))
        for r, c in zip(*linear_sum_assignment(-iou)):
            if iou[r, c] < self.min_box_iou:
                continue
            track, person = self.tracks[left_tracks[r]], left_people[c]
            gap = max(self.frame - track.last_frame, 1)
            # The joints remembered may lie off the new box (the person moved while out of
            # sight): kept for their shape, not trusted for the next motion step.
            track.memory = track.memory.copy()
            track.memory[:, :2] += track.velocity * gap
            track.memory[:, 2] = 0.0
            track.box = boxes[person].copy()
            track.detector_box = True
            track.score = float(scores[person])
            track.last_frame = self.frame
            track.hits += 1
            ids[person] = track.track_id
            matched_tracks.add(left_tracks[r])
            self.box_only[person] = True

    def _crowding(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the tracks' ``predicted`` boxes in this frame: which are crowded (covered by
        another track's box by more than ``crowd_overlap`` of their area: people crossing
        or passing behind one another, whose crops show both), and which are in front
        (reaching lower in the picture than every track overlapping them that much either
        way: nearer the camera)."""
        if len(predicted) < 2:
            return np.zeros(len(predicted), dtype=bool), np.ones(len(predicted), dtype=bool)
        covered = _covered(predicted, predicted)
        np.fill_diagonal(covered, 0.0)
        crowded = covered.max(axis=1) > self.crowd_overlap
        overlap = np.maximum(covered, covered.T) > self.crowd_overlap
        bottom = predicted[:, 1] + predicted[:, 3]
        in_front = ~(overlap & (bottom[None, :] > bottom[:, None])).any(axis=1)
        return crowded, in_front

    def _advance(self, track: Track, box: np.ndarray, keypoints: np.ndarray, score: float,
                 confidence: float, detector_box: np.ndarray | None = None,
                 crowded: bool = False) -> None:
        """Move ``track`` to this frame's observation and update its velocity: the median
        displacement of the joints seen in both frames (a person half hidden by a pillar
        changes its box, not its joints' motion), else the box centre's. The track's box
        becomes ``detector_box`` when given; a track boxed by the detector before moves its
        box with the joints (the joints of a crop on two people would stretch it); else the
        box goes around the joints."""
        gap = max(self.frame - track.last_frame, 1)
        seen = keypoints[:, 2] >= self.keypoint_threshold
        memory = track.memory.copy()
        if crowded and track.hits > 1:
            # A crop on two people: the joints may be the other person's. The track goes
            # on at its velocity (the detector's box corrects where it is).
            step = track.velocity
            memory[:, :2] += step * gap
        else:
            both = seen & (track.memory[:, 2] >= self.keypoint_threshold)
            if both.sum() >= 2:
                step = np.median(keypoints[both, :2] - track.memory[both, :2], axis=0) / gap
            elif track.detector_box and detector_box is None:
                step = track.velocity  # joints' box and detector's box are not comparable
            else:
                step = (box[:2] + box[2:] / 2 - track.box[:2] - track.box[2:] / 2) / gap
            a = self.velocity_smoothing if track.hits > 1 else 1.0
            track.velocity = (1 - a) * track.velocity + a * step
            memory[~seen, :2] += track.velocity * gap
            memory[seen] = keypoints[seen]
        track.memory = memory
        if detector_box is not None:
            track.box = np.asarray(detector_box, dtype=np.float64).copy()
            track.detector_box = True
        elif track.detector_box:
            track.box = track.box.copy()
            track.box[:2] += step * gap
        else:
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
        h, w = image.shape[:2]
        _, boxes, scores = tracker.predicted_boxes(index)
        boxes = clip_boxes(boxes, w, h)
        keep = (boxes[:, 2] >= 2) & (boxes[:, 3] >= 2)  # people who left the picture
        found, detected = Detections(boxes[keep], scores[keep]), False
    t1 = clock()
    people = list(estimate(image, found.boxes, found.scores)) if len(found) else []
    t2 = clock()
    ids = tracker.update_people(people, detected=detected, frame=index)
    borrowed = tracker.box_only & tracker.copies
    for person, track_id, copy in zip(people, ids.tolist(), borrowed.tolist()):
        person.track_id = int(track_id)
        if copy:  # followed by its box; the joints found in its crop are another person's
            person.keypoints = np.array(person.keypoints, dtype=np.float32)
            person.keypoints[:, 2] = 0.0
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
