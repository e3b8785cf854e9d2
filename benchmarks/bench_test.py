"""`humanpose test` against the seed's validation: same AP (to 1e-3), and the wall time.

The seed's code is imported at run time from a checkout of ``humanpose.pytorch``
(``--seed-root``); nothing of it is part of this project. Both sides get the same weights,
the same synthetic COCO-format validation set (images named ``%012d.jpg``, which the seed
requires) and the same settings; each side's whole job is timed: building the data set and
the model, loading weights, predicting (flip test), decoding, re-scoring, OKS-NMS and
pycocotools. The seed's GPU calls (``.cuda()``) are made no-ops so it runs on the CPU.

    python benchmarks/bench_test.py --seed-root /path/to/humanpose.pytorch \
        --weights humanpose-demo/output/coco/lpn/demo_lpn_synthetic/model_best.pth
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import yaml

import humanpose
from humanpose.data.synthetic import write_coco_set
from humanpose.engine.evaluate import run_test

REPO = Path(__file__).resolve().parents[1]


def seed_layout(src: Path, dst: Path) -> None:
    """Copy-free view of a synthetic set with COCO's ``%012d.jpg`` names, as the seed needs."""
    for split in ("val2017",):
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


class _Normalize:
    """The seed's torchvision ToTensor + Normalize, in the same float32 arithmetic."""

    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def __call__(self, img):
        x = torch.from_numpy(img.copy()).permute(2, 0, 1).float().div(255)
        return x.sub(self.mean).div(self.std)


def run_seed(mods, cfg, weights: Path, out_dir: Path) -> tuple[float, float]:
    function, seed_dataset, _, loss_cls, models = mods
    start = time.perf_counter()
    valid = seed_dataset.coco(cfg, cfg.DATASET.ROOT, cfg.DATASET.TEST_SET, False, _Normalize())
    loader = torch.utils.data.DataLoader(valid, batch_size=cfg.TEST.BATCH_SIZE_PER_GPU,
                                         shuffle=False, num_workers=cfg.WORKERS)
    model = getattr(models, cfg.MODEL.NAME).get_pose_net(cfg, is_train=False)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    args = types.SimpleNamespace(rank=0)
    with contextlib.redirect_stdout(io.StringIO()):
        ap = function.validate(args, cfg, loader, valid, model, loss_cls(True), str(out_dir),
                               str(out_dir))
    return time.perf_counter() - start, float(ap)


def run_ours(cfg, cfg_path: Path) -> tuple[float, float]:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_test(cfg, cfg_path)
    return time.perf_counter() - start, result.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", type=Path, required=True)
    parser.add_argument("--cfg", type=Path,
                        default=REPO / "humanpose/configs/demo_lpn_synthetic.yaml")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--images", type=int, default=200, help="synthetic val images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("opts", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.disable(logging.INFO)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_test_"))
    data = work / "synthetic"
    if not (data / "annotations").exists():
        write_coco_set(str(data), num_train=0, num_val=args.images, seed=7)
    seed_data = work / "seed_layout"
    seed_layout(data, seed_data)
    mods = seed_modules(args.seed_root)

    print(f"torch {torch.__version__}, {args.threads} threads, {args.workers} loader workers, "
          f"{args.images} synthetic val images, median of {args.repeats}")
    print("| boxes | seed AP | humanpose AP | seed s | humanpose s | seed / humanpose |")
    print("|---|---|---|---|---|---|")
    for use_gt in (True, False):
        opts = [*args.opts, "DATASET.ROOT", str(seed_data), "WORKERS", str(args.workers),
                "TEST.USE_GT_BBOX", str(use_gt), "OUTPUT_DIR", str(work / "out"),
                "LOG_DIR", str(work / "log"), "TEST.MODEL_FILE", str(args.weights),
                "TEST.COCO_BBOX_FILE",
                str(seed_data / "person_detection_results" /
                    "COCO_val2017_detections_synthetic.json")]
        ours_cfg = humanpose.get_cfg(args.cfg, opts)
        theirs_cfg = seed_cfg(mods[2], ours_cfg)
        seed_times, our_times, seed_ap, our_ap = [], [], None, None
        for _ in range(args.repeats):  # interleaved so that machine noise hits both
            t, seed_ap = run_seed(mods, theirs_cfg, args.weights, work / "seed_out")
            seed_times.append(t)
            t, our_ap = run_ours(ours_cfg, args.cfg)
            our_times.append(t)
        s, o = statistics.median(seed_times), statistics.median(our_times)
        label = "ground truth" if use_gt else "detections"
        print(f"| {label} | {seed_ap:.4f} | {our_ap:.4f} | {s:.2f} | {o:.2f} | {s / o:.2f} |",
              flush=True)
        assert abs(seed_ap - our_ap) <= 1e-3, f"AP differs: seed {seed_ap}, ours {our_ap}"


if __name__ == "__main__":
    main()
