"""Track ids, One-Euro smoothing and the tracking metrics (no network: ground truth + noise)."""

from __future__ import annotations

import numpy as np
import pytest

from humanpose.data.synthetic_video import make_walking_video, noisy_people
from humanpose.evaluation.tracking import (
    box_iou,
    frame_matches,
    keypoint_jitter,
    tracking_scores,
)
from humanpose.inference.smoothing import KeypointSmoother, OneEuroFilter
from humanpose.inference.tracking import PoseTracker


@pytest.fixture(scope="module")
def walking():
    return make_walking_video(120, render=False)


def _track(truth, tracker, noise=3.0, seed=0):
    """The video loop: detector boxes when the tracker asks, its predicted crops otherwise."""
    rng = np.random.default_rng(seed)
    ids_out, boxes_out, kpts_out = [], [], []
    for frame in range(len(truth)):
        detect = tracker.needs_detection()
        crops = None if detect else tracker.predicted_boxes()[1]
        kpts, boxes, scores = noisy_people(truth, frame, rng, noise, crops)
        ids = tracker.update(kpts, boxes, scores, detected=detect)
        keep = ids >= 0
        ids_out.append(ids[keep])
        kpts_out.append(kpts[keep])
        # Hypothesis boxes: around the seen joints, as the truth's boxes are.
        seen = kpts[keep, :, 2] >= 0.5
        boxes_out.append(np.array([[*k[s, :2].min(0), *(k[s, :2].max(0) - k[s, :2].min(0))]
                                   for k, s in zip(kpts[keep], seen)]).reshape(-1, 4))
    return ids_out, boxes_out, kpts_out


def test_the_generated_video_has_a_crossing_and_a_short_occlusion(walking):
    present = [set(ids.tolist()) for ids in walking.ids]
    back = [f for f in range(1, len(present)) if 3 in present[f] and 3 not in present[f - 1]]
    hidden = [f for f in range(back[0]) if 3 not in present[f]]
    assert 3 <= len(hidden) <= 8  # person 3 gone for a few frames, then back
    overlap = [box_iou(b[ids == 1], b[ids == 2]).max() for ids, b in
               zip(walking.ids, walking.boxes) if {1, 2} <= set(ids.tolist())]
    assert max(overlap) > 0.3  # persons 1 and 2 cross
    assert walking.keypoints[0].shape == (3, 17, 3) and walking.boxes[0].shape == (3, 4)


def test_ids_stay_stable_through_crossing_and_occlusion(walking):
    ids, boxes, _ = _track(walking, PoseTracker(detect_every=5))
    scores = tracking_scores(walking.ids, walking.boxes, ids, boxes)
    assert scores.id_switches == 0
    assert len({i for frame in ids for i in frame.tolist()}) == 3
    assert scores.idf1 >= 0.9
    # Each person keeps one id all along: the same pairing in every frame.
    pairs = set()
    for g, gb, h, hb in zip(walking.ids, walking.boxes, ids, boxes):
        pairs |= {(int(g[r]), int(h[c])) for r, c in frame_matches(gb, hb)}
    assert len(pairs) == 3 and len({p[0] for p in pairs}) == 3


def test_without_memory_the_hidden_person_comes_back_with_a_new_id(walking):
    # Remembered one frame only: hidden behind the pillar for longer, a new track.
    ids, boxes, _ = _track(walking, PoseTracker(detect_every=5, max_age=1))
    assert len({i for frame in ids for i in frame.tolist()}) > 3


def _person(x: float, y: float, conf: float = 0.9) -> np.ndarray:
    """A 17-joint person: a 40x100 grid of joints with top-left at (x, y)."""
    grid = np.array([[x + 10 * (j % 5), y + 6 * j] for j in range(17)], dtype=np.float64)
    return np.concatenate([grid, np.full((17, 1), conf)], axis=1)


def test_detector_schedule_and_lost_tracks():
    tracker = PoseTracker(detect_every=3, max_age=2)
    assert tracker.needs_detection()  # nothing followed yet
    tracker.update([_person(0, 0)], detected=True)
    assert not tracker.needs_detection()
    tracker.update([_person(2, 0)])
    assert not tracker.needs_detection()
    tracker.update([_person(4, 0)])
    assert tracker.needs_detection()  # 3 frames since the detector ran
    tracker.update([_person(6, 0)], detected=True)
    assert not tracker.needs_detection()
    tracker.update(np.zeros((0, 17, 3)))  # the person vanished
    assert len(tracker.lost) == 1 and tracker.needs_detection()
    tracker.update(np.zeros((0, 17, 3)))
    tracker.update(np.zeros((0, 17, 3)))
    assert tracker.tracks == []  # forgotten after max_age frames


