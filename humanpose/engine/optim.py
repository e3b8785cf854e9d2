"""Optimizers and learning-rate schedules, stepped once per iteration.

The seed steps ``MultiStepLR`` once per epoch; an iteration-based schedule that changes the
rate at the same epoch boundaries gives the same rates and also allows warm-up and cosine.
"""

from __future__ import annotations

import bisect
import math

import torch
from torch import nn

__all__ = ["build_optimizer", "build_scheduler", "lr_factor"]


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """The seed's optimizers: Adam(lr) (no weight decay, as the seed) or SGD with momentum."""
    name = cfg.TRAIN.OPTIMIZER.lower()
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.TRAIN.LR)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WD)
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.TRAIN.LR, momentum=cfg.TRAIN.MOMENTUM,
                               weight_decay=cfg.TRAIN.WD, nesterov=cfg.TRAIN.NESTEROV)
    raise ValueError(f"TRAIN.OPTIMIZER must be 'adam', 'adamw' or 'sgd', "
                     f"got {cfg.TRAIN.OPTIMIZER!r}")


def lr_factor(cfg, iteration: int, steps_per_epoch: int, total_epochs: int,
              milestones: list[int] | None = None, first_epoch: int | None = None) -> float:
    """Multiplier of TRAIN.LR at ``iteration`` of a schedule of ``total_epochs`` epochs.

    ``multistep`` divides by 1/LR_FACTOR at each epoch of ``milestones`` (default
    TRAIN.LR_STEP, absolute epochs counted from ``first_epoch``, default TRAIN.BEGIN_EPOCH,
    as in the seed's YAML files); ``cosine`` decays to 0 over ``total_epochs``;
    TRAIN.WARMUP_EPOCHS ramps the rate up linearly first.
    """
    steps = max(steps_per_epoch, 1)
    epochs_done = iteration / steps
    kind = cfg.TRAIN.LR_SCHEDULER.lower()
    if kind == "multistep":
        start = cfg.TRAIN.BEGIN_EPOCH if first_epoch is None else first_epoch
        marks = sorted(cfg.TRAIN.LR_STEP if milestones is None else milestones)
        factor = cfg.TRAIN.LR_FACTOR ** bisect.bisect_right(marks, start + math.floor(epochs_done))
    elif kind == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * min(epochs_done / max(total_epochs, 1), 1.0)))
    else:
        raise ValueError(f"TRAIN.LR_SCHEDULER must be 'multistep' or 'cosine', got {kind!r}")
    warmup_iters = cfg.TRAIN.WARMUP_EPOCHS * steps
    if warmup_iters > 0:
        factor *= min(1.0, (iteration + 1) / warmup_iters)
    return factor


def build_scheduler(cfg, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                    total_epochs: int, milestones: list[int] | None = None,
                    first_epoch: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """A schedule stepped after every optimizer step (see :func:`lr_factor`)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(cfg, it, steps_per_epoch, total_epochs, milestones,
                                        first_epoch))
