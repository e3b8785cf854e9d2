"""Choices measured once per machine and setting (backend, precision), kept on disk.

What is fastest depends on the CPU (AMX tiles make bf16 several times faster, AVX512-BF16
alone makes it slower), the thread count, the library versions and the model, so the
choice is timed, not guessed from flags, and cached in a JSON file under the cache folder
(``$HUMANPOSE_CACHE``, the folder of the ONNX exports) so that the timing runs once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["ChoiceCache", "cpu_flags", "cpu_name", "default_cache_dir", "file_digest",
           "fastest", "library_versions"]

_CPU_FLAGS_OF_INTEREST = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512_fp16", "avx512f",
                          "avx2")


def fastest(calls: Mapping[str, Callable[[], object]], runs: int = 7
            ) -> tuple[str, dict[str, float]]:
    """The name of the fastest of ``calls`` and every median in ms. They are timed in
    rounds, one call each per round, so that machine noise hits all alike; and each timed
    call follows an untimed call of the same candidate, not another's thread pool still
    spinning (ONNX Runtime's workers spin after a call, and OpenVINO right after it
    measured 2x slower on 2 cores, losing a choice it should win)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            call()
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return min(medians, key=medians.__getitem__), medians


def default_cache_dir() -> Path:
    """``$HUMANPOSE_CACHE`` or ``~/.cache/humanpose``: exported ONNX files, measured choices."""
    return Path(os.environ.get("HUMANPOSE_CACHE", Path.home() / ".cache" / "humanpose"))


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_name() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``lscpu``'s), empty where /proc/cpuinfo is not readable."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def library_versions() -> list[str]:
    versions = []
    for module in ("torch", "onnxruntime", "openvino"):
        try:
            versions.append(f"{module} {importlib.metadata.version(module)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


class ChoiceCache:
    """One JSON file of measured choices, keyed by a digest of everything they depend on
    (the machine's CPU and its precision flags, library versions, and the caller's parts)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @staticmethod
    def make_key(*parts: str) -> str:
        flags = sorted(cpu_flags() & set(_CPU_FLAGS_OF_INTEREST))
        text = "|".join([*parts, cpu_name(), ",".join(flags), *library_versions()])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get_entry(self, key: str) -> dict | None:
        entry = self._read().get(key)
        return entry if isinstance(entry, dict) else None

    def put_entry(self, key: str, entry: Mapping) -> None:
        data = self._read()
        data[key] = dict(entry)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)
        except OSError:  # a read-only home: measure again next time
            pass


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read once in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()
