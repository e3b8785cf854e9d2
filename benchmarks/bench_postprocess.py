"""The test pipeline after the forward passes, at COCO scale: humanpose against the seed.

`humanpose test` on a GPU spends much of its time after the network: re-scoring every
person box, OKS-NMS per image, writing the results file and pycocotools' evaluation. On a
CPU the forward pass hides that part (see bench_test.py), so this script times it alone:
the seed's ``COCODataset.evaluate`` and humanpose's ``score_predictions`` get the same
predictions for a COCO-sized validation set (``--images`` images; each ground-truth person
predicted several times with noise, plus false positives, ``--dets`` boxes per image as in
a person-detector file) and must reach the same AP (1e-3). Only annotations are written; no
image is read by either side. Interleaved repeats, medians.

    python benchmarks/bench_postprocess.py --seed-root /path/to/humanpose.pytorch
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

import humanpose
from humanpose.data import build_dataset
from humanpose.data.geometry import PIXEL_STD, box_to_center_scale
from humanpose.data.keypoints import COCO_NAMES
from humanpose.pose.evaluate import Predictions, score_predictions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_compat import seed_cfg, seed_modules  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "experiments/coco/lpn/lpn50_256x192_gd256x2_gc.yaml"
WIDTH, HEIGHT, JOINTS = 640, 480, 17


def random_person(rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """(17, 3) COCO key points (some unlabelled) inside a random box, and that box."""
    h = rng.uniform(60, 400)
    w = h * rng.uniform(0.3, 0.7)
    x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
    joints = np.zeros((JOINTS, 3))
    joints[:, 0] = x + rng.uniform(0, w, JOINTS)
    joints[:, 1] = y + rng.uniform(0, h, JOINTS)
    joints[:, 2] = np.where(rng.random(JOINTS) < 0.8, 2, 0)
    joints[joints[:, 2] == 0, :2] = 0
    return joints, [x, y, w, h]


def write_set(root: Path, images: int, dets: int, seed: int) -> dict[str, np.ndarray]:
    """Annotations under ``root`` and the predictions both sides score."""
    rng = np.random.default_rng(seed)
    ann_images, annotations, rows = [], [], []
    for image_id in range(1, images + 1):
        ann_images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg",
                           "width": WIDTH, "height": HEIGHT})
        people = [random_person(rng) for _ in range(rng.integers(1, 4))]
        for joints, box in people:
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "iscrowd": 0, "bbox": box, "area": 0.6 * box[2] * box[3],
                "num_keypoints": int((joints[:, 2] > 0).sum()),
                "keypoints": joints.reshape(-1).round(2).tolist()})
        for i in range(dets):
            if i < 3 * len(people):  # each person found three times, with noise
                joints, box = people[i % len(people)]
                noise = rng.normal(0, 0.02 * box[3], (JOINTS, 2))
                kpts = np.c_[np.where(joints[:, 2:] > 0, joints[:, :2], box[:2]) + noise,
                             rng.uniform(0.05, 1.0, JOINTS)]
                score = rng.uniform(0.5, 1.0)
            else:
                kpts_xy, box = random_person(rng)
                kpts = np.c_[kpts_xy[:, :2], rng.uniform(0.0, 0.4, JOINTS)]
                score = rng.uniform(0.0, 0.5)
            center, scale = box_to_center_scale(box, 192 / 256)
            rows.append((image_id, kpts, center, scale, score))
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images" / "val2017").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps({
        "images": ann_images, "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(COCO_NAMES),
                        "skeleton": []}]}))
    return {
        "image_ids": np.array([r[0] for r in rows]),
        "keypoints": np.stack([r[1] for r in rows]).astype(np.float32),
        "centers": np.stack([r[2] for r in rows]).astype(np.float32),
        "scales": np.stack([r[3] for r in rows]).astype(np.float32),
        "scores": np.array([r[4] for r in rows], dtype=np.float32),
    }


def run_seed(mods, cfg, preds: dict[str, np.ndarray], out: Path) -> tuple[float, float]:
    dataset = mods[1].coco(cfg, cfg.DATASET.ROOT, cfg.DATASET.TEST_SET, False, None)
    areas = np.prod(preds["scales"] * PIXEL_STD, axis=1)
    all_boxes = np.c_[preds["centers"], preds["scales"], areas, preds["scores"]].astype(np.float64)
    paths = [f"{i:012d}.jpg" for i in preds["image_ids"]]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        _, ap = dataset.evaluate(types.SimpleNamespace(rank=0), cfg, preds["keypoints"], str(out),
                                 all_boxes, paths)
    return time.perf_counter() - start, float(ap)


def run_ours(cfg, preds: dict[str, np.ndarray], out: Path) -> tuple[float, float]:
    dataset = build_dataset(cfg, is_train=False)
    n = len(preds["scores"])
    predictions = Predictions(preds["keypoints"], preds["centers"], preds["scales"],
                              preds["scores"], preds["image_ids"], np.arange(n))
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        _, ap, _ = score_predictions(cfg, dataset, predictions, out, "bench")
    return time.perf_counter() - start, float(ap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", type=Path, required=True)
    parser.add_argument("--images", type=int, default=5000, help="COCO val2017 has 5000")
    parser.add_argument("--dets", type=int, default=20, help="person boxes per image")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    logging.disable(logging.INFO)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_post_"))
    preds = write_set(work / "data", args.images, args.dets, seed=5)
    mods = seed_modules(args.seed_root)
    opts = ["DATASET.ROOT", str(work / "data"), "TEST.USE_GT_BBOX", "True",
            "OUTPUT_DIR", str(work / "out"), "LOG_DIR", str(work / "log")]
    ours_cfg = humanpose.get_cfg(CFG, opts)
    theirs_cfg = seed_cfg(mods[2], ours_cfg)
    seed_s, our_s = [], []
    for _ in range(args.repeats):
        t, seed_ap = run_seed(mods, theirs_cfg, preds, work / "seed_out")
        seed_s.append(t)
        t, our_ap = run_ours(ours_cfg, preds, work / "ours_out")
        our_s.append(t)
    s, o = statistics.median(seed_s), statistics.median(our_s)
    print(f"{args.images} images, {len(preds['scores'])} predicted people, median of "
          f"{args.repeats}: re-scoring, OKS-NMS, results file, pycocotools")
    print("| side | AP | seconds (runs) |")
    print("|---|---|---|")
    print(f"| seed `COCODataset.evaluate` | {seed_ap:.4f} | {s:.2f} "
          f"({', '.join(f'{v:.2f}' for v in seed_s)}) |")
    print(f"| humanpose `score_predictions` | {our_ap:.4f} | {o:.2f} "
          f"({', '.join(f'{v:.2f}' for v in our_s)}) |")
    print(f"seed / humanpose = {s / o:.2f}x")
    assert abs(seed_ap - our_ap) <= 1e-3, f"AP differs: seed {seed_ap}, ours {our_ap}"


if __name__ == "__main__":
    main()
