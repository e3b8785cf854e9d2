"""Whole-body (DWPose / RTMW), hand and face networks, and fine-tuning onto another key-point set.

The parameter counts are mmpose 1.3.2's, measured once in the reference venv
(shared/reference: ``init_model(config)`` on each official config, then
``sum(p.numel() for p in model.parameters())``); they are facts about mmpose's models that
ours must equal, not outputs of our code.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import humanpose
from humanpose.checkpoint import CheckpointError, init_from_weights
from humanpose.models import HEAD_PREFIXES
from humanpose.models.rtmw import RTMW

EXPERIMENTS = Path(humanpose.__file__).resolve().parents[1] / "experiments"

MMPOSE_PARAMS = {  # experiment: parameters of mmpose's model from the config it names
    "wholebody/rtmpose/rtmpose_t_256x192": 5_519_779,
    "wholebody/rtmpose/rtmpose_m_256x192": 17_953_039,
    "wholebody/rtmpose/rtmpose_l_384x288": 33_610_919,
    "wholebody/rtmw/rtmw_m_256x192": 32_258_207,
    "wholebody/rtmw/rtmw_l_256x192": 57_201_207,
    "wholebody/rtmw/rtmw_l_384x288": 57_354_295,
    "wholebody/rtmw/rtmw_x_384x288": 92_194_991,
    "hand/rtmpose/rtmpose_m_256x256": 13_775_007,
    "face/rtmpose/rtmpose_t_256x256": 5_048_584,
    "face/rtmpose/rtmpose_m_256x256": 16_973_812,
}


def _cfg(experiment: str, *opts: str):
    return humanpose.get_cfg(EXPERIMENTS / f"{experiment}.yaml", list(opts))


@pytest.mark.parametrize("experiment", sorted(MMPOSE_PARAMS))
def test_parameter_counts_are_mmposes(experiment):
    model = humanpose.build_model(_cfg(experiment), channels_last=False)
    assert sum(p.numel() for p in model.parameters()) == MMPOSE_PARAMS[experiment]


def test_every_shipped_whole_body_hand_face_file_names_its_mmpose_count():
    """Each experiment's header states mmpose's count; the network built from it has it."""
    files = sorted(EXPERIMENTS.glob("wholebody/*/*.yaml")) + sorted(
        EXPERIMENTS.glob("hand/*/*.yaml")) + sorted(EXPERIMENTS.glob("face/*/*.yaml"))
    assert len(files) >= 15
    for path in files:
        stated = int(re.search(r"([\d,]+) parameters, as mmpose", path.read_text())
                     .group(1).replace(",", ""))
        rel = str(path.relative_to(EXPERIMENTS).with_suffix(""))
        if rel in MMPOSE_PARAMS:
            assert stated == MMPOSE_PARAMS[rel], path
        model = humanpose.build_model(humanpose.get_cfg(path), channels_last=False)
        assert sum(p.numel() for p in model.parameters()) == stated, path


def _small_rtmw(joints: int = 133):
    return humanpose.build_model(_cfg("wholebody/rtmw/rtmw_m_256x192",
                                      "MODEL.NUM_JOINTS", str(joints),
                                      "DATASET.KEYPOINT_SET", "",
                                      "MODEL.EXTRA.DEEPEN_FACTOR", "0.167",
                                      "MODEL.EXTRA.WIDEN_FACTOR", "0.375"),
                                 channels_last=False).eval()


def test_rtmw_outputs_simcc_vectors_from_two_scales():
    model = _small_rtmw()
    assert isinstance(model, RTMW)
    x = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        sx, sy = model(x)
    assert sx.shape == (2, 133, 384) and sy.shape == (2, 133, 512)
    # The fine (stride-16) branch counts: changing its weights changes the outputs.
    with torch.no_grad():
        model.head.final_layer2.conv.weight.mul_(3.0)
        sx2, _ = model(x)
    assert not torch.allclose(sx, sx2)
    with pytest.raises(ValueError, match="MODEL.IMAGE_SIZE"):
        model(torch.randn(1, 3, 224, 192))


def test_an_mmpose_layout_rtmw_checkpoint_loads_strictly(tmp_path):
    """``{"meta", "state_dict"}`` with mmpose's key names (backbone., neck., head.conv_dec...),
    as mmpose's publish_model.py leaves it."""
    model = _small_rtmw()
    state = model.state_dict()
    for key in ("neck.reduce_layers.0.conv.weight", "head.conv_dec.bn.running_var",
                "head.final_layer2.conv.weight", "head.mlp2.1.weight", "head.gau.uv.weight",
                "head.cls_x.weight"):
        assert key in state, key
    assert not any(k.startswith("neck.out_convs") for k in state)  # mmpose: out_channels None
    torch.manual_seed(5)
    written = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path / "rtmw.pth"
    torch.save({"meta": {"mmpose_version": "1.3.2", "epoch": 270}, "state_dict": written}, path)
    fresh = _small_rtmw()
    report = humanpose.load_checkpoint(fresh, path)
    assert report.ok
    assert all(torch.equal(fresh.state_dict()[k], written[k]) for k in written)
    del written["head.final_layer2.bn.weight"]
    torch.save({"meta": {}, "state_dict": written}, path)
    with pytest.raises(CheckpointError, match="final_layer2.bn.weight"):
        humanpose.load_checkpoint(_small_rtmw(), path)


