"""Backends side by side: ``PoseEstimator`` timed per backend and batch size on one image,
and its key points compared with fp32 eager PyTorch (``humanpose bench``)."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from yacs.config import CfgNode

from humanpose.inference.backends import BackendUnavailable, TorchRunner
from humanpose.inference.estimator import PoseEstimator

__all__ = ["BenchRow", "bench_boxes", "compare_backends", "format_bench_table"]


@dataclass
class BenchRow:
    """One backend at one batch size: median latency of ``est(image, boxes)`` (crop + model
    + decode), and the largest key-point deviation from fp32 eager PyTorch in pixels."""

    backend: str
    batch: int
    latency_ms: float = float("nan")
    max_deviation_px: float = float("nan")
    note: str = ""

    @property
    def persons_per_s(self) -> float:
        return self.batch / self.latency_ms * 1000 if self.latency_ms > 0 else float("nan")


def bench_boxes(width: int, height: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` person-shaped boxes (x, y, w, h) spread over a ``width`` × ``height`` image."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(0.4, 0.9, count) * height
    w = h * rng.uniform(0.3, 0.6, count)
    x = rng.uniform(0, 1, count) * (width - w)
    y = rng.uniform(0, 1, count) * (height - h)
    return np.stack([x, y, w, h], axis=1).astype(np.float32)


def compare_backends(cfg: CfgNode, weights: str | os.PathLike | None, backends: Sequence[str],
                     batches: Sequence[int], image: np.ndarray, runs: int = 10,
                     device: str = "cpu", flip_test: bool | None = None,
                     threads: int | None = None,
                     cache_dir: str | os.PathLike | None = None,
                     random_weights: bool = False) -> list[BenchRow]:
    """Time ``PoseEstimator`` per backend and batch size on ``image``, interleaved run by run
    (so machine noise hits every backend alike), and compare its key points with those of
    the unfolded fp32 PyTorch model. Backends that cannot run here get a note instead."""
    common = dict(device=device, flip_test=flip_test, threads=threads, cache_dir=cache_dir,
                  random_weights=random_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = PoseEstimator(cfg, weights, backend="torch", **common)
    reference.runner = TorchRunner(reference.model, device, "torch", fold_bn=False,
                                   channels_last=False)
    estimators: dict[str, PoseEstimator] = {}
    rows: dict[tuple[str, int], BenchRow] = {}
    for name in backends:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = PoseEstimator(cfg, weights, backend=name, **common)
            estimators[name] = est
        except (BackendUnavailable, ImportError) as err:
            for n in batches:
                rows[name, n] = BenchRow(name, n, note=f"unavailable: {err}")
    height, width = image.shape[:2]
    for n in batches:
        boxes = bench_boxes(width, height, n)
        expected = reference.predict(image, boxes)
        times: dict[str, list[float]] = {name: [] for name in estimators}
        for name, est in estimators.items():
            got = est.predict(image, boxes)  # warm-up (compilation for this shape)
            deviation = float(np.abs(got[..., :2] - expected[..., :2]).max())
            label = f"auto ({est.backend})" if name == "auto" else name
            rows[name, n] = BenchRow(label, n, max_deviation_px=deviation)
        for _ in range(runs):
            for name, est in estimators.items():
                start = time.perf_counter()
                est.predict(image, boxes)
                times[name].append((time.perf_counter() - start) * 1000)
        for name, t in times.items():
            rows[name, n].latency_ms = float(np.median(t))
    return [rows[name, n] for name in backends for n in batches if (name, n) in rows]


def format_bench_table(rows: Sequence[BenchRow]) -> str:
    """A markdown table of :func:`compare_backends` rows."""
    lines = ["| backend | batch | latency ms | persons/s | max key-point deviation px "
             "(vs fp32 torch) |", "|---|---|---|---|---|"]
    for r in rows:
        if r.note:
            lines.append(f"| {r.backend} | {r.batch} | {r.note} | | |")
        else:
            lines.append(f"| {r.backend} | {r.batch} | {r.latency_ms:.2f} | "
                         f"{r.persons_per_s:.1f} | {r.max_deviation_px:.3f} |")
    return "\n".join(lines)
