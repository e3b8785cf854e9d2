"""RT-DETR's hybrid encoder as mmpose 1.3 builds it for RTMO, with mmpose's module names.

One transformer encoder layer attends over the coarsest level (global context where it is
cheap: 20x20 tokens at 640 px), then an FPN (top-down) and a PAN (bottom-up) of RepVGG-style
CSP layers mix the levels, and a 1x1 conv + BN per kept level (mmdet's ``ChannelMapper``,
``projector``) sets the output width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .cspnext import ConvBNAct

__all__ = ["ConvBN", "CSPRepLayer", "EncoderLayer", "HybridEncoder", "RepVGGBlock",
           "SinePositionalEncoding"]


class ConvBN(nn.Module):
    """Conv (no bias) then BatchNorm, no activation: mmcv's ``ConvModule(act_cfg=None)``."""

    def __init__(self, inplanes: int, planes: int, kernel: int, stride: int = 1,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inplanes, planes, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(planes, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SinePositionalEncoding(nn.Module):
    """Sine/cosine features of positions; ``dim_t`` (the frequencies) is a buffer, as in
    mmpose, so it sits in checkpoints under this module's name."""

    def __init__(self, channels: int, temperature: float) -> None:
        super().__init__()
        half = channels // 2
        self.register_buffer("dim_t", temperature ** (torch.arange(half, dtype=torch.float32)
                                                      / half))

    def encode(self, position: torch.Tensor) -> torch.Tensor:
        """``(...)`` positions -> ``(..., channels)``: cosines, then sines."""
        freq = position.unsqueeze(-1) / self.dim_t
        return torch.cat((freq.cos(), freq.sin()), dim=-1)

    def grid(self, height: int, width: int) -> torch.Tensor:
        """``(1, H*W, 2*channels)`` for a row-major grid: the row's code, then the column's."""
        device = self.dim_t.device
        rows = torch.arange(height, dtype=torch.float32, device=device)
        cols = torch.arange(width, dtype=torch.float32, device=device)
        rows = rows[:, None].expand(height, width).reshape(-1)
        cols = cols[None, :].expand(height, width).reshape(-1)
        return torch.cat((self.encode(rows), self.encode(cols)), dim=-1).unsqueeze(0)


class RepVGGBlock(nn.Module):
    """A 3x3 and a 1x1 conv+BN branch, summed, then SiLU (foldable into one 3x3 conv)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch_3x3 = ConvBN(channels, channels, 3)
        self.branch_1x1 = ConvBN(channels, channels, 1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.branch_3x3(x) + self.branch_1x1(x))


class CSPRepLayer(nn.Module):
    """Two 1x1 paths, one through RepVGG blocks, summed, then a 1x1 conv when widths differ."""

    def __init__(self, inplanes: int, planes: int, num_blocks: int, expansion: float) -> None:
        super().__init__()
        hidden = int(planes * expansion)
        self.conv1 = ConvBNAct(inplanes, hidden, 1)
        self.conv2 = ConvBNAct(inplanes, hidden, 1)
        self.bottlenecks = nn.Sequential(*[RepVGGBlock(hidden) for _ in range(num_blocks)])
        self.conv3 = ConvBNAct(hidden, planes, 1) if hidden != planes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.bottlenecks(self.conv1(x)) + self.conv2(x))


class _Attention(nn.Module):
    """mmcv's ``MultiheadAttention`` wrapper: positions added to queries and keys (not to
    values), torch's attention as ``attn``, the input added back."""

    def __init__(self, dims: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dims, heads, batch_first=True)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = x + pos
        return x + self.attn(q, q, x, need_weights=False)[0]


class _FFN(nn.Module):
    """mmcv's ``FFN`` (two linears, GELU between, the input added back), with its names."""

    def __init__(self, dims: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dims, hidden), nn.GELU(), nn.Dropout(0.0)),
            nn.Linear(hidden, dims), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class EncoderLayer(nn.Module):
    """DETR's post-norm encoder layer: attention, LayerNorm, FFN, LayerNorm."""

    def __init__(self, dims: int = 256, heads: int = 8, ffn_hidden: int = 1024) -> None:
        super().__init__()
        self.self_attn = _Attention(dims, heads)
        self.ffn = _FFN(dims, ffn_hidden)
        self.norms = nn.ModuleList([nn.LayerNorm(dims), nn.LayerNorm(dims)])

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = self.norms[0](self.self_attn(x, pos))
        return self.norms[1](self.ffn(x))


