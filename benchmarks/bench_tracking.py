"""Tracking and smoothing on a generated 640x480 video of 3 people walking and crossing.

The video (humanpose.data.synthetic_video) has known ids and key points, a crossing where
the nearer person hides much of the other, and a pillar that hides people for a few
frames. The detector runs every ``--detect-every`` frames and whenever the tracker asks;
in between, the tracker's predicted boxes place the crops.

Default mode (fast, no network): the "pose model" is the ground truth with Gaussian noise
(``--noise`` pixels; hidden joints at low confidence; a crop on nobody gives a faint noisy
person), so the figures measure the tracker and the smoother alone. ``--cfg``/``--weights``
(and ``--detector``) run a real PoseEstimator and detector on the drawn frames instead.

Printed: ID switches per 100 frames, IDF1 (box IoU >= 0.5), key-point jitter and mean
error in pixels without and with One-Euro smoothing (definitions in
humanpose.evaluation.tracking), and how often the detector ran.

    python benchmarks/bench_tracking.py [--frames 150] [--noise 3] [--detect-every 5]
    python benchmarks/bench_tracking.py --cfg experiments/...yaml --weights model.pth \
        [--detector FILE | --truth-boxes]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from humanpose.data.synthetic_video import VideoTruth, make_walking_video, noisy_people
from humanpose.evaluation.tracking import keypoint_jitter, tracking_scores
from humanpose.inference.smoothing import KeypointSmoother
from humanpose.inference.tracking import PoseTracker


def run(truth: VideoTruth, tracker: PoseTracker, pose=None, noise: float = 3.0, seed: int = 0
        ) -> dict[str, list]:
    """The frame loop: boxes (detector or tracker) -> people -> track ids. ``pose``: a
    callable ``(frame_index, crops or None) -> (keypoints, boxes, scores)``; default: the
    noisy ground truth."""
    rng = np.random.default_rng(seed)
    if pose is None:
        def pose(frame, crops):
            return noisy_people(truth, frame, rng, noise, crops)
    out: dict[str, list] = {"ids": [], "boxes": [], "keypoints": [], "detected": []}
    for frame in range(len(truth)):
        detect = tracker.needs_detection()
        crops = None if detect else tracker.predicted_boxes()[1]
        keypoints, boxes, scores = pose(frame, crops)
        ids = tracker.update(keypoints, boxes, scores, detected=detect)
        # As humanpose.inference.tracking.follow_people: a person followed by its box
        # alone whose crop gave another person's joints keeps no key points.
        keypoints = keypoints.copy()
        keypoints[tracker.box_only & tracker.copies, :, 2] = 0.0
        keep = ids >= 0
        out["ids"].append(ids[keep])
        out["keypoints"].append(keypoints[keep])
        # The box each person was cropped from (the detector's, or the tracker's between
        # detections): the ``bbox`` humanpose writes for the person.
        out["boxes"].append(boxes[keep])
        out["detected"].append(detect)
    return out


def smooth(truth: VideoTruth, result: dict[str, list], **kwargs) -> list[np.ndarray]:
    """The tracked key points through a One-Euro filter per track (time from the fps)."""
    smoother = KeypointSmoother(fps=truth.fps, **kwargs)
    return [smoother(ids, k) for ids, k in zip(result["ids"], result["keypoints"])]


def estimator_pose(truth: VideoTruth, cfg: str, weights: str | None, detector: str | None,
                   truth_boxes: bool = False):
    """``pose`` for :func:`run` from a real PoseEstimator (and its detector; with
    ``truth_boxes`` the detector frames get the ground-truth boxes of the people in view, a
    perfect detector, so that the figures are the pose model's and the tracker's)."""
    from humanpose.inference.estimator import PoseEstimator

    est = PoseEstimator(cfg, weights, detector=detector, flip_test=False)

    def pose(frame, crops):
        image = truth.frames[frame]
        if crops is None and truth_boxes:
            boxes, scores = truth.boxes[frame], np.ones(len(truth.boxes[frame]))
        elif crops is None:
            found = est.detector(image)
            boxes, scores = found.boxes, found.scores
        else:
            boxes, scores = crops, np.full(len(crops), 0.9)
        people = est(image, boxes, scores)
        k = est.keypoint_set.num_joints
        kpts = np.stack([p.keypoints for p in people]) if people else np.zeros((0, k, 3))
        return kpts, np.array([p.box for p in people]).reshape(-1, 4), \
            np.array([p.box_score for p in people])
    return pose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--noise", type=float, default=3.0, help="key-point noise, pixels")
    parser.add_argument("--detect-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-cutoff", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=0.03)
    parser.add_argument("--cfg", help="a real PoseEstimator's config (else noisy ground truth)")
    parser.add_argument("--weights")
    parser.add_argument("--detector", help="person detector for the real mode")
    parser.add_argument("--truth-boxes", action="store_true",
                        help="real mode: ground-truth boxes on the detector's frames")
    args = parser.parse_args()

    start = time.perf_counter()
    truth = make_walking_video(args.frames, render=args.cfg is not None, seed=args.seed)
    made = time.perf_counter() - start
    pose = estimator_pose(truth, args.cfg, args.weights, args.detector,
                          args.truth_boxes) if args.cfg else None
    tracker = PoseTracker(detect_every=args.detect_every)
    start = time.perf_counter()
    result = run(truth, tracker, pose, args.noise, args.seed)
    tracked = time.perf_counter() - start
    smoothed = smooth(truth, result, min_cutoff=args.min_cutoff, beta=args.beta)
    scores = tracking_scores(truth.ids, truth.boxes, result["ids"], result["boxes"])
    raw = keypoint_jitter(truth.ids, truth.boxes, truth.keypoints, result["ids"],
                          result["boxes"], result["keypoints"])
    smo = keypoint_jitter(truth.ids, truth.boxes, truth.keypoints, result["ids"],
                          result["boxes"], smoothed)
    mode = f"PoseEstimator {args.cfg}" if args.cfg else f"ground truth + {args.noise:g} px noise"
    print(f"{len(truth)} frames 640x480, 3 people ({mode}), detect every {args.detect_every}: "
          f"detector ran on {sum(result['detected'])} frames; generation {made:.1f} s, "
          f"loop {1000 * tracked / len(truth):.2f} ms/frame")
    print(f"ID switches per 100 frames {scores.switches_per_100:.2f} ({scores.id_switches}), "
          f"IDF1 {scores.idf1:.3f} (IDP {scores.idp:.3f}, IDR {scores.idr:.3f}), "
          f"{len({i for ids in result['ids'] for i in ids.tolist()})} track ids")
    cut = 100 * (1 - smo["jitter"] / raw["jitter"])
    print(f"jitter raw {raw['jitter']:.2f} px, One-Euro {smo['jitter']:.2f} px "
          f"({cut:.0f} % lower; min_cutoff {args.min_cutoff:g}, beta {args.beta:g}); "
          f"mean error raw {raw['error']:.2f} px, One-Euro {smo['error']:.2f} px")


if __name__ == "__main__":
    main()
