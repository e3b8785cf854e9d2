"""The scores :class:`~humanpose.inference.tracking.PoseTracker` matches people to tracks
by: arrays in, arrays out, no tracker state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from humanpose.evaluation.tracking import box_iou
from humanpose.inference.track import Track
from humanpose.runtime.assignment import linear_sum_assignment
from humanpose.runtime.pose_similarity import covered, keypoint_boxes, mean_confidence, oks_matrix

__all__ = ["FramePeople", "box_takeover_scores", "crowding", "duplicate_people",
           "frame_people", "merged_boxes", "pose_box_similarity", "reidentification_scores",
           "repeats_matched", "stage_pairs"]


class FramePeople(NamedTuple):
    """One frame's people as the tracker matches them (``N`` people)."""

    given: np.ndarray  # (N, 4) the boxes they were cropped from (zeros when not given)
    boxes: np.ndarray  # (N, 4) the boxes they are matched by
    scores: np.ndarray  # (N,) box scores (1 when not given)
    confidence: np.ndarray  # (N,) mean confidence of the joints seen
    copies: np.ndarray  # (N,) a copy of another person of the frame (duplicate_people)


def frame_people(keypoints: np.ndarray, boxes: np.ndarray | None, scores: np.ndarray | None,
                 sigmas: np.ndarray | None, keypoint_threshold: float, min_points: int,
                 expand: float, oks_scale: float, duplicate_oks: float) -> FramePeople:
    """The people of ``keypoints`` ``(N, K, 3)`` with their crop ``boxes`` and ``scores``.

    People are matched by the boxes they were cropped from when known: a detector's box
    does not blend two crossing people the way a crop's joints can, and a tracked frame's
    crop is the box its track predicted. Without boxes (key points from elsewhere), by the
    box around the joints. Of two copies, the one kept is the one whose joints fit the box
    it was cropped from (the person the crop is really on); without boxes, the more
    confident."""
    n = len(keypoints)
    kp_boxes, valid = keypoint_boxes(keypoints, keypoint_threshold, min_points, expand)
    given = (np.zeros((n, 4)) if boxes is None
             else np.asarray(boxes, dtype=np.float64).reshape(n, 4))
    person_boxes = np.where(valid[:, None], kp_boxes, given) if boxes is None else given
    person_scores = (np.ones(n) if scores is None
                     else np.asarray(scores, dtype=np.float64).reshape(n))
    conf = mean_confidence(keypoints, keypoint_threshold) if n else np.zeros(0)
    fit = conf if boxes is None else box_iou(kp_boxes, given).diagonal() * valid
    copies = duplicate_people(keypoints, person_boxes, fit, sigmas, oks_scale,
                              keypoint_threshold, duplicate_oks)
    return FramePeople(given, person_boxes, person_scores, conf, copies)


def stage_pairs(similarity: np.ndarray, crowded: np.ndarray, in_front: np.ndarray,
                predicted: np.ndarray, boxes: np.ndarray | None, matched: set[int],
                min_similarity: float) -> list[tuple[int, int]]:
    """The (track, candidate) pairs of one association stage: ``similarity`` ``(tracks,
    candidates)`` solved as one assignment, pairs below ``min_similarity`` and the tracks
    ``matched`` in an earlier stage left out.

    Crops on overlapping people show both: their joints may blend, their boxes do not
    (between detections, a crowded track's crop is its own). So with crop ``boxes``, the
    ``crowded`` tracks are matched by box IoU with their ``predicted`` box, and of people
    overlapping, the one whose feet are lowest in the picture (``in_front``) gets 0.1 more:
    it is the one a box around both of them shows. ``similarity`` is changed in place."""
    if crowded.any() and boxes is not None:
        similarity[crowded] = box_iou(predicted[crowded], boxes)
        similarity[crowded & in_front] += 0.1
    similarity[list(matched)] = -1.0
    rows, cols = linear_sum_assignment(-similarity)
    return [(int(r), int(c)) for r, c in zip(rows, cols)
            if similarity[r, c] >= min_similarity]


