"""SimpleBaseline (Xiao et al., 2018): a ResNet trunk and a head of transposed convolutions.

The same trunk-plus-head layout, with lighter blocks and a grouped head, is LPN (``lpn.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from yacs.config import CfgNode

from .blocks import (
    BN_MOMENTUM,
    BasicBlock,
    Bottleneck,
    downsample_for,
    final_conv,
    init_seed_style,
    make_deconv_head,
)

RESNET_LAYERS: dict[int, tuple[type[nn.Module], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def make_res_layer(block: type[nn.Module], inplanes: int, planes: int, blocks: int,
                   stride: int = 1, **block_kwargs: Any) -> tuple[nn.Sequential, int]:
    """``blocks`` residual blocks, the first one changing stride/width; returns (layer, width)."""
    outplanes = planes * block.expansion
    layers = [block(inplanes, planes, stride, downsample_for(inplanes, outplanes, stride),
                    **block_kwargs)]
    layers += [block(outplanes, planes, **block_kwargs) for _ in range(1, blocks)]
    return nn.Sequential(*layers), outplanes


class ResNetPoseNet(nn.Module):
    """ResNet-style stem and four stages, an upsampling head, one heatmap per joint."""

    def __init__(self, block: type[nn.Module], layers: list[int], extra: CfgNode,
                 num_joints: int, layer4_stride: int = 2, grouped_head: bool = False,
                 block_kwargs: dict[str, Any] | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        width = 64
        for index, (planes, count, stride) in enumerate(
                zip((64, 128, 256, 512), layers, (1, 2, 2, layer4_stride)), start=1):
            layer, width = make_res_layer(block, width, planes, count, stride,
                                          **(block_kwargs or {}))
            self.add_module(f"layer{index}", layer)
        self.deconv_layers = make_deconv_head(
            width, list(extra.NUM_DECONV_FILTERS), list(extra.NUM_DECONV_KERNELS),
            extra.DECONV_WITH_BIAS, grouped_head)
        if len(extra.NUM_DECONV_FILTERS) != extra.NUM_DECONV_LAYERS:
            raise ValueError(
                f"MODEL.EXTRA.NUM_DECONV_LAYERS is {extra.NUM_DECONV_LAYERS} but "
                f"NUM_DECONV_FILTERS has {len(extra.NUM_DECONV_FILTERS)} entries")
        self.final_layer = final_conv(extra.NUM_DECONV_FILTERS[-1], num_joints,
                                      extra.FINAL_CONV_KERNEL)
        init_seed_style(self, zero_conv_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_layer(self.deconv_layers(x))


def build_pose_resnet(cfg: CfgNode) -> ResNetPoseNet:
    extra = cfg.MODEL.EXTRA
    if extra.NUM_LAYERS not in RESNET_LAYERS:
        raise ValueError(f"MODEL.EXTRA.NUM_LAYERS for pose_resnet must be one of "
                         f"{sorted(RESNET_LAYERS)}, got {extra.NUM_LAYERS}")
    block, layers = RESNET_LAYERS[extra.NUM_LAYERS]
    return ResNetPoseNet(block, layers, extra, cfg.MODEL.NUM_JOINTS)
