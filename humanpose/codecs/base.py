"""What every codec offers: the one seam between key points and a network's outputs.

A codec is built once from the config and handed to the data pipeline (``encode``), the
flip test (``flip_back``), evaluation and inference (``decode``) and ONNX export
(``output_names``). Nothing else knows whether a network predicts heatmaps or SimCC vectors.
Key points are always in **input-crop pixels**; mapping crops to images is the shared
geometry's job (:func:`humanpose.data.geometry.transform_preds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["Codec", "Outputs", "as_float_outputs", "as_numpy", "average_outputs"]

# A network's outputs: one array (heatmaps) or a tuple of arrays (SimCC x and y vectors),
# NumPy arrays in the runtime, torch tensors on the PyTorch side. Codecs take either and
# never import torch, so the torch-free runtime (humanpose.runtime) decodes with them too.
Outputs = Any


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


def _is_tensor(value) -> bool:
    return type(value).__module__.startswith("torch")


def _float32(value):
    if _is_tensor(value):
        return value.float()
    return np.asarray(value, dtype=np.float32)


def as_float_outputs(outputs) -> Outputs:
    """Float32 outputs of the same kind as given: torch tensors stay tensors, anything else
    becomes NumPy arrays."""
    if isinstance(outputs, (list, tuple)):
        return tuple(_float32(o) for o in outputs)
    return _float32(outputs)


def as_numpy(value) -> np.ndarray:
    """A float32 NumPy array of an output (a torch tensor is moved to the CPU first)."""
    if _is_tensor(value):
        return value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def average_outputs(a: Outputs, b: Outputs) -> Outputs:
    """The flip test's mean of two predictions, output by output."""
    if isinstance(a, tuple):
        return tuple((x + y) * 0.5 for x, y in zip(a, b))
    return (a + b) * 0.5
