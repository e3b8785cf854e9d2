"""What the engine needs to know about a kind of model: a pose estimator or a detector.

The training and test loops are the same for every task; a :class:`Task` supplies the data
set, the network, the loss and the evaluation. Dataset items are ``(image, *targets, meta)``
and the loss is called as ``loss(output, *targets)``. The engine knows tasks only through
:data:`TASKS`, which the task packages fill (:mod:`humanpose.pose`,
:mod:`humanpose.detection`); it never imports them.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Protocol

from torch import nn
from torch.utils.data import Dataset

from humanpose.engine.distributed import Dist

__all__ = ["TASKS", "Task", "register_task", "task_for"]


class Task(Protocol):
    def build_dataset(self, cfg, is_train: bool) -> Dataset: ...

    def build_model(self, cfg, channels_last: bool) -> nn.Module: ...

    def build_loss(self, cfg) -> nn.Module: ...

    def head_prefixes(self, cfg) -> tuple[str, ...]:
        """State-dict prefixes of the modules sized by the outputs (key points, classes):
        fine-tuning from weights made for other outputs re-initialises them."""

    def predict(self, model: nn.Module, dataset: Dataset, cfg, dist: Dist) -> Any:
        """Predictions for the whole ``dataset``, each rank doing a shard; gathered."""

    def score(self, cfg, dataset: Dataset, predictions: Any, output_dir: str | os.PathLike,
              arch_name: str) -> tuple[OrderedDict, float, str]:
        """(named metrics, main metric, its name); writes results files. Rank 0 only."""


# MODEL.NAME -> the task that trains and tests it.
TASKS: dict[str, Task] = {}


def register_task(task: Task, model_names) -> None:
    """Make ``task`` the one for each of ``model_names`` (called by the task packages)."""
    for name in model_names:
        TASKS[name] = task


def task_for(cfg) -> Task:
    """The task registered for ``cfg.MODEL.NAME`` (the package's own tasks are loaded on
    the first miss, so ``engine.train.train(cfg)`` works without importing them first)."""
    name = cfg.MODEL.NAME
    if name not in TASKS:  # called before anything imported the task packages
        from humanpose import load_torch_side

        load_torch_side()
    if name not in TASKS:
        raise ValueError(f"MODEL.NAME {name!r} cannot be trained or tested by humanpose (it "
                         f"runs at inference only); the models that can: {sorted(TASKS)}")
    return TASKS[name]
