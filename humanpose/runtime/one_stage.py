"""One-stage pose models (RTMO): every person of a frame, box and key points, from one run
of the network on the whole frame. No person detector, and a cost that does not grow with
the number of people.

:class:`OneStage` is the pipeline around the network (:mod:`humanpose.runtime.rtmo`'s
pre-processing and decoding, mmpose's), the same for every way of running the network;
:class:`OneStageModel` runs an ONNX file without PyTorch, the PyTorch side
(:class:`humanpose.inference.one_stage.OneStageEstimator`) a checkpoint. Both give the
:class:`~humanpose.runtime.results.Person` objects the top-down models give, so results
files, tracking and drawing take them unchanged.

ONNX files: ``humanpose export`` writes one output ``detections`` ``(N, topk, 5 + 3K)``
(see :mod:`humanpose.models.rtmo`) and the settings under :data:`ONE_STAGE_KEY`; an mmdeploy
RTMO file (the ones rtmlib runs) has two, ``dets`` ``(N, D, 5)`` and ``keypoints``
``(N, D, K, 3)``, in input pixels; both are read.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humanpose.data.keypoints import COCO, KeypointSet, custom_keypoint_set, keypoint_set_from_dict
from humanpose.errors import HumanposeError
from humanpose.runtime.results import Person, Results
from humanpose.runtime.rtmo import decode, preprocess
from humanpose.runtime.sessions import default_threads, onnx_metadata, resolve_device
from humanpose.runtime.topdown import Timing, TopDown, as_bgr_uint8

__all__ = ["ONE_STAGE_KEY", "OneStage", "OneStageInfo", "OneStageModel", "is_one_stage_onnx",
           "one_stage_layout",
           "one_stage_info", "rows_of"]

ONE_STAGE_KEY = "humanpose.one_stage"  # the export's settings: kind, input size, thresholds
KEYPOINTS_KEY = "humanpose_keypoints"  # as export.py writes it for every pose file
ROWS, MMDEPLOY = "rows", "mmdeploy"  # the two output layouts read


@dataclass(frozen=True)
class OneStageInfo:
    """What running a one-stage ONNX file needs: the input size (w, h), mmpose's score and
    NMS thresholds, the key-point set and which output ``layout`` the file has."""

    input_size: tuple[int, int]
    score_thr: float
    nms_thr: float
    keypoint_set: KeypointSet
    layout: str
    source: str


def _shapes(path: Path) -> tuple[list, list[list]]:
    from humanpose.runtime.sessions import OnnxRuntimeSession

    session = OnnxRuntimeSession(path, threads=1).session
    return session.get_inputs()[0].shape, [o.shape for o in session.get_outputs()]


def one_stage_layout(outputs: list[list]) -> tuple[str, int] | None:
    """(layout, key points) of outputs that look like RTMO's, else None."""
    if len(outputs) == 1 and len(outputs[0]) == 3 and isinstance(outputs[0][2], int) \
            and outputs[0][2] > 5 and (outputs[0][2] - 5) % 3 == 0:
        return ROWS, (outputs[0][2] - 5) // 3
    if len(outputs) == 2 and len(outputs[0]) == 3 and len(outputs[1]) == 4 \
            and outputs[0][2] == 5 and outputs[1][3] == 3 and isinstance(outputs[1][2], int):
        return MMDEPLOY, outputs[1][2]
    return None


def is_one_stage_onnx(path: str | os.PathLike) -> bool:
    """Whether the ONNX file ``path`` is a one-stage model (by its metadata or outputs)."""
    if ONE_STAGE_KEY in onnx_metadata(path):
        return True
    return one_stage_layout(_shapes(Path(path))[1]) is not None


