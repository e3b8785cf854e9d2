"""LPN, the Lightweight Pose Network (Zhang et al., 2019), as the seed builds it.

A ResNet layout whose blocks are cheap (grouped/depthwise convolutions with GC or SE
attention), whose last stage keeps stride 1, and whose head uses grouped deconvolutions.
"""

from __future__ import annotations

from torch import nn
from yacs.config import CfgNode

from .blocks import BasicBlock, LightweightBottleneck
from .resnet import ResNetPoseNet

LPN_LAYERS: dict[int, tuple[type[nn.Module], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (LightweightBottleneck, [3, 4, 6, 3]),
    101: (LightweightBottleneck, [3, 4, 23, 3]),
    100: (LightweightBottleneck, [3, 13, 30, 3]),
    152: (LightweightBottleneck, [3, 8, 36, 3]),
}

BLOCK_GROUPS = ("half", "depthwise")


def build_lpn(cfg: CfgNode) -> ResNetPoseNet:
    extra = cfg.MODEL.EXTRA
    if extra.NUM_LAYERS not in LPN_LAYERS:
        raise ValueError(f"MODEL.EXTRA.NUM_LAYERS for lpn must be one of {sorted(LPN_LAYERS)}, "
                         f"got {extra.NUM_LAYERS}")
    if extra.BLOCK_GROUPS not in BLOCK_GROUPS:
        raise ValueError(f"MODEL.EXTRA.BLOCK_GROUPS must be one of {BLOCK_GROUPS}, "
                         f"got {extra.BLOCK_GROUPS!r}")
    block, layers = LPN_LAYERS[extra.NUM_LAYERS]
    block_kwargs = {"attention": extra.ATTENTION}
    if block is BasicBlock:
        block_kwargs["channels_per_group"] = 2 if extra.BLOCK_GROUPS == "half" else 1
    return ResNetPoseNet(block, layers, extra, cfg.MODEL.NUM_JOINTS, layer4_stride=1,
                         grouped_head=True, block_kwargs=block_kwargs)
