"""ONNX export, checked against PyTorch, and the cache of exported files.

The exported graph takes normalised crops ``input`` float32 ``(N, 3, H, W)`` (N dynamic by
default) and returns what the PyTorch model computes, named by the codec: ``heatmaps``
``(N, K, h, w)``, or ``simcc_x`` ``(N, K, W*r)`` and ``simcc_y`` ``(N, K, H*r)``; so
:class:`humanpose.PoseEstimator` crops, flips and decodes around it with the same code
whatever the backend. A pose export carries in its metadata (``humanpose.*`` keys) the
codec, the input size, the normalisation and channel order, and the model config, so that
the file alone can be run.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import logging
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humanpose.errors import HumanposeError
from humanpose.measured import file_digest

logger = logging.getLogger("humanpose")

__all__ = ["DEFAULT_OPSET", "KEYPOINTS_METADATA_KEY", "cached_pose_onnx", "check_onnx",
           "export_onnx", "export_pose_onnx", "file_digest", "onnx_cache_path",
           "pose_onnx_metadata", "read_onnx_keypoints", "read_onnx_metadata", "run_onnx",
           "weights_digest"]

DEFAULT_OPSET = 17
# metadata_props entry holding the key-point set as JSON (keypoint_set_to_dict's dict), so
# that an .onnx file alone says which joints its heatmaps are.
KEYPOINTS_METADATA_KEY = "humanpose_keypoints"
INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
ONE_STAGE_OUTPUT = "detections"  # RTMO's rows (see humanpose.models.rtmo)


def _input_shape(cfg, batch: int) -> tuple[int, int, int, int]:
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    return batch, 3, height, width


def export_onnx(model: nn.Module, cfg, path: str | os.PathLike, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True, check: bool = True,
                output_names: Sequence[str] = (OUTPUT_NAME,),
                metadata: Mapping[str, str] | None = None) -> float:
    """Write ``model`` as ONNX to ``path``; returns the largest |ONNX − PyTorch| on a random
    batch of 2 (``nan`` with ``check=False``). ``metadata`` goes into the file's
    ``metadata_props``.

    Uses PyTorch's TorchScript-based exporter: for these convolutional networks it gives the
    same graph as the dynamo exporter in a fraction of the time (seconds instead of half a
    minute for HRNet-W32), which matters when a backend exports on first use. The file is
    written to a temporary name first, so a crash never leaves a truncated model behind.
    """
    if opset < 17:
        raise ValueError(f"opset must be at least 17 (LayerNorm-era operators), got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    sample = torch.zeros(_input_shape(cfg, 1))
    names = list(output_names)
    axes = {name: {0: "batch"} for name in [INPUT_NAME, *names]} if dynamic_batch else None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (sample,), str(tmp), opset_version=opset,
                              input_names=[INPUT_NAME], output_names=names,
                              dynamic_axes=axes, do_constant_folding=True, dynamo=False)
        if metadata:
            _add_metadata(tmp, metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if not check:
        return float("nan")
    return check_onnx(path, model, cfg, batch=2 if dynamic_batch else 1)


def _add_metadata(path: Path, metadata: Mapping[str, str]) -> None:
    if importlib.util.find_spec("onnx") is None:
        raise HumanposeError("writing ONNX metadata needs the onnx package: "
                             "pip install 'humanpose[onnx]'")
    import onnx

    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def pose_onnx_metadata(cfg, keypoints=None) -> dict[str, str]:
    """What a pose ONNX file needs to be run alone: codec, input, normalisation, config, and
    the key-point set (a KeypointSet) when given."""
    from humanpose.codecs import build_codec
    from humanpose.data.keypoints import keypoint_set_to_dict
    from humanpose.data.normalize import IMAGENET_MEAN, IMAGENET_STD

    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    preprocess = {"input_size": [width, height],
                  "mean": [round(m * 255, 6) for m in IMAGENET_MEAN],
                  "std": [round(s * 255, 6) for s in IMAGENET_STD],
                  "channel_order": "rgb" if cfg.DATASET.COLOR_RGB else "bgr"}
    metadata = {"humanpose.codec": json.dumps(build_codec(cfg).meta()),
                "humanpose.preprocess": json.dumps(preprocess),
                "humanpose.model_cfg": cfg.MODEL.dump(),
                # what the runtime (humanpose.runtime.PoseModel) does around the network
                "humanpose.test": json.dumps({"flip_test": bool(cfg.TEST.FLIP_TEST),
                                              "in_vis_thre": float(cfg.TEST.IN_VIS_THRE),
                                              "bias": float(cfg.TEST.BIAS)})}
    if keypoints is not None:
        metadata[KEYPOINTS_METADATA_KEY] = json.dumps(keypoint_set_to_dict(keypoints))
    return metadata


def export_pose_onnx(model: nn.Module, cfg, path: str | os.PathLike,
                     opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
                     check: bool = True, keypoints=None) -> float:
    """:func:`export_onnx` for a pose network: outputs named by its codec, and
    :func:`pose_onnx_metadata` (with the key-point set ``keypoints``) in the file."""
    from humanpose.codecs import build_codec

    return export_onnx(model, cfg, path, opset=opset, dynamic_batch=dynamic_batch, check=check,
                       output_names=build_codec(cfg).output_names,
                       metadata=pose_onnx_metadata(cfg, keypoints))


def one_stage_onnx_metadata(cfg, keypoints=None) -> dict[str, str]:
    """What a one-stage (RTMO) ONNX file needs to be run alone
    (:class:`humanpose.runtime.OneStageModel`): input size, mmpose's thresholds, config and
    the key-point set when given."""
    from humanpose.data.keypoints import keypoint_set_to_dict
    from humanpose.runtime.one_stage import ONE_STAGE_KEY

    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    settings = {"kind": cfg.MODEL.NAME, "input_size": [width, height],
                "score_thr": float(cfg.MODEL.RTMO.SCORE_THR),
                "nms_thr": float(cfg.MODEL.RTMO.NMS_THR)}
    metadata = {ONE_STAGE_KEY: json.dumps(settings), "humanpose.model_cfg": cfg.MODEL.dump()}
    if keypoints is not None:
        metadata[KEYPOINTS_METADATA_KEY] = json.dumps(keypoint_set_to_dict(keypoints))
    return metadata


def export_one_stage_onnx(model: nn.Module, cfg, path: str | os.PathLike,
                          opset: int = DEFAULT_OPSET, dynamic_batch: bool = True,
                          check: bool = True, keypoints=None) -> float:
    """:func:`export_onnx` for RTMO: one output ``detections`` ``(N, topk, 5 + 3K)`` and
    :func:`one_stage_onnx_metadata` in the file. The check (:func:`check_one_stage_onnx`)
    compares the rows whatever their order."""
    export_onnx(model, cfg, path, opset=opset, dynamic_batch=dynamic_batch, check=False,
                output_names=(ONE_STAGE_OUTPUT,),
                metadata=one_stage_onnx_metadata(cfg, keypoints))
    if not check:
        return float("nan")
    return check_one_stage_onnx(path, model, cfg, batch=2 if dynamic_batch else 1)


def check_one_stage_onnx(path: str | os.PathLike, model: nn.Module, cfg, batch: int = 2,
                         seed: int = 0, margin: float = 1e-3) -> float:
    """Largest difference between the ONNX file's rows and PyTorch's on random pixel values,
    each PyTorch row against the ONNX row nearest to it, relative for values above 1 (pixel
    coordinates: float32 carries 7 digits of a 640-pixel coordinate, not 1e-4 absolute).
    Near-equal scores may come out of the top-k in another order, or one of them cut at its
    end: unless every anchor is kept, rows scoring within ``margin`` of the lowest score kept
    are left out."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(_input_shape(cfg, batch), generator=generator) * 255
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    with torch.no_grad():
        expected = model(x).numpy()
    got = run_onnx(path, x.numpy())[0]
    if got.shape != expected.shape:
        raise HumanposeError(f"{path}: ONNX output shape {got.shape} differs from PyTorch's "
                             f"{expected.shape}")
    _, _, height, width = _input_shape(cfg, 1)
    strides = getattr(getattr(model, "head", None), "strides", ())
    anchors = sum(-(-height // s) * -(-width // s) for s in strides)
    worst = 0.0
    for g, e in zip(got, expected):
        # Every anchor kept: the same rows on both sides, only their order may differ.
        cut = -np.inf if len(e) == anchors else max(g[:, 4].min(), e[:, 4].min()) + margin
        rows = e[e[:, 4] > cut]
        if len(rows):
            gap = np.abs(rows[:, None] - g[None]) / np.maximum(1.0, np.abs(rows[:, None]))
            worst = max(worst, float(gap.max(-1).min(1).max()))
    return worst


def export_model(model: nn.Module, cfg, path: str | os.PathLike, opset: int = DEFAULT_OPSET,
                 dynamic_batch: bool = True, check: bool = True, keypoints=None) -> float:
    """Any network humanpose builds, written as the runtime runs it (``humanpose export``):
    a pose model with its codec, pre-processing and key-point set (``keypoints``, default the
    one its weights or data give), one-stage RTMO with its settings, RTMDet with its decoding
    settings, our detector with its config. Returns the check's difference (``nan`` with
    ``check=False``)."""
    from humanpose.detection import DETECTOR_NAMES
    from humanpose.detection.rtmdet import RTMDET_NAMES
    from humanpose.inference.one_stage import is_one_stage_cfg

    common = {"opset": opset, "dynamic_batch": dynamic_batch, "check": check}
    if cfg.MODEL.NAME in RTMDET_NAMES:  # raw mmdet outputs flattened; settings in metadata
        from humanpose.detection.rtmdet import RTMDetParams, export_rtmdet_onnx

        return export_rtmdet_onnx(model, RTMDetParams.from_cfg(cfg), path, **common)
    if cfg.MODEL.NAME in DETECTOR_NAMES:  # our detector's file carries its config
        from humanpose.detection import export_detector_onnx

        return export_detector_onnx(model, cfg, path, **common)
    if keypoints is None:  # the joints of the model travel in the file's metadata
        from humanpose.inference.estimator import keypoint_set_for

        keypoints = keypoint_set_for(cfg, cfg.TEST.MODEL_FILE or None)
    export = export_one_stage_onnx if is_one_stage_cfg(cfg) else export_pose_onnx
    return export(model, cfg, path, keypoints=keypoints, **common)


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (empty without the onnx package)."""
    if importlib.util.find_spec("onnx") is None:
        return {}
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def read_onnx_keypoints(path: str | os.PathLike):
    """The key-point set in an ONNX file's metadata, or None (files from elsewhere)."""
    from humanpose.data.keypoints import keypoint_set_from_dict

    try:
        metadata = read_onnx_metadata(path)
    except Exception:  # the backends report unreadable files
        return None
    if KEYPOINTS_METADATA_KEY not in metadata:
        return None
    try:
        data = json.loads(metadata[KEYPOINTS_METADATA_KEY])
    except ValueError as err:
        raise HumanposeError(f"{path}: metadata {KEYPOINTS_METADATA_KEY} is not JSON: "
                             f"{err}") from err
    return keypoint_set_from_dict(data, source=f"{path} ({KEYPOINTS_METADATA_KEY})")


def run_onnx(path: str | os.PathLike, inputs: np.ndarray) -> list[np.ndarray]:
    """Run an exported file once, in fp32, with ONNX Runtime (else OpenVINO in fp32); every
    output, in the graph's order."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: inputs})
    if importlib.util.find_spec("openvino") is not None:
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU",
                                           {"INFERENCE_PRECISION_HINT": "f32"})
        result = compiled(inputs)
        return [result[i] for i in range(len(compiled.outputs))]
    raise HumanposeError("checking an ONNX file needs onnxruntime or openvino: "
                         "pip install 'humanpose[onnx]'")


@torch.inference_mode()
def check_onnx(path: str | os.PathLike, model: nn.Module, cfg, batch: int = 2,
               seed: int = 0) -> float:
    """Largest absolute difference between the ONNX file's and the PyTorch model's outputs
    (every output) on a random normal batch (fp32 on both sides)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(_input_shape(cfg, batch), generator=generator)
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()  # the caller's stays as is
    expected = model(x)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    got = run_onnx(path, x.numpy())
    if len(got) != len(expected):
        raise HumanposeError(f"{path}: {len(got)} ONNX outputs, PyTorch gives {len(expected)}")
    worst = 0.0
    for g, e in zip(got, expected):
        if g.shape != tuple(e.shape):
            raise HumanposeError(f"{path}: ONNX output shape {g.shape} differs from PyTorch's "
                                 f"{tuple(e.shape)}")
        worst = max(worst, float(np.abs(g - e.numpy()).max()))
    return worst


def weights_digest(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and tensor bytes.

    The key of cached exports and compilations: content, not a file's path or time, so the
    same weights hit the cache wherever they come from (a file, a copy, a model in memory)
    and changed weights never do. Tensors are hashed in a fixed memory layout, so a
    channels-last model gives the digest of its contiguous twin.
    """
    h = hashlib.sha256()
    for name in sorted(state_dict):
        value = state_dict[name]
        if not isinstance(value, torch.Tensor):
            h.update(f"{name}|{value!r}".encode())
            continue
        t = value.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def onnx_cache_path(cfg, weights: str | os.PathLike | None, cache_dir: str | os.PathLike,
                    opset: int = DEFAULT_OPSET, digest: str | None = None,
                    variant: str = "") -> Path:
    """Where an on-the-fly export of ``weights`` under ``cfg`` is kept: a name that changes
    whenever the architecture, the input size, the opset, the weights' content or the
    exported form (``variant``, e.g. LPN's inference form) changes.

    ``digest`` identifies the weights (e.g. :func:`weights_digest` of a model in memory);
    without it the file ``weights`` is hashed (:func:`file_digest`).
    """
    h = hashlib.sha256(cfg.MODEL.dump().encode())
    h.update(f"opset={opset}|torch={torch.__version__}".encode())
    if variant:
        h.update(f"|variant={variant}".encode())
    stem = "random-init" if digest is None else "model"
    if weights:
        stem = Path(weights).stem
        if digest is None:
            digest = file_digest(weights)
    if digest is not None:
        h.update(f"weights={digest}".encode())
    return Path(cache_dir) / "onnx" / f"{stem}-{h.hexdigest()[:16]}.onnx"


def cached_pose_onnx(model: nn.Module, cfg, cache_dir: str | os.PathLike,
                     weights: str | os.PathLike | None = None, digest: str | None = None,
                     keypoints=None, variant: str = "") -> Path:
    """The ONNX export of ``model`` in the cache (:func:`onnx_cache_path`), exported with
    :func:`export_pose_onnx` on first use only: the path ``humanpose test`` and
    ``PoseEstimator`` share, so that neither pays the export twice for the same weights.
    ``variant`` names the form ``model`` is in when it is not the model as built (e.g. LPN's
    inference form), so that each form has its own file."""
    path = onnx_cache_path(cfg, weights, cache_dir, digest=digest, variant=variant)
    if not path.is_file():
        logger.info("exporting %s to %s", weights or "the model", path)
        export_pose_onnx(model, cfg, path, check=False, keypoints=keypoints)
    return path
