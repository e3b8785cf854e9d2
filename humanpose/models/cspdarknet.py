"""CSPDarknet, YOLOX's backbone (RTMO's too), laid out as mmdet 3.x lays it out.

Module names follow mmdet's ``CSPDarknet`` (``stem.conv.conv``, ``stage2.1.blocks.0.conv2.bn``
...), so mmdet/mmpose checkpoints load unchanged. It differs from CSPNeXt (:mod:`.cspnext`)
in its stem (a space-to-depth ``Focus`` then one conv), its blocks (1x1 then 3x3, no large
depthwise kernel) and its CSP layers (no channel attention).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .cspnext import ConvBNAct, SPPBottleneck

__all__ = ["CSPDarknet", "DarknetBottleneck", "DarknetCSPLayer", "Focus"]

# P5 stages before the width and depth factors: input channels, output channels, blocks,
# identity shortcut in the blocks, SPP before the CSP layer.
ARCH_P5: list[tuple[int, int, int, bool, bool]] = [
    (64, 128, 3, True, False), (128, 256, 9, True, False),
    (256, 512, 9, True, False), (512, 1024, 3, False, True)]


class Focus(nn.Module):
    """Space to depth: the four pixel phases side by side in channels, then a conv.

    The stride-2 stem keeps every input pixel (no strided sampling loses any)."""

    def __init__(self, inplanes: int, planes: int, kernel: int = 3, **bn: float) -> None:
        super().__init__()
        self.conv = ConvBNAct(inplanes * 4, planes, kernel, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # mmdet's order: top-left, bottom-left, top-right, bottom-right.
        x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                       x[..., 1::2, 1::2]), dim=1)
        return self.conv(x)


class DarknetBottleneck(nn.Module):
    """1x1 conv then 3x3 conv, with an identity shortcut when asked and shapes allow."""

    def __init__(self, inplanes: int, planes: int, expansion: float = 0.5,
                 add_identity: bool = True, **bn: float) -> None:
        super().__init__()
        hidden = int(planes * expansion)
        self.conv1 = ConvBNAct(inplanes, hidden, 1, **bn)
        self.conv2 = ConvBNAct(hidden, planes, 3, **bn)
        self.add_identity = add_identity and inplanes == planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class DarknetCSPLayer(nn.Module):
    """Cross-stage partial layer of Darknet bottlenecks (mmdet's ``CSPLayer`` default)."""

    def __init__(self, inplanes: int, planes: int, expand_ratio: float = 0.5,
                 num_blocks: int = 1, add_identity: bool = True, **bn: float) -> None:
        super().__init__()
        mid = int(planes * expand_ratio)
        self.main_conv = ConvBNAct(inplanes, mid, 1, **bn)
        self.short_conv = ConvBNAct(inplanes, mid, 1, **bn)
        self.final_conv = ConvBNAct(2 * mid, planes, 1, **bn)
        self.blocks = nn.Sequential(*[DarknetBottleneck(mid, mid, 1.0, add_identity, **bn)
                                      for _ in range(num_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_conv(torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)),
                                         dim=1))


class CSPDarknet(nn.Module):
    """Focus stem (stride 2), then four stride-2 stages; returns the ``out_indices`` levels
    (0 = stem, 4 = the stride-32 stage), as mmdet's does."""

    def __init__(self, deepen_factor: float = 1.0, widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4),
                 spp_kernel_sizes: Sequence[int] = (5, 9, 13), bn_eps: float = 1e-3,
                 bn_momentum: float = 0.03) -> None:
        super().__init__()
        if not set(out_indices) <= set(range(len(ARCH_P5) + 1)):
            raise ValueError(f"CSPDarknet out_indices must lie in 0..{len(ARCH_P5)}, "
                             f"got {list(out_indices)}")
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.out_indices = tuple(out_indices)
        stem = int(ARCH_P5[0][0] * widen_factor)
        self.stem = Focus(3, stem, 3, **bn)
        self.layers = ["stem"]
        self.out_channels: list[int] = [stem]
        for i, (cin, cout, blocks, identity, spp) in enumerate(ARCH_P5):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            stage: list[nn.Module] = [ConvBNAct(cin, cout, 3, 2, **bn)]
            if spp:
                stage.append(SPPBottleneck(cout, cout, spp_kernel_sizes, **bn))
            stage.append(DarknetCSPLayer(cout, cout, 0.5, max(round(blocks * deepen_factor), 1),
                                         identity, **bn))
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
