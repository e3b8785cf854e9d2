"""A generated video with known identities: people walking, crossing and passing behind a
pillar, drawn as in :mod:`humanpose.data.synthetic`, for tracking tests and benchmarks.

Each person keeps one build (limb lengths, colours) and walks at a constant speed along a
straight line, swinging arms and legs. Ground truth per frame: each person's id, COCO key
points ``(17, 3)`` with visibility 2 (seen), 1 (hidden by someone in front or the pillar)
or 0 (outside the picture), and the box around the drawn figure's visible pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from humanpose.data.synthetic import (
    L_ANK,
    L_ELB,
    L_HIP,
    L_KNE,
    L_SHO,
    L_WRI,
    R_ANK,
    R_ELB,
    R_HIP,
    R_KNE,
    R_SHO,
    R_WRI,
    _background,
    _draw_person,
    _pose,
    _primitives,
    joint_visibility,
)
from humanpose.evaluation.tracking import box_iou

__all__ = ["VideoTruth", "Walker", "default_walkers", "make_walking_video", "noisy_people",
           "write_video"]


@dataclass(frozen=True)
class Walker:
    """One person: id, height (pixels), start pelvis (x, y) and speed (pixels/frame), and
    the seed of the build. Taller people are nearer: drawn over shorter ones."""

    person_id: int
    height: float
    start: tuple[float, float]
    velocity: tuple[float, float]
    seed: int


@dataclass
class VideoTruth:
    """Per frame: ids ``(P,)``, key points ``(P, 17, 3)``, boxes ``(P, 4)`` (x, y, w, h) of
    the people with at least ``min_visible`` seen joints; and the frames when rendered.
    ``boxes`` hold the pixels in view; ``full_boxes`` the whole figure, the parts hidden by
    someone in front or the pillar included (in the picture): the boxes that MOT
    benchmarks annotate and that the synthetic training set's ``bbox`` teaches a detector."""

    ids: list[np.ndarray] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    full_boxes: list[np.ndarray] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    fps: float = 25.0
    width: int = 640
    height: int = 480

    def __len__(self) -> int:
        return len(self.ids)


def default_walkers(width: int = 640, height: int = 480, num_frames: int = 120) -> list[Walker]:
    """Three people: two crossing each other in mid-picture (the nearer one hides much of
    the other), and a third, further back, passing behind the pillar (hidden a few frames)."""
    span = width * 0.8
    speed = span / num_frames
    return [
        Walker(1, 0.55 * height, (0.1 * width, 0.70 * height), (speed, 0.0), 11),
        Walker(2, 0.62 * height, (0.9 * width, 0.78 * height), (-speed, -0.1), 12),
        Walker(3, 0.38 * height, (0.3 * width, 0.55 * height), (speed * 1.5, 0.0), 13),
    ]


def _rotate(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    d = points - centre
    return centre + np.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1)


def _walking_pose(walker: Walker, frame: int, fps: float) -> dict:
    """The walker's pose at ``frame``: a fixed build moved along its line, limbs swinging
    (arms against legs, left against right) at about one stride a second."""
    pelvis = np.asarray(walker.start) + np.asarray(walker.velocity) * frame
    pose = _pose(np.random.default_rng(walker.seed), pelvis, walker.height)
    p = pose["joints"]
    swing = 0.35 * np.sin(2 * np.pi * 1.0 * frame / fps)
    for side, (sho, elb, wri, hip, kne, ank) in ((1, (L_SHO, L_ELB, L_WRI, L_HIP, L_KNE, L_ANK)),
                                                  (-1, (R_SHO, R_ELB, R_WRI, R_HIP, R_KNE,
                                                        R_ANK))):
        p[[kne, ank]] = _rotate(p[[kne, ank]], p[hip], side * swing)
        p[[elb, wri]] = _rotate(p[[elb, wri]], p[sho], -side * swing * 0.8)
    pose["joints"] = p
    return pose


