"""Detector evaluation: predict a data set, write COCO detection results, box AP.

The results file, ``results/detections_{TEST_SET}_results.json``, is a COCO results list
``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``: exactly what
``TEST.COCO_BBOX_FILE`` takes for pose testing with detected boxes. It keeps low-scoring
boxes (down to ``MODEL.EXTRA.DET_SCORE_THRE``) because pose AP over detections counts on
recall; the pose loader applies its own ``TEST.IMAGE_THRE``.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections import OrderedDict
from contextlib import redirect_stdout
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from humanpose.data.loader import loader_workers
from humanpose.data.normalize import normalize_batch
from humanpose.detection.codec import DecodeParams, decode_output, image_detections
from humanpose.engine.distributed import Dist, all_gather_objects
from humanpose.engine.evaluate import ShardSampler, amp_dtype
from humanpose.predict import autocast_for
from humanpose.runtime.boxes import xyxy_to_xywh

__all__ = ["BOX_STATS_NAMES", "evaluate_boxes", "predict_boxes", "results_path",
           "score_boxes"]

logger = logging.getLogger("humanpose")

# COCOeval's twelve box statistics.
BOX_STATS_NAMES = ("AP", "AP .5", "AP .75", "AP (S)", "AP (M)", "AP (L)", "AR 1", "AR 10", "AR",
                   "AR (S)", "AR (M)", "AR (L)")


def predict_boxes(model: nn.Module, dataset, cfg, dist: Dist,
                  show_progress: bool = True) -> list[dict]:
    """COCO results records for the whole ``dataset`` (this rank's shard, then gathered),
    ordered by image id and score."""
    sampler = ShardSampler(len(dataset), dist.rank, dist.world_size)
    loader = DataLoader(dataset, batch_size=cfg.TEST.BATCH_SIZE_PER_GPU, sampler=sampler,
                        num_workers=loader_workers(cfg.WORKERS, dist.device),
                        pin_memory=cfg.PIN_MEMORY and dist.device.type == "cuda")
    params = DecodeParams.from_cfg(cfg)
    dtype = amp_dtype(cfg.TEST.AMP, dist.device)
    category = int(getattr(dataset, "category_id", 1))
    model.eval()
    records: list[dict] = []
    for images, _targets, meta in tqdm(loader, desc="test", dynamic_ncols=True,
                                       disable=not (show_progress and dist.is_main)):
        images = normalize_batch(images.to(dist.device, non_blocking=True))
        with torch.inference_mode(), autocast_for(images.device, dtype):
            output = model(images)
        boxes, scores = (t.cpu().numpy() for t in decode_output(output, params.stride,
                                                                params.max_detections))
        for i in range(len(boxes)):
            found, found_scores = image_detections(
                boxes[i], scores[i], meta["scale"][i].numpy(), meta["offset"][i].numpy(),
                meta["image_size"][i].numpy(), params)
            image_id = int(meta["image_id"][i])
            records += [{"image_id": image_id, "category_id": category,
                         "bbox": [round(float(v), 2) for v in box], "score": round(float(s), 5)}
                        for box, s in zip(xyxy_to_xywh(found), found_scores)]
    gathered = [r for part in all_gather_objects(records) for r in part]
    gathered.sort(key=lambda r: (r["image_id"], -r["score"]))
    return gathered


def results_path(cfg, output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "results" / f"detections_{cfg.DATASET.TEST_SET}_results.json"


def evaluate_boxes(coco_gt, results: list[dict], category_id: int = 1
                   ) -> OrderedDict[str, float]:
    """COCO box AP/AR of ``results`` for one category, by pycocotools' ``COCOeval``.
    No detections give zeros rather than pycocotools' crash."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return OrderedDict((name, 0.0) for name in BOX_STATS_NAMES)
    with redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, "bbox")
        coco_eval.params.catIds = [category_id]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return OrderedDict((name, float(v)) for name, v in zip(BOX_STATS_NAMES, coco_eval.stats))


def score_boxes(cfg, dataset, predictions: list[dict], output_dir: str | os.PathLike,
                arch_name: str) -> tuple[OrderedDict, float, str]:
    """Write the results file and ``metrics.json``; return (metrics, box AP, "AP")."""
    from humanpose.evaluation import format_table, write_results

    output_dir = Path(output_dir)
    path = results_path(cfg, output_dir)
    write_results(predictions, path)
    logger.info("=> %d detections written to %s (usable as TEST.COCO_BBOX_FILE)",
                len(predictions), path)
    values = evaluate_boxes(dataset.coco, predictions, dataset.category_id)
    for line in format_table(values, arch_name).splitlines():
        logger.info(line)
    metrics = {"dataset": cfg.DATASET.DATASET, "test_set": cfg.DATASET.TEST_SET,
               "metric": "AP", "value": values["AP"], "results": str(path),
               **{f"box {k}": v for k, v in values.items()}}
    tmp = output_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, output_dir / "metrics.json")
    return values, float(values["AP"]), "AP"
