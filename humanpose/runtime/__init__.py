"""The runtime: pose estimation from ONNX files with NumPy, OpenCV, ONNX Runtime and
OpenVINO, never PyTorch.

:class:`PoseModel` runs a top-down model (``PoseModel("m.onnx")(image)`` →
:class:`Results`), :class:`OneStageModel` a one-stage one (RTMO: no person detector);
:mod:`~humanpose.runtime.topdown` is the top-down pipeline it shares with the PyTorch
side's ``PoseEstimator``; :mod:`~humanpose.runtime.sessions` runs ONNX files. The
torch-free modules of :mod:`humanpose.inference` (detector, sources, tracking, smoothing,
display, video) and the codecs belong to this layer too; tests/test_layers.py checks that
none of them imports torch.
"""

from __future__ import annotations

import importlib

__all__ = ["OneStageModel", "Person", "PoseModel", "Results"]

# Public name → the module that defines it, loaded on first use (the low modules here, e.g.
# the assignment solver, are imported by evaluation and tracking without the whole runtime).
_HOMES = {"Person": "humanpose.runtime.results", "Results": "humanpose.runtime.results",
          "PoseModel": "humanpose.runtime.model",
          "OneStageModel": "humanpose.runtime.one_stage"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
