"""Heatmap losses of the seed: JointsMSELoss and its online-hard-keypoint-mining variant."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["JointsMSELoss", "JointsOHKMMSELoss", "build_loss"]


def _per_joint_mse(output: torch.Tensor, target: torch.Tensor,
                   target_weight: torch.Tensor | None) -> torch.Tensor:
    """Half the mean squared error of each (sample, joint) heatmap: shape ``(N, K)``."""
    n, k = output.shape[:2]
    diff = output.reshape(n, k, -1).float() - target.reshape(n, k, -1).float()
    if target_weight is not None:
        diff = diff * target_weight.reshape(n, k, 1).float()
    return 0.5 * diff.square().mean(dim=2)


class JointsMSELoss(nn.Module):
    """The seed's loss: 0.5 x MSE per joint (heatmaps masked by the target weights),
    averaged over joints — computed in one vectorised expression, in float32."""

    def __init__(self, use_target_weight: bool = True):
        super().__init__()
        self.use_target_weight = use_target_weight

    def forward(self, output: torch.Tensor, target: torch.Tensor,
                target_weight: torch.Tensor) -> torch.Tensor:
        weight = target_weight if self.use_target_weight else None
        return _per_joint_mse(output, target, weight).mean()


class JointsOHKMMSELoss(nn.Module):
    """Online hard key-point mining: per sample, only the ``topk`` largest joint losses count."""

    def __init__(self, use_target_weight: bool = True, topk: int = 8):
        super().__init__()
        self.use_target_weight = use_target_weight
        self.topk = topk

    def forward(self, output: torch.Tensor, target: torch.Tensor,
                target_weight: torch.Tensor) -> torch.Tensor:
        weight = target_weight if self.use_target_weight else None
        per_joint = _per_joint_mse(output, target, weight)
        k = min(self.topk, per_joint.shape[1])
        return per_joint.topk(k, dim=1, sorted=False).values.sum(dim=1).div(k).mean()


def build_loss(cfg) -> nn.Module:
    if cfg.LOSS.USE_OHKM:
        return JointsOHKMMSELoss(cfg.LOSS.USE_TARGET_WEIGHT, cfg.LOSS.TOPK)
    return JointsMSELoss(cfg.LOSS.USE_TARGET_WEIGHT)
