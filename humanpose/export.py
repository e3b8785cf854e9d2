"""ONNX export, checked against PyTorch, and the cache of exported files.

The exported graph takes normalised crops ``input`` float32 ``(N, 3, H, W)`` (N dynamic by
default) and returns ``heatmaps`` float32 ``(N, K, h, w)``: exactly what the PyTorch model
computes, so :class:`humanpose.PoseEstimator` crops, flips and decodes around it with the
same code whatever the backend.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import os
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humanpose.errors import HumanposeError

__all__ = ["DEFAULT_OPSET", "KEYPOINTS_METADATA_KEY", "check_onnx", "export_onnx",
           "onnx_cache_path", "read_onnx_keypoints", "run_onnx"]

DEFAULT_OPSET = 17
# metadata_props entry holding the key-point set as JSON (keypoint_set_to_dict's dict), so
# that an .onnx file alone says which joints its heatmaps are.
KEYPOINTS_METADATA_KEY = "humanpose_keypoints"
INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"


def _input_shape(cfg, batch: int) -> tuple[int, int, int, int]:
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    return batch, 3, height, width


def export_onnx(model: nn.Module, cfg, path: str | os.PathLike, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True, check: bool = True, keypoints=None) -> float:
    """Write ``model`` as ONNX to ``path``; returns the largest |ONNX − PyTorch| on a random
    batch of 2 (``nan`` with ``check=False``). ``keypoints`` (a KeypointSet) goes into the
    file's metadata (:data:`KEYPOINTS_METADATA_KEY`).

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
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (sample,), str(tmp), opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes=axes, do_constant_folding=True, dynamo=False)
        if keypoints is not None:
            _add_keypoints_metadata(tmp, keypoints)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if not check:
        return float("nan")
    return check_onnx(path, model, cfg, batch=2 if dynamic_batch else 1)


def _add_keypoints_metadata(path: Path, keypoints) -> None:
    import onnx

    from humanpose.data.keypoints import keypoint_set_to_dict

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = KEYPOINTS_METADATA_KEY, json.dumps(keypoint_set_to_dict(keypoints))
    onnx.save(proto, str(path))


def read_onnx_keypoints(path: str | os.PathLike):
    """The key-point set in an ONNX file's metadata, or None (files from elsewhere)."""
    if importlib.util.find_spec("onnx") is None:
        return None
    import onnx

    from humanpose.data.keypoints import keypoint_set_from_dict

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # the backends report unreadable files
        return None
    for entry in proto.metadata_props:
        if entry.key == KEYPOINTS_METADATA_KEY:
            try:
                data = json.loads(entry.value)
            except ValueError as err:
                raise HumanposeError(f"{path}: metadata {KEYPOINTS_METADATA_KEY} is not "
                                     f"JSON: {err}") from err
            return keypoint_set_from_dict(data, source=f"{path} ({KEYPOINTS_METADATA_KEY})")
    return None


def run_onnx(path: str | os.PathLike, inputs: np.ndarray) -> np.ndarray:
    """Run an exported file once, in fp32, with ONNX Runtime (else OpenVINO in fp32)."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: inputs})[-1]
    if importlib.util.find_spec("openvino") is not None:
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU",
                                           {"INFERENCE_PRECISION_HINT": "f32"})
        return compiled(inputs)[0]
    raise HumanposeError("checking an ONNX file needs onnxruntime or openvino: "
                         "pip install 'humanpose[onnx]'")


@torch.inference_mode()
def check_onnx(path: str | os.PathLike, model: nn.Module, cfg, batch: int = 2,
               seed: int = 0) -> float:
    """Largest absolute difference between the ONNX file's and the PyTorch model's heatmaps
    on a random normal batch (fp32 on both sides)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(_input_shape(cfg, batch), generator=generator)
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()  # the caller's stays as is
    expected = model(x)
    if isinstance(expected, (list, tuple)):
        expected = expected[-1]
    got = run_onnx(path, x.numpy())
    if got.shape != tuple(expected.shape):
        raise HumanposeError(f"{path}: ONNX output shape {got.shape} differs from PyTorch's "
                             f"{tuple(expected.shape)}")
    return float(np.abs(got - expected.numpy()).max())


def onnx_cache_path(cfg, weights: str | os.PathLike | None, cache_dir: str | os.PathLike,
                    opset: int = DEFAULT_OPSET) -> Path:
    """Where an on-the-fly export of ``weights`` under ``cfg`` is kept: a name that changes
    whenever the architecture, the input size, the opset or the weights file changes."""
    h = hashlib.sha256(cfg.MODEL.dump().encode())
    h.update(f"opset={opset}|torch={torch.__version__}".encode())
    stem = "random-init"
    if weights:
        weights = Path(weights)
        stat = weights.stat()
        h.update(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        stem = weights.stem
    return Path(cache_dir) / "onnx" / f"{stem}-{h.hexdigest()[:16]}.onnx"
