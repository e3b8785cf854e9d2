"""The test loop: predict every sample (sharded across ranks), then score them.

Scoring follows the seed: COCO → re-scoring, OKS-NMS, a results JSON and pycocotools AP;
MPII → PCKh from ``gt_valid.mat``. The heatmap forward (with flip test) and the decoding
are the shared :func:`humanpose.predict.predict_heatmaps` and
:func:`humanpose.codecs.decode_heatmaps`.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from humanpose.codecs import decode_heatmaps
from humanpose.data.geometry import PIXEL_STD
from humanpose.data.loader import loader_workers
from humanpose.engine.distributed import Dist, all_gather_objects
from humanpose.predict import normalize_uint8, predict_heatmaps

__all__ = ["Predictions", "ShardSampler", "amp_dtype", "decoder_name", "predict_dataset",
           "score_predictions"]

logger = logging.getLogger("humanpose")


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once across ranks (a
    DistributedSampler would pad with repeats, which would count people twice)."""

    def __init__(self, length: int, rank: int, world_size: int):
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def decoder_name(cfg) -> str:
    return cfg.TEST.DECODER or ("softargmax" if cfg.TEST.SOFT_ARGMAX else "argmax")


def amp_dtype(name: str, device: torch.device) -> torch.dtype | None:
    """``none``/``bf16``/``fp16``/``auto`` → the autocast dtype (None: fp32)."""
    name = name.lower()
    if name in ("", "none", "fp32"):
        return None
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        return torch.float16
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    raise ValueError(f"AMP setting must be 'auto', 'none', 'bf16' or 'fp16', got {name!r}")


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with AMX tiles, where bf16 autocast speeds convolutions up.

    With only AVX512-BF16 it slows them down: measured here (Xeon, avx512_bf16 without
    AMX), a bf16 training step of LPN-18/50 at 128x96 is 0.54x/0.65x the fp32 speed.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


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
    """Run the model over this rank's shard of ``dataset`` and gather every rank's results."""
    sampler = ShardSampler(len(dataset), dist.rank, dist.world_size)
    loader = DataLoader(dataset, batch_size=cfg.TEST.BATCH_SIZE_PER_GPU, sampler=sampler,
                        num_workers=loader_workers(cfg.WORKERS, dist.device),
                        pin_memory=cfg.PIN_MEMORY and dist.device.type == "cuda")
    flip_pairs = dataset.keypoints.flip_pairs if cfg.TEST.FLIP_TEST else None
    dtype = amp_dtype(cfg.TEST.AMP, dist.device)
    method = decoder_name(cfg)
    udp = bool(cfg.DATASET.get("UDP", False))
    model.eval()
    parts: list[Predictions] = []
    position = 0
    for images, _target, _weight, meta in tqdm(loader, desc="test", disable=not (
            show_progress and dist.is_main), dynamic_ncols=True):
        images = images.to(dist.device, non_blocking=True)
        if images.dtype == torch.uint8:  # fast-mode loaders hand over raw crops
            images = normalize_uint8(images, channels_last_input=images.shape[-1] == 3)
        heatmaps = predict_heatmaps(model, images, flip_pairs, cfg.TEST.SHIFT_HEATMAP, dtype)
        center = meta["center"].numpy()
        scale = meta["scale"].numpy()
        coords, conf = decode_heatmaps(heatmaps, center, scale, method,
                                       post_process=cfg.TEST.POST_PROCESS, udp=udp)
        coords = coords - cfg.TEST.BIAS
        if "missing" in meta:  # unreadable images (SKIP_BAD_IMAGES) keep their slot, empty
            coords[meta["missing"].numpy().astype(bool)] = np.nan
        n = len(center)
        parts.append(Predictions(
            keypoints=np.concatenate([coords, conf], axis=2).astype(np.float32),
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


def score_predictions(cfg, dataset, preds: Predictions, output_dir: str | os.PathLike,
                      arch_name: str) -> tuple[OrderedDict, float, str]:
    """Evaluate gathered predictions; returns (named metrics, main metric, its name).

    Writes the results file (COCO) and ``metrics.json`` into ``output_dir``.
    """
    output_dir = Path(output_dir)
    (output_dir / "results").mkdir(parents=True, exist_ok=True)
    if cfg.DATASET.DATASET.lower() == "mpii":
        from humanpose.evaluation import evaluate_pckh

        # People of unreadable images have NaN coordinates: each counts as a miss in its slot.
        values = evaluate_pckh(preds.keypoints[..., :2], dataset.gt_valid_path)
        main_name, main = "PCKh", float(values["Mean"])
    else:
        from humanpose.evaluation import evaluate_keypoints, select_people, write_results
        from humanpose.evaluation.nms import oks_sigmas

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
        results_file = output_dir / "results" / f"keypoints_{cfg.DATASET.TEST_SET}_results_0.json"
        write_results(people, results_file)
        logger.info("=> results written to %s", results_file)
        # The records themselves, not the file read back: the same numbers, without parsing.
        values = evaluate_keypoints(dataset.coco, people, sigmas=sigmas, quiet=True,
                                    category_id=category_id)
        main_name, main = "AP", float(values["AP"])
    from humanpose.evaluation import format_table

    for line in format_table(values, arch_name).splitlines():
        logger.info(line)
    metrics = {"dataset": cfg.DATASET.DATASET, "test_set": cfg.DATASET.TEST_SET,
               "metric": main_name, "value": main, **{k: float(v) for k, v in values.items()}}
    tmp = output_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, output_dir / "metrics.json")
    return values, main, main_name


@dataclass
class TestResult:
    metrics: OrderedDict
    metric_name: str
    value: float
    output_dir: Path


def run_test(cfg, cfg_path: str | os.PathLike) -> TestResult | None:
    """``humanpose test``: load the weights (TEST.MODEL_FILE, else the run's
    ``final_state.pth`` as in the seed), predict the test set on every rank, score on rank 0.

    Returns the result on rank 0 and None on the other ranks.
    """
    from humanpose.checkpoint import load_checkpoint
    from humanpose.engine.distributed import init_distributed, shutdown
    from humanpose.engine.state import run_dirs, setup_logging
    from humanpose.engine.task import task_for

    dist = init_distributed(cfg.DEVICE)
    try:
        out_dir, _ = run_dirs(cfg, cfg_path)
        setup_logging(out_dir, cfg_path, "valid", dist.is_main, dist.rank)
        task = task_for(cfg)
        dataset = task.build_dataset(cfg, is_train=False)  # fails early on a missing folder
        weights = Path(cfg.TEST.MODEL_FILE) if cfg.TEST.MODEL_FILE else out_dir / "final_state.pth"
        model = task.build_model(cfg, channels_last=True)
        load_checkpoint(model, weights)
        logger.info("=> loaded weights %s", weights)
        model.to(dist.device)
        preds = task.predict(model, dataset, cfg, dist)
        if not dist.is_main:
            return None
        values, value, name = task.score(cfg, dataset, preds, out_dir, cfg.MODEL.NAME)
        return TestResult(values, name, value, out_dir)
    finally:
        shutdown()
