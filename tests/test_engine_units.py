"""Losses, schedules and checkpoint files of the training engine."""

import math

import pytest
import torch

import humanpose
from humanpose.engine.optim import build_optimizer, build_scheduler, lr_factor
from humanpose.engine.state import ResumeError, load_training_state, save_atomic
from humanpose.pose.loss import JointsMSELoss, JointsOHKMMSELoss

from .conftest import EXPERIMENTS


def seed_mse(output, target, weight):
    """The seed's JointsMSELoss, written out as its loop over joints."""
    n, k = output.shape[:2]
    pred = output.reshape(n, k, -1)
    gt = target.reshape(n, k, -1)
    total = 0.0
    for j in range(k):
        w = weight[:, j]
        total += 0.5 * torch.nn.functional.mse_loss(pred[:, j] * w, gt[:, j] * w)
    return total / k


def test_mse_loss_equals_the_seed_formula():
    torch.manual_seed(0)
    out, tgt = torch.rand(3, 5, 8, 6), torch.rand(3, 5, 8, 6)
    w = (torch.rand(3, 5, 1) > 0.3).float()
    assert JointsMSELoss()(out, tgt, w).item() == pytest.approx(seed_mse(out, tgt, w).item(),
                                                                rel=1e-6)
    unweighted = JointsMSELoss(use_target_weight=False)(out, tgt, w)
    assert unweighted.item() == pytest.approx(0.5 * ((out - tgt) ** 2).mean().item(), rel=1e-6)


def test_ohkm_keeps_the_hardest_joints():
    out = torch.zeros(2, 4, 2, 2)
    tgt = torch.zeros(2, 4, 2, 2)
    tgt[0, 0], tgt[0, 1], tgt[1, 3] = 1.0, 2.0, 3.0  # per-joint losses 0.5, 2, 4.5
    loss = JointsOHKMMSELoss(topk=1)(out, tgt, torch.ones(2, 4, 1))
    assert loss.item() == pytest.approx((2.0 + 4.5) / 2)
    loss2 = JointsOHKMMSELoss(topk=2)(out, tgt, torch.ones(2, 4, 1))
    assert loss2.item() == pytest.approx(((2.0 + 0.5) / 2 + (4.5 + 0) / 2) / 2)


def cfg_with(*opts):
    return humanpose.get_cfg(EXPERIMENTS / "coco/lpn/lpn18_256x192_gd256x2_gc.yaml", list(opts))


def test_multistep_schedule_changes_at_the_seed_epochs():
    cfg = cfg_with("TRAIN.LR_STEP", "[2, 4]", "TRAIN.LR_FACTOR", "0.1")
    factors = [lr_factor(cfg, it, steps_per_epoch=10, total_epochs=6) for it in range(60)]
    assert factors[19] == 1.0 and factors[20] == pytest.approx(0.1)
    assert factors[39] == pytest.approx(0.1) and factors[40] == pytest.approx(0.01)


def test_scheduler_drives_the_optimizer_lr():
    cfg = cfg_with("TRAIN.LR", "0.01", "TRAIN.LR_STEP", "[1]", "TRAIN.WARMUP_EPOCHS", "0.5",
                   "TRAIN.OPTIMIZER", "sgd")
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(cfg, model)
    sched = build_scheduler(cfg, opt, steps_per_epoch=4, total_epochs=2)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.005) and lrs[1] == pytest.approx(0.01)  # warm-up
    assert lrs[3] == pytest.approx(0.01) and lrs[4] == pytest.approx(0.001)  # epoch 1


def test_cosine_schedule():
    cfg = cfg_with("TRAIN.LR_SCHEDULER", "cosine")
    assert lr_factor(cfg, 0, 10, 4) == 1.0
    assert lr_factor(cfg, 20, 10, 4) == pytest.approx(0.5)
    assert lr_factor(cfg, 40, 10, 4) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(cfg, 10, 10, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_adam_has_no_weight_decay_like_the_seed():
    opt = build_optimizer(cfg_with(), torch.nn.Linear(2, 2))
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["weight_decay"] == 0


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pth"
    save_atomic({"epoch": 1, "state_dict": {}}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"epoch": 2, "state_dict": {}}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]


def test_resuming_another_architecture_is_refused(tmp_path):
    lpn18 = cfg_with()
    lpn50 = humanpose.get_cfg(EXPERIMENTS / "coco/lpn/lpn50_256x192_gd256x2_gc.yaml")
    path = tmp_path / "checkpoint.pth"
    save_atomic({"epoch": 3, "state_dict": {}, "model_cfg": lpn18.MODEL.dump()}, path)
    assert load_training_state(path, lpn18)["epoch"] == 3
    with pytest.raises(ResumeError,
                       match="(?s)another architecture.*NUM_LAYERS: checkpoint 18, config 50"):
        load_training_state(path, lpn50)
    torch.save({"weights": 1}, tmp_path / "other.pth")
    with pytest.raises(ResumeError, match="not a humanpose training checkpoint"):
        load_training_state(tmp_path / "other.pth", lpn18)
