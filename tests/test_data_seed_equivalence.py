"""With the same random draws, samples equal the seed's: same targets and weights, joints to
float precision, crops within one grey level (values from the seed's formulas)."""

import json
import random

import numpy as np
import pytest
import torch

from humanpose.data import build_dataset, normalize_batch

from .test_data_common import (
    data_cfg,
    grey_levels,
    seed_box_to_cs,
    seed_clean_box,
    seed_sample,
    write_small_coco,
)

COCO_JOINTS_WEIGHT = np.array([1.0, 1, 1, 1, 1, 1, 1, 1.2, 1.2, 1.5, 1.5, 1, 1, 1.2, 1.2, 1.5, 1.5],
                              dtype=np.float32).reshape(17, 1)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_equiv")
    write_small_coco(root, num_train=10, num_val=4, seed=3)
    return root


def seed_records(root, image_set, aspect_ratio):
    """(image path, centre, scale, joints, joints_vis) per person, from the json alone."""
    data = json.loads((root / "annotations" / f"person_keypoints_{image_set}.json").read_text())
    images = {im["id"]: im for im in data["images"]}
    by_image = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out = []
    for image_id, im in images.items():
        for ann in by_image.get(image_id, []):
            box = seed_clean_box(ann["bbox"], im["width"], im["height"])
            if ann["iscrowd"] or ann["area"] <= 0 or box is None or max(ann["keypoints"]) == 0:
                continue
            kpts = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            joints = np.zeros((17, 3))
            joints[:, :2] = kpts[:, :2]
            vis = np.minimum(kpts[:, 2], 1)
            joints_vis = np.stack([vis, vis, np.zeros(17)], axis=1)
            center, scale = seed_box_to_cs(box, aspect_ratio)
            out.append((root / "images" / image_set / im["file_name"], center, scale, joints,
                        joints_vis))
    return out


SETTINGS = [  # (overrides, seed_sample keywords)
    ([], {}),
    (["DATASET.COLOR_RGB", "True", "DATASET.PROB_HALF_BODY", "1.0",
      "DATASET.NUM_JOINTS_HALF_BODY", "3", "DATASET.SCALE_FACTOR", "0.35",
      "DATASET.ROT_FACTOR", "45"],
     {"color_rgb": True, "prob_half_body": 1.0, "num_joints_half_body": 3,
      "scale_factor": 0.35, "rot_factor": 45}),
    (["LOSS.USE_DIFFERENT_JOINTS_WEIGHT", "True", "DATASET.PROB_HALF_BODY", "0.3"],
     {"joints_weight": COCO_JOINTS_WEIGHT, "prob_half_body": 0.3}),
]


@pytest.mark.parametrize("overrides, kwargs", SETTINGS)
def test_train_samples_equal_the_seed_under_the_same_draws(root, overrides, kwargs):
    ds = build_dataset(data_cfg(root, *overrides), is_train=True)
    records = seed_records(root, "train2017", 48 / 64)
    assert len(ds) == len(records) > 10
    flipped = 0
    for i in range(len(ds)):
        path, center, scale, joints, vis = records[i]
        np.random.seed(100 + i)
        random.seed(100 + i)
        image, target, weight, meta = ds[i]
        exp = seed_sample(path, center, scale, joints, vis, is_train=True, image_size=(48, 64),
                          heatmap_size=(12, 16), seed=100 + i, **kwargs)
        exp_image, exp_target, exp_weight, exp_joints, exp_c, exp_s, exp_r = exp
        assert meta["image"] == str(path)
        np.testing.assert_array_equal(target.numpy(), exp_target)
        np.testing.assert_array_equal(weight.numpy(), exp_weight)
        np.testing.assert_allclose(meta["joints"], exp_joints, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(meta["center"], exp_c)
        np.testing.assert_array_equal(meta["scale"], exp_s)
        assert meta["rotation"] == float(exp_r)
        assert grey_levels(image, exp_image) <= 1.0 + 1e-3
        flipped += meta["flipped"]
    assert 0 < flipped < len(ds)  # both branches ran


def test_test_mode_is_deterministic_and_equals_the_seed(root):
    ds = build_dataset(data_cfg(root), is_train=False)
    records = seed_records(root, "val2017", 48 / 64)
    assert len(ds) == len(records)
    for i in range(len(ds)):
        image, target, weight, meta = ds[i]
        exp = seed_sample(*records[i], is_train=False, image_size=(48, 64),
                          heatmap_size=(12, 16))
        np.testing.assert_array_equal(target.numpy(), exp[1])
        np.testing.assert_array_equal(weight.numpy(), exp[2])
        assert grey_levels(image, exp[0]) <= 1.0 + 1e-3
        assert meta["rotation"] == 0.0 and not meta["flipped"] and meta["score"] == 1.0
        np.testing.assert_array_equal(meta["center"], records[i][1])
        assert meta["area"] == pytest.approx(float(np.prod(records[i][2] * 200)))


def test_fast_mode_changes_crops_only(root):
    """Fast mode: the same targets, weights and joints under the same draws; uint8 crops
    that normalize_batch turns into floats close to the exact mode's (equal up to the folded
    flip where no reduced decode happens)."""
    exact = build_dataset(data_cfg(root, "DATASET.COLOR_RGB", "True"), is_train=True)
    fast = build_dataset(data_cfg(root, "DATASET.COLOR_RGB", "True", "DATASET.FAST_MODE",
                                  "True"), is_train=True)
    shifts = np.zeros((3, 3))  # mean difference of reduced-decode crops, shifted by a pixel
    reduced = 0
    for i in range(len(exact)):
        items = []
        for ds in (exact, fast):
            np.random.seed(i)
            random.seed(i)
            items.append(ds[i])
        (a_img, a_t, a_w, a_m), (b_img, b_t, b_w, b_m) = items
        assert b_img.dtype == torch.uint8 and b_img.shape == (64, 48, 3)
        assert torch.equal(a_t, b_t) and torch.equal(a_w, b_w)
        np.testing.assert_array_equal(a_m["joints"], b_m["joints"])
        b_float = normalize_batch(b_img[None])[0]
        if a_m["scale"][0] * 200 / 48 < 1.0:  # full-resolution decode: the same crop
            assert grey_levels(b_float, a_img) <= 1.0 + 1e-3
            continue
        reduced += 1
        a, b = a_img.numpy()[:, 1:-1, 1:-1], b_float.numpy()
        for dy in range(3):
            for dx in range(3):
                shifts[dy, dx] += np.abs(a - b[:, dy:dy + 62, dx:dx + 46]).mean()
    assert 0 < reduced < len(exact)
    # smoother crops, but aligned: shifting them by a pixel only makes them differ more
    assert shifts.argmin() == 4, shifts


def test_normalize_batch_is_the_seed_transform():
    crops = torch.randint(0, 256, (2, 5, 4, 3), dtype=torch.uint8)
    out = normalize_batch(crops)
    assert out.shape == (2, 3, 5, 4) and out.dtype == torch.float32
    for n in range(2):  # ToTensor + Normalize, op by op
        x = crops[n].permute(2, 0, 1).contiguous().float().div(255)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        assert torch.equal(out[n], x.sub(mean).div(std))
    floats = torch.rand(1, 3, 4, 4)
    assert normalize_batch(floats) is floats
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        normalize_batch(torch.zeros(1, 4, 4, 4, dtype=torch.uint8))