def test_a_person_hidden_long_is_looked_for_on_the_regular_schedule():
    # Lost tracks ask for the detector at once, for ``search_frames`` frames; after that
    # (still remembered for ``max_age``) the detector runs every ``detect_every`` frames.
    tracker = PoseTracker(detect_every=4, max_age=20, search_frames=2)
    tracker.update([_person(0, 0), _person(300, 0)], detected=True)
    asked = []
    for t in range(1, 8):
        asked.append(tracker.needs_detection())
        tracker.update([_person(2 * t, 0)], detected=asked[-1])  # the second one is gone
    assert asked == [False, True, True, False, False, False, True]
    assert len(tracker.lost) == 1
    # Without a schedule, the lost are looked for as long as they are remembered.
    tracker = PoseTracker(detect_every=0, max_age=6, search_frames=2)
    tracker.update([_person(0, 0), _person(300, 0)], detected=True)
    asked = []
    for t in range(1, 10):
        asked.append(tracker.needs_detection())
        tracker.update([_person(2 * t, 0)], detected=asked[-1])
    assert asked == [False] + [True] * 6 + [False, False]


def test_predicted_boxes_follow_constant_velocity():
    tracker = PoseTracker()
    for t in range(4):
        ids = tracker.update([_person(100 + 10 * t, 50 - 2 * t)], detected=t == 0)
    ids_next, boxes, scores = tracker.predicted_boxes()
    assert ids_next.tolist() == ids.tolist() == [1]
    _, last, _ = tracker.predicted_boxes(frame=tracker.frame)
    np.testing.assert_allclose(boxes[0, :2] - last[0, :2], [10.0, -2.0], atol=1e-6)
    np.testing.assert_allclose(boxes[0, 2:], last[0, 2:])
    assert scores.shape == (1,)


def test_confidence_needed_to_start_a_track_and_a_new_person_gets_a_new_id():
    tracker = PoseTracker(start_confidence=0.5, keep_confidence=0.3)
    ids = tracker.update([_person(0, 0, conf=0.4), _person(300, 0, conf=0.9)], detected=True)
    assert ids.tolist() == [-1, 1]
    ids = tracker.update([_person(302, 0), _person(0, 0, conf=0.8)], detected=True)
    assert ids.tolist() == [1, -1]  # tentative: followed, its id not written yet
    for step in range(2):
        ids = tracker.update([_person(304 + 2 * step, 0), _person(0, 0, conf=0.8)],
                             detected=True)
    assert ids.tolist() == [1, 2]  # confirmed after min_hits (3) frames in a row


def test_crossing_people_keep_their_ids_by_their_motion():
    # Two people walk towards each other, overlap, and part; the detector runs every frame.
    # Near the crossing each is closer to where the other was (same shape, 4 px apart in
    # height): only the predicted motion tells them apart.
    tracker = PoseTracker()
    seen = []
    for t in range(30):
        a, b = _person(100 + 12 * t, 100), _person(454 - 12 * t, 104)
        order = [a, b] if t % 2 else [b, a]  # the detector's order means nothing
        ids = tracker.update(order, detected=True)
        seen.append(ids.tolist() if t % 2 else ids.tolist()[::-1])  # ids of [a, b]
    assert sorted(seen[0]) == [1, 2] and all(s == seen[0] for s in seen)


def _box(keypoints: np.ndarray) -> np.ndarray:
    xy = keypoints[:, :2]
    return np.array([*xy.min(0), *(xy.max(0) - xy.min(0))])