def one_stage_info(path: str | os.PathLike) -> OneStageInfo:
    """How to run the one-stage ONNX file ``path``: its metadata when humanpose wrote it,
    else its shapes with mmpose's RTMO test settings (score 0.1, NMS 0.65)."""
    path = Path(path)
    metadata = onnx_metadata(path)
    inputs, outputs = _shapes(path)
    found = one_stage_layout(outputs)
    if found is None and ONE_STAGE_KEY in metadata and len(outputs) == 1:
        found = (ROWS, _joints_of(metadata, path))  # our export: the row width is symbolic
    if found is None:
        raise HumanposeError(f"{path}: outputs {outputs} are not a one-stage model's (RTMO: "
                             "(N, topk, 5 + 3K), or mmdeploy's dets (N, D, 5) and keypoints "
                             "(N, D, K, 3))")
    layout, joints = found
    if ONE_STAGE_KEY in metadata:
        try:
            settings = json.loads(metadata[ONE_STAGE_KEY])
            size = tuple(int(v) for v in settings["input_size"])
            score_thr, nms_thr = float(settings["score_thr"]), float(settings["nms_thr"])
        except (ValueError, KeyError, TypeError) as err:
            raise HumanposeError(f"{path}: metadata {ONE_STAGE_KEY} is not valid: {err}"
                                 ) from err
        source = "humanpose metadata"
    else:
        if len(inputs) != 4 or not all(isinstance(d, int) for d in inputs[2:]):
            raise HumanposeError(f"{path}: expected an input (N, 3, H, W) with fixed H and W, "
                                 f"got {inputs}")
        size, score_thr, nms_thr = (inputs[3], inputs[2]), 0.1, 0.65
        source = "output shapes (mmpose's RTMO test settings)"
    if KEYPOINTS_KEY in metadata:
        keypoints = keypoint_set_from_dict(json.loads(metadata[KEYPOINTS_KEY]))
    else:
        keypoints = COCO if joints == COCO.num_joints else custom_keypoint_set(joints)
    return OneStageInfo(size, score_thr, nms_thr, keypoints, layout, source)


def _joints_of(metadata: dict, path: Path) -> int:
    import yaml

    try:
        return int(yaml.safe_load(metadata["humanpose.model_cfg"])["NUM_JOINTS"])
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        raise HumanposeError(f"{path}: metadata humanpose.model_cfg gives no NUM_JOINTS ({err})"
                             ) from err


def rows_of(outputs: Sequence[np.ndarray], layout: str) -> np.ndarray:
    """The first image's rows ``(A, 5 + 3K)`` (x1, y1, x2, y2, score, K x (x, y), K
    visibilities) from a network's outputs in ``layout``."""
    if layout == ROWS:
        return np.asarray(outputs[0])[0]
    dets, kpts = np.asarray(outputs[0])[0], np.asarray(outputs[1])[0]
    return np.concatenate([dets, kpts[..., :2].reshape(len(kpts), -1), kpts[..., 2]], axis=1)


