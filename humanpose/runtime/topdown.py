"""Top-down pose estimation around any network: boxes → crops → outputs → key points.

Everything here is NumPy and OpenCV. :class:`TopDown` holds the pipeline that the
torch-free :class:`~humanpose.runtime.model.PoseModel` and the PyTorch
:class:`~humanpose.inference.estimator.PoseEstimator` share: boxes become centre/scale and
affine crops (the evaluation's geometry), the network's outputs (one method each subclass
gives) are decoded by the codec and mapped back to the image, people are scored as COCO
evaluation scores them, and video frames go through the tracker and smoother.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from humanpose.codecs import Codec, Outputs, average_outputs
from humanpose.data.geometry import (
    box_to_center_scale,
    get_affine_transform,
    get_udp_transform,
    transform_preds,
    warp_crop,
)
from humanpose.data.keypoints import KeypointSet
from humanpose.errors import HumanposeError
from humanpose.evaluation.coco import rescore
from humanpose.evaluation.nms import oks_sigmas
from humanpose.inference.detector import PersonDetector
from humanpose.inference.smoothing import KeypointSmoother
from humanpose.inference.tracking import PoseTracker, follow_people, smooth_people
from humanpose.runtime.results import Person

__all__ = ["Timing", "TopDown", "as_bgr_uint8", "crop_boxes", "decode_to_image",
           "flip_test_outputs"]

def crop_boxes(image: np.ndarray, boxes: np.ndarray, input_size: Sequence[int],
               udp: bool = False, swap_channels: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 crops ``(N, H, W, 3)`` of the boxes ``(N, 4)`` (x, y, w, h) and their centres
    and scales ``(N, 2)``: one affine warp per box, channels reversed when ``swap_channels``."""
    w, h = int(input_size[0]), int(input_size[1])
    n = len(boxes)
    crops = np.empty((n, h, w, 3), dtype=np.uint8)
    centers = np.empty((n, 2), dtype=np.float32)
    scales = np.empty((n, 2), dtype=np.float32)
    transform = get_udp_transform if udp else get_affine_transform
    for i, box in enumerate(boxes):
        centers[i], scales[i] = box_to_center_scale(box, w / h)
        crops[i] = warp_crop(image, transform(centers[i], scales[i], 0, (w, h)), (w, h))
    if swap_channels:
        crops = np.ascontiguousarray(crops[..., ::-1])
    return crops, centers, scales


def _split(outputs: Outputs, n: int) -> tuple[Outputs, Outputs]:
    if isinstance(outputs, tuple):
        return tuple(o[:n] for o in outputs), tuple(o[n:] for o in outputs)
    return outputs[:n], outputs[n:]


def flip_test_outputs(run: Callable[[np.ndarray], Outputs], inputs: np.ndarray, codec: Codec,
                      flip_pairs: Sequence[Sequence[int]] | None = None) -> Outputs:
    """The network's float32 outputs for normalised crops ``(N, 3, H, W)`` (NumPy); with
    ``flip_pairs`` the mirrored crops go through in the same batch and the codec maps their
    outputs back before the two are averaged (the PyTorch side's ``predict_outputs``)."""
    n = inputs.shape[0]
    batch = inputs if flip_pairs is None else np.concatenate([inputs, inputs[..., ::-1]])
    out = codec.network_outputs(run(batch))
    out = tuple(np.asarray(o, dtype=np.float32) for o in out) if isinstance(out, tuple) \
        else np.asarray(out, dtype=np.float32)
    if flip_pairs is None:
        return out
    plain, mirrored = _split(out, n)
    return average_outputs(plain, codec.flip_back(mirrored, flip_pairs))


def decode_to_image(codec: Codec, outputs: Outputs, centers: np.ndarray, scales: np.ndarray,
                    bias: float = 0.0) -> np.ndarray:
    """Key points ``(N, K, 3)`` (x, y, score) in image pixels: the codec's crop-pixel key
    points through the crop geometry (``bias``: the seed's ``TEST.BIAS``, in pixels)."""
    coords, scores = codec.decode(outputs)
    coords = transform_preds(coords, centers, scales, codec.input_size, udp=codec.udp) - bias
    return np.concatenate([coords, scores[..., None]], axis=2).astype(np.float32)


