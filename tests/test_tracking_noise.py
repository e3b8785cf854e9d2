"""Detector noise for tracking (the generator), and the tracker's answers to it: two-stage
association by score, tentative tracks, Kalman motion, torso colours, missed boxes."""

from __future__ import annotations

import numpy as np

from humanpose.data.synthetic_detections import (
    FALSE_POSITIVE,
    MERGED,
    noisy_detections,
    noisy_scenario,
    write_detections_file,
)
from humanpose.data.synthetic_video import make_walking_video, noisy_people
from humanpose.evaluation.tracking import box_iou, tracking_scores
from humanpose.inference.detector import Detections, DetectionsFile
from humanpose.inference.follow import follow_people
from humanpose.inference.tracking import PoseTracker
from humanpose.runtime.appearance import histogram_similarity, torso_histogram
from humanpose.runtime.kalman import BoxKalman
from humanpose.runtime.pose_similarity import joints_inside
from humanpose.runtime.results import Person
from tests.test_tracking import _box, _person


def test_the_generator_makes_a_detectors_mistakes_reproducibly(tmp_path):
    truth = make_walking_video(150, render=False)
    dets = noisy_detections(truth, seed=3)
    again = noisy_detections(truth, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(dets.boxes, again.boxes))
    sources = np.concatenate(dets.sources)
    scores = np.concatenate(dets.scores)
    assert (sources == FALSE_POSITIVE).sum() >= 10 and scores[sources == FALSE_POSITIVE].max() < 0.5
    assert (sources == MERGED).sum() >= 1  # the crossing gave boxes around both
    real = sum(len(i) for i in truth.ids)
    kept = int((sources > 0).sum()) + 2 * int((sources == MERGED).sum())
    assert 0.7 < kept / real < 0.92  # 10-20 % dropped, plus the blackout
    person, start, length = dets.blackout
    assert length == 10
    for f in range(start, start + length):
        assert person not in dets.sources[f].tolist()
    # Jitter: each edge within 8 % of the box (plus the +-3 % of clutter boxes).
    for f in range(len(truth)):
        for box, src in zip(dets.boxes[f], dets.sources[f]):
            if src > 0:
                true = truth.boxes[f][truth.ids[f] == src][0]
                assert np.all(np.abs(box - true) <= 0.081 * true[[2, 3, 2, 3]] * 1.2 + 1e-6)
    path = tmp_path / "dets.json"
    write_detections_file(dets, path)
    file = DetectionsFile(path)
    assert len(file.for_frame(5)) == len(dets.boxes[5])
    fps = {noisy_scenario(seed, num_frames=5)[0].fps for seed in range(6)}
    assert len(fps) >= 2  # the scenarios vary the frame rate


def test_low_score_boxes_never_start_a_track():
    tracker = PoseTracker(detect_every=1)
    clutter = _person(400, 50)
    for _ in range(20):
        ids = tracker.update([clutter], _box(clutter)[None], np.array([0.3]), detected=True)
        assert ids.tolist() == [-1]
    assert not tracker.tracks


def test_low_score_boxes_continue_a_track_and_new_tracks_wait_for_min_hits():
    tracker = PoseTracker(detect_every=1)
    walker = lambda t: _person(100 + 5 * t, 50)  # noqa: E731
    ids = [tracker.update([walker(t)], _box(walker(t))[None], np.array([0.9]),
                          detected=True).tolist() for t in range(3)]
    assert ids == [[1], [1], [1]]  # the first frame's tracks are confirmed at once
    # Half hidden: scored 0.3 by the detector, matched in the second stage.
    for t in range(3, 6):
        assert tracker.update([walker(t)], _box(walker(t))[None], np.array([0.3]),
                              detected=True).tolist() == [1]
    newcomer = _person(400, 60)
    got = [tracker.update([walker(t), newcomer], np.stack([_box(walker(t)), _box(newcomer)]),
                          np.array([0.9, 0.9]), detected=True).tolist() for t in range(6, 9)]
    assert got == [[1, -1], [1, -1], [1, 2]]


