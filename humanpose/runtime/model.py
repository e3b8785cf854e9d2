"""``PoseModel``: an ONNX pose model run without PyTorch.

``PoseModel("rtmpose_t.onnx")(image)`` → :class:`~humanpose.runtime.results.Results`.
A file that ``humanpose export`` wrote says in its metadata everything the model needs
(codec, input size, normalisation, channel order, key-point set, flip-test settings);
a file from elsewhere (mmdeploy's RTMPose exports, as rtmlib runs them) is read from its
outputs' shapes with mmpose's RTMPose pre-processing. The pipeline around the network is
:class:`~humanpose.runtime.topdown.TopDown`, the same code the PyTorch side runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from humanpose.codecs import Codec, HeatmapCodec, Outputs, SimCCCodec, codec_from_meta
from humanpose.data.keypoints import COCO, KeypointSet, custom_keypoint_set, keypoint_set_from_dict
from humanpose.data.normalize import IMAGENET_MEAN, IMAGENET_STD, normalize_crops
from humanpose.errors import HumanposeError
from humanpose.inference.detector import DetectionsFile, PersonDetector, WholeImageDetector
from humanpose.measured import default_cache_dir
from humanpose.runtime.backend_choice import open_session
from humanpose.runtime.results import Results
from humanpose.runtime.sessions import (
    Session,
    default_threads,
    onnx_metadata,
    resolve_device,
)
from humanpose.runtime.topdown import Timing, TopDown, as_bgr_uint8, flip_test_outputs

__all__ = ["ModelInfo", "PoseModel", "model_info", "stream_results"]

KEYPOINTS_KEY = "humanpose_keypoints"  # the key export.py writes the key-point set under
TEST_KEY = "humanpose.test"  # flip test, person-score threshold and bias of the export


class ModelInfo:
    """What running an ONNX pose file needs, from its metadata or its outputs' shapes."""

    def __init__(self, codec: Codec, keypoint_set: KeypointSet, mean: Sequence[float],
                 std: Sequence[float], network_rgb: bool, flip_test: bool = False,
                 in_vis_thre: float = 0.2, bias: float = 0.0, source: str = ""):
        self.codec = codec
        self.keypoint_set = keypoint_set
        self.mean = tuple(float(m) for m in mean)  # 0-1 units
        self.std = tuple(float(s) for s in std)
        self.network_rgb = network_rgb
        self.flip_test = flip_test
        self.in_vis_thre = in_vis_thre
        self.bias = bias
        self.source = source


def _json(metadata: dict, key: str, path: Path):
    try:
        return json.loads(metadata[key])
    except ValueError as err:
        raise HumanposeError(f"{path}: metadata {key} is not JSON: {err}") from err


def model_info(path: str | os.PathLike, session: Session | None = None) -> ModelInfo:
    """How to run the ONNX pose model ``path``: humanpose's metadata when it has it, else
    what its output shapes say (SimCC x/y vectors or heatmaps) with mmpose's RTMPose
    normalisation (ImageNet statistics, RGB) and, for 17 joints, COCO's key points."""
    path = Path(path)
    metadata = onnx_metadata(path)
    from humanpose.runtime.one_stage import ONE_STAGE_KEY

    if ONE_STAGE_KEY in metadata:
        _refuse_one_stage(path)
    if "humanpose.codec" in metadata:
        codec = codec_from_meta(_json(metadata, "humanpose.codec", path))
        pre = _json(metadata, "humanpose.preprocess", path) \
            if "humanpose.preprocess" in metadata else {}
        keypoints = (keypoint_set_from_dict(_json(metadata, KEYPOINTS_KEY, path),
                                            source=f"{path} ({KEYPOINTS_KEY})")
                     if KEYPOINTS_KEY in metadata else None)
        test = _json(metadata, TEST_KEY, path) if TEST_KEY in metadata else {}
        mean = [m / 255 for m in pre.get("mean", [v * 255 for v in IMAGENET_MEAN])]
        std = [s / 255 for s in pre.get("std", [v * 255 for v in IMAGENET_STD])]
        info = ModelInfo(codec, keypoints, mean, std, pre.get("channel_order", "rgb") == "rgb",
                         flip_test=bool(test.get("flip_test", False)),
                         in_vis_thre=float(test.get("in_vis_thre", 0.2)),
                         bias=float(test.get("bias", 0.0)), source="humanpose metadata")
    else:
        info = _info_from_shapes(path, session)
    if info.keypoint_set is None:
        k = _joint_count(path, session, metadata)
        info.keypoint_set = COCO if k == COCO.num_joints else custom_keypoint_set(k)
    return info


def _shapes(path: Path, session: Session | None):
    from humanpose.runtime.sessions import OnnxRuntimeSession

    if not isinstance(session, OnnxRuntimeSession):
        session = OnnxRuntimeSession(path, threads=1)
    inputs = session.session.get_inputs()[0].shape
    outputs = [o.shape for o in session.session.get_outputs()]
    return inputs, outputs


