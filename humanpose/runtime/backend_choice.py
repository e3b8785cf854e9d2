"""The ONNX backend a runtime model runs on: the one named, or with ``auto`` the fastest
here, timed once per file and setting and remembered in the choice cache.

Shared by the top-down :class:`~humanpose.runtime.model.PoseModel` and the one-stage
:class:`~humanpose.runtime.one_stage.OneStageModel`: both time one input of their own shape.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from humanpose.errors import HumanposeError
from humanpose.measured import ChoiceCache, fastest, file_digest
from humanpose.runtime.sessions import (
    ONNX_BACKENDS,
    BackendUnavailable,
    Session,
    available_onnx_backends,
    default_openvino_precision,
    make_session,
)

__all__ = ["open_session"]

logger = logging.getLogger("humanpose")


def open_session(path: Path, backend: str, device: str, threads: int, cache_dir: Path,
                 sample_shape: Sequence[int], runs: int = 7
                 ) -> tuple[str, dict[str, float], Session]:
    """(backend, the timings in ms when measured now, the session) for the ONNX file
    ``path``; ``auto`` times every installed backend on a random input of
    ``sample_shape`` (:func:`humanpose.measured.fastest`) unless the cache knows."""
    if backend != "auto":
        if backend not in ONNX_BACKENDS:
            raise HumanposeError(f"unknown backend {backend!r} for an ONNX model; expected "
                                 f"'auto' or one of {list(ONNX_BACKENDS)}")
        return backend, {}, make_session(backend, path, device, threads, cache_dir)
    candidates = available_onnx_backends(device)
    if not candidates:
        raise BackendUnavailable("no ONNX backend is installed: pip install humanpose "
                                 "(onnxruntime) or 'humanpose[openvino]'")
    if len(candidates) == 1:
        return candidates[0], {}, make_session(candidates[0], path, device, threads, cache_dir)
    cache = ChoiceCache(cache_dir / "auto_backend.json")
    key = cache.make_key("runtime", file_digest(path), device, str(threads),
                         ",".join(candidates),
                         f"openvino={default_openvino_precision() or 'default'}")
    entry = cache.get_entry(key)
    if entry and entry.get("backend") in candidates:
        return (entry["backend"], {},
                make_session(entry["backend"], path, device, threads, cache_dir))
    sample = np.random.default_rng(0).standard_normal(tuple(sample_shape), dtype=np.float32)
    sessions: dict[str, Session] = {}
    for name in candidates:
        try:
            session = make_session(name, path, device, threads, cache_dir)
            session(sample)  # first call: compilation, allocation
            session(sample)
            sessions[name] = session
        except HumanposeError as err:
            logger.info("backend auto: %s left out: %s", name, err)
    if not sessions:
        raise BackendUnavailable(f"none of the backends {list(candidates)} could run {path}")
    chosen, timings = fastest({name: (lambda s=session: s(sample))
                               for name, session in sessions.items()}, runs)
    cache.put_entry(key, {"backend": chosen, "ms": {k: round(v, 3) for k, v in timings.items()}})
    logger.info("backend auto: %s (%s)", chosen,
                ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()))
    return chosen, timings, sessions[chosen]

