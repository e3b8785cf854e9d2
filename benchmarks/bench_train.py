"""Training throughput: humanpose's default settings against the seed's training loop.

Same YAML (so the same ``WORKERS``, which humanpose caps on a CPU as
``humanpose.data.loader.loader_workers`` says; ``--workers`` overrides it for both sides),
same synthetic COCO-sized (640x480) data, batch 32, data loading included: the loop's
speed is timed from the arrival of batch ``--warmup`` to the last one (start-up excluded,
reported apart as the whole job's time).
The seed's ``core.function.train`` runs unchanged on the CPU (its ``.cuda()`` calls are
no-ops); humanpose runs ``humanpose.engine.train.train`` with ``TRAIN.MAX_STEPS_PER_EPOCH
N``. Interleaved repeats, medians.

``--job`` times instead the whole job as users run it, end to end: ``--epochs`` full epochs
over the synthetic training set, each followed by validation (the YAML's TEST settings, flip
test included) and checkpoints. The seed's side is its ``tools/train.py`` loop without the
process spawn (datasets, loaders, Adam, MultiStepLR, ``core.function.train`` then
``core.function.validate`` every epoch, ``save_checkpoint``); humanpose's is
``humanpose.engine.train.train`` with its defaults (``TRAIN.VAL_INTERVAL 1``).

    python benchmarks/bench_train.py --seed-root /path/to/humanpose.pytorch
    python benchmarks/bench_train.py --seed-root /path/to/humanpose.pytorch --job \
        --cases "LPN-18 128x96" --images 600 --val-images 25
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


def run_seed_job(mods, cfg, out: Path) -> tuple[float, float]:
    """The seed's ``tools/train.py`` epochs, on one process: (seconds, last AP)."""
    function, seed_dataset, _, loss_cls, models = mods
    from utils.utils import get_optimizer, save_checkpoint  # the seed's, on sys.path

    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = getattr(models, cfg.MODEL.NAME).get_pose_net(cfg, is_train=True)
    criterion = loss_cls(cfg.LOSS.USE_TARGET_WEIGHT)
    train_set = seed_dataset.coco(cfg, cfg.DATASET.ROOT, cfg.DATASET.TRAIN_SET, True,
                                  SeedNormalize())
    valid_set = seed_dataset.coco(cfg, cfg.DATASET.ROOT, cfg.DATASET.TEST_SET, False,
                                  SeedNormalize())
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=cfg.TRAIN.BATCH_SIZE_PER_GPU,
                                               shuffle=True, num_workers=cfg.WORKERS)
    valid_loader = torch.utils.data.DataLoader(valid_set, batch_size=cfg.TEST.BATCH_SIZE_PER_GPU,
                                               shuffle=False, num_workers=cfg.WORKERS)
    optimizer = get_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, cfg.TRAIN.LR_STEP,
                                                     cfg.TRAIN.LR_FACTOR)
    writer = types.SimpleNamespace(add_scalar=lambda *a, **k: None,
                                   add_scalars=lambda *a, **k: None)
    writer_dict = {"writer": writer, "train_global_steps": 0, "valid_global_steps": 0}
    best, ap = -1.0, -1.0
    args = types.SimpleNamespace(rank=0)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for epoch in range(cfg.TRAIN.BEGIN_EPOCH, cfg.TRAIN.END_EPOCH):
            function.train(cfg, train_loader, model, criterion, optimizer, epoch, str(out),
                           str(out), writer_dict)
            scheduler.step()
            ap = float(function.validate(args, cfg, valid_loader, valid_set, model, criterion,
                                         str(out), str(out), writer_dict))
            is_best = ap >= best
            best = max(best, ap)
            save_checkpoint({"epoch": epoch + 1, "model": cfg.MODEL.NAME,
                             "state_dict": model.state_dict(),
                             "best_state_dict": model.state_dict(), "perf": ap,
                             "optimizer": optimizer.state_dict()}, is_best, str(out))
    return time.perf_counter() - start, ap


