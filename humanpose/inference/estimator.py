"""``PoseEstimator``: an image (and optional person boxes) in, people with key points out.

The path from pixels to key points is evaluation's, function for function: boxes become
centre/scale (:func:`box_to_center_scale`), crops are cut by the same affine transform
(:func:`get_affine_transform`, or UDP's) and :func:`warp_crop`, normalised by
:func:`normalize_batch`, run through :func:`predict_outputs` (flip test included) and
decoded by the config's codec (:func:`decode_to_image`). Only the network's execution
differs, by backend
(:mod:`humanpose.inference.backends`). All the crops of an image go through in one batch.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from yacs.config import CfgNode

from humanpose.checkpoint import load_checkpoint
from humanpose.codecs import Outputs, build_codec
from humanpose.config import get_cfg
from humanpose.data.keypoints import COCO, MPII, KeypointSet
from humanpose.data.normalize import normalize_batch, normalize_crops
from humanpose.errors import HumanposeError
from humanpose.inference.backends import (
    BACKENDS,
    ONNX_BACKENDS,
    BackendUnavailable,
    Runner,
    available_backends,
    choose_backend,
    default_cache_dir,
    make_runner,
)
from humanpose.inference.detector import PersonDetector, WholeImageDetector
from humanpose.inference.lpn_form import ONNX_FORM_BACKENDS, is_lpn, lpn_inference_form
from humanpose.models import build_model
from humanpose.predict import predict_outputs
from humanpose.runtime.results import Person
from humanpose.runtime.sessions import resolve_device
from humanpose.runtime.topdown import Timing, TopDown, flip_test_outputs

__all__ = ["Person", "PoseEstimator", "Timing", "keypoint_set_for", "keypoint_set_from_config"]

logger = logging.getLogger("humanpose")

# What a call without weights says: key points of an untrained network are noise, never a
# result to return silently.
NO_WEIGHTS = ("no weights: give a weights file (weights=, --weights FILE, TEST.MODEL_FILE) or "
              "a zoo name (--model NAME); random weights only on request (random_weights=True, "
              "--random-weights: timing an untrained network)")


def keypoint_set_for(cfg: CfgNode, weights: str | os.PathLike | None = None) -> KeypointSet:
    """The joints a model predicts (names, flip pairs, sigmas, skeleton), never guessed
    from their number: the set stored in ``weights`` (a humanpose ``.pth``, or the metadata
    of an ``.onnx`` that humanpose exported), else the one the config's data set gives
    (:func:`keypoint_set_from_config`)."""
    stored = None
    if weights is not None and Path(weights).is_file():
        if Path(weights).suffix.lower() == ".onnx":
            from humanpose.export import read_onnx_keypoints

            stored = read_onnx_keypoints(weights)
        else:
            from humanpose.checkpoint import read_keypoint_set

            stored = read_keypoint_set(weights)
    if stored is not None:
        if stored.num_joints != cfg.MODEL.NUM_JOINTS:
            raise HumanposeError(f"{weights} predicts {stored.num_joints} joints "
                                 f"({list(stored.names)}) but MODEL.NUM_JOINTS is "
                                 f"{cfg.MODEL.NUM_JOINTS}")
        return stored
    return keypoint_set_from_config(cfg)


def keypoint_set_from_config(cfg: CfgNode) -> KeypointSet:
    """The key-point set of the config's data set: MPII's for ``mpii``; for COCO-format sets
    the joints named in ``DATASET.ROOT``'s test annotation file when it is there, else COCO's
    17 (``DATASET.DATASET coco`` with 17 joints), else numbered joints (a warning says so);
    the config's ``DATASET.FLIP_PAIRS``/``SIGMAS``/``SKELETON`` apply in every case."""
    from humanpose.data.coco import (
        annotation_file,
        keypoint_set_from_category,
        person_category,
        read_json,
    )
    from humanpose.data.mpii import _keypoints as mpii_keypoints

    k = cfg.MODEL.NUM_JOINTS
    d = cfg.DATASET
    if d.DATASET.lower() == "mpii":
        if k != MPII.num_joints:
            raise HumanposeError(f"DATASET.DATASET mpii has {MPII.num_joints} joints but "
                                 f"MODEL.NUM_JOINTS is {k}")
        return mpii_keypoints(cfg)
    overrides = dict(flip_pairs=d.FLIP_PAIRS, sigmas=d.SIGMAS, skeleton=d.SKELETON,
                     upper_body_ids=d.UPPER_BODY_IDS)
    path = annotation_file(d.ROOT, d.TEST_SET) if d.ROOT else ""
    if d.KEYPOINT_SET:
        from humanpose.data.keypoints import KEYPOINT_SETS

        if d.KEYPOINT_SET not in KEYPOINT_SETS:
            raise HumanposeError(f"DATASET.KEYPOINT_SET {d.KEYPOINT_SET!r} is not one of "
                                 f"{sorted(KEYPOINT_SETS)}")
        named = KEYPOINT_SETS[d.KEYPOINT_SET]
        if named.num_joints != k:
            raise HumanposeError(f"DATASET.KEYPOINT_SET {d.KEYPOINT_SET} has "
                                 f"{named.num_joints} joints but MODEL.NUM_JOINTS is {k}")
        category = {"keypoints": list(named.names)}
        return keypoint_set_from_category(category, k, source=d.KEYPOINT_SET, **overrides)
    if path and os.path.isfile(path):
        category = person_category(read_json(path, "COCO annotations"), path, d.CATEGORY)
        names = category.get("keypoints")
        if not names or len(names) == k:
            return keypoint_set_from_category(category, k, source=path, **overrides)
    if d.DATASET.lower() == "coco" and k == COCO.num_joints:
        category = {"keypoints": list(COCO.names)}
        return keypoint_set_from_category(category, k, source="COCO", **overrides)
    logger.warning("the joint names of this %d-joint model are unknown (no key-point set in "
                   "its weights, no annotation file under DATASET.ROOT): numbered joints, "
                   "flip pairs and skeleton from DATASET.FLIP_PAIRS/SKELETON", k)
    if overrides["flip_pairs"] is None:
        overrides["flip_pairs"] = []
    return keypoint_set_from_category({}, k, source="the config", **overrides)


