"""What the engine needs to know about a kind of model: a pose estimator or a detector.

The training and test loops are the same for both; a :class:`Task` supplies the data set,
the network, the loss and the evaluation. Dataset items are ``(image, *targets, meta)``
and the loss is called as ``loss(output, *targets)``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Protocol

from torch import nn
from torch.utils.data import Dataset

from humanpose.engine.distributed import Dist

__all__ = ["PoseTask", "Task", "task_for"]


class Task(Protocol):
    def build_dataset(self, cfg, is_train: bool) -> Dataset: ...

    def build_model(self, cfg, channels_last: bool) -> nn.Module: ...

    def build_loss(self, cfg) -> nn.Module: ...

    def predict(self, model: nn.Module, dataset: Dataset, cfg, dist: Dist) -> Any:
        """Predictions for the whole ``dataset``, each rank doing a shard; gathered."""

    def score(self, cfg, dataset: Dataset, predictions: Any, output_dir: str | os.PathLike,
              arch_name: str) -> tuple[OrderedDict, float, str]:
        """(named metrics, main metric, its name); writes results files. Rank 0 only."""


class PoseTask:
    """Top-down key-point heatmaps: the seed's job."""

    def build_dataset(self, cfg, is_train: bool) -> Dataset:
        from humanpose.data import build_dataset

        return build_dataset(cfg, is_train)

    def build_model(self, cfg, channels_last: bool) -> nn.Module:
        from humanpose.models import build_model

        return build_model(cfg, channels_last=channels_last)

    def build_loss(self, cfg) -> nn.Module:
        from humanpose.engine.loss import build_loss

        return build_loss(cfg)

    def predict(self, model: nn.Module, dataset: Dataset, cfg, dist: Dist) -> Any:
        from humanpose.engine.evaluate import predict_dataset

        return predict_dataset(model, dataset, cfg, dist)

    def score(self, cfg, dataset: Dataset, predictions: Any, output_dir: str | os.PathLike,
              arch_name: str) -> tuple[OrderedDict, float, str]:
        from humanpose.engine.evaluate import score_predictions

        return score_predictions(cfg, dataset, predictions, output_dir, arch_name)


def task_for(cfg) -> Task:
    """The detection task for detector model names, the pose task otherwise."""
    try:
        from humanpose.detection import DETECTOR_NAMES, DetectionTask
    except ImportError:
        return PoseTask()
    return DetectionTask() if cfg.MODEL.NAME in DETECTOR_NAMES else PoseTask()
