"""Helpers for the data tests: small synthetic sets, configs, and the seed's formulas.

The ``seed_*`` functions restate, from the seed's ``JointsDataset``/``coco.py``/
``transforms.py``, what a sample must be, written here independently of humanpose's code so
that the tests compare the pipeline against the seed's definitions, not against itself.
"""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch

from humanpose.config import get_cfg
from humanpose.data.synthetic import SynthConfig, write_coco_set

SMALL = SynthConfig(width=160, height=120, max_people=3)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
COCO_FLIP_PAIRS = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]]


def write_small_coco(root, num_train: int = 8, num_val: int = 4, seed: int = 1) -> dict:
    return write_coco_set(str(root), num_train, num_val, seed=seed, cfg=SMALL)


def data_cfg(root, *opts, freeze: bool = True):
    """A COCO config for the small synthetic set: 48x64 crops, 12x16 heatmaps."""
    base = ["DATASET.DATASET", "coco", "DATASET.ROOT", str(root),
            "DATASET.TRAIN_SET", "train2017", "DATASET.TEST_SET", "val2017",
            "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]", "WORKERS", "0",
            "TEST.USE_GT_BBOX", "True"]
    return get_cfg(None, base + [str(o) for o in opts], freeze=freeze)


# ----------------------------------------------------------------------------- the seed
def seed_clean_box(bbox, width, height):
    x, y, w, h = bbox
    x1, y1 = np.max((0, x)), np.max((0, y))
    x2 = np.min((width - 1, x1 + np.max((0, w - 1))))
    y2 = np.min((height - 1, y1 + np.max((0, h - 1))))
    return [x1, y1, x2 - x1, y2 - y1] if x2 >= x1 and y2 >= y1 else None


def seed_box_to_cs(box, aspect_ratio):
    x, y, w, h = box
    center = np.zeros(2, dtype=np.float32)
    center[0], center[1] = x + w * 0.5, y + h * 0.5
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / 200, h * 1.0 / 200], dtype=np.float32)
    if center[0] != -1:
        scale = scale * 1.25
    return center, scale


def seed_affine(center, scale, rot, output_size, inv=False):
    """The three-point construction of the seed's get_affine_transform, in its dtypes."""
    scale_px = scale * 200.0
    src_w, dst_w, dst_h = scale_px[0], output_size[0], output_size[1]
    rad = np.pi * rot / 180
    sn, cs = np.sin(rad), np.cos(rad)
    src_dir = [0 * cs - src_w * -0.5 * sn, 0 * sn + src_w * -0.5 * cs]
    dst_dir = np.array([0, dst_w * -0.5], np.float32)
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array(src_dir)
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    for m in (src, dst):
        d = m[0] - m[1]
        m[2] = m[1] + np.array([-d[1], d[0]], dtype=np.float32)
    return cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)


