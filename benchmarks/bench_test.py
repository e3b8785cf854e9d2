"""`humanpose test` against the seed's validation: same AP (to 1e-3), and the wall time.

The seed's code is imported at run time from a checkout of ``humanpose.pytorch``
(``--seed-root``); nothing of it is part of this project. Both sides get the same weights,
the same synthetic COCO-format validation set (images named ``%012d.jpg``, which the seed
requires) and the same settings; each side's whole job is timed: building the data set and
the model, loading weights, predicting (flip test), decoding, re-scoring, OKS-NMS and
pycocotools. The seed's GPU calls (``.cuda()``) are made no-ops so it runs on the CPU.

    python benchmarks/bench_test.py --seed-root /path/to/humanpose.pytorch \
        --weights humanpose-demo/output/coco/lpn/demo_lpn_synthetic/model_best.pth
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

import humanpose
from humanpose.checkpoint import read_state_dict
from humanpose.data.synthetic import write_coco_set
from humanpose.engine.evaluate import run_test

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_compat import SeedNormalize, seed_cfg, seed_layout, seed_modules  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POST: dict[str, float] = {}  # seconds of the last run's post-processing, per side


def timed(side: str, fn):
    """``fn`` wrapped so that its wall time is stored in ``POST[side]``: the part of a test
    after the forward passes (re-scoring, OKS-NMS, results file, pycocotools)."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            POST[side] = time.perf_counter() - start
    return wrapper


def run_seed(mods, cfg, weights: Path, out_dir: Path) -> tuple[float, float]:
    function, seed_dataset, _, loss_cls, models = mods
    start = time.perf_counter()
    valid = seed_dataset.coco(cfg, cfg.DATASET.ROOT, cfg.DATASET.TEST_SET, False, SeedNormalize())
    loader = torch.utils.data.DataLoader(valid, batch_size=cfg.TEST.BATCH_SIZE_PER_GPU,
                                         shuffle=False, num_workers=cfg.WORKERS)
    model = getattr(models, cfg.MODEL.NAME).get_pose_net(cfg, is_train=False)
    model.load_state_dict(read_state_dict(weights))  # bare, or wrapped with its config
    args = types.SimpleNamespace(rank=0)
    with contextlib.redirect_stdout(io.StringIO()):
        ap = function.validate(args, cfg, loader, valid, model, loss_cls(True), str(out_dir),
                               str(out_dir))
    return time.perf_counter() - start, float(ap)


def run_ours(cfg, cfg_path: Path) -> tuple[float, float]:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_test(cfg, cfg_path)
    return time.perf_counter() - start, result.value


def seed_test_opts(seed_data: Path, work: Path, weights: Path, workers: int, use_gt: bool
              ) -> list[str]:
    """The config overrides of one test run on the seed-layout set, both sides alike."""
    return ["DATASET.ROOT", str(seed_data), "WORKERS", str(workers),
            "TEST.USE_GT_BBOX", str(use_gt), "OUTPUT_DIR", str(work / "out"),
            "LOG_DIR", str(work / "log"), "TEST.MODEL_FILE", str(weights),
            "TEST.COCO_BBOX_FILE",
            str(seed_data / "person_detection_results" / "COCO_val2017_detections_synthetic.json")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", type=Path, required=True)
    parser.add_argument("--cfg", type=Path,
                        default=REPO / "humanpose/configs/demo_lpn_synthetic.yaml")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--images", type=int, default=200, help="synthetic val images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("opts", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.INFO)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_test_"))
    data = work / "synthetic"
    if not (data / "annotations").exists():
        write_coco_set(str(data), num_train=0, num_val=args.images, seed=7)
    seed_data = work / "seed_layout"
    seed_layout(data, seed_data)
    mods = seed_modules(args.seed_root)
    import humanpose.pose.evaluate as our_eval

    mods[1].coco.evaluate = timed("seed", mods[1].coco.evaluate)
    our_eval.score_predictions = timed("ours", our_eval.score_predictions)

    print(f"torch {torch.__version__}, {args.threads} threads, {args.workers} loader workers, "
          f"{args.images} synthetic val images, median of {args.repeats}")
    print("whole job s (of which post-processing s: re-scoring, OKS-NMS, results, pycocotools)")
    print("| boxes | seed AP | humanpose AP | seed s | humanpose s | seed / humanpose | "
          "seed post s | humanpose post s | post ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for use_gt in (True, False):
        opts = [*args.opts, *seed_test_opts(seed_data, work, args.weights, args.workers, use_gt)]
        ours_cfg = humanpose.get_cfg(args.cfg, opts)
        theirs_cfg = seed_cfg(mods[2], ours_cfg)
        seed_times, our_times, seed_ap, our_ap = [], [], None, None
        seed_post, our_post = [], []
        for _ in range(args.repeats):  # interleaved so that machine noise hits both
            t, seed_ap = run_seed(mods, theirs_cfg, args.weights, work / "seed_out")
            seed_times.append(t)
            seed_post.append(POST["seed"])
            t, our_ap = run_ours(ours_cfg, args.cfg)
            our_times.append(t)
            our_post.append(POST["ours"])
        s, o = statistics.median(seed_times), statistics.median(our_times)
        sp, op = statistics.median(seed_post), statistics.median(our_post)
        label = "ground truth" if use_gt else "detections"
        print(f"| {label} | {seed_ap:.4f} | {our_ap:.4f} | {s:.2f} | {o:.2f} | {s / o:.2f} | "
              f"{sp:.3f} | {op:.3f} | {sp / op:.2f} |", flush=True)
        assert abs(seed_ap - our_ap) <= 1e-3, f"AP differs: seed {seed_ap}, ours {our_ap}"


if __name__ == "__main__":
    main()
