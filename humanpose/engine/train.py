"""``humanpose train``: one process on a CPU/GPU, or DistributedDataParallel under torchrun.

Per epoch: train (AMP, channels-last, optional torch.compile and gradient clipping), then
every TRAIN.VAL_INTERVAL epochs validate on all ranks (sharded) and keep the best model
(without flip test before a stage's last epoch unless TRAIN.VAL_FLIP_TEST: see
:func:`validation_cfg`).
Randomness is a function of (TRAIN.SEED, epoch, rank), so a run resumed from an epoch
boundary continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from humanpose.checkpoint import (
    format_init_report,
    init_from_weights,
    load_pretrained,
    read_state_dict,
    with_keypoints,
)
from humanpose.data.loader import loader_workers
from humanpose.data.normalize import normalize_batch
from humanpose.data.prefetch import prefetch
from humanpose.engine.distributed import (
    Dist,
    broadcast_object,
    init_distributed,
    shutdown,
)
from humanpose.engine.ema import averaged, build_ema
from humanpose.engine.optim import build_optimizer, build_scheduler
from humanpose.engine.precision import PrecisionChoice, choose_train_precision
from humanpose.engine.state import (
    load_resumed_weights,
    load_training_state,
    missing_resume_entries,
    restore_optimization,
    run_dirs,
    save_atomic,
    setup_logging,
    weights_with_config,
)
from humanpose.engine.stop import critical_section, stop_signals
from humanpose.engine.sync_bn import convert_sync_batchnorm
from humanpose.engine.task import task_for
from humanpose.errors import HumanposeError
from humanpose.predict import autocast_for

__all__ = ["TrainResult", "TrainingError", "train", "validation_cfg"]

logger = logging.getLogger("humanpose")


class TrainingError(HumanposeError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


@dataclass
class TrainResult:
    output_dir: Path
    metric_name: str = "AP"
    best_metric: float = -1.0
    last_metrics: dict = field(default_factory=dict)
    epochs_run: int = 0


class _SkipSampler(Sampler[int]):
    """The epoch's sample order without its first ``skip`` indices (mid-epoch resume)."""

    def __init__(self, sampler: DistributedSampler, skip: int):
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)


