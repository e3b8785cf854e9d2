"""humanpose's torch-free runtime beside rtmlib 0.0.16 on the same RTMPose ONNX file, boxes
and image: key points and end-to-end latency (crop + network + decode for every person).

    pip install --no-deps rtmlib==0.0.16     # benchmark-only peer (numpy, cv2, onnxruntime)
    python benchmarks/bench_runtime_vs_rtmlib.py [--model t|s|m] [--people 3] [--threads 2]

The ONNX file is an RTMPose export written here (random weights with BatchNorm statistics
that make the outputs vary; real checkpoints cannot be downloaded on this machine); both
sides run it in ONNX Runtime with the same thread count. rtmlib normalises the BGR image
with mmpose's RGB-order statistics and does not swap channels, so humanpose is given
``rgb=True`` (no swap) to run the same arithmetic. Timing: interleaved rounds of 5 calls a
side, median, warm-up excluded. Prints a JSON object for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from timing import medians_in_blocks  # the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"t": "rtmpose_t_256x192", "s": "rtmpose_s_256x192", "m": "rtmpose_m_256x192"}


def export(name: str, folder: Path) -> Path:
    import torch

    import humanpose
    from humanpose.export import export_pose_onnx

    cfg = humanpose.get_cfg(ROOT / "experiments" / "coco" / "rtmpose" / f"{CONFIGS[name]}.yaml")
    torch.manual_seed(0)
    model = humanpose.build_model(cfg, channels_last=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    path = folder / f"rtmpose_{name}.onnx"
    export_pose_onnx(model.eval(), cfg, path)
    return path


def scene(people: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 640x480 textured image and ``people`` person-shaped boxes (x1, y1, x2, y2)."""
    import cv2

    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (7, 7), 2)
    h = rng.uniform(200, 400, people)
    w = h * rng.uniform(0.35, 0.55, people)
    x = rng.uniform(0, 640 - w)
    y = rng.uniform(0, 480 - h)
    return image, np.stack([x, y, x + w, y + h], axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="t")
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backend", default="onnxruntime",
                        help="humanpose's backend (rtmlib runs ONNX Runtime): onnxruntime, "
                             "openvino, openvino-fp32 or auto")
    args = parser.parse_args()

    import onnxruntime as ort
    from rtmlib import RTMPose

    from humanpose.runtime import PoseModel

    folder = Path(tempfile.mkdtemp(prefix="humanpose-rtmlib-"))
    path = export(args.model, folder)
    image, xyxy = scene(args.people)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)

    peer = RTMPose(str(path), model_input_size=(192, 256), backend="onnxruntime")
    options = ort.SessionOptions()  # rtmlib's session with the same threads as ours
    options.intra_op_num_threads = args.threads
    peer.session = ort.InferenceSession(str(path), options,
                                        providers=["CPUExecutionProvider"])
    ours = PoseModel(path, backend=args.backend, threads=args.threads, rgb=True,
                     flip_test=False, cache_dir=folder)

    want, want_scores = peer(image, bboxes=xyxy.tolist())
    got = ours(image, xywh)
    deviation = float(np.abs(got.keypoints - want).max())
    score_deviation = float(np.abs(got.keypoint_scores - want_scores).max())

    medians = medians_in_blocks({"rtmlib": lambda: peer(image, bboxes=xyxy.tolist()),
                                 "humanpose": lambda: ours(image, xywh)}, args.runs)
    print(json.dumps({
        "model": f"rtmpose-{args.model} 256x192 (random weights)", "people": args.people,
        "threads": args.threads, "runs": args.runs, "humanpose_backend": ours.backend,
        "max_keypoint_deviation_px": round(deviation, 6),
        "max_score_deviation": round(score_deviation, 8),
        "rtmlib_ms": round(medians["rtmlib"], 2), "humanpose_ms": round(medians["humanpose"], 2),
        "speed-up": round(medians["rtmlib"] / medians["humanpose"], 2),
        "humanpose_stages_ms": {"crop": round(ours.timing.crop, 2),
                                "model": round(ours.timing.model, 2),
                                "decode": round(ours.timing.decode, 2)},
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
