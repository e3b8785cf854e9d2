"""Crop geometry and targets of the pipeline: box → centre/scale, the affine round trip,
flip pairs and flipped targets, half-body crops, targets at the heatmap borders, UDP."""

import random

import cv2
import numpy as np
import pytest

from humanpose.data import Records, SampleOptions, TopDownDataset, build_dataset
from humanpose.data.geometry import box_to_center_scale, get_affine_transform
from humanpose.data.keypoints import COCO, MPII, flip_pairs_from_names

from .test_data_common import (
    COCO_FLIP_PAIRS,
    data_cfg,
    seed_affine,
    seed_box_to_cs,
    seed_half_body,
    seed_target,
    write_small_coco,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_targets")
    write_small_coco(root, num_train=8, num_val=4, seed=11)
    return root


def test_box_to_center_scale_matches_the_seed():
    rng = np.random.default_rng(0)
    for _ in range(200):
        box = rng.uniform([0, 0, 1, 1], [600, 400, 300, 300]).tolist()
        aspect = float(rng.choice([0.75, 1.0, 192 / 256, 288 / 384]))
        center, scale = box_to_center_scale(box, aspect)
        exp_c, exp_s = seed_box_to_cs(box, aspect)
        np.testing.assert_array_equal(center, exp_c)
        np.testing.assert_array_equal(scale, exp_s)
    center, scale = box_to_center_scale([10, 20, 30, 80], 0.75)  # taller than 3:4 → widen
    np.testing.assert_allclose(center, [25, 60])
    np.testing.assert_allclose(scale, [80 * 0.75 / 200 * 1.25, 80 / 200 * 1.25], rtol=1e-6)


def test_affine_round_trip_through_the_pipeline(root):
    """Joints mapped into the crop (meta) and back with the inverse transform land on the
    annotated image positions."""
    ds = build_dataset(data_cfg(root), is_train=False)
    for i in range(len(ds)):
        _, _, _, meta = ds[i]
        vis = meta["joints_vis"][:, 0] > 0
        inv = get_affine_transform(meta["center"], meta["scale"], 0, (48, 64), inv=True)
        back = meta["joints"][vis, :2] @ inv[:, :2].T + inv[:, 2]
        np.testing.assert_allclose(back, ds.records.joints[i, vis, :2], atol=1e-3)
        fwd = seed_affine(meta["center"], meta["scale"], 0, (48, 64))
        np.testing.assert_allclose(fwd @ np.append(back[0], 1.0), meta["joints"][vis][0, :2],
                                   atol=1e-3)


def test_flip_pairs_from_names_are_the_seeds():
    assert [list(p) for p in flip_pairs_from_names(COCO.names)] == COCO_FLIP_PAIRS
    assert [list(p) for p in COCO.flip_pairs] == COCO_FLIP_PAIRS
    assert [list(p) for p in MPII.flip_pairs] == [[0, 5], [1, 4], [2, 3], [10, 15], [11, 14],
                                                  [12, 13]]


def _draw(ds, i, seed):
    np.random.seed(seed)
    random.seed(seed)
    return ds[i]


def test_flipped_samples_mirror_joints_and_swap_pairs(root):
    """With no scale/rotation jitter, a flipped sample's joint k sits where the unflipped
    sample's partner of k sits, mirrored about the crop's centre line, and its target peak
    moves with it."""
    cfg = data_cfg(root, "DATASET.SCALE_FACTOR", "0.0", "DATASET.ROT_FACTOR", "0")
    ds = build_dataset(cfg, is_train=True)
    partner = list(range(17))
    for a, b in COCO_FLIP_PAIRS:
        partner[a], partner[b] = b, a
    checked = 0
    for i in range(len(ds)):
        draws = {bool(_draw(ds, i, s)[3]["flipped"]): s for s in range(12)}
        if len(draws) < 2:
            continue
        _, t0, w0, m0 = _draw(ds, i, draws[False])
        _, t1, w1, m1 = _draw(ds, i, draws[True])
        for k in range(17):
            p = partner[k]
            assert w1[k] == w0[p]
            if m0["joints_vis"][p, 0] == 0:
                continue
            assert m1["joints"][k, 0] == pytest.approx(48 - m0["joints"][p, 0], abs=1e-3)
            assert m1["joints"][k, 1] == pytest.approx(m0["joints"][p, 1], abs=1e-3)
            if w0[p] > 0 and t0[p].max() == 1.0 and t1[k].max() == 1.0:
                y0, x0 = np.unravel_index(int(t0[p].argmax()), (16, 12))
                y1, x1 = np.unravel_index(int(t1[k].argmax()), (16, 12))
                assert y1 == y0 and abs(x1 - (12 - x0)) <= 1
                checked += 1
    assert checked > 10


def _single(image_path, joints, joints_vis, center, scale, **opts):
    records = Records.from_rows([str(image_path)], [1], [center], [scale],
                                np.asarray(joints, float)[None],
                                np.asarray(joints_vis, float)[None], [1.0], [(160, 120)])
    options = SampleOptions(image_size=(48, 64), heatmap_size=(12, 16), sigma=2, **opts)
    return records, options


def test_half_body_crop_follows_the_seed(root):
    ds = build_dataset(data_cfg(root, "DATASET.PROB_HALF_BODY", "1.0",
                                "DATASET.NUM_JOINTS_HALF_BODY", "3"), is_train=True)
    used = 0
    for i in range(len(ds)):
        vis = ds.records.joints_vis[i]
        if vis[:, 0].sum() <= 3:
            continue
        np.random.seed(i)
        random.seed(i)
        _, _, _, meta = ds[i]
        np.random.seed(i)
        np.random.rand()  # the seed draws the half-body probability first
        center, scale = seed_half_body(ds.records.joints[i], vis, range(11), 0.75)
        if center is None:
            continue
        factor = np.clip(np.random.randn() * 0.25 + 1, 0.75, 1.25)
        if meta["flipped"]:
            center[0] = 160 - center[0] - 1
        np.testing.assert_array_equal(meta["center"], center)
        np.testing.assert_array_equal(meta["scale"], scale * factor)
        used += 1
    assert used > 5


def test_targets_at_the_heatmap_borders(root, tmp_path):
    """Joints near and beyond the crop's edges: truncated Gaussians where any part lies in
    the heatmap, weight 0 (and no Gaussian) where none does, as the seed's generate_target."""
    image = tmp_path / "plain.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 128, np.uint8))
    center, scale = np.array([80.0, 60.0], np.float32), np.array([0.48, 0.64], np.float32)
    # crop = 96 x 128 image pixels → 48 x 64 input (2 px per input px, 8 per heatmap px)
    xs = [-100, 80 - 48 - 10, 80 - 48 + 1, 80, 80 + 47, 80 + 48 + 20, 80 + 48 + 60]
    ys = [60, 60 - 64 - 30, 60, 60 + 63, 60 + 64 + 30, 60, 60]
    joints = np.zeros((17, 3))
    joints[:7, 0], joints[:7, 1] = xs, ys
    joints[7:, :2] = [80, 60]
    vis = np.ones((17, 3))
    vis[:, 2] = 0
    vis[8] = 0  # invisible: weight 0 even inside
    records, options = _single(image, joints, vis, center, scale)
    ds = TopDownDataset(records, COCO, options, is_train=False)
    _, target, weight, meta = ds[0]
    trans = seed_affine(center, scale, 0, (48, 64))
    crop_joints = joints.copy()
    crop_joints[:, :2] = joints[:, :2] @ trans[:, :2].T + trans[:, 2]
    exp_t, exp_w = seed_target(crop_joints, vis, (48, 64), (12, 16), 2)
    np.testing.assert_array_equal(target.numpy(), exp_t)
    np.testing.assert_array_equal(weight.numpy(), exp_w)
    assert weight[0] == 0 and weight[6] == 0 and weight[8] == 0  # far outside; invisible
    assert weight[1] == 1 and 0 < target[1].max() < 1  # partly inside: truncated
    assert target[7].max() == 1.0 and target[8].max() == 0.0


def test_udp_targets_peak_at_the_exact_position(root, tmp_path):
    image = tmp_path / "plain.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 128, np.uint8))
    center, scale = np.array([80.0, 60.0], np.float32), np.array([0.48, 0.64], np.float32)
    joints = np.zeros((17, 3))
    joints[:, :2] = [80, 60]
    records, options = _single(image, joints, np.ones((17, 3)), center, scale, udp=True)
    _, target, weight, meta = TopDownDataset(records, COCO, options, is_train=False)[0]
    # UDP maps the crop's centre to the centre of the (size - 1) pixel grid
    np.testing.assert_allclose(meta["joints"][0, :2], [47 / 2, 63 / 2], atol=1e-4)
    hm = target[0].numpy()
    y, x = np.unravel_index(hm.argmax(), hm.shape)
    assert (x, y) in {(5, 7), (6, 7), (5, 8), (6, 8)}
    assert hm[7, 5] == pytest.approx(hm[8, 6], abs=1e-6)  # symmetric about (5.5, 7.5)
