"""Synthetic key-point data sets of drawn people, for the demo, the tests and benchmarks.

Each image shows a few stick figures over a calm background: a filled torso, thick limbs
whose colour says which limb segment they are (the same colour on both sides, so that flip
augmentation stays consistent: as in photos, left and right follow from the figure facing
the camera), a head disc with eyes, nose and ears, hands and feet. People vary in size,
pose, lean and position, overlap one another, stand partly outside the image and are
sometimes hidden behind an occluder (a box, or a pole from top to bottom).

Annotations follow COCO: ``bbox`` is tight around the drawn person (inside the image),
``area`` is 0.6 x the box area (about COCO's ratio of a person's segmentation to its box;
the thin figures cover only ~0.3 of their box, which would make OKS stricter than on COCO,
as OKS scales its tolerance with the square root of ``area``), visibility
is 2 for visible joints, 1 for joints hidden by another person or an occluder, and 0 with
(0, 0) for joints outside the image. Generation is deterministic for a given seed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from humanpose.data.keypoints import COCO

__all__ = ["SynthConfig", "draw_scene", "joint_visibility", "write_coco_set", "write_coco_split",
           "write_mpii_set"]

# COCO joint indices.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI, L_HIP, R_HIP, \
    L_KNE, R_KNE, L_ANK, R_ANK = range(17)
# Limb colours (BGR), one per segment type and the same on both sides.
THIGH, SHIN, UPPER_ARM, FOREARM = (200, 90, 30), (230, 200, 40), (40, 170, 40), (40, 200, 230)
HAND, FOOT, EYE, NOSE_COLOR, EAR = (0, 120, 255), (60, 40, 40), (30, 30, 30), (40, 40, 220), \
    (150, 80, 200)
SKIN_TONES = ((150, 180, 230), (110, 150, 200), (80, 110, 160), (60, 80, 110))
OCCLUDER_OWNER = 255
# COCO ``area`` / box area for the drawn people (see the module docstring).
AREA_PER_BOX = 0.6


@dataclass(frozen=True)
class SynthConfig:
    """What the generator draws."""

    width: int = 320
    height: int = 240
    max_people: int = 4
    # Person height as a fraction of the image height.
    min_height: float = 0.35
    max_height: float = 0.95
    # Probability that an image gets an occluder, and std of the pixel noise (grey levels).
    occluder_prob: float = 0.3
    # Share of the occluders that are a pole from the top of the image to the bottom (a
    # pillar, a tree, a door frame): it cuts a person passing behind it in two.
    pole_share: float = 0.4
    noise: float = 3.0
    jpeg_quality: int = 92


@dataclass
class Person:
    """One drawn person: COCO key points (17, 3), its tight box and its COCO ``area``."""

    keypoints: np.ndarray
    bbox: list[float]
    area: float
    head_box: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))
    joints: np.ndarray = field(default_factory=lambda: np.zeros((17, 2)))


# ----------------------------------------------------------------------------- poses
def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def _pose(rng: np.random.Generator, pelvis: np.ndarray, h: float) -> dict[str, np.ndarray]:
    """Joint positions (image pixels) of a person ``h`` pixels tall facing the camera.

    The person's left side is on the image's right (+x), up is -y.
    """
    lean = rng.normal(0.0, 0.12)
    up = np.array([np.sin(lean), -np.cos(lean)])
    right = np.array([np.cos(lean), np.sin(lean)])  # towards the person's left
    p = np.zeros((17, 2))
    p[L_HIP], p[R_HIP] = pelvis + right * 0.09 * h, pelvis - right * 0.09 * h
    neck = pelvis + up * 0.30 * h
    p[L_SHO], p[R_SHO] = neck + right * 0.12 * h, neck - right * 0.12 * h
    tilt = rng.normal(0.0, 0.15)
    hu = up * np.cos(tilt) + right * np.sin(tilt)
    hr = right * np.cos(tilt) - up * np.sin(tilt)
    head = neck + up * 0.05 * h + hu * 0.09 * h
    turn = rng.uniform(-0.6, 0.6)
    p[NOSE] = head - hu * 0.012 * h + hr * turn * 0.03 * h
    p[L_EYE] = head + hu * 0.018 * h + hr * (0.026 + turn * 0.02) * h
    p[R_EYE] = head + hu * 0.018 * h - hr * (0.026 - turn * 0.02) * h
    p[L_EAR] = head + hr * (0.062 - max(turn, 0) * 0.02) * h
    p[R_EAR] = head - hr * (0.062 + min(turn, 0) * 0.02) * h
    for side, (sho, elb, wri, hip, kne, ank) in ((1, (L_SHO, L_ELB, L_WRI, L_HIP, L_KNE, L_ANK)),
                                                  (-1, (R_SHO, R_ELB, R_WRI, R_HIP, R_KNE,
                                                        R_ANK))):
        out = right * side
        a = np.radians(rng.uniform(-15, 165))
        d = -up * np.cos(a) + out * np.sin(a)
        p[elb] = p[sho] + d * 0.16 * h
        b = np.radians(rng.uniform(-40, 130)) * rng.choice((-1, 1))
        d2 = d * np.cos(b) + np.array([-d[1], d[0]]) * np.sin(b)
        p[wri] = p[elb] + d2 * 0.14 * h
        a = np.radians(rng.uniform(-12, 40))
        d = -up * np.cos(a) + out * np.sin(a)
        p[kne] = p[hip] + d * 0.24 * h
        b = np.radians(rng.uniform(0, 60)) * rng.choice((-1, 1))
        d2 = d * np.cos(b) + np.array([-d[1], d[0]]) * np.sin(b)
        p[ank] = p[kne] + d2 * 0.23 * h
    return {"joints": p, "head": head, "head_r": 0.075 * h, "up": up}


def _primitives(pose: dict, h: float, rng: np.random.Generator) -> list[tuple]:
    """Drawing commands, back to front: legs, torso, arms, head."""
    p = pose["joints"]
    limb = max(2, int(round(0.07 * h)))
    arm = max(2, int(round(0.055 * h)))
    dot = max(1, int(round(0.022 * h)))
    shirt = tuple(int(c) for c in rng.integers(60, 256, 3))
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    prims: list[tuple] = []
    for hip, kne, ank in ((L_HIP, L_KNE, L_ANK), (R_HIP, R_KNE, R_ANK)):
        prims += [("line", p[hip], p[kne], limb, THIGH), ("line", p[kne], p[ank], limb, SHIN),
                  ("circle", p[ank], int(limb * 0.7), FOOT)]
    prims.append(("poly", p[[L_SHO, R_SHO, R_HIP, L_HIP]], shirt))
    for sho, elb, wri in ((L_SHO, L_ELB, L_WRI), (R_SHO, R_ELB, R_WRI)):
        prims += [("line", p[sho], p[elb], arm, UPPER_ARM), ("line", p[elb], p[wri], arm, FOREARM),
                  ("circle", p[wri], int(arm * 0.8), HAND)]
    prims += [("circle", p[L_EAR], dot + 1, EAR), ("circle", p[R_EAR], dot + 1, EAR),
              ("circle", pose["head"], int(pose["head_r"]), skin),
              ("circle", p[L_EYE], dot, EYE), ("circle", p[R_EYE], dot, EYE),
              ("circle", p[NOSE], dot, NOSE_COLOR)]
    return prims


def _render(canvas: np.ndarray, prims: list[tuple], value=None) -> None:
    """Draw ``prims`` in their colours, or all in ``value`` (for masks, without smoothing)."""
    aa = cv2.LINE_AA if value is None else cv2.LINE_8
    for prim in prims:
        color = prim[-1] if value is None else value
        if prim[0] == "line":
            a, b = (tuple(int(round(v)) for v in pt) for pt in prim[1:3])
            cv2.line(canvas, a, b, color, prim[3], aa)
        elif prim[0] == "circle":
            cv2.circle(canvas, tuple(int(round(v)) for v in prim[1]), prim[2], color, -1, aa)
        else:
            cv2.fillConvexPoly(canvas, np.round(prim[1]).astype(np.int32), color, aa)


def _draw_person(image: np.ndarray | None, owner: np.ndarray, prims: list[tuple],
                 owner_id: int) -> np.ndarray:
    """Draw a person's ``prims`` on ``image`` (when given) and give its pixels to
    ``owner_id`` in ``owner`` (over the people drawn before); returns the person's own mask."""
    if image is not None:
        _render(image, prims)
    mask = np.zeros(owner.shape, dtype=np.uint8)
    _render(mask, prims, 1)
    owner[mask > 0] = owner_id
    return mask


