"""An exponential moving average of the weights (TRAIN.EMA), as RTMPose trains with it.

The momentum is mmdet's ExpMomentumEMA (used by mmengine's EMAHook in mmpose's RTMPose
configs): ``m = (1 - momentum) * exp(-(1 + steps) / gamma) + momentum``, large early so that
the average follows the fast-changing first weights, then ``momentum``. Buffers (BatchNorm
statistics) are averaged too (``update_buffers=True``). The first update copies the weights.

The averaged copy is what validation evaluates and what ``model_best.pth`` and
``final_state.pth`` hold; ``checkpoint.pth`` keeps the raw weights under ``state_dict`` and
the average under ``ema_state_dict`` with ``ema_steps``, so that a resumed run continues it.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

__all__ = ["ModelEMA", "averaged", "build_ema"]


class ModelEMA:
    """The averaged copy (``module``) of a model and how many updates it has seen."""

    def __init__(self, model: nn.Module, momentum: float = 0.0002, gamma: float = 2000.0):
        if not 0.0 < momentum < 1.0 or gamma <= 0:
            raise ValueError(f"TRAIN.EMA_MOMENTUM must be in (0, 1) and TRAIN.EMA_GAMMA > 0, "
                             f"got {momentum} and {gamma}")
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.momentum, self.gamma = momentum, gamma
        self.steps = 0

    def momentum_at(self, steps: int) -> float:
        """The weight of the new value at the update that follows ``steps`` updates."""
        return (1 - self.momentum) * math.exp(-float(1 + steps) / self.gamma) + self.momentum

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Average ``model``'s current weights and buffers in (after an optimizer step)."""
        source = model.state_dict()
        first = self.steps == 0
        m = self.momentum_at(self.steps)
        for key, avg in self.module.state_dict().items():
            new = source[key].detach().to(avg.device)
            if first or not avg.dtype.is_floating_point:
                avg.copy_(new)
            else:
                avg.mul_(1 - m).add_(new.to(avg.dtype), alpha=m)
        self.steps += 1

    def reset(self, model: nn.Module) -> None:
        """Start again from ``model`` (an LPN iterative stage restarting from the best)."""
        self.module.load_state_dict(model.state_dict())
        self.steps = 0

    def state_dict(self) -> dict:
        """The checkpoint entries (``ema_state_dict``, ``ema_steps``)."""
        return {"ema_state_dict": self.module.state_dict(), "ema_steps": self.steps}

    def load_state_dict(self, checkpoint: dict, model: nn.Module) -> None:
        """Continue from a training checkpoint; one without an average (EMA switched on
        for a resumed run) starts from ``model``'s weights, as mmengine's EMAHook does."""
        if "ema_state_dict" in checkpoint and "ema_steps" in checkpoint:
            self.module.load_state_dict(checkpoint["ema_state_dict"])
            self.steps = int(checkpoint["ema_steps"])
        else:
            self.reset(model)


def build_ema(cfg, model: nn.Module) -> ModelEMA | None:
    """The EMA of the (unwrapped) ``model`` when TRAIN.EMA, else None."""
    if not cfg.TRAIN.EMA:
        return None
    return ModelEMA(model, cfg.TRAIN.EMA_MOMENTUM, cfg.TRAIN.EMA_GAMMA)


def averaged(model: nn.Module, ema: ModelEMA | None) -> nn.Module:
    """The weights to validate and save: the average when there is one."""
    return model if ema is None else ema.module
