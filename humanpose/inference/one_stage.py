"""A one-stage model (RTMO) from its config and checkpoint: the PyTorch side of
:class:`humanpose.runtime.one_stage.OneStage`.

The network runs in PyTorch (``backend="torch"``) or, exported once to the ONNX cache, in
ONNX Runtime or OpenVINO; ``auto`` takes the fastest here: on a CPU, of the ONNX backends
and PyTorch, timed once and remembered (:func:`humanpose.inference.backends.choose_backend`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from yacs.config import CfgNode

from humanpose.checkpoint import load_checkpoint
from humanpose.data.keypoints import KeypointSet
from humanpose.errors import HumanposeError
from humanpose.inference.backends import (
    BACKENDS,
    ONNX_BACKENDS,
    Runner,
    available_backends,
    choose_backend,
    make_runner,
)
from humanpose.inference.estimator import NO_WEIGHTS, _config_and_weights, keypoint_set_for
from humanpose.measured import default_cache_dir
from humanpose.models import build_model
from humanpose.runtime.one_stage import OneStage
from humanpose.runtime.sessions import default_threads, resolve_device
from humanpose.runtime.topdown import Timing

__all__ = ["ONE_STAGE_MODELS", "OneStageEstimator", "is_one_stage_cfg"]

ONE_STAGE_MODELS = ("rtmo",)  # MODEL.NAME of the one-stage networks


def is_one_stage_cfg(cfg: CfgNode) -> bool:
    return cfg.MODEL.NAME in ONE_STAGE_MODELS


class OneStageEstimator(OneStage):
    """RTMO from ``cfg`` (a config, an experiment file, a shipped or zoo name) and its
    ``weights`` (default ``TEST.MODEL_FILE``); ``backend``: ``torch``, ``onnxruntime``,
    ``openvino``, ``openvino-fp32`` or ``auto``. Called on an image it gives the people
    (:class:`~humanpose.runtime.results.Person`) the runtime's ``OneStageModel`` gives."""

    def __init__(self, cfg: CfgNode | str | os.PathLike, weights: str | os.PathLike | None = None,
                 device: str = "cpu", backend: str = "auto", *, min_score: float = 0.0,
                 rgb: bool = False, threads: int | None = None,
                 cache_dir: str | os.PathLike | None = None, opts: Sequence[str] = (),
                 keypoint_set: KeypointSet | None = None, random_weights: bool = False):
        self.cfg, weights = _config_and_weights(cfg, weights, opts)
        if not is_one_stage_cfg(self.cfg):
            raise HumanposeError(f"MODEL.NAME {self.cfg.MODEL.NAME!r} is not a one-stage model "
                                 f"({', '.join(ONE_STAGE_MODELS)}); top-down models run in "
                                 "PoseEstimator")
        weights = weights if weights is not None else (self.cfg.TEST.MODEL_FILE or None)
        self.device = torch.device(resolve_device(device))
        self.input_size = (int(self.cfg.MODEL.IMAGE_SIZE[0]), int(self.cfg.MODEL.IMAGE_SIZE[1]))
        self.score_thr = float(self.cfg.MODEL.RTMO.SCORE_THR)
        self.nms_thr = float(self.cfg.MODEL.RTMO.NMS_THR)
        self.keypoint_set = keypoint_set or keypoint_set_for(self.cfg, weights)
        self.min_score = min_score
        self.rgb = bool(rgb)
        self.threads = threads or default_threads()
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.model = build_model(self.cfg).eval()
        if weights is not None:
            load_checkpoint(self.model, weights)
        elif not random_weights:
            raise HumanposeError(NO_WEIGHTS)
        self.weights = Path(weights) if weights is not None else None
        self._onnx: Path | None = None
        self.timing = Timing()
        self.backend, self.backend_timings, runner = self._resolve_backend(backend)
        self.runner = runner if runner is not None else self._make_runner(self.backend)

    # ------------------------------------------------------------------ the network
    def _onnx_file(self) -> Path:
        """The network in the ONNX cache, exported on first use (keyed by the config and the
        weights' content, as the top-down models' exports are)."""
        if self._onnx is None:
            from humanpose.export import export_one_stage_onnx, onnx_cache_path, weights_digest

            digest = None if self.weights else weights_digest(self.model.state_dict())
            path = onnx_cache_path(self.cfg, self.weights, self.cache_dir, digest=digest)
            if not path.is_file():
                export_one_stage_onnx(self.model, self.cfg, path, check=False,
                                      keypoints=self.keypoint_set)
            self._onnx = path
        return self._onnx

    def _make_runner(self, backend: str) -> Runner:
        if backend in ONNX_BACKENDS:
            return make_runner(backend, onnx_path=self._onnx_file(), device=self.device,
                               threads=self.threads, cache_dir=self.cache_dir)
        return make_runner(backend, model=self.model, device=self.device, threads=self.threads)

    def _resolve_backend(self, backend: str) -> tuple[str, dict[str, float], Runner | None]:
        if backend != "auto":
            if backend not in BACKENDS:
                raise HumanposeError(f"unknown backend {backend!r}; expected 'auto' or one of "
                                     f"{list(BACKENDS)}")
            return backend, {}, None
        w, h = self.input_size
        # BGR pixel values, as the network sees them (its preprocessor divides by 1).
        sample = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255
        signature = f"{self.cfg.MODEL.dump()}|threads={self.threads}|one-stage"
        return choose_backend(available_backends(self.device), self._make_runner, signature,
                              self.device, sample, self.cache_dir)

    def rows(self, batch: np.ndarray) -> np.ndarray:
        if self.backend in ONNX_BACKENDS:  # NumPy all the way; one output: an array
            return np.asarray(self.runner.session_outputs(batch))[0]
        with torch.inference_mode():
            out = self.runner(torch.from_numpy(batch).to(self.device))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float().cpu().numpy()[0]

    def __repr__(self) -> str:
        w, h = self.input_size
        return (f"OneStageEstimator({self.cfg.MODEL.NAME} {w}x{h}, "
                f"{self.keypoint_set.num_joints} key points, backend={self.backend})")
