"""Finding people again: lost tracks re-identified, tracks that take a detector box left
over, and people the detector missed looked for where their track predicts them.

These are the steps of :class:`~humanpose.inference.tracking.PoseTracker` that run after
the main association. Each takes the tracks and the people left over, moves the tracks it
links (:meth:`Track.advance` / :meth:`Track.take_box`) and fills ``ids`` and ``matched``
(rows of ``tracks``) in place, so the tracker's bookkeeping stays in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from humanpose.inference.association import box_takeover_scores, reidentification_scores
from humanpose.inference.track import Motion, Track, _median_rows
from humanpose.runtime.assignment import linear_sum_assignment
from humanpose.runtime.pose_similarity import oks_matrix

__all__ = ["continue_missed", "missed_tracks", "reidentify_lost", "take_left_boxes"]


def reidentify_lost(tracks: Sequence[Track], frame: int, matched: set[int],
                    people: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                    scores: np.ndarray, confidence: np.ndarray, given: np.ndarray,
                    ids: np.ndarray, image: np.ndarray | None, min_appearance: float,
                    motion: Motion) -> None:
    """Lost tracks (confirmed, not seen last frame) found again among ``people`` (indices
    of the people left over): near where their Kalman filter puts them, of about their
    height and, with the ``image``, dressed alike (see :func:`reidentification_scores`)."""
    lost = [r for r, t in enumerate(tracks) if r not in matched
            and t.confirmed and t.last_frame < frame - 1 and t.kalman is not None]
    if not lost or not len(people):
        return
    value = reidentification_scores([tracks[r] for r in lost], frame, boxes[people],
                                    keypoints[people], image, min_appearance)
    if not np.isfinite(value).any():
        return
    for i, j in zip(*linear_sum_assignment(-np.where(np.isfinite(value), value, -1e3))):
        if not np.isfinite(value[i, j]):
            continue
        person, track = people[j], tracks[lost[i]]
        track.advance(frame, boxes[person], keypoints[person], scores[person],
                      confidence[person], motion, given[person])
        ids[person] = track.track_id
        matched.add(lost[i])


def take_left_boxes(tracks: Sequence[Track], rows: Sequence[int], frame: int,
                    matched: set[int], people: np.ndarray, boxes: np.ndarray,
                    scores: np.ndarray, ids: np.ndarray, predicted: np.ndarray,
                    lost_reach: float, min_box_iou: float,
                    repeats: np.ndarray | None = None, image: np.ndarray | None = None,
                    keypoints: np.ndarray | None = None, min_appearance: float = 0.0,
                    detector: bool = True) -> list[int]:
    """Tracks ``rows`` (not matched by their people) take the boxes of ``people`` left
    over whose IoU with their predicted box (``predicted``, every track's) is at least
    ``min_box_iou``, or that lie within reach (:func:`box_takeover_scores`); the track
    keeps its id and motion: on a detector's frame, a person half hidden behind another is
    still boxed by the detector even where the pose model, cropping there, finds the person
    in front. A track lost before this frame (or kept only by crops where the detector
    missed the person, ``Track.missed``) does not take the ``repeats`` (mask over all
    people: boxes repeating someone matched in this frame), nor, with the ``image`` and
    the people's ``keypoints``, someone dressed otherwise (torso colours under
    ``min_appearance``, :meth:`Track.looks_like`): a box left over beside a followed person
    is often that person's second box. ``detector``: the boxes are the detector's (else
    the tracks' own crops, :meth:`Track.take_box`). Returns the people so taken (followed
    by box alone)."""
    if not len(rows) or not len(people):
        return []
    unseen = np.array([frame - tracks[r].last_frame - 1 for r in rows])
    iou = box_takeover_scores(predicted[list(rows)], boxes[people], unseen, lost_reach,
                              min_box_iou, np.array([tracks[r].full_height for r in rows]))
    lost = (unseen > 0) | np.array([tracks[r].missed for r in rows], dtype=bool)
    if repeats is not None:
        iou[np.ix_(lost, repeats[people])] = 0.0
    if image is not None and keypoints is not None:
        for i, j in zip(*np.nonzero((iou >= min_box_iou) & lost[:, None])):
            look = tracks[rows[i]].looks_like(image, boxes[people[j]], keypoints[people[j]])
            if look is not None and look < min_appearance:
                iou[i, j] = 0.0
    taken = []
    for r, c in zip(*linear_sum_assignment(-iou)):
        if iou[r, c] < min_box_iou:
            continue
        track, person = tracks[rows[r]], people[c]
        track.take_box(frame, boxes[person], scores[person], detector)
        ids[person] = track.track_id
        matched.add(rows[r])
        taken.append(int(person))
    return taken


def missed_tracks(tracks: Sequence[Track], frame: int, fill_missed: int,
                  boxes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The confirmed tracks seen in the frame before ``frame`` that this frame's people did
    not continue, that the detector boxed at most ``fill_missed`` frames before, and that
    none of the detector's ``boxes`` (x, y, w, h) lies near (centres within half the
    person's height): their track ids, boxes predicted for ``frame`` and scores.

    Counted in frames, not in fills: the tracker's own crops between detections do not
    confirm a person, so a detector that runs every 5th frame and misses them is believed
    (the crops may have slid onto a pillar or the person in front)."""
    kept = [t for t in tracks if t.confirmed and t.last_frame == frame - 1
            and frame - t.boxed_frame <= fill_missed]
    predicted = np.stack([t.predict(frame)[0] for t in kept]) if kept else None
    if predicted is not None and boxes is not None and len(boxes):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        gap = (predicted[:, None, :2] + predicted[:, None, 2:] / 2
               - boxes[None, :, :2] - boxes[None, :, 2:] / 2)
        far = (np.hypot(gap[..., 0], gap[..., 1]) > 0.5 * predicted[:, None, 3]).all(1)
        kept, predicted = [t for t, f in zip(kept, far) if f], predicted[far]
    return (np.array([t.track_id for t in kept], dtype=np.int64),
            predicted if kept else np.zeros((0, 4)), np.array([t.score for t in kept]))


