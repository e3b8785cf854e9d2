"""One followed person of :class:`~humanpose.inference.tracking.PoseTracker`: where the
person is, how they move, and how a new observation moves the track on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from humanpose.evaluation.tracking import box_iou
from humanpose.runtime.appearance import histogram_similarity, torso_histogram, torso_seen
from humanpose.runtime.kalman import BoxKalman
from humanpose.runtime.pose_similarity import covered, keypoint_boxes

__all__ = ["Motion", "Track", "start_tracks"]


# Frames between two looks at a track's torso colours: clothes do not change from frame to
# frame, and the histograms are the tracker's largest cost with the image (~40 µs each).
APPEARANCE_EVERY = 4


def _median_rows(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=0)``, the same numbers, without its ~50 µs of overhead on a
    few rows (once per track and frame)."""
    ordered = np.sort(values, axis=0)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


@dataclass(frozen=True)
class Motion:
    """The tracker's settings for moving a track: joints at ``keypoint_threshold`` or more
    count as seen; ``velocity_smoothing`` is the weight of the newest displacement; a box
    around joints needs ``min_points`` of them and is ``expand`` x their extent."""

    keypoint_threshold: float
    velocity_smoothing: float
    min_points: int
    expand: float
    high_score: float = 0.5  # a detector box this sure shows the whole person

    def figure_box(self, memory: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """The box around all the joints a track remembers: the whole person, parts hidden
        now included, so that a crop placed there still holds the person."""
        box, valid = keypoint_boxes(memory[None], self.keypoint_threshold, self.min_points,
                                    self.expand)
        return box[0] if valid[0] else np.asarray(fallback, dtype=np.float64).copy()


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
    confirmed: bool = False
    kalman: BoxKalman | None = None
    appearance: np.ndarray | None = None
    _kalman_frame: int = 0
    # The last frame the detector boxed the person (crops of this tracker's own, between
    # detections or where the detector missed the person, are not the detector's).
    boxed_frame: int = -(10 ** 9)
    # Followed since the detector last boxed them only by crops of this tracker's own:
    # where the detector missed them, or showing someone else (humanpose.inference.recovery).
    # As good as lost, for taking a detector's box left over.
    missed: bool = False
    # The person's height when last boxed confidently (``Motion.high_score``): what a
    # person lost behind something is looked for with, not the sliver last seen.
    full_height: float = 0.0
    _appearance_frame: int = 0

    @classmethod
    def start(cls, track_id: int, keypoints: np.ndarray, box: np.ndarray, detector_box: bool,
              score: float, confidence: float, frame: int, motion: Motion, confirmed: bool,
              image: np.ndarray | None) -> Track:
        """A new track for a person first seen in ``frame``: ``box`` is the detector's
        (``detector_box``) or the person's crop box, then widened to the joints seen."""
        memory = np.array(keypoints, dtype=np.float64)
        memory[memory[:, 2] < motion.keypoint_threshold, 2] = 0.0
        box = (np.array(box, dtype=np.float64) if detector_box
               else motion.figure_box(memory, box))
        track = cls(track_id, box, np.array(keypoints, dtype=np.float64), memory, score,
                    confidence, frame, np.zeros(2), detector_box=detector_box,
                    confirmed=confirmed, full_height=float(box[3]),
                    boxed_frame=frame if detector_box else -(10 ** 9))
        track.observe(frame, image, True)
        return track

    def observe(self, frame: int, image: np.ndarray | None, keypoints_seen: bool) -> None:
        """Feed this frame's box to the Kalman filter and, every ``APPEARANCE_EVERY``
        frames, the torso colours to the appearance (a running mean: one odd frame does
        not replace it)."""
        if self.kalman is None:
            self.kalman = BoxKalman(self.box)
        else:
            self.kalman.predict(max(frame - self._kalman_frame, 1))
            self.kalman.update(self.box)
        self._kalman_frame = frame
        if image is not None and keypoints_seen and (
                self.appearance is None or frame - self._appearance_frame >= APPEARANCE_EVERY):
            hist = torso_histogram(image, self.box, self.keypoints)
            if hist is not None:
                self.appearance = (hist if self.appearance is None
                                   else 0.8 * self.appearance + 0.2 * hist)
                self._appearance_frame = frame

    def looks_like(self, image: np.ndarray | None, box: np.ndarray,
                   keypoints: np.ndarray) -> float | None:
        """How alike this person's torso colours and those of the person of ``box`` and
        ``keypoints`` in ``image`` are (Bhattacharyya coefficient); None (no opinion) without
        the image, without colours of the track's own, or with the torso not in view (a
        torso hidden shows what hides it)."""
        if image is None or self.appearance is None or not torso_seen(keypoints):
            return None
        return histogram_similarity(self.appearance, torso_histogram(image, box, keypoints))

    def predict(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Box and remembered key points expected at ``frame`` (constant velocity)."""
        shift = self.velocity * (frame - self.last_frame)
        if self.kalman is not None and self.detector_box:
            # Boxes from the detector carry the person's own motion, even where the crop
            # shows a neighbour's joints: the filter on them predicts the box.
            box = self.kalman.box_at(frame - self._kalman_frame)
        else:
            box = self.box.copy()
            box[:2] += shift
        memory = self.memory.copy()
        memory[:, :2] += shift
        return box, memory

    def advance(self, frame: int, box: np.ndarray, keypoints: np.ndarray, score: float,
                confidence: float, motion: Motion, detector_box: np.ndarray | None = None,
                crowded: bool = False, predicted: bool = False) -> None:
        """Move to ``frame``'s observation and update the velocity: the median
        displacement of the joints seen in both frames (a person half hidden by a pillar
        changes its box, not its joints' motion), else the box centre's. The box becomes
        ``detector_box`` when given; a track boxed by the detector before moves its box
        with the joints (the joints of a crop on two people would stretch it); else the
        box goes around the joints. ``predicted``: ``detector_box`` is the track's own
        predicted box (a person whose detector box is not theirs),
        followed like a detector's box but not taken for one."""
        gap = max(frame - self.last_frame, 1)
        threshold = motion.keypoint_threshold
        seen = keypoints[:, 2] >= threshold
        memory = self.memory.copy()
        if crowded and self.hits > 1:
            # A crop on two people: the joints may be the other person's. The track goes
            # on at its velocity (the detector's box corrects where it is).
            step = self.velocity
            memory[:, :2] += step * gap
        else:
            both = seen & (self.memory[:, 2] >= threshold)
            if both.sum() >= 2:
                step = _median_rows(keypoints[both, :2] - self.memory[both, :2]) / gap
            elif self.detector_box and detector_box is None:
                step = self.velocity  # joints' box and detector's box are not comparable
            else:
                step = (box[:2] + box[2:] / 2 - self.box[:2] - self.box[2:] / 2) / gap
            a = motion.velocity_smoothing if self.hits > 1 else 1.0
            self.velocity = (1 - a) * self.velocity + a * step
            memory[~seen, :2] += self.velocity * gap
            memory[seen] = keypoints[seen]
        self.memory = memory
        if detector_box is not None:
            self.box = np.asarray(detector_box, dtype=np.float64).copy()
            self.detector_box = True
            if not predicted:
                self.boxed_frame = frame
                self.missed = False
            if score >= motion.high_score and not predicted:
                self.full_height = float(self.box[3])
        elif self.detector_box:
            self.box = self.box.copy()
            self.box[:2] += step * gap
        else:
            self.box = motion.figure_box(memory, box)
        self.keypoints = keypoints.copy()
        self.score = float(score)
        self.confidence = float(confidence)
        self.last_frame = frame
        self.hits += 1

    def take_box(self, frame: int, box: np.ndarray, score: float, detector: bool = True
                 ) -> None:
        """Follow the person by a ``box`` alone (its joints were someone else's): the
        joints remembered may lie off the new box (the person moved while out of sight), so
        they are kept for their shape, not trusted for the next motion step. ``detector``:
        the detector's box; else the track's own crop, which shows someone else (the
        person not seen: ``missed``)."""
        gap = max(frame - self.last_frame, 1)
        self.memory = self.memory.copy()
        self.memory[:, :2] += self.velocity * gap
        self.memory[:, 2] = 0.0
        self.box = np.asarray(box, dtype=np.float64).copy()
        self.detector_box = True
        if detector:
            self.boxed_frame = frame
        self.missed = not detector
        self.score = float(score)
        self.last_frame = frame
        self.hits += 1


def start_tracks(tracks: list[Track], next_id: int, people: np.ndarray, ids: np.ndarray,
                 keypoints: np.ndarray, boxes: np.ndarray, detector_box: bool,
                 scores: np.ndarray, confidence: np.ndarray, frame: int, motion: Motion,
                 confirmed: bool, image: np.ndarray | None) -> int:
    """A new track (appended to ``tracks``) for each of ``people`` (indices), unless its
    box is empty or sits on a person followed in this frame (IoU > 0.7: two crops on one
    person); ``ids`` gets their track ids. Returns the next free id."""
    taken = [t.box for t in tracks if t.last_frame == frame]
    for person in people:
        box = boxes[person]
        if box[2] <= 0 or box[3] <= 0:
            continue
        if taken:
            followed = np.stack(taken)
            if box_iou(box, followed).max() > 0.7 or _nested(box, followed):
                continue
        track = Track.start(next_id, keypoints[person], box, detector_box,
                            float(scores[person]), float(confidence[person]), frame, motion,
                            confirmed, image)
        next_id += 1
        tracks.append(track)
        taken.append(track.box)
        ids[person] = track.track_id
    return next_id


def _nested(box: np.ndarray, taken: np.ndarray) -> bool:
    """Whether ``box`` and a box followed in this frame lie one inside the other (80 %) with
    one under 0.7 of the other's area: a detector's second box on a person it boxes already
    (the whole person and a part of them; a person found again behind someone is
    re-identified before new tracks start, so this is not them)."""
    box = np.asarray(box, dtype=np.float64)[None]
    area, areas = box[0, 2] * box[0, 3], taken[:, 2] * taken[:, 3]
    holds = (covered(taken, box)[:, 0] >= 0.8) & (areas < 0.7 * area)
    inside = (covered(box, taken)[0] >= 0.8) & (area < 0.7 * areas)
    return bool((holds | inside).any())