def test_crossing_people_whose_crops_show_the_one_in_front_keep_their_ids():
    # A narrow person walks right behind a wide one walking left. While they overlap, a
    # crop on either shows the one in front (as a pose model does): both crops give the
    # same joints. The detector boxes both every third frame; the crops in between are
    # the tracker's. Ids must survive, the hidden person be followed by its box alone
    # (no joints), and the detector not be asked for at every frame.
    tracker = PoseTracker(detect_every=3)
    hits = {"A": set(), "B": set()}
    box_only_frames = detections = 0
    for t in range(40):
        a = _person(60 + 6 * t, 100)
        b = _person(330 - 6 * t, 96)
        b[:, 0] = b[:, 0] * 1.8 - 0.8 * b[:, 0].min()  # 72 px wide
        truth = {"A": a, "B": b}
        detect = tracker.needs_detection()
        detections += detect
        crops = (np.stack([_box(a), _box(b)]) if detect else tracker.predicted_boxes()[1])
        people = []
        for crop in crops:
            iou = {k: float(box_iou(crop[None], _box(v)[None])[0, 0]) for k, v in truth.items()}
            front = iou["B"] > 0.2  # B hides A wherever a crop shows it
            people.append((b if front else truth[max(iou, key=iou.get)]).copy())
        ids = tracker.update(np.stack(people), crops, detected=detect)
        for crop, track_id in zip(crops, ids.tolist()):
            if track_id >= 0:
                iou = {k: float(box_iou(crop[None], _box(v)[None])[0, 0]) for k, v in truth.items()}
                hits[max(iou, key=iou.get)].add(track_id)
        box_only_frames += int((tracker.box_only & tracker.copies).any())
    assert hits == {"A": {1}, "B": {2}}
    assert box_only_frames >= 3
    assert detections <= 15  # the schedule (every 3rd frame), no extra searches


def test_one_box_around_two_overlapping_people_goes_to_the_one_in_front():
    # B's feet are lower in the picture: B is nearer, and a detector box around both
    # (as equal an overlap with each) shows B; A is followed on its prediction.
    a, b = _person(100, 0), _person(110, 20)
    tracker = PoseTracker(detect_every=1)
    first = tracker.update([a, b], np.stack([_box(a), _box(b)]), detected=True)
    around = np.array([[100.0, 0.0, 50.0, 116.0]])
    ids = tracker.update([b], around, detected=True)
    assert ids.tolist() == [first[1]]
    assert [t.track_id for t in tracker.lost] == [first[0]]


@pytest.mark.parametrize("reach, reid_seconds, same_id", [(0.5, 2.0, True), (0.0, 2.0, True),
                                                         (0.0, 0.2, False)])
def test_a_person_who_waited_behind_a_pillar_comes_back_with_the_same_id(reach, reid_seconds,
                                                                         same_id):
    # Walking right at 6 px/frame, hidden for 6 frames during which the person stopped: the
    # detector finds them 36 px behind the predicted place (beyond OKS and IoU). Found by
    # the box left over near the prediction (lost_reach) or by re-identification near the
    # Kalman filter's prediction while remembered (reid_seconds: 0.2 s = 5 frames is less
    # than the 6 hidden).
    tracker = PoseTracker(detect_every=1, lost_reach=reach, reid_seconds=reid_seconds)
    for t in range(8):
        first = tracker.update([_person(100 + 6 * t, 50)], detected=True)
    for _ in range(6):
        tracker.update(np.zeros((0, 17, 3)), detected=True)
    back = _person(100 + 6 * 7 + 6, 50)
    ids = tracker.update([back], _box(back)[None], detected=True)
    assert (ids.tolist() == first.tolist()) is same_id


def test_one_euro_lowers_the_error_on_a_noisy_trajectory():
    rng = np.random.default_rng(0)
    t = np.arange(200) / 30.0
    truth = np.stack([100 + 40 * np.sin(1.5 * t), 80 + 20 * t], axis=1)  # (T, 2) pixels
    noisy = truth + rng.normal(0.0, 3.0, truth.shape)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    out = np.stack([f(x, ti) for x, ti in zip(noisy, t)])
    raw_error = np.linalg.norm(noisy - truth, axis=1).mean()
    error = np.linalg.norm(out - truth, axis=1).mean()
    assert error < 0.75 * raw_error
    # More beta: less lag on fast motion, i.e. closer to the raw input.
    fast = OneEuroFilter(min_cutoff=1.0, beta=5.0)
    out_fast = np.stack([fast(x, ti) for x, ti in zip(noisy, t)])
    assert np.abs(out_fast - noisy).mean() < np.abs(out - noisy).mean()


def test_keypoint_smoother_keeps_tracks_apart_and_forgets_ended_ones():
    smoother = KeypointSmoother(min_cutoff=0.5, beta=0.0, fps=25.0, max_age=2)
    a, b = _person(0, 0), _person(200, 0)
    smoother([1, 2], np.stack([a, b]))
    moved = np.stack([a + [[5, 0, 0]], b])
    out = smoother([1, 2], moved)
    assert 0 < out[0, 0, 0] < 5  # smoothed towards the new position
    np.testing.assert_allclose(out[1], b)  # the other track did not move
    np.testing.assert_allclose(out[:, :, 2], moved[:, :, 2])  # confidences untouched
    untracked = smoother([-1], moved[:1])
    np.testing.assert_allclose(untracked, moved[:1])
    smoother([2], b[None])
    assert 1 not in smoother.filters  # track 1 absent for more than max_age calls
    with pytest.raises(ValueError, match="track ids"):
        smoother([1, 2], a[None])


