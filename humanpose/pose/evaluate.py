"""The pose task's test loop body: predict every sample (sharded across ranks), then score.

Scoring follows the seed: COCO → re-scoring, OKS-NMS, a results JSON and pycocotools AP;
MPII → PCKh from ``gt_valid.mat``. The forward pass (with flip test) is the shared
:func:`humanpose.predict.predict_outputs`; the config's codec decodes the outputs to crop
pixels and the shared geometry maps them to the image (:func:`decode_to_image`).
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from humanpose.codecs import build_codec
from humanpose.data.geometry import PIXEL_STD
from humanpose.data.loader import loader_workers
from humanpose.data.normalize import normalize_batch
from humanpose.data.prefetch import prefetch
from humanpose.engine.distributed import Dist, all_gather_objects
from humanpose.engine.evaluate import ShardSampler, amp_dtype
from humanpose.pose.backend import build_test_runner
from humanpose.predict import decode_to_image, predict_outputs

__all__ = ["Predictions", "predict_dataset", "score_predictions"]

logger = logging.getLogger("humanpose")


@dataclass
class Predictions:
    """Per sample: key points (x, y, confidence) in image pixels and the box they came from."""

    keypoints: np.ndarray  # (N, K, 3)
    centers: np.ndarray  # (N, 2)
    scales: np.ndarray  # (N, 2)
    scores: np.ndarray  # (N,) box/detection scores
    image_ids: np.ndarray  # (N,)
    indices: np.ndarray  # (N,) dataset indices

    @property
    def areas(self) -> np.ndarray:
        """The box area the seed's OKS-NMS uses: the crop's area in pixels."""
        return np.prod(self.scales * PIXEL_STD, axis=1)

    @staticmethod
    def concatenate(parts: list[Predictions]) -> Predictions:
        merged = Predictions(*(np.concatenate([getattr(p, f) for p in parts])
                               for f in ("keypoints", "centers", "scales", "scores",
                                         "image_ids", "indices")))
        order = np.argsort(merged.indices, kind="stable")
        return Predictions(*(getattr(merged, f)[order] for f in
                             ("keypoints", "centers", "scales", "scores", "image_ids", "indices")))


def predict_dataset(model: torch.nn.Module, dataset, cfg, dist: Dist,
                    show_progress: bool = True) -> Predictions:
    """Run the model over this rank's shard of ``dataset`` and gather every rank's results.

    The forward pass runs on TEST.BACKEND (:func:`humanpose.pose.backend.build_test_runner`).
    When the batches are loaded in this process (no loader workers: a CPU without free
    cores), a thread loads the next ``PREFETCH_BATCHES`` while the model runs (0: off).
    """
    sampler = ShardSampler(len(dataset), dist.rank, dist.world_size)
    workers = loader_workers(cfg.WORKERS, dist.device)
    loader = DataLoader(dataset, batch_size=cfg.TEST.BATCH_SIZE_PER_GPU, sampler=sampler,
                        num_workers=workers,
                        pin_memory=cfg.PIN_MEMORY and dist.device.type == "cuda")
    flip_pairs = dataset.keypoints.flip_pairs if cfg.TEST.FLIP_TEST else None
    codec = build_codec(cfg)
    model.eval()
    runner, backend = build_test_runner(model, cfg, dist.device,
                                        getattr(dataset, "keypoints", None))
    if cfg.TEST.BACKEND != "torch":
        logger.info("=> test forward pass on backend %s", backend)
    # Autocast (TEST.AMP) applies to PyTorch runners only; the others run in fp32.
    dtype = amp_dtype(cfg.TEST.AMP, dist.device) if backend == "torch" else None
    depth = int(cfg.PREFETCH_BATCHES)
    batches = prefetch(loader, depth) if workers == 0 and depth > 0 else loader
    parts: list[Predictions] = []
    position = 0
    for images, *_targets, meta in tqdm(batches, desc="test", total=len(loader), disable=not (
            show_progress and dist.is_main), dynamic_ncols=True):
        images = images.to(dist.device, non_blocking=True)
        images = normalize_batch(images)  # fast-mode loaders hand over raw uint8 crops
        outputs = predict_outputs(runner, images, codec, flip_pairs, dtype)
        center = meta["center"].numpy()
        scale = meta["scale"].numpy()
        keypoints = decode_to_image(codec, outputs, center, scale, cfg.TEST.BIAS)
        if "missing" in meta:  # unreadable images (SKIP_BAD_IMAGES) keep their slot, empty
            keypoints[meta["missing"].numpy().astype(bool), :, :2] = np.nan
        n = len(center)
        parts.append(Predictions(
            keypoints=keypoints,
            centers=center.astype(np.float64), scales=scale.astype(np.float64),
            scores=meta["score"].numpy().astype(np.float64).reshape(-1),
            image_ids=meta["image_id"].numpy().reshape(-1),
            indices=np.asarray(sampler.indices[position:position + n])))
        position += n
    if not parts:
        k = dataset.num_joints
        parts.append(Predictions(np.zeros((0, k, 3), np.float32), np.zeros((0, 2)),
                                 np.zeros((0, 2)), np.zeros(0), np.zeros(0, np.int64),
                                 np.zeros(0, np.int64)))
    local = Predictions.concatenate(parts)
    return Predictions.concatenate(all_gather_objects(local))


def _body_first(parts: OrderedDict) -> OrderedDict:
    """Whole-body metrics with the body's under COCO's plain names ("AP", "AR", ...), so that
    the body table, ``metrics.json`` and the logs read as for COCO; the other parts keep
    their prefix ("foot AP", ..., "wholebody AP")."""
    return OrderedDict((k.removeprefix("body "), v) for k, v in parts.items())


def score_predictions(cfg, dataset, preds: Predictions, output_dir: str | os.PathLike,
                      arch_name: str) -> tuple[OrderedDict, float, str]:
    """Evaluate gathered predictions; returns (named metrics, main metric, its name).

    Writes the results file (COCO) and ``metrics.json`` into ``output_dir``. COCO-WholeBody
    sets (the dataset joins several annotation fields) are scored part by part with the
    set's sigmas (the official ones unless ``DATASET.SIGMAS`` says otherwise), the results
    file is in the official per-part layout, the log shows the body table as for COCO and
    then one row per part, and the main metric is the whole-body AP (mmpose's choice for the
    best checkpoint).
    """
    output_dir = Path(output_dir)
    (output_dir / "results").mkdir(parents=True, exist_ok=True)
    parts = None  # COCO-WholeBody's per-part metrics
    if cfg.DATASET.DATASET.lower() == "mpii":
        from humanpose.evaluation import evaluate_pckh

        # People of unreadable images have NaN coordinates: each counts as a miss in its slot.
        values = evaluate_pckh(preds.keypoints[..., :2], dataset.gt_valid_path)
        main_name, main = "PCKh", float(values["Mean"])
    else:
        from humanpose.evaluation import evaluate_keypoints, select_people, write_results
        from humanpose.evaluation.nms import oks_sigmas
        from humanpose.evaluation.wholebody import evaluate_wholebody, wholebody_records

        sigmas = oks_sigmas(dataset.keypoints)
        found = ~np.isnan(preds.keypoints).any(axis=(1, 2))  # unreadable images: no result
        if not found.all():
            logger.info("=> %d people of unreadable images left out", int((~found).sum()))
            preds = Predictions(*(getattr(preds, f)[found] for f in (
                "keypoints", "centers", "scales", "scores", "image_ids", "indices")))
        category_id = int(getattr(dataset, "category_id", 1))  # the file's person category
        people = select_people(
            preds.keypoints, preds.centers, preds.scales, preds.areas, preds.scores,
            preds.image_ids, in_vis_thre=cfg.TEST.IN_VIS_THRE, oks_thre=cfg.TEST.OKS_THRE,
            soft_nms=cfg.TEST.SOFT_NMS, sigmas=sigmas, category_id=category_id)
        wholebody = len(getattr(dataset, "fields", ())) > 1  # COCO-WholeBody's part fields
        if wholebody:
            people = wholebody_records(people)  # the official results layout
        results_file = output_dir / "results" / f"keypoints_{cfg.DATASET.TEST_SET}_results_0.json"
        write_results(people, results_file)
        logger.info("=> results written to %s", results_file)
        # The records themselves, not the file read back: the same numbers, without parsing.
        if wholebody:
            parts = evaluate_wholebody(dataset.coco.dataset, people, sigmas,
                                       category_id=category_id)
            values = _body_first(parts)
            main_name, main = "wholebody AP", float(values["wholebody AP"])
        else:
            values = evaluate_keypoints(dataset.coco, people, sigmas=sigmas, quiet=True,
                                        category_id=category_id)
            main_name, main = "AP", float(values["AP"])
    from humanpose.evaluation import COCO_STATS_NAMES, format_table

    # The body's table first, as for COCO; then, for COCO-WholeBody, one row per part.
    body = values if parts is None else \
        OrderedDict((k, v) for k, v in values.items() if k in COCO_STATS_NAMES)
    for line in format_table(body, arch_name).splitlines():
        logger.info(line)
    if parts is not None:
        from humanpose.evaluation.wholebody import format_parts_table

        for line in format_parts_table(parts, arch_name).splitlines():
            logger.info(line)
    metrics = {"dataset": cfg.DATASET.DATASET, "test_set": cfg.DATASET.TEST_SET,
               "metric": main_name, "value": main, **{k: float(v) for k, v in values.items()}}
    tmp = output_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, output_dir / "metrics.json")
    return values, main, main_name
