"""The runtime: pose estimation from ONNX files with NumPy, OpenCV, ONNX Runtime and
OpenVINO, never PyTorch.

:class:`PoseModel` runs a model (``PoseModel("m.onnx")(image)`` → :class:`Results`);
:mod:`~humanpose.runtime.topdown` is the top-down pipeline it shares with the PyTorch
side's ``PoseEstimator``; :mod:`~humanpose.runtime.sessions` runs ONNX files. The
torch-free modules of :mod:`humanpose.inference` (detector, sources, tracking, smoothing,
display, video) and the codecs belong to this layer too; tests/test_layers.py checks that
none of them imports torch.
"""

from humanpose.runtime.model import PoseModel
from humanpose.runtime.results import Person, Results

__all__ = ["Person", "PoseModel", "Results"]
