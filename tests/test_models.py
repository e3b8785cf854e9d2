"""Every architecture of the seed's tables: exact parameter counts, GFLOPs and official keys."""

import hashlib

import pytest
import torch

import humanpose
from humanpose.summary import count_gflops, count_parameters

from .conftest import EXPERIMENTS, SEED_EXPERIMENTS

# experiment, parameters, GFLOPs (shared/spec/models.md); number of state-dict entries and
# a digest of their names, both taken from the official implementation of that model.
SPEC = [
    ("coco/hrnet/w18_small_v1_256x192_adam_lr1e-3", 1_338_337, 0.681, 404, "d7d0528b07a8"),
    ("coco/hrnet/w18_small_v2_256x192_adam_lr1e-3", 3_757_475, 1.828, 824, "779983641a54"),
    ("coco/hrnet/w18_small_v2_256x192_adam_lr1e-3_softargmax", 3_757_475, 1.828, 824,
     "779983641a54"),
    ("coco/hrnet/w32_256x192_adam_lr1e-3", 28_536_113, 7.120, 1754, "75ce61c8612d"),
    ("coco/hrnet/w32_384x288_adam_lr1e-3", 28_536_113, 16.020, 1754, "75ce61c8612d"),
    ("coco/hrnet/w48_256x192_adam_lr1e-3", 63_595_745, 14.614, 1754, "75ce61c8612d"),
    ("coco/hrnet/w48_384x288_adam_lr1e-3", 63_595_745, 32.882, 1754, "75ce61c8612d"),
    ("coco/lpn/lpn18_256x192_gd256x2_gc", 473_913, 0.423, 210, "88e307360fe2"),
    ("coco/lpn/lpn18h_256x192_gd256x2_gc", 508_473, 0.438, 210, "88e307360fe2"),
    ("coco/lpn/lpn34_256x192_gd256x2_gc", 594_673, 0.435, 370, "a5b7f311b7f3"),
    ("coco/lpn/lpn34h_256x192_gd256x2_gc", 662_641, 0.462, 370, "a5b7f311b7f3"),
    ("coco/lpn/lpn50_256x192_gd256x2_gc", 2_911_153, 1.008, 466, "1c3cc386dbb5"),
    ("coco/lpn/lpn100_256x192_gd256x2_gc", 6_710_914, 1.801, 1324, "31020bcf7f98"),
    ("coco/lpn/lpn101_256x192_gd256x2_gc", 5_353_458, 1.414, 908, "f16ec5c8d3ba"),
    ("coco/lpn/lpn152_256x192_gd256x2_gc", 7_377_459, 1.822, 1350, "f69c1c0dd34c"),
    ("coco/resnet/res50_256x192_d256x3_adam_lr1e-3", 33_999_697, 8.991, 338, "e11b1bd17147"),
    ("coco/resnet/res50_384x288_d256x3_adam_lr1e-3", 33_999_697, 20.230, 338, "e11b1bd17147"),
    ("coco/resnet/res101_256x192_d256x3_adam_lr1e-3", 52_991_825, 12.378, 644, "1954cc9a57b1"),
    ("coco/resnet/res101_384x288_d256x3_adam_lr1e-3", 52_991_825, 27.850, 644, "1954cc9a57b1"),
    ("coco/resnet/res152_256x192_d256x3_adam_lr1e-3", 68_635_473, 15.765, 950, "144c8873f57f"),
    ("coco/resnet/res152_384x288_d256x3_adam_lr1e-3", 68_635_473, 35.470, 950, "144c8873f57f"),
    ("mpii/hrnet/w32_256x256_adam_lr1e-3", 28_536_080, 9.493, 1754, "75ce61c8612d"),
    ("mpii/hrnet/w48_256x256_adam_lr1e-3", 63_595_696, 19.485, 1754, "75ce61c8612d"),
    ("mpii/resnet/res50_256x256_d256x3_adam_lr1e-3", 33_999_440, 11.987, 338, "e11b1bd17147"),
    ("mpii/resnet/res101_256x256_d256x3_adam_lr1e-3", 52_991_568, 16.503, 644, "1954cc9a57b1"),
    ("mpii/resnet/res152_256x256_d256x3_adam_lr1e-3", 68_635_216, 21.019, 950, "144c8873f57f"),
]


def build_on_meta(cfg):
    """Shapes without memory or compute: enough for counts, keys and FLOPs."""
    with torch.device("meta"):
        return humanpose.build_model(cfg)


@pytest.mark.parametrize("name,params,gflops,n_keys,key_digest", SPEC, ids=[s[0] for s in SPEC])
def test_experiment_matches_spec(name, params, gflops, n_keys, key_digest):
    cfg = humanpose.get_cfg(EXPERIMENTS / f"{name}.yaml")
    model = build_on_meta(cfg)
    assert count_parameters(model) == params
    assert count_gflops(model, tuple(cfg.MODEL.IMAGE_SIZE)) == pytest.approx(gflops, rel=0.01)
    keys = list(model.state_dict())
    assert len(keys) == n_keys
    assert hashlib.sha1("\n".join(keys).encode()).hexdigest()[:12] == key_digest


