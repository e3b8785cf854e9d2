"""RTMPose and RTMDet networks: mmpose/mmdet layouts, sizes, outputs and checkpoint files.

The key digests are sha1 of ``name:[shape]`` lines of the state dict, in order, as mmpose
1.3.2 / mmdet 3.3.0 build the models (benchmarks/check_mm_equivalence.py prints them for
both sides); equal digests mean an official checkpoint loads with no renaming.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

import humanpose
from humanpose import CheckpointError, load_checkpoint
from humanpose.detection import DETECTOR_NAMES, build_detector
from humanpose.models.rtmpose import RTMCCBlock, ScaleNorm, rope
from humanpose.summary import count_gflops, count_parameters

from .conftest import EXPERIMENTS

# experiment, parameters, GFLOPs published by mmpose (None: not published), state-dict
# entries, key digest; all from mmpose 1.3.2's models built from its configs.
RTMPOSE_SPEC = [
    ("coco/rtmpose/rtmpose_t_256x192", 3_337_007, 0.36, 218, "9d830fb85a32"),
    ("coco/rtmpose/rtmpose_s_256x192", 5_473_251, 0.68, 254, "aaea639b1ddc"),
    ("coco/rtmpose/rtmpose_m_256x192", 13_587_611, 1.93, 362, "a5c56f486f5a"),
    ("coco/rtmpose/rtmpose_l_256x192", 27_660_339, 4.16, 470, "29e125833527"),
    ("coco/rtmpose/rtmpose_m_384x288", 13_717_659, 4.33, 362, "14591cceb46b"),
    ("coco/rtmpose/rtmpose_l_384x288", 27_790_387, 9.35, 470, "f7d13235fe14"),
    ("halpe26/rtmpose/rtmpose_t_256x192", 3_506_360, None, 218, "242d6814d796"),
    ("halpe26/rtmpose/rtmpose_s_256x192", 5_699_052, None, 254, "c763851f4ce9"),
    ("halpe26/rtmpose/rtmpose_m_256x192", 13_926_308, None, 362, "6aed91d02495"),
    ("halpe26/rtmpose/rtmpose_l_256x192", 28_111_932, None, 470, "31eb968db6b7"),
]
# experiment, parameters (mmdet 3.3.0, one class), state-dict entries, key digest
RTMDET_SPEC = [
    ("detection/rtmdet_nano_320_person", 994_423, 698, "285704fbcb94"),
    ("detection/rtmdet_tiny_640_person", 4_873_179, 476, "bbe65e498f4e"),
    ("detection/rtmdet_m_640_person", 24_663_447, 692, "c7218c53bb22"),
]


def cfg_of(name: str, opts=()):
    return humanpose.get_cfg(EXPERIMENTS / f"{name}.yaml", list(opts))


def on_meta(build, cfg):
    with torch.device("meta"):
        return build(cfg)


def key_digest(state) -> str:
    lines = "\n".join(f"{k}:{list(v.shape)}" for k, v in state.items())
    return hashlib.sha1(lines.encode()).hexdigest()[:12]


@pytest.mark.parametrize("name,params,gflops,n_keys,digest", RTMPOSE_SPEC,
                         ids=[s[0] for s in RTMPOSE_SPEC])
def test_rtmpose_experiment_matches_mmpose(name, params, gflops, n_keys, digest):
    cfg = cfg_of(name)
    model = on_meta(humanpose.build_model, cfg)
    assert count_parameters(model) == params
    state = model.state_dict()
    assert len(state) == n_keys
    assert key_digest(state) == digest
    if gflops:
        assert count_gflops(model, tuple(cfg.MODEL.IMAGE_SIZE)) == pytest.approx(gflops,
                                                                                 rel=0.05)
    assert cfg.MODEL.NUM_JOINTS == (26 if name.startswith("halpe26") else 17)


def test_every_rtmpose_experiment_file_is_in_the_spec():
    """Body models; the whole-body, hand and face ones: tests/test_wholebody_models.py."""
    files = {str(p.relative_to(EXPERIMENTS).with_suffix(""))
             for p in EXPERIMENTS.glob("*/rtmpose/*.yaml")
             if p.parts[-3] not in ("wholebody", "hand", "face")}
    assert files == {s[0] for s in RTMPOSE_SPEC}


@pytest.mark.parametrize("name,params,n_keys,digest", RTMDET_SPEC,
                         ids=[s[0] for s in RTMDET_SPEC])
def test_rtmdet_experiment_matches_mmdet(name, params, n_keys, digest):
    cfg = cfg_of(name)
    assert cfg.MODEL.NAME in DETECTOR_NAMES
    model = on_meta(lambda c: build_detector(c, channels_last=False), cfg)
    assert count_parameters(model) == params
    assert len(model.state_dict()) == n_keys
    assert key_digest(model.state_dict()) == digest


# ------------------------------------------------------------------------------ outputs
@pytest.mark.parametrize("name,size", [("coco/rtmpose/rtmpose_t_256x192", (192, 256)),
                                       ("halpe26/rtmpose/rtmpose_t_256x192", (192, 256))])
def test_rtmpose_outputs_simcc_vectors(name, size):
    cfg = cfg_of(name)
    model = humanpose.build_model(cfg, channels_last=False).eval()
    k = cfg.MODEL.NUM_JOINTS
    with torch.no_grad():
        x, y = model(torch.randn(1, 3, size[1], size[0]))
    assert x.shape == (1, k, size[0] * 2) and y.shape == (1, k, size[1] * 2)
    assert torch.isfinite(x).all() and torch.isfinite(y).all()


def test_rtmpose_rejects_an_input_size_its_head_was_not_built_for():
    model = humanpose.build_model(cfg_of("coco/rtmpose/rtmpose_t_256x192"),
                                  channels_last=False).eval()
    with pytest.raises(ValueError, match="MODEL.IMAGE_SIZE"):
        model(torch.zeros(1, 3, 288, 192))


def test_rtmdet_outputs_per_level_logits_and_distances():
    cfg = cfg_of("detection/rtmdet_nano_320_person")
    model = build_detector(cfg, channels_last=False).eval()
    with torch.no_grad():  # any multiple of 32 (320 in the recipe)
        cls, reg = model(torch.randn(1, 3, 160, 128))
    assert [tuple(c.shape) for c in cls] == [(1, 1, 20, 16), (1, 1, 10, 8), (1, 1, 5, 4)]
    assert [tuple(r.shape) for r in reg] == [(1, 4, 20, 16), (1, 4, 10, 8), (1, 4, 5, 4)]
    # From scratch the class logits start at mmdet's 1 % prior.
    assert cls[0].mean().item() == pytest.approx(-math.log(99), abs=0.5)


def test_rtmdet_shared_convs_are_one_tensor_with_separate_batchnorms():
    model = build_detector(cfg_of("detection/rtmdet_tiny_640_person"), channels_last=False)
    head = model.bbox_head
    assert head.cls_convs[2][1].conv.weight is head.cls_convs[0][1].conv.weight
    assert head.reg_convs[1][0].conv.weight is head.reg_convs[0][0].conv.weight
    assert head.cls_convs[1][0].bn is not head.cls_convs[0][0].bn
    nano = build_detector(cfg_of("detection/rtmdet_nano_320_person"), channels_last=False)
    assert (nano.bbox_head.cls_convs[1][0].depthwise_conv.conv.weight
            is not nano.bbox_head.cls_convs[0][0].depthwise_conv.conv.weight)


def test_rtmdet_exp_on_reg_gives_positive_distances_scaled_by_stride():
    model = build_detector(cfg_of("detection/rtmdet_m_640_person",
                                  ["MODEL.IMAGE_SIZE", "[128, 128]"]), channels_last=False)
    with torch.no_grad():
        for conv in model.bbox_head.rtm_reg:
            conv.weight.zero_()
            conv.bias.fill_(0.5)
        _, reg = model.eval()(torch.randn(1, 3, 128, 128))
    for level, stride in zip(reg, (8, 16, 32)):
        assert torch.allclose(level, torch.full_like(level, math.exp(0.5) * stride))


# ------------------------------------------------------------------------------ the GAU
def test_scale_norm_gives_norm_sqrt_dim():
    x = torch.randn(3, 5, 64)
    y = ScaleNorm(64)(x)
    assert torch.allclose(y.norm(dim=-1), torch.full((3, 5), 8.0), atol=1e-4)


def test_gau_relative_bias_is_toeplitz_and_rope_is_a_rotation():
    block = RTMCCBlock(5, 16, 16, s=8, use_rel_bias=True)
    bias = block.rel_pos_bias(5)[0]
    for i in range(5):
        for j in range(5):
            assert bias[i, j] == block.w[j - i + 4]
    x = torch.randn(2, 5, 2, 8)
    rotated = rope(x, dim=1)
    assert torch.allclose(rotated[:, 0], x[:, 0])  # position 0: angle 0
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)


def test_gau_options_change_the_output():
    torch.manual_seed(0)
    plain = RTMCCBlock(17, 32, 32, s=16, use_rel_bias=False, pos_enc=False).eval()
    with_pos = RTMCCBlock(17, 32, 32, s=16, use_rel_bias=False, pos_enc=True).eval()
    with_pos.load_state_dict(plain.state_dict())
    x = torch.randn(2, 17, 32)
    assert plain(x).shape == (2, 17, 32)
    assert not torch.allclose(plain(x), with_pos(x))


def test_gflops_count_the_gau_matmuls_in_units_of_1e9():
    cfg = cfg_of("coco/rtmpose/rtmpose_t_256x192")
    model = on_meta(humanpose.build_model, cfg)
    k, s, e = 17, 128, 512
    assert model.extra_macs() == k * k * (s + e)
    hooks_only = count_gflops(model, (192, 256)) * 1e9 - model.extra_macs()
    assert hooks_only > 0.3e9  # conv + linear layers dominate


# ------------------------------------------------------------------------- checkpoints
class HistoryBuffer:
    """Stands for mmengine's logging class that training checkpoints pickle."""

    def __init__(self, values):
        self._log_history = np.asarray(values)


