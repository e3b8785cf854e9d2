"""Weights whose outputs have clear peaks, for tests that compare decoded key points across
backends, precisions or model forms.

Random weights give near-flat (often exactly flat: dead ReLUs leave only the bias) heatmaps
and SimCC vectors. Their argmax, and the quarter-pixel step towards the higher neighbour, are
then decided by float rounding, which differs between ONNX Runtime, OpenVINO and PyTorch and
between CPUs (AMX or not): key points jump by whole pixels. A few optimiser steps towards
sharp, sub-pixel-offset Gaussians (through the codec's own flip-back, so the flip test's
average peaks too) make every decision stand well above that noise; :func:`decision_margin`
measures how far, so a test can assert its premise instead of hoping for it.
"""

from __future__ import annotations

import torch

from humanpose.codecs import Codec

# A decode decision closer than this is left to rounding: fp32 backends differ by ~1e-6 on
# these outputs, bf16 by ~1e-2.
CLEAR_MARGIN = 1e-4


def _gaussians(length: int, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    return torch.exp(-((torch.arange(length) - centres[..., None]) ** 2) / (2 * sigma ** 2))


def _centres(shape: tuple[int, ...], length: int, generator: torch.Generator) -> torch.Tensor:
    """Integer + 0.3 positions, away from the borders: neighbours differ on both sides."""
    return torch.randint(2, length - 2, shape, generator=generator).float() + 0.3


def peak_targets(outputs, seed: int = 0):
    """Targets shaped like ``outputs``: a 2-D Gaussian per heatmap, a 1-D one per SimCC
    vector (scaled up: SimCC decodes logits)."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(outputs, (tuple, list)):  # SimCC (x, y) vectors
        return tuple(8 * _gaussians(o.shape[-1], _centres(o.shape[:2], o.shape[-1], g), 1.0)
                     for o in outputs)
    n, k, h, w = outputs.shape
    cx = _centres((n, k), w, g)
    cy = _centres((n, k), h, g)
    return _gaussians(h, cy, 1.5)[..., :, None] * _gaussians(w, cx, 1.5)[..., None, :]


def _mse(a, b) -> torch.Tensor:
    if isinstance(a, (tuple, list)):
        return sum(((x - y) ** 2).mean() for x, y in zip(a, b))
    return ((a - b) ** 2).mean()


def train_to_peak(model: torch.nn.Module, inputs: torch.Tensor, codec: Codec,
                  flip_pairs, steps: int = 200, lr: float = 3e-3) -> torch.nn.Module:
    """``model`` (in place, returned in eval mode) trained for ``steps`` Adam steps so that
    its outputs on ``inputs``, plain and flipped back from the mirrored crops, peak sharply."""
    torch.manual_seed(0)
    with torch.no_grad():
        targets = peak_targets(model.eval()(inputs))
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr)
    batch = torch.cat([inputs, inputs.flip(3)])
    n = inputs.shape[0]
    for _ in range(steps):
        out = model(batch)
        plain = tuple(o[:n] for o in out) if isinstance(out, (tuple, list)) else out[:n]
        mirrored = tuple(o[n:] for o in out) if isinstance(out, (tuple, list)) else out[n:]
        loss = _mse(plain, targets) + _mse(codec.flip_back(mirrored, flip_pairs), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def decision_margin(outputs) -> float:
    """The smallest gap on which a decode decision rests: the argmax's lead over the runner-up
    and, for heatmaps, the difference of the two neighbours each side of the peak."""
    if isinstance(outputs, (tuple, list)):
        return min(decision_margin_1d(o) for o in outputs)
    n, k, h, w = outputs.shape
    flat = outputs.reshape(n, k, -1)
    top = flat.topk(2, dim=2).values
    margin = (top[..., 0] - top[..., 1]).min()
    idx = flat.argmax(2)
    py, px = (idx // w).clamp(1, h - 2), (idx % w).clamp(1, w - 2)
    ni, ki = torch.meshgrid(torch.arange(n), torch.arange(k), indexing="ij")
    dx = (outputs[ni, ki, py, px + 1] - outputs[ni, ki, py, px - 1]).abs().min()
    dy = (outputs[ni, ki, py + 1, px] - outputs[ni, ki, py - 1, px]).abs().min()
    return float(min(margin, dx, dy))


def decision_margin_1d(vectors: torch.Tensor) -> float:
    top = vectors.topk(2, dim=-1).values
    return float((top[..., 0] - top[..., 1]).min())


def detector_decision_margin(output, min_score: float) -> float:
    """The smallest gap on which our box detector's decode decisions rest, for its raw
    output maps ``(N, 5, h, w)``: whether a cell is a peak (its centre score against its
    highest neighbour's) and whether a peak is kept (its score against ``min_score``).
    Only cells that could become a kept peak count (score above half the threshold)."""
    import numpy as np

    logits = np.asarray(output, dtype=np.float64)[:, 0]
    heat = 1.0 / (1.0 + np.exp(-logits))
    padded = np.pad(heat, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h, w = heat.shape[1:]
    shifts = [padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
              for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    neighbour = np.max(shifts, axis=0)
    candidates = heat > min_score / 2
    if not candidates.any():
        return float("inf")
    margin = np.abs(heat - neighbour)[candidates].min()
    peaks = candidates & (heat > neighbour)
    if peaks.any():
        margin = min(margin, np.abs(heat[peaks] - min_score).min())
    return float(margin)


def clear_detector_threshold(output, thresholds=None) -> tuple[float, float]:
    """The score threshold, of ``thresholds`` (default 0.05 to 0.6), whose decisions on the
    detector's raw output maps rest on the widest gap, and that gap: a barely trained map
    has background cells near any fixed threshold, and which CPU rounds them over it varies."""
    import numpy as np

    if thresholds is None:
        thresholds = np.round(np.arange(0.05, 0.6001, 0.01), 2)
    margins = [detector_decision_margin(output, float(t)) for t in thresholds]
    best = int(np.argmax(margins))
    return float(thresholds[best]), float(margins[best])
