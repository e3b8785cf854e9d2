"""MPII in HRNet's json layout, 16 joints, with gt_valid.mat for PCKh."""

import json
import random
import shutil

import numpy as np
import pytest

from humanpose.data import DatasetError, MPIIDataset, build_dataset
from humanpose.data.keypoints import MPII
from humanpose.data.synthetic import write_mpii_set
from humanpose.evaluation import evaluate_pckh

from .test_data_common import SMALL, grey_levels, seed_sample


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpii")
    write_mpii_set(str(root), num_train=6, num_val=4, seed=2, cfg=SMALL)
    return root


@pytest.fixture
def root(pristine, tmp_path):
    dst = tmp_path / "mpii"
    shutil.copytree(pristine, dst)
    return dst


def mpii_cfg(root, *opts):
    from humanpose.config import get_cfg

    return get_cfg(None, ["DATASET.DATASET", "mpii", "DATASET.ROOT", str(root),
                          "MODEL.NUM_JOINTS", "16", "MODEL.IMAGE_SIZE", "[64, 64]",
                          "MODEL.HEATMAP_SIZE", "[16, 16]", *opts])


def test_records_follow_the_seed(root):
    ds = build_dataset(mpii_cfg(root), is_train=True)
    anno = json.loads((root / "annot" / "train.json").read_text())
    assert isinstance(ds, MPIIDataset) and len(ds) == len(anno) > 6
    for i, a in enumerate(anno):
        c = np.array(a["center"], dtype=np.float64)
        s = np.array([a["scale"], a["scale"]], dtype=np.float64)
        c[1] += 15 * s[1]
        s *= 1.25
        np.testing.assert_array_equal(ds.records.centers[i], c - 1)
        np.testing.assert_array_equal(ds.records.scales[i], s)
        np.testing.assert_array_equal(ds.records.joints[i, :, :2], np.array(a["joints"]) - 1)
        np.testing.assert_array_equal(ds.records.joints_vis[i, :, 0], a["joints_vis"])
        assert ds.records.image_files[i] == str(root / "images" / a["image"])
    assert ds.keypoints == MPII and ds.num_joints == 16
    assert ds.gt_valid_path == str(root / "annot" / "gt_valid.mat")


def test_train_sample_equals_the_seed(root):
    ds = build_dataset(mpii_cfg(root, "DATASET.PROB_HALF_BODY", "0.5"), is_train=True)
    for i in range(len(ds)):
        np.random.seed(i)
        random.seed(i)
        image, target, weight, meta = ds[i]
        r = ds.records
        exp = seed_sample(r.image_files[i], r.centers[i], r.scales[i], r.joints[i],
                          r.joints_vis[i], is_train=True, image_size=(64, 64),
                          heatmap_size=(16, 16), flip_pairs=[list(p) for p in MPII.flip_pairs],
                          upper_ids=MPII.upper_body_ids, prob_half_body=0.5, seed=i)
        np.testing.assert_array_equal(target.numpy(), exp[1])
        np.testing.assert_array_equal(weight.numpy(), exp[2])
        assert grey_levels(image, exp[0]) <= 1.0 + 1e-3


def test_gt_valid_scores_the_ground_truth_perfectly(root):
    ds = build_dataset(mpii_cfg(root), is_train=False)
    values = evaluate_pckh(ds.records.joints[:, :, :2], ds.gt_valid_path)
    assert values["Mean"] == pytest.approx(100.0)
    values = evaluate_pckh(ds.records.joints[:, :, :2] + 40, ds.gt_valid_path)
    assert values["Mean"] < 50


def test_test_set_has_no_joints(root):
    anno = json.loads((root / "annot" / "valid.json").read_text())
    for a in anno:
        del a["joints"], a["joints_vis"]
    (root / "annot" / "test.json").write_text(json.dumps(anno))
    ds = build_dataset(mpii_cfg(root, "DATASET.TEST_SET", "test"), is_train=False)
    assert len(ds) == len(anno) and not ds.records.joints_vis.any()
    assert ds[0][0].shape == (3, 64, 64)


def test_errors(root):
    with pytest.raises(DatasetError, match=r"16 key points.*MODEL\.NUM_JOINTS is 17"):
        build_dataset(mpii_cfg(root, "MODEL.NUM_JOINTS", "17"), is_train=True)
    anno = json.loads((root / "annot" / "train.json").read_text())
    anno[3]["joints"] = anno[3]["joints"][:15]
    (root / "annot" / "train.json").write_text(json.dumps(anno))
    with pytest.raises(DatasetError, match=r"train\.json: \[3\]\.joints: expected 16"):
        build_dataset(mpii_cfg(root), is_train=True)
    with pytest.raises(DatasetError, match=r"nope\.json"):
        build_dataset(mpii_cfg(root, "DATASET.TRAIN_SET", "nope"), is_train=True)
