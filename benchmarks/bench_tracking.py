"""Tracking and smoothing on a generated 640x480 video of 3 people walking and crossing.

The video (humanpose.data.synthetic_video) has known ids and key points, a crossing where
the nearer person hides much of the other, and a pillar that hides people for a few
frames. The frame loop is :func:`humanpose.inference.tracking.follow_people`, the one of
``humanpose infer --track``: the detector runs every ``--detect-every`` frames and whenever
the tracker asks; in between, the tracker's predicted boxes place the crops.

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

``--noisy-seeds N``: instead, N generated scenarios (humanpose.data.synthetic_detections:
15/25/30 frames/s, 120-300 frames, boxes jittered 8 %, 10-20 % dropped, merged at the
crossing, one person missed 10 frames, low-score clutter) given as per-frame detections
files, as ``infer --track --boxes`` gets them; with ``--peers PYTHON`` (a venv with
trackers 2.6.1, see benchmarks/tracking_peers.py) SORT, ByteTrack, OC-SORT and BoT-SORT
run on the same detections beside it, and every tracker's tracks are scored again the
field's way (motmetrics IDF1/MOTA/switches, trackeval HOTA:
benchmarks/tracking_standard_scores.py, in the same venv).

    python benchmarks/bench_tracking.py --noisy-seeds 6 --peers /tmp/peers/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from humanpose.data.synthetic_detections import FALSE_POSITIVE, NoisyDetections, noisy_scenario
from humanpose.data.synthetic_video import VideoTruth, make_walking_video, noisy_people
from humanpose.evaluation.tracking import keypoint_jitter, tracking_scores
from humanpose.inference.detector import Detections
from humanpose.inference.estimator import Person
from humanpose.inference.smoothing import KeypointSmoother
from humanpose.inference.tracking import PoseTracker, follow_people


class Scene:
    """The per-frame callables of :func:`humanpose.inference.tracking.follow_people` for the
    generated video: ``estimate(image, boxes, scores)`` (the pose model) and ``detect()``
    (the detector), with ``frame`` set by the loop. Default: the noisy ground truth (a crop
    gives the person it overlaps most, :func:`noisy_people`; the detector gives the people's
    boxes jittered by 2 %)."""

    def __init__(self, truth: VideoTruth, noise: float = 3.0, seed: int = 0):
        self.truth, self.noise = truth, noise
        self.rng = np.random.default_rng(seed)
        self.frame = 0
        self.detector_runs = 0
        self.blank = np.zeros((truth.height, truth.width, 3), dtype=np.uint8)  # not rendered

    def run_detector(self) -> Detections:
        self.detector_runs += 1
        return self.detect()

    def image(self) -> np.ndarray:
        return self.truth.frames[self.frame] if self.truth.frames else self.blank

    def estimate(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> list:
        keypoints, boxes, _ = noisy_people(self.truth, self.frame, self.rng, self.noise, boxes)
        return [Person(tuple(b), float(s), k.astype(np.float32), float(s))
                for k, b, s in zip(keypoints, boxes, scores)]

    def detect(self) -> Detections:
        _, boxes, scores = noisy_people(self.truth, self.frame, self.rng, self.noise)
        return Detections(boxes, scores)


class EstimatorScene(Scene):
    """A real PoseEstimator on the rendered frames, and its detector (with ``truth_boxes``,
    the ground-truth boxes of the people in view instead: a perfect detector, so that the
    figures are the pose model's and the tracker's)."""

    def __init__(self, truth: VideoTruth, cfg: str, weights: str | None,
                 detector: str | None, truth_boxes: bool = False):
        super().__init__(truth)
        from humanpose.inference.estimator import PoseEstimator

        self.est = PoseEstimator(cfg, weights, detector=detector, flip_test=False)
        self.truth_boxes = truth_boxes

    def estimate(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> list:
        return self.est(image, boxes, scores)

    def detect(self) -> Detections:
        if self.truth_boxes:
            boxes = self.truth.boxes[self.frame]
            return Detections(boxes, np.ones(len(boxes)))
        return self.est.detector(self.image())


def run(truth: VideoTruth, tracker: PoseTracker, scene: Scene) -> dict[str, list]:
    """The frame loop of ``humanpose infer --track``
    (:func:`~humanpose.inference.tracking.follow_people`): the detector when the tracker asks,
    the tracker's boxes otherwise, the pose model, the track ids. Kept per frame: the
    followed people's ids, the boxes they are written with and their key points."""
    out: dict[str, list] = {"ids": [], "boxes": [], "keypoints": [], "detected": []}
    for frame in range(len(truth)):
        scene.frame = frame
        runs = scene.detector_runs
        people = follow_people(tracker, scene.estimate, scene.image(), scene.run_detector,
                               frame=frame)
        people = [p for p in people if p.track_id >= 0]
        out["ids"].append(np.array([p.track_id for p in people], dtype=np.int64))
        out["boxes"].append(np.array([p.box for p in people], dtype=np.float64).reshape(-1, 4))
        out["keypoints"].append(np.array([p.keypoints for p in people],
                                         dtype=np.float64).reshape(len(people), -1, 3))
        out["detected"].append(scene.detector_runs > runs)
    return out