def joint_visibility(joints: np.ndarray, owner: np.ndarray, owner_id: int) -> np.ndarray:
    """COCO visibility of each joint ``(K, 2)`` of person ``owner_id``: 2 where its pixel is
    the person's own in ``owner`` (seen), 1 where it is someone else's or an occluder's
    (hidden), 0 outside the image."""
    h, w = owner.shape
    inside = (joints[:, 0] >= 0) & (joints[:, 0] <= w - 1) & (joints[:, 1] >= 0) & \
        (joints[:, 1] <= h - 1)
    xy = np.round(np.clip(joints[:, :2], 0, [w - 1, h - 1])).astype(np.int64)
    on_top = inside & (owner[xy[:, 1], xy[:, 0]] == owner_id)
    return np.where(inside, np.where(on_top, 2, 1), 0)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A calm scene: a vertical colour gradient and a few muted shapes."""
    top, bottom = rng.integers(70, 200, 3), rng.integers(50, 180, 3)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    image = np.repeat((top * (1 - t) + bottom * t).astype(np.uint8), w, axis=1)
    for _ in range(rng.integers(2, 7)):
        grey = int(rng.integers(40, 220))
        color = tuple(int(np.clip(grey + v, 0, 255)) for v in rng.integers(-25, 26, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        sx, sy = int(rng.integers(w // 16, w // 3)), int(rng.integers(h // 16, h // 3))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + sx, y + sy), color, -1)
        else:
            cv2.ellipse(image, (x, y), (sx // 2, sy // 2), float(rng.uniform(0, 180)), 0, 360,
                        color, -1, cv2.LINE_AA)
    return image


def draw_scene(rng: np.random.Generator, cfg: SynthConfig) -> tuple[np.ndarray, list[Person]]:
    """One BGR image and its annotated people (those with at least one labelled joint)."""
    w, h = cfg.width, cfg.height
    image = _background(rng, w, h)
    owner = np.zeros((h, w), dtype=np.uint8)  # 1 + index of the person on top, 0 = none
    poses, masks = [], []
    heights = np.sort(rng.uniform(cfg.min_height, cfg.max_height,
                                  rng.integers(1, cfg.max_people + 1)) * h)
    for i, ph in enumerate(heights):  # small (far) people first, so that near ones cover them
        pelvis = np.array([rng.uniform(0.05, 0.95) * w, rng.uniform(0.25, 0.95) * h])
        pose = _pose(rng, pelvis, ph)
        poses.append(pose)
        masks.append(_draw_person(image, owner, _primitives(pose, ph, rng), i + 1))
    if rng.random() < cfg.occluder_prob:
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        sx, sy = int(rng.integers(w // 10, w // 4)), int(rng.integers(h // 6, h // 2))
        if rng.random() < cfg.pole_share:
            y, sx, sy = 0, max(int(rng.integers(w // 16, w // 6)), 1), h
        color = tuple(int(c) for c in rng.integers(30, 120, 3))
        cv2.rectangle(image, (x, y), (x + sx, y + sy), color, -1)
        cv2.rectangle(owner, (x, y), (x + sx, y + sy), OCCLUDER_OWNER, -1)
    if cfg.noise > 0:
        noisy = image + rng.normal(0.0, cfg.noise, image.shape).astype(np.float32)
        image = np.clip(noisy, 0, 255).astype(np.uint8)

    people = []
    for i, (pose, mask) in enumerate(zip(poses, masks)):
        joints = np.round(pose["joints"], 2)
        vis = joint_visibility(joints, owner, i + 1)
        if not vis.any():
            continue
        kpts = np.zeros((17, 3))
        kpts[:, :2] = np.where(vis[:, None] > 0, joints, 0.0)
        kpts[:, 2] = vis
        x0, y0, bw, bh = cv2.boundingRect(mask)
        r = pose["head_r"]
        head_box = np.array([pose["head"] - r, pose["head"] + r])
        people.append(Person(kpts, [float(x0), float(y0), float(bw), float(bh)],
                             round(AREA_PER_BOX * bw * bh, 2), head_box, joints))
    return image, people


# ----------------------------------------------------------------------------- COCO
def _detections(rng: np.random.Generator, image_id: int, people: list[Person], w: int,
                h: int) -> list[dict]:
    """A plausible person detector's output: jittered boxes with high scores, a few misses,
    duplicates and low-scoring false positives (COCO results format)."""
    dets = []

    def add(box, score):
        x, y, bw, bh = box
        x, y = max(0.0, x), max(0.0, y)
        bw, bh = min(bw, w - x), min(bh, h - y)
        if bw > 1 and bh > 1:
            dets.append({"image_id": image_id, "category_id": 1,
                         "bbox": [round(float(v), 2) for v in (x, y, bw, bh)],
                         "score": round(float(score), 4)})

    for person in people:
        if rng.random() < 0.05:  # missed
            continue
        x, y, bw, bh = person.bbox
        jitter = rng.normal(0.0, 0.05, 4)
        box = (x + jitter[0] * bw, y + jitter[1] * bh, bw * np.exp(jitter[2]),
               bh * np.exp(jitter[3]))
        add(box, np.clip(rng.normal(0.9, 0.06), 0.3, 0.999))
        if rng.random() < 0.1:  # a duplicate
            add((box[0] + 0.1 * bw, box[1], box[2] * 0.8, box[3]), rng.uniform(0.1, 0.5))
    for _ in range(rng.poisson(0.6)):  # false positives
        bw, bh = rng.uniform(0.05, 0.3) * w, rng.uniform(0.1, 0.6) * h
        add((rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh), rng.uniform(0.02, 0.45))
    return dets


def _coco_split(root: str, image_set: str, num_images: int, first_id: int,
                rng: np.random.Generator, cfg: SynthConfig) -> tuple[str, str, str]:
    image_dir = os.path.join(root, "images", image_set)
    os.makedirs(image_dir, exist_ok=True)
    images, annotations, detections = [], [], []
    for i in range(num_images):
        image_id = first_id + 3 * i  # ids with gaps, file names unrelated to them
        file_name = f"{image_set}_scene_{i:05d}.jpg"
        image, people = draw_scene(rng, cfg)
        cv2.imwrite(os.path.join(image_dir, file_name), image,
                    [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        images.append({"id": image_id, "file_name": file_name, "width": cfg.width,
                       "height": cfg.height})
        for person in people:
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "bbox": person.bbox, "area": person.area, "iscrowd": 0,
                "num_keypoints": int((person.keypoints[:, 2] > 0).sum()),
                "keypoints": [round(float(v), 2) for v in person.keypoints.ravel()],
                "segmentation": [],
            })
        detections += _detections(rng, image_id, people, cfg.width, cfg.height)
    category = {"id": 1, "name": "person", "supercategory": "person",
                "keypoints": list(COCO.names), "skeleton": [list(s) for s in COCO.skeleton]}
    ann_dir = os.path.join(root, "annotations")
    det_dir = os.path.join(root, "person_detection_results")
    os.makedirs(ann_dir, exist_ok=True)
    os.makedirs(det_dir, exist_ok=True)
    ann_file = os.path.join(ann_dir, f"person_keypoints_{image_set}.json")
    with open(ann_file, "w") as f:
        json.dump({"info": {"description": "humanpose synthetic people"}, "images": images,
                   "annotations": annotations, "categories": [category]}, f)
    det_file = os.path.join(det_dir, f"COCO_{image_set}_detections_synthetic.json")
    with open(det_file, "w") as f:
        json.dump(detections, f)
    return ann_file, image_dir, det_file


def write_coco_set(root: str, num_train: int = 64, num_val: int = 16, seed: int = 0,
                   cfg: SynthConfig | None = None) -> dict[str, str]:
    """Write ``train2017`` and ``val2017`` in COCO's layout under ``root``::

        annotations/person_keypoints_{train2017,val2017}.json
        images/{train2017,val2017}/<set>_scene_NNNNN.jpg
        person_detection_results/COCO_{set}_detections_synthetic.json

    Returns the paths written, by name.
    """
    cfg = cfg or SynthConfig()
    rng = np.random.default_rng(seed)
    out = {}
    for image_set, n, first_id in (("train2017", num_train, 1000), ("val2017", num_val, 500000)):
        ann, images, dets = _coco_split(root, image_set, n, first_id, rng, cfg)
        out.update({f"{image_set}_annotations": ann, f"{image_set}_images": images,
                    f"{image_set}_detections": dets})
    return out


def write_coco_split(root: str, image_set: str, num_images: int, seed: int = 0,
                     cfg: SynthConfig | None = None, first_id: int = 2_000_000) -> dict[str, str]:
    """Write one more split, ``image_set``, into a COCO-format root (files named as in
    :func:`write_coco_set`), drawn from its own ``seed``: e.g. a bigger training set for a
    detector beside the pose model's ``train2017``, validated on the same ``val2017``.
    Returns the paths written, by name."""
    ann, images, dets = _coco_split(root, image_set, num_images, first_id,
                                    np.random.default_rng(seed), cfg or SynthConfig())
    return {f"{image_set}_annotations": ann, f"{image_set}_images": images,
            f"{image_set}_detections": dets}


# ----------------------------------------------------------------------------- MPII
def _mpii_joints(person: Person) -> np.ndarray:
    """MPII's 16 joints (0-based pixels) from a drawn person's full skeleton."""
    p = person.joints
    pelvis = (p[L_HIP] + p[R_HIP]) / 2
    thorax = (p[L_SHO] + p[R_SHO]) / 2
    head_center = person.head_box.mean(axis=0)
    head_r = (person.head_box[1, 0] - person.head_box[0, 0]) / 2
    up = (thorax - pelvis) / max(np.linalg.norm(thorax - pelvis), 1e-6)
    upper_neck = thorax + 0.35 * (head_center - thorax)
    head_top = head_center + up * head_r
    return np.stack([p[R_ANK], p[R_KNE], p[R_HIP], p[L_HIP], p[L_KNE], p[L_ANK], pelvis, thorax,
                     upper_neck, head_top, p[R_WRI], p[R_ELB], p[R_SHO], p[L_SHO], p[L_ELB],
                     p[L_WRI]])


def write_mpii_set(root: str, num_train: int = 64, num_val: int = 16, seed: int = 0,
                   cfg: SynthConfig | None = None) -> dict[str, str]:
    """Write MPII in the HRNet json layout under ``root``::

        annot/{train,valid}.json   one entry per person (1-based MATLAB pixels)
        annot/gt_valid.mat         the PCKh ground truth of the valid set
        images/<set>_NNNNN.jpg
    """
    from humanpose.evaluation.mpii import write_gt_valid

    cfg = cfg or SynthConfig()
    rng = np.random.default_rng(seed)
    image_dir = os.path.join(root, "images")
    ann_dir = os.path.join(root, "annot")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    out = {"images": image_dir}
    for image_set, n in (("train", num_train), ("valid", num_val)):
        entries, gt_joints, gt_missing, gt_heads = [], [], [], []
        for i in range(n):
            name = f"{image_set}_{i:05d}.jpg"
            image, people = draw_scene(rng, cfg)
            cv2.imwrite(os.path.join(image_dir, name), image,
                        [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            for person in people:
                joints = _mpii_joints(person)
                inside = (joints[:, 0] >= 0) & (joints[:, 0] < cfg.width) & \
                    (joints[:, 1] >= 0) & (joints[:, 1] < cfg.height)
                lo, hi = joints[inside].min(axis=0), joints[inside].max(axis=0)
                scale = max(hi[1] - lo[1], (hi[0] - lo[0]) * 0.75, 20.0) / 200.0
                center = (lo + hi) / 2 - np.array([0.0, 15 * scale])  # undone by the loader
                joints_1 = np.where(inside[:, None], joints + 1, -1.0)
                entries.append({"image": name, "center": [round(float(v), 2) for v in center + 1],
                                "scale": round(float(scale), 4),
                                "joints": np.round(joints_1, 2).tolist(),
                                "joints_vis": inside.astype(int).tolist()})
                gt_joints.append(joints_1)
                gt_missing.append(~inside)
                gt_heads.append(person.head_box + 1)
        path = os.path.join(ann_dir, f"{image_set}.json")
        with open(path, "w") as f:
            json.dump(entries, f)
        out[image_set] = path
        if image_set == "valid":
            gt = os.path.join(ann_dir, "gt_valid.mat")
            write_gt_valid(gt, np.array(gt_joints).reshape(-1, 16, 2),
                           np.array(gt_missing).reshape(-1, 16),
                           np.array(gt_heads).reshape(-1, 2, 2))
            out["gt_valid"] = gt
    return out
