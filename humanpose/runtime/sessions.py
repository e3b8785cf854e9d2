"""ONNX sessions without PyTorch: ONNX Runtime and OpenVINO behind one call.

A session maps a float32 NumPy batch ``(N, 3, H, W)`` to the model's outputs, a tuple of
float32 arrays in the graph's order. The PyTorch side's runners
(:mod:`humanpose.inference.backends`) wrap these same classes, so a model gives the same
numbers whether torch is installed or not.

``onnxruntime``    ONNX Runtime, all graph optimisations, denormals flushed (CPU, or CUDA).
``openvino``       OpenVINO on the CPU at its default precision (bf16 on CPUs with bf16
                   support, else fp32).
``openvino-fp32``  OpenVINO with fp32 inference forced.

``$HUMANPOSE_OPENVINO_PRECISION`` (``bf16``, ``fp32`` or ``fp16``) replaces OpenVINO's own
default for the ``openvino`` backend: a machine then runs what another CPU kind would pick
(bf16 where the CPU has AMX or AVX512-BF16, fp32 elsewhere), e.g. to run the tests both ways.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path

import numpy as np

from humanpose.errors import HumanposeError

__all__ = ["ONNX_BACKENDS", "OPENVINO_PRECISION_ENV", "BackendUnavailable", "OnnxRuntimeSession",
           "OpenVinoSession", "Session", "available_onnx_backends", "default_openvino_precision",
           "default_threads", "make_session", "onnx_metadata", "require", "resolve_device"]

ONNX_BACKENDS = ("onnxruntime", "openvino", "openvino-fp32")
OPENVINO_PRECISION_ENV = "HUMANPOSE_OPENVINO_PRECISION"
_OV_PRECISIONS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
# OpenVINO: batch sizes up to this get their own static compilation (3 crops of RTMPose-t:
# 10 % faster than the dynamic-batch model, benchmarks/RESULTS.md); larger ones share one.
STATIC_BATCHES = 8
_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "openvino-fp32": "openvino"}


class BackendUnavailable(HumanposeError):
    """A backend whose package is not installed or that cannot run on the chosen device."""


def require(module: str, backend: str) -> None:
    """Raise :class:`BackendUnavailable` naming the extra to install when ``module`` is
    missing."""
    if importlib.util.find_spec(module) is None:
        extra = "openvino" if module == "openvino" else "onnx"
        raise BackendUnavailable(
            f"backend {backend!r} needs the {module} package: pip install 'humanpose[{extra}]'")


def default_threads() -> int:
    """The CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_device(device: str) -> str:
    """``device`` itself, or for ``"auto"`` CUDA where this process can use it (PyTorch's
    view once PyTorch is loaded, else ONNX Runtime's providers) and the CPU otherwise."""
    if device != "auto":
        return device
    torch = sys.modules.get("torch")
    if torch is not None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    import onnxruntime

    return "cuda" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"


def _device_type(device: str) -> tuple[str, int]:
    kind, _, index = str(device).partition(":")
    return kind, int(index) if index else 0


def available_onnx_backends(device: str = "cpu") -> list[str]:
    """The ONNX backends whose packages are installed and that can run on ``device``."""
    kind, _ = _device_type(device)
    names = []
    if importlib.util.find_spec("onnxruntime") is not None:
        if kind == "cpu":
            names.append("onnxruntime")
        else:
            import onnxruntime

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                names.append("onnxruntime")
    if kind == "cpu" and importlib.util.find_spec("openvino") is not None:
        names += ["openvino", "openvino-fp32"]
    return names


