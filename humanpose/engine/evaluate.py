"""The test loop, for any task: load the weights, predict every sample (each rank a shard,
see :class:`ShardSampler`), score on rank 0. What predicting and scoring mean is the task's
(:mod:`humanpose.pose.evaluate`, :mod:`humanpose.detection.evaluate`).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Sampler

__all__ = ["ShardSampler", "TestResult", "amp_dtype", "cpu_has_fast_bf16", "run_test"]

logger = logging.getLogger("humanpose")


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once across ranks (a
    DistributedSampler would pad with repeats, which would count people twice)."""

    def __init__(self, length: int, rank: int, world_size: int):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def amp_dtype(name: str, device: torch.device) -> torch.dtype | None:
    """``none``/``bf16``/``fp16``/``auto`` → the autocast dtype (None: fp32)."""
    name = name.lower()
    if name in ("", "none", "fp32"):
        return None
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        return torch.float16
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    raise ValueError(f"AMP setting must be 'auto', 'none', 'bf16' or 'fp16', got {name!r}")


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles, where bf16 autocast speeds convolutions up.

    With only AVX512-BF16 it slows them down: measured here (Xeon, avx512_bf16 without
    AMX), a bf16 training step of LPN-18/50 at 128x96 is 0.54x/0.65x the fp32 speed.
    """
    from humanpose.measured import cpu_flags

    return "amx_bf16" in cpu_flags()


@dataclass
@dataclass
class TestResult:
    metrics: OrderedDict
    metric_name: str
    value: float
    output_dir: Path


def run_test(cfg, cfg_path: str | os.PathLike) -> TestResult | None:
    """``humanpose test``: load the weights (TEST.MODEL_FILE, else the run's
    ``final_state.pth`` as in the seed), predict the test set on every rank, score on rank 0.

    Returns the result on rank 0 and None on the other ranks.
    """
    from humanpose.checkpoint import CheckpointError, load_checkpoint
    from humanpose.engine.distributed import init_distributed, shutdown
    from humanpose.engine.state import run_dirs, setup_logging
    from humanpose.engine.task import task_for

    dist = init_distributed(cfg.DEVICE)
    try:
        out_dir, _ = run_dirs(cfg, cfg_path)
        setup_logging(out_dir, cfg_path, "valid", dist.is_main, dist.rank)
        task = task_for(cfg)
        dataset = task.build_dataset(cfg, is_train=False)  # fails early on a missing folder
        weights = Path(cfg.TEST.MODEL_FILE) if cfg.TEST.MODEL_FILE else out_dir / "final_state.pth"
        if not cfg.TEST.MODEL_FILE and not weights.is_file():
            raise CheckpointError(f"no weights: TEST.MODEL_FILE is empty and {weights} (where "
                                  "training leaves its last weights) does not exist; give "
                                  "--weights FILE, --model NAME or TEST.MODEL_FILE")
        model = task.build_model(cfg, channels_last=True)
        load_checkpoint(model, weights)
        logger.info("=> loaded weights %s", weights)
        model.to(dist.device)
        preds = task.predict(model, dataset, cfg, dist)
        if not dist.is_main:
            return None
        values, value, name = task.score(cfg, dataset, preds, out_dir, cfg.MODEL.NAME)
        return TestResult(values, name, value, out_dir)
    finally:
        shutdown()
