"""`humanpose test` per TEST.BACKEND against the seed's validation: AP and wall time.

Each backend runs the whole ``humanpose test`` job (data set, weights, forward passes with
flip test, decoding, OKS-NMS, pycocotools) on the same synthetic COCO-format validation set
as the seed's ``core.function.validate`` (imported from a checkout, ``--seed-root``; see
``bench_test.py``). The cache folder (``$HUMANPOSE_CACHE``) starts empty: the first run of
an ONNX backend pays the export (and OpenVINO its compilation), shown apart as "first run";
the later runs reuse them, as a user's repeated tests do. Without ``--weights`` a seeded
random initialisation is used (same AP on every side, timing unchanged).

    python benchmarks/bench_test_backends.py --seed-root /path/to/humanpose.pytorch \\
        --backends torch,onnxruntime,openvino-fp32 --images 200 --repeats 3
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import torch

import humanpose
from humanpose.data.synthetic import write_coco_set

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_test import run_ours, run_seed, seed_test_opts  # noqa: E402
from seed_compat import seed_cfg, seed_layout, seed_modules  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FP32 = ("torch", "onnxruntime", "openvino-fp32")  # must give the seed's AP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", type=Path, required=True)
    parser.add_argument("--cfg", type=Path,
                        default=REPO / "humanpose/configs/demo_lpn_synthetic.yaml")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--backends", default="torch,onnxruntime,openvino-fp32")
    parser.add_argument("--boxes", default="gt,detections", help="gt, detections or both")
    parser.add_argument("--images", type=int, default=200, help="synthetic val images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("opts", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.INFO)
    backends = args.backends.split(",")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_test_backends_"))
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["HUMANPOSE_CACHE"] = str(cache)
    data = work / f"synthetic_{args.images}"
    if not (data / "annotations").exists():
        write_coco_set(str(data), num_train=0, num_val=args.images, seed=7)
    seed_data = work / f"seed_layout_{args.images}"
    seed_layout(data, seed_data)
    weights = args.weights
    if weights is None:
        weights = work / "random_init.pth"
        torch.manual_seed(0)
        torch.save(humanpose.build_model(humanpose.get_cfg(args.cfg, args.opts)).state_dict(),
                   weights)
    mods = seed_modules(args.seed_root)

    print(f"torch {torch.__version__}, {args.threads} threads, {args.workers} loader workers, "
          f"{args.images} synthetic val images, weights {weights.name}; warm: median of the "
          f"runs after the first ({args.repeats} runs each, interleaved)")
    print("| boxes | side | AP | warm s | first run s | seed / side (warm) |")
    print("|---|---|---|---|---|---|")
    for boxes in args.boxes.split(","):
        use_gt = boxes == "gt"
        opts = [*args.opts, *seed_test_opts(seed_data, work, weights, args.workers, use_gt)]
        theirs = seed_cfg(mods[2], humanpose.get_cfg(args.cfg, opts))
        ours = {b: humanpose.get_cfg(args.cfg, [*opts, "TEST.BACKEND", b]) for b in backends}
        times: dict[str, list[float]] = {side: [] for side in ["seed", *backends]}
        aps: dict[str, float] = {}
        for _ in range(args.repeats):  # interleaved so that machine noise hits all sides
            t, aps["seed"] = run_seed(mods, theirs, weights, work / "seed_out")
            times["seed"].append(t)
            for b in backends:
                t, aps[b] = run_ours(ours[b], args.cfg)
                times[b].append(t)
        warm = {side: statistics.median(t[1:] or t) for side, t in times.items()}
        for side in times:
            print(f"| {boxes} | {side} | {aps[side]:.4f} | {warm[side]:.2f} | "
                  f"{times[side][0]:.2f} | {warm['seed'] / warm[side]:.2f} |", flush=True)
        for b in backends:
            if b in FP32:
                assert abs(aps[b] - aps["seed"]) <= 1e-3, \
                    f"{b}: AP {aps[b]} differs from the seed's {aps['seed']}"


if __name__ == "__main__":
    main()
