"""The model's key-point set travels with its weights: checkpoints, PoseEstimator, vis."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import humanpose
from humanpose.checkpoint import load_checkpoint, read_keypoint_set, with_keypoints
from humanpose.data.keypoints import COCO, MPII, custom_keypoint_set
from humanpose.errors import HumanposeError
from humanpose.inference.estimator import PoseEstimator, keypoint_set_for
from humanpose.vis import draw_results

from .test_data_common import write_small_coco

REPO = Path(__file__).resolve().parents[1]
LPN18 = REPO / "experiments" / "coco" / "lpn" / "lpn18_256x192_gd256x2_gc.yaml"
SMALL = ["MODEL.IMAGE_SIZE", "[48,64]", "MODEL.HEATMAP_SIZE", "[12,16]"]
# An OpenPose-named five-joint set: not COCO, not MPII.
FIVE = custom_keypoint_set(["Nose", "LWrist", "RWrist", "LAnkle", "RAnkle"],
                           skeleton=[(1, 2), (1, 3)])


def small_cfg(*opts):
    return humanpose.get_cfg(LPN18, [*SMALL, *opts])


@pytest.fixture(scope="module")
def five_joint_weights(tmp_path_factory):
    cfg = small_cfg("MODEL.NUM_JOINTS", "5")
    torch.manual_seed(0)
    model = humanpose.build_model(cfg)
    path = tmp_path_factory.mktemp("w") / "five.pth"
    torch.save(with_keypoints(model.state_dict(), FIVE), path)
    return cfg, model, path


def test_weights_file_carries_the_set_and_still_loads(five_joint_weights):
    cfg, model, path = five_joint_weights
    stored = read_keypoint_set(path)
    assert stored.names == FIVE.names and stored.flip_pairs == FIVE.flip_pairs == ((1, 2), (3, 4))
    assert stored.skeleton == FIVE.skeleton and np.allclose(stored.sigmas, FIVE.sigmas)
    other = humanpose.build_model(cfg)
    report = load_checkpoint(other, path)  # strict: the entry is not a weight
    assert report.ok
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    # the seed's way of loading test weights (strict=False) ignores the entry too
    other.load_state_dict(torch.load(path, weights_only=True), strict=False)


def test_estimator_uses_the_stored_set(five_joint_weights):
    cfg, _, path = five_joint_weights
    est = PoseEstimator(cfg, path, backend="torch", flip_test=True)
    assert est.keypoint_set.names == FIVE.names
    assert est.flip_pairs == [[1, 2], [3, 4]]
    people = est(np.zeros((64, 48, 3), np.uint8), np.array([[0, 0, 48, 64]]))
    assert people[0].keypoints.shape == (5, 3)
    # a stored set that disagrees with the config is refused naming the file
    with pytest.raises(HumanposeError, match="five.pth predicts 5 joints"):
        keypoint_set_for(small_cfg("MODEL.NUM_JOINTS", "6"), path)


def test_without_a_stored_set_the_config_decides(tmp_path):
    plain = tmp_path / "plain.pth"
    torch.save({"x": torch.zeros(1)}, plain)
    assert keypoint_set_for(small_cfg(), plain) == COCO  # DATASET.DATASET coco, 17 joints
    mpii = small_cfg("DATASET.DATASET", "mpii", "MODEL.NUM_JOINTS", "16")
    assert keypoint_set_for(mpii) == MPII
    # 16 joints of a COCO-format set are not MPII's: numbered, no guessed pairs
    sixteen = keypoint_set_for(small_cfg("MODEL.NUM_JOINTS", "16"))
    assert sixteen.names[0] == "joint_0" and sixteen.flip_pairs == ()
    assert keypoint_set_for(small_cfg("MODEL.NUM_JOINTS", "16", "DATASET.FLIP_PAIRS",
                                      "[[0, 1]]")).flip_pairs == ((0, 1),)
    # a COCO-format set under DATASET.ROOT names the joints
    root = tmp_path / "coco"
    write_small_coco(root, num_train=1, num_val=1)
    path = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(path.read_text())
    data["categories"][0]["keypoints"] = [n.replace("_", " ").title() for n in COCO.names]
    path.write_text(json.dumps(data))
    kp = keypoint_set_for(small_cfg("DATASET.ROOT", str(root), "DATASET.TEST_SET", "val2017"))
    assert kp.names[5] == "Left Shoulder" and kp.flip_pairs == COCO.flip_pairs


# ----------------------------------------------------------------------------- vis
def _results(tmp_path, k, categories=None, skeleton=()):
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    cv2.imwrite(str(images / "a.jpg"), np.full((60, 80, 3), 40, np.uint8))
    rng = np.random.default_rng(0)
    kpts = np.concatenate([rng.uniform(5, 55, (k, 2)), np.ones((k, 1))], axis=1)
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9,
                                    "keypoints": kpts.ravel().tolist()}]))
    category = {"id": 1, "name": "person"}
    if categories is not None:
        category.update(keypoints=categories, skeleton=[list(p) for p in skeleton])
    (tmp_path / "images.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [],
         "categories": [category]}))
    return results, images


@pytest.mark.parametrize("k", [5, 26])
def test_vis_draws_any_number_of_joints(tmp_path, k):
    results, images = _results(tmp_path, k)
    written = draw_results(results, images, tmp_path / "out")
    drawn = cv2.imread(str(written[0]))
    assert (drawn != 40).any(axis=2).sum() > 0  # the joints are there


def test_vis_uses_the_runs_set_and_checks_counts(tmp_path):
    names = list(FIVE.names)
    results, images = _results(tmp_path, 5, names, skeleton=[(1, 2)])
    written = draw_results(results, images, tmp_path / "out")
    with_limb = cv2.imread(str(written[0]))
    written = draw_results(results, images, tmp_path / "out2", keypoint_set=custom_keypoint_set(
        names, skeleton=[], flip_pairs=[]))
    without = cv2.imread(str(written[0]))
    assert (with_limb != without).any()  # the category's limb was drawn
    with pytest.raises(HumanposeError, match="5 joints per person but the key-point set has 17"):
        draw_results(results, images, tmp_path / "out3", keypoint_set=COCO)
