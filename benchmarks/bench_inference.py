"""Per-person inference latency of humanpose's backends against the seed's eager model.

For LPN-50, HRNet-W32 and HRNet-W18-small-v2 at 256x192, on the CPU with ``--threads``:

* **seed**: the seed's own model code (imported from ``--seed-root`` at run time; nothing of
  it is part of this project), fp32 eager, forward pass only, batch 1 — as its demo runs it;
* **humanpose**: ``PoseEstimator.predict`` for one person box on a 640x480 frame, i.e. crop +
  normalise + network + decode, for every backend and for ``auto``'s choice (flip test off,
  as in the seed's demo).

All are timed interleaved (seed, backend 1, backend 2, ..., seed, ...) and reported as
medians, so machine noise hits every side alike. Denormal floats are flushed to zero on every
side (``torch.set_flush_denormal``; onnxruntime and OpenVINO do it per session): randomly
initialised networks produce denormals that make x86 CPUs up to 50x slower, which trained
networks do not.

Accuracy: no trained checkpoint exists here, so each network is made to behave like a
trained one: batch-norm statistics are re-estimated on synthetic people (humanpose's
drawn stick figures), then the final 1x1 layer is fitted by least squares to Gaussian
heatmap targets of those people, on the frozen features. Random features do not localise
joints, so these heatmaps stay flat (mean peak about 0.05 against 1 for a trained model)
and argmax/soft-argmax can jump between far-apart near-maxima under any perturbation. Two
deviations from the fp32 eager result are therefore reported, in network-input pixels, on
``--eval-people`` held-out people: (a) of this model's own decoded key points, and (b) on
peaky heatmaps: each backend's actual heatmap error, relative to the heatmaps' scale, added
to ideal trained-like heatmaps (Gaussians of height 1 at the true joints), decoded against
the ideal heatmaps alone.

Last, the end-to-end video rate: a 640x480 single-person video (a drawn figure walking),
LPN-50, boxes taken from the previous frame's key points, through the same
``run_on_source`` that ``humanpose infer`` runs (read, place boxes, pose, draw, write mp4).

    python benchmarks/bench_inference.py --seed-root /path/to/humanpose.pytorch
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

import humanpose
from humanpose.codecs import encode_gaussian
from humanpose.data.geometry import affine_points, box_to_center_scale, get_affine_transform
from humanpose.data.synthetic import SynthConfig, draw_scene
from humanpose.inference import PoseEstimator, available_backends
from humanpose.inference.backends import BACKENDS, TorchRunner
from humanpose.inference.compare import compare_backends, format_bench_table
from humanpose.inference.sources import open_source
from humanpose.inference.video import run_on_source

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_compat import COMPARED_MODELS, seed_model  # noqa: E402
from timing import medians_in_blocks  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = COMPARED_MODELS
TARGETS = {"LPN-50": 3.0, "HRNet-W32": 6.0, "HRNet-W18-small-v2": 6.0}
FRAME_W, FRAME_H = 640, 480


# ----------------------------------------------------------------------------- models

def synthetic_people(count: int, seed: int) -> list[tuple[np.ndarray, list[float], np.ndarray]]:
    """``count`` (640x480 BGR image, person box, (17, 3) key points) of drawn people."""
    rng = np.random.default_rng(seed)
    config = SynthConfig(width=FRAME_W, height=FRAME_H, max_people=1, min_height=0.5,
                         max_height=0.9, occluder_prob=0.0)
    out = []
    while len(out) < count:
        image, people = draw_scene(rng, config)
        if people and (people[0].keypoints[:, 2] > 0).sum() >= 12:
            out.append((image, people[0].bbox, people[0].keypoints))
    return out


def crop_batch(cfg, samples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised crops, Gaussian targets and target weights of the samples' people."""
    w, h = cfg.MODEL.IMAGE_SIZE
    est_rgb = cfg.DATASET.COLOR_RGB
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    inputs, targets, weights = [], [], []
    for image, box, keypoints in samples:
        center, scale = box_to_center_scale(box, w / h)
        trans = get_affine_transform(center, scale, 0, (w, h))
        crop = cv2.warpAffine(image, trans, (w, h), flags=cv2.INTER_LINEAR)
        if est_rgb:
            crop = crop[:, :, ::-1]
        inputs.append(((crop.astype(np.float32) / 255 - mean) / std).transpose(2, 0, 1))
        joints = np.zeros((17, 3), np.float32)
        joints[:, :2] = affine_points(keypoints[:, :2], trans)
        vis = np.repeat((keypoints[:, 2:3] > 0).astype(np.float32), 3, axis=1)
        target, weight = encode_gaussian(joints, vis, (w, h), cfg.MODEL.HEATMAP_SIZE,
                                         cfg.MODEL.SIGMA)
        targets.append(target)
        weights.append(weight)
    return (torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets)),
            torch.from_numpy(np.stack(weights)))