def make_walking_video(num_frames: int = 120, width: int = 640, height: int = 480,
                       fps: float = 25.0, walkers: list[Walker] | None = None,
                       pillar: tuple[float, float] | None = (0.75, 0.13), seed: int = 0,
                       render: bool = True, min_visible: int = 3) -> VideoTruth:
    """Generate the video. ``pillar``: (centre x, width) as fractions of the image width of
    a full-height occluder drawn in front of everybody (None: no pillar). ``render``: keep
    the drawn frames (BGR uint8); the ground truth is computed either way."""
    walkers = default_walkers(width, height, num_frames) if walkers is None else walkers
    order = sorted(walkers, key=lambda w: w.height)  # far (short) people first
    rng = np.random.default_rng(seed)
    background = _background(rng, width, height)
    truth = VideoTruth(fps=fps, width=width, height=height)
    px0 = px1 = 0
    if pillar is not None:
        px0 = int(round((pillar[0] - pillar[1] / 2) * width))
        px1 = int(round((pillar[0] + pillar[1] / 2) * width))
    for frame in range(num_frames):
        image = background.copy() if render else None
        owner = np.zeros((height, width), dtype=np.int32)
        poses, figures = [], []
        for i, walker in enumerate(order):
            pose = _walking_pose(walker, frame, fps)
            prims = _primitives(pose, walker.height, np.random.default_rng(walker.seed + 1))
            figures.append(cv2.boundingRect(_draw_person(image, owner, prims, i + 1)))
            poses.append(pose)
        if pillar is not None:
            owner[:, px0:px1] = -1
            if image is not None:
                cv2.rectangle(image, (px0, 0), (px1 - 1, height - 1), (70, 80, 90), -1)
        if image is not None:
            noise = rng.normal(0.0, 2.0, image.shape).astype(np.float32)
            truth.frames.append(np.clip(image + noise, 0, 255).astype(np.uint8))
        ids, kpts, boxes, full = [], [], [], []
        for i, (walker, pose) in enumerate(zip(order, poses)):
            joints = pose["joints"]
            vis = joint_visibility(joints, owner, i + 1)
            if (vis == 2).sum() < min_visible:
                continue
            k = np.zeros((17, 3))
            k[:, :2] = np.where(vis[:, None] > 0, joints, 0.0)
            k[:, 2] = vis
            seen = (owner == i + 1).astype(np.uint8)
            ids.append(walker.person_id)
            kpts.append(k)
            boxes.append(cv2.boundingRect(seen))
            full.append(figures[i])
        truth.ids.append(np.asarray(ids, dtype=np.int64))
        truth.keypoints.append(np.asarray(kpts, dtype=np.float64).reshape(-1, 17, 3))
        truth.boxes.append(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        truth.full_boxes.append(np.asarray(full, dtype=np.float64).reshape(-1, 4))
    return truth


def write_video(truth: VideoTruth, path: str | os.PathLike, fourcc: str = "mp4v") -> None:
    """Write the rendered frames of ``truth`` as a video file."""
    if not truth.frames:
        raise ValueError("the video was generated with render=False: no frames to write")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), truth.fps,
                             (truth.width, truth.height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path} with codec {fourcc}")
    for image in truth.frames:
        writer.write(image)
    writer.release()


def noisy_people(truth: VideoTruth, frame: int, rng: np.random.Generator, noise: float = 2.0,
                 crops: np.ndarray | None = None, min_overlap: float = 0.3
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a pose pipeline might return for ``frame``, from the ground truth: key points
    ``(N, 17, 3)`` with Gaussian noise (``noise`` pixels; confidence about 0.9 for seen
    joints, 0.1 for hidden ones, 0 outside), boxes ``(N, 4)`` and box scores ``(N,)``.

    Without ``crops`` it is a detector's frame: every person, boxes jittered by 2 %. With
    ``crops`` ``(M, 4)`` (x, y, w, h) it is a frame whose crops came from a tracker: each
    crop returns the person it overlaps most (box IoU >= ``min_overlap``), else a faint
    "person" (confidence 0.05) made of noise, as a pose model does on an empty crop.
    """
    ids, kpts, boxes = truth.ids[frame], truth.keypoints[frame], truth.boxes[frame]

    def person(k: np.ndarray) -> np.ndarray:
        out = k.copy()
        out[:, :2] += rng.normal(0.0, noise, (len(k), 2))
        conf = np.select([k[:, 2] >= 2, k[:, 2] >= 1], [0.9, 0.1], 0.0)
        out[:, 2] = np.clip(conf + rng.normal(0.0, 0.03, len(k)), 0.0, 1.0) * (k[:, 2] > 0)
        return out

    if crops is None:
        jitter = rng.normal(0.0, 0.02, (len(ids), 4)) * boxes[:, [2, 3, 2, 3]]
        return (np.stack([person(k) for k in kpts]) if len(ids) else np.zeros((0, 17, 3)),
                boxes + jitter, np.full(len(ids), 0.9))
    crops = np.asarray(crops, dtype=np.float64).reshape(-1, 4)
    # A crop finds a person by the whole figure, the hidden parts too.
    figures = np.zeros((len(ids), 4))
    for j, k in enumerate(kpts):
        xy = k[k[:, 2] > 0, :2]
        figures[j] = [*xy.min(0), *(xy.max(0) - xy.min(0))]
    iou = box_iou(crops, figures)
    out = []
    for i, crop in enumerate(crops):
        j = int(np.argmax(iou[i])) if len(ids) else -1
        if j >= 0 and iou[i, j] >= min_overlap:
            out.append(person(kpts[j]))
        else:
            k = np.zeros((17, 3))
            k[:, :2] = crop[:2] + rng.random((17, 2)) * crop[2:]
            k[:, 2] = 0.05
            out.append(k)
    return (np.stack(out) if out else np.zeros((0, 17, 3)), crops.copy(),
            np.full(len(crops), 0.9))
