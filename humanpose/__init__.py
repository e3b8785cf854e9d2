"""humanpose: lightweight real-time 2D human pose estimation (top-down).

Two layers share this package. The runtime (:mod:`humanpose.runtime`: NumPy, OpenCV, ONNX
Runtime/OpenVINO) runs exported models and needs no PyTorch: ``humanpose.PoseModel``. The
PyTorch side trains, tests, exports and runs ``.pth`` weights: ``humanpose.PoseEstimator``,
``build_model``, ``load_checkpoint``... Its names load on first use, and with them the task
packages (:mod:`humanpose.pose`, :mod:`humanpose.detection`), which register themselves with
the engine, so ``import humanpose`` alone never imports torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = [
    "MIN_TORCH",
    "CheckpointError",
    "ConfigError",
    "Person",
    "PoseEstimator",
    "PoseModel",
    "PoseTracker",
    "Results",
    "build_dataset",
    "build_model",
    "get_cfg",
    "load_checkpoint",
    "load_pretrained",
]

# Public name → (module that defines it, whether it needs PyTorch).
_HOMES = {
    "ConfigError": ("humanpose.config", False),
    "get_cfg": ("humanpose.config", False),
    "Person": ("humanpose.runtime.results", False),
    "Results": ("humanpose.runtime.results", False),
    "PoseModel": ("humanpose.runtime.model", False),
    "PoseTracker": ("humanpose.inference.tracking", False),
    "MIN_TORCH": ("humanpose.compat", True),
    "CheckpointError": ("humanpose.checkpoint", True),
    "load_checkpoint": ("humanpose.checkpoint", True),
    "load_pretrained": ("humanpose.checkpoint", True),
    "build_dataset": ("humanpose.data", True),
    "build_model": ("humanpose.models", True),
    "PoseEstimator": ("humanpose.inference.estimator", True),
}


def load_torch_side() -> None:
    """Import the PyTorch side: the torch version check and the task packages, which
    register their models and tasks (a model name the engine does not know otherwise)."""
    from humanpose.compat import require_torch

    require_torch()
    importlib.import_module("humanpose.pose")
    importlib.import_module("humanpose.detection")


def __getattr__(name: str):
    if name in _HOMES:
        module, needs_torch = _HOMES[name]
        if needs_torch:
            load_torch_side()
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
