"""Joint names in other conventions (AIC, OpenPose, COCO): sides, flip pairs, OKS sigmas, and
the config's key-point overrides."""

import json
import random
import shutil

import numpy as np
import pytest

from humanpose.config import ConfigError, get_cfg
from humanpose.data import DatasetError, build_dataset
from humanpose.data.keypoints import (
    COCO,
    COCO_NAMES,
    MPII,
    KeypointSetError,
    custom_keypoint_set,
    flip_pairs_from_names,
    keypoint_set_from_dict,
    keypoint_set_to_dict,
    normalize_name,
    split_side,
)

from .test_data_common import data_cfg, write_small_coco

# The real AIC challenge's 14 joints, in its order and Title-case spelling.
AIC = ["Right Shoulder", "Right Elbow", "Right Wrist", "Left Shoulder", "Left Elbow",
       "Left Wrist", "Right Hip", "Right Knee", "Right Ankle", "Left Hip", "Left Knee",
       "Left Ankle", "Head top", "Neck"]
# The same joints as COCO spells them (head top and neck have no COCO namesake).
AIC_AS_COCO = ["right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
               "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
               "left_ankle", "head_top", "neck"]
# OpenPose's COCO-18 body joints.
OPENPOSE = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
            "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar"]
OPENPOSE_AS_COCO = ["nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
                    "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
                    "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
                    "left_eye", "right_ear", "left_ear"]


@pytest.mark.parametrize("name", ["left_shoulder", "Left Shoulder", "left-shoulder",
                                  "LShoulder", "l_shoulder", "shoulder_left", "L_Shoulder",
                                  "leftShoulder", "LEFT_SHOULDER", "Lt Shoulder", "shoulder_l",
                                  "shoulder.L", "ShoulderLeft"])
def test_left_shoulder_in_every_spelling(name):
    assert split_side(name) == ("left", "shoulder")
    assert normalize_name(name) == "left_shoulder"


@pytest.mark.parametrize("name, expected", [
    ("Head top", ("", "head_top")), ("Neck", ("", "neck")), ("pelvis", ("", "pelvis")),
    ("thorax", ("", "thorax")), ("lower_lip", ("", "lower_lip")), ("leg", ("", "leg")),
    ("rib", ("", "rib")), ("R", ("", "r")), ("upper_neck", ("", "upper_neck")),
    ("L5", ("", "l_5")), ("spine_L1", ("", "spine_l_1")), ("l", ("", "l")),
    ("RBigToe", ("right", "big_toe")), ("rt_knee", ("right", "knee")),
    ("Right Shoulder", ("right", "shoulder")), ("REye", ("right", "eye")),
])
def test_no_false_sides(name, expected):
    assert split_side(name) == expected


def _by_canonical(names, canonical, keypoints):
    """The set's flip pairs and sigmas keyed by canonical joint names (order-free)."""
    pairs = {frozenset((canonical[a], canonical[b])) for a, b in keypoints.flip_pairs}
    sigmas = dict(zip(canonical, keypoints.sigmas))
    return pairs, sigmas


@pytest.mark.parametrize("names, canonical", [(AIC, AIC_AS_COCO), (OPENPOSE, OPENPOSE_AS_COCO)])
def test_conventions_give_coco_pairs_and_sigmas(names, canonical):
    styled = custom_keypoint_set(names)
    plain = custom_keypoint_set(canonical)
    assert _by_canonical(names, canonical, styled) == _by_canonical(canonical, canonical, plain)
    coco_sigma = dict(zip(COCO_NAMES, COCO.sigmas))
    for name, sigma in zip(canonical, styled.sigmas):
        assert sigma == coco_sigma.get(name, 0.6), name
    # every sided joint is paired, with its own mirror
    sided = [i for i, n in enumerate(canonical) if n.startswith(("left_", "right_"))]
    assert sorted(j for p in styled.flip_pairs for j in p) == sided
    for a, b in styled.flip_pairs:
        assert canonical[a].split("_", 1)[1] == canonical[b].split("_", 1)[1]


def test_aic_pairs_and_shoulder_sigma():
    kp = custom_keypoint_set(AIC)
    assert set(kp.flip_pairs) == {(0, 3), (1, 4), (2, 5), (6, 9), (7, 10), (8, 11)}
    assert kp.sigmas[0] == kp.sigmas[3] == COCO.sigmas[COCO_NAMES.index("left_shoulder")]


def test_coco_names_give_coco_pairs():
    assert [tuple(p) for p in flip_pairs_from_names(COCO_NAMES)] == list(COCO.flip_pairs)
    assert [tuple(p) for p in flip_pairs_from_names(MPII.names)] == list(MPII.flip_pairs)


def test_missing_partner_is_named():
    names = ["Nose", "LShoulder", "RShoulder", "LWrist", "Neck"]
    with pytest.raises(KeypointSetError, match=r"\['LWrist'\].*DATASET\.FLIP_PAIRS"):
        flip_pairs_from_names(names)
    # an explicit pair list (even empty) is taken as given
    assert custom_keypoint_set(names, flip_pairs=[]).flip_pairs == ()


