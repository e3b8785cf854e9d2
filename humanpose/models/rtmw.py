"""RTMW (Jiang et al., 2024): RTMPose for whole bodies, as mmpose 1.3's ``RTMWHead``.

Whole-body key points are small (fingers, lips), so the head reads two scales: the
stride-32 map gives one token per key point as in RTMPose, and a stride-16 map, fed by a
CSPNeXt-PAFPN neck and by the stride-32 map pixel-shuffled up, gives a second, finer token;
the two halves are concatenated, mixed by one gated attention unit and classified into
SimCC x/y bins. Module names are mmpose's (``backbone.``, ``neck.``, ``head.``), so its
checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from .cspnext import ConvBNAct, CSPNeXt, CSPNeXtPAFPN, cspnext_from_cfg
from .rtmpose import RTMCCBlock, ScaleNorm

__all__ = ["RTMW", "RTMWHead", "build_rtmw"]

PIXEL_SHUFFLE = 2  # the stride-32 map is shuffled to stride 16 (channels / 4)
NECK_CSP_BLOCKS = 2  # every RTMW config (m, l, x)


class RTMWHead(nn.Module):
    """``(stride-16 map, stride-32 map)`` -> ``(x logits (N, K, W*r), y logits (N, K, H*r))``.

    ``in_channels`` is the stride-32 map's width (the stride-16 map has half of it);
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
        k, ps = final_layer_kernel_size, PIXEL_SHUFFLE
        flatten_dims = self.in_featuremap_size[0] * self.in_featuremap_size[1]
        self.ps = nn.PixelShuffle(ps)
        self.conv_dec = ConvBNAct(in_channels // ps ** 2, in_channels // 4, k, act="relu")
        self.final_layer = ConvBNAct(in_channels, out_channels, k, act="relu")
        self.final_layer2 = ConvBNAct(in_channels // ps + in_channels // 4, out_channels, k,
                                      act="relu")
        self.mlp = nn.Sequential(ScaleNorm(flatten_dims),
                                 nn.Linear(flatten_dims, hidden_dims // 2, bias=False))
        self.mlp2 = nn.Sequential(
            ScaleNorm(flatten_dims * ps ** 2),
            nn.Linear(flatten_dims * ps ** 2, hidden_dims // 2, bias=False))
        self.gau = RTMCCBlock(out_channels, hidden_dims, hidden_dims, expansion_factor, s,
                              dropout_rate=dropout_rate, drop_path=drop_path, act_fn=act_fn,
                              use_rel_bias=use_rel_bias, pos_enc=pos_enc)
        self.cls_x = nn.Linear(hidden_dims, int(self.input_size[0] * simcc_split_ratio),
                               bias=False)
        self.cls_y = nn.Linear(hidden_dims, int(self.input_size[1] * simcc_split_ratio),
                               bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # mmpose's default for the SimCC heads: N(0, 0.001) convs, N(0, 0.01) linears.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        fine, coarse = feats
        expected = self.in_featuremap_size[::-1]
        if not torch.jit.is_tracing() and tuple(coarse.shape[-2:]) != expected:
            raise ValueError(f"RTMWHead expects {expected[1]}x{expected[0]} (w x h) stride-32 "
                             f"features for input size {self.input_size[0]}x"
                             f"{self.input_size[1]}, got {coarse.shape[-1]}x"
                             f"{coarse.shape[-2]}; check MODEL.IMAGE_SIZE")
        coarse_tokens = self.mlp(torch.flatten(self.final_layer(coarse), 2))
        fine = torch.cat([self.conv_dec(self.ps(coarse)), fine], dim=1)
        fine_tokens = self.mlp2(torch.flatten(self.final_layer2(fine), 2))
        tokens = self.gau(torch.cat([coarse_tokens, fine_tokens], dim=2))
        return self.cls_x(tokens), self.cls_y(tokens)


class RTMW(nn.Module):
    """``backbone`` + ``neck`` + ``head``: image ``(N, 3, H, W)`` -> ``(simcc_x, simcc_y)``."""

    GFLOPS_DIVISOR = 1e9  # mmpose's tables count in 10**9

    def __init__(self, backbone: CSPNeXt, neck: CSPNeXtPAFPN, head: RTMWHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.neck(self.backbone(x)))

    def extra_macs(self) -> int:
        """Multiply-adds of the GAU's token products, which no layer hook sees."""
        return self.head.gau.matmul_macs(self.head.final_layer.conv.out_channels)


def build_rtmw(cfg: CfgNode) -> RTMW:
    """RTMW from ``cfg.MODEL`` (the RTMPose keys): CSPNeXt P5 (strides 8-32), mmpose's
    CSPNeXt-PAFPN without output convs (strides 16, 32 out) and the RTMW head."""
    extra = cfg.MODEL.EXTRA
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    backbone = cspnext_from_cfg(cfg, (2, 3, 4), "rtmw")
    channels = backbone.out_channels[2:]
    neck = CSPNeXtPAFPN(channels, None, NECK_CSP_BLOCKS, expand_ratio=0.5, out_indices=(1, 2))
    head = RTMWHead(channels[-1], cfg.MODEL.NUM_JOINTS, (width, height),
                    (width // 32, height // 32), cfg.MODEL.SIMCC.SPLIT_RATIO,
                    extra.FINAL_CONV_KERNEL, extra.HIDDEN_DIMS, extra.GAU_S,
                    extra.GAU_EXPANSION_FACTOR, extra.GAU_DROPOUT, extra.GAU_DROP_PATH,
                    extra.GAU_ACT, extra.GAU_USE_REL_BIAS, extra.GAU_POS_ENC)
    return RTMW(backbone, neck, head)
