"""The person detector network: a small ResNet-style backbone, a top-down neck to stride 4
and one head that predicts, per stride-4 cell, a person-centre logit, the sub-cell offset of
the centre and the log box size (see :mod:`humanpose.detection.codec`).

Dense 3x3 BasicBlocks rather than depthwise ones: at these widths they run faster on CPUs
(oneDNN, ONNX Runtime, OpenVINO) for the same accuracy, measured on this project's machine.
The neck and head, which work at stride 4 where every multiply counts 16 times more, use
depthwise-separable convolutions. The output is one tensor ``(N, 5, H/4, W/4)``, which
keeps the model a plain heatmap network for the engine, the runners and ONNX export.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode

from humanpose.models.blocks import BN_MOMENTUM, BasicBlock
from humanpose.models.rtmdet import build_rtmdet

__all__ = ["DETECTOR_NAMES", "HEAD_CHANNELS", "OUTPUT_STRIDE", "PersonDetectorNet",
           "build_detector"]

# MODEL.NAME values of detectors: the engine picks the detection task for them.
# ``rtmdet`` is mmdet's RTMDet network (humanpose.models.rtmdet), for its checkpoints.
DETECTOR_NAMES = ("person_detector", "rtmdet")

OUTPUT_STRIDE = 4
HEAD_CHANNELS = 5  # centre logit, offset (dx, dy), log size (w, h)
CENTRE_PRIOR = 0.1  # initial centre probability: keeps the focal loss calm at the start
INITIAL_LOG_SIZE = math.log(16.0)  # cells; persons span tens of cells at stride 4


def conv_bn_relu(inplanes: int, planes: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inplanes, planes, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
        nn.ReLU(inplace=True),
    )


def pooled_projection(inplanes: int, planes: int) -> nn.Sequential:
    """The residual path of a stride-2 block: 2x2 average, then 1x1 conv (ResNet-D).

    Unlike a strided 1x1 conv it sees every input pixel; and it avoids a PyTorch 2.13 CPU
    bug: the backward pass of a stride-2 1x1 conv on channels-last inputs of fewer than 16
    channels corrupts memory (found with small DET_WIDTHS).
    """
    return nn.Sequential(
        nn.AvgPool2d(2, 2, ceil_mode=True),
        nn.Conv2d(inplanes, planes, 1, bias=False),
        nn.BatchNorm2d(planes, momentum=BN_MOMENTUM),
    )


def separable(channels: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1: a 3x3 receptive field at a ninth of the cost."""
    return nn.Sequential(conv_bn_relu(channels, channels, 3, groups=channels),
                         conv_bn_relu(channels, channels, 1))


class PersonDetectorNet(nn.Module):
    """Backbone (stem + 4 stages of BasicBlocks) → FPN-style top-down neck → head."""

    def __init__(self, widths: list[int], depths: list[int], neck: int):
        super().__init__()
        if len(widths) != 5 or len(depths) != 4:
            raise ValueError(f"MODEL.EXTRA.DET_WIDTHS needs 5 entries (stem and 4 stages) and "
                             f"DET_DEPTHS 4, got {list(widths)} and {list(depths)}")
        if min(widths) < 1 or min(depths) < 1 or neck < 1:
            raise ValueError(f"MODEL.EXTRA.DET_WIDTHS {list(widths)}, DET_DEPTHS {list(depths)} "
                             f"and DET_NECK_CHANNELS {neck} must be positive")
        self.stem = conv_bn_relu(3, widths[0], 3, stride=2)
        stages = []
        inplanes = widths[0]
        for planes, depth in zip(widths[1:], depths):
            blocks = [BasicBlock(inplanes, planes, 2, pooled_projection(inplanes, planes))]
            blocks += [BasicBlock(planes, planes) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            inplanes = planes
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(conv_bn_relu(w, neck, 1) for w in widths[1:])
        self.smooth = nn.ModuleList(separable(neck) for _ in widths[1:-1])
        self.head = nn.Sequential(separable(neck), nn.Conv2d(neck, HEAD_CHANNELS, 1))
        self._init_head()

    def _init_head(self) -> None:
        final = self.head[-1]
        nn.init.normal_(final.weight, std=0.01)
        with torch.no_grad():
            final.bias.zero_()
            final.bias[0] = -math.log((1 - CENTRE_PRIOR) / CENTRE_PRIOR)
            final.bias[3:5] = INITIAL_LOG_SIZE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        y = self.lateral[-1](features[-1])
        for i in range(len(features) - 2, -1, -1):
            y = F.interpolate(y, scale_factor=2.0, mode="nearest") + self.lateral[i](features[i])
            y = self.smooth[i](y)
        return self.head(y)


def build_detector(cfg: CfgNode, channels_last: bool = True) -> nn.Module:
    """The detector ``cfg.MODEL`` describes; checks that the sizes fit its stride-4 output.

    ``MODEL.NAME rtmdet`` builds mmdet's RTMDet instead (raw per-level outputs; its
    pre/post-processing is not this network's stride-4 decoding).
    """
    if cfg.MODEL.NAME == "rtmdet":
        model = build_rtmdet(cfg)
        return model.to(memory_format=torch.channels_last) if channels_last else model
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    if width % 32 or height % 32:
        raise ValueError(f"MODEL.IMAGE_SIZE {list(cfg.MODEL.IMAGE_SIZE)} must be multiples of "
                         "32 for the person detector")
    expected = [width // OUTPUT_STRIDE, height // OUTPUT_STRIDE]
    if [int(v) for v in cfg.MODEL.HEATMAP_SIZE] != expected:
        raise ValueError(f"MODEL.HEATMAP_SIZE must be MODEL.IMAGE_SIZE / {OUTPUT_STRIDE} = "
                         f"{expected} for the person detector, got "
                         f"{list(cfg.MODEL.HEATMAP_SIZE)}")
    extra = cfg.MODEL.EXTRA
    model = PersonDetectorNet(list(extra.DET_WIDTHS), list(extra.DET_DEPTHS),
                              int(extra.DET_NECK_CHANNELS))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
