"""Train-mode data loading speed: the seed's pipeline vs humanpose's exact and fast modes.

    python benchmarks/bench_data.py --seed-root /work/seedsrc

Generates COCO-sized (640x480) synthetic JPEGs, then, in one process with one thread
(``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``), times a shuffled pass of
``--samples`` training samples through a ``num_workers=0`` DataLoader (batch 32, default
collate) for each pipeline, interleaved, ``--repeats`` times, and reports medians.

Before timing it checks, under identical random draws, that the exact mode's targets,
weights and joints equal the seed's and its crops are within one grey level; the fast
mode's targets must equal them too (its crops differ where the JPEG was decoded smaller).

The seed is imported from ``--seed-root`` at run time, with three stand-ins that say
nothing about its data pipeline: ``json_tricks`` (not installed) is the standard ``json``,
``nms.nms`` (a Cython build) is an empty module, ``np.float`` (gone in NumPy 2) is
``float``; and its ``image_path_from_index`` reads each image's ``file_name`` instead of
``%012d.jpg``. Its torchvision transform is emulated by the same torch ops as
``ToTensor()`` + ``Normalize(mean, std)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import types

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from humanpose.config import get_cfg  # noqa: E402
from humanpose.data import build_dataset  # noqa: E402
from humanpose.data.synthetic import SynthConfig, write_coco_set  # noqa: E402
from humanpose.data.topdown import IMAGENET_MEAN, IMAGENET_STD, normalize_batch  # noqa: E402

SETTINGS = {  # the LPN COCO experiments' data settings
    "IMAGE_SIZE": [192, 256], "HEATMAP_SIZE": [48, 64], "SIGMA": 2, "COLOR_RGB": True,
    "FLIP": True, "PROB_HALF_BODY": 0.3, "NUM_JOINTS_HALF_BODY": 8, "ROT_FACTOR": 45,
    "SCALE_FACTOR": 0.35,
}


class SeedTransform:
    """torchvision's ToTensor() + Normalize(mean, std) on an HWC uint8 array, op for op."""

    def __init__(self) -> None:
        self.mean = torch.as_tensor(IMAGENET_MEAN, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.as_tensor(IMAGENET_STD, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, pic: np.ndarray) -> torch.Tensor:
        img = torch.from_numpy(pic.transpose((2, 0, 1))).contiguous()
        img = img.to(dtype=torch.get_default_dtype()).div(255)
        return img.clone().sub_(self.mean).div_(self.std)


def import_seed(seed_root: str):
    """The seed's COCODataset and config, with the stand-ins of the module docstring."""
    sys.modules.setdefault("json_tricks", json)
    nms_pkg = types.ModuleType("nms")
    nms_mod = types.ModuleType("nms.nms")
    nms_mod.oks_nms = nms_mod.soft_oks_nms = None
    nms_pkg.nms = nms_mod
    sys.modules.setdefault("nms", nms_pkg)
    sys.modules.setdefault("nms.nms", nms_mod)
    if not hasattr(np, "float"):
        np.float = float  # the seed's np.zeros(..., dtype=np.float)
    sys.path.insert(0, os.path.join(seed_root, "lib"))
    from config import cfg as seed_default  # the seed's lib/config
    from dataset.coco import COCODataset

    def image_path_from_index(self, index):
        return os.path.join(self.root, "images", self.image_set,
                            self.coco.loadImgs(index)[0]["file_name"])

    COCODataset.image_path_from_index = image_path_from_index
    return COCODataset, seed_default


def make_data(root: str, num_images: int) -> None:
    if os.path.isfile(os.path.join(root, "annotations", "person_keypoints_train2017.json")):
        return
    print(f"writing {num_images} synthetic 640x480 images to {root} ...", flush=True)
    write_coco_set(root, num_train=num_images, num_val=1, seed=0,
                   cfg=SynthConfig(width=640, height=480))


def build_all(seed_root: str, root: str):
    seed_cls, seed_default = import_seed(seed_root)
    scfg = seed_default.clone()
    scfg.defrost()
    for key, value in SETTINGS.items():
        node = scfg.MODEL if key in ("IMAGE_SIZE", "HEATMAP_SIZE", "SIGMA") else scfg.DATASET
        node[key] = value
    scfg.DATASET.ROOT = root
    seed_ds = seed_cls(scfg, root, "train2017", True, SeedTransform())

    opts = ["DATASET.DATASET", "coco", "DATASET.ROOT", root, "DATASET.TRAIN_SET", "train2017"]
    for key, value in SETTINGS.items():
        section = "MODEL" if key in ("IMAGE_SIZE", "HEATMAP_SIZE", "SIGMA") else "DATASET"
        opts += [f"{section}.{key}", str(value)]
    exact = build_dataset(get_cfg(None, opts), is_train=True)
    fast = build_dataset(get_cfg(None, opts + ["DATASET.FAST_MODE", "True"]), is_train=True)
    return {"seed": seed_ds, "exact": exact, "fast": fast}


def _draw(ds, idx: int, seed: int):
    np.random.seed(seed)
    random.seed(seed)
    return ds[idx]


def check(datasets: dict, num: int) -> dict:
    """Exact mode vs seed under the same draws; fast mode's targets too."""
    seed_ds, exact, fast = datasets["seed"], datasets["exact"], datasets["fast"]
    assert len(seed_ds) == len(exact), (len(seed_ds), len(exact))
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rng = np.random.default_rng(1)
    worst, fast_diff, mismatched = 0.0, [], []
    for k, idx in enumerate(rng.choice(len(exact), size=min(num, len(exact)), replace=False)):
        a = _draw(seed_ds, int(idx), k)
        b = _draw(exact, int(idx), k)
        f = _draw(fast, int(idx), k)
        same = (torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) and torch.equal(f[1], b[1])
                and np.allclose(a[3]["joints"], b[3]["joints"], rtol=0, atol=1e-3)
                and np.array_equal(a[3]["joints_vis"], b[3]["joints_vis"])
                and np.array_equal(a[3]["center"], b[3]["center"])
                and np.array_equal(a[3]["scale"], b[3]["scale"]))
        if not same:
            mismatched.append(int(idx))
        grey = ((a[0] - b[0]).abs() * std * 255).max().item()
        worst = max(worst, grey)
        fast_img = normalize_batch(f[0][None])[0]  # (H, W, 3) uint8 → (3, H, W)
        fast_diff.append(((fast_img - b[0]).abs() * std * 255).mean().item())
    return {"checked": min(num, len(exact)), "target_mismatches": mismatched,
            "max_crop_diff_grey": worst, "fast_mean_crop_diff_grey": float(np.mean(fast_diff))}


