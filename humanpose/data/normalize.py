"""The network input's normalisation: one function for training, evaluation and inference.

The seed normalises crops with torchvision's ToTensor + Normalize(ImageNet statistics), i.e.
``(x / 255 - mean) / std`` per channel in float32; mmpose's RTMPose/HRNet configs use the
same statistics in 0-255 units. Doing it here, on whatever device the uint8 batch is on,
keeps the copies to the device 4x smaller and the three users from drifting apart.
"""

from __future__ import annotations

import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalize_batch"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_batch(images: torch.Tensor, channels_last_input: bool | None = None
                    ) -> torch.Tensor:
    """uint8 images ``(N, H, W, 3)`` (or ``(N, 3, H, W)``) → normalised float32
    ``(N, 3, H, W)``, bit for bit the seed's ToTensor + Normalize.

    Float input (already normalised) is returned unchanged, so a loop may call it on
    either. ``channels_last_input`` None: channels last when the last axis has 3 entries.
    The batch is made channels-first before the float maths (7x faster on a CPU than the
    same maths on the permuted view).
    """
    if images.dtype != torch.uint8:
        return images
    if channels_last_input is None:
        channels_last_input = images.shape[-1] == 3
    channels = images.shape[-1] if channels_last_input else images.shape[1]
    if images.ndim != 4 or channels != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3) or (N, 3, H, W), got "
                         f"{tuple(images.shape)}")
    x = images.permute(0, 3, 1, 2) if channels_last_input else images
    x = x.contiguous().float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=images.device)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=images.device)
    return x.sub_(mean.view(1, 3, 1, 1)).div_(std.view(1, 3, 1, 1))
