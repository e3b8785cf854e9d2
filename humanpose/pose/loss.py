"""The pose losses, one per codec: the seed's heatmap MSE (and its online-hard-keypoint-mining
variant), and SimCC's KL divergence (RTMPose)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["JointsMSELoss", "JointsOHKMMSELoss", "SimCCKLLoss", "build_loss"]


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


class SimCCKLLoss(nn.Module):
    """KL divergence between softmax(``beta`` x predicted vector) and the label vector (also
    softmaxed, with ``label_beta``, when ``label_softmax``), averaged over bins, weighted per
    joint, summed over x and y, the batch and the joints, divided by the joint count: mmpose
    1.3's ``KLDiscretLoss`` as RTMPose trains with it (beta 10, label softmax)."""

    def __init__(self, beta: float = 10.0, label_softmax: bool = True, label_beta: float = 10.0,
                 use_target_weight: bool = True):
        super().__init__()
        self.beta = beta
        self.label_softmax = label_softmax
        self.label_beta = label_beta
        self.use_target_weight = use_target_weight

    def _per_joint(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(pred.float() * self.beta, dim=1)
        label = label.float()
        if self.label_softmax:
            label = F.softmax(label * self.label_beta, dim=1)
        return F.kl_div(log_p, label, reduction="none").mean(dim=1)

    def forward(self, output: tuple[torch.Tensor, torch.Tensor], target_x: torch.Tensor,
                target_y: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        pred_x, pred_y = output
        k = pred_x.shape[1]
        weight = target_weight.reshape(-1).float() if self.use_target_weight else 1.0
        loss = pred_x.new_zeros((), dtype=torch.float32)
        for pred, label in ((pred_x, target_x), (pred_y, target_y)):
            per_joint = self._per_joint(pred.reshape(-1, pred.shape[-1]),
                                        label.reshape(-1, label.shape[-1]))
            loss = loss + (per_joint * weight).sum()
        return loss / k


def build_loss(cfg) -> nn.Module:
    """The loss of the config's codec (``loss(outputs, *targets)``)."""
    from humanpose.codecs import codec_name

    if codec_name(cfg) == "simcc":
        return SimCCKLLoss(cfg.LOSS.SIMCC_BETA, cfg.LOSS.SIMCC_LABEL_SOFTMAX,
                           cfg.LOSS.SIMCC_LABEL_BETA, cfg.LOSS.USE_TARGET_WEIGHT)
    if cfg.LOSS.USE_OHKM:
        return JointsOHKMMSELoss(cfg.LOSS.USE_TARGET_WEIGHT, cfg.LOSS.TOPK)
    return JointsMSELoss(cfg.LOSS.USE_TARGET_WEIGHT)