# Files given as PoseEstimator's first argument that are weights, not an experiment file.
WEIGHTS_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt")


def _config_and_weights(cfg: CfgNode | str | os.PathLike | None,
                        weights: str | os.PathLike | None, opts: Sequence[str]
                        ) -> tuple[CfgNode, str | os.PathLike | None]:
    """What :class:`PoseEstimator`'s ``cfg`` names: a config, a file, a zoo name, or None
    for weights that carry their config."""
    from humanpose.zoo import is_zoo_name, resolve_model

    if isinstance(cfg, CfgNode):
        return cfg, weights
    if cfg is None:
        if weights is None:
            raise HumanposeError("PoseEstimator: give a config (a file, a shipped name or a "
                                 "zoo name) or weights that carry one")
        from humanpose.checkpoint import config_from_weights

        return config_from_weights(weights, opts)[0], weights
    if is_zoo_name(str(cfg)):
        path, zoo_opts = resolve_model(str(cfg), weights, task="pose")
        built = get_cfg(path, [*zoo_opts, *opts])
        return built, built.TEST.MODEL_FILE
    if Path(cfg).suffix.lower() in WEIGHTS_SUFFIXES:  # a weights file that carries its config
        if weights is not None:
            raise HumanposeError(f"PoseEstimator: {cfg} is a weights file and so is {weights}; "
                                 "give a config (or zoo name) and weights, or one weights file")
        from humanpose.checkpoint import config_from_weights

        return config_from_weights(cfg, opts)[0], cfg
    return get_cfg(cfg, opts), weights