def test_every_pose_experiment_file_is_in_the_spec():
    # RTMPose's and RTMO's files have their own specs (mmpose's figures) in test_rtmpose.py
    # and test_rtmo.py.
    files = {str(p.relative_to(EXPERIMENTS).with_suffix("")) for sub in ("coco", "mpii")
             for p in (EXPERIMENTS / sub).rglob("*.yaml")
             if p.parent.name not in ("rtmpose", "rtmo")}
    assert files == {s[0] for s in SPEC}


@pytest.mark.skipif(not SEED_EXPERIMENTS.is_dir(), reason="shared/seed not beside the repo")
@pytest.mark.parametrize("path", sorted(SEED_EXPERIMENTS.rglob("*.yaml")) if
                         SEED_EXPERIMENTS.is_dir() else [], ids=lambda p: p.name)
def test_seed_experiment_files_load_and_build(path):
    cfg = humanpose.get_cfg(path)
    model = build_on_meta(cfg)
    assert count_parameters(model) > 0
    # The seed files without the new keys keep the seed code's meaning.
    assert cfg.MODEL.EXTRA.BLOCK_GROUPS == "half"
    assert list(cfg.MODEL.EXTRA.STAGE1.NUM_CHANNELS) == [64]


@pytest.mark.parametrize("key", [
    "conv1.weight", "layer1.0.conv1.weight", "transition1.0.0.weight",
    "stage2.0.branches.0.0.conv1.weight", "stage2.0.fuse_layers.0.1.0.weight",
    "stage4.0.fuse_layers.0.3.0.weight", "final_layer.weight", "final_layer.bias"])
def test_hrnet_official_keys(key):
    cfg = humanpose.get_cfg(EXPERIMENTS / "coco/hrnet/w32_256x192_adam_lr1e-3.yaml")
    assert key in build_on_meta(cfg).state_dict()


@pytest.mark.parametrize("attention,keys", [
    ("GC", ["layer1.0.att.conv_mask.weight", "layer1.0.att.channel_add_conv.1.weight",
            "layer1.0.att.channel_add_conv.3.bias"]),
    ("SE", ["layer1.0.att.fc.0.weight", "layer4.2.att.fc.2.weight"]),
    ("", []),
])
def test_lpn_attention_variants(lpn50_cfg_path, attention, keys):
    cfg = humanpose.get_cfg(lpn50_cfg_path, ["MODEL.EXTRA.ATTENTION", attention])
    state = build_on_meta(cfg).state_dict()
    for key in keys + ["deconv_layers.0.weight", "deconv_layers.3.weight", "final_layer.weight"]:
        assert key in state
    assert any(".att." in k for k in state) == bool(attention)


def test_lpn_block_groups_change_the_grouped_convs():
    path = EXPERIMENTS / "coco/lpn/lpn18_256x192_gd256x2_gc.yaml"
    half = build_on_meta(humanpose.get_cfg(path, ["MODEL.EXTRA.BLOCK_GROUPS", "half"]))
    dw = build_on_meta(humanpose.get_cfg(path))
    assert dw.layer2[0].conv1.groups == 64 and half.layer2[0].conv1.groups == 32
    assert dw.layer2[1].conv1.groups == 128 and half.layer2[1].conv1.groups == 64


@pytest.mark.parametrize("name", ["coco/lpn/lpn18_256x192_gd256x2_gc",
                                  "coco/hrnet/w18_small_v1_256x192_adam_lr1e-3",
                                  "coco/resnet/res50_256x192_d256x3_adam_lr1e-3"])
@pytest.mark.parametrize("joints", [1, 5, 133])
def test_any_number_of_joints_gives_heatmaps_of_the_configured_size(name, joints):
    cfg = humanpose.get_cfg(EXPERIMENTS / f"{name}.yaml", ["MODEL.NUM_JOINTS", str(joints),
                                                         "MODEL.IMAGE_SIZE", "[96, 128]",
                                                         "MODEL.HEATMAP_SIZE", "[24, 32]"])
    model = humanpose.build_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 128, 96))
    assert out.shape == (2, joints, 32, 24)
    assert torch.isfinite(out).all()


def test_unknown_model_name_is_named():
    with pytest.raises(ValueError, match="MODEL.NAME.*'posenet'"):
        humanpose.build_model(humanpose.get_cfg(None, ["MODEL.NAME", "posenet"]))


def test_seed_style_initialisation(lpn50_cfg_path):
    model = humanpose.build_model(humanpose.get_cfg(lpn50_cfg_path))
    w = model.layer3[0].conv1.weight
    assert w.std().item() == pytest.approx(0.001, rel=0.1)
    assert torch.all(model.layer1[0].bn1.weight == 1) and torch.all(model.layer1[0].bn1.bias == 0)


@pytest.mark.parametrize("name", ["coco/lpn/lpn18_256x192_gd256x2_gc",
                                  "coco/hrnet/w18_small_v1_256x192_adam_lr1e-3",
                                  "coco/resnet/res50_256x192_d256x3_adam_lr1e-3"])
def test_training_step_backpropagates(name):
    cfg = humanpose.get_cfg(EXPERIMENTS / f"{name}.yaml", ["MODEL.IMAGE_SIZE", "[64, 64]",
                                                         "MODEL.HEATMAP_SIZE", "[16, 16]"])
    model = humanpose.build_model(cfg).train()
    out = model(torch.randn(2, 3, 64, 64))
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.conv1.weight.grad.abs().sum() > 0
