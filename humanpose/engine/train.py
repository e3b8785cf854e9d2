"""``humanpose train``: one process on a CPU/GPU, or DistributedDataParallel under torchrun.

Per epoch: train (AMP, channels-last, optional torch.compile and gradient clipping), then
every TRAIN.VAL_INTERVAL epochs validate on all ranks (sharded) and keep the best model.
Randomness is a function of (TRAIN.SEED, epoch, rank), so a run resumed from an epoch
boundary continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from humanpose.checkpoint import load_pretrained
from humanpose.data.loader import loader_workers
from humanpose.data.normalize import normalize_batch
from humanpose.engine.distributed import Dist, broadcast_object, init_distributed, shutdown
from humanpose.engine.ema import averaged, build_ema
from humanpose.engine.evaluate import amp_dtype
from humanpose.engine.optim import build_optimizer, build_scheduler
from humanpose.engine.state import load_training_state, run_dirs, save_atomic, setup_logging
from humanpose.engine.sync_bn import convert_sync_batchnorm
from humanpose.engine.task import task_for
from humanpose.errors import HumanposeError
from humanpose.predict import autocast_for

__all__ = ["TrainResult", "TrainingError", "train"]

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


def _train(cfg, cfg_path: Path, dist: Dist) -> TrainResult:
    task = task_for(cfg)
    out_dir, tb_dir = run_dirs(cfg, cfg_path, create=dist.is_main)
    if not dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(out_dir, cfg_path, "train", dist.is_main, dist.rank)
    logger.info("=> output folder %s (rank %d of %d, device %s)", out_dir, dist.rank,
                dist.world_size, dist.device)
    _seed_epoch(cfg.TRAIN.SEED, -1, dist.rank)

    # Data first: a wrong DATASET.ROOT fails here, before any model is built.
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
    dtype = amp_dtype(cfg.TRAIN.AMP, dist.device)
    use_scaler = dtype == torch.float16
    logger.info("=> %s, %d parameters, mixed precision %s, channels-last %s", cfg.MODEL.NAME,
                sum(p.numel() for p in model.parameters()),
                {None: "off (fp32)", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype],
                cfg.TRAIN.CHANNELS_LAST)

    workers = loader_workers(cfg.WORKERS, dist.device)
    if workers != cfg.WORKERS:
        logger.info("=> %d loader workers instead of WORKERS %d: on a CPU they would take cores "
                    "from the %d training threads (see humanpose.data.loader.loader_workers)",
                    workers, cfg.WORKERS, torch.get_num_threads())

    stages = _stages(cfg)
    total_epochs = stages[-1].first_epoch + stages[-1].epochs
    ckpt_path = out_dir / "checkpoint.pth"
    best_path = out_dir / "model_best.pth"
    result = TrainResult(out_dir)
    best = -math.inf
    start_epoch, start_step = cfg.TRAIN.BEGIN_EPOCH, 0
    resume_state = None
    resume_from = Path(cfg.TRAIN.CHECKPOINT) if cfg.TRAIN.RESUME and cfg.TRAIN.CHECKPOINT \
        else ckpt_path if cfg.AUTO_RESUME and ckpt_path.exists() else None
    if resume_from is not None:
        resume_state = load_training_state(resume_from, cfg)
        model.load_state_dict(resume_state["state_dict"])
        start_epoch, start_step = resume_state["epoch"], resume_state.get("step", 0)
        best = resume_state.get("best_perf", -math.inf)
        logger.info("=> resumed from %s at epoch %d step %d (best %s %.4f)", resume_from,
                    start_epoch, start_step, resume_state.get("metric", "AP"), best)
    ema = build_ema(cfg, model)
    if ema is not None and resume_state is not None:
        ema.load_state_dict(resume_state, model)

    writer = _tensorboard(tb_dir) if dist.is_main else None
    global_step = 0
    try:
        for schedule in stages:
            end = schedule.first_epoch + schedule.epochs
            if start_epoch >= end:
                continue
            if schedule.stage > 0 and start_epoch == schedule.first_epoch and start_step == 0:
                if best_path.exists():
                    model.load_state_dict(torch.load(best_path, map_location=dist.device,
                                                     weights_only=True))
                    if ema is not None:
                        ema.reset(model)
                logger.info("=> iterative training stage %d: restart from the best weights "
                            "(%.4f) for %d epochs", schedule.stage, best, schedule.epochs)
                resume_state = None  # a stage starts with a fresh optimizer
            optimizer = build_optimizer(cfg, model)
            scheduler = build_scheduler(cfg, optimizer, steps_per_epoch, schedule.epochs,
                                        schedule.milestones, schedule.milestone_origin)
            scaler = torch.amp.GradScaler(dist.device.type, enabled=use_scaler)
            if resume_state is not None and resume_state.get("stage", 0) == schedule.stage:
                optimizer.load_state_dict(resume_state["optimizer"])
                scheduler.load_state_dict(resume_state["scheduler"])
                if "scaler" in resume_state:
                    scaler.load_state_dict(resume_state["scaler"])
            resume_state = None
            for epoch in range(max(start_epoch, schedule.first_epoch), end):
                skip = start_step if epoch == start_epoch else 0
                state = _Run(cfg, dist, net, model, criterion, optimizer, scheduler, scaler,
                             dtype, schedule.stage, ckpt_path, best, result.metric_name, ema=ema)
                _seed_epoch(cfg.TRAIN.SEED, epoch, dist.rank)
                sampler.set_epoch(epoch)
                if hasattr(train_set, "set_epoch"):  # before the loader copies it to workers
                    train_set.set_epoch(epoch)
                loader = DataLoader(
                    train_set, batch_size=batch_size,
                    sampler=_SkipSampler(sampler, skip * batch_size) if skip else sampler,
                    num_workers=workers, pin_memory=cfg.PIN_MEMORY and
                    dist.device.type == "cuda", drop_last=False)
                loss = state.train_epoch(loader, epoch, skip, steps_per_epoch, total_epochs)
                if writer is not None:
                    global_step = (epoch + 1) * steps_per_epoch
                    writer.add_scalar("train_loss", loss, global_step)
                    writer.add_scalar("lr", optimizer.param_groups[0]["lr"], global_step)
                result.epochs_run += 1
                interval = cfg.TRAIN.VAL_INTERVAL
                validate_now = interval > 0 and (
                    (epoch + 1 - schedule.first_epoch) % interval == 0 or epoch + 1 == end)
                perf = None
                if validate_now:
                    preds = task.predict(averaged(model, ema), val_set, cfg, dist)
                    if dist.is_main:
                        values, perf, name = task.score(cfg, val_set, preds, out_dir,
                                                        cfg.MODEL.NAME)
                        result.metric_name, result.last_metrics = name, dict(values)
                        if writer is not None:
                            writer.add_scalars("valid", {k: float(v) for k, v in values.items()},
                                               global_step)
                    perf = broadcast_object(perf)
                    model.train()
                is_best = perf is not None and perf >= best
                if is_best:
                    best = perf
                if dist.is_main:
                    state.best = best
                    state.save(epoch + 1, 0)
                    if is_best:
                        save_atomic(averaged(model, ema).state_dict(), best_path)
                    logger.info("=> epoch %d: loss %.6f%s; checkpoint %s", epoch, loss,
                                "" if perf is None else
                                f", {result.metric_name} {perf:.4f} (best {best:.4f})", ckpt_path)
            start_step = 0
    except KeyboardInterrupt:
        if dist.is_main and "state" in locals():
            state.save(state.epoch, state.step)
            logger.info("=> interrupted at epoch %d step %d; resumable checkpoint %s (run "
                        "again with AUTO_RESUME True)", state.epoch, state.step, ckpt_path)
        raise
    finally:
        if writer is not None:
            writer.close()
    if dist.is_main:
        save_atomic(averaged(model, ema).state_dict(), out_dir / "final_state.pth")
        logger.info("=> final weights %s; best %s %.4f", out_dir / "final_state.pth",
                    result.metric_name, best)
    result.best_metric = best
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

    def save(self, epoch: int, step: int) -> None:
        save_atomic({
            "epoch": epoch, "step": step, "stage": self.stage,
            "model": self.cfg.MODEL.NAME, "model_cfg": self.cfg.MODEL.dump(),
            "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "best_perf": self.best, "metric": self.metric_name,
            **(self.ema.state_dict() if self.ema is not None else {}),
        }, self.ckpt_path)
        self.saved_any = True

    def train_epoch(self, loader: DataLoader, epoch: int, skip: int, steps_per_epoch: int,
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
            if images.dtype == torch.uint8:
                images = normalize_batch(images)
            if cfg.TRAIN.CHANNELS_LAST:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = [_to_device(t, device) for t in targets]
            with autocast_for(device, self.dtype):
                output = self.net(images)
            loss = self.criterion(output, *targets)
            self._check_finite(loss)
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
            last = self.ckpt_path if self.saved_any else "none (no epoch has finished yet)"
            raise TrainingError(
                f"loss is {loss.item()} at epoch {self.epoch} step {self.step}: training "
                f"stopped. Last good checkpoint: {last}. Lower TRAIN.LR, enable "
                "TRAIN.CLIP_GRAD, or set TRAIN.AMP none.")
