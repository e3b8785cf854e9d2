"""End-to-end video rate of ``humanpose infer --track``: read, detect, pose, track, draw,
write, serial against pipelined, side by side.

The video is the generated 640x480 one of 3 people walking and crossing
(humanpose.data.synthetic_video). The pose model is ``--cfg`` with ``--weights`` (default:
RTMPose-t with random weights: its speed is a trained model's, not its key points); the
person detector is ``--detector-cfg`` with ``--detector-weights`` (default: RTMDet-nano with
random weights) run every ``--detect-every`` frames and when tracks are lost.

Random detector weights give meaningless boxes (often none), so ``--boxes-from-truth``
feeds the ground-truth boxes of every frame as a COCO detections file (``frame`` fields)
instead: the figures are then pose + tracking + I/O, without the detector.

Each mode runs ``--runs`` times (interleaved: serial, pipelined, serial, ...); the median
run is reported. Torch gets ``--threads`` threads (2: the target of the issue). Keep
``--frames`` small on a shared machine.

    python benchmarks/bench_video.py --frames 30 --runs 1 --boxes-from-truth
    python benchmarks/bench_video.py --cfg experiments/coco/rtmpose/rtmpose_t_256x192.yaml \\
        --weights rtmpose_t.pth --detector-weights rtmdet_nano.pth --frames 300 --runs 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from humanpose.config import get_cfg  # noqa: E402
from humanpose.data.synthetic_video import make_walking_video, write_video  # noqa: E402
from humanpose.inference import PoseEstimator, PoseTracker  # noqa: E402
from humanpose.inference.sources import open_source  # noqa: E402
from humanpose.inference.video import STAGES, RunSummary, run_on_source  # noqa: E402

POSE_CFG = REPO / "experiments" / "coco" / "rtmpose" / "rtmpose_t_256x192.yaml"
DETECTOR_CFG = REPO / "experiments" / "detection" / "rtmdet_nano_320_person.yaml"


def random_weights(cfg_path: Path, out: Path) -> Path:
    """A checkpoint of the config's network as initialised (for timing only)."""
    from humanpose.models import build_model

    torch.save(build_model(get_cfg(cfg_path)).state_dict(), out)
    return out


def truth_detections(truth, path: Path) -> Path:
    """The ground-truth boxes of every frame as COCO detections, by ``frame``."""
    records = [{"frame": f, "image_id": f + 1, "category_id": 1, "bbox": box.tolist(),
                "score": 1.0}
               for f, boxes in enumerate(truth.boxes) for box in boxes]
    path.write_text(json.dumps(records))
    return path


def one_run(est: PoseEstimator, video: Path, out: Path, pipeline: bool, args,
            boxes_file: Path | None, max_frames: int | None = None) -> RunSummary:
    # Random weights give low, scattered confidences: follow people from any confidence, as
    # a trained model's people would be followed.
    tracker = PoseTracker(detect_every=args.detect_every, keypoint_threshold=0.0,
                          start_confidence=0.0, keep_confidence=0.0,
                          uncertain_confidence=0.0)
    return run_on_source(est, open_source(video), out, boxes_file=boxes_file,
                         detect_every=args.detect_every, progress=False, track=True,
                         pipeline=pipeline, tracker=tracker, threshold=-1.0,
                         max_frames=max_frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg", default=str(POSE_CFG), help="pose experiment file")
    parser.add_argument("--weights", default=None, help="pose weights (default: random)")
    parser.add_argument("--detector-cfg", default=str(DETECTOR_CFG))
    parser.add_argument("--detector-weights", default=None, help="default: random")
    parser.add_argument("--boxes-from-truth", action="store_true",
                        help="ground-truth boxes as a detections file instead of a detector")
    parser.add_argument("--detect-every", type=int, default=5)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", default="torch")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # random weights make denormals; trained ones do not
    tmp = Path(tempfile.mkdtemp(prefix="bench_video_"))
    truth = make_walking_video(args.frames)
    video = tmp / "walk_640x480.mp4"
    write_video(truth, video)
    weights = args.weights or random_weights(Path(args.cfg), tmp / "pose_random.pth")
    detector = None
    boxes_file = None
    if args.boxes_from_truth:
        boxes_file = truth_detections(truth, tmp / "truth_boxes.json")
    else:
        from humanpose.detection import build_person_detector

        det_weights = args.detector_weights or random_weights(Path(args.detector_cfg),
                                                              tmp / "det_random.pth")
        detector = build_person_detector(det_weights, cfg=args.detector_cfg,
                                         backend=args.backend, threads=args.threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = PoseEstimator(args.cfg, weights, backend=args.backend, flip_test=False,
                            threads=args.threads, detector=detector)

    for pipeline in (False, True):  # warm-up: first calls allocate and tune
        one_run(est, video, tmp / "warmup", pipeline, args, boxes_file, max_frames=5)
    runs: dict[bool, list[RunSummary]] = {False: [], True: []}
    for i in range(args.runs):
        for pipeline in (False, True):
            out = tmp / f"out_{'pipe' if pipeline else 'serial'}_{i}"
            runs[pipeline].append(one_run(est, video, out, pipeline, args, boxes_file))

    boxes = ("ground-truth boxes (detections file)" if args.boxes_from_truth
             else f"detector {Path(args.detector_cfg).stem} every {args.detect_every} frames")
    print(f"\n### {args.frames}-frame 640x480 video, 3 people: {Path(args.cfg).stem} "
          f"({est.backend}, {args.threads} threads), {boxes}; median of {args.runs} runs\n")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print("\n| loop | frames/s | " + " | ".join(STAGES) + " | latency | people/frame |")
    print("|---|---|" + "---|" * len(STAGES) + "---|---|")
    medians = {}
    for pipeline, summaries in runs.items():
        best = sorted(summaries, key=lambda s: s.fps)[len(summaries) // 2]
        medians[pipeline] = statistics.median(s.fps for s in summaries)
        per = {k: v * 1000 / max(best.frames, 1) for k, v in best.stages.items()}
        latency = best.latency * 1000 / max(best.frames, 1)
        print(f"| {'pipelined' if pipeline else 'serial'} | {medians[pipeline]:.1f} | "
              + " | ".join(f"{per[k]:.1f} ms" for k in STAGES)
              + f" | {latency:.0f} ms | {best.people / max(best.frames, 1):.1f} |")
    gain = medians[True] / medians[False] - 1 if medians[False] else 0.0
    print(f"\npipelined vs serial: {gain * 100:+.0f} % frames/s (stage times overlap when "
          "pipelined; latency is from a frame's reading to its writing)")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
