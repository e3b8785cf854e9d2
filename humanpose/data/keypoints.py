"""Key-point sets: joint names, flip pairs, skeletons, OKS sigmas, upper-body joints.

A :class:`KeypointSet` is all that the pipeline needs to know about a set of joints, so
COCO, MPII and any custom COCO-format set are handled by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "COCO",
    "HALPE26",
    "MPII",
    "KeypointSet",
    "custom_keypoint_set",
    "flip_pairs_from_names",
    "upper_body_ids_from_names",
]

COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# 1-based joint indices, as in COCO's person category.
COCO_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)
# Per-joint OKS sigmas of the COCO key-point challenge (pycocotools' defaults).
COCO_SIGMAS = (
    0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87,
    0.87, 0.89, 0.89,
)
# Loss weights per joint for LOSS.USE_DIFFERENT_JOINTS_WEIGHT (the HRNet code base's values).
COCO_JOINTS_WEIGHT = (
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5,
)

MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
    "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)
MPII_SKELETON = (
    (1, 2), (2, 3), (3, 7), (7, 4), (4, 5), (5, 6), (7, 8), (8, 9), (9, 10), (9, 13),
    (13, 12), (12, 11), (9, 14), (14, 15), (15, 16),
)


def flip_pairs_from_names(names: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) of joints that swap under a horizontal flip: ``left_x`` with ``right_x``.

    Prefixes and suffixes are recognised: ``left_``/``right_``, ``l_``/``r_``,
    ``_left``/``_right``, ``_l``/``_r``, case-insensitively.
    """
    index = {n.lower(): i for i, n in enumerate(names)}
    swaps = (("left_", "right_"), ("l_", "r_"))
    suffix_swaps = (("_left", "_right"), ("_l", "_r"))
    pairs = []
    for i, name in enumerate(names):
        low = name.lower()
        partner = None
        for a, b in swaps:
            if low.startswith(a):
                partner = b + low[len(a):]
                break
        if partner is None:
            for a, b in suffix_swaps:
                if low.endswith(a):
                    partner = low[: -len(a)] + b
                    break
        if partner is not None and partner in index and index[partner] != i:
            pairs.append((i, index[partner]))
    return pairs


@dataclass(frozen=True)
class KeypointSet:
    """What the data pipeline, the evaluation and the drawing need to know about the joints."""

    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...] = ()  # 1-based pairs, as in COCO files
    sigmas: tuple[float, ...] = ()  # OKS sigmas; empty: not evaluable with OKS
    upper_body_ids: tuple[int, ...] = ()  # for half-body augmentation
    joints_weight: tuple[float, ...] = ()  # empty: all ones

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def sigmas_array(self) -> np.ndarray:
        if len(self.sigmas) != self.num_joints:
            raise ValueError(f"{self.num_joints} joints but {len(self.sigmas)} OKS sigmas")
        return np.asarray(self.sigmas, dtype=np.float64)

    def joints_weight_array(self) -> np.ndarray:
        weights = self.joints_weight or (1.0,) * self.num_joints
        return np.asarray(weights, dtype=np.float32).reshape(-1, 1)


COCO = KeypointSet(
    names=COCO_NAMES,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    skeleton=COCO_SKELETON,
    sigmas=COCO_SIGMAS,
    upper_body_ids=tuple(range(11)),
    joints_weight=COCO_JOINTS_WEIGHT,
)

MPII = KeypointSet(
    names=MPII_NAMES,
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=MPII_SKELETON,
    upper_body_ids=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)


HALPE26_NAMES = COCO_NAMES + (
    "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
    "right_small_toe", "left_heel", "right_heel",
)
# Halpe's 26 body joints as mmpose 1.3 defines them (configs/_base_/datasets/halpe26.py):
# COCO's 17, then head, neck, hip and the feet; sigmas x10 (KeypointSet units), weights,
# upper body (its "upper" joints) and skeleton from that file.
HALPE26 = KeypointSet(
    names=HALPE26_NAMES,
    flip_pairs=COCO.flip_pairs + ((20, 21), (22, 23), (24, 25)),
    skeleton=(
        (16, 14), (14, 12), (12, 20), (17, 15), (15, 13), (13, 20), (18, 19), (19, 20),
        (19, 6), (6, 8), (8, 10), (19, 7), (7, 9), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4),
        (3, 5), (4, 6), (5, 7), (16, 21), (16, 23), (16, 25), (17, 22), (17, 24), (17, 26),
    ),
    sigmas=COCO_SIGMAS + (0.26, 0.26, 0.66, 0.79, 0.79, 0.79, 0.79, 0.79, 0.79),
    upper_body_ids=tuple(range(11)) + (17, 18),
    joints_weight=COCO_JOINTS_WEIGHT + (1.0, 1.0, 1.2, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5),
)

# Name fragments of joints that count as upper body for half-body augmentation.
UPPER_BODY_WORDS = ("nose", "eye", "ear", "mouth", "head", "neck", "thorax", "shoulder",
                    "elbow", "wrist", "hand")
# OKS sigma for a joint of a custom set that has no COCO namesake: about the mean of COCO's.
DEFAULT_SIGMA = 0.6


def upper_body_ids_from_names(names: Sequence[str]) -> tuple[int, ...]:
    """Joints whose names mention the head, neck, shoulders, arms or hands.

    Gives COCO's and MPII's published upper-body sets; when no name matches (say ``kp_0``,
    ``kp_1``, ...) the first half of the joints is taken.
    """
    ids = tuple(i for i, n in enumerate(names)
                if any(word in n.lower() for word in UPPER_BODY_WORDS))
    return ids or tuple(range(len(names) // 2))


def custom_keypoint_set(names: Sequence[str], skeleton: Sequence[Sequence[int]] = (),
                        flip_pairs: Sequence[Sequence[int]] = (),
                        sigmas: Sequence[float] = (),
                        upper_body_ids: Sequence[int] = ()) -> KeypointSet:
    """A :class:`KeypointSet` for any COCO-format category; empty arguments are derived.

    Flip pairs come from ``left_``/``right_`` names and upper-body joints from
    :func:`upper_body_ids_from_names`. Missing OKS sigmas take COCO's value for joints named
    as in COCO and :data:`DEFAULT_SIGMA` otherwise, so that OKS evaluation always works.
    COCO's own 17 names give COCO's set (with its loss weights), Halpe's 26 give
    :data:`HALPE26`, overridden where given.
    """
    names = tuple(str(n) for n in names)
    base = {COCO_NAMES: COCO, HALPE26_NAMES: HALPE26}.get(names)
    if not sigmas and base is not None:
        sigmas = base.sigmas
    if not sigmas:
        coco_sigma = dict(zip(COCO_NAMES, COCO_SIGMAS))
        sigmas = tuple(coco_sigma.get(n.lower(), DEFAULT_SIGMA) for n in names)
    pairs = flip_pairs or (base.flip_pairs if base else flip_pairs_from_names(names))
    return KeypointSet(
        names=names,
        flip_pairs=tuple((int(a), int(b)) for a, b in pairs),
        skeleton=tuple((int(a), int(b)) for a, b in skeleton) or (base.skeleton if base else ()),
        sigmas=tuple(float(x) for x in sigmas),
        upper_body_ids=(tuple(int(i) for i in upper_body_ids)
                        or (base.upper_body_ids if base else upper_body_ids_from_names(names))),
        joints_weight=base.joints_weight if base else (),
    )