def time_pass(ds, order: list[int], batch: int, normalize: bool = False) -> float:
    """Samples per second of one pass; ``normalize`` adds the fast mode's normalize_batch
    on this CPU (a GPU consumer would run it on the device instead)."""
    loader = DataLoader(torch.utils.data.Subset(ds, order), batch_size=batch, num_workers=0)
    start = time.perf_counter()
    for images, *_ in loader:
        if normalize:
            normalize_batch(images)
    return len(order) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", default="/work/seedsrc", help="the seed's checkout")
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(),
                                                       "humanpose_bench_data_640x480"))
    parser.add_argument("--images", type=int, default=300, help="synthetic images to write")
    parser.add_argument("--samples", type=int, default=640, help="samples per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check", type=int, default=300, help="samples compared to the seed")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    make_data(args.data, args.images)
    datasets = build_all(args.seed_root, args.data)
    result = check(datasets, args.check)
    print(f"equivalence on {result['checked']} samples: target/weight/joint mismatches "
          f"{result['target_mismatches'] or 'none'}, largest crop difference "
          f"{result['max_crop_diff_grey']:.3f} grey levels; fast-mode crops differ by "
          f"{result['fast_mean_crop_diff_grey']:.2f} grey levels on average")

    rng = np.random.default_rng(0)
    runs = {"seed": ("seed", False), "exact": ("exact", False), "fast": ("fast", False),
            "fast+cpu-norm": ("fast", True)}
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        order = rng.permutation(len(datasets["exact"]))
        order = np.resize(order, args.samples).tolist()
        for name, (ds_name, normalize) in runs.items():  # interleaved
            np.random.seed(0)
            random.seed(0)
            rates[name].append(time_pass(datasets[ds_name], order, 32, normalize))
    med = {name: statistics.median(v) for name, v in rates.items()}
    print(f"\n{'pipeline':14s} {'samples/s (median)':>19s}   runs")
    for name, v in rates.items():
        print(f"{name:14s} {med[name]:19.1f}   {', '.join(f'{x:.0f}' for x in v)}")
    ratios = {name: med[name] / med["seed"] for name in runs if name != "seed"}
    print("\n" + "   ".join(f"{name} / seed = {r:.2f}x" for name, r in ratios.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"check": result, "rates": rates, "median": med, "ratios": ratios}, f,
                      indent=2)
    ok = not result["target_mismatches"] and result["max_crop_diff_grey"] <= 1.0 + 1e-3
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
