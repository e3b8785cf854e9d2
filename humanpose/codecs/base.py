"""What every codec offers: the one seam between key points and a network's outputs.

A codec is built once from the config and handed to the data pipeline (``encode``), the
flip test (``flip_back``), evaluation and inference (``decode``) and ONNX export
(``output_names``). Nothing else knows whether a network predicts heatmaps or SimCC vectors.
Key points are always in **input-crop pixels**; mapping crops to images is the shared
geometry's job (:func:`humanpose.data.geometry.transform_preds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

__all__ = ["Codec", "Outputs", "as_float_outputs", "average_outputs"]

# A network's outputs: one tensor (heatmaps) or a tuple of tensors (SimCC x and y vectors).
Outputs = torch.Tensor | tuple[torch.Tensor, ...]


class Codec(Protocol):
    name: str
    input_size: tuple[int, int]  # (w, h) of the crop the network sees
    output_names: tuple[str, ...]  # ONNX output names, in the network's output order
    udp: bool  # crops and key points use the unbiased (UDP) geometry

    def network_outputs(self, outputs) -> Outputs:
        """The part of a network's raw outputs that this codec decodes (e.g. the last of a
        multi-output heatmap network's), as the flip test averages them."""

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(K, 2)`` key points in crop pixels and ``(K,)`` visibility → training targets,
        the last one being the per-joint weights. The loss is called ``loss(outputs, *targets)``."""

    def decode(self, outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
        """Outputs for N crops → key points ``(N, K, 2)`` in crop pixels and scores ``(N, K)``."""

    def flip_back(self, outputs: Outputs, flip_pairs: Sequence[Sequence[int]]) -> Outputs:
        """Outputs for mirrored crops → outputs for the original crops (flip test)."""

    def meta(self) -> dict:
        """Everything needed to rebuild the codec without the config (ONNX metadata)."""


def as_float_outputs(outputs) -> Outputs:
    """Float32 tensors, whatever the network or backend returned."""
    if isinstance(outputs, (list, tuple)):
        return tuple(torch.as_tensor(o).float() for o in outputs)
    return torch.as_tensor(outputs).float()


def average_outputs(a: Outputs, b: Outputs) -> Outputs:
    """The flip test's mean of two predictions, output by output."""
    if isinstance(a, tuple):
        return tuple((x + y) * 0.5 for x, y in zip(a, b))
    return (a + b) * 0.5
