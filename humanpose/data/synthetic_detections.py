"""Detections as a real person detector gives them, made from a generated video's truth.

A tracker that only ever sees the true boxes learns nothing about what breaks identities
in real video. :func:`noisy_detections` adds, with one seed, the detector's habits: boxes
jittered (uniform, up to ``jitter`` of the box size per edge), boxes dropped (a share
between ``drop``), the boxes of two overlapping people merged into one, a person missed
for ``blackout`` frames in a row (an occlusion the picture does not show), partly hidden
people scored low (they come back in the second, low-score association stage), and
false positives at low score, flickering at a few fixed places of the background
(clutter). :func:`noisy_scenario` varies the frame rate and length with the seed as well.

Every box carries its ``source``: the person id it was made from, :data:`FALSE_POSITIVE`
or :data:`MERGED`, so that tests can ask what became of the clutter.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from humanpose.data.synthetic_video import VideoTruth, make_walking_video
from humanpose.evaluation.tracking import box_iou

__all__ = ["FALSE_POSITIVE", "MERGED", "NoisyDetections", "noisy_detections", "noisy_scenario",
           "write_detections_file"]

FALSE_POSITIVE = 0
MERGED = -1
FRAME_RATES = (15.0, 25.0, 30.0)


@dataclass
class NoisyDetections:
    """Per frame: ``boxes`` ``(N, 4)`` (x, y, w, h), ``scores`` ``(N,)``, ``sources``
    ``(N,)`` (person id, :data:`FALSE_POSITIVE` or :data:`MERGED`); ``blackout``: the
    (person id, first frame, frames) missed on purpose."""

    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    sources: list[np.ndarray] = field(default_factory=list)
    blackout: tuple[int, int, int] = (0, 0, 0)
    fps: float = 25.0

    def __len__(self) -> int:
        return len(self.boxes)


def _visible_share(keypoints: np.ndarray) -> np.ndarray:
    """Share of each person's joints in the picture that are seen (visibility 2)."""
    inside = (keypoints[..., 2] > 0).sum(-1)
    return (keypoints[..., 2] >= 2).sum(-1) / np.maximum(inside, 1)


def noisy_detections(truth: VideoTruth, seed: int = 0, jitter: float = 0.08,
                     drop: tuple[float, float] = (0.10, 0.20), merge: float = 0.5,
                     blackout: int = 10, clutter_sites: int = 2, clutter_rate: float = 0.3,
                     ) -> NoisyDetections:
    """Detections for every frame of ``truth`` (see the module docstring). ``merge``: the
    chance that two people overlapping (box IoU > 0.2) come as one box around both in a
    frame; ``blackout``: frames in a row one person (drawn by the seed, mid-video) is
    missed; ``clutter_rate``: the chance per frame that each clutter site fires."""
    rng = np.random.default_rng(seed)
    drop_rate = rng.uniform(*drop)
    ids_seen = sorted({int(i) for ids in truth.ids for i in ids.tolist()})
    n = len(truth)
    hidden = (int(rng.choice(ids_seen)) if ids_seen else 0,
              int(rng.integers(n // 4, max(n // 4 + 1, n // 2))), int(blackout))
    size = np.array([truth.width, truth.height], dtype=np.float64)
    sites = []
    for _ in range(clutter_sites):
        h = rng.uniform(0.15, 0.35) * truth.height
        w = h * rng.uniform(0.3, 0.6)
        x, y = rng.uniform(0, 1, 2) * (size - [w, h])
        sites.append(np.array([x, y, w, h]))
    out = NoisyDetections(blackout=hidden, fps=truth.fps)
    for frame in range(n):
        ids, boxes, kpts = truth.ids[frame], truth.boxes[frame], truth.keypoints[frame]
        visible = _visible_share(kpts) if len(ids) else np.zeros(0)
        keep = rng.random(len(ids)) >= drop_rate
        keep &= ~((ids == hidden[0]) & (hidden[1] <= frame < hidden[1] + hidden[2]))
        frame_boxes, frame_scores, frame_sources = [], [], []
        merged: set[int] = set()
        if len(ids) > 1:
            iou = box_iou(boxes, boxes)
            for a in range(len(ids)):
                for b in range(a + 1, len(ids)):
                    if (iou[a, b] > 0.2 and keep[a] and keep[b] and a not in merged
                            and b not in merged and rng.random() < merge):
                        x0 = np.minimum(boxes[a, :2], boxes[b, :2])
                        x1 = np.maximum(boxes[a, :2] + boxes[a, 2:], boxes[b, :2] + boxes[b, 2:])
                        frame_boxes.append(np.concatenate([x0, x1 - x0]))
                        frame_scores.append(rng.uniform(0.5, 0.8))
                        frame_sources.append(MERGED)
                        merged.update((a, b))
        for j in range(len(ids)):
            if not keep[j] or j in merged:
                continue
            frame_boxes.append(boxes[j])
            # A person mostly hidden is found with low confidence, as detectors do.
            score = (rng.uniform(0.85, 0.95) if visible[j] >= 0.6
                     else rng.uniform(0.25, 0.5))
            frame_scores.append(score)
            frame_sources.append(int(ids[j]))
        for site in sites:
            if rng.random() < clutter_rate:
                frame_boxes.append(site * rng.uniform(0.97, 1.03, 4))
                frame_scores.append(rng.uniform(0.1, 0.45))
                frame_sources.append(FALSE_POSITIVE)
        b = np.asarray(frame_boxes, dtype=np.float64).reshape(-1, 4)
        b = b + rng.uniform(-jitter, jitter, b.shape) * b[:, [2, 3, 2, 3]]
        out.boxes.append(b)
        out.scores.append(np.asarray(frame_scores, dtype=np.float64))
        out.sources.append(np.asarray(frame_sources, dtype=np.int64))
    return out


def noisy_scenario(seed: int, render: bool = False, num_frames: int | None = None
                   ) -> tuple[VideoTruth, NoisyDetections]:
    """The generated walking video (its frame rate among 15/25/30 and its length between
    120 and 300 frames, drawn by ``seed``) and its noisy detections."""
    rng = np.random.default_rng(1000 + seed)
    fps = float(rng.choice(FRAME_RATES))
    frames = int(rng.integers(120, 301)) if num_frames is None else int(num_frames)
    truth = make_walking_video(frames, fps=fps, render=render, seed=seed)
    return truth, noisy_detections(truth, seed)


def write_detections_file(detections: NoisyDetections, path: str | os.PathLike) -> None:
    """The detections as a COCO results-format file with a ``frame`` field (0-based), as
    ``humanpose infer --boxes`` reads them for a video."""
    records = [{"image_id": frame + 1, "frame": frame, "category_id": 1,
                "bbox": [round(float(v), 2) for v in box], "score": round(float(score), 4)}
               for frame, (boxes, scores) in enumerate(zip(detections.boxes, detections.scores))
               for box, score in zip(boxes, scores)]
    with open(path, "w") as f:
        json.dump(records, f)
