"""Heatmaps from a batch of crops: the one forward path that evaluation and inference share.

It owns the flip test (forward the mirrored crops too, mirror their heatmaps back, swap
left/right joints, optionally shift one pixel, average) and the input normalisation, so
``humanpose test`` and ``PoseEstimator`` cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import nn

from humanpose.data.geometry import flip_heatmaps_back

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "autocast_for", "normalize_uint8", "predict_heatmaps"]

# The seed normalises crops with torchvision's ToTensor + Normalize(ImageNet statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_uint8(images: torch.Tensor, channels_last_input: bool = True) -> torch.Tensor:
    """uint8 crops ``(N, H, W, 3)`` (or ``(N, 3, H, W)``) → normalised float ``(N, 3, H, W)``.

    Same arithmetic and order as ToTensor + Normalize (divide by 255, subtract the mean,
    divide by the std, in float32), so results equal the seed's bit for bit; it can run on
    the device, after a cheap uint8 transfer.
    """
    x = images.permute(0, 3, 1, 2) if channels_last_input else images
    x = x.float().div(255)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x.sub(mean).div(std)


def autocast_for(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` (bf16/fp16) on ``device``, or a no-op for fp32."""
    if dtype is None or dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.inference_mode()
def predict_heatmaps(model: nn.Module, inputs: torch.Tensor,
                     flip_pairs: Sequence[Sequence[int]] | None = None,
                     shift_heatmap: bool = False,
                     amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Float32 heatmaps ``(N, K, h, w)`` for normalised crops ``(N, 3, H, W)``.

    With ``flip_pairs`` (not None) the flip test runs: the mirrored crops go through the
    model in the same batch, and the result is the mean of both predictions, as the seed's
    ``TEST.FLIP_TEST`` (+ ``TEST.SHIFT_HEATMAP``) computes it.
    """
    n = inputs.shape[0]
    batch = inputs if flip_pairs is None else torch.cat([inputs, inputs.flip(3)])
    with autocast_for(batch.device, amp_dtype):
        out = model(batch)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    out = out.float()
    if flip_pairs is None:
        return out
    flipped = flip_heatmaps_back(out[n:], flip_pairs, shift=shift_heatmap)
    return (out[:n] + flipped) * 0.5
