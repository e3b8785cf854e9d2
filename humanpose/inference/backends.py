"""Runners: one interface over the ways a pose network can be executed.

A runner maps a float32 ``(N, 3, H, W)`` batch of normalised crops to the network's float32
outputs: heatmaps ``(N, K, h, w)``, or a tuple (SimCC's x and y vectors). Tensors go in and
come out, so the shared :func:`humanpose.predict.predict_outputs` (flip test included)
drives every backend the same way evaluation drives the PyTorch model.

Backends:

``torch``          the PyTorch model in fp32, batch norms folded into the convolutions,
                   channels-last weights and activations; LPN in its fused inference form
                   (:func:`humanpose.inference.lpn_form.lpn_inference_form`).
``torch-bf16``     the same under bf16 autocast (fast on CPUs with AMX, and on GPUs).
``torch-fp16``     the same under fp16 autocast (GPUs).
``onnxruntime``    the exported ONNX model in ONNX Runtime (CPU, or CUDA when asked).
``openvino``       the ONNX model compiled by OpenVINO for the CPU at its default precision
                   (bf16 on CPUs that support it, else fp32).
``openvino-fp32``  OpenVINO with fp32 inference forced (faster than bf16 on CPUs that have
                   AVX512-BF16 but no AMX).

``auto`` times every available backend on a dummy batch and keeps the fastest
(:func:`select_fastest`); the choice is cached on disk by :class:`AutoChoiceCache`.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from humanpose.codecs import Outputs, as_float_outputs
from humanpose.measured import ChoiceCache, default_cache_dir, fastest
from humanpose.models.folding import fold_batchnorm
from humanpose.predict import autocast_for
from humanpose.runtime.sessions import (
    ONNX_BACKENDS,
    BackendUnavailable,
    OnnxRuntimeSession,
    OpenVinoSession,
    default_openvino_precision,
    require,
)

__all__ = [
    "BACKENDS",
    "ONNX_BACKENDS",
    "AutoChoiceCache",
    "BackendUnavailable",
    "OnnxRuntimeRunner",
    "OpenVinoRunner",
    "Runner",
    "TorchRunner",
    "available_backends",
    "choose_backend",
    "default_cache_dir",
    "fold_batchnorm",
    "make_runner",
    "select_fastest",
    "time_runner",
]

BACKENDS = ("torch", "torch-bf16", "torch-fp16", "onnxruntime", "openvino", "openvino-fp32")
logger = logging.getLogger("humanpose")
_TORCH_DTYPES = {"torch": None, "torch-bf16": torch.bfloat16, "torch-fp16": torch.float16}
_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino-fp32": "openvino"}


class Runner(Protocol):
    """Normalised crops ``(N, 3, H, W)`` float32 → the network's float32 outputs."""

    name: str

    def __call__(self, inputs: torch.Tensor) -> Outputs: ...


_require = require  # tests replace it to act as if a package were missing


def available_backends(device: str | torch.device = "cpu") -> list[str]:
    """The backends that can run on ``device`` here (packages installed, hardware present)."""
    device = torch.device(device)
    names = ["torch"]
    if device.type == "cuda":
        names.append("torch-fp16")
        if torch.cuda.is_bf16_supported():
            names.append("torch-bf16")
    else:
        names.append("torch-bf16")
    if importlib.util.find_spec("onnxruntime") is not None:
        if device.type == "cpu":
            names.append("onnxruntime")
        else:
            import onnxruntime

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                names.append("onnxruntime")
    if device.type == "cpu" and importlib.util.find_spec("openvino") is not None:
        names += ["openvino", "openvino-fp32"]
    return names


# ----------------------------------------------------------------------------- torch
class TorchRunner:
    """The PyTorch model, optimised for inference: BN folded, channels-last, autocast."""

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu",
                 backend: str = "torch", fold_bn: bool = True, channels_last: bool = True,
                 inference_form: bool = True):
        if backend not in _TORCH_DTYPES:
            raise ValueError(f"not a torch backend: {backend!r}; expected one of "
                             f"{list(_TORCH_DTYPES)}")
        self.name = backend
        self.device = torch.device(device)
        self.dtype = _TORCH_DTYPES[backend]
        from humanpose.inference.lpn_form import is_lpn, lpn_inference_form

        if fold_bn and inference_form and is_lpn(model):  # folds its batch norms itself
            model = lpn_inference_form(model)
        else:
            model = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
        self.channels_last = channels_last
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=memory_format).eval()

    @torch.inference_mode()
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(inputs).to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(self.device, self.dtype):
            out = self.model(x)
        return as_float_outputs(out)


