"""Inference: whole images (and video) in, people with key points out.

:class:`PoseEstimator` is the entry point; :mod:`~humanpose.inference.backends` runs the
network (PyTorch, ONNX Runtime, OpenVINO), :mod:`~humanpose.inference.detector` supplies
person boxes, :mod:`~humanpose.inference.sources` reads frames and
:mod:`~humanpose.inference.video` carries people from frame to frame.
"""

from humanpose.inference.backends import BACKENDS, available_backends
from humanpose.inference.detector import (
    Detections,
    DetectionsFile,
    PersonDetector,
    WholeImageDetector,
)
from humanpose.inference.estimator import Person, PoseEstimator, keypoint_set_for

__all__ = [
    "BACKENDS",
    "Detections",
    "DetectionsFile",
    "Person",
    "PersonDetector",
    "PoseEstimator",
    "WholeImageDetector",
    "available_backends",
    "keypoint_set_for",
]
