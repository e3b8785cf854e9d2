"""Top-down latency beside mmpose 1.3.2 on this CPU, batch 1 (one person), flip test off:
RTMPose-t/-m, DWPose-m, RTMW-l and the RTMPose-m hand model, same random weights.

    PYTHONPATH=$PWD python benchmarks/bench_mm_topdown.py --mm-python /tmp/mmvenv/bin/python

The mmpose side runs in a subprocess under ``--mm-python`` (mm_stub on its path): it builds
each model from its official config (read from mmpose's repository, ``--mmpose-repo``), gives
it random weights, saves them in mmpose's checkpoint layout and times the eager network
(``model._forward`` on a ready 1x3xHxW tensor) and the whole ``inference_topdown`` (its
pipeline, network and decoding) for one box. This side loads that checkpoint strictly into
``PoseEstimator(..., backend="openvino")`` and times ``predict`` for the same box (crop,
normalisation, network, SimCC decode) and the OpenVINO network alone. Medians of ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import median_ms  # the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["rtmpose-t", "rtmpose-m", "dwpose-m", "rtmw-l", "rtmpose-m-hand"]


def mm_side(folder: Path, names: list[str], runs: int, threads: int) -> None:
    """Only mm* packages here: the reference's timings and weights, into ``folder``."""
    import mm_stub  # noqa: F401  mmcv-lite without compiled ops; see shared/reference
    import numpy as np
    import torch
    from check_mm_equivalence import _randomise
    from mmpose.apis import inference_topdown, init_model

    torch.set_num_threads(threads)
    image = np.load(folder / "image.npy")
    box = np.load(folder / "boxes.npy")[:1]
    out = {}
    for name in names:
        model = init_model(str(folder / f"{name}.py"), None, device="cpu").eval()
        _randomise(model, torch)
        model.test_cfg["flip_test"] = False
        torch.save({"meta": {"mmpose_version": "1.3.2"}, "state_dict": model.state_dict()},
                   folder / f"{name}.pth")
        w, h = model.cfg.codec["input_size"]
        x = torch.randn(1, 3, h, w)
        with torch.no_grad():
            forward = median_ms(lambda m=model, x=x: m._forward(x), runs)
        topdown = median_ms(
            lambda m=model: inference_topdown(m, image, box, bbox_format="xyxy"), runs)
        out[name] = {"forward": forward, "topdown": topdown}
    (folder / "mm.json").write_text(json.dumps(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mm-python", default="/tmp/mmvenv/bin/python")
    parser.add_argument("--mm-path", default="/work/shared/reference")
    parser.add_argument("--mmpose-repo", default="/work/.mirror/open-mmlab+mmpose/repo")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mm-side", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if args.mm_side:
        mm_side(Path(args.mm_side), args.models, args.runs, args.threads)
        return 0
    import warnings

    import numpy as np
    from check_mm_equivalence import TOPDOWN, write_inputs
    from machine import cpu_flags

    from humanpose.data.normalize import normalize_crops
    from humanpose.inference.estimator import PoseEstimator

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_inputs(folder, args.models, Path(args.mmpose_repo))
        env = {**os.environ, "PYTHONPATH": f"{args.mm_path}{os.pathsep}{ROOT / 'benchmarks'}"}
        subprocess.run([args.mm_python, __file__, "--mm-side", tmp, "--runs", str(args.runs),
                        "--threads", str(args.threads), "--models", *args.models],
                       check=True, env=env)
        mm = json.loads((folder / "mm.json").read_text())
        image = np.load(folder / "image.npy")
        x1, y1, x2, y2 = np.load(folder / "boxes.npy")[0]
        box = np.array([[x1, y1, x2 - x1, y2 - y1]], dtype=np.float32)
        rows = []
        for name in args.models:
            yaml = ROOT / "experiments" / f"{TOPDOWN[name][0]}.yaml"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = PoseEstimator(yaml, folder / f"{name}.pth", backend="openvino",
                                    flip_test=False, threads=args.threads)
            whole = median_ms(lambda e=est: e.predict(image, box), args.runs)
            crops, _, _ = est.crop(image, box)
            batch = normalize_crops(crops)
            network = median_ms(lambda e=est, b=batch: e.runner.session_outputs(b),
                                args.runs)
            rows.append((name, mm[name]["forward"], mm[name]["topdown"], whole, network,
                         est.runner.inference_precision))
    print(f"CPU: {os.cpu_count()} cores, {cpu_flags()}; {args.threads} threads; batch 1, "
          f"one box, flip test off; median of {args.runs} runs")
    print("| model | mmpose `_forward` ms | mmpose `inference_topdown` ms | humanpose "
          "`predict` (OpenVINO) ms | its network ms | precision | `_forward` / `predict` | "
          "`inference_topdown` / `predict` |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for name, forward, topdown, whole, network, precision in rows:
        print(f"| {name} | {forward:.2f} | {topdown:.2f} | {whole:.2f} | {network:.2f} | "
              f"{precision} | {forward / whole:.2f}x | {topdown / whole:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