def mmpose_meta():
    """``meta`` as mmengine's Runner writes it: config text, numpy arrays in dataset_meta."""
    return {"epoch": 420, "iter": 63000, "seed": 21, "cfg": "model = dict(type='RTMPose')",
            "mmengine_version": "0.10.7",
            "dataset_meta": {"dataset_name": "coco", "num_keypoints": 17,
                             "sigmas": np.linspace(0.025, 0.107, 17).astype(np.float32),
                             "joint_weights": np.ones(17, np.float32),
                             "flip_indices": [0, 2, 1, 4, 3],
                             "keypoint_colors": np.zeros((17, 3), np.uint8)}}


def randomised(model):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) * 0.2 + 0.9 if "running_var" in name
                        else torch.randn(t.shape, generator=gen) * 0.1)
    return model


def tiny_rtmpose():
    return humanpose.build_model(cfg_of("coco/rtmpose/rtmpose_t_256x192"),
                                 channels_last=False).eval()


@pytest.mark.parametrize("legacy", [True, False], ids=["published-legacy", "zip"])
def test_mmpose_checkpoint_loads_strictly_with_weights_only(tmp_path, legacy):
    source = randomised(tiny_rtmpose())
    state = source.state_dict()
    assert key_digest(state) == RTMPOSE_SPEC[0][4]  # mmpose's names and shapes
    path = tmp_path / "rtmpose-t_simcc-coco.pth"
    torch.save({"meta": mmpose_meta(), "state_dict": state}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(Exception, match="Weights only load failed"):  # torch alone refuses
        torch.load(path, weights_only=True)
    target = tiny_rtmpose()
    report = load_checkpoint(target, path)
    assert report.ok and len(report.loaded) == len(state)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        for a, b in zip(source(x), target(x), strict=True):
            assert torch.equal(a, b)


def test_mmengine_training_checkpoint_with_ema_loads_the_averaged_weights(tmp_path):
    averaged = randomised(tiny_rtmpose())
    raw = tiny_rtmpose()
    ema_state = {"steps": torch.tensor(63000)}
    ema_state.update({f"module.{k}": v + 1.0 if v.is_floating_point() else v
                      for k, v in averaged.state_dict().items()})
    checkpoint = {"meta": mmpose_meta(), "state_dict": averaged.state_dict(),
                  "message_hub": {"log_scalars": {"train/loss": HistoryBuffer([1.0, 0.9])},
                                  "runtime_info": {"epoch": 420}},
                  "optimizer": {"state": {}, "param_groups": [{"lr": 0.0002, "params": [0]}]},
                  "ema_state_dict": ema_state}
    torch.save(checkpoint, tmp_path / "epoch_420.pth")
    load_checkpoint(raw, tmp_path / "epoch_420.pth")
    for k, v in averaged.state_dict().items():
        assert torch.equal(raw.state_dict()[k], v), k
    # A file holding only the EMA copy (module. prefix, steps) loads it.
    torch.save({"meta": mmpose_meta(), "ema_state_dict": ema_state}, tmp_path / "ema.pth")
    load_checkpoint(raw, tmp_path / "ema.pth")
    key = "head.cls_x.weight"
    assert torch.equal(raw.state_dict()[key], averaged.state_dict()[key] + 1.0)


def test_mmcv1_ema_buffers_beside_the_weights_are_not_unexpected(tmp_path):
    model = randomised(tiny_rtmpose())
    state = dict(model.state_dict())
    state.update({"ema_" + k.replace(".", "_"): v.clone() for k, v in model.state_dict().items()
                  if v.is_floating_point()})
    torch.save({"state_dict": state}, tmp_path / "ema_buffers.pth")
    assert load_checkpoint(tiny_rtmpose(), tmp_path / "ema_buffers.pth").ok


def test_mmpose_checkpoint_of_another_size_is_refused(tmp_path):
    small = humanpose.build_model(cfg_of("coco/rtmpose/rtmpose_s_256x192"))
    torch.save({"meta": mmpose_meta(), "state_dict": small.state_dict()}, tmp_path / "s.pth")
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(tiny_rtmpose(), tmp_path / "s.pth")


def test_pickled_code_in_meta_never_runs(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    model = tiny_rtmpose()
    torch.save({"meta": {"note": Evil()}, "state_dict": model.state_dict()},
               tmp_path / "evil.pth")
    import builtins

    calls = []
    original = builtins.print
    builtins.print = lambda *a, **k: calls.append(a)
    try:
        assert load_checkpoint(tiny_rtmpose(), tmp_path / "evil.pth").ok
    finally:
        builtins.print = original
    assert calls == []


def test_mmdet_checkpoint_loads_strictly(tmp_path):
    cfg = cfg_of("detection/rtmdet_nano_320_person")
    source = randomised(build_detector(cfg, channels_last=False)).eval()
    torch.save({"meta": {"dataset_meta": {"classes": ("person",),
                                          "palette": [(220, 20, 60)]}},
                "state_dict": source.state_dict()}, tmp_path / "rtmdet_nano.pth",
               _use_new_zipfile_serialization=False)
    target = build_detector(cfg, channels_last=False).eval()
    assert load_checkpoint(target, tmp_path / "rtmdet_nano.pth").ok
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        for a, b in zip(source(x)[1], target(x)[1], strict=True):
            assert torch.equal(a, b)


def test_info_command_reports_rtmpose(capsys):
    from humanpose.cli import main

    assert main(["info", "--cfg", str(EXPERIMENTS / "coco/rtmpose/rtmpose_t_256x192.yaml"),
                 "--json", "--runs", "1"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    assert result["params"] == 3_337_007
    assert result["gflops"] == pytest.approx(0.36, rel=0.05)


def test_a_few_simcc_training_steps_lower_the_loss(tmp_path):
    """RTMPose-t at its own 256x192 on drawn people: targets from the SimCC codec through the
    data pipeline, the config's loss (SimCC KL), 4 Adam steps on one batch of 2."""
    from humanpose.data import build_dataset
    from humanpose.data.normalize import normalize_batch
    from humanpose.data.synthetic import write_coco_set
    from humanpose.pose.loss import SimCCKLLoss, build_loss

    write_coco_set(str(tmp_path), num_train=2, num_val=2, seed=1)
    cfg = cfg_of("coco/rtmpose/rtmpose_t_256x192", ["DATASET.ROOT", str(tmp_path),
                                                    "WORKERS", "0"])
    dataset = build_dataset(cfg, is_train=False)  # no augmentation: a fixed batch
    samples = [dataset[i] for i in range(2)]
    images, target_x, target_y, weight = (torch.stack([s[i] for s in samples])
                                          for i in range(4))
    assert target_x.shape[1:] == (17, 384) and target_y.shape[1:] == (17, 512)
    assert weight.sum() > 0
    loss_fn = build_loss(cfg)
    assert isinstance(loss_fn, SimCCKLLoss)
    torch.manual_seed(0)
    model = humanpose.build_model(cfg, channels_last=False).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = normalize_batch(images)
    losses = []
    for _ in range(4):
        loss = loss_fn(model(inputs), target_x, target_y, weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.95 * losses[0], losses
