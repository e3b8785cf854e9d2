"""Inference: whole images (and video) in, people with key points out.

:class:`PoseEstimator` is the PyTorch-side entry point (any backend, ``.pth`` weights),
:class:`OneStageEstimator` its one-stage (RTMO, no detector) counterpart;
:mod:`~humanpose.inference.backends` runs the network (PyTorch, ONNX Runtime, OpenVINO),
:mod:`~humanpose.inference.detector` supplies person boxes,
:mod:`~humanpose.inference.sources` reads frames and :mod:`~humanpose.inference.video` runs
over a source; :class:`PoseTracker` gives people ids across frames and
:class:`KeypointSmoother` steadies their key points. Names load on first use: the
torch-free modules here (detector, sources, tracking, smoothing, display, video) serve the
runtime (:mod:`humanpose.runtime`) without importing PyTorch.
"""

from __future__ import annotations

import importlib

__all__ = [
    "BACKENDS",
    "Detections",
    "DetectionsFile",
    "KeypointSmoother",
    "OneStageEstimator",
    "Person",
    "PersonDetector",
    "PoseEstimator",
    "PoseTracker",
    "WholeImageDetector",
    "available_backends",
    "keypoint_set_for",
]

# Public name → the module that defines it.
_HOMES = {
    "BACKENDS": "humanpose.inference.backends",
    "available_backends": "humanpose.inference.backends",
    "Detections": "humanpose.inference.detector",
    "DetectionsFile": "humanpose.inference.detector",
    "PersonDetector": "humanpose.inference.detector",
    "WholeImageDetector": "humanpose.inference.detector",
    "Person": "humanpose.runtime.results",
    "PoseEstimator": "humanpose.inference.estimator",
    "OneStageEstimator": "humanpose.inference.one_stage",
    "keypoint_set_for": "humanpose.inference.estimator",
    "KeypointSmoother": "humanpose.inference.smoothing",
    "PoseTracker": "humanpose.inference.tracking",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
