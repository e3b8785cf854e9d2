"""Person identities across video frames: each person keeps a ``track_id`` while in view.

:class:`PoseTracker` links each frame's people to the tracks of the frames before: every
track predicts its box and key points (so that two people crossing are told apart by where
they are heading), and people are matched to the predictions by OKS (with the key-point
set's sigmas) mixed with box IoU, solved as one assignment (Hungarian algorithm) under a
gate. A confident person left over starts a track; a track left over is remembered for
``max_age`` frames (a person hidden for a moment comes back with the same id).

Boxes carry identity where joints cannot. Where two people overlap, a crop shows both and
the pose model may give the same joints for both crops: such tracks ("crowded") are matched
by box alone, and a track whose crop gave a copy of its neighbour is followed by its box
(``box_only``). A detector's box around two followed people, or a low-score box that
leaves out most of the person found in its crop, is not the person's: the track coasts on
its prediction. Tracks left over take the boxes left over that overlap their prediction or
lie near it (a person coming out from behind a pillar).

Against a real detector's noise (ByteTrack's, OC-SORT's lessons): boxes are matched in two
stages by score, the confident first, and only confident boxes start a track; a new track
is tentative (its people get ``-1``) until seen ``min_hits`` frames in a row; a Kalman
filter on the detector's boxes (:mod:`humanpose.runtime.kalman`) predicts them; a person
the detector missed is looked for in a crop where the track predicts them (for
``fill_missed`` frames); a lost track is remembered ``reid_seconds`` of video and found
again near where its filter puts it, by its torso colours when the image is given
(:mod:`humanpose.runtime.appearance`).

The tracker also decides when the costly person detector must run (every ``detect_every``
frames, and at once when a track is lost or uncertain) and gives the boxes that place the
next frame's crops in between (:meth:`PoseTracker.predicted_boxes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from humanpose.evaluation.nms import check_sigmas
from humanpose.evaluation.tracking import box_iou
from humanpose.inference.association import (
    crowding,
    frame_people,
    merged_boxes,
    pose_box_similarity,
    repeats_matched,
    stage_pairs,
)
from humanpose.inference.follow import clip_boxes, follow_people, smooth_people
from humanpose.inference.recovery import (
    continue_missed,
    missed_tracks,
    reidentify_lost,
    take_left_boxes,
)
from humanpose.inference.track import Motion, Track, start_tracks
from humanpose.runtime.pose_similarity import (
    joints_inside,
    keypoint_boxes,
    mean_confidence,
    oks_matrix,
)

__all__ = ["PoseTracker", "Track", "box_iou", "clip_boxes", "follow_people", "keypoint_boxes",
           "mean_confidence", "oks_matrix", "smooth_people"]


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
    ``max_age``: frames a track is remembered unseen (default: ``reid_seconds`` x
    ``fps``, 50 at 25 frames/s: longer than a crossing or a pass behind a pillar).
    ``search_frames``: a lost track asks for the detector on every frame this long (all
    of ``max_age`` when ``detect_every`` is 0). ``detect_every``: the detector runs at
    least every that many frames (0: only when tracks are lost or there are none).
    ``velocity_smoothing``: weight of the newest displacement in the velocity estimate.
    ``oks_scale``: the OKS object area as a share of the predicted box's area (1: more
    tolerant than COCO's ~0.4, as limbs swing while a person is out of sight).
    ``duplicate_oks``: a person this similar to a more confident one of the frame is a
    copy (two crops on one person), dropped.
    ``min_box_iou``: on a detector's frame, a track its people did not match takes a
    detector box left over that overlaps its predicted box this much (box only).
    ``crowd_overlap``: a track whose predicted box is covered this much by another's is
    crowded (matched by box, velocity kept).
    ``lost_reach``: a box left over whose centre lies within this share of the person's
    height from a left-over track's prediction is that person (0: off); the share grows
    by a tenth for every frame the track was not seen, up to 1.5x, for 10 frames.

    ``high_score``: boxes scoring at least this are matched first and may start tracks;
    lower ones only continue a track left unmatched (ByteTrack's two stages), never start
    one. ``min_hits``: frames a new track must be seen in a row before its id is written
    (tentative until then, ``-1``; tracks of the first frame are confirmed at once).
    ``fps``, ``reid_seconds``: a lost track is remembered ``reid_seconds`` of video (or
    ``max_age`` frames) and found again where its Kalman filter says it went and, when
    :meth:`update` gets the image, by its torso colours (``min_appearance``: the
    Bhattacharyya coefficient needed).
    ``fill_missed``: on a detector's frame, a followed person the detector missed is
    looked for in a crop where the track predicts them, up to this many frames after the
    detector last boxed them (0: off; :meth:`missed_boxes`). ``humanpose infer`` takes
    these as ``TRACK.*`` keys.

    After each :meth:`update`, ``copies`` marks the people whose key points repeat another
    person's, ``box_only`` those followed by their detector box alone, ``merged`` those
    whose box lies around two followed people (a detector's box over a crossing), and
    ``foreign_box`` those whose box is not theirs (the merged, and low-score boxes leaving
    out most of them): they are written with the box of the track (:meth:`box_of`).
    """

    def __init__(self, sigmas: Sequence[float] | np.ndarray | None = None, *,
                 oks_weight: float = 0.5, min_similarity: float = 0.2,
                 keypoint_threshold: float = 0.2, start_confidence: float = 0.4,
                 keep_confidence: float = 0.25, uncertain_confidence: float = 0.35,
                 max_age: int | None = None, search_frames: int = 5, detect_every: int = 5,
                 min_points: int = 3, expand: float = 1.15, velocity_smoothing: float = 0.3,
                 oks_scale: float = 1.0, duplicate_oks: float = 0.8,
                 min_box_iou: float = 0.3, crowd_overlap: float = 0.3,
                 lost_reach: float = 0.5, high_score: float = 0.5, min_hits: int = 3,
                 fps: float = 25.0, reid_seconds: float = 2.0,
                 min_appearance: float = 0.6, fill_missed: int = 3):
        if not 0.0 <= oks_weight <= 1.0:
            raise ValueError(f"oks_weight must be in [0, 1], got {oks_weight}")
        if max_age is None:
            max_age = int(round(reid_seconds * fps))
        if max_age < 0 or detect_every < 0:
            raise ValueError(f"max_age and detect_every must be >= 0: {max_age}, {detect_every}")
        self._sigmas_arg = sigmas
        self.sigmas: np.ndarray | None = None  # checked on the first frame (K known then)
        # Matching.
        self.oks_weight, self.oks_scale, self.min_similarity = oks_weight, oks_scale, min_similarity
        self.duplicate_oks, self.crowd_overlap = duplicate_oks, crowd_overlap
        self.min_box_iou, self.lost_reach = min_box_iou, lost_reach
        # Who counts as a person, and when a track starts, is confirmed or is forgotten.
        self.keypoint_threshold, self.min_points = keypoint_threshold, min_points
        self.start_confidence, self.keep_confidence = start_confidence, keep_confidence
        self.uncertain_confidence = uncertain_confidence
        self.high_score, self.min_hits, self.max_age = high_score, min_hits, max_age
        self.min_appearance, self.fill_missed = min_appearance, fill_missed
        # The detector's schedule, and the motion of a person's box between detections.
        self.search_frames, self.detect_every = search_frames, detect_every
        self.expand, self.velocity_smoothing = expand, velocity_smoothing
        self.reset()

    def reset(self) -> None:
        """Forget every track (e.g. at a scene cut); ids keep counting up."""
        self.tracks: list[Track] = []
        self.frame = -1  # index of the last frame given to update()
        self._first_frame: int | None = None
        self._since_detection: int | None = None
        self._uncertain = False
        self.copies = np.zeros(0, dtype=bool)
        self.box_only = np.zeros(0, dtype=bool)
        self.merged = np.zeros(0, dtype=bool)
        self.foreign_box = np.zeros(0, dtype=bool)
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

    def missed_boxes(self, boxes: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """After :meth:`update` on a detector's frame, the people the detector missed
        (:func:`~humanpose.inference.recovery.missed_tracks`): their track ids ``(M,)``,
        boxes ``(M, 4)`` predicted for this frame and scores; a crop there
        (:meth:`follow_missed`) may keep the person."""
        return missed_tracks(self.tracks, self.frame, self.fill_missed, boxes)

    def follow_missed(self, track_ids: np.ndarray, keypoints: np.ndarray, boxes: np.ndarray,
                      image: np.ndarray | None = None) -> np.ndarray:
        """The people found in the crops of :meth:`missed_boxes` continue their tracks when
        sure enough (``keep_confidence``), not a copy of someone followed in this frame (a
        crop drifting onto a neighbour) and, with the ``image``, dressed like the person
        (:func:`~humanpose.inference.recovery.continue_missed`); returns the ids kept (-1:
        dropped)."""
        kpts = np.asarray(keypoints, dtype=np.float64).reshape(len(track_ids), -1, 3)
        if not len(kpts):
            return np.zeros(0, dtype=np.int64)
        self._check_sigmas(kpts.shape[1])
        return continue_missed(self.tracks, self.frame, track_ids, kpts, boxes,
                               mean_confidence(kpts, self.keypoint_threshold),
                               self.keep_confidence, self.sigmas, self.oks_scale,
                               self.keypoint_threshold, self.duplicate_oks, self._motion(),
                               image, self.min_appearance)

    # ------------------------------------------------------------------ update
    def update(self, keypoints: np.ndarray | Sequence[np.ndarray],
               boxes: np.ndarray | None = None, scores: np.ndarray | None = None,
               detected: bool = False, frame: int | None = None,
               image: np.ndarray | None = None) -> np.ndarray:
        """Link this frame's people to the tracks; returns their track ids ``(N,)``
        (``-1`` for people not followed).

        ``keypoints``: ``(N, K, 3)`` (x, y, confidence). ``boxes``: ``(N, 4)`` (x, y, w, h),
        the boxes the people were cropped from (the detector's, or this tracker's
        :meth:`predicted_boxes`); without them people are matched by the box around their
        joints. ``scores``: their box scores. ``detected``: the boxes came from the detector
        in this frame (restarts the ``detect_every`` count; tracks take these boxes). ``frame``:
        the frame index, to tell the tracker about skipped frames (default: the next one).
        ``image``: the BGR frame, for the torso colours that find lost people again.
        """
        kpts = np.asarray(keypoints, dtype=np.float64)
        if kpts.size == 0:
            kpts = kpts.reshape(0, kpts.shape[-2] if kpts.ndim == 3 else 0, 3)
        n = len(kpts)
        if n:
            self._check_sigmas(kpts.shape[1])
        previous = self.frame
        self.frame = self.frame + 1 if frame is None else int(frame)
        if self._first_frame is None:
            self._first_frame = self.frame
        if detected or self._since_detection is not None:
            self._since_detection = 1 if detected else self._since_detection + 1
        self.tracks = [t for t in self.tracks if self.frame - t.last_frame <= self.max_age]

        from_detector = detected and boxes is not None
        given, person_boxes, person_scores, conf, self.copies = frame_people(
            kpts, boxes, scores, self.sigmas, self.keypoint_threshold, self.min_points,
            self.expand, self.oks_scale, self.duplicate_oks)
        usable = (conf >= self.keep_confidence) & ~self.copies

        ids = np.full(n, -1, dtype=np.int64)
        matched_tracks: set[int] = set()
        # Each track's box and joints expected now, made once for all stages below.
        predictions = [t.predict(self.frame) for t in self.tracks]
        predicted = np.array([p[0] for p in predictions]).reshape(-1, 4)
        # Crowded by the tracks seen in the last update only (a lost one's box is a guess).
        seen = np.array([t.last_frame >= previous for t in self.tracks], dtype=bool)
        crowded, in_front = crowding(predicted, self.crowd_overlap, seen)
        # ByteTrack's two stages: confident boxes first, then the others for what is left.
        high = person_scores >= self.high_score
        merged = merged_boxes(predicted, person_boxes)
        foreign = merged.copy()  # not their box: merged, or clutter or a part of them,
        if from_detector:  # a low-score box leaving out most of the person its crop found
            foreign[~high] |= joints_inside(kpts[~high], person_boxes[~high],
                                            self.keypoint_threshold) < 0.7
        for stage in (usable & high, usable & ~high):
            cand = np.flatnonzero(stage & (ids < 0))
            if not self.tracks or not len(cand):
                continue
            sim = self.similarity(kpts[cand], person_boxes[cand], predictions)
            for r, c in stage_pairs(sim, crowded, in_front, predicted,
                                    None if boxes is None else person_boxes[cand],
                                    matched_tracks, self.min_similarity):
                person = cand[c]
                # Without a box of their own, the person goes on where the track predicts
                # them (its Kalman filter coasts), not with joints a crop on two blends.
                coast = from_detector and foreign[person]
                box = predicted[r] if coast else person_boxes[person]
                own = box if coast else (given[person] if from_detector else None)
                self.tracks[r].advance(self.frame, box, kpts[person], person_scores[person],
                                       conf[person], self._motion(), own, crowded[r],
                                       predicted=coast)
                ids[person] = self.tracks[r].track_id
                matched_tracks.add(r)
        self._uncertain = any(self.tracks[r].confidence < self.uncertain_confidence
                              for r in matched_tracks)
        self.box_only = np.zeros(n, dtype=bool)
        self.merged = merged
        self.foreign_box = foreign if from_detector else np.zeros(n, dtype=bool)
        if from_detector:
            repeat = repeats_matched(person_boxes, ids)  # not a lost person: a duplicate
            reidentify_lost(self.tracks, self.frame, matched_tracks,
                            np.flatnonzero(usable & high & ~merged & ~repeat & (ids < 0)),
                            person_boxes,
                            kpts, person_scores, conf, given, ids, image,
                            self.min_appearance, self._motion())
            # A crop where the pose model finds nobody (not even someone else in front:
            # no joint it is sure of) is no person: clutter does not take a track.
            someone = (conf >= self.keep_confidence) | self.copies
            self._match_boxes(given, person_scores, ids, matched_tracks, predicted,
                              people=~merged & someone, repeats=repeat, image=image,
                              keypoints=kpts)
        elif boxes is not None and crowded.any():
            # Between detections, a crowded track whose crop gave a copy of its neighbour
            # goes on with its crop (its predicted box) rather than being lost.
            self._match_boxes(given, person_scores, ids, matched_tracks, predicted,
                              people=self.copies, tracks=crowded, detector=False)
        for r in matched_tracks:
            track = self.tracks[r]
            track.observe(self.frame, image, not self.box_only[ids == track.track_id].any())
            track.confirmed |= track.hits >= self.min_hits
        # A tentative track missed once was clutter; confirmed ones are kept while lost.
        self.tracks = [t for r, t in enumerate(self.tracks)
                       if t.confirmed or r in matched_tracks]
        # People left over start tracks (from confident boxes only).
        starting = (ids < 0) & usable & (conf >= self.start_confidence) & high & ~merged
        self._next_id = start_tracks(
            self.tracks, self._next_id, np.flatnonzero(starting), ids, kpts,
            given if from_detector else person_boxes, from_detector, person_scores, conf,
            self.frame, self._motion(), self.frame == self._first_frame or self.min_hits <= 1,
            image)
        # Only confirmed tracks are written; tentative ones are followed, unnamed.
        tentative = {t.track_id for t in self.tracks if not t.confirmed}
        ids[np.isin(ids, list(tentative))] = -1
        return ids

    def box_of(self, track_id: int) -> np.ndarray | None:
        """The box (x, y, w, h) the track ``track_id`` has now, None for no such track."""
        return next((t.box.copy() for t in self.tracks if t.track_id == track_id), None)

    def update_people(self, people: Sequence, detected: bool = False,
                      frame: int | None = None, image: np.ndarray | None = None
                      ) -> np.ndarray:
        """:meth:`update` with :class:`~humanpose.inference.estimator.Person` objects
        (their ``keypoints``, ``box`` and ``box_score``); returns ids aligned with them."""
        if not people:
            return self.update(np.zeros((0, 0, 3)), detected=detected, frame=frame,
                               image=image)
        return self.update(np.stack([p.keypoints for p in people]),
                           np.array([p.box for p in people], dtype=np.float64),
                           np.array([p.box_score for p in people], dtype=np.float64),
                           detected=detected, frame=frame, image=image)

    def similarity(self, keypoints: np.ndarray, boxes: np.ndarray,
                   predictions: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
                   ) -> np.ndarray:
        """Similarity ``(tracks, people)`` of the remembered tracks' predictions for the
        current frame with these people: ``oks_weight`` x OKS + (1 - ``oks_weight``) x IoU.
        ``predictions``: the tracks' :meth:`Track.predict` for this frame, when made."""
        predicted = (predictions if predictions is not None
                     else [t.predict(self.frame) for t in self.tracks])
        return pose_box_similarity(predicted, keypoints, boxes, self.sigmas, self.oks_scale,
                                   self.keypoint_threshold, self.oks_weight)

    def _check_sigmas(self, joints: int) -> None:
        """The OKS sigmas, checked against the joint count of the first people seen."""
        if self.sigmas is None:
            self.sigmas = check_sigmas(None if self._sigmas_arg is None
                                       else np.asarray(self._sigmas_arg), joints)

    def _motion(self) -> Motion:
        return Motion(self.keypoint_threshold, self.velocity_smoothing, self.min_points,
                      self.expand, self.high_score)

    def _match_boxes(self, boxes: np.ndarray, scores: np.ndarray, ids: np.ndarray,
                     matched_tracks: set[int], predicted: np.ndarray, people: np.ndarray,
                     tracks: np.ndarray | None = None, repeats: np.ndarray | None = None,
                     image: np.ndarray | None = None, keypoints: np.ndarray | None = None,
                     detector: bool = True) -> None:
        """Tracks not matched by their people (mask ``tracks``, default all) take the
        boxes of ``people`` left over (:func:`take_left_boxes`: a lost or missed track not
        the ``repeats`` nor, in the ``image``, someone dressed otherwise); ``box_only``
        marks them."""
        rows = [r for r in range(len(self.tracks)) if r not in matched_tracks
                and (tracks is None or tracks[r])]
        taken = take_left_boxes(self.tracks, rows, self.frame, matched_tracks,
                                np.flatnonzero((ids < 0) & people), boxes, scores, ids,
                                predicted, self.lost_reach, self.min_box_iou, repeats,
                                image, keypoints, self.min_appearance, detector)
        self.box_only[taken] = True
