"""RTMPose's training recipe: AdamW groups, warm-up + cosine, EMA, the "rtmpose" augmentation
and its second stage (mmpose 1.3.2's configs; see humanpose.data.augment, engine.ema)."""

import math
import random

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import humanpose
from humanpose.codecs.simcc import SimCCCodec
from humanpose.data import Records, SampleOptions, TopDownDataset
from humanpose.data.augment import (
    RTMPoseAugment,
    half_body_box_rtmpose,
    photometric,
    photometric_distortion,
    random_box,
    truncated_normal,
    yolox_hsv,
)
from humanpose.data.keypoints import COCO
from humanpose.engine.ema import ModelEMA
from humanpose.engine.optim import build_optimizer, build_scheduler, lr_factor
from humanpose.engine.train import train

from .conftest import EXPERIMENTS
from .test_train import DEMO_CFG, assert_same_state, make_cfg, synthetic_root, weights  # noqa: F401


def cfg_with(*opts):
    return humanpose.get_cfg(EXPERIMENTS / "coco/lpn/lpn18_256x192_gd256x2_gc.yaml", list(opts))


# ----------------------------------------------------------------------------- optimizer
class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.ln = nn.LayerNorm(4)
        self.gn = nn.GroupNorm(2, 4)
        self.fc = nn.Linear(4, 2)
        self.gain = nn.Parameter(torch.ones(1))  # a ScaleNorm-like gain: not a norm class
        self.shared = self.fc  # the same parameters twice (bypass_duplicate)


def test_adamw_exempts_norms_and_biases_from_weight_decay():
    model = Small()
    opt = build_optimizer(cfg_with("TRAIN.OPTIMIZER", "adamw", "TRAIN.WD", "0.05",
                                   "TRAIN.NORM_BIAS_DECAY", "False"), model)
    assert isinstance(opt, torch.optim.AdamW)
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    all_params = [p for g in opt.param_groups for p in g["params"]]
    assert len(all_params) == len({id(p) for p in all_params}) == len(list(model.parameters()))
    assert decay_of[id(model.conv.weight)] == 0.05 and decay_of[id(model.fc.weight)] == 0.05
    assert decay_of[id(model.gain)] == 0.05  # mmpose decays ScaleNorm's g too
    for p in (model.conv.bias, model.fc.bias, model.bn.weight, model.bn.bias, model.ln.weight,
              model.ln.bias, model.gn.weight, model.gn.bias):
        assert decay_of[id(p)] == 0.0


def test_norm_bias_decay_default_keeps_one_group():
    model = Small()
    opt = build_optimizer(cfg_with("TRAIN.OPTIMIZER", "sgd", "TRAIN.WD", "0.01"), model)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.01
    assert len(opt.param_groups[0]["params"]) == len(list(model.parameters()))


