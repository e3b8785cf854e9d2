"""The benchmarks' one way of timing a call, standard library only: it is imported on the
reference side too, under an mmpose venv that has no humanpose."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], runs: int, warmup: int = 3) -> float:
    """Median milliseconds of ``fn()`` over ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def medians_in_blocks(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 0,
                      block: int = 5) -> dict[str, float]:
    """Median ms of each function over about ``runs`` calls, in rounds of ``block``
    consecutive timed calls per function after one untimed one: side by side in time, yet
    each timed call follows a call of its own kind (a call right after another backend's
    pays for that backend's threads still spinning: OpenVINO after ONNX Runtime ran 2x
    slower on 2 cores). ``warmup`` untimed calls of each come first."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    for _ in range(-(-runs // block)):
        for name, fn in fns.items():
            fn()
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}
