"""Training throughput: humanpose's default settings against the seed's training loop.

Same YAML (so the same ``WORKERS``, which humanpose caps on a CPU as
``humanpose.data.loader.loader_workers`` says; ``--workers`` overrides it for both sides),
same synthetic COCO-sized (640x480) data, batch 32, data loading included: the loop's
speed is timed from the arrival of batch ``--warmup`` to the last one (start-up excluded,
reported apart as the whole job's time).
The seed's ``core.function.train`` runs unchanged on the CPU (its ``.cuda()`` calls are
no-ops); humanpose runs ``humanpose.engine.train.train`` with ``TRAIN.MAX_STEPS_PER_EPOCH
N``. Interleaved repeats, medians.

    python benchmarks/bench_train.py --seed-root /path/to/humanpose.pytorch
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

import humanpose
from humanpose.data.synthetic import SynthConfig, write_coco_set
from humanpose.engine.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_compat import SeedNormalize, seed_cfg, seed_layout, seed_modules  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "LPN-18 128x96": ("experiments/coco/lpn/lpn18_256x192_gd256x2_gc.yaml",
                      ["MODEL.IMAGE_SIZE", "[96, 128]", "MODEL.HEATMAP_SIZE", "[24, 32]"]),
    "LPN-50 256x192": ("experiments/coco/lpn/lpn50_256x192_gd256x2_gc.yaml", []),
}


STAMPS: list[float] = []  # when each batch reached the training loop (both sides)


def _stamped(batches):
    for batch in batches:
        STAMPS.append(time.perf_counter())
        yield batch


class _Steps:
    """The first ``n`` batches of a loader, with the length the seed's loop logs."""

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, n

    def __iter__(self):
        return _stamped(itertools.islice(iter(self.loader), self.n))

    def __len__(self) -> int:
        return self.n


class _StampedLoader(torch.utils.data.DataLoader):
    """The engine's DataLoader, recording when each batch is handed over."""

    def __iter__(self):
        return _stamped(super().__iter__())


def steady_rate(warmup: int, batch: int) -> float:
    """Samples/s between the ``warmup``-th batch and the last: loop speed with data loading,
    without start-up (worker spawn, first-call kernel selection)."""
    return (len(STAMPS) - 1 - warmup) * batch / (STAMPS[-1] - STAMPS[warmup])


def run_seed(mods, cfg, steps: int, out: Path) -> float:
    function, seed_dataset, _, loss_cls, models = mods
    STAMPS.clear()
    start = time.perf_counter()
    data = seed_dataset.coco(cfg, cfg.DATASET.ROOT, cfg.DATASET.TRAIN_SET, True, SeedNormalize())
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.TRAIN.BATCH_SIZE_PER_GPU,
                                         shuffle=True, num_workers=cfg.WORKERS)
    model = getattr(models, cfg.MODEL.NAME).get_pose_net(cfg, is_train=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.TRAIN.LR)
    writer = types.SimpleNamespace(add_scalar=lambda *a, **k: None)
    with contextlib.redirect_stderr(io.StringIO()):
        function.train(cfg, _Steps(loader, steps), model, loss_cls(True), optimizer, 0,
                       str(out), str(out), {"writer": writer, "train_global_steps": 0})
    return time.perf_counter() - start


def run_ours(cfg, cfg_path: Path) -> float:
    import humanpose.engine.train as engine

    engine.DataLoader = _StampedLoader
    STAMPS.clear()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(cfg, cfg_path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="batches before timing starts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None,
                        help="WORKERS for both sides (default: the YAML's)")
    parser.add_argument("--opts", nargs="*", default=[],
                        help="extra KEY VALUE overrides for humanpose's side only")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.INFO)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    data = work / "synthetic640"
    if not (data / "annotations").exists():
        write_coco_set(str(data), num_train=args.images, num_val=4, seed=11,
                       cfg=SynthConfig(width=640, height=480))
    seed_data = work / "seed_layout"
    seed_layout(data, seed_data, splits=("train2017", "val2017"))
    mods = seed_modules(args.seed_root)
    workers = "the YAML's" if args.workers is None else args.workers
    print(f"torch {torch.__version__}, {args.threads} threads, WORKERS {workers}, batch 32, "
          f"{args.steps} steps per run, 640x480 JPEGs, median of {args.repeats}; humanpose "
          f"overrides: {' '.join(args.opts) or 'none'}")
    print(f"samples/s from batch {args.warmup} to the last; total: the whole job in seconds")
    print("| model | seed samples/s | humanpose samples/s | humanpose / seed | seed total s | "
          "humanpose total s |")
    print("|---|---|---|---|---|---|")
    for label in args.cases.split(","):
        rel, extra = CASES[label]
        workers = [] if args.workers is None else ["WORKERS", str(args.workers)]
        opts = [*extra, "DATASET.ROOT", str(seed_data), *workers, "TRAIN.BATCH_SIZE_PER_GPU", "32",
                "OUTPUT_DIR", str(work / "out"), "LOG_DIR", str(work / "log"),
                "TRAIN.END_EPOCH", "1", "TRAIN.VAL_INTERVAL", "0",
                "TRAIN.MAX_STEPS_PER_EPOCH", str(args.steps), "PRINT_FREQ", "1000000"]
        theirs_cfg = seed_cfg(mods[2], humanpose.get_cfg(REPO / rel, opts))
        ours_cfg = humanpose.get_cfg(REPO / rel, [*opts, *args.opts])
        runs = {"seed": [], "ours": [], "seed_total": [], "ours_total": []}
        for _ in range(args.repeats):
            runs["seed_total"].append(run_seed(mods, theirs_cfg, args.steps, work / "seed_out"))
            runs["seed"].append(steady_rate(args.warmup, 32))
            runs["ours_total"].append(run_ours(ours_cfg, REPO / rel))
            runs["ours"].append(steady_rate(args.warmup, 32))
        s, o = statistics.median(runs["seed"]), statistics.median(runs["ours"])
        st, ot = statistics.median(runs["seed_total"]), statistics.median(runs["ours_total"])
        print(f"| {label} | {s:.1f} | {o:.1f} | {o / s:.2f} | {st:.1f} | {ot:.1f} |", flush=True)


if __name__ == "__main__":
    main()