def make_trained_like(model: torch.nn.Module, cfg, samples) -> dict[str, float]:
    """Re-estimate batch-norm statistics on the samples (activations of a realistic scale,
    no denormals), then fit the final 1x1 layer to their Gaussian targets by least squares
    on the frozen features. Returns how peaked the fitted heatmaps are."""
    x, target, weight = crop_batch(cfg, samples)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    model.train()
    with torch.no_grad():
        for chunk in x.split(8):
            model(chunk)
    model.eval()
    features = []
    hook = model.final_layer.register_forward_hook(lambda m, i, o: features.append(i[0]))
    with torch.no_grad():
        for chunk in x.split(8):
            model(chunk)
    hook.remove()
    feats = torch.cat(features)
    n, c, h, w = feats.shape
    a = torch.cat([feats.permute(0, 2, 3, 1).reshape(-1, c), torch.ones(n * h * w, 1)], 1)
    t = target.permute(0, 2, 3, 1).reshape(-1, target.shape[1])
    solution = torch.linalg.solve(a.T @ a + 1e-2 * torch.eye(c + 1), a.T @ t)
    layer = model.final_layer
    with torch.no_grad():
        layer.weight.copy_(solution[:c].T.reshape(layer.weight.shape))
        layer.bias.copy_(solution[c])
        fitted = layer(feats)
    peaks = fitted.flatten(2).amax(-1)
    return {"mse": float(((fitted - target) ** 2).mean()), "mean_peak": float(peaks.mean())}


def input_scale_deviation(est: PoseEstimator, reference: PoseEstimator, samples
                          ) -> tuple[float, float, float, float]:
    """The largest heatmap error relative to the heatmaps' largest value, and key-point
    distances from the fp32 eager result, in network-input pixels: (a) the
    largest of the pipeline's own output, all joints; (b) on peaky heatmaps: ideal
    trained-like heatmaps (Gaussians of height 1, sigma MODEL.SIGMA, centred at the true
    sub-pixel joint positions) plus this backend's heatmap error relative to the heatmaps'
    scale, decoded against the ideal ones alone: the largest, and the share above 0.5 px."""
    cfg = est.cfg
    w, h = est.image_size
    worst_pipeline = worst_relative = 0.0
    peaky: list[np.ndarray] = []
    for image, box, keypoints in samples:
        boxes = np.array([box], dtype=np.float32)
        crops, centers, scales = reference.crop(image, boxes)
        per_input_px = scales[0, 0] * 200 / w
        expected = reference.outputs(crops).numpy()
        got = est.outputs(crops).numpy()
        a = est.decode(got, centers, scales)
        b = reference.decode(expected, centers, scales)
        worst_pipeline = max(worst_pipeline,
                             float(np.abs(a[0, :, :2] - b[0, :, :2]).max()) / per_input_px)
        trans = get_affine_transform(centers[0], scales[0], 0, (w, h))
        joints = np.zeros((len(keypoints), 3), np.float32)
        joints[:, :2] = affine_points(keypoints[:, :2], trans)
        visible = np.repeat((keypoints[:, 2:3] > 0).astype(np.float32), 3, axis=1)
        # udp=True centres each Gaussian on the exact sub-pixel position, as a trained
        # network's peaks are; the seed's rounding would make every peak exactly symmetric,
        # where the quarter-pixel rule flips on any noise.
        ideal, weight = encode_gaussian(joints, visible, (w, h), cfg.MODEL.HEATMAP_SIZE,
                                        cfg.MODEL.SIGMA, udp=True)
        relative = (got - expected) / max(float(np.abs(expected).max()), 1e-12)
        worst_relative = max(worst_relative, float(np.abs(relative).max()))
        a = est.decode(ideal[None] + relative, centers, scales)
        b = est.decode(ideal[None], centers, scales)
        shown = weight[:, 0] > 0
        peaky.append(np.abs(a[0, shown, :2] - b[0, shown, :2]).max(axis=1) / per_input_px)
    dev = np.concatenate(peaky)
    return worst_relative, worst_pipeline, float(dev.max()), float((dev > 0.5).mean())