def test_kalman_predicts_a_steady_walk():
    kalman = BoxKalman(np.array([100.0, 50.0, 40.0, 100.0]))
    for t in range(1, 15):
        kalman.predict()
        kalman.update(np.array([100.0 + 4 * t, 50.0 - t, 40.0, 100.0]))
    np.testing.assert_allclose(kalman.velocity, [4.0, -1.0], atol=0.2)
    np.testing.assert_allclose(kalman.box_at(5)[:2], [100 + 4 * 19, 50 - 19], atol=1.5)
    near, far = kalman.distance(np.array([[156.0, 36.0, 40, 100], [250.0, 36.0, 40, 100]]))
    assert near < 5.99 < far


def test_kalman_update_is_the_textbook_one():
    """The filter's shortcut (a diagonal innovation covariance) against the textbook update
    with a full matrix solve, over a random walk with skipped frames."""
    from humanpose.runtime.kalman import xywh_to_cxcyah

    rng = np.random.default_rng(0)
    kalman = BoxKalman(np.array([100.0, 50.0, 40.0, 100.0]))
    mean, cov = kalman.mean.copy(), kalman.covariance.copy()
    h = np.hstack([np.eye(4), np.zeros((4, 4))])
    for _ in range(40):
        steps = int(rng.integers(1, 4))
        kalman.predict(steps)
        mean, cov = kalman.mean.copy(), kalman.covariance.copy()  # predict is unchanged
        box = np.array([100, 50, 40, 100]) + rng.normal(0, [5, 5, 2, 4])
        s = h @ cov @ h.T + np.diag((np.array([1 / 20, 1 / 20, 0, 1 / 20]) * mean[3]
                                     + [0, 0, 0.1, 0]) ** 2)
        gain = cov @ h.T @ np.linalg.inv(s)
        want_mean = mean + gain @ (xywh_to_cxcyah(box) - h @ mean)
        want_cov = cov - gain @ s @ gain.T
        kalman.update(box)
        np.testing.assert_allclose(kalman.mean, want_mean, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(kalman.covariance, want_cov, rtol=1e-9, atol=1e-9)


def test_torso_colours_tell_two_people_apart():
    image = np.zeros((200, 200, 3), np.uint8)
    image[:, :100] = (0, 0, 200)  # red clothes on the left
    image[:, 100:] = (200, 100, 0)  # blue on the right
    red, blue = np.array([10.0, 20, 80, 160]), np.array([110.0, 20, 80, 160])
    a, b = torso_histogram(image, red), torso_histogram(image, blue)
    assert histogram_similarity(a, torso_histogram(image, red + [5, 5, 0, 0])) > 0.95
    assert histogram_similarity(a, b) < 0.1
    assert torso_histogram(image, np.array([500.0, 500, 20, 20])) is None
    assert histogram_similarity(a, None) == 0.5


def test_a_box_the_detector_missed_is_cropped_where_the_person_should_be():
    tracker = PoseTracker(detect_every=1, fill_missed=3)
    image = np.zeros((240, 640, 3), np.uint8)
    seen = []

    def estimate(image, boxes, scores):
        seen.append(len(boxes))
        return [Person(tuple(b), float(s), _person(b[0], b[1]).astype(np.float32), float(s))
                for b, s in zip(boxes, scores)]

    for t in range(6):
        k = _person(100 + 5 * t, 50)
        given = Detections(_box(k)[None], np.array([0.9])) if t != 4 else Detections(
            np.zeros((0, 4)), np.zeros(0))
        people = follow_people(tracker, estimate, image, lambda given=given: given, given, t)
        assert [p.track_id for p in people] == [1]
    k = _person(130, 50)
    other = _person(400, 50)
    given = Detections(_box(other)[None], np.array([0.9]))  # this frame: only the other one
    people = follow_people(tracker, estimate, image, lambda given=given: given, given, 6)
    # The given box, then a crop of our own where person 1 should be.
    assert seen[-2:] == [1, 1] and sorted(p.track_id for p in people) == [-1, 1]
    assert tracker.tracks[0].boxed_frame == 5  # the crop was ours, not the detector's


def test_a_small_box_near_a_lost_person_is_clutter_not_the_person():
    """A box the tracker takes without a matching pose (box take-over: overlap or reach)
    must be about the person's height: a sliver coming out from behind something is, a
    small low-score box of background clutter near where the person went is not (it used
    to take the lost track, which then followed the clutter)."""
    from humanpose.inference.association import box_takeover_scores

    predicted = np.array([[100.0, 100, 80, 240]])
    unseen = np.array([1])
    small = np.array([[150.0, 260, 25, 75]])  # inside the person's box, a third as tall
    sliver = np.array([[165.0, 95, 20, 235]])  # the person's edge, coming out
    assert box_takeover_scores(predicted, small, unseen, 0.5, 0.3)[0, 0] < 0.3  # its IoU
    assert box_takeover_scores(predicted, sliver, unseen, 0.5, 0.3)[0, 0] >= 0.3
    # Nor a false box over half the picture around where they were (twice as tall; seen on
    # the demo video: a person who had walked out of the picture took it).
    huge = np.array([[60.0, 40, 250, 480]])
    assert box_takeover_scores(predicted, huge, unseen, 0.5, 0.3)[0, 0] < 0.3
    # In the tracker: a person walks, is missed, and only a small clutter box is near.
    tracker = PoseTracker(detect_every=1)
    for t in range(4):
        k = _person(100 + 5 * t, 50)
        assert tracker.update([k], _box(k)[None], np.array([0.9]), detected=True).tolist() \
            == [1]
    tracker.update(np.zeros((0, 17, 3)), np.zeros((0, 4)), np.zeros(0), detected=True)
    box = _box(_person(125, 50))
    clutter = np.array([box[0] + 0.3 * box[2], box[1] + 0.6 * box[3], 0.2 * box[2],
                        0.3 * box[3]])
    faint = np.zeros((1, 17, 3))
    faint[0, :, :2] = clutter[:2] + clutter[2:] / 2
    faint[0, :, 2] = 0.05  # what a pose model finds on an empty crop
    assert tracker.update(faint, clutter[None], np.array([0.3]), detected=True).tolist() \
        == [-1]


def _track_noisy_scenario(seed: int, **settings) -> tuple:
    """A noisy scenario's detections file through follow_people, the pose model standing in
    by the ground truth (a crop gives the person it overlaps most); per frame the written
    ids and boxes, and which written boxes are clutter boxes."""
    truth, dets = noisy_scenario(seed)
    tracker = PoseTracker(fps=truth.fps, **settings)
    rng = np.random.default_rng(seed)
    image = np.zeros((truth.height, truth.width, 3), np.uint8)
    ids, boxes, clutter = [], [], 0
    for frame in range(len(truth)):
        def estimate(image, crops, scores, frame=frame):
            kpts, crops, _ = noisy_people(truth, frame, rng, 3.0, crops)
            return [Person(tuple(b), float(s), k.astype(np.float32), float(s))
                    for k, b, s in zip(kpts, crops, scores)]

        given = Detections(dets.boxes[frame], dets.scores[frame])
        people = [p for p in follow_people(tracker, estimate, image, lambda g=given: g, given,
                                           frame) if p.track_id >= 0]
        ids.append(np.array([p.track_id for p in people], dtype=np.int64))
        boxes.append(np.array([p.box for p in people], dtype=np.float64).reshape(-1, 4))
        fp = dets.boxes[frame][dets.sources[frame] == FALSE_POSITIVE]
        clutter += int(np.isclose(boxes[-1][:, None], fp[None]).all(-1).any(1).sum())
    return truth, dets, ids, boxes, clutter


def _id_of(truth, ids, boxes, person: int, frame: int) -> int | None:
    """The written id whose box covers the true ``person`` in ``frame`` (IoU >= 0.5)."""
    true = truth.boxes[frame][truth.ids[frame] == person]
    if not len(true) or not len(boxes[frame]):
        return None
    iou = box_iou(true, boxes[frame])[0]
    return int(ids[frame][iou.argmax()]) if iou.max() >= 0.5 else None


def test_ids_hold_through_a_detectors_noise_crossings_blackouts_and_clutter():
    """Every noisy scenario of the benchmark (jitter, dropped and merged boxes, a person
    missed 10 frames, low-score clutter), default settings: one id per person, none for
    the clutter, the same id after the blackout as before, IDF1 >= 0.9 and at most one
    switch per 100 frames (CLEAR MOT's count, as motmetrics makes it)."""
    for seed in range(6):
        truth, dets, ids, boxes, clutter = _track_noisy_scenario(seed)
        scores = tracking_scores(truth.ids, truth.boxes, ids, boxes)
        assert scores.idf1 >= 0.9 and scores.switches_per_100 <= 1.0, (seed, scores)
        people = {i for f in truth.ids for i in f.tolist()}
        assert len({i for f in ids for i in f.tolist()}) == len(people), seed
        assert clutter == 0, seed
        person, start, length = dets.blackout
        before = next(i for f in range(start - 1, -1, -1)
                      if (i := _id_of(truth, ids, boxes, person, f)) is not None)
        after = next(i for f in range(start + length, len(truth))
                     if (i := _id_of(truth, ids, boxes, person, f)) is not None)
        assert before == after, seed


def test_without_crops_for_missed_people_the_dropped_boxes_cost_the_ids_their_frames():
    # The same scenarios with TRACK.FILL_MISSED 0: every dropped box is a frame without
    # the person (this is what the default's crops win back).
    truth, _, ids, boxes, _ = _track_noisy_scenario(0, fill_missed=0)
    filled = _track_noisy_scenario(0)
    assert (tracking_scores(truth.ids, truth.boxes, ids, boxes).idf1 + 0.03
            < tracking_scores(truth.ids, truth.boxes, filled[2], filled[3]).idf1)


def test_a_low_score_box_that_misses_most_of_the_person_gives_the_id_not_the_box():
    """Clutter over a person's legs, in a frame whose detector dropped the person: the crop
    shows the person (their joints continue the track), but the box written is the
    track's, not the clutter's."""
    tracker = PoseTracker(detect_every=1)
    for t in range(5):
        k = _person(100 + 4 * t, 50)
        ids = tracker.update([k], _box(k)[None], np.array([0.9]), detected=True)
    k = _person(120, 50)
    legs = _box(k)
    legs[1] += 0.6 * legs[3]
    legs[3] *= 0.4
    ids = tracker.update([k], legs[None], np.array([0.3]), detected=True)
    assert ids.tolist() == [1] and tracker.foreign_box.tolist() == [True]
    written = tracker.box_of(1)
    assert box_iou(written[None], _box(k)[None])[0, 0] > 0.8
    inside = joints_inside(np.stack([k, k]), np.stack([legs, _box(k)]))
    assert inside[0] < 0.7 <= inside[1] == 1.0


def test_a_person_the_detector_missed_is_boxed_where_the_crop_finds_them():
    """A person walks, then stops while the detector misses them: the crops find them
    standing, and their box stays on them (a box coasting on the Kalman filter's walk
    would slide off)."""
    tracker = PoseTracker(detect_every=1, fill_missed=3)
    image = np.zeros((240, 640, 3), np.uint8)
    for t, x in enumerate([100, 105, 110, 115, 120, 120, 120, 120]):
        k = _person(x, 50)
        boxes = _box(k)[None] if t < 5 else np.zeros((0, 4))

        def estimate(image, crops, scores, k=k):  # the person where they are, in any crop
            return [Person(tuple(b), float(s), k.astype(np.float32), float(s))
                    for b, s in zip(crops, scores)]

        people = follow_people(tracker, estimate, image,
                               lambda b=boxes: Detections(b, np.full(len(b), 0.9)), None, t)
        assert [p.track_id for p in people] == [1]
    assert box_iou(tracker.box_of(1)[None], _box(_person(120, 50))[None])[0, 0] > 0.9


def test_a_person_is_looked_for_in_crops_only_for_fill_missed_frames_after_the_detector():
    """fill_missed counts frames since the detector last boxed the person, not fills: with
    the detector every 5th frame, the crops in between are the tracker's own, so a miss on
    the detector's frame is believed (no crop there); with it on every frame, the person
    is looked for 3 frames in a row, then let go."""
    image = np.zeros((240, 640, 3), np.uint8)

    def estimate(image, boxes, scores):
        return [Person(tuple(b), float(s), _person(b[0], b[1]).astype(np.float32), float(s))
                for b, s in zip(boxes, scores)]

    def run(detect_every: int, frames: int) -> tuple[list[bool], list[int]]:
        """Per frame: whether the detector ran, and whether person 1 was written."""
        tracker = PoseTracker(detect_every=detect_every, fill_missed=3)
        ran, written = [], []
        for t in range(frames):
            k = _person(100 + 5 * t, 50)
            boxes = _box(k)[None] if t < 5 else np.zeros((0, 4))  # then the detector loses them
            ran.append(tracker.needs_detection())
            people = follow_people(tracker, estimate, image,
                                   lambda b=boxes: Detections(b, np.full(len(b), 0.9)), None, t)
            written.append(int(any(p.track_id == 1 for p in people)))
        return ran, written

    # Every frame: boxed on 0-4, crops where the person should be on 5, 6, 7, then lost.
    ran, written = run(1, 10)
    assert all(ran) and written == [1] * 8 + [0, 0]
    # Every 5th frame: the detector on 0, the tracker's crops on 1-4; the detector's frame
    # 5 misses the person, 5 frames after its last box (more than 3): no crop, lost.
    ran, written = run(5, 6)
    assert ran == [True, False, False, False, False, True] and written == [1] * 5 + [0]


def test_a_box_around_two_people_is_merged_only_when_no_other_box_fits_either():
    from humanpose.inference.association import merged_boxes

    front = np.array([100.0, 100, 120, 300])  # a near person
    behind = np.array([130.0, 110, 60, 150])  # a far one, inside the near one's box
    predicted = np.stack([front, behind])
    around = np.array([[95.0, 95, 130, 310]])  # one box over both
    assert merged_boxes(predicted, around).tolist() == [True]
    # The detector boxes the far person too: the big box is the near person's own.
    both = np.concatenate([around, behind[None] + [2, 2, 0, 0]])
    assert merged_boxes(predicted, both).tolist() == [False, False]
    assert merged_boxes(np.zeros((0, 4)), around).tolist() == [False]


def test_a_lost_track_does_not_take_a_second_box_on_people_already_matched():
    """A detector's second, low-score box on a person who is matched (the crop there shows
    that person again) is no one new: a track lost nearby must not take it (it would then
    follow that person). Seen in the demo's video: the person coming out from behind the
    pillar got a new id, and the one the lost track followed lost theirs."""
    from humanpose.inference.association import repeats_matched

    boxes = np.array([[100.0, 100, 60, 150], [190.0, 100, 60, 150], [110.0, 100, 70, 150]])
    ids = np.array([1, 2, -1])
    assert repeats_matched(boxes, ids).tolist() == [False, False, True]
    assert repeats_matched(boxes[[0, 1]], ids[[0, 1]]).tolist() == [False, False]

    tracker = PoseTracker(detect_every=1, min_hits=1, fill_missed=0)
    a, b, c = _person(100, 50), _person(260, 50), _person(320, 50)
    for _ in range(3):  # three people standing
        tracker.update(np.stack([a, b, c]), np.stack([_box(a), _box(b), _box(c)]),
                       np.full(3, 0.9), detected=True)
    for _ in range(3):  # the third goes behind something
        tracker.update(np.stack([a, b]), np.stack([_box(a), _box(b)]), np.full(2, 0.9),
                       detected=True)
    # The detector gives b a second box; its crop shows b again.
    second = _box(b) + [10, 0, 0, 0]  # IoU 0.6 with b's, near where c was
    ids = tracker.update(np.stack([a, b, b]), np.stack([_box(a), _box(b), second]),
                         np.array([0.9, 0.9, 0.3]), detected=True)
    assert ids.tolist() == [1, 2, -1] and not tracker.box_only.any()
    assert [t.track_id for t in tracker.lost] == [3]


def test_the_video_truth_has_the_whole_figure_boxes_too():
    truth = make_walking_video(150, render=False)
    grew = 0
    for boxes, full in zip(truth.boxes, truth.full_boxes):
        assert boxes.shape == full.shape
        # The pixels in view lie inside the whole figure.
        assert np.all(full[:, :2] <= boxes[:, :2] + 1e-6)
        assert np.all(full[:, :2] + full[:, 2:] >= boxes[:, :2] + boxes[:, 2:] - 1e-6)
        grew += int((full[:, 2] * full[:, 3] > 1.2 * boxes[:, 2] * boxes[:, 3]).sum())
    assert grew >= 20  # the pillar and the crossing hide parts of people


def test_a_second_box_nested_in_a_followed_persons_box_starts_no_track():
    """A detector that boxes a person whole and, a second time, only a part of them (or the
    reverse) gives two confident boxes nested one in the other, IoU under the 0.7 that
    marks a plain duplicate: no second person. Seen with the demo's detector trained 150
    epochs (boxes below from its frame 44): the extra track took the person over."""
    from humanpose.inference.track import Motion, Track, start_tracks

    motion = Motion(0.2, 0.3, 3, 1.15, 0.5)
    whole = np.array([306.0, 201, 277, 279])
    part = np.array([316.0, 214, 180, 259])  # IoU 0.60 with the whole, inside it
    elsewhere = np.array([20.0, 200, 100, 270])
    for followed, new in ((whole, part), (part, whole), (whole, elsewhere)):
        k = _person(*new[:2])
        tracks = [Track.start(1, _person(*followed[:2]), followed, True, 0.9, 0.9, 7, motion,
                              True, None)]
        ids = np.array([-1])
        start_tracks(tracks, 2, np.array([0]), ids, k[None], new[None], True,
                     np.array([0.9]), np.array([0.9]), 7, motion, True, None)
        assert ids.tolist() == ([2] if new is elsewhere else [-1]), (followed, new)


def test_a_track_kept_on_its_own_crop_of_someone_else_takes_no_second_box_of_theirs():
    """Between detections a crowded track whose crop shows its neighbour goes on by that
    crop: not a detector's box, so the person counts as missed (seen with the demo's
    models, video seed 1, every 5th frame: the hidden person's track rode on its own
    crops, then took the neighbour's second box at the next detection: 3 switches)."""
    from humanpose.inference.recovery import take_left_boxes
    from humanpose.inference.track import Motion, Track

    motion = Motion(0.2, 0.3, 3, 1.15, 0.5)
    box = np.array([100.0, 100, 100, 200])
    for detector in (False, True):
        track = Track.start(1, _person(100, 100), box, True, 0.9, 0.9, 7, motion, True, None)
        track.take_box(8, box, 0.6, detector=detector)
        assert track.missed is not detector
        assert track.boxed_frame == (8 if detector else 7)
        # At the next frame a box left over where the track is, repeating a person matched.
        ids = np.array([-1])
        taken = take_left_boxes([track], [0], 9, set(), np.array([0]), box[None],
                                np.array([0.4]), ids, track.predict(9)[0][None], 0.5, 0.3,
                                repeats=np.array([True]))
        assert taken == ([0] if detector else []), detector


def test_a_lost_track_takes_no_box_left_over_on_someone_dressed_otherwise():
    from humanpose.inference.recovery import take_left_boxes
    from humanpose.inference.track import Motion, Track

    motion = Motion(0.2, 0.3, 3, 1.15, 0.5)
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    image[:, :200] = (40, 40, 220)  # red on the left, blue on the right (BGR)
    image[:, 200:] = (220, 60, 40)
    for x, colour_taken in ((110.0, True), (250.0, False)):
        joints = _person(x, 100)
        box = np.array([x - 10, 90, 60, 120])
        for given_image in (None, image):
            track = Track.start(1, _person(100, 100), np.array([90.0, 90, 60, 120]), True,
                                0.9, 0.9, 7, motion, True, image)  # dressed in red
            assert track.appearance is not None
            ids = np.array([-1])
            taken = take_left_boxes([track], [0], 10, set(), np.array([0]), box[None],
                                    np.array([0.4]), ids, box[None], 0.5, 0.3, None,
                                    given_image, joints[None], 0.6)
            expected = given_image is None or colour_taken
            assert taken == ([0] if expected else []), (x, given_image is None)


def test_a_crop_for_a_missed_person_showing_someone_a_step_away_keeps_no_one():
    """A crop where the track expects a person the detector missed, whose joints lie far
    from where the track's joints should be (a third of the person's height in one frame:
    someone in front or beside), does not continue the track (seen with the demo's models,
    video seed 3: the hidden person's track went off with the front person's joints and
    the person got a new id when they came out)."""
    from humanpose.inference.recovery import continue_missed
    from humanpose.inference.track import Motion, Track

    motion = Motion(0.2, 0.3, 3, 1.15, 0.5)
    sigmas = np.full(17, 0.05)
    box = np.array([95.0, 95, 50, 110])
    for shift, kept in ((3.0, True), (40.0, False)):
        track = Track.start(1, _person(100, 100), box, True, 0.9, 0.9, 7, motion, True, None)
        found = _person(100 + shift, 100)[None]
        ids = continue_missed([track], 8, np.array([1]), found, box[None], np.array([0.9]),
                              0.25, sigmas, 1.0, 0.2, 0.8, motion, None)
        assert ids.tolist() == ([1] if kept else [-1]), shift
        assert (track.last_frame == 8) is kept
