"""``TRAIN.AMP auto``: the training precision chosen by timing it on this machine.

On a GPU mixed precision always pays (bf16 where supported, else fp16). On a CPU it depends
on the chip and the model: with AMX tiles bf16 convolutions are several times faster for
large models, yet a small model can still run slower under autocast (its casts cost more
than its convolutions gain); with only AVX512-BF16 bf16 is slower; without either it is
emulated. So ``auto`` times a few training steps (forward and backward) in fp32 and in bf16
on a copy of the model, keeps bf16 only when it is clearly faster, and caches the choice
(:class:`humanpose.measured.ChoiceCache`) next to the exports.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from humanpose.measured import ChoiceCache, cpu_flags, default_cache_dir
from humanpose.predict import autocast_for

__all__ = ["PrecisionChoice", "choose_train_precision", "cpu_supports_bf16", "time_train_steps"]

BF16_MIN_GAIN = 0.9  # bf16 is kept when its step takes under 90 % of the fp32 step
MEASURE_MAX_BATCH = 16  # the timed batch: the training one, capped so that timing stays short
_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


@dataclass(frozen=True)
class PrecisionChoice:
    dtype: torch.dtype | None
    reason: str
    timings_ms: dict[str, float] = field(default_factory=dict)


def cpu_supports_bf16() -> bool:
    """bf16 arithmetic in hardware (AVX512-BF16 or AMX): else autocast only emulates it."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def _surrogate_loss(outputs) -> torch.Tensor:
    """A loss touching every output: the backward pass costs what the real loss's does."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float().mean()
    values = outputs.values() if isinstance(outputs, dict) else outputs
    return sum(_surrogate_loss(v) for v in values)


def time_train_steps(model: nn.Module, sample: torch.Tensor, dtypes, steps: int = 3,
                     warmup: int = 1) -> dict[str, float]:
    """Median ms of a training step (forward + backward, no optimiser) of a copy of ``model``
    per autocast dtype in ``dtypes``, the dtypes interleaved step by step so that machine
    noise hits all alike."""
    model = copy.deepcopy(model).train()
    times: dict[str, list[float]] = {_NAMES[d]: [] for d in dtypes}
    for i in range(warmup + steps):
        for dtype in dtypes:
            start = time.perf_counter()
            with autocast_for(sample.device, dtype):
                loss = _surrogate_loss(model(sample))
            loss.backward()
            model.zero_grad(set_to_none=True)
            if sample.device.type == "cuda":
                torch.cuda.synchronize(sample.device)
            if i >= warmup:
                times[_NAMES[dtype]].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def choose_train_precision(setting: str, model: nn.Module, sample_shape: tuple[int, ...],
                           device: torch.device, signature: str,
                           channels_last: bool = False,
                           cache_dir: str | os.PathLike | None = None) -> PrecisionChoice:
    """The autocast dtype for ``TRAIN.AMP`` = ``setting``; ``auto`` on a CPU measures
    (``sample_shape`` (N, 3, H, W), batch capped at :data:`MEASURE_MAX_BATCH`) and caches the
    result under ``signature`` (the model's configuration)."""
    from humanpose.engine.evaluate import amp_dtype

    setting = str(setting).lower()
    if setting != "auto":
        return PrecisionChoice(amp_dtype(setting, device), f"TRAIN.AMP {setting}")
    if device.type == "cuda":
        return PrecisionChoice(amp_dtype("auto", device), "auto: mixed precision on the GPU")
    if not cpu_supports_bf16():
        return PrecisionChoice(None, "auto: fp32, this CPU has no bf16 arithmetic")
    n, c, h, w = sample_shape
    n = max(1, min(int(n), MEASURE_MAX_BATCH))
    cache = ChoiceCache(Path(cache_dir or default_cache_dir()) / "train_precision.json")
    key = cache.make_key("train", signature, str(device), str(torch.get_num_threads()),
                         f"{n}x{c}x{h}x{w}", f"channels_last={channels_last}")
    entry = cache.get_entry(key)
    if entry and entry.get("precision") in ("fp32", "bf16"):
        dtype = torch.bfloat16 if entry["precision"] == "bf16" else None
        return PrecisionChoice(dtype, "auto: measured earlier on this machine",
                               dict(entry.get("ms", {})))
    sample = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    if channels_last:
        sample = sample.contiguous(memory_format=torch.channels_last)
    timings = time_train_steps(model, sample, (None, torch.bfloat16))
    dtype = torch.bfloat16 if timings["bf16"] < BF16_MIN_GAIN * timings["fp32"] else None
    cache.put_entry(key, {"precision": _NAMES[dtype],
                          "ms": {k: round(v, 2) for k, v in timings.items()}})
    return PrecisionChoice(dtype, "auto: measured now", timings)
