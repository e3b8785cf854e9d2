"""One-stage pose models (RTMO) as an engine task: ``humanpose test`` runs the network on
every whole image of a COCO key-point file and scores the people it finds with COCO's
key-point AP, as mmpose's RTMO configs do (``CocoMetric`` with the box score as the person
score and no further NMS). Training RTMO is not implemented: ``humanpose train`` stops with
an error before any data is read.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from humanpose.config import ConfigError
from humanpose.engine.distributed import Dist, all_gather_objects
from humanpose.engine.evaluate import ShardSampler

__all__ = ["FrameDataset", "OneStageTask", "predict_people", "score_people"]

logger = logging.getLogger("humanpose")

NOT_TRAINED = ("training one-stage RTMO is not implemented (its assigner and losses are not "
               "written); humanpose test, infer and export run it with mmpose's weights "
               "(--model rtmo-s/m/l)")


class FrameDataset(Dataset):
    """The images of a COCO key-point file, whole: item ``i`` is (BGR uint8 image, image id).
    ``coco`` is the file's pycocotools index and ``keypoints`` its key-point set."""

    def __init__(self, cfg):
        from humanpose.data.coco import annotation_file, image_folder, load_coco_json
        from humanpose.inference.estimator import keypoint_set_from_config

        root, image_set = cfg.DATASET.ROOT, cfg.DATASET.TEST_SET
        self.path = annotation_file(root, image_set)
        self.coco, num_joints, category = load_coco_json(self.path,
                                                         category=cfg.DATASET.CATEGORY)
        if num_joints != cfg.MODEL.NUM_JOINTS:
            raise ConfigError(f"{self.path} has {num_joints} joints per person but "
                              f"MODEL.NUM_JOINTS is {cfg.MODEL.NUM_JOINTS}")
        self.category_id = int(category["id"])
        self.keypoints = keypoint_set_from_config(cfg)
        folder = image_folder(root, image_set)
        self.images = [(os.path.join(folder, self.coco.imgs[i]["file_name"]), int(i))
                       for i in sorted(self.coco.imgs)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from humanpose.data.images import read_image

        path, image_id = self.images[index]
        return read_image(path), image_id


def predict_people(model: nn.Module, dataset: FrameDataset, cfg, dist: Dist,
                   show_progress: bool = True) -> list[dict]:
    """COCO results records of every image (this rank's shard, then gathered), by image id
    and score: the model's people above ``MODEL.RTMO.SCORE_THR`` after its NMS."""
    from humanpose.runtime.rtmo import decode, preprocess

    size = (int(cfg.MODEL.IMAGE_SIZE[0]), int(cfg.MODEL.IMAGE_SIZE[1]))
    score_thr, nms_thr = float(cfg.MODEL.RTMO.SCORE_THR), float(cfg.MODEL.RTMO.NMS_THR)
    model.eval()
    records: list[dict] = []
    shard = list(ShardSampler(len(dataset), dist.rank, dist.world_size))
    for index in tqdm(shard, desc="test", dynamic_ncols=True,
                      disable=not (show_progress and dist.is_main)):
        image, image_id = dataset[index]
        batch, meta = preprocess(image, size)
        with torch.inference_mode():
            rows = model(torch.from_numpy(batch).to(dist.device))[0].float().cpu().numpy()
        boxes, keypoints = decode(rows, meta, score_thr, nms_thr)
        for (x1, y1, x2, y2, score), kpts in zip(boxes.tolist(), keypoints):
            records.append({"image_id": image_id, "category_id": dataset.category_id,
                            "keypoints": [round(float(v), 3) for v in kpts.reshape(-1)],
                            "score": round(float(score), 6),
                            "bbox": [round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)]})
    gathered = [r for part in all_gather_objects(records) for r in part]
    gathered.sort(key=lambda r: (r["image_id"], -r["score"]))
    return gathered


def score_people(cfg, dataset: FrameDataset, records: list[dict], output_dir: str | os.PathLike,
                 arch_name: str) -> tuple[OrderedDict, float, str]:
    """Write the results file and ``metrics.json``; return (metrics, AP, "AP")."""
    from humanpose.evaluation import evaluate_keypoints, format_table, write_results
    from humanpose.evaluation.nms import oks_sigmas

    output_dir = Path(output_dir)
    path = output_dir / "results" / f"keypoints_{cfg.DATASET.TEST_SET}_results_0.json"
    write_results(records, path)
    logger.info("=> %d people written to %s", len(records), path)
    values = evaluate_keypoints(dataset.coco, records, sigmas=oks_sigmas(dataset.keypoints),
                                quiet=True, category_id=dataset.category_id)
    for line in format_table(values, arch_name).splitlines():
        logger.info(line)
    metrics = {"dataset": cfg.DATASET.DATASET, "test_set": cfg.DATASET.TEST_SET,
               "metric": "AP", "value": values["AP"], "results": str(path), **values}
    tmp = output_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, output_dir / "metrics.json")
    return values, float(values["AP"]), "AP"


class OneStageTask:
    """Whole images → people (boxes and key points) → COCO key-point AP; test only."""

    def build_dataset(self, cfg, is_train: bool) -> Dataset:
        if is_train:
            raise ConfigError(NOT_TRAINED)
        return FrameDataset(cfg)

    def build_model(self, cfg, channels_last: bool) -> nn.Module:
        from humanpose.models import build_model

        return build_model(cfg, channels_last=channels_last)

    def head_prefixes(self, cfg) -> tuple[str, ...]:
        return ("head.",)

    def build_loss(self, cfg) -> nn.Module:
        raise ConfigError(NOT_TRAINED)

    def predict(self, model: nn.Module, dataset: Dataset, cfg, dist: Dist) -> Any:
        return predict_people(model, dataset, cfg, dist)

    def score(self, cfg, dataset: Dataset, predictions: Any, output_dir: str | os.PathLike,
              arch_name: str) -> tuple[OrderedDict, float, str]:
        return score_people(cfg, dataset, predictions, output_dir, arch_name)
