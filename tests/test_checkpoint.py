"""Weights files: bare, wrapped and module.-prefixed files load; mismatches are explained."""

import pickle

import pytest
import torch

import humanpose
from humanpose import CheckpointError, load_checkpoint, load_pretrained

from .conftest import EXPERIMENTS

LPN18 = EXPERIMENTS / "coco/lpn/lpn18_256x192_gd256x2_gc.yaml"


def small_lpn(opts=()):
    return humanpose.build_model(humanpose.get_cfg(LPN18, list(opts)))


def randomised(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_bare_state_dict_reloads_strictly(tmp_path):
    src = randomised(small_lpn())
    torch.save(src.state_dict(), tmp_path / "w.pth")
    dst = small_lpn()
    report = load_checkpoint(dst, tmp_path / "w.pth")
    assert report.ok and len(report.loaded) == len(src.state_dict())
    assert_same_weights(src, dst)


@pytest.mark.parametrize("wrap", [
    lambda sd: {"state_dict": sd, "epoch": 3, "optimizer": {"lr": torch.tensor(1.0)}},
    lambda sd: {"model": sd},
    lambda sd: {"module." + k: v for k, v in sd.items()},
    lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}, "perf": 0.7},
], ids=["state_dict", "model", "module_prefix", "wrapped_and_prefixed"])
def test_wrapped_and_prefixed_files_load(tmp_path, wrap):
    src = randomised(small_lpn())
    torch.save(wrap(src.state_dict()), tmp_path / "w.pth")
    dst = small_lpn()
    load_checkpoint(dst, tmp_path / "w.pth")
    assert_same_weights(src, dst)


def test_missing_batchnorm_counters_of_old_checkpoints_are_fine(tmp_path):
    src = randomised(small_lpn())
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pth")
    dst = small_lpn()
    assert load_checkpoint(dst, tmp_path / "old.pth").ok
    assert torch.equal(dst.layer1[0].conv1.weight, src.layer1[0].conv1.weight)


def test_other_block_groups_variant_is_named(tmp_path):
    torch.save(small_lpn(["MODEL.EXTRA.BLOCK_GROUPS", "half"]).state_dict(), tmp_path / "h.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(small_lpn(), tmp_path / "h.pth")
    msg = str(err.value)
    assert "shape mismatches" in msg and "layer1.0.conv1.weight" in msg
    assert "BLOCK_GROUPS" in msg and str(tmp_path / "h.pth") in msg


def test_other_joint_count_is_named(tmp_path):
    torch.save(small_lpn(["MODEL.NUM_JOINTS", "16"]).state_dict(), tmp_path / "mpii.pth")
    with pytest.raises(CheckpointError, match="16 joints but MODEL.NUM_JOINTS is 17"):
        load_checkpoint(small_lpn(), tmp_path / "mpii.pth")


def test_other_attention_lists_missing_keys(tmp_path):
    torch.save(small_lpn(["MODEL.EXTRA.ATTENTION", ""]).state_dict(), tmp_path / "plain.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(small_lpn(), tmp_path / "plain.pth")
    msg = str(err.value)
    assert "missing keys" in msg and "layer1.0.att.conv_mask.weight" in msg
    assert "ATTENTION" in msg


def test_other_architecture_fails_and_non_strict_reports(tmp_path):
    hrnet = humanpose.get_cfg(EXPERIMENTS / "coco/hrnet/w18_small_v1_256x192_adam_lr1e-3.yaml")
    torch.save(humanpose.build_model(hrnet).state_dict(), tmp_path / "hr.pth")
    with pytest.raises(CheckpointError, match="another architecture .*looks like pose_hrnet"):
        load_checkpoint(small_lpn(), tmp_path / "hr.pth")
    report = load_checkpoint(small_lpn(), tmp_path / "hr.pth", strict=False)
    assert not report.ok and report.missing and report.unexpected


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"state_dict": Evil()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(small_lpn(), tmp_path / "evil.pth")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found: .*nope.pth"):
        load_checkpoint(small_lpn(), tmp_path / "nope.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="holds no state dict"):
        load_checkpoint(small_lpn(), tmp_path / "empty.pth")


def test_pretrained_loads_selected_layers_and_skips_classifier(tmp_path):
    cfg = humanpose.get_cfg(EXPERIMENTS / "coco/hrnet/w18_small_v1_256x192_adam_lr1e-3.yaml")
    imagenet = randomised(humanpose.build_model(cfg)).state_dict()
    imagenet["final_layer.weight"] = torch.randn(1000, 128, 1, 1)  # an ImageNet classifier
    imagenet["incre_modules.0.weight"] = torch.randn(3)
    torch.save(imagenet, tmp_path / "imagenet.pth")
    model = humanpose.build_model(cfg)
    before = model.final_layer.weight.clone()
    report = load_pretrained(model, tmp_path / "imagenet.pth", cfg.MODEL.EXTRA.PRETRAINED_LAYERS)
    assert torch.equal(model.stage2[0].branches[0][0].conv1.weight,
                       imagenet["stage2.0.branches.0.0.conv1.weight"])
    assert torch.equal(model.conv1.weight, imagenet["conv1.weight"])
    assert torch.equal(model.final_layer.weight, before)  # not in PRETRAINED_LAYERS
    assert "final_layer.weight" not in report.loaded
    with pytest.raises(CheckpointError, match="MODEL.PRETRAINED"):
        load_pretrained(model, tmp_path / "absent.pth")


# ----------------------------------------------------------------------------- mmpose layout
MM_HEAD = ("final_layer.", "deconv_layers.")


@pytest.mark.parametrize("experiment", ["coco/hrnet/w18_small_v1_256x192_adam_lr1e-3.yaml",
                                        "coco/resnet/res50_256x192_d256x3_adam_lr1e-3.yaml"])
def test_mmpose_topdown_checkpoints_load_strictly(tmp_path, experiment):
    """mmpose's td-hm HRNet/ResNet files: ``backbone.*`` + ``head.final_layer``/
    ``head.deconv_layers`` (the key list mmpose 1.3.2 builds for hrnet-w32/res50 is ours
    with those prefixes), wrapped as ``{"meta", "state_dict"}``."""
    import numpy as np

    cfg = humanpose.get_cfg(EXPERIMENTS / experiment)
    torch.manual_seed(3)
    source = humanpose.build_model(cfg).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.normal_(0, 0.05)
    mm_state = {(f"head.{k}" if k.startswith(MM_HEAD) else f"backbone.{k}"): v
                for k, v in source.state_dict().items()}
    path = tmp_path / "td-hm_mm.pth"
    torch.save({"meta": {"dataset_meta": {"sigmas": np.ones(17)}}, "state_dict": mm_state}, path)
    target = humanpose.build_model(cfg).eval()
    report = humanpose.load_checkpoint(target, path)
    assert report.ok and len(report.loaded) == len(mm_state)
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        assert torch.equal(target(x), source(x))
    mm_state.pop(next(k for k in mm_state if k.startswith("head.")))
    torch.save({"state_dict": mm_state}, path)
    with pytest.raises(humanpose.CheckpointError, match="final_layer|deconv"):
        humanpose.load_checkpoint(humanpose.build_model(cfg), path)
