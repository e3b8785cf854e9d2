"""Optimizers and learning-rate schedules, stepped once per iteration.

The seed steps ``MultiStepLR`` once per epoch; an iteration-based schedule that changes the
rate at the same epoch boundaries gives the same rates and also allows warm-up and cosine.
"""

from __future__ import annotations

import bisect
import math

import torch
from torch import nn

__all__ = ["build_optimizer", "build_scheduler", "lr_factor", "parameter_groups"]


# Normalisation layers whose weights and biases mmengine's paramwise_cfg norm_decay_mult
# applies to (its DefaultOptimWrapperConstructor tests these classes; our CPU SyncBN is a
# BatchNorm2d). Other 1-d weights (e.g. RTMCC's ScaleNorm gain) keep the decay, as in mmpose.
_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
               nn.GroupNorm, nn.LayerNorm)


def parameter_groups(model: nn.Module, weight_decay: float,
                     norm_bias_decay: bool = True) -> list[dict]:
    """The trainable parameters as optimizer groups.

    With ``norm_bias_decay`` False, the weights and biases of normalisation layers and every
    other ``bias`` get no weight decay (mmpose's RTMPose ``paramwise_cfg``:
    ``norm_decay_mult=0, bias_decay_mult=0``); a parameter shared by two modules is taken
    once (``bypass_duplicate``). With True, one group with ``weight_decay`` for all.
    """
    if norm_bias_decay:
        return [{"params": [p for p in model.parameters() if p.requires_grad],
                 "weight_decay": weight_decay}]
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if is_norm or name == "bias" else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """The seed's optimizers: Adam(lr) (no weight decay, as the seed) or SGD with momentum;
    and AdamW (RTMPose's). TRAIN.NORM_BIAS_DECAY False exempts norms and biases from the
    weight decay of AdamW and SGD (see :func:`parameter_groups`)."""
    name = cfg.TRAIN.OPTIMIZER.lower()
    if name == "adam":
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=cfg.TRAIN.LR)
    groups = parameter_groups(model, cfg.TRAIN.WD, cfg.TRAIN.NORM_BIAS_DECAY)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WD)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.TRAIN.LR, momentum=cfg.TRAIN.MOMENTUM,
                               weight_decay=cfg.TRAIN.WD, nesterov=cfg.TRAIN.NESTEROV)
    raise ValueError(f"TRAIN.OPTIMIZER must be 'adam', 'adamw' or 'sgd', "
                     f"got {cfg.TRAIN.OPTIMIZER!r}")


def lr_factor(cfg, iteration: int, steps_per_epoch: int, total_epochs: int,
              milestones: list[int] | None = None, first_epoch: int | None = None) -> float:
    """Multiplier of TRAIN.LR at ``iteration`` of a schedule of ``total_epochs`` epochs.

    ``multistep`` divides by 1/LR_FACTOR at each epoch of ``milestones`` (default
    TRAIN.LR_STEP, absolute epochs counted from ``first_epoch``, default TRAIN.BEGIN_EPOCH,
    as in the seed's YAML files); ``cosine`` stays at 1 until TRAIN.COSINE_BEGIN_EPOCH
    (default 0), then decays to TRAIN.COSINE_MIN_LR_RATIO (default 0) at ``total_epochs``,
    per iteration. Warm-ups multiply this: TRAIN.WARMUP_EPOCHS ramps linearly from
    1/warm-up iterations; TRAIN.WARMUP_ITERS ramps from TRAIN.WARMUP_START_FACTOR to 1 as
    mmengine's LinearLR (which ends one step short, at 0.999 of the rate, until the
    cosine starts; this keeps the intended 1).
    """
    steps = max(steps_per_epoch, 1)
    epochs_done = iteration / steps
    kind = cfg.TRAIN.LR_SCHEDULER.lower()
    if kind == "multistep":
        start = cfg.TRAIN.BEGIN_EPOCH if first_epoch is None else first_epoch
        marks = sorted(cfg.TRAIN.LR_STEP if milestones is None else milestones)
        factor = cfg.TRAIN.LR_FACTOR ** bisect.bisect_right(marks, start + math.floor(epochs_done))
    elif kind == "cosine":
        factor = _cosine(epochs_done, cfg.TRAIN.COSINE_BEGIN_EPOCH, total_epochs,
                         cfg.TRAIN.COSINE_MIN_LR_RATIO)
    else:
        raise ValueError(f"TRAIN.LR_SCHEDULER must be 'multistep' or 'cosine', got {kind!r}")
    warmup_iters = cfg.TRAIN.WARMUP_EPOCHS * steps
    if warmup_iters > 0:
        factor *= min(1.0, (iteration + 1) / warmup_iters)
    if cfg.TRAIN.WARMUP_ITERS > 0:
        start_factor = cfg.TRAIN.WARMUP_START_FACTOR
        factor *= start_factor + (1.0 - start_factor) * min(iteration / cfg.TRAIN.WARMUP_ITERS,
                                                            1.0)
    return factor


def _cosine(epochs_done: float, begin: float, end: float, min_ratio: float) -> float:
    """Cosine from 1 at epoch ``begin`` to ``min_ratio`` at ``end`` (1 before ``begin``)."""
    if epochs_done < begin:
        return 1.0
    progress = min((epochs_done - begin) / max(end - begin, 1), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(cfg, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                    total_epochs: int, milestones: list[int] | None = None,
                    first_epoch: int | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """A schedule stepped after every optimizer step (see :func:`lr_factor`)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(cfg, it, steps_per_epoch, total_epochs, milestones,
                                        first_epoch))