def test_dict_round_trip():
    kp = custom_keypoint_set(AIC, skeleton=[(13, 14), (14, 1)])
    back = keypoint_set_from_dict(json.loads(json.dumps(keypoint_set_to_dict(kp))))
    assert back.names == kp.names and back.flip_pairs == kp.flip_pairs
    assert back.skeleton == kp.skeleton and np.allclose(back.sigmas, kp.sigmas)
    assert keypoint_set_to_dict(kp)["skeleton"] == [[12, 13], [13, 0]]  # 0-based
    assert keypoint_set_to_dict(COCO)["sigmas"][0] == pytest.approx(0.026)  # pycocotools'
    assert keypoint_set_from_dict(keypoint_set_to_dict(COCO)) is COCO
    assert keypoint_set_from_dict(keypoint_set_to_dict(MPII)) is MPII


# ----------------------------------------------------------------------------- data sets
@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_names")
    write_small_coco(root, num_train=4, num_val=2, seed=3)
    return root


def _rename(root, names):
    """The synthetic COCO set with its 17 joints renamed (same order, same labels)."""
    for image_set in ("train2017", "val2017"):
        path = root / "annotations" / f"person_keypoints_{image_set}.json"
        data = json.loads(path.read_text())
        data["categories"][0]["keypoints"] = list(names)
        data["categories"][0]["skeleton"] = []
        path.write_text(json.dumps(data))


OPENPOSE17 = ["Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow",
              "RElbow", "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle"]
AIC17 = [n.replace("_", " ").title() for n in COCO_NAMES]


@pytest.mark.parametrize("names", [OPENPOSE17, AIC17])
def test_renamed_coco_set_gives_cocos_pairs_sigmas_and_samples(pristine, tmp_path, names):
    root = tmp_path / "coco"
    shutil.copytree(pristine, root)
    reference = build_dataset(data_cfg(pristine), is_train=True)
    _rename(root, names)
    ds = build_dataset(data_cfg(root), is_train=True)
    assert ds.keypoints.flip_pairs == COCO.flip_pairs
    assert ds.keypoints.sigmas == COCO.sigmas
    flips = 0
    for seed in range(6):  # training draws include flips: the labels must swap as COCO's
        np.random.seed(seed)
        random.seed(seed)
        _, target_ref, _, meta_ref = reference[1]
        np.random.seed(seed)
        random.seed(seed)
        _, target, _, meta = ds[1]
        assert meta["flipped"] == meta_ref["flipped"]
        assert np.array_equal(target, target_ref)
        flips += int(meta["flipped"])
    assert 0 < flips < 6


def test_flip_without_pairs_fails_naming_the_set(pristine, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(pristine, root)
    _rename(root, [f"kp{i}" for i in range(17)])
    with pytest.raises(DatasetError, match=r"person_keypoints_train2017\.json.*DATASET\.FLIP_"
                                           r"PAIRS \[\]"):
        build_dataset(data_cfg(root), is_train=True)
    assert build_dataset(data_cfg(root, "DATASET.FLIP_PAIRS", "[]"),
                         is_train=True).keypoints.flip_pairs == ()
    assert build_dataset(data_cfg(root, "DATASET.FLIP", "False"), is_train=True)
    # a sided joint without its mirror fails naming it
    _rename(root, ["nose", "left_eye"] + [f"kp{i}" for i in range(15)])
    with pytest.raises(KeypointSetError, match="left_eye"):
        build_dataset(data_cfg(root), is_train=True)


def test_config_overrides(pristine):
    sigmas = [round(0.01 + 0.005 * i, 3) for i in range(17)]
    cfg = data_cfg(pristine, "DATASET.FLIP_PAIRS", "[[1, 2], [5, 6]]", "DATASET.SIGMAS",
                   str(sigmas), "DATASET.SKELETON", "[[0, 1], [0, 2]]")
    kp = build_dataset(cfg, is_train=True).keypoints
    assert kp.flip_pairs == ((1, 2), (5, 6))
    assert np.allclose(np.asarray(kp.sigmas) / 10, sigmas)  # pycocotools' scale in the config
    assert kp.skeleton == ((1, 2), (1, 3))  # 1-based inside, as in COCO files
    from humanpose.evaluation.nms import oks_sigmas

    assert np.allclose(oks_sigmas(kp), sigmas)
    # defaults mean "derive"; YAML null too; [] is kept as given
    assert get_cfg().DATASET.FLIP_PAIRS is None
    assert get_cfg(None, ["DATASET.FLIP_PAIRS", "[]"]).DATASET.FLIP_PAIRS == []
    assert get_cfg(None, ["DATASET.SKELETON", "None"]).DATASET.SKELETON is None
    with pytest.raises(ConfigError, match="DATASET.SIGMAS expects a list"):
        get_cfg(None, ["DATASET.SIGMAS", "0.5"])