def _batch(inputs: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(inputs, dtype=np.float32)


class OnnxRuntimeSession:
    """An ONNX model in ONNX Runtime, with all graph optimisations on."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | os.PathLike, device: str = "cpu",
                 threads: int | None = None):
        require("onnxruntime", self.name)
        import onnxruntime as ort

        kind, index = _device_type(device)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        # Denormal floats are hundreds of times slower on x86 and carry no information here.
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        providers: list = ["CPUExecutionProvider"]
        if kind == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable("onnxruntime has no CUDA provider here; install "
                                         "onnxruntime-gpu or use device='cpu'")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        self.path = Path(onnx_path)
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as err:  # protobuf parse errors, unsupported operators...
            raise HumanposeError(f"{onnx_path}: not a valid ONNX model ({type(err).__name__}: "
                                 f"{str(err).strip()[:300]})") from err
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {self.input_name: _batch(inputs)}))


def default_openvino_precision() -> str | None:
    """The ``openvino`` backend's precision: ``$HUMANPOSE_OPENVINO_PRECISION`` when set,
    else None (OpenVINO's own choice for this CPU)."""
    value = os.environ.get(OPENVINO_PRECISION_ENV, "").strip().lower()
    if not value:
        return None
    if value not in _OV_PRECISIONS:
        raise HumanposeError(f"${OPENVINO_PRECISION_ENV} must be one of "
                             f"{sorted(_OV_PRECISIONS)}, got {value!r}")
    return value


class OpenVinoSession:
    """An ONNX model compiled by OpenVINO for the CPU, tuned for latency.

    Batches of up to :data:`STATIC_BATCHES` crops (a frame's people, with and without the
    flip test) get models compiled for their static shapes, about 10 % faster than one
    dynamic-batch compilation, which larger batches share; each size compiles on its first
    use. With ``cache_dir`` the compiled models are kept on disk
    (OpenVINO's ``CACHE_DIR``), so a later process skips the compilation.
    """

    def __init__(self, onnx_path: str | os.PathLike, precision: str | None = None,
                 threads: int | None = None, device: str = "cpu",
                 cache_dir: str | os.PathLike | None = None):
        self.name = "openvino" if precision is None else f"openvino-{precision}"
        require("openvino", self.name)
        if _device_type(device)[0] != "cpu":
            raise BackendUnavailable(f"backend {self.name!r} runs on the CPU only")
        import openvino as ov

        self.core = ov.Core()
        self.path = str(onnx_path)
        self.config: dict[str, object] = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or default_threads(),
            "CPU_DENORMALS_OPTIMIZATION": True,  # flush denormals, as for onnxruntime
        }
        if cache_dir is not None:  # compiled blobs, keyed by OpenVINO on the model's content
            self.config["CACHE_DIR"] = str(Path(cache_dir) / "openvino")
        if precision is None:
            precision = default_openvino_precision()
        if precision is not None:
            self.config["INFERENCE_PRECISION_HINT"] = _OV_PRECISIONS[precision]
        self._requests: dict[str, object] = {}
        self._lock = threading.Lock()

    def _request(self, batch: int):
        key = str(batch) if batch <= STATIC_BATCHES else "dynamic"
        if key not in self._requests:
            model = self.core.read_model(self.path)
            if key != "dynamic":
                shape = list(model.inputs[0].get_partial_shape())
                model.reshape({0: [batch] + [int(d.get_length()) for d in shape[1:]]})
            compiled = self.core.compile_model(model, "CPU", self.config)
            self._requests[key] = compiled.create_infer_request()
        return self._requests[key]

    @property
    def inference_precision(self) -> str:
        """The element type OpenVINO actually computes in (e.g. ``bf16``, ``f32``)."""
        request = self._request(1)
        kind = request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT")
        return kind.get_type_name() if hasattr(kind, "get_type_name") else str(kind)

    def __call__(self, inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        x = _batch(inputs)
        # An infer request is not thread-safe: one caller at a time from infer to the copies,
        # so that two threads sharing a session never read each other's outputs.
        with self._lock:
            request = self._request(x.shape[0])
            request.infer({0: x})
            count = len(request.get_compiled_model().outputs)
            return tuple(request.get_output_tensor(i).data.copy() for i in range(count))


Session = OnnxRuntimeSession | OpenVinoSession


def make_session(backend: str, onnx_path: str | os.PathLike, device: str = "cpu",
                 threads: int | None = None,
                 cache_dir: str | os.PathLike | None = None) -> Session:
    """The session for ``backend`` (one of :data:`ONNX_BACKENDS`)."""
    if backend not in ONNX_BACKENDS:
        raise HumanposeError(f"unknown ONNX backend {backend!r}; expected one of "
                             f"{list(ONNX_BACKENDS)}")
    require(_MODULES[backend], backend)
    if not Path(onnx_path).is_file():
        raise HumanposeError(f"ONNX file not found: {onnx_path}")
    if backend == "onnxruntime":
        return OnnxRuntimeSession(onnx_path, device, threads)
    precision = "fp32" if backend == "openvino-fp32" else None
    return OpenVinoSession(onnx_path, precision, threads, device, cache_dir)


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """An ONNX file's ``metadata_props``, read by the onnx package when installed, else by
    onnxruntime (the runtime needs no more); raises naming the file if it is not ONNX."""
    path = Path(path)
    if not path.is_file():
        raise HumanposeError(f"ONNX file not found: {path}")
    if importlib.util.find_spec("onnx") is not None:
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as err:
            raise HumanposeError(f"{path}: not a valid ONNX model ({type(err).__name__}: "
                                 f"{str(err).strip()[:300]})") from err
        if not proto.graph.node:
            raise HumanposeError(f"{path}: not a valid ONNX model (the graph is empty)")
        return {p.key: p.value for p in proto.metadata_props}
    if importlib.util.find_spec("onnxruntime") is None:
        raise BackendUnavailable("reading an ONNX file needs onnxruntime: "
                                 "pip install 'humanpose[onnx]'")
    session = OnnxRuntimeSession(path, threads=1)
    return dict(session.session.get_modelmeta().custom_metadata_map)