def seed_target(joints, joints_vis, image_size, heatmap_size, sigma):
    """Gaussian heatmaps and weights, joint by joint, as the seed's generate_target."""
    image_size, heatmap_size = np.array(image_size), np.array(heatmap_size)
    k = len(joints)
    weight = np.ones((k, 1), dtype=np.float32)
    weight[:, 0] = joints_vis[:, 0]
    target = np.zeros((k, heatmap_size[1], heatmap_size[0]), dtype=np.float32)
    tmp = sigma * 3
    stride = image_size / heatmap_size
    for j in range(k):
        mu_x = int(joints[j][0] / stride[0] + 0.5)
        mu_y = int(joints[j][1] / stride[1] + 0.5)
        ul = [int(mu_x - tmp), int(mu_y - tmp)]
        br = [int(mu_x + tmp + 1), int(mu_y + tmp + 1)]
        if ul[0] >= heatmap_size[0] or ul[1] >= heatmap_size[1] or br[0] < 0 or br[1] < 0:
            weight[j] = 0
            continue
        size = 2 * tmp + 1
        x = np.arange(0, size, 1, np.float32)
        y = x[:, None]
        g = np.exp(-((x - size // 2) ** 2 + (y - size // 2) ** 2) / (2 * sigma ** 2))
        gx = max(0, -ul[0]), min(br[0], heatmap_size[0]) - ul[0]
        gy = max(0, -ul[1]), min(br[1], heatmap_size[1]) - ul[1]
        ix = max(0, ul[0]), min(br[0], heatmap_size[0])
        iy = max(0, ul[1]), min(br[1], heatmap_size[1])
        if weight[j] > 0.5:
            target[j][iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
    return target, weight


def seed_half_body(joints, joints_vis, upper_ids, aspect_ratio):
    upper, lower = [], []
    for j in range(len(joints)):
        if joints_vis[j][0] > 0:
            (upper if j in upper_ids else lower).append(joints[j])
    if np.random.randn() < 0.5 and len(upper) > 2:
        chosen = upper
    else:
        chosen = lower if len(lower) > 2 else upper
    if len(chosen) < 2:
        return None, None
    chosen = np.array(chosen, dtype=np.float32)
    center = chosen.mean(axis=0)[:2]
    lt, rb = np.amin(chosen, axis=0), np.amax(chosen, axis=0)
    w, h = rb[0] - lt[0], rb[1] - lt[1]
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, np.array([w / 200.0, h / 200.0], dtype=np.float32) * 1.5


def seed_sample(image_path, center, scale, joints, joints_vis, *, is_train, image_size,
                heatmap_size, sigma=2, flip_pairs=COCO_FLIP_PAIRS, upper_ids=range(11),
                scale_factor=0.25, rot_factor=30, flip=True, prob_half_body=0.0,
                num_joints_half_body=8, color_rgb=False, joints_weight=None, seed=None):
    """(normalised image (3, H, W), target, weight, joints, center, scale, rotation) of one
    sample, following the seed's __getitem__ step by step with ``seed`` fixing the draws."""
    if seed is not None:
        np.random.seed(seed)
        random.seed(seed)
    img = cv2.imread(str(image_path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if color_rgb:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    c, s = center.copy(), scale.copy()
    joints, joints_vis = joints.copy(), joints_vis.copy()
    r = 0
    if is_train:
        aspect = image_size[0] * 1.0 / image_size[1]
        if np.sum(joints_vis[:, 0]) > num_joints_half_body and \
                np.random.rand() < prob_half_body:
            hc, hs = seed_half_body(joints, joints_vis, list(upper_ids), aspect)
            if hc is not None:
                c, s = hc, hs
        s = s * np.clip(np.random.randn() * scale_factor + 1, 1 - scale_factor,
                        1 + scale_factor)
        r = np.clip(np.random.randn() * rot_factor, -rot_factor * 2, rot_factor * 2) \
            if random.random() <= 0.6 else 0
        if flip and random.random() <= 0.5:
            img = img[:, ::-1, :]
            width = img.shape[1]
            joints[:, 0] = width - joints[:, 0] - 1
            for a, b in flip_pairs:
                joints[[a, b]] = joints[[b, a]]
                joints_vis[[a, b]] = joints_vis[[b, a]]
            joints = joints * joints_vis
            c[0] = width - c[0] - 1
    trans = seed_affine(c, s, r, image_size)
    crop = cv2.warpAffine(np.ascontiguousarray(img), trans,
                          (int(image_size[0]), int(image_size[1])), flags=cv2.INTER_LINEAR)
    image = torch.from_numpy(crop.transpose(2, 0, 1).copy()).float().div(255)
    image = (image - torch.from_numpy(MEAN)[:, None, None]) / torch.from_numpy(STD)[:, None, None]
    for j in range(len(joints)):
        if joints_vis[j, 0] > 0:
            joints[j, :2] = np.dot(trans, np.array([joints[j, 0], joints[j, 1], 1.0]))[:2]
    target, weight = seed_target(joints, joints_vis, image_size, heatmap_size, sigma)
    if joints_weight is not None:
        weight = np.multiply(weight, joints_weight)
    return image, target, weight, joints, c, s, r


def grey_levels(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference of two normalised images in grey levels (0..255)."""
    std = torch.from_numpy(STD).view(3, 1, 1)
    return float(((a - b).abs() * std * 255).max())
