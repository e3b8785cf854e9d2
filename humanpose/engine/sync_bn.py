"""Synchronised BatchNorm for CPU process groups (Gloo).

PyTorch's ``nn.SyncBatchNorm`` only runs on GPUs. This one normalises with the statistics
of the whole global batch on any backend: the forward all-reduces (count, sum, sum of
squares) per channel, the backward all-reduces the two sums that the input gradient needs.
With it, DDP on N CPU processes computes the same update as one process with the global
batch. State-dict keys are those of ``nn.BatchNorm2d``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["CPUSyncBatchNorm", "convert_sync_batchnorm"]


class _SyncBatchNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dims = [0, 2, 3]
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64)
        stats = torch.cat([count, x.sum(dims).double(), x.double().square().sum(dims)])
        dist.all_reduce(stats)
        c = x.shape[1]
        total = stats[0]
        mean = stats[1:1 + c] / total
        var = (stats[1 + c:] / total - mean.square()).clamp_min(0)
        invstd = (var + eps).rsqrt()
        shape = (1, c, 1, 1)
        xhat = (x - mean.to(x.dtype).view(shape)) * invstd.to(x.dtype).view(shape)
        ctx.save_for_backward(xhat, weight, invstd.to(x.dtype), total)
        out = xhat * weight.view(shape) + bias.view(shape)
        mean, var = mean.to(x.dtype), var.to(x.dtype)
        ctx.mark_non_differentiable(mean, var, total)
        return out, mean, var, total

    @staticmethod
    def backward(ctx, grad_out, _gm, _gv, _gt):
        xhat, weight, invstd, total = ctx.saved_tensors
        dims = [0, 2, 3]
        c = xhat.shape[1]
        shape = (1, c, 1, 1)
        sum_dy = grad_out.sum(dims)
        sum_dy_xhat = (grad_out * xhat).sum(dims)
        grad_weight, grad_bias = sum_dy_xhat.clone(), sum_dy.clone()
        sums = torch.cat([sum_dy, sum_dy_xhat]).double()
        dist.all_reduce(sums)
        mean_dy = (sums[:c] / total).to(xhat.dtype).view(shape)
        mean_dy_xhat = (sums[c:] / total).to(xhat.dtype).view(shape)
        grad_x = (grad_out - mean_dy - xhat * mean_dy_xhat) * (invstd * weight).view(shape)
        return grad_x, grad_weight, grad_bias, None


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every process of the default group."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        # Statistics in float32 even under autocast, as BatchNorm computes them.
        out, mean, var, total = _SyncBatchNormFunction.apply(x.float(), self.weight, self.bias,
                                                             self.eps)
        with torch.no_grad():
            self.num_batches_tracked += 1
            momentum = self.momentum if self.momentum is not None else \
                1.0 / float(self.num_batches_tracked)
            unbiased = var * (total / (total - 1).clamp_min(1)).to(var.dtype)
            self.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        return out


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d of ``module`` by :class:`CPUSyncBatchNorm` (same tensors)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum,
                                    child.affine, child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            sync.to(child.weight.device)
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module