# Of the person's height: how far their joints may move in the one frame since seen.
MAX_STEP = 0.2


def _jumped(track: Track, frame: int, keypoints: np.ndarray, height: float,
            keypoint_threshold: float) -> bool:
    """Whether the joints found lie, by their median shift, more than :data:`MAX_STEP` x
    ``height`` from where the track expects its joints (a walker moves about a twentieth):
    the crop shows someone beside or in front of the person."""
    expected = track.predict(frame)[1]
    both = (keypoints[:, 2] >= keypoint_threshold) & (expected[:, 2] >= keypoint_threshold)
    if both.sum() < 2:
        return False
    shift = _median_rows(keypoints[both, :2] - expected[both, :2])
    return bool(np.hypot(*shift) > MAX_STEP * height)


def continue_missed(tracks: Sequence[Track], frame: int, track_ids: np.ndarray,
                    keypoints: np.ndarray, boxes: np.ndarray, confidence: np.ndarray,
                    keep_confidence: float, sigmas: np.ndarray, oks_scale: float,
                    keypoint_threshold: float, duplicate_oks: float, motion: Motion,
                    image: np.ndarray | None, min_appearance: float = 0.6) -> np.ndarray:
    """The people found in the crops of :func:`missed_tracks` continue the tracks
    ``track_ids`` when sure enough (``keep_confidence``), not a copy of someone followed
    in this frame (OKS above ``duplicate_oks``: a crop drifting onto a neighbour), with
    their joints near where the track expects them (:func:`_jumped`) and, with
    the ``image``, dressed like the person (torso in view, colours at least
    ``min_appearance`` alike): a pose model sees a confident person in almost any crop,
    the background or a pillar included, so the crop must show the person's own clothes.
    A person kept moves their box with the joints found, as between detections (a box
    coasting on the Kalman prediction slides off a person who slows down or turns).
    Returns the ids kept (-1: dropped)."""
    out = np.full(len(track_ids), -1, dtype=np.int64)
    by_id = {t.track_id: t for t in tracks}
    for i, track_id in enumerate(np.asarray(track_ids).tolist()):
        track = by_id.get(track_id)
        if track is None or track.last_frame == frame or confidence[i] < keep_confidence:
            continue
        box = np.asarray(boxes[i], dtype=np.float64)
        if _jumped(track, frame, keypoints[i], box[3], keypoint_threshold):
            continue
        look = track.looks_like(image, box, keypoints[i])
        if look is not None and look < min_appearance:
            continue
        others = [t for t in tracks if t.last_frame == frame]
        if others:
            oks = oks_matrix(keypoints[i][None], np.stack([t.keypoints for t in others]),
                             np.array([max(box[2] * box[3] * oks_scale, 1.0)]), sigmas,
                             keypoint_threshold)
            if oks.max() > duplicate_oks:
                continue
        track.advance(frame, box, keypoints[i], track.score, float(confidence[i]), motion)
        track.missed = True
        track.observe(frame, image, True)
        out[i] = track_id
    return out
