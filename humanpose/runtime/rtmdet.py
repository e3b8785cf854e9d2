"""RTMDet person detectors at inference: mmdet 3.x's test pipeline, in NumPy (no torch).

The network (:mod:`humanpose.models.rtmdet`) returns mmdet's raw head outputs: per stride
(8, 16, 32) class logits ``(N, C, H/s, W/s)`` and box distances ``(N, 4, H/s, W/s)`` (left,
top, right, bottom, in input pixels: mmdet's head already applies ``exp`` when
``exp_on_reg`` and multiplies by the stride). Around it this module does what mmdet's
``inference_detector`` does with the person configs of mmpose's RTMPose project, so the
boxes are mmdet's:

* :func:`preprocess`: mmcv ``Resize(keep_ratio=True)`` (scale ``min(long/long, short/short)``,
  sizes rounded by ``int(x * s + 0.5)``, ``cv2.INTER_LINEAR``), ``Pad`` bottom-right with
  114 to the input size, then ``DetDataPreprocessor``: float32 ``(x - mean) / std`` with
  mean/std in BGR order and **no** BGR→RGB swap (``bgr_to_rgb=False``): the network sees BGR.
* :func:`decode`: priors at ``(col, row) * stride`` (``MlvlPointGenerator``, offset 0);
  sigmoid scores; per level, scores strictly above ``score_thr`` and the ``nms_pre`` best
  (``filter_scores_and_topk``); boxes = prior ∓ distances, clamped to the *padded* input
  shape (mmcv's ``Pad`` sets ``img_shape`` to the padded size); divided by the resize scale;
  boxes with width or height not above ``min_bbox_size`` (0) dropped; class-aware NMS
  (mmcv: IoU without the +1, suppress when IoU > ``iou_thr``); the ``max_per_img`` best.

Exported and run by the backends, the network is wrapped by :class:`RTMDetOutputs`: one
output ``detections`` ``(N, A, 4 + C)``, A = the priors of all levels in mmdet's order
(stride 8 first, row-major), columns = the 4 distances then the C class logits. One tensor
keeps the network a single-output model for every runner (PyTorch, ONNX Runtime, OpenVINO).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from humanpose.errors import HumanposeError
from humanpose.inference.detector import Detections, checked_bgr_image
from humanpose.runtime.boxes import greedy_nms, xyxy_to_xywh

__all__ = ["MEAN_BGR", "PAD_VALUE", "RTMDET_METADATA_KEY", "STD_BGR", "RTMDetDetector",
           "RTMDetMeta", "RTMDetParams", "batched_nms", "decode", "decode_flat", "preprocess",
           "resize_keep_ratio"]

# ONNX metadata key of an exported RTMDet; its value is RTMDetParams as JSON.
RTMDET_METADATA_KEY = "humanpose.person_detector.rtmdet"
# mmdet's data_preprocessor of every RTMDet config: BGR order, no channel swap.
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
PAD_VALUE = 114


@dataclass(frozen=True)
class RTMDetParams:
    """What pre- and post-processing need; the defaults are mmpose's person configs'
    ``test_cfg`` (``rtmdet_nano_320-8xb32_coco-person.py``, ``rtmdet_m_640-...``)."""

    input_size: tuple[int, int] = (320, 320)  # width, height
    mean: tuple[float, ...] = MEAN_BGR
    std: tuple[float, ...] = STD_BGR
    channel_order: str = "bgr"
    pad_value: int = PAD_VALUE
    strides: tuple[int, ...] = (8, 16, 32)
    num_classes: int = 1
    score_thr: float = 0.05
    nms_pre: int = 1000
    iou_thr: float = 0.6
    max_per_img: int = 100
    min_bbox_size: float = 0.0
    output: str = field(default="detections (N, A, 4 + C): l, t, r, b distances then C "
                                "logits per prior; priors stride 8 first, row-major")

    def __post_init__(self) -> None:
        if self.channel_order not in ("bgr", "rgb"):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"mean and std need 3 values, got {self.mean} and {self.std}")
        w, h = self.input_size
        if any(w % s or h % s for s in self.strides):
            raise ValueError(f"input size {self.input_size} must be a multiple of the strides "
                             f"{self.strides}")

    @classmethod
    def from_cfg(cls, cfg, num_classes: int | None = None) -> RTMDetParams:
        """From an experiment config: ``MODEL.IMAGE_SIZE`` and ``MODEL.EXTRA.DET_*``; the
        class count from ``MODEL.EXTRA.DET_NUM_CLASSES`` where the schema has it, else 1
        (mmpose's person detectors; mmdet's COCO ones have 80, person first)."""
        extra = cfg.MODEL.EXTRA
        if num_classes is None:
            num_classes = int(extra.get("DET_NUM_CLASSES", 1))
        return cls(input_size=tuple(int(v) for v in cfg.MODEL.IMAGE_SIZE),
                   num_classes=num_classes, score_thr=float(extra.DET_SCORE_THRE),
                   nms_pre=int(extra.DET_NMS_PRE), iou_thr=float(extra.DET_NMS_THRE),
                   max_per_img=int(extra.DET_MAX_DETECTIONS))

    def to_json(self) -> str:
        return json.dumps({"architecture": "rtmdet", **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "RTMDet metadata") -> RTMDetParams:
        try:
            data = json.loads(text)
            data.pop("architecture", None)
            for key in ("input_size", "mean", "std", "strides"):
                data[key] = tuple(data[key])
            return cls(**data)
        except (ValueError, TypeError, KeyError) as err:
            raise HumanposeError(f"{source}: not RTMDet settings this version of humanpose "
                                 f"reads: {err}") from err

    def with_overrides(self, score_thr: float | None = None, iou_thr: float | None = None,
                       max_per_img: int | None = None) -> RTMDetParams:
        """A copy with the given thresholds replaced (``None`` keeps the value)."""
        changes = {k: v for k, v in (("score_thr", score_thr), ("iou_thr", iou_thr),
                                     ("max_per_img", max_per_img)) if v is not None}
        return replace(self, **changes)


@dataclass(frozen=True)
class RTMDetMeta:
    """mmdet's image meta for one image: the resize factors ``(w_scale, h_scale)``, the
    padded input shape ``(H, W)`` (mmdet's ``img_shape`` after ``Pad``) and the original
    shape ``(h, w)``."""

    scale_factor: tuple[float, float]
    img_shape: tuple[int, int]
    ori_shape: tuple[int, int]


# ----------------------------------------------------------------------------- pre-processing
def resize_keep_ratio(image: np.ndarray, size: tuple[int, int]
                      ) -> tuple[np.ndarray, tuple[float, float]]:
    """mmcv's ``imrescale`` to fit ``size`` (w, h), and mmcv ``Resize``'s scale factors
    ``(new_w / w, new_h / h)`` (not the nominal scale: they differ by the rounding)."""
    h, w = image.shape[:2]
    scale = min(max(size) / max(h, w), min(size) / min(h, w))
    new_w, new_h = int(w * float(scale) + 0.5), int(h * float(scale) + 0.5)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return resized, (new_w / w, new_h / h)


def preprocess(image_bgr: np.ndarray, params: RTMDetParams = RTMDetParams()
               ) -> tuple[np.ndarray, RTMDetMeta]:
    """A uint8 BGR image ``(h, w, 3)`` → the network's input ``(1, 3, H, W)`` float32 and
    the meta that :func:`decode` needs to map boxes back."""
    image = checked_bgr_image(image_bgr)
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise HumanposeError(f"the detector got an empty image {image.shape}")
    width, height = params.input_size
    resized, scale_factor = resize_keep_ratio(image, (width, height))
    rh, rw = resized.shape[:2]
    if rh > height or rw > width:
        raise HumanposeError(f"a {w}x{h} image resized with its aspect ratio to {rw}x{rh} "
                             f"does not fit the input {width}x{height} (mmcv's Resize treats "
                             "the size as (long, short) edges; use a square input size)")
    canvas = np.full((height, width, 3), params.pad_value, dtype=np.uint8)
    canvas[:rh, :rw] = resized
    if params.channel_order == "rgb":
        canvas = canvas[:, :, ::-1]
    mean = np.asarray(params.mean, dtype=np.float32)
    std = np.asarray(params.std, dtype=np.float32)
    x = (canvas.astype(np.float32) - mean) / std
    return (np.ascontiguousarray(x.transpose(2, 0, 1)[None]),
            RTMDetMeta(scale_factor, (height, width), (h, w)))


# ----------------------------------------------------------------------------- decoding
def _as_numpy(x) -> np.ndarray:
    if type(x).__module__.startswith("torch"):  # a runner of the PyTorch side
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _priors(height: int, width: int, stride: int) -> np.ndarray:
    """``(H * W, 2)`` points (x, y) = (col, row) * stride, row-major (offset 0)."""
    xs = np.arange(width, dtype=np.float32) * stride
    ys = np.arange(height, dtype=np.float32) * stride
    return np.stack([np.tile(xs, height), np.repeat(ys, width)], axis=1)


def _decode_levels(levels: list[tuple[np.ndarray, np.ndarray]], strides, meta: RTMDetMeta,
                   score_thr: float, nms_pre: int, iou_thr: float, max_per_img: int,
                   min_bbox_size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``levels``: per stride, ``(distances (HW, 4), logits (HW, C))`` in prior order, and
    the level's ``(H, W)`` inside ``strides`` as ``(stride, H, W)``."""
    all_boxes, all_scores, all_labels = [], [], []
    for (distances, logits), (stride, height, width) in zip(levels, strides):
        scores = _sigmoid(logits)
        prior_idx, labels = np.nonzero(scores > score_thr)  # row-major: prior, then class
        kept = scores[prior_idx, labels]
        order = np.argsort(-kept, kind="stable")
        if nms_pre > 0:
            order = order[:nms_pre]
        prior_idx, labels, kept = prior_idx[order], labels[order], kept[order]
        points = _priors(height, width, stride)[prior_idx]
        d = distances[prior_idx]
        all_boxes.append(np.concatenate([points - d[:, :2], points + d[:, 2:]], axis=1))
        all_scores.append(kept)
        all_labels.append(labels)
    boxes = np.concatenate(all_boxes).astype(np.float32)
    scores = np.concatenate(all_scores).astype(np.float32)
    labels = np.concatenate(all_labels).astype(np.int64)
    pad_h, pad_w = meta.img_shape
    np.clip(boxes[:, 0::2], 0, pad_w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, pad_h, out=boxes[:, 1::2])
    w_scale, h_scale = meta.scale_factor
    boxes *= np.array([1 / w_scale, 1 / h_scale] * 2, dtype=np.float32)
    if min_bbox_size >= 0:
        valid = ((boxes[:, 2] - boxes[:, 0] > min_bbox_size)
                 & (boxes[:, 3] - boxes[:, 1] > min_bbox_size))
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
    keep = batched_nms(boxes, scores, labels, iou_thr, max_per_img)
    return boxes[keep], scores[keep], labels[keep]


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_thr: float,
                max_output: int | None = None) -> np.ndarray:
    """Class-aware greedy NMS as mmcv's ``batched_nms``: boxes of different classes are
    moved apart by ``label * (max coordinate + 1)`` so that they never overlap."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    shifted = boxes.astype(np.float64)
    if labels.max() > 0:
        shifted = shifted + (labels * (shifted.max() + 1.0))[:, None]
    return greedy_nms(shifted, scores, iou_thr, max_output)


def decode(cls_scores, bbox_preds, meta: RTMDetMeta, score_thr: float = 0.05,
           nms_pre: int = 1000, iou_thr: float = 0.6, max_per_img: int = 100,
           min_bbox_size: float = 0.0, strides=(8, 16, 32), index: int = 0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mmdet's ``predict_by_feat`` (rescale=True) for image ``index`` of the raw outputs:
    boxes ``(K, 4)`` (x1, y1, x2, y2, original image pixels), scores ``(K,)`` and class
    labels ``(K,)``, best score first."""
    if len(cls_scores) != len(bbox_preds) or len(cls_scores) != len(strides):
        raise ValueError(f"{len(cls_scores)} class maps, {len(bbox_preds)} box maps and "
                         f"strides {tuple(strides)}: expected one of each per stride")
    levels, shapes = [], []
    for cls, reg, stride in zip(cls_scores, bbox_preds, strides):
        cls, reg = _as_numpy(cls)[index], _as_numpy(reg)[index]
        if cls.shape[1:] != reg.shape[1:] or reg.shape[0] != 4:
            raise ValueError(f"stride {stride}: class map {cls.shape} and box map {reg.shape} "
                             "do not match (C, H, W) and (4, H, W)")
        levels.append((reg.reshape(4, -1).T, cls.reshape(cls.shape[0], -1).T))
        shapes.append((int(stride), cls.shape[1], cls.shape[2]))
    return _decode_levels(levels, shapes, meta, score_thr, nms_pre, iou_thr, max_per_img,
                          min_bbox_size)


