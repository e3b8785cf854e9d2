"""RTMPose's training augmentation (``DATASET.AUG_STYLE rtmpose``), as mmpose 1.3.2 defines it.

mmpose's pipeline is: RandomFlip, RandomHalfBody, RandomBBoxTransform, TopdownAffine, then on
the crop YOLOXHSVRandomAug (COCO configs; the Halpe-26/body8 configs use mmpose's
PhotometricDistortion, first stage only) and albumentations' Blur, MedianBlur and
CoarseDropout. The box
draws here (flip, half body, shift/scale/rotate) decide the crop; :func:`photometric` then
changes the crop's pixels, never the key points. The second stage (mmpose's
PipelineSwitchHook for the last epochs) is the same pipeline with weaker settings.

Random numbers: ``np.random`` for the box and HSV draws (as mmpose), Python's ``random`` for
the three albumentations transforms (as albumentations); both are seeded per epoch and per
loader worker by the engine and PyTorch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np

from humanpose.data.geometry import PIXEL_STD

__all__ = ["COLOR_AUGMENTS", "RTMPoseAugment", "half_body_box_rtmpose", "photometric",
           "photometric_distortion", "random_box", "truncated_normal", "yolox_hsv"]

# mmpose's RandomHalfBody defaults, which the RTMPose configs use (the visible-joint minimum
# and the probability come from DATASET.NUM_JOINTS_HALF_BODY and DATASET.PROB_HALF_BODY).
HALF_BODY_MIN_UPPER = 2
HALF_BODY_MIN_LOWER = 3
HALF_BODY_PADDING = 1.5
HALF_BODY_UPPER_PRIORITY = 0.7
# albumentations' Blur and MedianBlur default kernel sizes: odd, 3 to 7.
BLUR_KERNELS = (3, 5, 7)
# DATASET.AUG_COLOR: mmdet's YOLOXHSVRandomAug, mmpose's PhotometricDistortion, or nothing.
COLOR_AUGMENTS = ("hsv", "photometric", "none")


@dataclass(frozen=True)
class RTMPoseAugment:
    """The settings of one stage of the RTMPose augmentation."""

    shift_factor: float = 0.16
    shift_prob: float = 0.3
    scale_range: tuple[float, float] = (0.6, 1.4)
    scale_prob: float = 1.0
    rotate_factor: float = 80.0
    rotate_prob: float = 0.6
    flip: bool = True
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8  # more visible joints than this (mmpose: at least 9)
    color: str = "hsv"  # one of COLOR_AUGMENTS
    hsv: tuple[int, ...] = (5, 30, 30)
    blur_prob: float = 0.1
    median_blur_prob: float = 0.1
    dropout_prob: float = 1.0
    dropout_size: tuple[float, float] = (0.2, 0.4)

    @classmethod
    def stages_from_cfg(cls, cfg) -> tuple[RTMPoseAugment, RTMPoseAugment]:
        """(first stage, second stage) from the DATASET.AUG_* keys."""
        d = cfg.DATASET
        for key in ("AUG_SCALE_RANGE", "AUG_STAGE2_SCALE_RANGE", "AUG_DROPOUT_SIZE"):
            value = d[key]
            if len(value) != 2 or not 0 < value[0] <= value[1]:
                raise ValueError(f"DATASET.{key} must be [low, high] with 0 < low <= high, "
                                 f"got {list(value)}")
        for key in ("AUG_COLOR", "AUG_STAGE2_COLOR"):
            if d[key].lower() not in COLOR_AUGMENTS:
                raise ValueError(f"DATASET.{key} must be one of {COLOR_AUGMENTS}, "
                                 f"got {d[key]!r}")
        if d.AUG_HSV and len(d.AUG_HSV) != 3:
            raise ValueError(f"DATASET.AUG_HSV must be [hue, saturation, value] deltas or [], "
                             f"got {list(d.AUG_HSV)}")
        first = cls(
            shift_factor=float(d.AUG_SHIFT_FACTOR), shift_prob=float(d.AUG_SHIFT_PROB),
            scale_range=tuple(float(v) for v in d.AUG_SCALE_RANGE),
            scale_prob=float(d.AUG_SCALE_PROB), rotate_factor=float(d.AUG_ROTATE_FACTOR),
            rotate_prob=float(d.AUG_ROTATE_PROB), flip=bool(d.FLIP),
            half_body_prob=float(d.PROB_HALF_BODY),
            half_body_min_joints=int(d.NUM_JOINTS_HALF_BODY),
            color=d.AUG_COLOR.lower(), hsv=tuple(int(v) for v in d.AUG_HSV),
            blur_prob=float(d.AUG_BLUR_PROB),
            median_blur_prob=float(d.AUG_MEDIAN_BLUR_PROB),
            dropout_prob=float(d.AUG_DROPOUT_PROB),
            dropout_size=tuple(float(v) for v in d.AUG_DROPOUT_SIZE))
        second = cls(**{**first.__dict__,
                        "shift_factor": float(d.AUG_STAGE2_SHIFT_FACTOR),
                        "scale_range": tuple(float(v) for v in d.AUG_STAGE2_SCALE_RANGE),
                        "rotate_factor": float(d.AUG_STAGE2_ROTATE_FACTOR),
                        "color": d.AUG_STAGE2_COLOR.lower(),
                        "dropout_prob": float(d.AUG_STAGE2_DROPOUT_PROB)})
        return first, second


def truncated_normal(size: int) -> np.ndarray:
    """Standard normal draws truncated to [-1, 1] (scipy's ``truncnorm.rvs(-1, 1)``), by
    rejection: each draw is redrawn until it falls inside (68% do)."""
    out = np.random.standard_normal(size)
    bad = np.abs(out) > 1.0
    while bad.any():
        out[bad] = np.random.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 1.0
    return out.astype(np.float32)


def random_box(center: np.ndarray, scale: np.ndarray, aug: RTMPoseAugment
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """mmpose's RandomBBoxTransform: (centre, scale, rotation in degrees).

    The centre moves by ``shift_factor`` times the box size (with ``shift_prob``), the box
    is scaled by a factor over ``scale_range`` and rotated by up to ``rotate_factor``
    degrees (with ``rotate_prob``), each factor a truncated normal draw.
    """
    values = truncated_normal(4)
    offset = values[:2] * aug.shift_factor
    if not np.random.rand() < aug.shift_prob:
        offset = np.zeros(2)
    low, high = aug.scale_range
    factor = values[2] * (high - low) * 0.5 + (high + low) * 0.5
    if not np.random.rand() < aug.scale_prob:
        factor = 1.0
    rotation = values[3] * aug.rotate_factor
    if not np.random.rand() < aug.rotate_prob:
        rotation = 0.0
    center = center + offset * scale * PIXEL_STD
    return center, scale * np.float64(factor), float(rotation)


def half_body_box_rtmpose(joints: np.ndarray, joints_vis: np.ndarray, upper_body: np.ndarray,
                          aug: RTMPoseAugment, aspect_ratio: float
                          ) -> tuple[np.ndarray, np.ndarray] | None:
    """mmpose's RandomHalfBody: with ``half_body_prob``, a box around the visible upper (70%)
    or lower body, 1.5 times their extent, widened to the input's aspect ratio (mmpose's
    TopdownAffine does that); None when it does not apply."""
    vis = joints_vis[:, 0] > 0
    if vis.sum() <= aug.half_body_min_joints:
        return None
    if np.random.rand() > aug.half_body_prob:
        return None
    upper, lower = np.flatnonzero(vis & upper_body), np.flatnonzero(vis & ~upper_body)
    prefer_upper = np.random.rand() < HALF_BODY_UPPER_PRIORITY
    upper_ok, lower_ok = len(upper) >= HALF_BODY_MIN_UPPER, len(lower) >= HALF_BODY_MIN_LOWER
    if not upper_ok and not lower_ok:
        return None
    chosen = upper if (upper_ok and (prefer_upper or not lower_ok)) else lower
    points = joints[chosen, :2].astype(np.float64)
    center = points.mean(axis=0)
    w, h = (points.max(axis=0) - points.min(axis=0)) * HALF_BODY_PADDING
    if w <= 0 and h <= 0:  # the chosen joints coincide: no box to crop
        return None
    if w > h * aspect_ratio:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center.astype(np.float32), np.array([w, h]) / PIXEL_STD


def yolox_hsv(bgr: np.ndarray, deltas: tuple[int, ...]) -> None:
    """mmdet's YOLOXHSVRandomAug, in place on a uint8 BGR image: hue, saturation and value
    each shifted (with probability 1/2) by an integer within +-delta."""
    gains = np.random.uniform(-1, 1, 3) * np.asarray(deltas, dtype=np.float64)
    gains = (gains * np.random.randint(0, 2, 3)).astype(np.int16)
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + gains[0]) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
    cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR, dst=bgr)


def _scale_clip(values: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """``values * alpha + beta`` in float32, clipped to [0, 255], truncated to uint8."""
    return np.clip(values.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(bgr: np.ndarray) -> np.ndarray:
    """mmpose 1.3.2's PhotometricDistortion with its defaults (brightness +-32, contrast and
    saturation x[0.5, 1.5], hue +-18, channel swap), its draws in its order, and its code's
    behaviour kept: contrast is applied (twice) only in "contrast mode" 1, and a shifted hue
    wraps around 256 (uint8) before the HSV to BGR conversion."""
    contrast_mode, brightness_flag, contrast_flag = (np.random.randint(2) for _ in range(3))
    hsv_mode, swap_flag = np.random.randint(4), np.random.randint(2)
    beta = np.random.uniform(-32, 32)
    contrast = np.random.uniform(0.5, 1.5)
    saturation = np.random.uniform(0.5, 1.5)
    hue = np.random.randint(-18, 18)
    order = np.random.permutation(3)
    img = bgr
    if brightness_flag:
        img = _scale_clip(img, beta=beta)
    if contrast_mode == 1 and contrast_flag:
        img = _scale_clip(img, alpha=contrast)
    if hsv_mode:
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        if hsv_mode in (1, 3):
            hsv[..., 1] = _scale_clip(hsv[..., 1], alpha=saturation)
        if hsv_mode in (2, 3):
            hsv[..., 0] = (hsv[..., 0].astype(np.int64) + hue) % 256
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if contrast_mode == 1 and contrast_flag:
        img = _scale_clip(img, alpha=contrast)
    if swap_flag:
        img = img[..., order]
    return np.ascontiguousarray(img)


def coarse_dropout(image: np.ndarray, size: tuple[float, float]) -> None:
    """albumentations' CoarseDropout with one hole of ``size`` (fractions of the height and
    width, drawn separately), filled with 0, in place."""
    height, width = image.shape[:2]
    hole_h = int(height * random.uniform(*size))
    hole_w = int(width * random.uniform(*size))
    y1 = random.randint(0, height - hole_h)
    x1 = random.randint(0, width - hole_w)
    image[y1:y1 + hole_h, x1:x1 + hole_w] = 0


def photometric(crop: np.ndarray, aug: RTMPoseAugment) -> np.ndarray:
    """The crop-level transforms in mmpose's order (colour, Blur, MedianBlur, CoarseDropout) on
    the BGR channels of an ``(H, W, 3 or 4)`` uint8 crop; the key points do not move."""
    bgr = np.ascontiguousarray(crop[..., :3])
    if aug.color == "hsv" and aug.hsv:
        yolox_hsv(bgr, aug.hsv)
    elif aug.color == "photometric":
        bgr = photometric_distortion(bgr)
    if random.random() < aug.blur_prob:
        k = random.choice(BLUR_KERNELS)
        bgr = cv2.blur(bgr, (k, k))
    if random.random() < aug.median_blur_prob:
        bgr = cv2.medianBlur(bgr, random.choice(BLUR_KERNELS))
    if random.random() < aug.dropout_prob:
        coarse_dropout(bgr, aug.dropout_size)
    out = crop.copy()
    out[..., :3] = bgr
    return out