def test_smoothing_lowers_jitter_on_the_generated_video(walking):
    ids, boxes, kpts = _track(walking, PoseTracker(detect_every=5))
    smoother = KeypointSmoother(fps=walking.fps)
    smoothed = [smoother(i, k) for i, k in zip(ids, kpts)]
    raw = keypoint_jitter(walking.ids, walking.boxes, walking.keypoints, ids, boxes, kpts)
    smooth = keypoint_jitter(walking.ids, walking.boxes, walking.keypoints, ids, boxes,
                             smoothed)
    assert smooth["jitter"] < 0.7 * raw["jitter"]
    assert raw["pairs"] == smooth["pairs"] > 1000


# ----------------------------------------------------------------------------- metrics
BOX = np.array([[0.0, 0.0, 10.0, 10.0]])
FAR = np.array([[100.0, 100.0, 10.0, 10.0]])


def test_idf1_when_a_person_changes_id_halfway():
    gt_ids = [np.array([1])] * 4
    hyp_ids = [np.array([10]), np.array([10]), np.array([11]), np.array([11])]
    s = tracking_scores(gt_ids, [BOX] * 4, hyp_ids, [BOX] * 4)
    # Best one-to-one pairing: 1 -> 10 (2 frames). IDF1 = 2 * 2 / (4 + 4).
    assert s.idtp == 2 and s.idf1 == pytest.approx(0.5) and s.id_switches == 1
    assert s.switches_per_100 == pytest.approx(25.0)


def test_idf1_when_two_people_swap_ids():
    a, b = np.array([[0.0, 0, 10, 10]]), np.array([[50.0, 0, 10, 10]])
    gt_ids = [np.array([1, 2])] * 5
    gt_boxes = [np.concatenate([a, b])] * 5
    hyp_ids = [np.array([7, 8])] * 3 + [np.array([8, 7])] * 2
    s = tracking_scores(gt_ids, gt_boxes, hyp_ids, gt_boxes)
    # 1 -> 7 and 2 -> 8 hold for 3 frames each: IDTP 6, IDF1 = 2 * 6 / (10 + 10).
    assert s.idtp == 6 and s.idf1 == pytest.approx(0.6) and s.id_switches == 2


def test_a_crossing_where_the_ious_tip_is_no_switch_while_each_id_still_overlaps():
    # Two people crossing: each tracker box stays on its person (IoU >= 0.5 throughout),
    # but in frame 1 the swapped pairing has the larger total IoU. CLEAR MOT (and
    # motmetrics) keeps the earlier correspondences: no switch; a real swap still counts.
    gt_boxes = [np.array([[0.0, 0, 10, 10], [20.0, 0, 10, 10]]),
                np.array([[4.0, 0, 10, 10], [6.0, 0, 10, 10]]),
                np.array([[20.0, 0, 10, 10], [0.0, 0, 10, 10]])]
    hyp_boxes = [gt_boxes[0], np.array([[6.0, 0, 10, 10], [4.0, 0, 10, 10]]), gt_boxes[2]]
    assert frame_matches(gt_boxes[1], hyp_boxes[1]) == [(0, 1), (1, 0)]  # IoU tips
    gt_ids = [np.array([1, 2])] * 3
    s = tracking_scores(gt_ids, gt_boxes, [np.array([7, 8])] * 3, hyp_boxes)
    assert s.id_switches == 0 and s.idtp == 6
    swapped = [np.array([7, 8]), np.array([7, 8]), np.array([8, 7])]
    assert tracking_scores(gt_ids, gt_boxes, swapped, hyp_boxes).id_switches == 2


def test_idf1_with_a_miss_a_false_positive_and_the_iou_threshold():
    shifted = BOX + [[5.2, 0, 0, 0]]  # IoU 4.8 / 15.2 < 0.5: no match
    gt_ids = [np.array([1])] * 3
    hyp_ids = [np.array([7]), np.array([7, 9]), np.array([7])]
    hyp_boxes = [BOX, np.concatenate([BOX, FAR]), shifted]
    s = tracking_scores(gt_ids, [BOX] * 3, hyp_ids, hyp_boxes)
    # IDTP 2 (frames 0, 1); 3 ground-truth and 4 hypothesis boxes: IDF1 = 4 / 7.
    assert s.idtp == 2 and s.idf1 == pytest.approx(4 / 7)
    assert s.idp == pytest.approx(2 / 4) and s.idr == pytest.approx(2 / 3)
    assert s.id_switches == 0 and s.matched == 2