class _Encoder(nn.Module):
    """A stack of encoder layers (``layers.0`` ...), mmdet's ``DetrTransformerEncoder``."""

    def __init__(self, num_layers: int, dims: int, heads: int, ffn_hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(dims, heads, ffn_hidden)
                                     for _ in range(num_layers)])

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return x


class _ChannelMapper(nn.Module):
    """One 1x1 conv + BN per level (mmdet's ``ChannelMapper`` without activation)."""

    def __init__(self, inplanes: int, planes: int, levels: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([ConvBN(inplanes, planes, 1) for _ in range(levels)])

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(conv(x) for conv, x in zip(self.convs, feats))


class HybridEncoder(nn.Module):
    """Project each level to ``hidden_dim``, encode the coarsest, FPN + PAN, keep
    ``output_indices``, project them to ``out_channels``."""

    def __init__(self, in_channels: Sequence[int], hidden_dim: int = 256,
                 out_channels: int = 256, deepen_factor: float = 1.0,
                 widen_factor: float = 1.0, output_indices: Sequence[int] = (1, 2),
                 heads: int = 8, ffn_hidden: int = 1024, temperature: float = 10000.0) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        levels = len(self.in_channels)
        self.output_indices = tuple(output_indices)
        self.hidden_dim = hidden_dim
        self.input_proj = nn.ModuleList([ConvBN(c, hidden_dim, 1) for c in self.in_channels])
        self.encoder = nn.ModuleList([_Encoder(1, hidden_dim, heads, ffn_hidden)])
        self.sincos_pos_enc = SinePositionalEncoding(hidden_dim // 2, temperature)
        blocks = round(3 * deepen_factor)
        self.lateral_convs = nn.ModuleList(
            [ConvBNAct(hidden_dim, hidden_dim, 1) for _ in range(levels - 1)])
        self.fpn_blocks = nn.ModuleList(
            [CSPRepLayer(hidden_dim * 2, hidden_dim, blocks, widen_factor)
             for _ in range(levels - 1)])
        self.downsample_convs = nn.ModuleList(
            [ConvBNAct(hidden_dim, hidden_dim, 3, 2) for _ in range(levels - 1)])
        self.pan_blocks = nn.ModuleList(
            [CSPRepLayer(hidden_dim * 2, hidden_dim, blocks, widen_factor)
             for _ in range(levels - 1)])
        self.projector = _ChannelMapper(hidden_dim, out_channels, len(self.output_indices))

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        levels = len(self.in_channels)
        if len(inputs) != levels:
            raise ValueError(f"HybridEncoder expects {levels} feature maps, got {len(inputs)}")
        feats = [proj(x) for proj, x in zip(self.input_proj, inputs)]
        n, c, h, w = feats[-1].shape
        tokens = feats[-1].flatten(2).transpose(1, 2)
        memory = self.encoder[0](tokens, self.sincos_pos_enc.grid(h, w))
        feats[-1] = memory.transpose(1, 2).reshape(n, c, h, w)
        inner = [feats[-1]]
        for step, idx in enumerate(range(levels - 1, 0, -1)):
            inner[0] = self.lateral_convs[step](inner[0])
            up = nn.functional.interpolate(inner[0], scale_factor=2.0, mode="nearest")
            inner.insert(0, self.fpn_blocks[step](torch.cat([up, feats[idx - 1]], 1)))
        outs = [inner[0]]
        for idx in range(levels - 1):
            down = self.downsample_convs[idx](outs[-1])
            outs.append(self.pan_blocks[idx](torch.cat([down, inner[idx + 1]], 1)))
        return self.projector([outs[i] for i in self.output_indices])