# ----------------------------------------------------------------------------- ONNX
def _as_numpy_nchw(inputs: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(inputs, torch.Tensor):
        inputs = inputs.detach().to("cpu", torch.float32).contiguous().numpy()
    return np.ascontiguousarray(inputs, dtype=np.float32)


class _TensorCalls:
    """The runtime session's call with torch tensors: tensors in, tensors out (one output
    as a tensor, several, SimCC's x and y, as a tuple), as :class:`Runner` says."""

    def session_outputs(self, inputs: np.ndarray) -> Outputs:
        """The NumPy call: one output as an array, several as a tuple."""
        arrays = super().__call__(inputs)
        return arrays[0] if len(arrays) == 1 else arrays

    def __call__(self, inputs: torch.Tensor | np.ndarray) -> Outputs:
        out = self.session_outputs(_as_numpy_nchw(inputs))
        if isinstance(out, tuple):
            return tuple(torch.from_numpy(np.asarray(a)) for a in out)
        return torch.from_numpy(np.asarray(out))


class OnnxRuntimeRunner(_TensorCalls, OnnxRuntimeSession):
    """:class:`~humanpose.runtime.sessions.OnnxRuntimeSession` as a runner."""

    def __init__(self, onnx_path: str | os.PathLike, device: str | torch.device = "cpu",
                 threads: int | None = None):
        super().__init__(onnx_path, str(torch.device(device)),
                         threads or torch.get_num_threads())


class OpenVinoRunner(_TensorCalls, OpenVinoSession):
    """:class:`~humanpose.runtime.sessions.OpenVinoSession` as a runner."""

    def __init__(self, onnx_path: str | os.PathLike, precision: str | None = None,
                 threads: int | None = None, device: str | torch.device = "cpu",
                 cache_dir: str | os.PathLike | None = None):
        super().__init__(onnx_path, precision, threads or torch.get_num_threads(),
                         str(torch.device(device)), cache_dir)


def make_runner(backend: str, model: nn.Module | None = None,
                onnx_path: str | os.PathLike | None = None,
                device: str | torch.device = "cpu", threads: int | None = None,
                cache_dir: str | os.PathLike | None = None,
                inference_form: bool = True) -> Runner:
    """The runner for ``backend`` (one of :data:`BACKENDS`); OpenVINO keeps its compiled
    models under ``cache_dir`` when given; ``inference_form``: run LPN in its fused form
    (torch backends; the ONNX file is whatever ``onnx_path`` holds)."""
    if backend in _TORCH_DTYPES:
        if model is None:
            raise ValueError(f"backend {backend!r} needs the PyTorch model")
        return TorchRunner(model, device, backend, inference_form=inference_form)
    if backend not in ONNX_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {BACKENDS}")
    _require(_MODULES[backend], backend)
    if onnx_path is None:
        raise ValueError(f"backend {backend!r} needs an ONNX file")
    if backend == "onnxruntime":
        return OnnxRuntimeRunner(onnx_path, device, threads)
    precision = "fp32" if backend == "openvino-fp32" else None
    return OpenVinoRunner(onnx_path, precision, threads, device, cache_dir)


# ----------------------------------------------------------------------------- auto
def time_runner(runner: Callable[[torch.Tensor], Outputs], sample: torch.Tensor,
                runs: int = 7, warmup: int = 2) -> float:
    """Median milliseconds of ``runner(sample)`` (after ``warmup`` untimed calls); the
    runner may return one tensor or several (SimCC's x and y)."""
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        _call_synced(runner, sample)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _call_synced(runner: Callable[[torch.Tensor], Outputs], sample: torch.Tensor) -> None:
    """``runner(sample)``, finished: a GPU runner returns before its kernels end."""
    out = runner(sample)
    first = out[0] if isinstance(out, (list, tuple)) else out
    if first.device.type == "cuda":
        torch.cuda.synchronize(first.device)


def select_fastest(factories: Mapping[str, Callable[[], Runner]], sample: torch.Tensor,
                   runs: int = 7) -> tuple[str, dict[str, float]]:
    """Build and time each candidate (:func:`humanpose.measured.fastest`); returns the
    fastest name and every median in ms (failed ones are left out)."""
    runners: dict[str, Runner] = {}
    for name, factory in factories.items():
        try:
            runner = factory()
            runner(sample)  # first call: compilation, allocation
            runner(sample)
            runners[name] = runner
        except Exception as err:  # a backend that cannot run this model is not a candidate
            logger.info("backend auto: %s left out: %s", name, err)
            continue
    if not runners:
        raise BackendUnavailable(f"none of the backends {list(factories)} could run the model")
    return fastest({name: (lambda r=runner: _call_synced(r, sample))
                    for name, runner in runners.items()}, runs)


def choose_backend(candidates: Sequence[str], factory: Callable[[str], Runner],
                   signature: str, device: str | torch.device, sample: torch.Tensor,
                   cache_dir: str | os.PathLike | None = None, runs: int = 7
                   ) -> tuple[str, dict[str, float], Runner | None]:
    """``auto``: the fastest of ``candidates`` on ``sample``, measured once per setting and
    kept in :class:`AutoChoiceCache` under ``signature`` (the model's identity).

    Returns (name, the timings in ms when measured now, else empty, the winner's runner when
    it was built for the measurement, else None).
    """
    device = torch.device(device)
    cache = AutoChoiceCache(cache_dir)
    key = cache.key(signature, device, int(sample.shape[0]), candidates)
    chosen = cache.get(key)
    if chosen in candidates:
        return chosen, {}, None
    built: dict[str, Runner] = {}

    def make(name: str) -> Runner:
        built[name] = factory(name)
        return built[name]

    chosen, timings = select_fastest({name: (lambda name=name: make(name))
                                      for name in candidates}, sample, runs=runs)
    cache.put(key, chosen, timings)
    logger.info("backend auto: %s (%s)", chosen,
                ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()))
    return chosen, timings, built.get(chosen)


class AutoChoiceCache(ChoiceCache):
    """The ``auto`` choice per model, device, machine and library versions, in a JSON file,
    so the measurement runs once per setting instead of at every start."""

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        super().__init__(Path(cache_dir or default_cache_dir()) / "auto_backend.json")

    @staticmethod
    def key(model_signature: str, device: torch.device, batch: int,
            candidates: Sequence[str]) -> str:
        return ChoiceCache.make_key(model_signature, str(device), str(torch.get_num_threads()),
                                    str(batch), ",".join(candidates),
                                    f"openvino={default_openvino_precision() or 'default'}")

    def get(self, key: str) -> str | None:
        entry = self.get_entry(key)
        return entry.get("backend") if entry else None

    def put(self, key: str, backend: str, timings: Mapping[str, float]) -> None:
        self.put_entry(key, {"backend": backend,
                             "ms": {k: round(v, 3) for k, v in timings.items()}})