# ----------------------------------------------------------------------------- schedule
def test_warmup_then_cosine_schedule_values():
    lr, steps, epochs, warm = 4e-3, 10, 20, 25
    cfg = cfg_with("TRAIN.LR", str(lr), "TRAIN.LR_SCHEDULER", "cosine", "TRAIN.WARMUP_ITERS",
                   str(warm), "TRAIN.WARMUP_START_FACTOR", "1e-5", "TRAIN.COSINE_BEGIN_EPOCH",
                   "10", "TRAIN.COSINE_MIN_LR_RATIO", "0.05", "TRAIN.OPTIMIZER", "adamw")
    opt = build_optimizer(cfg, nn.Linear(2, 2))
    sched = build_scheduler(cfg, opt, steps_per_epoch=steps, total_epochs=epochs)
    lrs = []
    for _ in range(steps * epochs + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(lr * 1e-5)  # LinearLR start
    assert lrs[10] == pytest.approx(lr * (1e-5 + (1 - 1e-5) * 10 / warm))
    assert lrs[warm] == pytest.approx(lr) and lrs[99] == pytest.approx(lr)  # flat until epoch 10
    assert lrs[100] == pytest.approx(lr)  # cosine begins
    t = (150 - 100) / 100
    assert lrs[150] == pytest.approx(0.05 * lr + 0.95 * lr * 0.5 * (1 + math.cos(math.pi * t)))
    assert lrs[200] == pytest.approx(0.05 * lr)  # eta_min at the end
    assert all(a >= b - 1e-15 for a, b in zip(lrs[100:], lrs[101:]))


def test_existing_cosine_numbers_unchanged():
    cfg = cfg_with("TRAIN.LR_SCHEDULER", "cosine", "TRAIN.WARMUP_EPOCHS", "1")
    for it in (0, 3, 10, 17, 39):
        expected = 0.5 * (1 + math.cos(math.pi * min(it / 10 / 4, 1.0))) * min(1, (it + 1) / 10)
        assert lr_factor(cfg, it, 10, 4) == expected


# ----------------------------------------------------------------------------- EMA
def test_ema_follows_the_exp_momentum_formula_and_resumes(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema = ModelEMA(model, momentum=0.0002, gamma=2000)
    expected = None
    snapshots = []
    for step in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model[1].running_mean.add_(1.0)
        ema.update(model)
        current = {k: v.clone() for k, v in model.state_dict().items()}
        if expected is None:
            expected = current
        else:
            m = (1 - 0.0002) * math.exp(-(1 + step) / 2000) + 0.0002
            expected = {k: (1 - m) * expected[k] + m * current[k]
                        if current[k].dtype.is_floating_point else current[k] for k in current}
        snapshots.append(current)
        if step == 2:  # a checkpoint mid-way, then a "resumed" EMA continues from it
            path = tmp_path / "ck.pth"
            torch.save({"state_dict": model.state_dict(), **ema.state_dict()}, path)
    assert ema.steps == 6
    for k, v in expected.items():
        assert torch.allclose(ema.module.state_dict()[k].double(), v.double(), atol=1e-6), k
    ck = torch.load(path, weights_only=True)
    resumed = ModelEMA(model, 0.0002, 2000)
    resumed.load_state_dict(ck, model)
    assert resumed.steps == 3
    for current in snapshots[3:]:
        model.load_state_dict(current)
        resumed.update(model)
    assert_same_state(resumed.module.state_dict(), ema.module.state_dict())


def test_training_with_ema_saves_the_average_and_resumes_it(synthetic_root, tmp_path,  # noqa: F811
                                                           monkeypatch):
    epochs = []
    original = TopDownDataset.set_epoch

    def record(self, epoch):
        if self.is_train:
            epochs.append(epoch)
        return original(self, epoch)

    monkeypatch.setattr(TopDownDataset, "set_epoch", record)
    opts = ("TRAIN.MAX_STEPS_PER_EPOCH", "2", "TRAIN.VAL_INTERVAL", "2", "AUTO_RESUME", "True",
            "TRAIN.EMA", "True", "TRAIN.EMA_GAMMA", "3", "TRAIN.OPTIMIZER", "adamw",
            "TRAIN.NORM_BIAS_DECAY", "False", "TRAIN.LR_SCHEDULER", "multistep",
            "TRAIN.LR_STEP", "[1]", "TRAIN.WARMUP_ITERS", "3", "DATASET.AUG_STYLE", "rtmpose",
            "DATASET.PROB_HALF_BODY", "0.3", "TRAIN.STAGE2_EPOCHS", "1", "TRAIN.END_EPOCH", "2")
    straight = train_run(synthetic_root, tmp_path / "a", *opts)
    assert epochs == [0, 1]  # the loop tells the training set each epoch (stage 2 from 1)
    # stopped after epoch 0 (stage 1 of the augmentation: no switch within END_EPOCH 1)
    make = make_cfg(synthetic_root, tmp_path / "b", *opts[:-4], "TRAIN.STAGE2_EPOCHS", "0",
                    "TRAIN.END_EPOCH", "1")
    train(make, DEMO_CFG)
    resumed = train_run(synthetic_root, tmp_path / "b", *opts)
    assert resumed.epochs_run == 1
    a = weights(straight.output_dir / "checkpoint.pth")
    b = weights(resumed.output_dir / "checkpoint.pth")
    assert a["ema_steps"] == b["ema_steps"] == 4
    assert_same_state(a["state_dict"], b["state_dict"])
    assert_same_state(a["ema_state_dict"], b["ema_state_dict"])
    # the average differs from the raw weights, and is what model_best/final_state hold
    assert any(not torch.equal(a["state_dict"][k], a["ema_state_dict"][k])
               for k in a["state_dict"] if a["state_dict"][k].dtype.is_floating_point)
    assert_same_state(weights(straight.output_dir / "final_state.pth"), a["ema_state_dict"])
    assert_same_state(weights(straight.output_dir / "model_best.pth"), a["ema_state_dict"])
    # humanpose.load_checkpoint prefers the average in a training checkpoint
    model = humanpose.build_model(make)
    humanpose.load_checkpoint(model, straight.output_dir / "checkpoint.pth")
    assert_same_state(model.state_dict(), a["ema_state_dict"])


def train_run(root, out, *opts):
    return train(make_cfg(root, out, *opts), DEMO_CFG)


# ----------------------------------------------------------------------------- augmentation
INPUT = (96, 128)
LEVELS = [80 + 10 * k for k in range(17)]  # each joint's dot has its own grey level


def dots_records(tmp_path):
    """An image of grey dots, one per joint (radius 8, 40 px apart), and a box around them."""
    image = np.zeros((260, 200, 3), np.uint8)
    joints = np.zeros((17, 3))
    for k in range(17):
        x, y = 40 + 40 * (k % 4), 30 + 45 * (k // 4)
        joints[k, :2] = x, y
        cv2.circle(image, (x, y), 8, (LEVELS[k],) * 3, -1)
    path = tmp_path / "dots.png"
    cv2.imwrite(str(path), image)
    vis = np.ones((17, 3))
    vis[:, 2] = 0
    center = np.array([100.0, 120.0], np.float32)
    scale = np.array([0.96, 1.28], np.float32)  # 192 x 256 pixels: half size in the crop
    return Records.from_rows([str(path)], [1], [center], [scale], joints[None], vis[None],
                             [1.0], [(200, 260)])


def dots_dataset(tmp_path, aug: RTMPoseAugment, stage2=None, stage2_epoch=-1):
    codec = SimCCCodec(INPUT, sigma=(2.0, 2.0), split_ratio=2.0)
    options = SampleOptions(image_size=INPUT, heatmap_size=(24, 32), sigma=2, codec=codec,
                            rtmpose_aug=(aug, stage2 or aug), stage2_epoch=stage2_epoch,
                            fast_mode=True)  # uint8 crops: the pixels as they are
    return TopDownDataset(dots_records(tmp_path), COCO, options, is_train=True), codec


GEOMETRY_ONLY = RTMPoseAugment(hsv=(), blur_prob=0.0, median_blur_prob=0.0, dropout_prob=0.0,
                               half_body_prob=0.5)


def test_rtmpose_augmentation_crops_agree_with_the_targets(tmp_path):
    ds, codec = dots_dataset(tmp_path, GEOMETRY_ONLY)
    pairs = {**dict(COCO.flip_pairs), **{b: a for a, b in COCO.flip_pairs}}
    checked, flipped, rotated = 0, 0, 0
    for i in range(40):
        np.random.seed(i)
        random.seed(i)
        crop, tx, ty, weight, meta = ds[0]
        crop = crop.numpy()
        flipped += meta["flipped"]
        rotated += meta["rotation"] != 0
        locs, _ = codec.decode((tx[None].numpy(), ty[None].numpy()))
        for k in np.flatnonzero(weight.numpy() > 0):
            x, y = locs[0, k]
            if not (3 <= x < INPUT[0] - 3 and 3 <= y < INPUT[1] - 3):
                continue
            source = pairs.get(k, k) if meta["flipped"] else k
            value = int(crop[int(round(y)), int(round(x)), 0])
            assert abs(value - LEVELS[source]) <= 3, (i, k, value, LEVELS[source])
            checked += 1
    assert checked > 300 and 5 < flipped < 35 and 10 < rotated < 35


def test_photometric_changes_pixels_not_targets(tmp_path):
    strong = RTMPoseAugment(hsv=(5, 30, 30), blur_prob=1.0, median_blur_prob=1.0,
                            dropout_prob=1.0, half_body_prob=0.0)
    plain = RTMPoseAugment(hsv=(), blur_prob=0.0, median_blur_prob=0.0, dropout_prob=0.0,
                           half_body_prob=0.0)
    ds_strong, _ = dots_dataset(tmp_path, strong)
    ds_plain, _ = dots_dataset(tmp_path, plain)
    for i in range(5):
        np.random.seed(i)
        random.seed(i)
        a = ds_strong[0]
        np.random.seed(i)
        random.seed(i)
        b = ds_plain[0]
        for ta, tb in zip(a[1:4], b[1:4]):
            assert torch.equal(ta, tb)
        assert not torch.equal(a[0], b[0])


def test_coarse_dropout_and_hsv_follow_their_definitions():
    image = np.full((128, 96, 4), 200, np.uint8)
    random.seed(0)
    np.random.seed(0)
    out = photometric(image, RTMPoseAugment(hsv=(), blur_prob=0, median_blur_prob=0,
                                            dropout_prob=1.0))
    holes = np.all(out[..., :3] == 0, axis=2)
    ys, xs = np.nonzero(holes)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert holes.sum() == h * w  # one rectangle
    assert int(128 * 0.2) <= h <= int(128 * 0.4) and int(96 * 0.2) <= w <= int(96 * 0.4)
    grey = np.full((8, 8, 3), (40, 90, 160), np.uint8)
    before = cv2.cvtColor(grey, cv2.COLOR_BGR2HSV).astype(int)
    changed = 0
    for seed in range(20):
        np.random.seed(seed)
        img = grey.copy()
        yolox_hsv(img, (0, 0, 30))  # value only
        after = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(int)
        dv = after[..., 2] - before[..., 2]
        assert np.all(np.abs(dv) <= 30) and np.all(dv == dv.flat[0])
        changed += dv.flat[0] != 0
    assert 3 < changed < 18  # each channel is shifted with probability 1/2


def test_photometric_distortion_brightness_and_swap():
    """With the draws fixed, brightness adds beta (clipped, truncated) and the channel
    swap permutes; the output keeps shape and dtype."""
    image = np.random.default_rng(0).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    seen_changed = 0
    for seed in range(30):
        np.random.seed(seed)
        contrast_mode, brightness, contrast, hsv_mode, swap = (
            np.random.randint(2), np.random.randint(2), np.random.randint(2),
            np.random.randint(4), np.random.randint(2))
        beta = np.random.uniform(-32, 32)
        np.random.uniform(0.5, 1.5), np.random.uniform(0.5, 1.5), np.random.randint(-18, 18)
        order = np.random.permutation(3)
        np.random.seed(seed)
        out = photometric_distortion(image.copy())
        assert out.shape == image.shape and out.dtype == np.uint8
        seen_changed += not np.array_equal(out, image)
        if hsv_mode == 0 and not (contrast_mode == 1 and contrast):
            expected = image
            if brightness:
                expected = np.clip(image.astype(np.float32) + beta, 0, 255).astype(np.uint8)
            if swap:
                expected = expected[..., order]
            np.testing.assert_array_equal(out, expected)
    assert seen_changed > 20


def test_half_body_follows_mmpose_rules():
    joints = np.zeros((17, 3))
    joints[:, 0], joints[:, 1] = np.arange(17) * 3.0, np.arange(17) * 10.0
    vis = np.ones((17, 3))
    upper = np.zeros(17, bool)
    upper[:11] = True
    aug = RTMPoseAugment(half_body_prob=1.0)
    picks = {"upper": 0, "lower": 0}
    for seed in range(200):
        np.random.seed(seed)
        np.random.rand()
        prefer_upper = np.random.rand() < 0.7
        np.random.seed(seed)
        center, scale = half_body_box_rtmpose(joints, vis, upper, aug, 0.75)
        ids = np.arange(11) if prefer_upper else np.arange(11, 17)
        picks["upper" if prefer_upper else "lower"] += 1
        np.testing.assert_allclose(center, joints[ids, :2].mean(axis=0), rtol=1e-6)
        h = (joints[ids, 1].max() - joints[ids, 1].min()) * 1.5  # tall: width from height
        np.testing.assert_allclose(scale * 200, [h * 0.75, h])
    assert 110 < picks["upper"] < 170
    few = vis.copy()
    few[9:, 0] = 0  # 9 visible joints: enough (mmpose's min_total_keypoints 9)
    assert half_body_box_rtmpose(joints, few, upper, aug, 0.75) is not None
    few[8:, 0] = 0  # 8 visible: never
    assert half_body_box_rtmpose(joints, few, upper, aug, 0.75) is None
    only_upper = vis.copy()
    only_upper[11:, 0] = 0  # fewer than 3 lower joints: the upper body whatever the draw
    for seed in range(20):
        np.random.seed(seed)
        center, _ = half_body_box_rtmpose(joints, only_upper, upper, aug, 0.75)
        np.testing.assert_allclose(center, joints[:11, :2].mean(axis=0), rtol=1e-6)


def test_truncated_normal_and_box_draw_ranges():
    np.random.seed(0)
    v = truncated_normal(20000)
    assert np.abs(v).max() <= 1.0 and v.std() == pytest.approx(0.5396, abs=0.01)
    aug = RTMPoseAugment(shift_prob=1.0, rotate_prob=1.0)
    c, s = np.array([100.0, 100.0]), np.array([1.0, 2.0])
    draws = [random_box(c, s, aug) for _ in range(2000)]
    shifts = np.array([(d[0] - c) / (s * 200) for d in draws])
    factors = np.array([d[1][0] / s[0] for d in draws])
    assert np.abs(shifts).max() <= 0.16 + 1e-6 and np.abs(shifts).max() > 0.15
    assert 0.6 - 1e-6 <= factors.min() < 0.62 and 1.38 < factors.max() <= 1.4 + 1e-6
    assert np.allclose([d[1][1] / d[1][0] for d in draws], 2.0)


def test_stage2_switch_changes_the_draw_ranges(tmp_path):
    cfg = cfg_with("DATASET.AUG_STYLE", "rtmpose", "TRAIN.END_EPOCH", "10",
                   "TRAIN.STAGE2_EPOCHS", "3", "DATASET.PROB_HALF_BODY", "0")
    first, second = SampleOptions.from_cfg(cfg).rtmpose_aug
    assert SampleOptions.from_cfg(cfg).stage2_epoch == 7
    assert (second.shift_factor, second.scale_range, second.rotate_factor,
            second.dropout_prob) == (0.0, (0.75, 1.25), 60.0, 0.5)
    assert (first.shift_factor, first.scale_range, first.rotate_factor,
            first.dropout_prob) == (0.16, (0.6, 1.4), 80.0, 1.0)
    ds, _ = dots_dataset(tmp_path, first, second, stage2_epoch=7)
    base_scale, base_center = ds.records.scales[0], ds.records.centers[0]

    def draws(epoch):
        ds.set_epoch(epoch)
        np.random.seed(epoch)
        random.seed(epoch)
        metas = [ds[0][-1] for _ in range(150)]
        factors = np.array([m["scale"][0] / base_scale[0] for m in metas])
        rots = np.abs([m["rotation"] for m in metas])
        moved = [not np.allclose(np.where(m["flipped"], [199 - m["center"][0], m["center"][1]],
                                          m["center"]), base_center, atol=1e-3) for m in metas]
        return factors, rots, np.mean(moved)

    f6, r6, moved6 = draws(6)
    f7, r7, moved7 = draws(7)
    assert f6.min() < 0.72 and f6.max() > 1.3 and r6.max() > 62 and moved6 > 0.15
    assert f7.min() >= 0.75 - 1e-6 and f7.max() <= 1.25 + 1e-6 and r7.max() <= 60 + 1e-6
    assert moved7 == 0.0
    assert ds.augment_stage is second


def test_stage2_colour_of_the_halpe26_recipe():
    cfg = cfg_with("DATASET.AUG_STYLE", "rtmpose", "DATASET.AUG_COLOR", "photometric",
                   "DATASET.AUG_STAGE2_COLOR", "none", "TRAIN.STAGE2_EPOCHS", "30")
    first, second = SampleOptions.from_cfg(cfg).rtmpose_aug
    assert first.color == "photometric" and second.color == "none"
    plain = RTMPoseAugment(color="none", blur_prob=0, median_blur_prob=0, dropout_prob=0)
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    np.testing.assert_array_equal(photometric(image, plain), image)
    with pytest.raises(ValueError, match="DATASET.AUG_COLOR"):
        SampleOptions.from_cfg(cfg_with("DATASET.AUG_STYLE", "rtmpose",
                                        "DATASET.AUG_COLOR", "jitter"))


def test_unknown_aug_style_is_named():
    with pytest.raises(ValueError, match="DATASET.AUG_STYLE"):
        SampleOptions.from_cfg(cfg_with("DATASET.AUG_STYLE", "mmpose"))