def pose_box_similarity(predictions: Sequence[tuple[np.ndarray, np.ndarray]],
                        keypoints: np.ndarray, boxes: np.ndarray, sigmas: np.ndarray,
                        oks_scale: float, keypoint_threshold: float, oks_weight: float
                        ) -> np.ndarray:
    """``(tracks, people)``: ``oks_weight`` x OKS + (1 - ``oks_weight``) x box IoU of the
    tracks' predicted (box, key points) with these people. The OKS object area is
    ``oks_scale`` x the predicted box's area."""
    pboxes = np.stack([p[0] for p in predictions])
    pkpts = np.stack([p[1] for p in predictions])
    iou = box_iou(pboxes, boxes)
    areas = pboxes[:, 2] * pboxes[:, 3] * oks_scale
    oks = oks_matrix(pkpts, keypoints, areas, sigmas, keypoint_threshold)
    return oks_weight * oks + (1.0 - oks_weight) * iou


def merged_boxes(predicted: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which of a frame's ``boxes`` ``(N, 4)`` lie around two followed people (a detector
    merging a crossing): the box holds most (60 %) of two tracks' ``predicted`` boxes that
    no other box of the frame fits (IoU >= 0.5). A person behind another lies inside the
    front one's box too, but the detector boxes them separately: that box is the front
    person's own."""
    if not len(predicted) or not len(boxes):
        return np.zeros(len(boxes), dtype=bool)
    inside = covered(predicted, boxes) > 0.6
    if not (inside.sum(axis=0) >= 2).any():
        return np.zeros(len(boxes), dtype=bool)
    fits = box_iou(predicted, boxes) >= 0.5
    # fits_other[t, j]: some box other than j fits track t.
    fits_other = (fits.sum(axis=1, keepdims=True) - fits) > 0
    return (inside & ~fits_other).sum(axis=0) >= 2


def repeats_matched(boxes: np.ndarray, ids: np.ndarray, max_iou: float = 0.5) -> np.ndarray:
    """Which people left over (``ids`` -1) have a box overlapping the box of someone matched
    in this frame by more than ``max_iou`` (IoU): a detector's second box on the people
    there, not a person who was lost."""
    left, matched = ids < 0, ids >= 0
    out = np.zeros(len(boxes), dtype=bool)
    if left.any() and matched.any():
        out[left] = (box_iou(boxes[left], boxes[matched]) > max_iou).any(axis=1)
    return out