def run_on_detections(truth: VideoTruth, dets: NoisyDetections, tracker: PoseTracker,
                      seed: int) -> tuple[list, list, float]:
    """The ``--boxes`` loop: each frame's given detections through the noisy-truth pose
    model and :func:`follow_people`; the written people's ids and boxes per frame, and the
    tracker's mean seconds per frame."""
    scene = Scene(truth, 3.0, seed)
    ids, boxes, spent = [], [], 0.0
    for frame in range(len(truth)):
        scene.frame = frame
        times: dict[str, float] = {}
        given = Detections(dets.boxes[frame], dets.scores[frame])
        people = follow_people(tracker, scene.estimate, scene.image(),
                               lambda given=given: given, given, frame, times)
        spent += times["tracking"]
        people = [p for p in people if p.track_id >= 0]
        ids.append(np.array([p.track_id for p in people], dtype=np.int64))
        boxes.append(np.array([p.box for p in people], dtype=np.float64).reshape(-1, 4))
    return ids, boxes, spent / max(len(truth), 1)


def noisy_benchmark(seeds: int, peers_python: str | None, fill_missed: int | None = None
                    ) -> None:
    """Ours beside the peers on ``seeds`` noisy scenarios: IDF1 / ID switches / ids."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tracking_peers import PEERS, write_input

    for seed in range(seeds):
        truth, dets = noisy_scenario(seed, render=True)
        tracker = PoseTracker(fps=truth.fps, **_fill(fill_missed))
        ids, boxes, per_frame = run_on_detections(truth, dets, tracker, seed)
        results = {"humanpose": (ids, boxes)}
        if peers_python:
            with tempfile.TemporaryDirectory() as tmp:
                write_input(Path(tmp) / "in.npz", dets.boxes, dets.scores, truth.fps,
                            truth.width, truth.height, frames=truth.frames)
                subprocess.run([peers_python, str(Path(__file__).parent / "tracking_peers.py"),
                                "--input", str(Path(tmp) / "in.npz"), "--output",
                                str(Path(tmp) / "out.json")], check=True)
                out = json.loads((Path(tmp) / "out.json").read_text())
            for name in PEERS:
                results[name] = ([np.array(f[0], dtype=np.int64) for f in out[name]],
                                 [np.array(f[1], dtype=np.float64).reshape(-1, 4)
                                  for f in out[name]])
        cells = []
        for name, (hyp_ids, hyp_boxes) in results.items():
            s = tracking_scores(truth.ids, truth.boxes, hyp_ids, hyp_boxes)
            count = len({i for f in hyp_ids for i in f.tolist()})
            cells.append(f"{name} {s.idf1:.3f}/{s.id_switches}/{count}")
        clutter = sum(int(np.isclose(d[None], b[:, None]).all(-1)[:, src == FALSE_POSITIVE]
                          .any(1).sum()) for d, b, src in zip(dets.boxes, boxes, dets.sources))
        print(f"seed {seed} ({truth.fps:g} fps, {len(truth)} frames; IDF1/switches/ids): "
              + ", ".join(cells) + f"; tracking {1000 * per_frame:.2f} ms/frame; "
              f"false-positive boxes written with an id: {clutter}")
        if peers_python:  # the field's scoring: motmetrics and trackeval, in the peers' venv
            standard = standard_scores(peers_python, truth, results)
            print(f"seed {seed} motmetrics IDF1/MOTA/switches, trackeval HOTA: " + ", ".join(
                f"{name} {v['idf1']:.3f}/{v['mota']:.3f}/{v['switches']}/{v['hota']:.3f}"
                for name, v in standard.items()))


def standard_scores(peers_python: str, truth: VideoTruth, results: dict) -> dict:
    """``benchmarks/tracking_standard_scores.py`` (motmetrics + trackeval) on ``results``
    (``{name: (ids per frame, boxes per frame)}``)."""
    def frames(ids, boxes):
        return [[i.tolist(), b.tolist()] for i, b in zip(ids, boxes)]

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "in.json").write_text(json.dumps({
            "truth": frames(truth.ids, truth.boxes),
            "trackers": {name: frames(*tracks) for name, tracks in results.items()}}))
        subprocess.run([peers_python, str(Path(__file__).parent / "tracking_standard_scores.py"),
                        "--input", str(Path(tmp, "in.json")), "--output",
                        str(Path(tmp, "out.json"))], check=True)
        return json.loads(Path(tmp, "out.json").read_text())


def _fill(fill_missed: int | None) -> dict:
    return {} if fill_missed is None else {"fill_missed": fill_missed}


def smooth(truth: VideoTruth, result: dict[str, list], **kwargs) -> list[np.ndarray]:
    """The tracked key points through a One-Euro filter per track (time from the fps)."""
    smoother = KeypointSmoother(fps=truth.fps, **kwargs)
    return [smoother(ids, k) for ids, k in zip(result["ids"], result["keypoints"])]


def cost_benchmark(people: int, frames: int = 180, repeats: int = 1) -> None:
    """Milliseconds per frame of ``PoseTracker.update`` alone for ``people`` walking people
    with detector boxes on every frame, without and with the image (torso histograms); with
    ``repeats`` > 1 the whole run is repeated (interleaved) and the median of the runs'
    medians is printed with their range (a shared machine's speed drifts)."""
    runs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for with_image in (False, True):
            runs[with_image].append(_cost_run(people, frames, with_image))
    for with_image, values in runs.items():
        spread = (f" of {repeats} runs' medians; {min(values):.2f}-{max(values):.2f}"
                  if repeats > 1 else "")
        print(f"{people} people, {frames} frames, detector boxes every frame, "
              f"{'with' if with_image else 'without'} the image: "
              f"{statistics.median(values):.2f} ms/frame (median{spread})")


def _cost_run(people: int, frames: int, with_image: bool) -> float:
    """One run of :func:`cost_benchmark`: the median ms of ``PoseTracker.update``."""
    rng = np.random.default_rng(0)
    template = rng.uniform([-0.25, -0.5], [0.25, 0.5], (17, 2))  # joints in a 1x2 box
    starts = np.stack([np.linspace(40, 560, people), rng.uniform(150, 330, people)], 1)
    speeds = rng.uniform(-3, 3, (people, 2)) * [1, 0.2]
    heights = rng.uniform(120, 200, people)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    tracker = PoseTracker()
    times = []
    for f in range(frames):
        centres = starts + speeds * f
        xy = centres[:, None] + template[None] * heights[:, None, None]
        kpts = np.concatenate([xy + rng.normal(0, 1.5, xy.shape),
                               np.full((people, 17, 1), 0.9)], axis=2)
        lo, hi = xy.min(1), xy.max(1)
        boxes = np.concatenate([lo - 5, hi - lo + 10], axis=1)
        start = time.perf_counter()
        tracker.update(kpts, boxes, np.full(people, 0.9), detected=True,
                       image=image if with_image else None)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[10:])


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
    parser.add_argument("--noisy-seeds", type=int, default=0,
                        help="score on this many noisy detections scenarios instead")
    parser.add_argument("--peers", help="python of a venv with trackers 2.6.1")
    parser.add_argument("--fill-missed", type=int, default=None,
                        help="PoseTracker(fill_missed=): crops for missed people (default: "
                             "the tracker's, TRACK.FILL_MISSED)")
    parser.add_argument("--cost-people", type=int, default=0,
                        help="time PoseTracker.update alone for this many people")
    parser.add_argument("--cost-repeats", type=int, default=1,
                        help="with --cost-people: repeat the timing this many times")
    args = parser.parse_args()
    if args.cost_people:
        cost_benchmark(args.cost_people, repeats=args.cost_repeats)
        return
    if args.noisy_seeds:
        noisy_benchmark(args.noisy_seeds, args.peers, args.fill_missed)
        return

    start = time.perf_counter()
    truth = make_walking_video(args.frames, render=args.cfg is not None, seed=args.seed)
    made = time.perf_counter() - start
    scene = (EstimatorScene(truth, args.cfg, args.weights, args.detector, args.truth_boxes)
             if args.cfg else Scene(truth, args.noise, args.seed))
    tracker = PoseTracker(detect_every=args.detect_every, **_fill(args.fill_missed))
    start = time.perf_counter()
    result = run(truth, tracker, scene)
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
          f"{len({i for ids in result['ids'] for i in ids.tolist()})} track ids "
          "(truth: the boxes of the pixels in view)")
    whole = tracking_scores(truth.ids, truth.full_boxes, result["ids"], result["boxes"])
    print(f"against whole-figure boxes (hidden parts included, as MOT benchmarks annotate and "
          f"the demo's detector is taught): ID switches {whole.id_switches}, IDF1 "
          f"{whole.idf1:.3f} (IDP {whole.idp:.3f}, IDR {whole.idr:.3f})")
    cut = 100 * (1 - smo["jitter"] / raw["jitter"])
    print(f"jitter raw {raw['jitter']:.2f} px, One-Euro {smo['jitter']:.2f} px "
          f"({cut:.0f} % lower; min_cutoff {args.min_cutoff:g}, beta {args.beta:g}); "
          f"mean error raw {raw['error']:.2f} px, One-Euro {smo['error']:.2f} px")


if __name__ == "__main__":
    main()
