"""Skeleton drawing, and drawing a COCO results file over its images (``humanpose vis``).

Colours follow the seed's ``visualization/plot_coco.py`` ("Chunhua" style): the face in
magenta, the left arm yellow and the right arm light green, the left hip and leg pink and
the right ones sky blue. They are derived from joint names, so any key-point set with
``left_``/``right_`` names is coloured the same way. Drawing is done with OpenCV, in place,
fast enough to run on every video frame.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from humanpose.data.images import read_image
from humanpose.data.keypoints import COCO, KeypointSet, custom_keypoint_set, split_side
from humanpose.errors import HumanposeError

__all__ = ["SkeletonStyle", "draw_people", "draw_results", "draw_skeleton", "style_for",
           "track_color"]

Color = tuple[int, int, int]
# BGR, after the seed's RGB values.
FACE: Color = (127, 2, 240)
LEFT_ARM: Color = (0, 255, 255)
RIGHT_ARM: Color = (142, 209, 169)
LEFT_LEG: Color = (243, 176, 252)
RIGHT_LEG: Color = (240, 176, 0)
CENTRE: Color = (142, 209, 169)
BOX: Color = (0, 200, 0)
# Parts beyond the body (KeypointSet.parts: COCO-WholeBody, hands, faces).
PART_COLORS: dict[str, Color] = {"foot": (0, 140, 255), "face": (255, 255, 255),
                                 "left_hand": (255, 128, 0), "right_hand": (0, 215, 255)}
# Parts whose many close points are drawn as small dots with thin lines (a face's 68).
_FINE_PARTS = ("face", "left_hand", "right_hand")
_FACE_WORDS = ("nose", "eye", "ear", "mouth", "head", "neck", "chin")
_LEG_WORDS = ("hip", "knee", "ankle", "foot", "heel", "toe", "pelvis")


def _side(name: str) -> str:
    return split_side(name)[0]  # any spelling: "Left Shoulder", "LShoulder", "shoulder_l"


def _part(name: str) -> str:
    low = name.lower()
    if any(w in low for w in _FACE_WORDS):
        return "face"
    if any(w in low for w in _LEG_WORDS):
        return "leg"
    return "arm"


def _joint_color(name: str) -> Color:
    part, side = _part(name), _side(name)
    if part == "face":
        return FACE
    if part == "leg":
        return {"left": LEFT_LEG, "right": RIGHT_LEG}.get(side, CENTRE)
    return {"left": LEFT_ARM, "right": RIGHT_ARM}.get(side, CENTRE)


def _limb_color(a: str, b: str) -> Color:
    parts, sides = {_part(a), _part(b)}, {_side(a), _side(b)}
    if "face" in parts:
        return FACE
    if len(sides) == 1 and "" not in sides:  # one side: its leg colour when a hip is in it
        side = sides.pop()
        if "leg" in parts:
            return LEFT_LEG if side == "left" else RIGHT_LEG
        return LEFT_ARM if side == "left" else RIGHT_ARM
    return CENTRE  # shoulders, hips, spine


@dataclass(frozen=True)
class SkeletonStyle:
    """What to draw: limbs as 0-based joint pairs with their colours, and joint colours."""

    limbs: tuple[tuple[int, int], ...]
    limb_colors: tuple[Color, ...]
    joint_colors: tuple[Color, ...]
    thin_limbs: tuple[bool, ...]  # face lines, drawn one pixel wide as in the seed
    small_joints: tuple[bool, ...] = ()  # face and hand points: small dots, no ring


def style_for(keypoints: KeypointSet) -> SkeletonStyle:
    """The colouring of a key-point set's skeleton (COCO's gives the seed's colours). Sets
    with parts (whole body, hands, faces) colour feet, face and each hand apart, and draw
    face and hand points as small dots joined by thin lines."""
    names = keypoints.names
    k = keypoints.num_joints
    limbs = tuple((a - 1, b - 1) for a, b in keypoints.skeleton
                  if 0 < a <= k and 0 < b <= k)
    part = [keypoints.part_of(i) for i in range(k)]

    def limb_part(a: int, b: int) -> str:
        return part[a] if part[a] != "body" else part[b]

    return SkeletonStyle(
        limbs=limbs,
        limb_colors=tuple(PART_COLORS[limb_part(a, b)] if limb_part(a, b) != "body"
                          else _limb_color(names[a], names[b]) for a, b in limbs),
        joint_colors=tuple(PART_COLORS.get(part[i]) or _joint_color(n)
                           for i, n in enumerate(names)),
        thin_limbs=tuple((_part(names[a]) == "face" and _part(names[b]) == "face")
                         or limb_part(a, b) in _FINE_PARTS for a, b in limbs),
        small_joints=tuple(p in _FINE_PARTS for p in part),
    )


def track_color(track_id: int) -> Color:
    """A bright BGR colour of its own for each track id (golden-ratio steps around the hue
    circle, so that neighbouring ids differ clearly)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.array([[[hue, 220, 255]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, style: SkeletonStyle,
                  threshold: float = 0.2, thickness: int | None = None,
                  color: Color | None = None) -> np.ndarray:
    """Draw one person's ``(K, 3)`` key points (joints below ``threshold`` left out) on a
    BGR image, in place. Lines get thicker with the person's size unless ``thickness``;
    ``color`` draws every limb in it (a track's colour) instead of the style's."""
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, 3)
    shown = kp[:, 2] >= threshold
    if not shown.any():
        return image
    if thickness is None:
        extent = float(np.ptp(kp[shown, :2], axis=0).max()) if shown.sum() > 1 else 0.0
        thickness = int(np.clip(round(extent / 60), 1, 8))
    points = np.round(kp[:, :2]).astype(np.int32)
    n = len(kp)
    forced = color
    for (a, b), color, thin in zip(style.limbs, style.limb_colors, style.thin_limbs):
        if a < n and b < n and shown[a] and shown[b]:
            cv2.line(image, tuple(points[a].tolist()), tuple(points[b].tolist()),
                     color if forced is None else forced, 1 if thin else thickness,
                     cv2.LINE_AA)
    radius = thickness + 1
    for k in np.flatnonzero(shown):
        center = tuple(points[k].tolist())
        color = style.joint_colors[k] if k < len(style.joint_colors) else CENTRE
        if k < len(style.small_joints) and style.small_joints[k]:
            cv2.circle(image, center, 1, color, -1, cv2.LINE_AA)
            continue
        cv2.circle(image, center, radius, color, -1, cv2.LINE_AA)
        cv2.circle(image, center, radius, (0, 0, 0), 1, cv2.LINE_AA)  # the seed's black ring
    return image


def draw_people(image: np.ndarray, people: Iterable, keypoint_set: KeypointSet = COCO,
                threshold: float = 0.2, draw_boxes: bool = False,
                style: SkeletonStyle | None = None) -> np.ndarray:
    """Draw people on a BGR uint8 image, in place, and return it.

    ``people``: :class:`~humanpose.inference.Person` objects, COCO result records (dicts
    with flat ``keypoints``) or ``(K, 3)`` arrays. A person with a ``track_id`` (>= 0) is
    drawn in its track's colour (:func:`track_color`), its id written above it.
    """
    style = style or style_for(keypoint_set)
    for person in people:
        box, track_id = None, None
        if isinstance(person, dict):
            keypoints, box = np.asarray(person["keypoints"]), person.get("bbox")
            track_id = person.get("track_id")
        elif hasattr(person, "keypoints"):
            keypoints, box = person.keypoints, getattr(person, "box", None)
            track_id = getattr(person, "track_id", None)
        else:
            keypoints = np.asarray(person)
        color = track_color(track_id) if track_id is not None and track_id >= 0 else None
        if draw_boxes and box is not None:
            x, y, w, h = (int(round(float(v))) for v in box)
            cv2.rectangle(image, (x, y), (x + w, y + h), BOX if color is None else color, 1)
        draw_skeleton(image, keypoints, style, threshold, color=color)
        if color is not None:
            _label(image, keypoints, threshold, f"id {track_id}", color)
    return image


def _label(image: np.ndarray, keypoints: np.ndarray, threshold: float, text: str,
           color: Color) -> None:
    """``text`` above the person's highest shown joint."""
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, 3)
    shown = kp[:, 2] >= threshold
    if not shown.any():
        return
    top = int(np.argmin(np.where(shown, kp[:, 1], np.inf)))
    x, y = int(round(float(kp[top, 0]))), int(round(float(kp[top, 1]))) - 10
    cv2.putText(image, text, (x, max(y, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3,
                cv2.LINE_AA)
    cv2.putText(image, text, (x, max(y, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1,
                cv2.LINE_AA)


# ----------------------------------------------------------------------------- vis command
def _file_names(results_path: Path, annotations: str | os.PathLike | None
                ) -> tuple[dict[int, str], KeypointSet | None]:
    """(image id → file name, key-point set of the person category or None): from the
    annotation file given, else from the ``images.json`` that ``humanpose infer`` writes
    beside its results; empty when neither exists."""
    source = Path(annotations) if annotations else results_path.with_name("images.json")
    if not source.is_file():
        if annotations:
            raise HumanposeError(f"annotation file not found: {source}")
        return {}, None
    try:
        data = json.loads(source.read_text())
        names = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
    except (ValueError, KeyError, TypeError) as err:
        raise HumanposeError(f"{source}: expected a COCO file with an 'images' list of "
                             f"{{'id', 'file_name'}}: {err}") from err
    return names, _category_keypoints(data, source)


def _category_keypoints(data: dict, source: Path) -> KeypointSet | None:
    """The joints named by the file's person category (for drawing: no flip pairs needed)."""
    from humanpose.data.coco import DatasetError, person_category

    if not isinstance(data.get("categories"), list) or not data["categories"]:
        return None
    try:
        category = person_category(data, str(source))
    except DatasetError:
        return None
    names = category.get("keypoints")
    if not isinstance(names, list) or not names:
        return None
    skeleton = [p for p in category.get("skeleton", []) if isinstance(p, list) and len(p) == 2]
    return custom_keypoint_set(names, skeleton=skeleton, flip_pairs=[], sigmas=[1.0] * len(names))


def _find_image(images_dir: Path, image_id: int, names: dict[int, str]) -> Path | None:
    if image_id in names:
        return images_dir / names[image_id]
    for candidate in (f"{image_id:012d}.jpg", f"{image_id}.jpg", f"{image_id:012d}.png"):
        if (images_dir / candidate).is_file():
            return images_dir / candidate
    return None


def draw_results(results: str | os.PathLike, images_dir: str | os.PathLike,
                 output_dir: str | os.PathLike, annotations: str | os.PathLike | None = None,
                 min_score: float = 0.3, threshold: float = 0.2,
                 keypoint_set: KeypointSet | None = None, draw_boxes: bool = False,
                 image_ids: Sequence[int] | None = None) -> list[Path]:
    """Draw a COCO key-point results file over its images, one output image per input image
    with results; returns the files written.

    People scoring below ``min_score`` and joints below ``threshold`` are left out (0.3 and
    0.2 in the seed's ``plot_coco.py``). File names come from ``annotations`` (a COCO
    annotation file), else from ``images.json`` beside the results, else COCO's naming
    (``000000397133.jpg`` for image 397133). The joints are ``keypoint_set`` (the model's),
    else those the annotation file's (or ``images.json``'s) person category names, else
    numbered joints drawn without a skeleton: never COCO's guessed from their number.
    """
    results_path = Path(results)
    try:
        records = json.loads(results_path.read_text())
    except (OSError, ValueError) as err:
        raise HumanposeError(f"cannot read results file {results_path}: {err}") from err
    if not isinstance(records, list):
        raise HumanposeError(f"{results_path}: expected a JSON list of COCO results")
    by_image: dict[int, list[dict]] = defaultdict(list)
    for rec in records:
        if float(rec.get("score", 1.0)) >= min_score:
            by_image[int(rec["image_id"])].append(rec)
    names, file_set = _file_names(results_path, annotations)
    num_joints = {len(r.get("keypoints", [])) // 3 for r in records}
    if len(num_joints) > 1:
        raise HumanposeError(f"{results_path}: results with different joint counts "
                             f"{sorted(num_joints)}")
    k = num_joints.pop() if num_joints else (keypoint_set or file_set or COCO).num_joints
    keypoint_set = keypoint_set or file_set
    if keypoint_set is None:
        keypoint_set = custom_keypoint_set([f"joint_{i}" for i in range(k)], skeleton=[],
                                           flip_pairs=[], sigmas=[1.0] * k)
    if keypoint_set.num_joints != k:
        raise HumanposeError(f"{results_path} has {k} joints per person but the key-point set "
                             f"has {keypoint_set.num_joints} ({list(keypoint_set.names)})")
    images_dir, output_dir = Path(images_dir), Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    style = style_for(keypoint_set)
    wanted = sorted(by_image) if image_ids is None else list(image_ids)
    written = []
    missing = []
    for image_id in wanted:
        path = _find_image(images_dir, image_id, names)
        if path is None or not path.is_file():
            missing.append(image_id)
            continue
        image = read_image(str(path))
        draw_people(image, by_image.get(image_id, []), threshold=threshold,
                    draw_boxes=draw_boxes, style=style)
        out = output_dir / f"{path.stem}.jpg"
        if not cv2.imwrite(str(out), image):
            raise HumanposeError(f"cannot write {out}")
        written.append(out)
    if missing and not written:
        raise HumanposeError(f"none of the {len(missing)} images of {results_path} was found in "
                             f"{images_dir} (e.g. image id {missing[0]}); pass the COCO "
                             "annotation file that names them with --annotations")
    return written