class PoseEstimator(TopDown):
    """Top-down pose estimation for whole images.

    ``est = PoseEstimator("experiments/coco/lpn/lpn50_256x192_gd256x2_gc.yaml",
    "lpn50.pth", detector="person_detector.onnx")``, then ``est(image)`` (boxes from the
    detector) or ``est(image, boxes)`` → a list of :class:`Person`.

    * ``cfg``: a config, the path or shipped name of an experiment YAML (with ``opts``
      overrides), or a model zoo name (``"rtmpose-m"``: its config, and its weights fetched
      and verified unless ``weights`` is a local copy); a weights file humanpose trained
      (``"model_best.pth"``), which carries its config; or None with such a file as
      ``weights``.
    * ``weights``: a ``.pth`` (loaded strictly through :func:`load_checkpoint`) or an
      ``.onnx`` file (ONNX backends only); default ``TEST.MODEL_FILE``. Without any it is
      an error, unless ``random_weights=True`` (timing an untrained network).
    * ``backend``: one of :data:`~humanpose.inference.backends.BACKENDS` or ``auto``, which
      times the available ones on this machine once and caches the winner in ``cache_dir``.
      ONNX backends export the ``.pth`` into ``cache_dir`` on first use unless ``onnx_path``
      is given.
    * ``flip_test``: average with the mirrored crop (default ``TEST.FLIP_TEST``); it doubles
      the network's work.
    * ``detector``: where boxes come from when the call gives none: a zoo name
      (``"rtmdet-nano"``), a
      :class:`PersonDetector` (e.g. from :func:`humanpose.detection.build_person_detector`,
      to choose its backend or score threshold), or a file for that function: our
      detector's ``.pth``/``.yaml``, an ``.onnx`` (ours or a YOLO-family model) or a COCO
      detections ``.json``, run on this estimator's device, threads and cache folder with
      the backend ``auto``. Default: the whole image is one box. ``boxes_from`` is the older
      name of the same argument.
    * ``rgb``: the channel order of the images passed in. They are BGR by default (OpenCV's
      ``imread`` and ``VideoCapture``); the model gets RGB or BGR as ``DATASET.COLOR_RGB``
      says, as in the seed. A call's ``rgb=`` overrides it for that image.
    * ``min_score``: people whose person score is below it are dropped.
    * ``inference_form``: run LPN in its fused inference form
      (:func:`~humanpose.inference.lpn_form.lpn_inference_form`: same outputs, faster),
      in PyTorch and in the ONNX file exported for OpenVINO (onnxruntime runs the model as
      built faster).
    """

    def __init__(self, cfg: CfgNode | str | os.PathLike | None,
                 weights: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu", backend: str = "auto",
                 flip_test: bool | None = None,
                 boxes_from: PersonDetector | str | os.PathLike | None = None, *,
                 detector: PersonDetector | str | os.PathLike | None = None,
                 onnx_path: str | os.PathLike | None = None, rgb: bool = False,
                 min_score: float = 0.0, threads: int | None = None,
                 cache_dir: str | os.PathLike | None = None, opts: Sequence[str] = (),
                 keypoint_set: KeypointSet | None = None, max_batch: int = 64,
                 inference_form: bool = True, random_weights: bool = False):
        self.inference_form = inference_form
        self.cfg, weights = _config_and_weights(cfg, weights, opts)
        self.device = torch.device(resolve_device(device))
        self.image_size = (int(self.cfg.MODEL.IMAGE_SIZE[0]), int(self.cfg.MODEL.IMAGE_SIZE[1]))
        weights = weights if weights is not None else (self.cfg.TEST.MODEL_FILE or None)
        self.keypoint_set = keypoint_set or keypoint_set_for(
            self.cfg, weights if weights is not None else onnx_path)
        flip_test = self.cfg.TEST.FLIP_TEST if flip_test is None else flip_test
        self.flip_pairs = [list(p) for p in self.keypoint_set.flip_pairs] if flip_test else None
        self.codec = build_codec(self.cfg)  # the test loop's codec, by the same code
        self.rgb = bool(rgb)
        self.swap_channels = self.rgb != bool(self.cfg.DATASET.COLOR_RGB)
        self.min_score = min_score
        self.in_vis_thre = float(self.cfg.TEST.IN_VIS_THRE)
        self.bias = float(self.cfg.TEST.BIAS)
        self.max_batch = max_batch
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        if detector is not None and boxes_from is not None:
            raise HumanposeError("PoseEstimator: give detector= or its older name boxes_from=, "
                                 "not both")
        self.detector = self._build_detector(detector if detector is not None else boxes_from)
        self.timing = Timing()
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        # Video state of track(): made on its first call; replace them to configure.
        self.tracker = None
        self.smoother = None

        if weights is not None and Path(weights).suffix.lower() == ".onnx":
            onnx_path, weights = weights, None
            self.model = None
        else:
            self.model = build_model(self.cfg).eval()
            if weights is not None:
                load_checkpoint(self.model, weights)
            elif onnx_path is None and not random_weights:
                raise HumanposeError(NO_WEIGHTS)
        self.weights = Path(weights) if weights is not None else None
        self.onnx_path = Path(onnx_path) if onnx_path is not None else None
        self._given_onnx = self.onnx_path is not None
        self._exports: dict[str, Path] = {}  # export variant -> file
        self._digest: str | None = None  # weights_digest of the model, for the ONNX cache
        self.backend, self.backend_timings, runner = self._resolve_backend(backend)
        self.runner = runner if runner is not None else self._make_runner(self.backend)

    # ------------------------------------------------------------------ the detector
    def _build_detector(self, detector: PersonDetector | str | os.PathLike | None
                        ) -> PersonDetector:
        if detector is None:
            return WholeImageDetector()
        if isinstance(detector, (str, os.PathLike)):
            # Imported here: humanpose.detection imports this package (the detector protocol).
            from humanpose.detection import build_person_detector
            from humanpose.zoo import resolve_detector

            spec, cfg = resolve_detector(detector)
            return build_person_detector(spec, cfg=cfg, device=str(self.device),
                                         threads=self.threads, cache_dir=self.cache_dir)
        if not callable(detector):
            raise HumanposeError(f"PoseEstimator: detector must be a PersonDetector or the path "
                                 f"of a detector file, got {type(detector).__name__}")
        return detector

    @property
    def boxes_from(self) -> PersonDetector:
        """The older name of :attr:`detector`."""
        return self.detector

    @boxes_from.setter
    def boxes_from(self, detector: PersonDetector) -> None:
        self.detector = detector

    # ------------------------------------------------------------------ backends
    def _onnx_file(self, backend: str) -> Path:
        """The ONNX file for ``backend``: the given one, or an export of the weights (of
        LPN's inference form where that is faster for ``backend``)."""
        if self._given_onnx:
            if not self.onnx_path.is_file():
                raise HumanposeError(f"ONNX file not found: {self.onnx_path}")
            return self.onnx_path
        from humanpose.export import cached_pose_onnx, export_pose_onnx, weights_digest

        variant = self._onnx_variant(backend)
        if variant in self._exports:
            self.onnx_path = self._exports[variant]
            return self.onnx_path
        model = lpn_inference_form(self.model) if variant else self.model
        if self.weights is None:  # random weights: a private file, never reused
            if self._tmpdir is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="humanpose-onnx-")
            path = Path(self._tmpdir.name) / f"random-init{'-' + variant if variant else ''}.onnx"
            export_pose_onnx(model, self.cfg, path, check=False, keypoints=self.keypoint_set)
        else:  # the cache shared with `humanpose test`, keyed by the weights' content
            if self._digest is None:
                self._digest = weights_digest(self.model.state_dict())
            path = cached_pose_onnx(model, self.cfg, self.cache_dir, weights=self.weights,
                                    digest=self._digest, keypoints=self.keypoint_set,
                                    variant=variant)
        self._exports[variant] = self.onnx_path = path
        return path

    def _onnx_variant(self, backend: str) -> str:
        """The rewritten form the ONNX export for ``backend`` uses ('' for the model as
        built)."""
        if self.inference_form and backend in ONNX_FORM_BACKENDS and is_lpn(self.model):
            return "lpn-form"
        return ""

    def _make_runner(self, backend: str) -> Runner:
        if backend in ONNX_BACKENDS:
            return make_runner(backend, onnx_path=self._onnx_file(backend), device=self.device,
                               threads=self.threads, cache_dir=self.cache_dir)
        if self.model is None:
            raise BackendUnavailable(f"backend {backend!r} needs PyTorch weights (.pth); "
                                     f"only an ONNX file was given ({self.onnx_path})")
        return make_runner(backend, model=self.model, device=self.device, threads=self.threads,
                           inference_form=self.inference_form)

    def _resolve_backend(self, backend: str) -> tuple[str, dict[str, float], Runner | None]:
        if backend != "auto":
            if backend not in BACKENDS:
                raise HumanposeError(f"unknown backend {backend!r}; expected 'auto' or one of "
                                     f"{list(BACKENDS)}")
            return backend, {}, None
        candidates = [b for b in available_backends(self.device)
                      if self.model is not None or b in ONNX_BACKENDS]
        batch = 2 if self.flip_pairs is not None else 1
        w, h = self.image_size
        sample = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))
        # The choice depends on the threads it was timed with and on LPN's form, too.
        signature = (f"{self.cfg.MODEL.dump()}|threads={self.threads}|"
                     f"form={self.inference_form}")
        return choose_backend(candidates, self._make_runner, signature, self.device, sample,
                              self.cache_dir)

    # ------------------------------------------------------------------ the network
    def outputs(self, crops: np.ndarray) -> Outputs:
        """The network's outputs (heatmaps or SimCC vectors) for uint8 crops, flip test
        included when enabled."""
        onnx = self.backend in ONNX_BACKENDS
        parts = []
        for start in range(0, len(crops), self.max_batch):
            piece = crops[start:start + self.max_batch]
            if onnx:  # NumPy all the way, the runtime's own path (humanpose.runtime)
                parts.append(flip_test_outputs(self.runner.session_outputs,
                                               normalize_crops(piece), self.codec,
                                               self.flip_pairs))
                continue
            # uint8 crops go to the GPU as they are (4x less to copy) and are normalised there.
            batch = torch.from_numpy(piece).to(self.device)
            parts.append(predict_outputs(self.runner, normalize_batch(batch), self.codec,
                                         self.flip_pairs))
        if onnx:  # tensors, as from every backend (views of the arrays: no copy)
            parts = [tuple(torch.from_numpy(o) for o in p) if isinstance(p, tuple)
                     else torch.from_numpy(p) for p in parts]
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(p) for p in zip(*parts))
        return torch.cat(parts)

    def __repr__(self) -> str:
        flip = "on" if self.flip_pairs is not None else "off"
        return (f"PoseEstimator({self.cfg.MODEL.NAME} {self.image_size[0]}x{self.image_size[1]}"
                f", backend={self.backend}, device={self.device}, flip test {flip}, "
                f"detector {type(self.detector).__name__})")