def as_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """A uint8 ``(H, W, 3)`` view of an image (grey images repeated, alpha dropped)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise HumanposeError(f"images must be uint8 arrays, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise HumanposeError(f"images must be (H, W, 3) arrays, got shape {image.shape}")
    return image[:, :, :3]


@dataclass
class Timing:
    """Milliseconds spent in the last call, by stage (``detect``: the detector, when the
    call gave no boxes)."""

    crop: float = 0.0
    model: float = 0.0
    decode: float = 0.0
    people: int = 0
    detect: float = 0.0

    @property
    def total(self) -> float:
        return self.detect + self.crop + self.model + self.decode


class TopDown:
    """The top-down pipeline; a subclass sets the attributes below and gives
    :meth:`outputs` (uint8 crops → the network's outputs, flip test included).

    ``codec``, ``keypoint_set``, ``image_size`` (w, h), ``flip_pairs`` (None: no flip
    test), ``rgb`` (the channel order of the images passed in), ``swap_channels`` (the
    network wants the other order), ``min_score``, ``in_vis_thre`` (the joints that count in
    the person score), ``bias`` (pixels subtracted from every key point) and ``detector``.
    """

    codec: Codec
    keypoint_set: KeypointSet
    image_size: tuple[int, int]
    flip_pairs: list[list[int]] | None
    rgb: bool = False
    swap_channels: bool = False
    min_score: float = 0.0
    in_vis_thre: float = 0.2
    bias: float = 0.0
    detector: PersonDetector
    timing: Timing
    tracker: PoseTracker | None = None
    smoother: KeypointSmoother | None = None

    def outputs(self, crops: np.ndarray) -> Outputs:
        raise NotImplementedError

    def crop(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
        """uint8 crops ``(N, H, W, 3)`` in the network's channel order, with the centres and
        scales ``(N, 2)`` of the boxes ``(N, 4)`` (x, y, w, h)."""
        return crop_boxes(image, boxes, self.image_size, self.codec.udp, self.swap_channels)

    def decode(self, outputs: Outputs, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Key points ``(N, K, 3)`` in image pixels, as evaluation decodes them."""
        return decode_to_image(self.codec, outputs, centers, scales, self.bias)

    def predict(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Key points ``(N, K, 3)`` for the boxes ``(N, 4)`` of a BGR (or ``rgb``) image."""
        if len(boxes) == 0:
            self.timing = Timing()
            return np.zeros((0, self.keypoint_set.num_joints, 3), dtype=np.float32)
        t0 = time.perf_counter()
        crops, centers, scales = self.crop(image, boxes)
        t1 = time.perf_counter()
        outputs = self.outputs(crops)
        t2 = time.perf_counter()
        keypoints = self.decode(outputs, centers, scales)
        t3 = time.perf_counter()
        self.timing = Timing((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, len(boxes))
        return keypoints

    def _in_channel_order(self, image: np.ndarray, rgb: bool | None) -> np.ndarray:
        """``image`` in the order ``self.rgb`` says, from the order ``rgb`` says it has."""
        if rgb is None or bool(rgb) == self.rgb:
            return image
        return np.ascontiguousarray(image[:, :, ::-1])

    def _detect(self, image: np.ndarray, image_id: int | None, file_name: str | None):
        # Detectors take BGR images, as OpenCV reads them.
        bgr = np.ascontiguousarray(image[:, :, ::-1]) if self.rgb else image
        ids = {k: v for k, v in (("image_id", image_id), ("file_name", file_name))
               if v is not None}  # plain ``f(image)`` callables keep working
        return self.detector(bgr, **ids)

    def __call__(self, image: np.ndarray, boxes: np.ndarray | Sequence | None = None,
                 box_scores: np.ndarray | Sequence | None = None, *,
                 image_id: int | None = None, file_name: str | None = None,
                 rgb: bool | None = None) -> list[Person]:
        """The people in ``image`` (uint8 ``(H, W, 3)``, BGR unless ``rgb``).

        ``boxes`` ``(N, 4)`` are (x, y, w, h) in pixels, ``box_scores`` their detection
        scores (default 1); without boxes the ``detector`` finds them (``image_id`` or
        ``file_name`` tell a detections file which image this is). ``rgb``: this image's
        channel order when it is not the one given at construction. No box, or an empty
        image, gives an empty list.
        """
        image = self._in_channel_order(as_bgr_uint8(image), rgb)
        if image.size == 0:
            self.timing = Timing()
            return []
        detect_ms = 0.0
        if boxes is None:
            start = time.perf_counter()
            detections = self._detect(image, image_id, file_name)
            boxes, box_scores = detections.boxes, detections.scores
            detect_ms = (time.perf_counter() - start) * 1000
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = (np.ones(len(boxes), dtype=np.float32) if box_scores is None
                  else np.asarray(box_scores, dtype=np.float32).reshape(-1))
        if len(scores) != len(boxes):
            raise HumanposeError(f"{len(boxes)} boxes but {len(scores)} box scores")
        if len(boxes) == 0:
            self.timing = Timing(detect=detect_ms)
            return []
        keypoints = self.predict(image, boxes)
        self.timing.detect = detect_ms
        person_scores = rescore(keypoints, scores, self.in_vis_thre)
        return [Person(tuple(float(v) for v in box), float(s), kp, float(ps))
                for box, s, kp, ps in zip(boxes, scores, keypoints, person_scores)
                if ps >= self.min_score]

    def track(self, image: np.ndarray, timestamp: float | None = None, *,
              image_id: int | None = None, file_name: str | None = None) -> list[Person]:
        """The people of the next video frame, each with a ``track_id`` that stays the same
        while the person stays in view (-1: not followed), key points smoothed per track.

        Call it on consecutive frames. The detector runs when the tracker asks (every 5
        frames, and when a track is lost); tracked boxes place the crops in between.
        ``timestamp``: the frame's time in seconds, for the smoother (default: 25 frames/s).
        The first call makes ``self.tracker`` (a :class:`PoseTracker` with this key-point
        set's sigmas) and ``self.smoother`` (a One-Euro :class:`KeypointSmoother`); set
        them before it to change their settings, ``self.smoother = False`` for raw key
        points; :meth:`reset_tracking` starts over (a new video).
        """
        image = as_bgr_uint8(image)
        if self.tracker is None:
            self.tracker = PoseTracker(oks_sigmas(self.keypoint_set))
        if self.smoother is None:
            self.smoother = KeypointSmoother()
        people = follow_people(self.tracker, self, image,
                               lambda: self._detect(image, image_id, file_name))
        if self.smoother:
            smooth_people(self.smoother, people, timestamp)
        return people

    def reset_tracking(self) -> None:
        """Forget the people followed by :meth:`track` (a new video or a scene cut)."""
        if self.tracker is not None:
            self.tracker.reset()
        if self.smoother:
            self.smoother = None