# ----------------------------------------------------------------------------- video
def walking_video(path: Path, frames: int, fps: float = 30.0) -> None:
    """A 640x480 video of one drawn figure walking across the frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (FRAME_W, FRAME_H))
    for i in range(frames):
        t = i / fps
        image = np.full((FRAME_H, FRAME_W, 3), (120, 150, 110), dtype=np.uint8)
        image[300:] = (90, 110, 90)
        x = 160 + (320 * t / (frames / fps)) if frames > 1 else 320
        swing = np.sin(2 * np.pi * 1.2 * t)
        pelvis = np.array([x, 250.0])
        neck = pelvis + [0, -110]
        head = neck + [0, -35]
        for side in (-1, 1):
            knee = pelvis + [side * 12 + 30 * swing * side, 85]
            ankle = knee + [side * 5 + 25 * swing * side, 85]
            elbow = neck + [side * 30 - 25 * swing * side, 60]
            wrist = elbow + [side * 10 - 20 * swing * side, 55]
            for a, b, color, width in ((pelvis, knee, (200, 90, 30), 16),
                                       (knee, ankle, (230, 200, 40), 14),
                                       (neck, elbow, (40, 170, 40), 12),
                                       (elbow, wrist, (40, 200, 230), 11)):
                cv2.line(image, tuple(int(v) for v in a), tuple(int(v) for v in b), color,
                         width, cv2.LINE_AA)
        cv2.line(image, tuple(int(v) for v in pelvis), tuple(int(v) for v in neck),
                 (180, 60, 160), 30, cv2.LINE_AA)
        cv2.circle(image, tuple(int(v) for v in head), 26, (150, 180, 230), -1, cv2.LINE_AA)
        writer.write(image)
    writer.release()


# ----------------------------------------------------------------------------- machine
def machine() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("Model name")), platform.processor())
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("Flags")), []))
    wanted = ["avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16", "amx_tile",
              "amx_int8"]
    shown = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)
    capability = torch.backends.cpu.get_cpu_capability()
    lines = [f"CPU: {name}, {os.cpu_count()} cores; {shown}",
             f"torch {torch.__version__} (CPU capability {capability})"]
    try:
        import openvino as ov

        core = ov.Core()
        caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        hint = core.get_property("CPU", "INFERENCE_PRECISION_HINT")
        lines.append(f"openvino {ov.__version__}: CPU optimization capabilities {caps}, default "
                     f"inference precision {hint}")
    except ImportError:
        lines.append("openvino not installed")
    try:
        import onnxruntime as ort

        lines.append(f"onnxruntime {ort.__version__}")
    except ImportError:
        lines.append("onnxruntime not installed")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def bench_model(label: str, args, cache_dir: Path, tmp: Path) -> dict:
    cfg_path = REPO / MODELS[label]
    cfg = humanpose.get_cfg(cfg_path)
    torch.manual_seed(0)
    model = humanpose.build_model(cfg, channels_last=False)
    fit = make_trained_like(model, cfg, synthetic_people(args.train_people, seed=1))
    weights = tmp / f"{label}.pth"
    torch.save(model.state_dict(), weights)
    seed = seed_model(args.seed_root, cfg_path).eval()
    seed.load_state_dict(model.state_dict())

    held_out = synthetic_people(args.eval_people, seed=2)
    image, box, _ = held_out[0]
    boxes = np.array([box], dtype=np.float32)
    x, _, _ = crop_batch(cfg, held_out[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = PoseEstimator(cfg, weights, backend="torch", flip_test=False,
                                  cache_dir=cache_dir)
        reference.runner = TorchRunner(reference.model, "cpu", "torch", fold_bn=False,
                                       channels_last=False)
        estimators = {}
        for name in args.backends:
            estimators[name] = PoseEstimator(cfg, weights, backend=name, flip_test=False,
                                             cache_dir=cache_dir, threads=args.threads)
    with torch.inference_mode():
        seed_out = seed(x)
    assert torch.allclose(seed_out, model(x).detach(), atol=1e-4), "seed and ours differ"

    def seed_forward():
        with torch.inference_mode():
            seed(x)

    fns = {"seed": seed_forward}
    fns.update({name: (lambda est=est: est.predict(image, boxes))
                for name, est in estimators.items()})
    medians = medians_in_blocks(fns, args.runs, args.warmup)
    rows = []
    for name, est in estimators.items():
        relative, pipeline, peaky, share = input_scale_deviation(est, reference, held_out)
        rows.append((name if name != "auto" else f"auto → {est.backend}", medians[name],
                     medians["seed"] / medians[name], relative, pipeline, peaky, share))
    return {"label": label, "seed": medians["seed"], "rows": rows, "fit": fit,
            "weights": weights, "cfg_path": cfg_path,
            "precision": {name: est.runner.inference_precision
                          for name, est in estimators.items()
                          if hasattr(est.runner, "inference_precision")}}


def bench_table(args, weights: Path, cache_dir: Path) -> None:
    """What ``humanpose bench`` prints for LPN-50 (the same function), on a 640x480 frame."""
    cfg = humanpose.get_cfg(REPO / MODELS["LPN-50"])
    batches = [int(b) for b in args.table_batches.split(",")]
    image = synthetic_people(1, seed=4)[0][0]
    rows = compare_backends(cfg, weights, args.backends, batches, image, runs=args.runs,
                            flip_test=False, threads=args.threads, cache_dir=cache_dir)
    print("\n### `humanpose bench`, LPN-50, flip test off (batch = persons per image)\n")
    print(format_bench_table(rows))


class CountingDetector:
    """Wraps a detector to count the frames it ran on (the others reused boxes)."""

    def __init__(self, detector):
        self.detector = detector
        self.calls = 0

    def __call__(self, image, image_id=None, file_name=None):
        self.calls += 1
        return self.detector(image, image_id=image_id, file_name=file_name)


def bench_video(args, weights: Path, cache_dir: Path, tmp: Path) -> None:
    cfg = humanpose.get_cfg(REPO / MODELS["LPN-50"])
    video = tmp / "walk_640x480.mp4"
    walking_video(video, args.video_frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = PoseEstimator(cfg, weights, backend="auto", flip_test=False, cache_dir=cache_dir,
                            threads=args.threads)
    print(f"\n### 640x480 single-person video, LPN-50, backend auto → {est.backend}\n")
    print("| run | frames | frames/s | reading | box placement | pose | drawing | writing mp4 "
          "| detector ran on |")
    print("|---|---|---|---|---|---|---|---|---|")
    for render in (True, False):
        counter = CountingDetector(est.boxes_from)
        est.boxes_from = counter
        # The stand-in network's confidences are low (see above): follow people from any
        # confidence, so that boxes do come from the previous frame as with a trained model.
        # threshold -inf: every joint is drawn, as a trained model's would be.
        summary = run_on_source(est, open_source(video), tmp / f"video_{render}", render=render,
                                threshold=-np.inf, track_confidence=0.0, progress=False)
        est.boxes_from = counter.detector
        per = summary.per_frame_ms()
        label = "read, pose, draw, write mp4" if render else "read, pose (no drawing)"
        print(f"| {label} | {summary.frames} | {summary.fps:.1f} | {per['reading']:.2f} ms | "
              f"{per['detection']:.2f} ms | {per['pose']:.2f} ms | {per['drawing']:.2f} ms | "
              f"{per['writing']:.2f} ms | {counter.calls} frames |")
        if render:
            no_write = (summary.seconds - summary.stages["writing"]
                        - summary.first_stages["writing"])
            print(f"| the same, writing excluded | {summary.frames} | "
                  f"{summary.frames / no_write:.1f} | | | | | | |")
    print("\nThe equivalent command: humanpose infer --cfg experiments/coco/lpn/"
          "lpn50_256x192_gd256x2_gc.yaml TEST.MODEL_FILE lpn50.pth TEST.FLIP_TEST False "
          f"--input {video.name} --output out --threads {args.threads}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", type=Path, required=True,
                        help="checkout of the seed (humanpose.pytorch)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--backends", default=None,
                        help="comma-separated (default: auto and every available backend)")
    parser.add_argument("--train-people", type=int, default=48)
    parser.add_argument("--eval-people", type=int, default=16)
    parser.add_argument("--video-frames", type=int, default=150)
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--table-batches", default="1,16",
                        help="LPN-50: the `humanpose bench` table for these batch sizes "
                             "(empty: skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    args.backends = (args.backends.split(",") if args.backends else
                     [b for b in BACKENDS if b in available_backends("cpu")] + ["auto"])
    print(machine())
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f} "
          f"(other jobs share these cores); threads {args.threads}; median of {args.runs} "
          "runs in interleaved blocks of 5; batch 1; flip test off; denormals flushed on "
          "every side\n")
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmpdir:
        tmp = Path(tmpdir)
        cache_dir = tmp / "cache"
        results = {}
        for label in args.models.split(","):
            result = bench_model(label, args, cache_dir, tmp)
            results[label] = result
            fit = result["fit"]
            print(f"### {label} (seed fp32 eager forward {result['seed']:.1f} ms; target "
                  f"{TARGETS[label]:.0f}x → {result['seed'] / TARGETS[label]:.1f} ms)\n")
            print(f"final layer fitted by least squares: mse {fit['mse']:.2e}, mean heatmap "
                  f"peak {fit['mean_peak']:.3f}; OpenVINO precision "
                  f"{result['precision'] or 'n/a'}\n")
            print("| backend | crop+model+decode ms | seed / humanpose | target met | "
                  "heatmap error / max | max deviation, this model (input px) | peaky heatmaps: "
                  "max deviation (input px) | peaky: joints > 0.5 px |")
            print("|---|---|---|---|---|---|---|---|")
            for name, ms, ratio, relative, pipeline, peaky, share in result["rows"]:
                met = "yes" if ratio >= TARGETS[label] else "no"
                print(f"| {name} | {ms:.1f} | {ratio:.2f}x | {met} | {relative:.1e} | "
                      f"{pipeline:.3f} | {peaky:.3f} | {share:.1%} |")
            print(flush=True)
        if args.table_batches and "LPN-50" in results:
            bench_table(args, results["LPN-50"]["weights"], cache_dir)
        if not args.no_video and "LPN-50" in results:
            bench_video(args, results["LPN-50"]["weights"], cache_dir, tmp)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
