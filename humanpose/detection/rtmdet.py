"""RTMDet on the PyTorch side: the network with its outputs flattened for every runner
(:class:`RTMDetOutputs`) and its ONNX export with the settings in the metadata.

Pre- and post-processing (mmdet's test pipeline in NumPy) live in the torch-free runtime,
:mod:`humanpose.runtime.rtmdet`, whose docstring gives the output layout; its names are
importable from here too.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import os
import threading
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humanpose.errors import HumanposeError
from humanpose.runtime.rtmdet import (  # the NumPy parts, shared with the torch-free runtime
    RTMDET_METADATA_KEY,
    RTMDetDetector,
    RTMDetMeta,
    RTMDetParams,
    decode,
    decode_flat,
    preprocess,
    resize_keep_ratio,
)

__all__ = ["RTMDET_METADATA_KEY", "RTMDET_NAMES", "RTMDetDetector", "RTMDetMeta",
           "RTMDetOutputs", "RTMDetParams", "decode", "decode_flat", "export_rtmdet_onnx",
           "flatten_outputs", "preprocess", "resize_keep_ratio"]

# MODEL.NAME values of RTMDet detectors (the network is built by humanpose.models).
RTMDET_NAMES = ("rtmdet",)
INPUT_NAME = "input"
OUTPUT_NAME = "detections"

# ----------------------------------------------------------------------------- outputs
def flatten_outputs(cls_scores, bbox_preds) -> torch.Tensor:
    """mmdet's per-level outputs → one ``(N, A, 4 + C)`` tensor (see the module docstring)."""
    rows = [torch.cat([reg, cls], dim=1).flatten(2).transpose(1, 2)
            for cls, reg in zip(cls_scores, bbox_preds)]
    return torch.cat(rows, dim=1)


class RTMDetOutputs(nn.Module):
    """The network with its outputs flattened by :func:`flatten_outputs`.

    The levels are indexed, not iterated, so ``torch.fx`` can trace the wrapper (the
    PyTorch runner folds batch norms through a trace)."""

    def __init__(self, network: nn.Module, levels: int = 3):
        super().__init__()
        self.network = network
        self.levels = int(levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        cls_scores, bbox_preds = out[0], out[1]
        rows = []
        for i in range(self.levels):
            level = torch.cat([bbox_preds[i], cls_scores[i]], dim=1)
            rows.append(level.flatten(2).transpose(1, 2))
        return torch.cat(rows, dim=1)


# ----------------------------------------------------------------------------- export
def export_rtmdet_onnx(network: nn.Module, params: RTMDetParams, path: str | os.PathLike,
                       opset: int = 17, dynamic_batch: bool = True, check: bool = True
                       ) -> float:
    """Write the network (raw mmdet outputs, or already an :class:`RTMDetOutputs`) as ONNX
    with one output ``detections`` and ``params`` in the metadata, so that the file alone
    is a detector; returns the largest |ONNX − PyTorch| on a random batch (``nan``
    unchecked)."""
    if importlib.util.find_spec("onnx") is None:
        raise HumanposeError("exporting RTMDet needs the onnx package (its metadata carries "
                             "the settings): pip install 'humanpose[onnx]'")
    import onnx

    if opset < 17:
        raise ValueError(f"opset must be at least 17, got {opset}")
    model = network if isinstance(network, RTMDetOutputs) else RTMDetOutputs(
        network, len(params.strides))
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = params.input_size
    sample = torch.zeros(1, 3, height, width)
    axes = ({INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (sample,), str(tmp), opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes=axes, do_constant_folding=True, dynamo=False)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = RTMDET_METADATA_KEY, params.to_json()
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if not check:
        return float("nan")
    from humanpose.export import run_onnx

    batch = 2 if dynamic_batch else 1
    x = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(x).numpy()
    got = run_onnx(path, x.numpy())[-1]
    if got.shape != expected.shape:
        raise HumanposeError(f"{path}: ONNX output shape {got.shape} differs from PyTorch's "
                             f"{expected.shape}")
    return float(np.abs(got - expected).max())
