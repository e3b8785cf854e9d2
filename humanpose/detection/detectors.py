"""Person detectors for inference, from what ``--detector`` names.

:func:`build_person_detector` takes a path and returns a
:class:`~humanpose.inference.detector.PersonDetector`:

* ``.pth``/``.pt``: our detector's weights, run by :class:`ModelDetector`. Its configuration
  comes from ``cfg`` if given, else from the file when it is a training checkpoint, else from
  the ``checkpoint.pth`` that training writes next to ``model_best.pth``/``final_state.pth``.
* ``.yaml``: a detector experiment file; the weights are its ``TEST.MODEL_FILE``.
* ``.onnx``: our exported detector or an exported RTMDet (both recognised by their
  metadata), else a YOLO-family model (:class:`~humanpose.detection.onnx.YoloOnnxDetector`).

A config whose ``MODEL.NAME`` is an RTMDet (:data:`~humanpose.detection.rtmdet.RTMDET_NAMES`)
gives an :class:`~humanpose.detection.rtmdet.RTMDetDetector` (mmdet's pre- and
post-processing) instead of a :class:`ModelDetector`.
* ``.json``: a COCO results-format detections file
  (:class:`~humanpose.inference.detector.DetectionsFile`).

:class:`ModelDetector` letterboxes the image exactly as the test set is letterboxed, runs the
network through one of the pose runners (PyTorch with folded batch norms, ONNX Runtime,
OpenVINO; ``auto`` picks the fastest here), and decodes as the evaluation decodes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
import yaml
from yacs.config import CfgNode

from humanpose.detection.codec import DecodeParams
from humanpose.detection.model import DETECTOR_NAMES, build_detector
from humanpose.detection.onnx import METADATA_KEY, YoloOnnxDetector, onnx_metadata
from humanpose.detection.rtmdet import RTMDET_METADATA_KEY, RTMDET_NAMES, RTMDetParams
from humanpose.errors import HumanposeError
from humanpose.inference.detector import (
    DetectionsFile,
    PersonDetector,
)
from humanpose.runtime.detectors import DEFAULT_MIN_SCORE, HeatmapBoxDetector

__all__ = ["DEFAULT_MIN_SCORE", "ModelDetector", "build_person_detector", "detector_config"]

logger = logging.getLogger("humanpose")


def _config_from_model_dump(text: str, source: str) -> CfgNode:
    """A full config whose MODEL node is a ``cfg.MODEL.dump()``."""
    from humanpose.config import default_config

    try:
        model = yaml.safe_load(text)
        cfg = default_config()
        cfg.MODEL.merge_from_other_cfg(CfgNode(model))
    except Exception as err:
        raise HumanposeError(f"{source}: the stored model configuration does not fit this "
                             f"version of humanpose: {err}") from err
    return cfg


def _stored_model_cfg(path: Path) -> str | None:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise HumanposeError(f"cannot read detector weights {path}: {err}") from err
    if isinstance(obj, Mapping) and isinstance(obj.get("model_cfg"), str):
        return obj["model_cfg"]
    return None


def detector_config(weights: str | os.PathLike, cfg: CfgNode | str | os.PathLike | None = None
                    ) -> CfgNode:
    """The config of the detector whose weights are ``weights`` (see the module docstring)."""
    from humanpose.config import get_cfg

    weights = Path(weights)
    if isinstance(cfg, CfgNode):
        found = cfg
    elif cfg is not None:
        found = get_cfg(cfg)
    else:
        found = None
        for source in (weights, weights.with_name("checkpoint.pth")):
            text = _stored_model_cfg(source) if source.is_file() else None
            if text is not None:
                found = _config_from_model_dump(text, str(source))
                break
        if found is None:
            raise HumanposeError(
                f"{weights}: holds bare weights and no checkpoint.pth beside it says which "
                "detector they belong to; give the experiment file it was trained with "
                "(cfg=..., or --detector the .yaml with TEST.MODEL_FILE set)")
    if found.MODEL.NAME not in DETECTOR_NAMES + RTMDET_NAMES:
        raise HumanposeError(f"{weights}: its config is for MODEL.NAME {found.MODEL.NAME!r}, "
                             "not a person detector "
                             f"({', '.join(dict.fromkeys(DETECTOR_NAMES + RTMDET_NAMES))})")
    return found


class ModelDetector(HeatmapBoxDetector):
    """Our detector network as a :class:`~humanpose.inference.detector.PersonDetector`:
    the runtime's :class:`~humanpose.runtime.detectors.HeatmapBoxDetector` with its input
    size and decoding settings from ``cfg``; boxes scoring under ``min_score`` are dropped.
    ``runner`` is one of :mod:`humanpose.inference.backends`."""

    def __init__(self, runner, cfg: CfgNode, min_score: float = DEFAULT_MIN_SCORE,
                 nms_threshold: float | None = None, max_detections: int | None = None):
        params = DecodeParams.from_cfg(cfg, score_threshold=min_score)
        params = DecodeParams(
            params.stride,
            params.max_detections if max_detections is None else int(max_detections),
            params.score_threshold,
            params.nms_threshold if nms_threshold is None else float(nms_threshold))
        super().__init__(runner, (int(cfg.MODEL.IMAGE_SIZE[0]), int(cfg.MODEL.IMAGE_SIZE[1])),
                         params)


def _cached_export(cfg: CfgNode, model: torch.nn.Module, weights: Path | None,
                   cache_dir: str | os.PathLike | None, exporter) -> Path:
    """The ONNX file of ``model`` in the export cache, written by ``exporter(model, path)``
    on first use."""
    from humanpose.export import onnx_cache_path
    from humanpose.inference.backends import default_cache_dir

    onnx_path = onnx_cache_path(cfg, weights, cache_dir or default_cache_dir())
    if not onnx_path.is_file():
        logger.info("exporting the detector %s to %s", weights, onnx_path)
        exporter(model, onnx_path)
    return onnx_path


def _runner_for(backend: str, model: torch.nn.Module | None, onnx_path: Path | None,
                make_onnx, device: str, threads: int | None):
    """A runner for ``backend``; ONNX backends call ``make_onnx()`` for a file when only
    the PyTorch model is given."""
    from humanpose.inference.backends import ONNX_BACKENDS, make_runner

    if backend in ONNX_BACKENDS and onnx_path is None:
        onnx_path = make_onnx()
    if backend not in ONNX_BACKENDS and model is None:
        raise HumanposeError(f"backend {backend!r} needs the detector's PyTorch weights; only "
                             f"an ONNX file was given ({onnx_path})")
    return make_runner(backend, model=model, onnx_path=onnx_path, device=device,
                       threads=threads)


def _choose_runner(backend: str, signature: str, input_size: tuple[int, int], model,
                   onnx_path, make_onnx, device, threads, cache_dir):
    """The runner of ``backend``; ``auto`` times the candidates here once (cached under
    ``signature``) on an input of ``input_size`` (w, h)."""
    from humanpose.inference.backends import (
        ONNX_BACKENDS,
        AutoChoiceCache,
        available_backends,
        select_fastest,
    )

    if backend != "auto":
        return _runner_for(backend, model, onnx_path, make_onnx, device, threads)
    candidates = [b for b in available_backends(device)
                  if (model is not None or b in ONNX_BACKENDS) and b != "torch-bf16"]
    cache = AutoChoiceCache(cache_dir)
    key = cache.key("detector|" + signature, torch.device(device), 1, candidates)
    chosen = cache.get(key)
    if chosen in candidates:
        return _runner_for(chosen, model, onnx_path, make_onnx, device, threads)
    w, h = input_size
    sample = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    runners = {}

    def factory(name):
        def make():
            runners[name] = _runner_for(name, model, onnx_path, make_onnx, device, threads)
            return runners[name]
        return make

    chosen, timings = select_fastest({name: factory(name) for name in candidates}, sample)
    cache.put(key, chosen, timings)
    logger.info("detector backend auto: %s (%s)", chosen,
                ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()))
    return runners[chosen]


def _model_runner(backend: str, cfg: CfgNode, model, onnx_path, weights, device, threads,
                  cache_dir):
    """The runner of our heatmap detector (PyTorch model, or its exported file)."""
    from humanpose.detection.onnx import export_detector_onnx

    def make_onnx():
        return _cached_export(cfg, model, weights, cache_dir, lambda m, p: export_detector_onnx(
            m, cfg, p, check=False))

    size = tuple(int(v) for v in cfg.MODEL.IMAGE_SIZE)
    return _choose_runner(backend, cfg.MODEL.dump(), size, model, onnx_path, make_onnx,
                          device, threads, cache_dir)


def _rtmdet_detector(backend: str, params, network: torch.nn.Module | None,
                     onnx_path: Path | None, cfg: CfgNode | None, weights: Path | None,
                     device: str, threads: int | None, cache_dir, min_score: float,
                     nms_threshold: float | None, max_detections: int | None):
    """An :class:`~humanpose.detection.rtmdet.RTMDetDetector` from its network or its
    exported file."""
    from humanpose.detection.rtmdet import RTMDetDetector, RTMDetOutputs, export_rtmdet_onnx

    model = None if network is None else RTMDetOutputs(network, len(params.strides)).eval()

    def make_onnx():
        return _cached_export(cfg, model, weights, cache_dir, lambda m, p: export_rtmdet_onnx(
            m, params, p, check=False))

    runner = _choose_runner(backend, "rtmdet|" + params.to_json(), params.input_size, model,
                            onnx_path, make_onnx, device, threads, cache_dir)
    params = params.with_overrides(iou_thr=nms_threshold, max_per_img=max_detections)
    return RTMDetDetector(runner, params, min_score=min_score)


def _build_rtmdet_network(cfg: CfgNode, weights: Path) -> torch.nn.Module:
    from humanpose.checkpoint import load_checkpoint
    from humanpose.models import build_model

    network = build_model(cfg, channels_last=False)
    load_checkpoint(network, weights)
    return network.eval()


def build_person_detector(spec: str | os.PathLike, device: str = "cpu", *,
                          cfg: CfgNode | str | os.PathLike | None = None,
                          backend: str = "auto", min_score: float | None = None,
                          nms_threshold: float | None = None,
                          max_detections: int | None = None, threads: int | None = None,
                          cache_dir: str | os.PathLike | None = None,
                          file_ids: dict[str, int] | None = None,
                          yolo_class_id: int = 0) -> PersonDetector:
    """The person detector that ``spec`` names (see the module docstring).

    ``backend``: for our detector, ``auto`` (the fastest here), ``torch``, ``onnxruntime``,
    ``openvino`` or ``openvino-fp32``; YOLO models run in ONNX Runtime. ``min_score``: boxes
    below it are dropped (default :data:`DEFAULT_MIN_SCORE` for networks, 0 for files).
    ``file_ids`` maps image file names to ids for detections files.
    """
    from humanpose.inference.backends import BACKENDS

    if backend != "auto" and backend not in BACKENDS:
        raise HumanposeError(f"unknown detector backend {backend!r}; expected 'auto' or one of "
                             f"{', '.join(BACKENDS)}")
    path = Path(spec)
    if not path.is_file():
        raise HumanposeError(f"detector file not found: {path} (--detector takes our "
                             "detector's .pth or .yaml, an .onnx detector, or a COCO "
                             "detections .json)")
    suffix = path.suffix.lower()
    score = DEFAULT_MIN_SCORE if min_score is None else float(min_score)
    if suffix == ".json":
        return DetectionsFile(path, min_score=0.0 if min_score is None else float(min_score),
                              file_ids=file_ids)
    if suffix == ".onnx":
        metadata = onnx_metadata(path)
        if RTMDET_METADATA_KEY in metadata:
            params = RTMDetParams.from_json(metadata[RTMDET_METADATA_KEY], str(path))
            return _rtmdet_detector(backend, params, None, path, None, None, device, threads,
                                    cache_dir, score, nms_threshold, max_detections)
        if METADATA_KEY not in metadata:
            return YoloOnnxDetector(path, min_score=score, class_id=yolo_class_id,
                                    nms_threshold=0.5 if nms_threshold is None
                                    else nms_threshold,
                                    max_detections=max_detections or 100, threads=threads)
        model_cfg = _config_from_model_dump(metadata[METADATA_KEY], str(path))
        runner = _model_runner(backend, model_cfg, None, path, None, device, threads,
                               cache_dir)
        return ModelDetector(runner, model_cfg, score, nms_threshold, max_detections)
    if suffix in (".yaml", ".yml"):
        from humanpose.config import get_cfg

        cfg = get_cfg(path)
        if not cfg.TEST.MODEL_FILE:
            raise HumanposeError(f"{path}: TEST.MODEL_FILE is empty; set it to the detector's "
                                 "weights, or give the .pth with cfg=")
        path = Path(cfg.TEST.MODEL_FILE)
        if not path.is_file():
            raise HumanposeError(f"detector weights not found: {path} (TEST.MODEL_FILE)")
    elif suffix not in (".pth", ".pt"):
        raise HumanposeError(f"{path}: unknown detector file type {suffix!r}; expected .pth "
                             "or .yaml (our detector), .onnx or .json (COCO detections)")
    model_cfg = detector_config(path, cfg)
    if model_cfg.MODEL.NAME in RTMDET_NAMES:
        params = RTMDetParams.from_cfg(model_cfg)
        network = _build_rtmdet_network(model_cfg, path)
        return _rtmdet_detector(backend, params, network, None, model_cfg, path, device,
                                threads, cache_dir, score, nms_threshold, max_detections)
    from humanpose.checkpoint import load_checkpoint

    model = build_detector(model_cfg, channels_last=False)
    load_checkpoint(model, path)
    model.eval()
    runner = _model_runner(backend, model_cfg, model, None, path, device, threads, cache_dir)
    return ModelDetector(runner, model_cfg, score, nms_threshold, max_detections)
