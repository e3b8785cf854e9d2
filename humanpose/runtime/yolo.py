"""YOLO-family ONNX detectors as person detectors, in NumPy and ONNX Runtime (no torch).

:class:`YoloOnnxDetector` runs detectors exported by the YOLO family (Ultralytics YOLOv5,
YOLOv8, YOLOv10, YOLO26 and their relatives): RGB input scaled to [0, 1], letterboxed with
grey (114) to the model's input size. The first output has one of three layouts:

- ``yolov8``: ``(1, 4 + classes, N)``, box centre x, y, width, height in input pixels, then
  one score per class;
- ``yolov5``: ``(1, N, 5 + classes)``, box, objectness, class scores (score = objectness ×
  class score);
- ``end2end``: ``(1, N, 6)`` or ``(1, 6, N)``, rows ``x1 y1 x2 y2 score class`` in input
  pixels, NMS already applied (YOLOv10 / YOLO26 heads and ``export(nms=True)``; unused rows
  are zeros).

A 6-wide output fits two layouts (``end2end``, or YOLOv5 with one class / YOLOv8 with two),
so the metadata Ultralytics writes in the file decides: ``end2end`` (``True`` for end-to-end
heads), ``args`` (``'nms': True`` for ``export(nms=True)``) and ``names`` (the class count).
Without such metadata, a 6-wide output of at most :data:`MAX_END2END_ROWS` rows is read as
end-to-end (with a note): a raw YOLOv5/v8 grid has thousands of anchors at any usual input
size (8,400 at 640x640, 2,100 even at 320x320). Longer 6-wide outputs are refused rather
than guessed. Only the person class (0 in COCO order) is kept, NMS removes duplicates and
boxes are mapped back to the image.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path

import numpy as np

from humanpose.errors import HumanposeError
from humanpose.inference.detector import Detections
from humanpose.runtime.boxes import DecodeParams, image_detections, letterbox, xyxy_to_xywh
from humanpose.runtime.sessions import default_threads

__all__ = ["ACCEPTED_LAYOUTS", "LAYOUTS", "MAX_END2END_ROWS", "YoloOnnxDetector",
           "parse_yolo_output", "yolo_layout", "yolo_metadata"]

YOLO_PAD = 114
DEFAULT_YOLO_SIZE = 640  # input size used when the file leaves it dynamic
# A raw YOLO grid has (size/8)^2 + (size/16)^2 + (size/32)^2 anchors (x3 for YOLOv5): at
# least 1,344 even at a 256x256 input, while end-to-end heads keep max_det rows (300).
MAX_END2END_ROWS = 1000
LAYOUTS = ("auto", "yolov8", "yolov5", "end2end")
ACCEPTED_LAYOUTS = ("(1, 4 + classes, N) (YOLOv8 layout), (1, N, 5 + classes) (YOLOv5 layout), "
                    "(1, N, 6) or (1, 6, N) (end-to-end rows x1 y1 x2 y2 score class: YOLOv10, "
                    "YOLO26, export(nms=True))")


def _session(path: Path, threads: int | None):
    if importlib.util.find_spec("onnxruntime") is None:
        raise HumanposeError(f"running the ONNX detector {path} needs onnxruntime: "
                             "pip install 'humanpose[onnx]'")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # protobuf parse errors, unsupported operators...
        raise HumanposeError(f"{path}: not a valid ONNX model ({type(err).__name__}: "
                             f"{str(err).strip()[:300]})") from err


def _check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise HumanposeError(f"detector file not found: {path}")
    return path


def _literal(text: str | None):
    """A Python literal written by Ultralytics' ``str(value)`` metadata (dicts, lists,
    booleans); ``None`` when absent or not a literal. Parsed, never evaluated."""
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def yolo_metadata(metadata: dict[str, str]) -> tuple[bool | None, int | None]:
    """(end-to-end?, class count) from an Ultralytics ONNX file's metadata; ``None`` where the
    metadata does not say. End-to-end: the ``end2end`` key (end-to-end heads) or ``'nms':
    True`` in ``args`` (``export(nms=True)``); classes: the length of ``names``."""
    end2end = _literal(metadata.get("end2end"))
    args = _literal(metadata.get("args"))
    nms_export = args.get("nms") if isinstance(args, dict) else None
    flags = [v for v in (end2end, nms_export) if isinstance(v, bool)]
    names = _literal(metadata.get("names"))
    classes = len(names) if isinstance(names, (dict, list)) and names else None
    return (any(flags) if flags else None), classes


def yolo_layout(shape, source: str = "YOLO output", end2end: bool | None = None,
                classes: int | None = None) -> str:
    """The layout (``yolov8``, ``yolov5`` or ``end2end``) of a YOLO output of ``shape``.

    Raw heads: the attributes are the shorter axis (a handful to 85, against thousands of
    anchors). ``end2end`` and ``classes`` (from :func:`yolo_metadata`) settle the shapes that
    fit more than one layout; without them such a shape is refused, never guessed.
    """
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or shape[0] != 1:
        raise HumanposeError(f"{source} has shape {shape}; expected {ACCEPTED_LAYOUTS}")
    a, b = shape[1], shape[2]
    fits = {
        "yolov8": 5 <= a < b and (classes is None or a == 4 + classes),
        "yolov5": 6 <= b < a and (classes is None or b == 5 + classes),
        "end2end": 6 in (a, b),
    }
    if end2end is not None:  # the file says which it is
        fits = {k: v and (k == "end2end") == end2end for k, v in fits.items()}
    found = [k for k, v in fits.items() if v]
    if len(found) == 1:
        return found[0]
    if "end2end" in found and end2end is None and classes is None and (
            (a if b == 6 else b) <= MAX_END2END_ROWS):
        print(f"humanpose: note: {source} has shape {shape} and no metadata saying its layout; "
              f"read as end-to-end rows (x1 y1 x2 y2 score class): a raw YOLO grid has "
              f"more than {MAX_END2END_ROWS} rows")
        return "end2end"
    if not found:
        said = "" if end2end is None and classes is None else (
            f" (its metadata says end2end={end2end}, {classes} classes)")
        raise HumanposeError(f"{source} has shape {shape}{said}; expected {ACCEPTED_LAYOUTS}")
    raise HumanposeError(
        f"{source} has shape {shape}, which fits more than one layout ({', '.join(found)}), "
        "and the file's metadata does not say which (no Ultralytics 'end2end', 'args' nms or "
        "'names' entries); re-export it with Ultralytics, or pass layout= to "
        "YoloOnnxDetector")


def parse_yolo_output(output: np.ndarray, layout: str, class_id: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` (x1, y1, x2, y2, input pixels) and scores ``(N,)`` of one class from
    a raw YOLO output ``(1, 4 + C, N)`` (``yolov8``), ``(1, N, 5 + C)`` (``yolov5``), or the
    rows of that class in an ``end2end`` output ``(1, N, 6)`` / ``(1, 6, N)``."""
    output = np.asarray(output, dtype=np.float32)[0]
    if layout == "end2end":
        rows = output if output.shape[1] == 6 else output.T  # (N, 6)
        rows = rows[np.rint(rows[:, 5]) == class_id]
        return rows[:, :4], rows[:, 4]
    if layout == "yolov8":
        rows = output.T  # (N, 4 + C)
        scores = rows[:, 4 + class_id]
    elif layout == "yolov5":
        rows = output
        scores = rows[:, 4] * rows[:, 5 + class_id]
    else:
        raise ValueError(f"layout must be 'yolov8', 'yolov5' or 'end2end', got {layout!r}")
    centre, size = rows[:, :2], rows[:, 2:4]
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1), scores