def _to_device(value, device: torch.device):
    """A target (tensor, or dict/list of tensors) moved to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def _seed_epoch(seed: int, epoch: int, rank: int) -> None:
    value = seed + 1000 * epoch + rank
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("=> tensorboard is not installed: no event files are written "
                       "(pip install tensorboard)")
        return None
    log_dir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(log_dir))


@dataclass
class _Schedule:
    """One stage of training: the first schedule, or an LPN iterative restart."""

    stage: int
    first_epoch: int  # global epoch index where the stage starts
    epochs: int
    milestones: list[int]
    milestone_origin: int


def _init_weights(model: nn.Module, spec: str, head_prefixes: tuple[str, ...]) -> None:
    """TRAIN.INIT_WEIGHTS: a weights file (the command line has turned a zoo name into the
    verified file in the cache)."""
    path = Path(spec)
    if not path.is_file():
        raise HumanposeError(f"TRAIN.INIT_WEIGHTS {spec}: no such file, and not a zoo "
                             "name ('humanpose zoo' lists them)")
    report = init_from_weights(model, path, head_prefixes)
    for line in format_init_report(report, spec):
        logger.info(line)


def _stages(cfg) -> list[_Schedule]:
    base = cfg.TRAIN.END_EPOCH - cfg.TRAIN.BEGIN_EPOCH
    stages = [_Schedule(0, cfg.TRAIN.BEGIN_EPOCH, base, list(cfg.TRAIN.LR_STEP),
                        cfg.TRAIN.BEGIN_EPOCH)]
    length = cfg.TRAIN.ITERATIVE_EPOCHS or base
    # Restarts keep the schedule's shape: LR_STEP scaled to the restart's length.
    marks = [round((s - cfg.TRAIN.BEGIN_EPOCH) * length / max(base, 1)) for s in cfg.TRAIN.LR_STEP]
    for k in range(1, cfg.TRAIN.ITERATIVE_STAGES + 1):
        start = stages[-1].first_epoch + stages[-1].epochs
        stages.append(_Schedule(k, start, length, marks, 0))
    return stages


def train(cfg, cfg_path: str | os.PathLike) -> TrainResult:
    """Train as ``cfg`` says; returns where it wrote and the best validation metric."""
    dist = init_distributed(cfg.DEVICE)
    try:
        return _train(cfg, Path(cfg_path), dist)
    finally:
        shutdown()


@dataclass
class _Setup:
    """What a run builds once: data, network, loss, and where it writes."""

    task: Any
    out_dir: Path
    tb_dir: Path
    train_set: Any
    val_set: Any
    sampler: DistributedSampler
    batch_size: int
    steps_per_epoch: int
    workers: int
    model: nn.Module  # the plain module: its state_dict is what checkpoints hold
    net: nn.Module  # what the forward pass runs: DDP and/or torch.compile around ``model``
    criterion: nn.Module
    dtype: torch.dtype | None
    stages: list[_Schedule]
    total_epochs: int
    cfg_path: Path | None = None  # the experiment file, named in the weights files
    ema: Any = None  # humanpose.engine.ema.ModelEMA (TRAIN.EMA) or None

    def weights_file(self, cfg) -> dict:
        """What model_best.pth and final_state.pth hold: the weights, the config they were
        trained with and the key-point set, so that the file alone can be run."""
        weights = averaged(self.model, self.ema).state_dict()  # the EMA's, with TRAIN.EMA
        return with_keypoints(weights_with_config(weights, cfg, self.cfg_path),
                              self.keypoints)

    @property
    def keypoints(self):
        """The joints of the model (a KeypointSet), stored with its weights; None for
        tasks without key points."""
        return getattr(self.train_set, "keypoints", None)

    @property
    def ckpt_path(self) -> Path:
        return self.out_dir / "checkpoint.pth"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "model_best.pth"


@dataclass
class _Progress:
    """Where training stands: the next epoch/step, the best metric, a state to restore."""

    epoch: int
    step: int = 0
    best: float = -math.inf
    resume_state: dict | None = None
    global_step: int = 0
    run: _Run | None = None  # the epoch in progress, saved if training is interrupted


def _train(cfg, cfg_path: Path, dist: Dist) -> TrainResult:
    """Set up, resume, run each stage's epochs (train, validate, save), then close; a stop
    signal saves where the epoch in progress stands."""
    setup = _set_up(cfg, cfg_path, dist)
    progress = _resume(cfg, setup, dist)
    result = TrainResult(setup.out_dir)
    writer = _tensorboard(setup.tb_dir) if dist.is_main else None
    try:
        with stop_signals():
            for schedule in setup.stages:
                _run_stage(cfg, setup, dist, schedule, progress, result, writer)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (a StopRequested)
        run = progress.run
        if dist.is_main and run is not None and run.save_if_finite(run.epoch, run.step):
            logger.info("=> interrupted at epoch %d step %d; resumable checkpoint %s (run "
                        "again with AUTO_RESUME True)", run.epoch, run.step, setup.ckpt_path)
        raise
    finally:
        if writer is not None:
            writer.close()
    return _close(cfg, setup, dist, progress, result)


def _set_up(cfg, cfg_path: Path, dist: Dist) -> _Setup:
    """Output folder and logging, then data (a wrong DATASET.ROOT fails before any model
    is built), then the network wrapped for DDP/compile, and the loss."""
    task = task_for(cfg)
    out_dir, tb_dir = run_dirs(cfg, cfg_path, create=dist.is_main)
    if not dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(out_dir, cfg_path, "train", dist.is_main, dist.rank)
    logger.info("=> output folder %s (rank %d of %d, device %s)", out_dir, dist.rank,
                dist.world_size, dist.device)
    _seed_epoch(cfg.TRAIN.SEED, -1, dist.rank)

    train_set = task.build_dataset(cfg, is_train=True)
    val_set = task.build_dataset(cfg, is_train=False)
    sampler = DistributedSampler(train_set, num_replicas=dist.world_size, rank=dist.rank,
                                 shuffle=cfg.TRAIN.SHUFFLE, seed=cfg.TRAIN.SEED)
    batch_size = cfg.TRAIN.BATCH_SIZE_PER_GPU
    steps_per_epoch = math.ceil(len(sampler) / batch_size)
    if cfg.TRAIN.MAX_STEPS_PER_EPOCH:
        steps_per_epoch = min(steps_per_epoch, cfg.TRAIN.MAX_STEPS_PER_EPOCH)

    model = task.build_model(cfg, channels_last=cfg.TRAIN.CHANNELS_LAST)
    if cfg.MODEL.INIT_WEIGHTS and cfg.MODEL.PRETRAINED:
        load_pretrained(model, cfg.MODEL.PRETRAINED, cfg.MODEL.EXTRA.PRETRAINED_LAYERS)
    if cfg.TRAIN.INIT_WEIGHTS:
        _init_weights(model, cfg.TRAIN.INIT_WEIGHTS, task.head_prefixes(cfg))
    model.to(dist.device)
    if dist.distributed and cfg.MODEL.SYNC_BN:
        # nn.SyncBatchNorm is GPU-only; CPU process groups get an equivalent of our own.
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model) if dist.device.type == "cuda" \
            else convert_sync_batchnorm(model)
    net: nn.Module = model
    if dist.distributed:
        net = DistributedDataParallel(
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    if cfg.TRAIN.COMPILE:
        net = torch.compile(net)
    criterion = task.build_loss(cfg).to(dist.device)
    precision = _training_precision(cfg, model, dist)
    dtype = precision.dtype
    timed = ", ".join(f"{k} {v:.1f} ms/step" for k, v in precision.timings_ms.items())
    logger.info("=> %s, %d parameters, mixed precision %s (%s%s), channels-last %s",
                cfg.MODEL.NAME, sum(p.numel() for p in model.parameters()),
                {None: "off (fp32)", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype],
                precision.reason, f": {timed}" if timed else "", cfg.TRAIN.CHANNELS_LAST)

    workers = loader_workers(cfg.WORKERS, dist.device)
    if workers != cfg.WORKERS:
        logger.info("=> %d loader workers instead of WORKERS %d: on a CPU they would take cores "
                    "from the %d training threads (see humanpose.data.loader.loader_workers)",
                    workers, cfg.WORKERS, torch.get_num_threads())
    stages = _stages(cfg)
    return _Setup(task, out_dir, tb_dir, train_set, val_set, sampler, batch_size,
                  steps_per_epoch, workers, model, net, criterion, dtype, stages,
                  stages[-1].first_epoch + stages[-1].epochs, Path(cfg_path),
                  build_ema(cfg, model))


def _training_precision(cfg, model: nn.Module, dist: Dist) -> PrecisionChoice:
    """TRAIN.AMP resolved (``auto``: timed on rank 0, the same choice on every rank)."""
    w, h = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    choice = None
    if dist.is_main or str(cfg.TRAIN.AMP).lower() != "auto":
        choice = choose_train_precision(cfg.TRAIN.AMP, model,
                                        (cfg.TRAIN.BATCH_SIZE_PER_GPU, 3, h, w), dist.device,
                                        cfg.MODEL.dump(), cfg.TRAIN.CHANNELS_LAST)
    return broadcast_object(choice) if dist.distributed else choice


def _resume(cfg, setup: _Setup, dist: Dist) -> _Progress:
    """Load the weights of TRAIN.RESUME's checkpoint, or of this run's own checkpoint.pth
    with AUTO_RESUME; the optimizer and schedule are restored when their stage starts."""
    progress = _Progress(cfg.TRAIN.BEGIN_EPOCH)
    resume_from = Path(cfg.TRAIN.RESUME) if cfg.TRAIN.RESUME \
        else setup.ckpt_path if cfg.AUTO_RESUME and setup.ckpt_path.exists() else None
    if resume_from is None:
        return progress
    state = load_training_state(resume_from, cfg)
    load_resumed_weights(setup.model, state["state_dict"], resume_from)
    if setup.ema is not None:
        setup.ema.load_state_dict(state, setup.model)
    progress.epoch, progress.step = state["epoch"], state.get("step", 0)
    progress.best = state.get("best_perf", -math.inf)
    progress.resume_state = state
    logger.info("=> resumed from %s at epoch %d step %d (best %s %.4f)", resume_from,
                progress.epoch, progress.step, state.get("metric", "AP"), progress.best)
    missing = missing_resume_entries(state)
    if missing:
        logger.info("=> %s has no %s: %s", resume_from, ", ".join(missing),
                    "the schedule is rebuilt for that epoch and the rest starts afresh")
    return progress


def _run_stage(cfg, setup: _Setup, dist: Dist, schedule: _Schedule, progress: _Progress,
               result: TrainResult, writer) -> None:
    """The epochs of one stage: the schedule, or an LPN restart from the best weights with
    a fresh optimizer and schedule."""
    end = schedule.first_epoch + schedule.epochs
    if progress.epoch >= end:
        return
    if schedule.stage > 0 and progress.epoch == schedule.first_epoch and progress.step == 0:
        if setup.best_path.exists():
            setup.model.load_state_dict(read_state_dict(setup.best_path))
            if setup.ema is not None:
                setup.ema.reset(setup.model)
        logger.info("=> iterative training stage %d: restart from the best weights "
                    "(%.4f) for %d epochs", schedule.stage, progress.best, schedule.epochs)
        progress.resume_state = None  # a stage starts with a fresh optimizer
    optimizer = build_optimizer(cfg, setup.model)
    scheduler = build_scheduler(cfg, optimizer, setup.steps_per_epoch, schedule.epochs,
                                schedule.milestones, schedule.milestone_origin)
    scaler = torch.amp.GradScaler(dist.device.type, enabled=setup.dtype == torch.float16)
    state = progress.resume_state
    if state is not None and state.get("stage", 0) == schedule.stage:
        done = (progress.epoch - schedule.first_epoch) * setup.steps_per_epoch + progress.step
        restore_optimization(state, optimizer, scheduler, scaler, done)
    progress.resume_state = None
    for epoch in range(max(progress.epoch, schedule.first_epoch), end):
        skip = progress.step if epoch == progress.epoch else 0
        run = _Run(cfg, dist, setup.net, setup.model, setup.criterion, optimizer, scheduler,
                   scaler, setup.dtype, schedule.stage, setup.ckpt_path, progress.best,
                   result.metric_name, ema=setup.ema)
        run.keypoints = setup.keypoints
        progress.run = run
        loss = _train_one_epoch(cfg, setup, dist, run, epoch, skip)
        if writer is not None:
            progress.global_step = (epoch + 1) * setup.steps_per_epoch
            writer.add_scalar("train_loss", loss, progress.global_step)
            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], progress.global_step)
        result.epochs_run += 1
        _validate_and_save(cfg, setup, dist, run, schedule, epoch, loss, progress, result,
                           writer)
    progress.step = 0


def _train_one_epoch(cfg, setup: _Setup, dist: Dist, run: _Run, epoch: int,
                     skip: int) -> float:
    """Seed the epoch, build its loader (without the ``skip`` steps already done), train."""
    _seed_epoch(cfg.TRAIN.SEED, epoch, dist.rank)
    setup.sampler.set_epoch(epoch)
    if hasattr(setup.train_set, "set_epoch"):  # before the loader copies it to workers
        setup.train_set.set_epoch(epoch)
    sampler = _SkipSampler(setup.sampler, skip * setup.batch_size) if skip else setup.sampler
    loader = DataLoader(setup.train_set, batch_size=setup.batch_size, sampler=sampler,
                        num_workers=setup.workers,
                        pin_memory=cfg.PIN_MEMORY and dist.device.type == "cuda",
                        drop_last=False)
    if setup.workers > 0 or cfg.PREFETCH_BATCHES <= 0:
        return run.train_epoch(loader, epoch, skip, setup.steps_per_epoch, setup.total_epochs)
    # Loading in this process: a thread loads the next batches during the step. It is the
    # only user of ``random``/``np.random`` (the augmentations' generators) until it is
    # stopped here, so the samples are those of loading between steps.
    batches = prefetch(loader, cfg.PREFETCH_BATCHES)
    try:
        return run.train_epoch(batches, epoch, skip, setup.steps_per_epoch,
                               setup.total_epochs)
    finally:
        batches.close()


def _validate_and_save(cfg, setup: _Setup, dist: Dist, run: _Run, schedule: _Schedule,
                       epoch: int, loss: float, progress: _Progress, result: TrainResult,
                       writer) -> None:
    """Every TRAIN.VAL_INTERVAL epochs (and after a stage's last) validate on all ranks;
    then check the weights are finite and write checkpoint.pth (and model_best.pth)."""
    end = schedule.first_epoch + schedule.epochs
    interval = cfg.TRAIN.VAL_INTERVAL
    validate_now = interval > 0 and (
        (epoch + 1 - schedule.first_epoch) % interval == 0 or epoch + 1 == end)
    perf = None
    if validate_now:
        val_cfg = validation_cfg(cfg, last=epoch + 1 == end)
        preds = setup.task.predict(averaged(setup.model, setup.ema), setup.val_set, val_cfg,
                                   dist)
        if dist.is_main:
            values, perf, name = setup.task.score(cfg, setup.val_set, preds, setup.out_dir,
                                                  cfg.MODEL.NAME)
            result.metric_name, result.last_metrics = name, dict(values)
            if writer is not None:
                writer.add_scalars("valid", {k: float(v) for k, v in values.items()},
                                   progress.global_step)
        perf = broadcast_object(perf)
        setup.model.train()
    # Every rank holds the same weights, so every rank stops here together.
    run.check_weights_finite()
    is_best = perf is not None and perf >= progress.best
    if is_best:
        progress.best = perf
    if dist.is_main:
        run.best = progress.best
        run.save(epoch + 1, 0)
        if is_best:
            save_atomic(setup.weights_file(cfg), setup.best_path)
        logger.info("=> epoch %d: loss %.6f%s; checkpoint %s", epoch, loss,
                    "" if perf is None else
                    f", {result.metric_name} {perf:.4f} (best {progress.best:.4f})",
                    setup.ckpt_path)


def validation_cfg(cfg, last: bool):
    """The config a validation during training predicts with: the PyTorch model as it is
    (TEST.BACKEND torch: the weights change every epoch, an export would not be reused),
    and with TRAIN.VAL_FLIP_TEST False no flip test except at a stage's last epoch, where
    TEST.FLIP_TEST holds, so the final AP means what ``humanpose test`` reports."""
    flip = bool(cfg.TEST.FLIP_TEST) and (last or bool(cfg.TRAIN.VAL_FLIP_TEST))
    if cfg.TEST.BACKEND == "torch" and flip == bool(cfg.TEST.FLIP_TEST):
        return cfg
    val_cfg = cfg.clone()
    val_cfg.defrost()
    val_cfg.TEST.BACKEND = "torch"
    val_cfg.TEST.FLIP_TEST = flip
    val_cfg.freeze()
    return val_cfg


def _close(cfg, setup: _Setup, dist: Dist, progress: _Progress,
           result: TrainResult) -> TrainResult:
    if dist.is_main:
        final = setup.out_dir / "final_state.pth"
        save_atomic(setup.weights_file(cfg), final)
        logger.info("=> final weights %s; best %s %.4f", final, result.metric_name,
                    progress.best)
    result.best_metric = progress.best
    return result


class _Run:
    """The mutable state of one epoch of training, and how to checkpoint it."""

    def __init__(self, cfg, dist: Dist, net: nn.Module, model: nn.Module,
                 criterion: nn.Module, optimizer, scheduler, scaler, dtype, stage: int,
                 ckpt_path: Path, best: float, metric_name: str, ema=None):
        self.cfg, self.dist, self.net, self.model = cfg, dist, net, model
        self.criterion, self.optimizer, self.scheduler, self.scaler = \
            criterion, optimizer, scheduler, scaler
        self.dtype, self.stage, self.ckpt_path = dtype, stage, ckpt_path
        self.best, self.metric_name = best, metric_name
        self.ema = ema  # humanpose.engine.ema.ModelEMA or None
        self.epoch, self.step = 0, 0
        self.saved_any = ckpt_path.exists()
        self.keypoints = None  # the joints of the model, stored with its weights

    def save(self, epoch: int, step: int) -> None:
        """Write the resumable checkpoint (call :meth:`check_weights_finite` first)."""
        save_atomic({
            "epoch": epoch, "step": step, "stage": self.stage,
            "model": self.cfg.MODEL.NAME, "model_cfg": self.cfg.MODEL.dump(),
            "cfg": self.cfg.dump(),
            "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "best_perf": self.best, "metric": self.metric_name,
            **(self.ema.state_dict() if self.ema is not None else {}),
        } | with_keypoints({}, self.keypoints), self.ckpt_path)
        self.saved_any = True

    def save_if_finite(self, epoch: int, step: int) -> bool:
        """Save unless the weights hold NaN/inf, which would replace the last good file."""
        bad = non_finite_entries(self.model)
        if bad:
            logger.info("=> not saved: the weights hold NaN/inf (%s); last good checkpoint: %s",
                        ", ".join(bad[:3]), self._last_good())
            return False
        self.save(epoch, step)
        return True

    def check_weights_finite(self) -> None:
        bad = non_finite_entries(self.model)
        if bad:
            raise TrainingError(
                f"the weights hold NaN/inf after epoch {self.epoch} step {self.step} "
                f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): training stopped "
                f"without saving them. Last good checkpoint: {self._last_good()}. Lower "
                "TRAIN.LR, enable TRAIN.CLIP_GRAD, or set TRAIN.AMP none.")

    def _last_good(self) -> str:
        return str(self.ckpt_path) if self.saved_any else "none (no epoch has finished yet)"

    def train_epoch(self, loader: Iterable, epoch: int, skip: int, steps_per_epoch: int,
                    total_epochs: int) -> float:
        cfg, device = self.cfg, self.dist.device
        self.net.train()
        self.epoch, self.step = epoch, skip
        total, count = 0.0, 0
        bar = tqdm(loader, total=max(steps_per_epoch - skip, 0), disable=not self.dist.is_main,
                   desc=f"epoch {epoch + 1}/{total_epochs}", dynamic_ncols=True)
        for images, *targets, _meta in bar:
            if self.step >= steps_per_epoch:
                break
            images = images.to(device, non_blocking=True)
            images = normalize_batch(images)  # fast-mode uint8 crops; floats pass through
            if cfg.TRAIN.CHANNELS_LAST:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = [_to_device(t, device) for t in targets]
            with autocast_for(device, self.dtype):
                output = self.net(images)
            loss = self.criterion(output, *targets)
            self._check_finite(loss)
            # A SIGTERM/Ctrl-C arriving mid-update takes effect once the step is whole.
            with critical_section():
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if cfg.TRAIN.CLIP_GRAD > 0:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.TRAIN.CLIP_GRAD)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.ema is not None:
                    self.ema.update(self.model)
                self.scheduler.step()
                self.step += 1
            value = loss.item()
            total += value * images.shape[0]
            count += images.shape[0]
            if self.dist.is_main:
                lr = self.optimizer.param_groups[0]["lr"]
                bar.set_postfix(loss=f"{value:.6f}", lr=f"{lr:.2e}")
                if (self.step - 1) % max(cfg.PRINT_FREQ, 1) == 0:
                    logger.debug("epoch %d step %d loss %.6f", epoch, self.step, value)
        return total / max(count, 1)

    def _check_finite(self, loss: torch.Tensor) -> None:
        finite = torch.isfinite(loss.detach()).float()
        if self.dist.distributed:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        if finite.item() < 1:
            raise TrainingError(
                f"loss is {loss.item()} at epoch {self.epoch} step {self.step}: training "
                f"stopped. Last good checkpoint: {self._last_good()}. Lower TRAIN.LR, enable "
                "TRAIN.CLIP_GRAD, or set TRAIN.AMP none.")


def non_finite_entries(model: nn.Module) -> list[str]:
    """Names of the floating-point parameters and buffers holding NaN or inf."""
    return [name for name, value in model.state_dict().items()
            if value.is_floating_point() and not bool(torch.isfinite(value).all())]
