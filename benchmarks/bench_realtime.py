"""Real-time figures of the RTMPose/RTMDet path (issues 11 and 12), batch 1, on this CPU.

1. **Pose latency**: crop + network + decode for one person (``PoseEstimator.predict`` on a
   640x480 frame with one box, flip test off), RTMPose-t and -m at 256x192 and LPN-50, on
   every installed backend; median of ``--runs``.
2. **Detector latency**: RTMDet-nano at 320x320, pre-processing + network + decoding + NMS
   (``RTMDetDetector`` on a 640x480 frame), on every backend, beside the project's small
   person detector (``person_detector_320``, letterbox + network + decoding).
3. **Pipeline**: RTMDet-nano on every frame + RTMPose-t on 3 people, 640x480: frames/s
   and the split per stage (detection, crop, network, decode), fastest backends.

Weights are random (speed does not depend on them); the detector's boxes are counted but
the pose stage always gets the frame's 3 people (random detector weights find nobody real).

    python benchmarks/bench_realtime.py --threads 2 --runs 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from humanpose.config import get_cfg
from humanpose.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_flags  # noqa: E402
from timing import median_ms  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXP = REPO / "experiments"
POSE = {"RTMPose-t": EXP / "coco/rtmpose/rtmpose_t_256x192.yaml",
        "RTMPose-m": EXP / "coco/rtmpose/rtmpose_m_256x192.yaml",
        "LPN-50": EXP / "coco/lpn/lpn50_256x192_gd256x2_gc.yaml"}
DETECTORS = {"RTMDet-nano": EXP / "detection/rtmdet_nano_320_person.yaml",
             "small detector": EXP / "detection/person_detector_320.yaml"}
PEOPLE = np.array([[60, 80, 120, 300], [260, 60, 110, 320], [440, 90, 130, 310]], float)


def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return np.ascontiguousarray(image)


def random_weights(cfg_path: Path, folder: Path) -> Path:
    """A weights file of the config's network, randomly initialised (seeded)."""
    torch.manual_seed(0)
    model = build_model(get_cfg(cfg_path))
    path = folder / f"{cfg_path.stem}.pth"
    torch.save(model.state_dict(), path)
    return path


def backends() -> list[str]:
    from humanpose.inference.backends import available_backends

    return [b for b in available_backends("cpu") if b not in ("torch-fp16",)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--parts", default="pose,detector,pipeline")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    from humanpose.detection import build_person_detector
    from humanpose.inference import PoseEstimator

    image = frame()
    parts = args.parts.split(",")
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.runs}; CPU "
          f"flags: {cpu_flags()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        best: dict[str, tuple[str, float]] = {}
        if "pose" in parts or "pipeline" in parts:
            print("\n| pose model (1 person, crop + network + decode) | backend | ms |")
            print("|---|---|---|")
            for name, path in POSE.items():
                weights = random_weights(path, folder)
                for backend in backends():
                    est = PoseEstimator(path, weights, backend=backend, flip_test=False,
                                        threads=args.threads, cache_dir=folder / "cache")
                    ms = median_ms(lambda est=est: est.predict(image, PEOPLE[:1]), args.runs)
                    print(f"| {name} | {backend} | {ms:.2f} |", flush=True)
                    if name not in best or ms < best[name][1]:
                        best[name] = (backend, ms)
        if "detector" in parts or "pipeline" in parts:
            print("\n| detector (640x480 frame, pre + network + post) | backend | ms | boxes |")
            print("|---|---|---|---|")
            for name, path in DETECTORS.items():
                weights = random_weights(path, folder)
                for backend in backends():
                    detector = build_person_detector(
                        weights, cfg=get_cfg(path), backend=backend, threads=args.threads,
                        cache_dir=folder / "cache")
                    found = detector(image)
                    ms = median_ms(lambda d=detector: d(image), args.runs)
                    print(f"| {name} | {backend} | {ms:.2f} | {len(found.boxes)} |", flush=True)
                    if name not in best or ms < best[name][1]:
                        best[name] = (backend, ms)
        if "pipeline" in parts:
            det_backend = best["RTMDet-nano"][0]
            pose_backend = best["RTMPose-t"][0]
            detector = build_person_detector(
                random_weights(DETECTORS["RTMDet-nano"], folder),
                cfg=get_cfg(DETECTORS["RTMDet-nano"]), backend=det_backend,
                threads=args.threads, cache_dir=folder / "cache")
            est = PoseEstimator(POSE["RTMPose-t"], random_weights(POSE["RTMPose-t"], folder),
                                backend=pose_backend, flip_test=False, threads=args.threads,
                                cache_dir=folder / "cache")
            det_ms, crop_ms, net_ms, dec_ms, total = [], [], [], [], []
            for i in range(args.runs + 3):
                start = time.perf_counter()
                detector(image)
                t_det = time.perf_counter()
                est.predict(image, PEOPLE)
                end = time.perf_counter()
                if i >= 3:
                    det_ms.append((t_det - start) * 1000)
                    crop_ms.append(est.timing.crop)
                    net_ms.append(est.timing.model)
                    dec_ms.append(est.timing.decode)
                    total.append((end - start) * 1000)
            med = statistics.median
            print(f"\npipeline: RTMDet-nano ({det_backend}) every frame + RTMPose-t "
                  f"({pose_backend}) on 3 people, 640x480: {1000 / med(total):.1f} frames/s "
                  f"({med(total):.2f} ms: detection {med(det_ms):.2f}, crop {med(crop_ms):.2f}, "
                  f"network {med(net_ms):.2f}, decode {med(dec_ms):.2f})")


if __name__ == "__main__":
    main()
