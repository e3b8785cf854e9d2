"""RTMDet (Lyu et al., 2022), the network only: CSPNeXt, CSPNeXt-PAFPN and the separated-BN head.

Laid out as mmdet 3.3 lays it out (``backbone.``, ``neck.``, ``bbox_head.``), so an mmdet
checkpoint loads strictly. The forward returns mmdet's raw outputs: per level (strides 8, 16,
32) class logits ``(N, C, H/s, W/s)`` and box distances ``(N, 4, H/s, W/s)`` in input pixels
(left, top, right, bottom from each cell's corner point); decoding, score threshold and NMS
are the detector's pre/post-processing, not the network's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from .cspnext import CSPNeXt, CSPNeXtPAFPN, conv_unit, cspnext_from_cfg

__all__ = ["CSPNeXtPAFPN", "RTMDet", "RTMDetSepBNHead", "build_rtmdet"]

STRIDES = (8, 16, 32)


class RTMDetSepBNHead(nn.Module):
    """Per level: stacked 3x3 convs for classification and for boxes, then 1-conv predictors.

    With ``share_conv`` the levels use the convs of level 0 (one set of weights, which the
    state dict lists under every level, as mmdet's does) and keep their own BatchNorms.
    """

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256,
                 stacked_convs: int = 2, share_conv: bool = True, use_depthwise: bool = False,
                 pred_kernel_size: int = 1, exp_on_reg: bool = False,
                 strides: Sequence[int] = STRIDES, **bn: float) -> None:
        super().__init__()
        self.strides = tuple(strides)
        self.exp_on_reg = exp_on_reg
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.rtm_cls = nn.ModuleList()
        self.rtm_reg = nn.ModuleList()
        for _ in self.strides:
            cls_convs, reg_convs = nn.ModuleList(), nn.ModuleList()
            for i in range(stacked_convs):
                chn = in_channels if i == 0 else feat_channels
                cls_convs.append(conv_unit(chn, feat_channels, 3, depthwise=use_depthwise, **bn))
                reg_convs.append(conv_unit(chn, feat_channels, 3, depthwise=use_depthwise, **bn))
            self.cls_convs.append(cls_convs)
            self.reg_convs.append(reg_convs)
            pad = pred_kernel_size // 2
            self.rtm_cls.append(nn.Conv2d(feat_channels, num_classes, pred_kernel_size,
                                          padding=pad))
            self.rtm_reg.append(nn.Conv2d(feat_channels, 4, pred_kernel_size, padding=pad))
        if share_conv:
            if use_depthwise:
                raise ValueError("RTMDet head: share_conv needs plain convs (mmdet shares "
                                 "ConvModule.conv); set DET_SHARE_CONV False with USE_DEPTHWISE")
            for convs in (self.cls_convs, self.reg_convs):
                for level in convs[1:]:
                    for i, unit in enumerate(level):
                        unit.conv = convs[0][i].conv
        self._init_weights()

    def _init_weights(self) -> None:
        # mmdet's: N(0, 0.01) convs, unit BN, class bias for a 1 % prior probability.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        prior_bias = -math.log((1 - 0.01) / 0.01)
        for conv in self.rtm_cls:
            nn.init.constant_(conv.bias, prior_bias)

    def forward(self, feats: Sequence[torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        cls_scores, bbox_preds = [], []
        for idx, (x, stride) in enumerate(zip(feats, self.strides)):
            cls_feat, reg_feat = x, x
            for layer in self.cls_convs[idx]:
                cls_feat = layer(cls_feat)
            for layer in self.reg_convs[idx]:
                reg_feat = layer(reg_feat)
            reg = self.rtm_reg[idx](reg_feat)
            cls_scores.append(self.rtm_cls[idx](cls_feat))
            bbox_preds.append((reg.exp() if self.exp_on_reg else reg) * stride)
        return cls_scores, bbox_preds


class RTMDet(nn.Module):
    """``backbone`` -> ``neck`` -> ``bbox_head``: image ``(N, 3, H, W)`` -> raw level outputs."""

    GFLOPS_DIVISOR = 1e9  # mmdet's tables count in 10**9

    def __init__(self, backbone: CSPNeXt, neck: CSPNeXtPAFPN, bbox_head: RTMDetSepBNHead
                 ) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.bbox_head = bbox_head

    @property
    def strides(self) -> tuple[int, ...]:
        return self.bbox_head.strides

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return self.bbox_head(self.neck(self.backbone(x)))


def build_rtmdet(cfg: CfgNode) -> RTMDet:
    """RTMDet from ``cfg.MODEL``: CSPNeXt P5 (strides 8/16/32), PAFPN, separated-BN head."""
    extra = cfg.MODEL.EXTRA
    backbone = cspnext_from_cfg(cfg, (2, 3, 4), "rtmdet")
    neck = CSPNeXtPAFPN(backbone.out_channels[2:], extra.DET_NECK_CHANNELS,
                        extra.DET_NECK_CSP_BLOCKS, extra.USE_DEPTHWISE, extra.EXPAND_RATIO)
    head = RTMDetSepBNHead(extra.DET_NUM_CLASSES, extra.DET_NECK_CHANNELS,
                           extra.DET_FEAT_CHANNELS, extra.DET_STACKED_CONVS,
                           extra.DET_SHARE_CONV, extra.USE_DEPTHWISE, extra.DET_PRED_KERNEL,
                           extra.DET_EXP_ON_REG)
    return RTMDet(backbone, neck, head)
