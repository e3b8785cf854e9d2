"""Inference: whole images (and video) in, people with key points out.

:class:`PoseEstimator` is the entry point; :mod:`~humanpose.inference.backends` runs the
network (PyTorch, ONNX Runtime, OpenVINO), :mod:`~humanpose.inference.detector` supplies
person boxes, :mod:`~humanpose.inference.sources` reads frames and
:mod:`~humanpose.inference.video` runs over a source; :class:`PoseTracker` gives people ids
across frames and :class:`KeypointSmoother` steadies their key points.
"""

from humanpose.inference.backends import BACKENDS, available_backends
from humanpose.inference.detector import (
    Detections,
    DetectionsFile,
    PersonDetector,
    WholeImageDetector,
)
from humanpose.inference.estimator import Person, PoseEstimator, keypoint_set_for
from humanpose.inference.smoothing import KeypointSmoother
from humanpose.inference.tracking import PoseTracker

__all__ = [
    "BACKENDS",
    "Detections",
    "DetectionsFile",
    "KeypointSmoother",
    "Person",
    "PersonDetector",
    "PoseEstimator",
    "PoseTracker",
    "WholeImageDetector",
    "available_backends",
    "keypoint_set_for",
]
