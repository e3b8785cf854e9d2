"""The lightweight person detector: a heatmap network trained and tested by the engine.

``MODEL.NAME person_detector`` makes ``humanpose train``/``test`` build this package's data
set, network, loss and box evaluation (:class:`DetectionTask`). At inference,
:func:`build_person_detector` turns a ``--detector`` argument (our ``.pth``, an ``.onnx`` of
ours or of a YOLO-family detector, or a detections JSON) into a
:class:`~humanpose.inference.detector.PersonDetector`.
"""

from humanpose.detection.detectors import ModelDetector, build_person_detector
from humanpose.detection.model import DETECTOR_NAMES, PersonDetectorNet, build_detector
from humanpose.detection.onnx import YoloOnnxDetector, export_detector_onnx
from humanpose.detection.rtmdet import RTMDET_NAMES, RTMDetDetector, export_rtmdet_onnx
from humanpose.detection.task import DetectionTask
from humanpose.engine.task import register_task
from humanpose.models import MODEL_BUILDERS

# This package's networks join the one model registry; the detection task trains and tests
# our person detector (RTMDet runs at inference only).
MODEL_BUILDERS.update({name: build_detector for name in DETECTOR_NAMES})
register_task(DetectionTask(), ("person_detector",))

__all__ = [
    "DETECTOR_NAMES",
    "DetectionTask",
    "ModelDetector",
    "PersonDetectorNet",
    "RTMDET_NAMES",
    "RTMDetDetector",
    "YoloOnnxDetector",
    "build_detector",
    "build_person_detector",
    "export_detector_onnx",
    "export_rtmdet_onnx",
]
