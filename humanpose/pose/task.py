"""The pose estimator as an engine :class:`~humanpose.engine.task.Task`: top-down crops,
the config's codec (heatmaps or SimCC), its loss, and COCO/MPII evaluation."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from humanpose.engine.distributed import Dist

__all__ = ["PoseTask"]


class PoseTask:
    """Top-down key points: the seed's job, with any codec."""

    def build_dataset(self, cfg, is_train: bool) -> Dataset:
        from humanpose.data import build_dataset

        return build_dataset(cfg, is_train)

    def build_model(self, cfg, channels_last: bool) -> nn.Module:
        from humanpose.models import build_model

        return build_model(cfg, channels_last=channels_last)

    def head_prefixes(self, cfg) -> tuple[str, ...]:
        from humanpose.models import HEAD_PREFIXES

        return HEAD_PREFIXES.get(cfg.MODEL.NAME, ())

    def build_loss(self, cfg) -> nn.Module:
        from humanpose.pose.loss import build_loss

        return build_loss(cfg)

    def predict(self, model: nn.Module, dataset: Dataset, cfg, dist: Dist) -> Any:
        from humanpose.pose.evaluate import predict_dataset

        return predict_dataset(model, dataset, cfg, dist)

    def score(self, cfg, dataset: Dataset, predictions: Any, output_dir: str | os.PathLike,
              arch_name: str) -> tuple[OrderedDict, float, str]:
        from humanpose.pose.evaluate import score_predictions

        return score_predictions(cfg, dataset, predictions, output_dir, arch_name)