def _joint_count(path: Path, session: Session | None, metadata: dict) -> int:
    """The joints the model predicts: its config's NUM_JOINTS, else its outputs' fixed
    joint axis, else what one run on a blank input gives."""
    if "humanpose.model_cfg" in metadata:
        import yaml

        try:
            return int(yaml.safe_load(metadata["humanpose.model_cfg"])["NUM_JOINTS"])
        except (yaml.YAMLError, KeyError, TypeError, ValueError):
            pass
    inputs, outputs = _shapes(path, session)
    k = outputs[-1][1] if len(outputs) == 1 else outputs[0][1]
    if isinstance(k, int):
        return k
    from humanpose.runtime.sessions import OnnxRuntimeSession

    run = session if session is not None else OnnxRuntimeSession(path, threads=1)
    dims = [d if isinstance(d, int) else 1 for d in inputs]
    out = run(np.zeros(dims, dtype=np.float32))
    return int(out[-1].shape[1] if len(out) == 1 else out[0].shape[1])


def _info_from_shapes(path: Path, session: Session | None) -> ModelInfo:
    from humanpose.runtime.one_stage import one_stage_layout

    inputs, outputs = _shapes(path, session)
    if one_stage_layout(outputs) is not None:  # e.g. mmdeploy's RTMO file
        _refuse_one_stage(path)
    if len(inputs) != 4 or not all(isinstance(d, int) for d in inputs[2:]):
        raise HumanposeError(f"{path}: expected an input (N, 3, H, W) with fixed H and W, got "
                             f"{inputs}; export it with humanpose export to carry its sizes")
    height, width = inputs[2], inputs[3]
    if len(outputs) == 2 and all(len(o) == 3 for o in outputs):
        bins = outputs[0][2]
        if not isinstance(bins, int):
            raise HumanposeError(f"{path}: SimCC outputs {outputs} have no fixed length")
        # mmpose's SimCC decoder needs only the split ratio; the sigma is for training.
        codec = SimCCCodec((width, height), sigma=1.0, split_ratio=bins / width)
    elif len(outputs) >= 1 and len(outputs[-1]) == 4 and \
            all(isinstance(d, int) for d in outputs[-1][2:]):
        codec = HeatmapCodec((width, height), (outputs[-1][3], outputs[-1][2]), sigma=2.0)
    else:
        raise HumanposeError(f"{path}: outputs {outputs} are neither SimCC vectors (N, K, bins) "
                             "x 2 nor heatmaps (N, K, h, w)")
    return ModelInfo(codec, None, IMAGENET_MEAN, IMAGENET_STD, network_rgb=True,
                     source="output shapes (mmpose's RTMPose pre-processing)")


def _refuse_one_stage(path: Path) -> None:
    raise HumanposeError(f"{path} is a one-stage model (RTMO: people from the whole frame, no "
                         "detector): run it with humanpose.runtime.OneStageModel (humanpose "
                         "infer does)")


def _build_detector(detector) -> PersonDetector:
    if detector is None:
        return WholeImageDetector()
    if isinstance(detector, (str, os.PathLike)):
        from humanpose.zoo import fetch_onnx, get_entry, is_zoo_name

        if is_zoo_name(detector):
            if get_entry(str(detector)).task != "detection":
                raise HumanposeError(f"detector {detector}: a zoo {get_entry(str(detector)).task}"
                                     " model, not a person detector")
            detector = fetch_onnx(str(detector))
        path = Path(detector)
        if path.suffix.lower() == ".json":
            return DetectionsFile(path)
        if path.suffix.lower() == ".onnx":
            from humanpose.runtime.detectors import onnx_person_detector

            return onnx_person_detector(path)
        raise HumanposeError(f"detector {detector}: the runtime takes a person detector .onnx "
                             "or a COCO detections .json (a .pth needs humanpose[train])")
    if not callable(detector):
        raise HumanposeError(f"detector must be callable (image -> Detections) or a file, got "
                             f"{type(detector).__name__}")
    return detector


