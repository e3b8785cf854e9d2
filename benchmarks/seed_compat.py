"""Running the seed (humanpose.pytorch) beside humanpose, for side-by-side benchmarks.

The seed's code is imported at run time from a checkout given on the command line; none of
it is part of this project. What it needs and we lack is stubbed here, and nothing else.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from yacs.config import CfgNode

# The models whose speed the benchmarks compare with the seed's (issues 2 and 5).
COMPARED_MODELS = {
    "LPN-50": "experiments/coco/lpn/lpn50_256x192_gd256x2_gc.yaml",
    "HRNet-W32": "experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml",
    "HRNet-W18-small-v2": "experiments/coco/hrnet/w18_small_v2_256x192_adam_lr1e-3.yaml",
}
SEED_MODULES = {"lpn": "models.lpn", "pose_hrnet": "models.pose_hrnet",
                "pose_resnet": "models.pose_resnet"}


def seed_model(seed_root: Path, cfg_path: Path) -> torch.nn.Module:
    """The seed's network for an experiment file, built by the seed's own model code."""
    if str(seed_root / "lib") not in sys.path:
        sys.path.insert(0, str(seed_root / "lib"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = CfgNode(new_allowed=True)
        cfg.merge_from_file(str(cfg_path))
        module = importlib.import_module(SEED_MODULES[cfg.MODEL.NAME])
    return module.get_pose_net(cfg, is_train=False)


def seed_layout(src: Path, dst: Path, splits=("val2017",)) -> None:
    """Copy-free view of a synthetic set with COCO's ``%012d.jpg`` names, as the seed needs."""
    for split in splits:
        ann = json.loads((src / "annotations" / f"person_keypoints_{split}.json").read_text())
        (dst / "images" / split).mkdir(parents=True, exist_ok=True)
        for image in ann["images"]:
            name = f"{image['id']:012d}.jpg"
            target = dst / "images" / split / name
            if not target.exists():
                os.symlink(src / "images" / split / image["file_name"], target)
            image["file_name"] = name
        (dst / "annotations").mkdir(exist_ok=True)
        (dst / "annotations" / f"person_keypoints_{split}.json").write_text(json.dumps(ann))
    (dst / "person_detection_results").mkdir(exist_ok=True)
    for f in (src / "person_detection_results").iterdir():
        target = dst / "person_detection_results" / f.name
        if not target.exists():
            os.symlink(f, target)


def seed_modules(seed_root: Path):
    """Import the seed's packages, with the imports it needs but does not use stubbed out."""
    for alias, kind in (("float", float), ("int", int), ("bool", bool)):
        if not hasattr(np, alias):  # removed in NumPy 2; the seed still uses them
            setattr(np, alias, kind)
    sys.modules.setdefault("json_tricks", json)  # same dump/load API for what the seed writes
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        tv.utils = types.SimpleNamespace(make_grid=None)
        sys.modules["torchvision"] = tv
    # The seed's box NMS is compiled Cython (lib/Makefile); key-point evaluation only needs
    # its pure-Python OKS-NMS, so the compiled modules are stubbed.
    for name in ("cpu_nms", "gpu_nms"):
        sys.modules.setdefault(f"nms.{name}", types.SimpleNamespace(**{name: None}))
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # the seed's GPU calls, on the CPU
    sys.path.insert(0, str(seed_root / "lib"))
    import core.function as function
    import dataset as seed_dataset
    import models.lpn  # noqa: F401
    import models.pose_hrnet  # noqa: F401
    import models.pose_resnet  # noqa: F401
    from config import cfg as seed_default
    from core.loss import JointsMSELoss

    return function, seed_dataset, seed_default, JointsMSELoss, sys.modules["models"]


def seed_cfg(seed_default, ours) -> object:
    """The seed's config node with every value of ours that the seed knows."""
    cfg = seed_default.clone()
    cfg.defrost()
    ours_dict = yaml.safe_load(ours.dump())

    def merge(node, values):
        for key, value in values.items():
            if key not in node:
                continue
            if isinstance(value, dict):
                if key == "EXTRA":
                    node[key] = type(node)(value, new_allowed=True)
                else:
                    merge(node[key], value)
            else:
                node[key] = tuple(value) if isinstance(node[key], tuple) else value

    merge(cfg, ours_dict)
    cfg.DEBUG.DEBUG = False
    return cfg


class SeedNormalize:
    """The seed's torchvision ToTensor + Normalize, in the same float32 arithmetic."""

    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def __call__(self, img):
        x = torch.from_numpy(img.copy()).permute(2, 0, 1).float().div(255)
        return x.sub(self.mean).div(self.std)
