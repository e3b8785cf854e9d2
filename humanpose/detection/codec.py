"""Person boxes ↔ the detector's output maps: encoding (targets), the loss, and decoding.

The detector is a heatmap network, like the pose models. Per stride-4 cell it predicts five
channels: the logit that a person's box centre falls in the cell, the offset (dx, dy) from
the cell to that centre, and the box's log width and height, all in cell units.

Targets (as in CenterNet, Zhou et al. 2019, with TTFNet's elliptical Gaussians, Liu et al.
2020): each box puts a Gaussian on the centre heatmap, peaking at exactly 1 in the cell that
holds its centre, with standard deviations ``GAUSSIAN_ALPHA / 6`` of the box's width and
height, so tall people get tall blobs. Where Gaussians overlap the larger value wins, and the
box that wins a cell also owns its regression target there. Offsets and sizes are learnt not
only at the peak but in every cell of the box's Gaussian above ``REGRESSION_MIN_GAUSSIAN``
(weighted by the Gaussian, each box weighing the same in total): many more training samples
per box, which is what makes short trainings converge, and a decode that stays right when
the peak lands one cell off.

The loss: CenterNet's focal loss on the heatmap, L1 on offsets and log sizes, and GIoU on
the boxes they make (TTFNet's weight, 5), all per box.

Decoding: sigmoid, peaks are cells equal to their 3x3 neighbourhood maximum, the top-scoring
peaks become boxes (voted over the peak's neighbourhood, see :func:`decode_output`), mapped
back from the letterboxed input to the image, then box NMS.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from humanpose.runtime.boxes import DecodeParams, image_detections
from humanpose.runtime.detectors import MAX_LOG_SIZE, decode_peaks

__all__ = ["DecodeParams", "DetectionLoss", "decode_output", "encode_boxes", "image_detections"]
# DecodeParams and image_detections live in the runtime (humanpose.runtime.boxes), which
# the torch-free detectors share; they stay importable from here.

GAUSSIAN_ALPHA = 0.54
MIN_SIGMA = 0.8  # cells: tiny boxes still get a peak with some neighbourhood
REGRESSION_MIN_GAUSSIAN = 0.5


def encode_boxes(boxes: np.ndarray, heatmap_size: Sequence[int], stride: float
                 ) -> dict[str, np.ndarray]:
    """Training targets for boxes ``(M, 4)`` (x1, y1, x2, y2 in input pixels).

    Returns ``heatmap`` ``(1, h, w)`` (1 at each box's centre cell), ``regression``
    ``(4, h, w)`` (dx, dy, log w, log h in cells) and ``weight`` ``(1, h, w)`` (where the
    regression counts, summing to 1 per box), all float32.
    """
    w, h = int(heatmap_size[0]), int(heatmap_size[1])
    heatmap = np.zeros((1, h, w), np.float32)
    regression = np.zeros((4, h, w), np.float32)
    weight = np.zeros((1, h, w), np.float32)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) / stride
    size = boxes[:, 2:] - boxes[:, :2]
    boxes, size = boxes[(size > 0).all(axis=1)], size[(size > 0).all(axis=1)]
    if len(boxes) == 0:
        return {"heatmap": heatmap, "regression": regression, "weight": weight}
    # Smallest first: on equal Gaussian values argmax picks the first, the smaller box.
    order = np.argsort(size.prod(axis=1), kind="stable")
    boxes, size = boxes[order], size[order]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    peak = np.clip(np.floor(centre), 0, [w - 1, h - 1])
    sigma = np.maximum(GAUSSIAN_ALPHA * size / 6, MIN_SIGMA)
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    gx = np.exp(-(xs[None, :] - peak[:, :1]) ** 2 / (2 * sigma[:, :1] ** 2))  # (M, w)
    gy = np.exp(-(ys[None, :] - peak[:, 1:]) ** 2 / (2 * sigma[:, 1:] ** 2))  # (M, h)
    gaussians = gy[:, :, None] * gx[:, None, :]  # (M, h, w), exactly 1 at each peak
    owner = gaussians.argmax(axis=0)
    best = np.take_along_axis(gaussians, owner[None], axis=0)[0]
    heatmap[0] = best
    region = best >= REGRESSION_MIN_GAUSSIAN
    owners = owner[region]
    totals = np.bincount(owners, weights=best[region], minlength=len(boxes))
    weight[0][region] = best[region] / totals[owners]
    cells_y, cells_x = np.nonzero(region)
    regression[0][region] = centre[owners, 0] - cells_x
    regression[1][region] = centre[owners, 1] - cells_y
    regression[2][region] = np.log(size[owners, 0])
    regression[3][region] = np.log(size[owners, 1])
    return {"heatmap": heatmap, "regression": regression, "weight": weight}


def _cell_boxes(regression: torch.Tensor) -> torch.Tensor:
    """Regression maps ``(N, 4, h, w)`` → the boxes they describe, (x1, y1, x2, y2) in
    cells, ``(N, 4, h, w)``."""
    n, _, h, w = regression.shape
    ys = torch.arange(h, device=regression.device, dtype=regression.dtype).view(1, h, 1)
    xs = torch.arange(w, device=regression.device, dtype=regression.dtype).view(1, 1, w)
    cx, cy = xs + regression[:, 0], ys + regression[:, 1]
    half_w = regression[:, 2].clamp(max=MAX_LOG_SIZE).exp() / 2
    half_h = regression[:, 3].clamp(max=MAX_LOG_SIZE).exp() / 2
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - generalised IoU (Rezatofighi et al. 2019) of box maps ``(N, 4, h, w)``, per cell."""
    lt = torch.maximum(pred[:, :2], target[:, :2])
    rb = torch.minimum(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area_p = (pred[:, 2:] - pred[:, :2]).prod(dim=1)
    area_t = (target[:, 2:] - target[:, :2]).prod(dim=1)
    union = area_p + area_t - inter
    hull = (torch.maximum(pred[:, 2:], target[:, 2:]) -
            torch.minimum(pred[:, :2], target[:, :2])).prod(dim=1)
    iou = inter / union.clamp(min=1e-6)
    return 1 - iou + (hull - union) / hull.clamp(min=1e-6)


class DetectionLoss(nn.Module):
    """CenterNet's penalty-reduced focal loss on the centre heatmap, plus the weighted L1
    loss of offsets and log sizes and the GIoU loss of the boxes they make (which weighs
    errors by what they cost in overlap, which box AP counts), each averaged per box;
    computed in float32 (AMP-safe)."""

    def __init__(self, l1_weight: float = 1.0, giou_weight: float = 5.0):
        super().__init__()
        self.l1_weight, self.giou_weight = l1_weight, giou_weight

    def forward(self, output: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        output = output.float()
        logits = output[:, :1]
        target = targets["heatmap"].float()
        positive = target.eq(1.0)
        prob = torch.sigmoid(logits)
        # log(p) and log(1 - p) from the logits: no log(0) however confident the net gets.
        pos_loss = F.logsigmoid(logits) * (1 - prob).pow(2) * positive
        neg_loss = F.logsigmoid(-logits) * prob.pow(2) * (1 - target).pow(4) * ~positive
        num_boxes = positive.sum().clamp(min=1)
        loss = -(pos_loss.sum() + neg_loss.sum()) / num_boxes
        weight = targets["weight"].float()
        regression = targets["regression"].float()
        if self.l1_weight:
            l1 = (output[:, 1:] - regression).abs() * weight
            loss = loss + self.l1_weight * l1.sum() / num_boxes
        if self.giou_weight:
            giou = giou_loss(_cell_boxes(output[:, 1:]), _cell_boxes(regression))
            loss = loss + self.giou_weight * (giou * weight[:, 0]).sum() / num_boxes
        return loss


def decode_output(output: torch.Tensor, stride: float, top_k: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`humanpose.runtime.detectors.decode_peaks` (the one decoder, NumPy) for torch
    outputs: boxes ``(N, K, 4)`` (x1, y1, x2, y2 in input pixels) and scores ``(N, K)``."""
    boxes, scores = decode_peaks(output.detach().float().cpu().numpy(), stride, top_k)
    return torch.from_numpy(boxes), torch.from_numpy(scores)