def decode_flat(detections, meta: RTMDetMeta, params: RTMDetParams, index: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`decode` of :class:`RTMDetOutputs`' ``(N, A, 4 + C)`` output."""
    flat = _as_numpy(detections)[index]
    pad_h, pad_w = meta.img_shape
    shapes = [(s, -(-pad_h // s), -(-pad_w // s)) for s in params.strides]
    sizes = [h * w for _, h, w in shapes]
    if flat.ndim != 2 or flat.shape[0] != sum(sizes) or flat.shape[1] != 4 + params.num_classes:
        raise HumanposeError(f"RTMDet output has shape {flat.shape}; expected "
                             f"({sum(sizes)}, {4 + params.num_classes}) for a {pad_w}x{pad_h} "
                             f"input, strides {params.strides}, {params.num_classes} classes")
    starts = np.cumsum([0] + sizes)
    levels = [(flat[a:b, :4], flat[a:b, 4:]) for a, b in zip(starts[:-1], starts[1:])]
    return _decode_levels(levels, shapes, meta, params.score_thr, params.nms_pre,
                          params.iou_thr, params.max_per_img, params.min_bbox_size)


# ----------------------------------------------------------------------------- detector
class RTMDetDetector:
    """An RTMDet network as a :class:`~humanpose.inference.detector.PersonDetector`.

    ``runner`` maps the ``(1, 3, H, W)`` input of :func:`preprocess` to the
    ``(1, A, 4 + C)`` output of :class:`RTMDetOutputs` (a :mod:`humanpose.inference.backends`
    runner, or the wrapped module itself). :meth:`detect` returns exactly mmdet's boxes;
    calling the detector keeps class ``class_id`` scoring above ``min_score`` (the boxes a
    pose model should see; mmpose's demos keep scores > 0.3).
    """

    def __init__(self, runner, params: RTMDetParams, min_score: float = 0.0,
                 class_id: int = 0):
        if not 0 <= class_id < params.num_classes:
            raise HumanposeError(f"class {class_id} is not among the detector's "
                                 f"{params.num_classes} classes")
        self.runner = runner
        self.params = params
        self.min_score = float(min_score)
        self.class_id = int(class_id)

    @property
    def backend(self) -> str:
        return getattr(self.runner, "name", type(self.runner).__name__)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """mmdet's result for one BGR image: boxes (x1, y1, x2, y2), scores, labels."""
        x, meta = preprocess(image, self.params)
        return decode_flat(self.runner(x), meta, self.params)

    def __call__(self, image: np.ndarray, image_id: int | None = None,
                 file_name: str | None = None) -> Detections:
        image = np.asarray(image)
        if image.ndim == 3 and (image.shape[0] == 0 or image.shape[1] == 0):
            return Detections.empty()
        boxes, scores, labels = self.detect(image)
        keep = (labels == self.class_id) & (scores > self.min_score)
        return Detections(xyxy_to_xywh(boxes[keep]), scores[keep])
