"""CSPNeXt, the backbone of RTMDet and RTMPose, laid out as mmdet 3.x lays it out.

Module names follow mmdet's ``CSPNeXt`` (``stem.0.conv``, ``stage2.1.blocks.0.conv2.
depthwise_conv.bn``...), so an mmdet or mmpose checkpoint loads without renaming. The
normalisation is BatchNorm (the released models train with SyncBN, which saves the same
tensors); the activation is SiLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["CSPLayer", "CSPNeXt", "CSPNeXtBlock", "CSPNeXtPAFPN", "ChannelAttention",
           "ConvBNAct", "DepthwiseSeparableConv", "SPPBottleneck", "cspnext_from_cfg"]

# Stage settings of the P5 (strides 8-32) and P6 (strides 8-64) layouts, before the width
# and depth factors: input channels, output channels, blocks, identity shortcut, SPP.
ARCH_SETTINGS: dict[str, list[tuple[int, int, int, bool, bool]]] = {
    "P5": [(64, 128, 3, True, False), (128, 256, 6, True, False),
           (256, 512, 6, True, False), (512, 1024, 3, False, True)],
    "P6": [(64, 128, 3, True, False), (128, 256, 6, True, False),
           (256, 512, 6, True, False), (512, 768, 3, True, False),
           (768, 1024, 3, False, True)],
}

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


class ConvBNAct(nn.Module):
    """Conv (no bias), BatchNorm, SiLU or ReLU: mmcv's ``ConvModule``, with its names."""

    def __init__(self, inplanes: int, planes: int, kernel: int, stride: int = 1,
                 groups: int = 1, bn_eps: float = 1e-5, bn_momentum: float = 0.1,
                 act: str = "silu") -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        self.conv = nn.Conv2d(inplanes, planes, kernel, stride, kernel // 2, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(planes, eps=bn_eps, momentum=bn_momentum)
        self.activate = ACTIVATIONS[act](inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class DepthwiseSeparableConv(nn.Module):
    """A depthwise ``kernel`` conv then a pointwise 1x1 conv, each with BN and SiLU."""

    def __init__(self, inplanes: int, planes: int, kernel: int, stride: int = 1,
                 **bn: float) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNAct(inplanes, inplanes, kernel, stride, groups=inplanes,
                                        **bn)
        self.pointwise_conv = ConvBNAct(inplanes, planes, 1, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


def conv_unit(inplanes: int, planes: int, kernel: int, stride: int = 1,
              depthwise: bool = False, **bn: float) -> nn.Module:
    """The plain or the depthwise-separable conv, as mmdet's ``use_depthwise`` picks."""
    if depthwise:
        return DepthwiseSeparableConv(inplanes, planes, kernel, stride, **bn)
    return ConvBNAct(inplanes, planes, kernel, stride, **bn)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation without the bottleneck: mean, 1x1 conv, hard sigmoid, scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then a depthwise-separable 5x5 conv; identity shortcut when shapes allow."""

    def __init__(self, inplanes: int, planes: int, expansion: float = 0.5,
                 add_identity: bool = True, depthwise: bool = False, kernel: int = 5,
                 **bn: float) -> None:
        super().__init__()
        hidden = int(planes * expansion)
        self.conv1 = conv_unit(inplanes, hidden, 3, depthwise=depthwise, **bn)
        self.conv2 = DepthwiseSeparableConv(hidden, planes, kernel, **bn)
        self.add_identity = add_identity and inplanes == planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(nn.Module):
    """Cross-stage partial layer: half the channels go through the blocks, half skip them."""

    def __init__(self, inplanes: int, planes: int, expand_ratio: float = 0.5,
                 num_blocks: int = 1, add_identity: bool = True, depthwise: bool = False,
                 channel_attention: bool = False, **bn: float) -> None:
        super().__init__()
        mid = int(planes * expand_ratio)
        self.main_conv = ConvBNAct(inplanes, mid, 1, **bn)
        self.short_conv = ConvBNAct(inplanes, mid, 1, **bn)
        self.final_conv = ConvBNAct(2 * mid, planes, 1, **bn)
        self.blocks = nn.Sequential(*[
            CSPNeXtBlock(mid, mid, 1.0, add_identity, depthwise, **bn)
            for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid) if channel_attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        if self.attention is not None:
            y = self.attention(y)
        return self.final_conv(y)


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: the features max-pooled at several sizes, concatenated."""

    def __init__(self, inplanes: int, planes: int, kernel_sizes: Sequence[int] = (5, 9, 13),
                 **bn: float) -> None:
        super().__init__()
        mid = inplanes // 2
        self.conv1 = ConvBNAct(inplanes, mid, 1, **bn)
        self.poolings = nn.ModuleList(
            [nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes])
        self.conv2 = ConvBNAct(mid * (len(kernel_sizes) + 1), planes, 1, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXt(nn.Module):
    """The backbone: a three-conv stem (stride 2), then stride-2 stages of CSP layers.

    ``forward`` returns the outputs of the layers in ``out_indices`` (0 = stem, 1... =
    stages; stage 4 of P5 has stride 32), as a tuple, like mmdet's.
    """

    def __init__(self, arch: str = "P5", deepen_factor: float = 1.0, widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4), use_depthwise: bool = False,
                 expand_ratio: float = 0.5, spp_kernel_sizes: Sequence[int] = (5, 9, 13),
                 channel_attention: bool = True, bn_eps: float = 1e-5,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        if arch not in ARCH_SETTINGS:
            raise ValueError(f"CSPNeXt arch must be one of {sorted(ARCH_SETTINGS)}, got {arch!r}")
        settings = ARCH_SETTINGS[arch]
        if not set(out_indices) <= set(range(len(settings) + 1)):
            raise ValueError(f"CSPNeXt {arch} out_indices must lie in 0..{len(settings)}, "
                             f"got {list(out_indices)}")
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.out_indices = tuple(out_indices)
        stem = int(settings[0][0] * widen_factor)
        half = int(settings[0][0] * widen_factor // 2)  # mmdet halves before truncating
        self.stem = nn.Sequential(
            ConvBNAct(3, half, 3, 2, **bn),
            ConvBNAct(half, half, 3, **bn),
            ConvBNAct(half, stem, 3, **bn))
        self.layers = ["stem"]
        self.out_channels: list[int] = [stem]
        for i, (cin, cout, blocks, identity, spp) in enumerate(settings):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            stage: list[nn.Module] = [conv_unit(cin, cout, 3, 2, depthwise=use_depthwise, **bn)]
            if spp:
                stage.append(SPPBottleneck(cout, cout, spp_kernel_sizes, **bn))
            stage.append(CSPLayer(cout, cout, expand_ratio,
                                  max(round(blocks * deepen_factor), 1), identity,
                                  use_depthwise, channel_attention, **bn))
            self.add_module(f"stage{i + 1}", nn.Sequential(*stage))
            self.layers.append(f"stage{i + 1}")
            self.out_channels.append(cout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class CSPNeXtPAFPN(nn.Module):
    """Path aggregation: a top-down pass (reduce, upsample, CSP), a bottom-up pass
    (strided conv, CSP), then a 3x3 conv per level to ``out_channels``.

    mmdet's RTMDet neck has the output convs; mmpose's (RTMW) has ``out_channels=None``
    (no output convs, each level keeps its width) and returns the levels in ``out_indices``.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int | None,
                 num_csp_blocks: int = 3, use_depthwise: bool = False,
                 expand_ratio: float = 0.5, out_indices: Sequence[int] | None = None,
                 **bn: float) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        levels = len(self.in_channels)
        self.out_indices = tuple(range(levels) if out_indices is None else out_indices)
        if not set(self.out_indices) <= set(range(levels)):
            raise ValueError(f"CSPNeXtPAFPN out_indices must lie in 0..{levels - 1}, "
                             f"got {list(self.out_indices)}")
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(levels - 1, 0, -1):
            self.reduce_layers.append(ConvBNAct(in_channels[idx], in_channels[idx - 1], 1, **bn))
            self.top_down_blocks.append(CSPLayer(
                in_channels[idx - 1] * 2, in_channels[idx - 1], expand_ratio, num_csp_blocks,
                add_identity=False, depthwise=use_depthwise, channel_attention=False, **bn))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(levels - 1):
            self.downsamples.append(conv_unit(in_channels[idx], in_channels[idx], 3, 2,
                                              depthwise=use_depthwise, **bn))
            self.bottom_up_blocks.append(CSPLayer(
                in_channels[idx] * 2, in_channels[idx + 1], expand_ratio, num_csp_blocks,
                add_identity=False, depthwise=use_depthwise, channel_attention=False, **bn))
        self.out_convs = None if out_channels is None else nn.ModuleList([
            conv_unit(c, out_channels, 3, depthwise=use_depthwise, **bn) for c in in_channels])

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        levels = len(self.in_channels)
        if len(inputs) != levels:
            raise ValueError(f"CSPNeXtPAFPN expects {levels} feature maps, got {len(inputs)}")
        # Top-down: each coarser map is reduced (and kept so) before it is upsampled.
        inner = [inputs[-1]]
        for step, idx in enumerate(range(levels - 1, 0, -1)):
            inner[0] = self.reduce_layers[step](inner[0])
            merged = torch.cat([self.upsample(inner[0]), inputs[idx - 1]], 1)
            inner.insert(0, self.top_down_blocks[step](merged))
        outs = [inner[0]]
        for idx in range(levels - 1):
            merged = torch.cat([self.downsamples[idx](outs[-1]), inner[idx + 1]], 1)
            outs.append(self.bottom_up_blocks[idx](merged))
        if self.out_convs is not None:
            outs = [conv(x) for conv, x in zip(self.out_convs, outs)]
        return tuple(outs[i] for i in self.out_indices)


def cspnext_from_cfg(cfg, out_indices: Sequence[int], family: str) -> CSPNeXt:
    """The P5 CSPNeXt that ``cfg.MODEL.EXTRA`` describes, for ``family`` (rtmpose, rtmdet);
    the input must be a multiple of the backbone's stride, 32, on both sides."""
    extra = cfg.MODEL.EXTRA
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    if width % 32 or height % 32:
        raise ValueError(f"MODEL.IMAGE_SIZE {[width, height]} must be multiples of 32 for "
                         f"{family} (CSPNeXt's coarsest stage has stride 32)")
    return CSPNeXt("P5", extra.DEEPEN_FACTOR, extra.WIDEN_FACTOR, out_indices=out_indices,
                   use_depthwise=extra.USE_DEPTHWISE, expand_ratio=extra.EXPAND_RATIO,
                   spp_kernel_sizes=tuple(extra.SPP_KERNEL_SIZES),
                   channel_attention=extra.CHANNEL_ATTENTION)