class YoloOnnxDetector:
    """A YOLO-family ONNX detector as a :class:`~humanpose.inference.detector.PersonDetector`.

    ``class_id`` is the person class (0 for COCO-trained models); ``layout`` is ``auto``
    (from the output's shape and the file's metadata) or ``yolov8``/``yolov5``/``end2end``
    for a file whose shape is ambiguous and that has no metadata to say. The constructor
    checks the file: one image input ``(1, 3, H, W)`` and a detection output of one of the
    layouts, found by running the model once.
    """

    def __init__(self, path: str | os.PathLike, min_score: float = 0.3,
                 nms_threshold: float = 0.5, max_detections: int = 100, class_id: int = 0,
                 layout: str = "auto", threads: int | None = None):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.path = _check_file(path)
        self.params = DecodeParams(max_detections=int(max_detections),
                                   score_threshold=float(min_score),
                                   nms_threshold=float(nms_threshold))
        self.class_id = int(class_id)
        self.session = _session(self.path, threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise HumanposeError(f"{self.path}: a YOLO detector has one image input, this "
                                 f"model has {len(inputs)}: {[i.name for i in inputs]}")
        shape = list(inputs[0].shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise HumanposeError(f"{self.path}: input {inputs[0].name!r} has shape {shape}; "
                                 "expected an image batch (1, 3, height, width)")
        if "float" not in inputs[0].type:
            raise HumanposeError(f"{self.path}: input {inputs[0].name!r} is {inputs[0].type}; "
                                 "expected float pixels in [0, 1]")
        self.input_name = inputs[0].name
        metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        end2end, classes = yolo_metadata(metadata)
        imgsz = _literal(metadata.get("imgsz"))  # Ultralytics: [height, width]
        if not (isinstance(imgsz, list) and len(imgsz) == 2
                and all(isinstance(v, int) and v > 0 for v in imgsz)):
            imgsz = [DEFAULT_YOLO_SIZE, DEFAULT_YOLO_SIZE]
        self.input_size = tuple(v if isinstance(v, int) and v > 0 else default
                                for v, default in zip((shape[3], shape[2]), imgsz[::-1]))
        probe = np.zeros((1, 3, self.input_size[1], self.input_size[0]), np.float32)
        try:
            output = self.session.run(None, {self.input_name: probe})[0]
        except Exception as err:
            raise HumanposeError(f"{self.path}: the model fails on a (1, 3, "
                                 f"{self.input_size[1]}, {self.input_size[0]}) input: "
                                 f"{str(err).strip()[:300]}") from err
        source = f"{self.path}: output {self.session.get_outputs()[0].name!r}"
        self.layout = (yolo_layout(output.shape, source, end2end, classes) if layout == "auto"
                       else layout)
        if self.layout == "yolov8":
            classes = output.shape[1] - 4
        elif self.layout == "yolov5":
            classes = output.shape[2] - 5
        if classes is not None and not 0 <= self.class_id < classes:
            raise HumanposeError(f"{source} scores {classes} classes; person class "
                                 f"{self.class_id} is not among them")

    def __call__(self, image: np.ndarray, image_id: int | None = None,
                 file_name: str | None = None) -> Detections:
        canvas, scale, offset = letterbox(image, self.input_size, YOLO_PAD)
        x = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        output = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        boxes, scores = parse_yolo_output(output, self.layout, self.class_id)
        h, w = image.shape[:2]
        boxes, scores = image_detections(boxes, scores, scale, offset, (w, h), self.params)
        return Detections(xyxy_to_xywh(boxes), scores)
