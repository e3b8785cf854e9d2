"""Data sets for top-down pose estimation: records, the sample pipeline and loaders.

``build_dataset(cfg, is_train)`` picks the set from ``DATASET.DATASET`` (``coco`` for COCO
and any COCO-format key-point set, ``mpii``), ``DATASET.ROOT`` and ``TRAIN_SET``/``TEST_SET``.

The other names load on first use, so that importing a light module of this package (say
``humanpose.data.geometry`` from the codecs) neither pulls in pycocotools nor closes an
import cycle through :mod:`humanpose.codecs`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = [
    "BadImageError",
    "BadImageWarning",
    "COCODataset",
    "DatasetError",
    "MPIIDataset",
    "Records",
    "SampleOptions",
    "TopDownDataset",
    "build_dataset",
    "build_loader",
    "normalize_batch",
]

# Public name → the module of this package that defines it.
_HOMES = {
    "BadImageError": "images",
    "BadImageWarning": "images",
    "COCODataset": "coco",
    "DatasetError": "coco",
    "MPIIDataset": "mpii",
    "Records": "topdown",
    "SampleOptions": "topdown",
    "TopDownDataset": "topdown",
    "build_loader": "loader",
    "normalize_batch": "normalize",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _coco(cfg, root: str, image_set: str, is_train: bool):
    from humanpose.data.coco import COCODataset

    return COCODataset(cfg, root, image_set, is_train)


def _mpii(cfg, root: str, image_set: str, is_train: bool):
    from humanpose.data.mpii import MPIIDataset

    return MPIIDataset(cfg, root, image_set, is_train)


# DATASET.DATASET (the seed's names) -> the function that builds its TopDownDataset; the
# modules are imported on use, so that ``import humanpose.data`` stays light.
DATASETS: dict[str, Callable] = {"coco": _coco, "mpii": _mpii}


def build_dataset(cfg, is_train: bool):
    """The training (``is_train``) or test set that ``cfg`` describes, a
    :class:`~humanpose.data.topdown.TopDownDataset`."""
    from humanpose.data.coco import DatasetError

    name = cfg.DATASET.DATASET.lower()
    if name not in DATASETS:
        raise DatasetError(f"DATASET.DATASET {cfg.DATASET.DATASET!r} is not known; expected "
                           f"one of {sorted(DATASETS)} (custom COCO-format sets use 'coco')")
    if not cfg.DATASET.ROOT:
        raise DatasetError("DATASET.ROOT is empty: set it to the data folder")
    image_set = cfg.DATASET.TRAIN_SET if is_train else cfg.DATASET.TEST_SET
    return DATASETS[name](cfg, cfg.DATASET.ROOT, image_set, is_train)
