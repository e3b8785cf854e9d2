"""RTMO (Lu et al., 2023): one-stage pose, laid out as mmpose 1.3 lays it out.

``backbone`` (CSPDarknet, :mod:`.cspdarknet`) -> ``neck`` (hybrid encoder,
:mod:`.hybrid_encoder`) -> ``head`` (``head.head_module``: per-level YOLO-style branches at
strides 16 and 32; ``head.dcc``: the dynamic coordinate classifier), with mmpose's module
names so an mmpose checkpoint loads strictly.

The forward pass is what an exported graph should hold, so decoding needs only NumPy
(:mod:`humanpose.runtime.rtmo`): for the ``topk`` best-scoring anchors, best first, one row
``[x1, y1, x2, y2, score, x_1, y_1, ... x_K, y_K, vis_1 ... vis_K]`` in input pixels
(``(N, topk, 5 + 3K)``), the boxes unclamped, scores and visibilities after the sigmoid and
the key points already decoded by the DCC from each anchor's own box. mmpose runs the DCC
after NMS, on the survivors only; the DCC of one anchor does not depend on the others, so
running it on the ``topk`` best before NMS gives the same people whenever every NMS survivor
is among them (NMS keeps the best-scoring box of each group, so survivors are high in the
ranking). Score threshold and NMS are left to the decoder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from .cspdarknet import CSPDarknet
from .cspnext import ConvBNAct
from .hybrid_encoder import HybridEncoder, SinePositionalEncoding
from .rtmpose import Scale, ScaleNorm

__all__ = ["DCC", "GAUEncoder", "RTMO", "RTMOHead", "RTMOHeadModule", "build_rtmo"]

STRIDES = (16, 32)
BBOX_PADDING = 1.25  # mmpose RTMOHead's: the DCC's bins span the box enlarged by this
# COCO's OKS sigmas: mmpose keeps them as a buffer of the OKS loss (head.loss_oks.sigmas),
# so its checkpoints hold them; inference does not use them.
COCO_SIGMAS = (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
               0.107, 0.107, 0.087, 0.087, 0.089, 0.089)


class RTMOHeadModule(nn.Module):
    """Per level: the input split in two halves, one for classification (stacked 3x3 convs,
    1x1 score), one for pose (one 3x3 then grouped 3x3 convs; 1x1 box, key-point offset,
    visibility and pose-vector predictors)."""

    def __init__(self, num_keypoints: int, in_channels: int, widen_factor: float,
                 pose_vec_channels: int, cls_feat_channels: int = 256, stacked_convs: int = 2,
                 num_groups: int = 8, channels_per_group: int = 36,
                 levels: int = len(STRIDES)) -> None:
        super().__init__()
        bn = {"bn_eps": 1e-3, "bn_momentum": 0.03}
        cin = int(in_channels * widen_factor)
        cls_ch = int(cls_feat_channels * widen_factor)
        pose_ch = num_groups * int(widen_factor * channels_per_group)
        self.conv_cls = nn.ModuleList([nn.Sequential(*[
            ConvBNAct(cin if i == 0 else cls_ch, cls_ch, 3, **bn) for i in range(stacked_convs)])
            for _ in range(levels)])
        self.out_cls = nn.ModuleList([nn.Conv2d(cls_ch, 1, 1) for _ in range(levels)])
        self.conv_pose = nn.ModuleList([nn.Sequential(*[
            ConvBNAct(cin if i == 0 else pose_ch, pose_ch, 3, groups=1 if i == 0 else num_groups,
                      **bn) for i in range(stacked_convs * 2)]) for _ in range(levels)])
        self.out_bbox = nn.ModuleList([nn.Conv2d(pose_ch, 4, 1) for _ in range(levels)])
        # The offsets train a proxy regression branch; inference does not use them.
        self.out_kpt_reg = nn.ModuleList([nn.Conv2d(pose_ch, 2 * num_keypoints, 1)
                                          for _ in range(levels)])
        self.out_kpt_vis = nn.ModuleList([nn.Conv2d(pose_ch, num_keypoints, 1)
                                          for _ in range(levels)])
        self.out_pose = nn.ModuleList([nn.Conv2d(pose_ch, pose_vec_channels, 1)
                                       for _ in range(levels)])
        prior = -math.log((1 - 0.01) / 0.01)  # mmpose: a 1 % prior probability
        for conv in self.out_cls:
            nn.init.constant_(conv.bias, prior)

    def forward(self, feats: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        scores, boxes, vis, pose = [], [], [], []
        for i, x in enumerate(feats):
            cls_feat, reg_feat = x.split(x.shape[1] // 2, 1)
            cls_feat = self.conv_cls[i](cls_feat)
            reg_feat = self.conv_pose[i](reg_feat)
            scores.append(self.out_cls[i](cls_feat))
            boxes.append(self.out_bbox[i](reg_feat))
            vis.append(self.out_kpt_vis[i](reg_feat))
            pose.append(self.out_pose[i](reg_feat))
        return scores, boxes, vis, pose


class _Scale(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class GAUEncoder(nn.Module):
    """Gated attention unit over the K key-point tokens (``pos_enc='add'``: a learnt
    per-key-point code added to queries and keys), with a scaled shortcut."""

    def __init__(self, dims: int, s: int = 128, expansion_factor: float = 2.0) -> None:
        super().__init__()
        self.s = s
        self.e = int(dims * expansion_factor)
        self.o = nn.Linear(self.e, dims, bias=False)
        self.uv = nn.Linear(dims, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.ln = ScaleNorm(dims)
        self.act_fn = nn.SiLU(inplace=True)
        self.res_scale = Scale(dims)
        nn.init.xavier_uniform_(self.uv.weight)

    def forward(self, x: torch.Tensor, pos_enc: torch.Tensor) -> torch.Tensor:
        u, v, base = torch.split(self.act_fn(self.uv(self.ln(x))), [self.e, self.e, self.s],
                                 dim=-1)
        q = base * self.gamma[0] + self.beta[0] + pos_enc
        k = base * self.gamma[1] + self.beta[1] + pos_enc
        kernel = torch.relu(q @ k.transpose(-1, -2) / math.sqrt(self.s)).square()
        return self.res_scale(x) + self.o(u * (kernel @ v))


class DCC(nn.Module):
    """Dynamic coordinate classifier: per anchor, K key-point tokens from its pose vector,
    scored against sine codes of bins spread over its own (padded) box; the expected bin
    position under a softmax is the coordinate."""

    def __init__(self, in_channels: int, num_keypoints: int, feat_channels: int = 128,
                 num_bins: tuple[int, int] = (192, 256), spe_channels: int = 128,
                 spe_temperature: float = 300.0, gau_s: int = 128) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.feat_channels = feat_channels
        self.spe = SinePositionalEncoding(spe_channels, spe_temperature)
        self.gau = GAUEncoder(feat_channels, gau_s)
        self.pos_enc = nn.Parameter(torch.randn(num_keypoints, gau_s))
        self.pose_to_kpts = nn.Sequential(nn.Linear(in_channels, feat_channels * num_keypoints),
                                          nn.BatchNorm1d(feat_channels * num_keypoints))
        self.x_fc = nn.Linear(spe_channels, feat_channels)
        self.y_fc = nn.Linear(spe_channels, feat_channels)
        # Trains the localisation uncertainty (MLE loss); inference does not use it.
        self.sigma_fc = nn.Sequential(nn.Linear(in_channels, num_keypoints), nn.Sigmoid(),
                                      _Scale(0.1))
        self.register_buffer("y_bins", torch.linspace(-0.5, 0.5, num_bins[1]))
        self.register_buffer("x_bins", torch.linspace(-0.5, 0.5, num_bins[0]))

    def _axis(self, kpt_feats: torch.Tensor, bins: torch.Tensor, fc: nn.Linear,
              centre: torch.Tensor, size: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """One axis: ``(M, K, C)`` tokens, ``(M, 1)`` box centre/size and anchor position
        -> ``(M, K)`` coordinates."""
        spread = bins * size  # (M, B)
        # Codes of the bins relative to the anchor, rounded as mmpose rounds them (the
        # sines of large arguments amplify any other order's rounding).
        codes = self.spe.encode(spread + (centre - grid))
        positions = spread + centre  # input pixels
        # tokens . (W code + b) computed as (tokens W) . code + tokens . b: the same logits
        # (up to rounding) without a linear layer over every bin of every anchor (M x B x
        # C x C multiply-adds; this is M x K x C x (C + B)).
        logits = (kpt_feats @ fc.weight) @ codes.transpose(-1, -2) \
            + (kpt_feats @ fc.bias).unsqueeze(-1)  # (M, K, B)
        logits = logits.clamp(-5e4, 5e4)
        logits = logits - logits.amax(dim=-1, keepdim=True)
        prob = logits.exp()
        prob = prob / (prob.sum(dim=-1, keepdim=True) + 1e-8)  # mmpose's EPS
        return (prob * positions.unsqueeze(1)).sum(dim=-1)

    def forward(self, pose_vecs: torch.Tensor, boxes: torch.Tensor, grids: torch.Tensor
                ) -> torch.Tensor:
        """``(M, C)`` pose vectors, ``(M, 4)`` xyxy boxes, ``(M, 2)`` anchor points ->
        ``(M, K, 2)`` key points in input pixels."""
        feats = self.pose_to_kpts(pose_vecs).reshape(-1, self.num_keypoints, self.feat_channels)
        feats = self.gau(feats, self.pos_enc)
        centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5
        size = (boxes[:, 2:] - boxes[:, :2]) * BBOX_PADDING
        x = self._axis(feats, self.x_bins, self.x_fc, centre[:, :1], size[:, :1], grids[:, :1])
        y = self._axis(feats, self.y_bins, self.y_fc, centre[:, 1:], size[:, 1:], grids[:, 1:])
        return torch.stack((x, y), dim=-1)


class _OKSSigmas(nn.Module):
    """Holds ``sigmas`` where mmpose's OKS loss keeps them, for strict checkpoint loading."""

    def __init__(self, sigmas: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("sigmas", torch.tensor(list(sigmas), dtype=torch.float32))


class RTMOHead(nn.Module):
    """``head_module`` + ``dcc``; the forward decodes boxes and runs the DCC on the ``topk``
    best anchors (see the module docstring for the row layout)."""

    def __init__(self, num_keypoints: int, in_channels: int, widen_factor: float,
                 pose_vec_channels: int, topk: int = 300,
                 sigmas: Sequence[float] | None = None) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.strides = STRIDES
        self.topk = int(topk)
        self.head_module = RTMOHeadModule(num_keypoints, in_channels, widen_factor,
                                          pose_vec_channels)
        self.dcc = DCC(pose_vec_channels, num_keypoints)
        self.loss_oks = _OKSSigmas(sigmas if sigmas is not None else
                                   COCO_SIGMAS if num_keypoints == 17 else [0.05] * num_keypoints)

    def _priors(self, sizes: Sequence[tuple[int, int]], like: torch.Tensor) -> torch.Tensor:
        """``(A, 3)``: anchor x, y (mmpose's centralised points: ``i * s + (s - 1) / 2``) and
        stride, level by level, row-major."""
        rows = []
        for (h, w), s in zip(sizes, self.strides):
            ys = torch.arange(h, dtype=like.dtype, device=like.device) * s + (s - 1) / 2
            xs = torch.arange(w, dtype=like.dtype, device=like.device) * s + (s - 1) / 2
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")
            rows.append(torch.stack((xx.reshape(-1), yy.reshape(-1),
                                     torch.full_like(xx.reshape(-1), s)), dim=-1))
        return torch.cat(rows)

    @staticmethod
    def _flat(maps: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        scores, boxes, vis, pose = self.head_module(feats)
        priors = self._priors([tuple(m.shape[2:]) for m in scores], scores[0])
        scores = self._flat(scores).sigmoid()[..., 0]  # N, A
        boxes = self._flat(boxes)
        vis = self._flat(vis).sigmoid()
        pose = self._flat(pose)
        stride = priors[:, 2:]
        xy = boxes[..., :2] * stride + priors[:, :2]
        half = boxes[..., 2:].exp() * stride / 2
        boxes = torch.cat((xy - half, xy + half), dim=-1)
        n, anchors = scores.shape
        k = min(self.topk, anchors)
        top, idx = scores.topk(k, dim=1)
        boxes = boxes.gather(1, idx.unsqueeze(-1).expand(n, k, 4))
        vis = vis.gather(1, idx.unsqueeze(-1).expand(n, k, vis.shape[-1]))
        pose = pose.gather(1, idx.unsqueeze(-1).expand(n, k, pose.shape[-1]))
        grids = priors[:, :2][idx.reshape(-1)]
        kpts = self.dcc(pose.reshape(n * k, -1), boxes.reshape(n * k, 4), grids)
        return torch.cat((boxes, top.unsqueeze(-1), kpts.reshape(n, k, -1), vis), dim=-1)


class RTMO(nn.Module):
    """``backbone`` -> ``neck`` -> ``head``: BGR image ``(N, 3, H, W)`` (pixel values, no
    normalisation: RTMO's data preprocessor has mean 0, std 1) -> ``(N, topk, 5 + 3K)``."""

    GFLOPS_DIVISOR = 1e9

    def __init__(self, backbone: CSPDarknet, neck: HybridEncoder, head: RTMOHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone(x)))


def build_rtmo(cfg: CfgNode) -> RTMO:
    """RTMO from ``cfg.MODEL`` (``EXTRA.DEEPEN_FACTOR``/``WIDEN_FACTOR``, ``MODEL.RTMO``);
    the input sides must be multiples of 32 (the coarsest level's stride)."""
    extra, rtmo = cfg.MODEL.EXTRA, cfg.MODEL.RTMO
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    if width % 32 or height % 32:
        raise ValueError(f"MODEL.IMAGE_SIZE {[width, height]} must be multiples of 32 for "
                         "rtmo (CSPDarknet's coarsest stage has stride 32)")
    widen, deepen = extra.WIDEN_FACTOR, extra.DEEPEN_FACTOR
    backbone = CSPDarknet(deepen, widen, (2, 3, 4))
    neck = HybridEncoder(backbone.out_channels[2:], rtmo.HIDDEN_DIM, rtmo.OUT_CHANNELS,
                         deepen, widen)
    head = RTMOHead(cfg.MODEL.NUM_JOINTS, rtmo.HIDDEN_DIM, widen, rtmo.OUT_CHANNELS,
                    rtmo.TOPK)
    return RTMO(backbone, neck, head)