def test_keypoint_jitter_ignores_offsets_and_counts_shaking():
    gt = np.zeros((1, 17, 3))
    gt[..., 2] = 2
    frames = 4
    offset = [gt + [[[3.0, 4.0, 0]]]] * frames
    shaking = [gt + [[[(-1.0) ** t, 0, 0]]] for t in range(frames)]
    ids, boxes = [np.array([1])] * frames, [BOX] * frames
    steady = keypoint_jitter(ids, boxes, [gt] * frames, ids, boxes, offset)
    assert steady["jitter"] == 0.0 and steady["error"] == pytest.approx(5.0)
    shaky = keypoint_jitter(ids, boxes, [gt] * frames, ids, boxes, shaking)
    assert shaky["jitter"] == pytest.approx(2.0) and shaky["pairs"] == 17 * (frames - 1)
    other = [np.array([1]), np.array([2]), np.array([1]), np.array([2])]  # new id each frame
    assert keypoint_jitter(ids, boxes, [gt] * frames, other, boxes, shaking)["pairs"] == 0


def test_update_people_takes_the_estimators_people():
    from humanpose.inference.estimator import Person

    tracker = PoseTracker()
    people = [Person((0.0, 0.0, 50.0, 110.0), 0.9, _person(0, 0), 0.8),
              Person((300.0, 0.0, 50.0, 110.0), 0.7, _person(300, 0), 0.6)]
    assert tracker.update_people(people, detected=True).tolist() == [1, 2]
    assert tracker.update_people(people[::-1]).tolist() == [2, 1]
    assert tracker.update_people([]).tolist() == [] and len(tracker.lost) == 2
    np.testing.assert_allclose(sorted(t.score for t in tracker.tracks), [0.7, 0.9])


def test_follow_people_drops_the_joints_a_crop_borrowed_from_the_person_in_front():
    # Two people side by side, then the left one's crop shows the right one (a copy):
    # the left one keeps its id and box, its joints go to confidence 0.
    from humanpose.inference.detector import Detections
    from humanpose.inference.estimator import Person
    from humanpose.inference.tracking import follow_people

    a, b = _person(100, 50), _person(128, 50)
    boxes = np.stack([_box(a), _box(b)])

    def estimate(image, found, scores, joints):
        return [Person(tuple(box), 0.9, k.copy().astype(np.float32), 0.8)
                for box, k in zip(found, joints)]

    tracker = PoseTracker(detect_every=1)
    image = np.zeros((300, 400, 3), np.uint8)
    first = follow_people(tracker, lambda i, f, s: estimate(i, f, s, [a, b]), image,
                          lambda: Detections(boxes, np.ones(2)))
    later = follow_people(tracker, lambda i, f, s: estimate(i, f, s, [b, b]), image,
                          lambda: Detections(boxes + [2, 0, 0, 0], np.ones(2)))
    assert [p.track_id for p in first] == [p.track_id for p in later] == [1, 2]
    assert np.all(later[0].keypoints[:, 2] == 0) and np.all(later[1].keypoints[:, 2] > 0)
    assert later[0].box == tuple(boxes[0] + [2, 0, 0, 0])


def test_a_lost_track_makes_no_one_crowded():
    """Crowded people are matched by box alone; a lost track's predicted box is a guess,
    so overlapping it does not make a followed person crowded (nor is it crowded itself)."""
    from humanpose.inference.association import crowding

    predicted = np.array([[100, 100, 100, 200], [130, 90, 100, 200], [400, 100, 100, 200]],
                         dtype=np.float64)
    crowded, in_front = crowding(predicted, 0.3)
    assert crowded.tolist() == [True, True, False]
    assert in_front.tolist() == [True, False, True]  # the first reaches lower: in front
    crowded, in_front = crowding(predicted, 0.3, np.array([True, False, True]))
    assert crowded.tolist() == [False, False, False]
    assert in_front.all()
    crowded, _ = crowding(predicted, 0.3, np.array([True, True, True]))
    assert crowded.tolist() == [True, True, False]
