"""ONNX export of our detector: :func:`humanpose.export.export_onnx` (input ``input``
``(N, 3, H, W)``, output ``(N, 5, H/4, W/4)``) plus the model's configuration in the file's
metadata under :data:`METADATA_KEY`, so that the file alone is a complete detector.

YOLO-family ONNX detectors run in the torch-free runtime (:mod:`humanpose.runtime.yolo`);
their names are importable from here too.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

from torch import nn

from humanpose.errors import HumanposeError
from humanpose.runtime.detectors import DETECTOR_METADATA_KEY as METADATA_KEY
from humanpose.runtime.sessions import onnx_metadata
from humanpose.runtime.yolo import (
    YoloOnnxDetector,
    parse_yolo_output,
    yolo_layout,
    yolo_metadata,
)

__all__ = ["METADATA_KEY", "YoloOnnxDetector", "export_detector_onnx", "onnx_metadata",
           "parse_yolo_output", "yolo_layout", "yolo_metadata"]

def export_detector_onnx(model: nn.Module, cfg, path: str | os.PathLike, opset: int = 17,
                         dynamic_batch: bool = True, check: bool = True) -> float:
    """Write our detector as ONNX with its ``MODEL`` config in the metadata; returns the
    largest |ONNX − PyTorch| of the output maps on a random batch (``nan`` unchecked)."""
    if importlib.util.find_spec("onnx") is None:
        raise HumanposeError("exporting the detector needs the onnx package (its metadata "
                             "carries the config): pip install 'humanpose[onnx]'")
    import onnx

    from humanpose.export import export_onnx

    path = Path(path)
    difference = export_onnx(model, cfg, path, opset=opset, dynamic_batch=dynamic_batch,
                             check=check)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, cfg.MODEL.dump()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.meta.tmp")
    try:
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return difference


