"""Key-point sets: joint names, flip pairs, skeletons, OKS sigmas, upper-body joints.

A :class:`KeypointSet` is all that the pipeline needs to know about a set of joints, so
COCO, MPII and any custom COCO-format set are handled by the same code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from humanpose.data import keypoint_tables as tables
from humanpose.errors import HumanposeError

logger = logging.getLogger(__name__)

__all__ = [
    "COCO",
    "COCO_WHOLEBODY",
    "FACE68",
    "FACE106",
    "HAND21",
    "HALPE26",
    "PARTS",
    "KEYPOINT_SETS",
    "MPII",
    "KeypointSet",
    "KeypointSetError",
    "coco_sigmas_for",
    "custom_keypoint_set",
    "keypoint_set_from_dict",
    "keypoint_set_to_dict",
    "flip_pairs_from_names",
    "normalize_name",
    "split_side",
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


class KeypointSetError(HumanposeError, ValueError):
    """Joint names, flip pairs or sigmas that do not make a usable key-point set."""


# Side words, as separate name tokens: ``left_x``, ``Left X``, ``L_X``, ``LX``, ``x_l``, ...
_SIDES = {"left": "left", "l": "left", "lt": "left", "right": "right", "r": "right",
          "rt": "right"}
_OTHER_SIDE = {"left": "right", "right": "left"}
# Tokens of a name: separators split; so do camel-case humps ("LShoulder" -> L, Shoulder;
# "leftShoulder" -> left, Shoulder) and digits. "lower_lip", "leg", "rib" stay whole words.
_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def split_side(name: str) -> tuple[str, str]:
    """(side, base) of a joint name: side ``"left"``, ``"right"`` or ``""``; base in COCO's
    spelling (lower case, words joined by ``_``): ``"Right Shoulder"``, ``"RShoulder"``,
    ``"shoulder_r"`` all give ``("right", "shoulder")``; ``"Head top"`` gives
    ``("", "head_top")``. A side is only a whole token at either end of a name of two or more
    tokens, so ``"rib"``, ``"lower_lip"`` or ``"R"`` alone have none."""
    tokens = [t.lower() for part in re.split(r"[^A-Za-z0-9]+", str(name)) if part
              for t in _TOKEN.findall(part)]
    # The rest must hold a word: "L5" or "T1" are vertebrae, not a left joint number 5.
    if len(tokens) >= 2:
        if tokens[0] in _SIDES and any(t.isalpha() for t in tokens[1:]):
            return _SIDES[tokens[0]], "_".join(tokens[1:])
        if tokens[-1] in _SIDES and any(t.isalpha() for t in tokens[:-1]):
            return _SIDES[tokens[-1]], "_".join(tokens[:-1])
    return "", "_".join(tokens)


def normalize_name(name: str) -> str:
    """The canonical spelling of a joint name: ``side_base`` as COCO spells its joints
    (``"Left Shoulder"``, ``"LShoulder"``, ``"shoulder-left"`` -> ``"left_shoulder"``)."""
    side, base = split_side(name)
    return f"{side}_{base}" if side else base


def flip_pairs_from_names(names: Sequence[str], source: str = "") -> list[tuple[int, int]]:
    """Pairs (i, j) of joints that swap under a horizontal flip, from their names in any
    common convention (see :func:`split_side`).

    A joint whose name has a side but whose mirror joint is missing raises
    :class:`KeypointSetError` naming them: a flip would leave it on the wrong side.
    """
    split = [split_side(n) for n in names]
    index = {}
    for i, (side, base) in enumerate(split):
        index.setdefault((side, base), i)
    pairs, lonely = [], []
    for i, (side, base) in enumerate(split):
        if not side:
            continue
        j = index.get((_OTHER_SIDE[side], base))
        if j is None:
            lonely.append(names[i])
        elif i < j:
            pairs.append((i, j))
    if lonely:
        where = f" in {source}" if source else ""
        raise KeypointSetError(
            f"joints {lonely}{where} are named as one side but have no joint of the other side "
            "to swap with under a horizontal flip; rename them, or set DATASET.FLIP_PAIRS "
            "([[i, j], ...] 0-based, or [] for none)")
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
    parts: tuple[str, ...] = ()  # per joint, one of PARTS; empty: all "body"

    def part_of(self, joint: int) -> str:
        """The part a joint belongs to (drawing colours, per-part evaluation)."""
        return self.parts[joint] if self.parts else "body"

    def part_ids(self, part: str) -> tuple[int, ...]:
        """The joints of one part, in set order (the slice a per-part field holds)."""
        return tuple(i for i in range(self.num_joints) if self.part_of(i) == part)

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

# Parts of a joint, for colours and per-part evaluation (COCO-WholeBody's fields, in order).
PARTS = ("body", "foot", "face", "left_hand", "right_hand")


def _tenfold(sigmas: Sequence[float]) -> tuple[float, ...]:
    """pycocotools' sigmas (mmpose's tables) in KeypointSet units."""
    return tuple(round(10.0 * s, 12) for s in sigmas)


# COCO-WholeBody (mmpose's order): COCO's 17 body joints, 6 foot, 68 face, 21 left hand and
# 21 right hand joints. Face and hand names carry no side: flip pairs are mmpose's "swap".
COCO_WHOLEBODY = KeypointSet(
    names=tables.WHOLEBODY_NAMES,
    flip_pairs=tables.WHOLEBODY_FLIP_PAIRS,
    skeleton=tables.WHOLEBODY_SKELETON,
    sigmas=_tenfold(tables.WHOLEBODY_SIGMAS),
    upper_body_ids=tuple(range(11)) + tuple(range(23, 133)),
    parts=("body",) * 17 + ("foot",) * 6 + ("face",) * 68 + ("left_hand",) * 21
    + ("right_hand",) * 21,
)
# One hand (mmpose's coco_wholebody_hand): no left/right joints, so no flip pairs.
HAND21 = KeypointSet(
    names=tables.HAND21_NAMES, flip_pairs=(), skeleton=tables.HAND21_SKELETON,
    sigmas=_tenfold(tables.HAND21_SIGMAS), upper_body_ids=tuple(range(21)),
    parts=("left_hand",) * 21)
# COCO-WholeBody's 68 face points (mmpose's coco_wholebody_face).
FACE68 = KeypointSet(
    names=tables.FACE68_NAMES, flip_pairs=tables.FACE68_FLIP_PAIRS,
    sigmas=_tenfold(tables.FACE68_SIGMAS), upper_body_ids=tuple(range(68)),
    parts=("face",) * 68)
# LaPa's 106 face points (mmpose's lapa): mmpose gives no OKS sigmas for them.
FACE106 = KeypointSet(
    names=tables.FACE106_NAMES, flip_pairs=tables.FACE106_FLIP_PAIRS,
    upper_body_ids=tuple(range(106)), parts=("face",) * 106)

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


_logged_unknown: set[tuple[str, ...]] = set()


def coco_sigmas_for(names: Sequence[str]) -> tuple[float, ...]:
    """OKS sigmas (KeypointSet units) by normalised name: COCO's for COCO's joints in any
    spelling ("Right Shoulder" gets COCO's shoulder sigma), :data:`DEFAULT_SIGMA` otherwise
    (logged once per set of names)."""
    coco_sigma = dict(zip(COCO_NAMES, COCO_SIGMAS))
    sigmas = tuple(coco_sigma.get(normalize_name(n), DEFAULT_SIGMA) for n in names)
    unknown = tuple(n for n in names if normalize_name(n) not in coco_sigma)
    if unknown and tuple(names) not in _logged_unknown:
        _logged_unknown.add(tuple(names))
        logger.warning("=> joints %s have no COCO namesake: OKS sigma %.3f (pycocotools' "
                       "scale) for them; set DATASET.SIGMAS to choose", list(unknown),
                       DEFAULT_SIGMA / 10)
    return sigmas


def custom_keypoint_set(names: Sequence[str], skeleton: Sequence[Sequence[int]] | None = None,
                        flip_pairs: Sequence[Sequence[int]] | None = None,
                        sigmas: Sequence[float] | None = None,
                        upper_body_ids: Sequence[int] = (), source: str = "") -> KeypointSet:
    """A :class:`KeypointSet` for any COCO-format category; None arguments are derived
    (an empty sequence is taken as given: no flip pairs, no skeleton).

    Flip pairs come from the names' sides in any common spelling (:func:`split_side`;
    a sided joint without its mirror raises :class:`KeypointSetError`), upper-body joints
    from :func:`upper_body_ids_from_names`, sigmas (KeypointSet units, 10x pycocotools')
    from COCO's joint of the same normalised name (:func:`coco_sigmas_for`). ``skeleton`` is
    1-based, as in COCO files. COCO's own 17 names give COCO's set (with its loss weights),
    overridden where given.
    """
    names = tuple(str(n) for n in names)
    base = {known.names: known for known in (COCO, HALPE26, COCO_WHOLEBODY, HAND21, FACE68,
                                             FACE106)}.get(names)
    if (sigmas is None or len(sigmas) == 0) and base is not None:
        sigmas = base.sigmas
    if sigmas is None or len(sigmas) == 0:
        sigmas = coco_sigmas_for(names)
    if flip_pairs is None:
        flip_pairs = base.flip_pairs if base else flip_pairs_from_names(names, source)
    if skeleton is None:
        skeleton = base.skeleton if base else ()
    return KeypointSet(
        names=names,
        flip_pairs=tuple((int(a), int(b)) for a, b in flip_pairs),
        skeleton=tuple((int(a), int(b)) for a, b in skeleton),
        sigmas=tuple(float(x) for x in sigmas),
        upper_body_ids=(tuple(int(i) for i in upper_body_ids)
                        or (base.upper_body_ids if base else upper_body_ids_from_names(names))),
        joints_weight=base.joints_weight if base else (),
        parts=base.parts if base else (),
    )


def keypoint_set_to_dict(keypoints: KeypointSet) -> dict:
    """A plain dict for checkpoints, ONNX metadata and results files: ``names``,
    ``flip_pairs`` and ``skeleton`` (0-based pairs), ``sigmas`` (pycocotools' scale, as the
    config's ``DATASET.SIGMAS``) and ``upper_body_ids``."""
    return {
        "names": list(keypoints.names),
        "flip_pairs": [[int(a), int(b)] for a, b in keypoints.flip_pairs],
        "skeleton": [[int(a) - 1, int(b) - 1] for a, b in keypoints.skeleton],
        "sigmas": [round(float(s) / 10.0, 6) for s in keypoints.sigmas],
        "upper_body_ids": [int(i) for i in keypoints.upper_body_ids],
    }


def keypoint_set_from_dict(data: dict, source: str = "") -> KeypointSet:
    """The inverse of :func:`keypoint_set_to_dict`; COCO's and MPII's own sets come back as
    themselves (with COCO's loss weights)."""
    try:
        names = tuple(str(n) for n in data["names"])
        k = len(names)
        pairs = tuple((int(a), int(b)) for a, b in data.get("flip_pairs", []))
        skeleton = tuple((int(a) + 1, int(b) + 1) for a, b in data.get("skeleton", []))
        sigmas = tuple(float(s) * 10.0 for s in data.get("sigmas", []))
        upper = tuple(int(i) for i in data.get("upper_body_ids", []))
    except (KeyError, TypeError, ValueError) as err:
        raise KeypointSetError(f"{source or 'key-point set'}: expected a dict with names, "
                               f"flip_pairs, skeleton, sigmas ({err})") from err
    bad = [p for p in pairs + tuple((a - 1, b - 1) for a, b in skeleton)
           if not (0 <= p[0] < k and 0 <= p[1] < k)]
    if bad or (sigmas and len(sigmas) != k):
        raise KeypointSetError(f"{source or 'key-point set'}: pairs {bad} out of 0..{k - 1} or "
                               f"{len(sigmas)} sigmas for {k} joints")
    for known in (COCO, MPII, COCO_WHOLEBODY, HAND21, FACE68, FACE106):
        if names == known.names and pairs == known.flip_pairs and skeleton == known.skeleton \
                and (not sigmas or np.allclose(sigmas, known.sigmas or sigmas)):
            return known
    return KeypointSet(names=names, flip_pairs=pairs, skeleton=skeleton, sigmas=sigmas,
                       upper_body_ids=upper or upper_body_ids_from_names(names))


# Named key-point sets (DATASET.KEYPOINT_SET), for configs whose data is not at hand.
KEYPOINT_SETS: dict[str, KeypointSet] = {
    "coco": COCO, "mpii": MPII, "halpe26": HALPE26, "coco_wholebody": COCO_WHOLEBODY,
    "hand21": HAND21, "face68": FACE68, "face106": FACE106,
}