def _rtmpose_t(joints: int, kset: str = ""):
    return humanpose.build_model(_cfg("coco/rtmpose/rtmpose_t_256x192", "MODEL.NUM_JOINTS",
                                      str(joints), "DATASET.KEYPOINT_SET", kset),
                                 channels_last=False)


def test_fine_tuning_from_17_to_21_points_loads_the_backbone_and_renews_the_head(tmp_path):
    source = _rtmpose_t(17)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in source.parameters():
            p.copy_(torch.randn_like(p))
    path = tmp_path / "body17.pth"
    torch.save({"meta": {}, "state_dict": source.state_dict()}, path)
    target = _rtmpose_t(21)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = init_from_weights(target, path, HEAD_PREFIXES["rtmpose"])
    own = target.state_dict()
    backbone = [k for k in own if k.startswith("backbone.")]
    assert set(report.loaded) == set(backbone)  # every backbone tensor, nothing of the head
    for k in backbone:
        assert torch.equal(own[k], source.state_dict()[k]), k
    head = [k for k in own if k.startswith("head.")]
    for k in head:  # the head keeps its fresh values, shape-compatible parts included
        assert torch.equal(own[k], before[k]), k
    reasons = dict(report.skipped)
    assert "other shape: [17, 384, 7, 7] in the file, [21, 384, 7, 7]" in \
        reasons["head.final_layer.weight"]
    assert reasons["head.cls_x.weight"].startswith("head re-initialised")
    assert set(report.fresh) == {k for k in head if not k.endswith("num_batches_tracked")}


def test_fine_tuning_with_the_same_points_loads_everything(tmp_path):
    source = _rtmpose_t(17)
    path = tmp_path / "w.pth"
    torch.save(source.state_dict(), path)
    report = init_from_weights(_rtmpose_t(17), path, HEAD_PREFIXES["rtmpose"])
    assert not report.skipped and not report.fresh
    assert len(report.loaded) == len(source.state_dict())


