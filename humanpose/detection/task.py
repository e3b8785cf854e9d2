"""The person detector as an engine :class:`~humanpose.engine.task.Task`.

With it, ``humanpose train`` and ``humanpose test`` run the detector through the same loops
as the pose models (DDP, AMP, checkpoints, resume, logging); only the data, the network, the
loss and the evaluation differ, and they live in this package.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from humanpose.engine.distributed import Dist

__all__ = ["DetectionTask"]


class DetectionTask:
    """Whole letterboxed images → centre heatmap, offsets and sizes → COCO box AP."""

    def build_dataset(self, cfg, is_train: bool) -> Dataset:
        from humanpose.detection.data import build_detection_dataset

        return build_detection_dataset(cfg, is_train)

    def build_model(self, cfg, channels_last: bool) -> nn.Module:
        from humanpose.detection.model import build_detector

        return build_detector(cfg, channels_last=channels_last)

    def head_prefixes(self, cfg) -> tuple[str, ...]:
        return ()  # a detector's tensors of another shape are skipped one by one

    def build_loss(self, cfg) -> nn.Module:
        from humanpose.detection.codec import DetectionLoss

        return DetectionLoss()

    def predict(self, model: nn.Module, dataset: Dataset, cfg, dist: Dist) -> Any:
        from humanpose.detection.evaluate import predict_boxes

        return predict_boxes(model, dataset, cfg, dist)

    def score(self, cfg, dataset: Dataset, predictions: Any, output_dir: str | os.PathLike,
              arch_name: str) -> tuple[OrderedDict, float, str]:
        from humanpose.detection.evaluate import score_boxes

        return score_boxes(cfg, dataset, predictions, output_dir, arch_name)