class OneStage:
    """People from a whole frame (see the module docstring); a subclass sets the attributes
    below and gives :meth:`rows` (the ``(1, 3, h, w)`` BGR input → the first image's rows).

    ``input_size`` (w, h), ``score_thr`` and ``nms_thr`` (mmpose's test settings),
    ``keypoint_set``, ``min_score`` (people scoring lower are dropped), ``rgb`` (the channel
    order of the images passed in) and ``backend``.
    """

    one_stage = True  # FrameStep and the CLI run it without a person detector
    detector = None
    input_size: tuple[int, int]
    score_thr: float = 0.1
    nms_thr: float = 0.65
    keypoint_set: KeypointSet
    min_score: float = 0.0
    rgb: bool = False
    backend: str
    timing: Timing
    tracker = None
    smoother = None

    def rows(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def people(self, image: np.ndarray, rgb: bool | None = None) -> list[Person]:
        """The people of ``image`` (uint8 ``(H, W, 3)``, BGR unless ``rgb``), best first:
        box (x, y, w, h), box score (also the person score: mmpose's RTMO configs score
        people by their box), key points ``(K, 3)`` with their visibilities."""
        image = as_bgr_uint8(image)
        if (self.rgb if rgb is None else bool(rgb)):
            image = np.ascontiguousarray(image[:, :, ::-1])  # the network takes BGR
        if image.size == 0:
            self.timing = Timing()
            return []
        t0 = time.perf_counter()
        batch, meta = preprocess(image, self.input_size)
        t1 = time.perf_counter()
        rows = self.rows(batch)
        t2 = time.perf_counter()
        boxes, keypoints = decode(rows, meta, self.score_thr, self.nms_thr)
        t3 = time.perf_counter()
        self.timing = Timing((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, len(boxes))
        people = []
        for (x1, y1, x2, y2, score), kpts in zip(boxes.tolist(), keypoints):
            if score >= self.min_score:
                people.append(Person((x1, y1, x2 - x1, y2 - y1), score, kpts, score))
        return people

    def __call__(self, image: np.ndarray, boxes=None, box_scores=None, *,
                 image_id: int | None = None, file_name: str | None = None,
                 rgb: bool | None = None) -> list[Person]:
        """:meth:`people`; the top-down call's signature, but boxes are refused: a
        one-stage model finds the people itself."""
        if boxes is not None:
            raise HumanposeError(f"{type(self).__name__} is a one-stage model: it finds the "
                                 "people itself and takes no boxes (no --detector or "
                                 "--boxes)")
        return self.people(image, rgb)

    def track(self, image: np.ndarray, timestamp: float | None = None, *,
              image_id: int | None = None, file_name: str | None = None) -> list[Person]:
        """The people of the next video frame with their ``track_id`` (see
        :meth:`humanpose.runtime.topdown.TopDown.track`; here every frame is a detection)."""
        from humanpose.evaluation.nms import oks_sigmas
        from humanpose.inference.follow import follow_one_stage, smooth_people
        from humanpose.inference.smoothing import KeypointSmoother
        from humanpose.inference.tracking import PoseTracker

        if self.tracker is None:
            self.tracker = PoseTracker(oks_sigmas(self.keypoint_set))
        if self.smoother is None:
            self.smoother = KeypointSmoother()
        image = as_bgr_uint8(image)
        people = follow_one_stage(self.tracker, self.people(image), image)
        if self.smoother:
            smooth_people(self.smoother, people, timestamp)
        return people

    reset_tracking = TopDown.reset_tracking  # the same tracker and smoother attributes


class OneStageModel(OneStage):
    """A one-stage ONNX model (RTMO) with its pre- and post-processing, without PyTorch.

    ``OneStageModel("rtmo-s.onnx")(image)`` → :class:`Results`. ``backend``:
    ``onnxruntime``, ``openvino``, ``openvino-fp32`` or ``auto`` (the fastest here, timed
    once and cached); ``score_thr``/``nms_thr``: default the file's (mmpose's 0.1/0.65);
    ``min_score``: drop people scoring lower.
    """

    def __init__(self, model: str | os.PathLike, *, backend: str = "auto",
                 device: str = "cpu", threads: int | None = None,
                 score_thr: float | None = None, nms_thr: float | None = None,
                 min_score: float = 0.0, rgb: bool = False,
                 cache_dir: str | os.PathLike | None = None,
                 keypoint_set: KeypointSet | None = None):
        from humanpose.measured import default_cache_dir
        from humanpose.runtime.backend_choice import open_session
        from humanpose.zoo import fetch_onnx, is_zoo_name

        path = fetch_onnx(str(model)) if is_zoo_name(model) else Path(model)
        if path.suffix.lower() != ".onnx" or not path.is_file():
            raise HumanposeError(f"OneStageModel takes an existing .onnx file, got {model}")
        self.path = path
        self.info = one_stage_info(path)
        self.input_size = self.info.input_size
        self.score_thr = self.info.score_thr if score_thr is None else float(score_thr)
        self.nms_thr = self.info.nms_thr if nms_thr is None else float(nms_thr)
        self.keypoint_set = keypoint_set or self.info.keypoint_set
        self.min_score = min_score
        self.rgb = bool(rgb)
        self.device = resolve_device(device)
        self.threads = threads or default_threads()
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        w, h = self.input_size
        self.backend, self.backend_timings, self.session = open_session(
            path, backend, self.device, self.threads, cache, (1, 3, h, w))
        self.timing = Timing()

    def rows(self, batch: np.ndarray) -> np.ndarray:
        return rows_of(self.session(batch), self.info.layout)

    def __call__(self, image: np.ndarray | str | os.PathLike, boxes=None, box_scores=None, *,
                 image_id: int | None = None, file_name: str | None = None,
                 rgb: bool | None = None) -> Results:
        """The people of ``image`` (a BGR array, or an image file) as :class:`Results`."""
        if isinstance(image, (str, os.PathLike)):
            from humanpose.data.images import read_image

            image, rgb = read_image(str(image)), False
        people = super().__call__(image, boxes, box_scores, rgb=rgb)
        return Results(people, self.keypoint_set, as_bgr_uint8(image))

    def track(self, image, timestamp: float | None = None, *, image_id: int | None = None,
              file_name: str | None = None):
        """One frame (an array) → its tracked people; a source (video file, folder, webcam
        index, stream URL) → a generator of :class:`Results`, ids kept across frames."""
        if isinstance(image, np.ndarray):
            return super().track(image, timestamp)
        from humanpose.runtime.model import stream_results

        return stream_results(self, image)

    def __repr__(self) -> str:
        w, h = self.input_size
        return (f"OneStageModel({self.path.name} {w}x{h}, {self.keypoint_set.num_joints} key "
                f"points, backend={self.backend}, score > {self.score_thr:g}, NMS "
                f"{self.nms_thr:g})")