def crowding(predicted: np.ndarray, crowd_overlap: float, seen: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """For the tracks' ``predicted`` boxes: which are crowded (covered by another track's
    box by more than ``crowd_overlap`` of their area: people crossing or passing behind one
    another, whose crops show both), and which are in front (reaching lower in the picture
    than every track overlapping them that much either way: nearer the camera).

    Only the tracks ``seen`` (mask, default all) in the last update count: a lost track's
    box is a guess, and taking a followed person for crowded by it matched them by box
    alone, onto a detector's box around them and the hidden person."""
    if len(predicted) < 2:
        return np.zeros(len(predicted), dtype=bool), np.ones(len(predicted), dtype=bool)
    share = covered(predicted, predicted)
    np.fill_diagonal(share, 0.0)
    if seen is not None:
        share[~seen] = 0.0
        share[:, ~seen] = 0.0
    crowded = share.max(axis=1) > crowd_overlap
    overlap = np.maximum(share, share.T) > crowd_overlap
    bottom = predicted[:, 1] + predicted[:, 3]
    in_front = ~(overlap & (bottom[None, :] > bottom[:, None])).any(axis=1)
    return crowded, in_front


def duplicate_people(keypoints: np.ndarray, boxes: np.ndarray, rank: np.ndarray,
                     sigmas: np.ndarray, oks_scale: float, keypoint_threshold: float,
                     duplicate_oks: float) -> np.ndarray:
    """People that repeat a person of the same frame ranked higher by ``rank`` (OKS above
    ``duplicate_oks``): two crops on one person (one person's crop drifting onto a
    neighbour) give the same key points twice, and the copy must not start a track."""
    n = len(keypoints)
    drop = np.zeros(n, dtype=bool)
    if n < 2:
        return drop
    areas = np.maximum(boxes[:, 2] * boxes[:, 3] * oks_scale, 1.0)
    oks = oks_matrix(keypoints, keypoints, areas, sigmas, keypoint_threshold)
    for i in np.argsort(-rank, kind="stable"):
        if not drop[i]:
            later = oks[i] > duplicate_oks
            later[i] = False
            drop |= later & (rank <= rank[i])
    return drop


# Of the person's height, for a box taken by overlap or reach, or a person found again.
MIN_HEIGHT_RATIO, MAX_HEIGHT_RATIO = 0.67, 1.5


def box_takeover_scores(predicted: np.ndarray, boxes: np.ndarray, unseen: np.ndarray,
                        lost_reach: float, min_box_iou: float,
                        heights: np.ndarray | None = None) -> np.ndarray:
    """``(tracks, boxes)``: how well each detector box left over fits a track left over
    (``predicted`` its box now, ``unseen`` frames since it was seen, minus one): box IoU;
    a box mostly inside the prediction counts as well (a person coming out from behind
    something is boxed by a sliver at first); and a box whose centre lies within
    ``lost_reach`` x the person's height of the prediction gets ``min_box_iou`` (a person
    coming out from behind a pillar on its far side, where a prediction from joints guessed
    behind it does not reach). The reach grows by a tenth for every frame unseen, up to
    1.5x, and ends after 10 such frames (a prediction that old says little). The last two
    need a box of about the person's height (``MIN_HEIGHT_RATIO`` to ``MAX_HEIGHT_RATIO``
    of it; ``heights``: each track's person when last boxed whole, default the predicted
    boxes'): a sliver of a person is as tall as the person, a small box of clutter near
    them is not, nor a detector's false box over half the picture."""
    heights = predicted[:, 3] if heights is None else np.maximum(heights, predicted[:, 3])
    tall = ((boxes[None, :, 3] >= MIN_HEIGHT_RATIO * heights[:, None])
            & (boxes[None, :, 3] <= MAX_HEIGHT_RATIO * heights[:, None]))
    iou = np.maximum(box_iou(predicted, boxes),
                     np.where(tall, covered(boxes, predicted).T - 0.5, 0.0))
    shift = (boxes[:, None, :2] + boxes[:, None, 2:] / 2
             - predicted[None, :, :2] - predicted[None, :, 2:] / 2)
    reach = (lost_reach * np.minimum(1.0 + 0.1 * unseen, 1.5)[None, :]
             * np.maximum(predicted[None, :, 3], boxes[:, None, 3]))
    near = ((np.hypot(shift[..., 0], shift[..., 1]) < reach).T & (unseen <= 10)[:, None]
            & tall)
    return np.maximum(iou, np.where(near, min_box_iou, 0.0))


def reidentification_scores(tracks: Sequence[Track], frame: int, boxes: np.ndarray,
                            keypoints: np.ndarray, image: np.ndarray | None,
                            min_appearance: float) -> np.ndarray:
    """``(tracks, people)``: how well each person fits each lost track (-inf: not at all).
    A person must be near where the track's Kalman filter puts it now (within half the
    person's height, plus a twentieth for every frame unseen: a hidden person's path is
    known less and less), of about its height (when last boxed whole: the last box of a
    person going behind something is a sliver), and, with the ``image`` and the person's
    torso in view, dressed alike (torso colours, Bhattacharyya coefficient at least
    ``min_appearance``; a torso still hidden says nothing about who it is)."""
    value = np.full((len(tracks), len(boxes)), -np.inf)
    for i, track in enumerate(tracks):
        unseen = frame - track.last_frame
        box = track.kalman.box_at(unseen)
        centre = box[:2] + box[2:] / 2
        height = track.full_height or box[3]  # its height when last seen whole
        reach = height * min(0.5 + 0.05 * unseen, 3.0)
        for j, b in enumerate(boxes):
            distance = np.hypot(*(b[:2] + b[2:] / 2 - centre)) / reach
            ratio = b[3] / max(height, 1.0)
            if distance >= 1.0 or not MIN_HEIGHT_RATIO <= ratio <= MAX_HEIGHT_RATIO:
                continue
            look = track.looks_like(image, b, keypoints[j])
            if look is not None and look < min_appearance:
                continue
            look = 0.5 if look is None else look  # 0.5: no opinion
            value[i, j] = look - 0.3 * distance
    return value