def test_fine_tuning_from_an_unrelated_file_says_nothing_fits(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(CheckpointError, match="no tensor fits"):
        init_from_weights(_rtmpose_t(21), path, HEAD_PREFIXES["rtmpose"])


def test_train_init_weights_logs_what_it_loaded_and_skipped(tmp_path, caplog, monkeypatch):
    """TRAIN.INIT_WEIGHTS in a real (tiny) training run: the log names the loaded modules
    and every skipped tensor with its reason; a missing file is named."""
    from humanpose.engine.train import _init_weights

    source = _rtmpose_t(17)
    path = tmp_path / "body17.pth"
    torch.save(source.state_dict(), path)
    monkeypatch.setattr(logging.getLogger("humanpose"), "propagate", True)  # training's own
    with caplog.at_level(logging.INFO, logger="humanpose"):
        _init_weights(_rtmpose_t(21), str(path), HEAD_PREFIXES["rtmpose"])
    text = caplog.text
    assert f"TRAIN.INIT_WEIGHTS {path}: loaded" in text and "backbone.stem" in text
    assert "skipped head.final_layer.weight: other shape" in text
    assert "skipped head.gau.uv.weight: head re-initialised" in text
    with pytest.raises(humanpose.errors.HumanposeError, match="missing.pth: no such file"):
        _init_weights(_rtmpose_t(21), str(tmp_path / "missing.pth"), ())


def test_a_zoo_name_as_init_weights_is_fetched_before_training(tmp_path, monkeypatch):
    """``TRAIN.INIT_WEIGHTS rtmpose-t``: the command line replaces the name with the
    verified file that the zoo fetches (the engine itself never reaches the network)."""
    from humanpose import cli, zoo

    fetched = tmp_path / "rtmpose-t.pth"
    fetched.write_bytes(b"")
    calls = []
    monkeypatch.setattr(zoo, "fetch_weights",
                        lambda name, progress=True: calls.append(name) or fetched)
    cfg = _cfg("coco/rtmpose/rtmpose_t_256x192", "TRAIN.INIT_WEIGHTS", "rtmpose-t")
    cli._fetch_init_weights(cfg)
    assert calls == ["rtmpose-t"] and cfg.TRAIN.INIT_WEIGHTS == str(fetched)
    cfg = _cfg("coco/rtmpose/rtmpose_t_256x192", "TRAIN.INIT_WEIGHTS", str(fetched))
    cli._fetch_init_weights(cfg)  # a file stays as it is
    assert calls == ["rtmpose-t"] and cfg.TRAIN.INIT_WEIGHTS == str(fetched)


def _spread(k: int, size: int) -> np.ndarray:
    """``k`` visible points on a grid over a ``size`` x ``size`` canvas, 12 px apart."""
    side = int(np.ceil(np.sqrt(k)))
    kp = np.zeros((k, 3), np.float32)
    kp[:, 0] = 20 + 12 * (np.arange(k) % side)
    kp[:, 1] = 20 + 12 * (np.arange(k) // side)
    kp[:, 2] = 1.0
    return kp


def test_drawing_133_points_colours_each_part_and_dots_the_face():
    from humanpose.data.keypoints import COCO_WHOLEBODY
    from humanpose.vis import PART_COLORS, draw_skeleton, style_for

    style = style_for(COCO_WHOLEBODY)
    assert len(style.joint_colors) == 133 and len(style.small_joints) == 133
    face = COCO_WHOLEBODY.part_ids("face")
    hand = COCO_WHOLEBODY.part_ids("left_hand")
    assert all(style.small_joints[i] for i in face + hand)
    assert not any(style.small_joints[i] for i in COCO_WHOLEBODY.part_ids("body"))
    assert {style.joint_colors[i] for i in hand} == {PART_COLORS["left_hand"]}
    assert {style.joint_colors[i] for i in COCO_WHOLEBODY.part_ids("foot")} == \
        {PART_COLORS["foot"]}
    canvas = np.zeros((220, 220, 3), np.uint8)
    kp = _spread(133, 220)
    draw_skeleton(canvas, kp, style, thickness=2)
    x, y = (int(v) for v in kp[face[10], :2])
    assert tuple(canvas[y, x]) == PART_COLORS["face"]
    # A small dot: 3 px from a face point is background (a body joint's disc reaches 3 px).
    assert not canvas[y, x + 3].any()
    bx, by = (int(v) for v in kp[5, :2])  # left shoulder: a ringed disc of radius 3
    assert tuple(canvas[by, bx]) == style.joint_colors[5]
    assert not (canvas[by, bx + 3] == style.joint_colors[5]).all()  # the black ring


def test_drawing_21_hand_points_uses_the_hand_colour_for_bones():
    from humanpose.data.keypoints import HAND21
    from humanpose.vis import PART_COLORS, draw_skeleton, style_for

    style = style_for(HAND21)
    assert style.limbs and set(style.limb_colors) == {PART_COLORS["left_hand"]}
    assert all(style.thin_limbs)
    canvas = np.zeros((120, 120, 3), np.uint8)
    kp = np.zeros((21, 3), np.float32)
    kp[:, 0] = np.linspace(10, 110, 21)
    kp[:, 1] = 60.0
    kp[:, 2] = 1.0
    a, b = style.limbs[0]
    kp[a, :2], kp[b, :2] = (20, 20), (100, 20)  # one long bone along y = 20
    draw_skeleton(canvas, kp, style, thickness=3)
    mid = canvas[19:22, 60].astype(int).max(axis=0)  # the bone, anti-aliased
    assert np.abs(mid - np.array(PART_COLORS["left_hand"])).max() <= 40
    assert not canvas[23, 60].any()  # thin: one pixel wide, whatever the thickness