class PoseModel(TopDown):
    """An ONNX pose model with its pre- and post-processing, without PyTorch.

    * ``model``: an ``.onnx`` file (humanpose's export, or an mmdeploy RTMPose file) or a zoo
      name (its published ONNX file, or its checkpoint exported; :func:`humanpose.zoo.fetch_onnx`).
    * ``detector``: where boxes come from when a call gives none: a callable
      ``(image) -> Detections``, a zoo detector name (exported once when PyTorch is there:
      no person detector ONNX is published), a person detector ``.onnx`` (RTMDet, YOLO,
      ours) or a COCO detections ``.json``; default the whole image is one person.
    * ``backend``: ``onnxruntime``, ``openvino``, ``openvino-fp32`` or ``auto`` (the
      fastest on this machine, timed once and cached in ``cache_dir``).
    * ``flip_test``: average with the mirrored crop (default: as exported).
    * ``rgb``: the channel order of the images passed in (default BGR, as OpenCV reads).
    """

    def __init__(self, model: str | os.PathLike, detector=None, *, backend: str = "auto",
                 device: str = "cpu", threads: int | None = None,
                 flip_test: bool | None = None, rgb: bool = False, min_score: float = 0.0,
                 cache_dir: str | os.PathLike | None = None,
                 keypoint_set: KeypointSet | None = None, max_batch: int = 64):
        from humanpose.zoo import fetch_onnx, is_zoo_name

        path = fetch_onnx(str(model)) if is_zoo_name(model) else Path(model)
        if path.suffix.lower() != ".onnx":
            raise HumanposeError(f"PoseModel takes an .onnx file, got {model} (a .pth runs "
                                 "in humanpose.PoseEstimator, which needs humanpose[train])")
        if not path.is_file():
            raise HumanposeError(f"ONNX file not found: {path}")
        self.path = path
        self.device = resolve_device(device)
        self.threads = threads or default_threads()
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.info = model_info(path)
        w, h = self.info.codec.input_size
        self.backend, self.backend_timings, self.session = open_session(
            path, backend, self.device, self.threads, self.cache_dir, (1, 3, h, w))
        self.codec = self.info.codec
        self.keypoint_set = keypoint_set or self.info.keypoint_set
        self.image_size = self.codec.input_size
        flip = self.info.flip_test if flip_test is None else flip_test
        self.flip_pairs = [list(p) for p in self.keypoint_set.flip_pairs] if flip else None
        self.rgb = bool(rgb)
        self.swap_channels = self.rgb != self.info.network_rgb
        self.min_score = min_score
        self.in_vis_thre = self.info.in_vis_thre
        self.bias = self.info.bias
        self.max_batch = max_batch
        self.detector = _build_detector(detector)
        self.timing = Timing()
        self.tracker = None
        self.smoother = None

    # ------------------------------------------------------------------ the network
    def _run(self, batch: np.ndarray) -> Outputs:
        out = self.session(batch)
        return out[0] if len(out) == 1 else out

    def outputs(self, crops: np.ndarray) -> Outputs:
        """The network's outputs for uint8 crops, flip test included when enabled."""
        parts = []
        for start in range(0, len(crops), self.max_batch):
            x = normalize_crops(crops[start:start + self.max_batch], self.info.mean,
                                self.info.std)
            parts.append(flip_test_outputs(self._run, x, self.codec, self.flip_pairs))
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(p) for p in zip(*parts))
        return np.concatenate(parts)

    # ------------------------------------------------------------------ results
    def __call__(self, image: np.ndarray | str | os.PathLike,
                 boxes: np.ndarray | Sequence | None = None,
                 box_scores: np.ndarray | Sequence | None = None, *,
                 image_id: int | None = None, file_name: str | None = None,
                 rgb: bool | None = None) -> Results:
        """The people in ``image`` (a BGR uint8 array, or an image file) as
        :class:`Results`; ``boxes`` (x, y, w, h) skip the detector; ``rgb``: this array's
        channel order when it is not the one given at construction."""
        if isinstance(image, (str, os.PathLike)):
            from humanpose.data.images import read_image

            file_name = file_name or Path(image).name
            image = read_image(str(image))  # BGR, as OpenCV reads
            rgb = False
        image = self._in_channel_order(as_bgr_uint8(image), rgb)
        people = super().__call__(image, boxes, box_scores, image_id=image_id,
                                  file_name=file_name)
        return Results(people, self.keypoint_set, image)

    def track(self, image, timestamp: float | None = None, *, image_id: int | None = None,
              file_name: str | None = None):
        """One video frame (an array) → its tracked people (see :meth:`TopDown.track`);
        a source (a video file, folder, webcam index or stream URL) → a generator of
        :class:`Results`, one per frame, ids kept across frames."""
        if isinstance(image, np.ndarray):
            return super().track(image, timestamp, image_id=image_id, file_name=file_name)
        return stream_results(self, image)

    def __repr__(self) -> str:
        flip = "on" if self.flip_pairs is not None else "off"
        w, h = self.image_size
        return (f"PoseModel({self.path.name} {w}x{h}, {self.codec.name}, "
                f"{self.keypoint_set.num_joints} key points, backend={self.backend}, flip test "
                f"{flip}, detector {type(self.detector).__name__})")


def stream_results(model, source) -> Iterator[Results]:
    """``humanpose infer --track``'s frame step (tracker, smoother, a detections file read
    by frame) for ``model`` (a runtime model) over a source (a video file, folder, webcam
    index or stream URL, or an open FrameSource), one :class:`Results` per frame."""
    from humanpose.inference.smoothing import KeypointSmoother
    from humanpose.inference.sources import FrameSource, open_source
    from humanpose.inference.video import FrameStep

    frames = source if isinstance(source, FrameSource) else open_source(source)
    step = FrameStep(model, frames.kind != "images", track=True, smoother=KeypointSmoother(),
                     fps=frames.fps)
    try:
        for frame in frames:
            result = step(frame)
            yield Results(result.people, model.keypoint_set, frame.image, frame.index,
                          frame.time)
    finally:
        frames.close()
