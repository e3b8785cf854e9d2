"""RTMPose (Jiang et al., 2023): a CSPNeXt backbone and the RTMCC SimCC head, as mmpose 1.3.

The head turns the stride-32 features into one token per key point (a 7x7 conv to K
channels, each channel's map flattened), mixes the tokens with one gated attention unit,
and classifies each token's x and y position into ``W * r`` and ``H * r`` bins (SimCC, split
ratio ``r``). Module names follow mmpose's ``RTMCCHead``/``RTMCCBlock`` under ``backbone.``
and ``head.``, so mmpose checkpoints load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode

from .cspnext import CSPNeXt, cspnext_from_cfg

__all__ = ["RTMCCBlock", "RTMCCHead", "RTMPose", "ScaleNorm", "build_rtmpose", "rope"]

GAU_ACTIVATIONS = {"SiLU": nn.SiLU, "ReLU": nn.ReLU}


def rope(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Rotary position encoding over axis ``dim`` of ``x`` (last axis = features).

    mmpose's variant: the frequencies are ``10000 ** (i / half)`` (growing, not shrinking
    as in RoFormer); reproduced as is, because its checkpoints were trained with it.
    """
    length = x.shape[dim]
    position = torch.arange(length, device=x.device, dtype=torch.int32)
    position = position.reshape([length] + [1] * (x.dim() - 2 - dim))
    half = x.shape[-1] // 2
    inv_freq = 10000 ** (torch.arange(half, device=x.device, dtype=torch.int32) / float(half))
    angles = position[..., None] * inv_freq
    sin, cos = torch.sin(angles), torch.cos(angles)
    x1, x2 = torch.chunk(x, 2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class ScaleNorm(nn.Module):
    """L2 normalisation to norm ``sqrt(dim)`` times one learnt gain ``g``."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    """A learnt per-feature factor (the GAU's residual scale)."""

    def __init__(self, dim: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples of a residual branch, rescale the rest."""
    if rate <= 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class RTMCCBlock(nn.Module):
    """One gated attention unit (GAU, Hua et al. 2022) over the key-point tokens.

    ScaleNorm, one linear layer giving the gate ``u``, the value ``v`` and a shared base
    that per-head scale-offsets (``gamma``, ``beta``) turn into queries and keys; the
    attention kernel is ``relu(q k^T / sqrt(s))^2`` (optionally with a learnt relative
    position bias ``w``); output ``o(u * (kernel @ v))`` plus the scaled input.
    """

    def __init__(self, num_token: int, in_dims: int, out_dims: int,
                 expansion_factor: float = 2, s: int = 128, eps: float = 1e-5,
                 dropout_rate: float = 0.0, drop_path: float = 0.0, act_fn: str = "SiLU",
                 bias: bool = False, use_rel_bias: bool = True, pos_enc: bool = False) -> None:
        super().__init__()
        if act_fn not in GAU_ACTIVATIONS:
            raise ValueError(f"GAU activation must be one of {sorted(GAU_ACTIVATIONS)}, "
                             f"got {act_fn!r}")
        self.s = s
        self.e = int(in_dims * expansion_factor)
        self.use_rel_bias = use_rel_bias
        self.pos_enc = pos_enc
        self.drop_path_rate = drop_path
        if use_rel_bias:
            self.w = nn.Parameter(torch.rand(2 * num_token - 1))
        self.o = nn.Linear(self.e, out_dims, bias=bias)
        self.uv = nn.Linear(in_dims, 2 * self.e + s, bias=bias)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.ln = ScaleNorm(in_dims, eps=eps)
        nn.init.xavier_uniform_(self.uv.weight)
        self.act_fn = GAU_ACTIVATIONS[act_fn](inplace=True)
        self.res_scale = Scale(in_dims) if in_dims == out_dims else None
        self.sqrt_s = math.sqrt(s)
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None

    def rel_pos_bias(self, n: int) -> torch.Tensor:
        """``(1, n, n)``: entry (i, j) is ``w[j - i + n - 1]`` (mmpose's Toeplitz trick)."""
        t = F.pad(self.w[:2 * n - 1], [0, n]).repeat(n)
        t = t[..., :-n].reshape(-1, n, 3 * n - 2)
        r = (2 * n - 1) // 2
        return t[..., r:-r]

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act_fn(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=2)
        base = base.unsqueeze(2) * self.gamma[None, None, :] + self.beta
        if self.pos_enc:
            base = rope(base, dim=1)
        q, k = torch.unbind(base, dim=2)
        qk = torch.bmm(q, k.transpose(1, 2))
        if self.use_rel_bias:
            n = q.size(1)
            qk = qk + self.rel_pos_bias(n)[:, :n, :n]
        kernel = torch.square(F.relu(qk / self.sqrt_s))
        if self.dropout is not None:
            kernel = self.dropout(kernel)
        return self.o(u * torch.bmm(kernel, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = drop_path(self.attention(x), self.drop_path_rate, self.training)
        return out if self.res_scale is None else self.res_scale(x) + out

    def matmul_macs(self, num_token: int) -> int:
        """Multiply-adds of the two token-by-token products, which no layer hook sees."""
        return num_token * num_token * (self.s + self.e)


class RTMCCHead(nn.Module):
    """SimCC head: features ``(N, C, h, w)`` -> ``(x logits (N, K, W*r), y logits (N, K, H*r))``.

    ``input_size`` and ``in_featuremap_size`` are (width, height) as in mmpose.
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: Sequence[int],
                 in_featuremap_size: Sequence[int], simcc_split_ratio: float = 2.0,
                 final_layer_kernel_size: int = 7, hidden_dims: int = 256, s: int = 128,
                 expansion_factor: float = 2, dropout_rate: float = 0.0,
                 drop_path: float = 0.0, act_fn: str = "SiLU", use_rel_bias: bool = False,
                 pos_enc: bool = False) -> None:
        super().__init__()
        self.input_size = tuple(int(v) for v in input_size)
        self.in_featuremap_size = tuple(int(v) for v in in_featuremap_size)
        self.simcc_split_ratio = simcc_split_ratio
        flatten_dims = self.in_featuremap_size[0] * self.in_featuremap_size[1]
        self.final_layer = nn.Conv2d(in_channels, out_channels, final_layer_kernel_size,
                                     padding=final_layer_kernel_size // 2)
        self.mlp = nn.Sequential(ScaleNorm(flatten_dims),
                                 nn.Linear(flatten_dims, hidden_dims, bias=False))
        self.gau = RTMCCBlock(out_channels, hidden_dims, hidden_dims, expansion_factor, s,
                              dropout_rate=dropout_rate, drop_path=drop_path, act_fn=act_fn,
                              use_rel_bias=use_rel_bias, pos_enc=pos_enc)
        self.cls_x = nn.Linear(hidden_dims, int(self.input_size[0] * simcc_split_ratio),
                               bias=False)
        self.cls_y = nn.Linear(hidden_dims, int(self.input_size[1] * simcc_split_ratio),
                               bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # mmpose's default for this head: N(0, 0.001) conv, N(0, 0.01) linear, zero biases.
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, feats: torch.Tensor | Sequence[torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(feats, torch.Tensor):
            feats = feats[-1]
        expected = self.in_featuremap_size[::-1]
        if not torch.jit.is_tracing() and tuple(feats.shape[-2:]) != expected:
            raise ValueError(f"RTMCCHead expects {expected[1]}x{expected[0]} (w x h) features "
                             f"for input size {self.input_size[0]}x{self.input_size[1]}, got "
                             f"{feats.shape[-1]}x{feats.shape[-2]}; check MODEL.IMAGE_SIZE")
        tokens = self.mlp(torch.flatten(self.final_layer(feats), 2))
        tokens = self.gau(tokens)
        return self.cls_x(tokens), self.cls_y(tokens)


class RTMPose(nn.Module):
    """``backbone`` + ``head``: image ``(N, 3, H, W)`` -> ``(simcc_x, simcc_y)``."""

    GFLOPS_DIVISOR = 1e9  # mmpose's tables (0.36 GFLOPs for RTMPose-t) count in 10**9

    def __init__(self, backbone: CSPNeXt, head: RTMCCHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))

    def extra_macs(self) -> int:
        """Multiply-adds outside conv/linear layers (the GAU's matmuls), for model summaries."""
        return self.head.gau.matmul_macs(self.head.final_layer.out_channels)


def build_rtmpose(cfg: CfgNode) -> RTMPose:
    """RTMPose from ``cfg.MODEL``: CSPNeXt P5 (stride-32 output) and the RTMCC head."""
    extra = cfg.MODEL.EXTRA
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    backbone = cspnext_from_cfg(cfg, (4,), "rtmpose")  # the head reads the stride-32 map
    head = RTMCCHead(backbone.out_channels[-1], cfg.MODEL.NUM_JOINTS, (width, height),
                     (width // 32, height // 32), cfg.MODEL.SIMCC.SPLIT_RATIO,
                     extra.FINAL_CONV_KERNEL, extra.HIDDEN_DIMS, extra.GAU_S,
                     extra.GAU_EXPANSION_FACTOR, extra.GAU_DROPOUT, extra.GAU_DROP_PATH,
                     extra.GAU_ACT, extra.GAU_USE_REL_BIAS, extra.GAU_POS_ENC)
    return RTMPose(backbone, head)