def run_ours_job(cfg, cfg_path: Path) -> tuple[float, float]:
    """``humanpose train`` as a user runs it: (seconds, last AP)."""
    import humanpose.engine.train as engine

    engine.DataLoader = torch.utils.data.DataLoader  # no stamps: nothing but the job
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = train(cfg, cfg_path)
    return time.perf_counter() - start, float(result.last_metrics.get("AP", float("nan")))


def main_job(args, mods, seed_data: Path, work: Path) -> None:
    workers = "the YAML's" if args.workers is None else args.workers
    print(f"torch {torch.__version__}, {args.threads} threads, WORKERS {workers}, batch 32, "
          f"the whole {args.epochs}-epoch job: {args.images} training and {args.val_images} "
          f"validation 640x480 JPEGs (synthetic), validation every epoch, median of "
          f"{args.repeats}; humanpose overrides: {' '.join(args.opts) or 'none'}")
    print("| model | seed job s | humanpose job s | seed / humanpose | seed last AP | "
          "humanpose last AP |")
    print("|---|---|---|---|---|---|")
    for label in args.cases.split(","):
        rel, extra = CASES[label]
        workers = [] if args.workers is None else ["WORKERS", str(args.workers)]
        opts = [*extra, "DATASET.ROOT", str(seed_data), *workers,
                "TRAIN.BATCH_SIZE_PER_GPU", "32", "TRAIN.BEGIN_EPOCH", "0",
                "TRAIN.END_EPOCH", str(args.epochs), "TRAIN.VAL_INTERVAL", "1",
                "AUTO_RESUME", "False", "PRINT_FREQ", "1000000",
                "TEST.COCO_BBOX_FILE", str(seed_data / "person_detection_results" /
                                           "COCO_val2017_detections_synthetic.json")]
        runs = {"seed": [], "ours": []}
        aps = {}
        for i in range(args.repeats):  # interleaved, each in a fresh output folder
            out = ["OUTPUT_DIR", str(work / f"job_out{i}"), "LOG_DIR", str(work / f"job_log{i}")]
            theirs_cfg = seed_cfg(mods[2], humanpose.get_cfg(REPO / rel, [*opts, *out]))
            ours_cfg = humanpose.get_cfg(REPO / rel, [*opts, *out, *args.opts])
            t, aps["seed"] = run_seed_job(mods, theirs_cfg, work / f"seed_job{i}")
            runs["seed"].append(t)
            t, aps["ours"] = run_ours_job(ours_cfg, REPO / rel)
            runs["ours"].append(t)
        s, o = statistics.median(runs["seed"]), statistics.median(runs["ours"])
        print(f"| {label} | {s:.1f} | {o:.1f} | {s / o:.2f} | {aps['seed']:.4f} | "
              f"{aps['ours']:.4f} |", flush=True)


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
    parser.add_argument("--images", type=int, default=300, help="synthetic training images")
    parser.add_argument("--job", action="store_true",
                        help="time the whole job end to end, validation included")
    parser.add_argument("--epochs", type=int, default=2, help="--job: epochs")
    parser.add_argument("--val-images", type=int, default=None,
                        help="--job: synthetic validation images (default: images / 24, "
                             "about COCO's val/train ratio of people)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.INFO)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_train_"))
    val_images = 4
    if args.job:
        args.val_images = val_images = args.val_images or max(args.images // 24, 2)
    name = f"synthetic640_{args.images}_{val_images}"
    data = work / name
    if not (data / "annotations").exists():
        write_coco_set(str(data), num_train=args.images, num_val=val_images, seed=11,
                       cfg=SynthConfig(width=640, height=480))
    seed_data = work / f"seed_layout_{args.images}_{val_images}"
    seed_layout(data, seed_data, splits=("train2017", "val2017"))
    mods = seed_modules(args.seed_root)
    if args.job:
        main_job(args, mods, seed_data, work)
        return
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
