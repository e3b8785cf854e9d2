"""COCO-WholeBody annotation files (the official field layout) and hand-only files: loading
into 133 (or 21) joints, errors on files without the part fields, per-part scoring, and
``humanpose train``/``test`` end to end on a tiny whole-body set."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from humanpose.cli import main
from humanpose.data import DatasetError, build_dataset
from humanpose.data.coco import annotation_file
from humanpose.data.keypoints import COCO, COCO_WHOLEBODY, HAND21
from humanpose.data.wholebody import WHOLEBODY_FIELDS
from humanpose.pose.evaluate import Predictions, score_predictions

from .conftest import REPO
from .test_data_common import data_cfg

WB = ("DATASET.KEYPOINT_SET", "coco_wholebody", "MODEL.NUM_JOINTS", "133")
PARTS = ("body", "foot", "face", "lefthand", "righthand", "wholebody")
# People per image: three images, five people; image size 320x240, people side by side.
PEOPLE = (2, 1, 2)
W, H = 320, 240


@contextlib.contextmanager
def logged(caplog, name: str, level: int):
    """caplog's handler on the logger ``name`` itself: a training run earlier in the same
    process sets the "humanpose" logger not to propagate to the root, where caplog listens."""
    logger = logging.getLogger(name)
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(level, logger=name):
            yield
    finally:
        logger.removeHandler(caplog.handler)


def _person(rng, image_id: int, ann_id: int, slot: int, invalid: str = "") -> dict:
    """One annotation in COCO-WholeBody's layout: the body in ``keypoints``, the parts in
    their fields; ``invalid`` names a part left unlabelled (zeros, valid False)."""
    x0 = 20 + 150 * slot
    box = [float(x0), 20.0, 120.0, 200.0]
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": box,
           "area": 0.6 * box[2] * box[3], "segmentation": []}
    for field, n in WHOLEBODY_FIELDS:
        pts = np.stack([rng.uniform(x0 + 5, x0 + 115, n).round(2),
                        rng.uniform(25, 215, n).round(2), np.full(n, 2.0)], axis=1)
        if field == "keypoints":
            pts[3, 2] = 1.0  # an occluded ear
            pts[4] = 0  # an unlabelled ear
        if field == "face_kpts":
            pts[::5, 2] = 0.9  # real files hold scores like these in some parts
        if field == invalid:
            pts[:] = 0
        ann[field] = pts.ravel().tolist()
    ann["num_keypoints"] = int(np.count_nonzero(np.asarray(ann["keypoints"])[2::3] > 0))
    for part, field in (("face", "face_kpts"), ("lefthand", "lefthand_kpts"),
                        ("righthand", "righthand_kpts"), ("foot", "foot_kpts")):
        ann[f"{part}_valid"] = field != invalid
    for part in ("face", "lefthand", "righthand"):
        ann[f"{part}_box"] = [0.0, 0.0, 0.0, 0.0] if invalid.startswith(part) else \
            [x0 + 10.0, 30.0, 30.0, 30.0]
    return ann


def write_wholebody(root: Path, seed: int = 0) -> None:
    """``annotations/coco_wholebody_{train,val}_v1.0.json`` and their images; some parts
    unlabelled (a left hand, a face, the feet)."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, image_set in (("train", "train2017"), ("val", "val2017")):
        folder = root / "images" / image_set
        folder.mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        invalid = iter(("lefthand_kpts", "", "face_kpts", "", "foot_kpts"))
        for i, count in enumerate(PEOPLE):
            name = f"{split}_{i:03d}.jpg"
            cv2.imwrite(str(folder / name), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
            images.append({"id": 100 + i, "file_name": name, "width": W, "height": H})
            for slot in range(count):
                anns.append(_person(rng, 100 + i, len(anns) + 1, slot, next(invalid)))
        data = {"images": images, "annotations": anns,
                "categories": [{"id": 1, "name": "person", "supercategory": "person",
                                "keypoints": list(COCO.names),
                                "skeleton": [list(p) for p in COCO.skeleton]}]}
        (root / "annotations" / f"coco_wholebody_{split}_v1.0.json").write_text(
            json.dumps(data))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wholebody")
    write_wholebody(root)
    return root


@pytest.fixture
def root(pristine, tmp_path) -> Path:
    dst = tmp_path / "wb"
    shutil.copytree(pristine, dst)
    return dst


def _ann_path(root: Path, split: str = "train") -> Path:
    return root / "annotations" / f"coco_wholebody_{split}_v1.0.json"


def _load(root: Path, split: str = "train") -> dict:
    return json.loads(_ann_path(root, split).read_text())


def _joined(ann: dict) -> np.ndarray:
    return np.array([x for f, _ in WHOLEBODY_FIELDS for x in ann[f]]).reshape(133, 3)


# ----------------------------------------------------------------------------- loading
@pytest.mark.parametrize("is_train", [True, False])
def test_parts_are_joined_in_mmpose_order(pristine, is_train):
    ds = build_dataset(data_cfg(pristine, *WB), is_train=is_train)
    split = "train" if is_train else "val"
    anns = _load(pristine, split)["annotations"]
    assert ds.annotation_file == str(_ann_path(pristine, split))
    assert ds.keypoints == COCO_WHOLEBODY and ds.num_joints == 133
    assert len(ds) == len(anns) == 5
    rec = ds.records
    for i, ann in enumerate(anns):
        expected = _joined(ann)
        np.testing.assert_array_equal(rec.joints[i, :, :2], expected[:, :2])
        # labelled is v > 0 (mmpose's rule), so a face point scored 0.9 weighs 1
        np.testing.assert_array_equal(rec.joints_vis[i, :, 0], expected[:, 2] > 0)
        # the offsets of the parts: body 0, foot 17, face 23, left hand 91, right hand 112
        for field, start in (("keypoints", 0), ("foot_kpts", 17), ("face_kpts", 23),
                             ("lefthand_kpts", 91), ("righthand_kpts", 112)):
            np.testing.assert_array_equal(rec.joints[i, start, :2], ann[field][:2])
        np.testing.assert_array_equal(rec.joints[i, 132, :2], ann["righthand_kpts"][-3:-1])
    assert rec.joints_vis[0, 91:112, 0].sum() == 0  # person 1's left hand is unlabelled
    assert rec.joints_vis[0, 3, 0] == 1 and rec.joints_vis[0, 4, 0] == 0  # the ears
    assert rec.joints_vis[0, 23, 0] == 1 and anns[0]["face_kpts"][2] == pytest.approx(0.9)
    _, target, weight, meta = ds[0]
    assert weight.shape[0] == 133 and target.shape[0] == 133


def test_the_official_file_is_preferred_to_cocos_own(root):
    # COCO's own file next to it (17 points, no part fields), as in mmpose's data/coco
    plain = _load(root, "val")
    for ann in plain["annotations"]:
        for field, _ in WHOLEBODY_FIELDS[1:]:
            del ann[field]
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(plain))
    assert annotation_file(str(root), "val2017", "coco_wholebody") == \
        str(_ann_path(root, "val"))
    assert annotation_file(str(root), "val2017").endswith("person_keypoints_val2017.json")
    assert build_dataset(data_cfg(root), is_train=False).num_joints == 17  # COCO as before


def test_a_file_without_a_part_field_is_refused(root):
    data = _load(root)
    for ann in data["annotations"]:
        del ann["face_kpts"]
    _ann_path(root).write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        build_dataset(data_cfg(root, *WB), is_train=True)
    text = str(err.value)
    assert str(_ann_path(root)) in text and "annotation id 1 " in text and "'face_kpts'" in text


def test_a_part_field_missing_from_one_annotation_is_unlabelled(root, caplog):
    data = _load(root)
    del data["annotations"][1]["righthand_kpts"]
    _ann_path(root).write_text(json.dumps(data))
    with logged(caplog, "humanpose.data.wholebody", logging.WARNING):
        ds = build_dataset(data_cfg(root, *WB), is_train=True)
    assert "1 part fields missing" in caplog.text and "id 2 'righthand_kpts'" in caplog.text
    assert ds.records.joints_vis[1, 112:, 0].sum() == 0
    assert ds.records.joints_vis[1, 91:112, 0].sum() == 21


def test_a_malformed_part_field_names_the_annotation(root):
    data = _load(root)
    data["annotations"][3]["foot_kpts"][4] = "1"
    _ann_path(root).write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"annotations\[3\]\.foot_kpts \(id 4\): "
                                           r"expected 18 numbers"):
        build_dataset(data_cfg(root, *WB), is_train=True)
    data["annotations"][3]["foot_kpts"][4] = 1.0
    data["annotations"][2]["lefthand_kpts"] = data["annotations"][2]["lefthand_kpts"][:60]
    _ann_path(root).write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"annotations\[2\]\.lefthand_kpts \(id 3\): "
                                           r"expected 63 numbers"):
        build_dataset(data_cfg(root, *WB), is_train=True)


def test_plain_coco_under_wholebody_and_wholebody_without_the_set(root):
    for split, image_set in (("train", "train2017"), ("val", "val2017")):
        data = _load(root, split)
        for ann in data["annotations"]:
            for field, _ in WHOLEBODY_FIELDS[1:]:
                del ann[field]
        _ann_path(root, split).unlink()
        (root / "annotations" / f"person_keypoints_{image_set}.json").write_text(
            json.dumps(data))
    with pytest.raises(DatasetError, match=r"person_keypoints_train2017\.json: annotation id "
                                           r"1 has no 'foot_kpts'"):
        build_dataset(data_cfg(root, *WB), is_train=True)


def test_wholebody_file_without_keypoint_set_says_how(root):
    # COCO's file name holding COCO-WholeBody's fields, and no DATASET.KEYPOINT_SET
    shutil.copy(_ann_path(root), root / "annotations" / "person_keypoints_train2017.json")
    with pytest.raises(DatasetError, match="has 17 key points per person but MODEL.NUM_JOINTS "
                                           "is 133 .*DATASET.KEYPOINT_SET coco_wholebody"):
        build_dataset(data_cfg(root, "MODEL.NUM_JOINTS", "133"), is_train=True)


# ----------------------------------------------------------------------------- hands
@pytest.mark.parametrize("named", [True, False])
def test_a_hand21_file_loads_trains_and_tests(tmp_path, named):
    """A hand-only COCO-format file (21 x 3 numbers in ``keypoints``), with or without joint
    names in its category: HAND21's names and sigmas, and flipping allowed in training (the
    set has no left/right joints; before, the missing flip pairs were an error)."""
    rng = np.random.default_rng(1)
    category = {"id": 1, "name": "hand"}
    if named:
        category["keypoints"] = list(HAND21.names)
    truth = {}
    for image_set in ("train2017", "val2017"):
        (tmp_path / "images" / image_set).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "images" / image_set / "h.jpg"),
                    rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
        pts = truth[image_set] = np.stack([rng.uniform(10, 80, 21), rng.uniform(10, 80, 21),
                                           np.full(21, 2.0)], 1)
        data = {"images": [{"id": 1, "file_name": "h.jpg", "width": 96, "height": 96}],
                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                                 "bbox": [8.0, 8.0, 76.0, 76.0], "area": 5000.0,
                                 "keypoints": pts.ravel().tolist(), "num_keypoints": 21}],
                "categories": [category]}
        (tmp_path / "annotations").mkdir(exist_ok=True)
        (tmp_path / "annotations" / f"person_keypoints_{image_set}.json").write_text(
            json.dumps(data))
    opts = ("DATASET.KEYPOINT_SET", "hand21", "MODEL.NUM_JOINTS", "21", "DATASET.FLIP", "True")
    train = build_dataset(data_cfg(tmp_path, *opts), is_train=True)
    test = build_dataset(data_cfg(tmp_path, *opts), is_train=False)
    for ds, image_set in ((train, "train2017"), (test, "val2017")):
        assert ds.keypoints == HAND21 and ds.num_joints == 21 and ds.fields == ("keypoints",)
        np.testing.assert_array_equal(ds.records.joints[0, :, :2], truth[image_set][:, :2])
    _, _, weight, _ = train[0]
    assert weight.shape[0] == 21


# ----------------------------------------------------------------------------- scoring
def _predictions(ds, noise: tuple[tuple[slice, float], ...] = (), seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    r = ds.records
    kpts = r.joints.copy()
    # The ground truth: unlabelled points (an unlabelled part) are not predicted (score 0)
    kpts[:, :, 2] = 0.9 * (r.joints_vis[:, :, 0] > 0)
    for joints, sd in noise:
        kpts[:, joints, :2] += rng.normal(0, sd, kpts[:, joints, :2].shape)
    return Predictions(kpts.astype(np.float32), r.centers.astype(np.float64),
                       r.scales.astype(np.float64), r.scores, r.image_ids, np.arange(len(r)))


def test_scoring_per_part_equal_and_perturbed(pristine, tmp_path, caplog):
    cfg = data_cfg(pristine, *WB)
    ds = build_dataset(cfg, is_train=False)
    with logged(caplog, "humanpose", logging.INFO):
        values, main_value, main_name = score_predictions(cfg, ds, _predictions(ds),
                                                          tmp_path / "exact", "rtmpose")
    assert main_name == "wholebody AP" and main_value == pytest.approx(1.0)
    for part in PARTS[1:]:
        assert values[f"{part} AP"] == pytest.approx(1.0)
        assert values[f"{part} AR"] == pytest.approx(1.0)
    assert values["AP"] == pytest.approx(1.0) and "body AP" not in values  # COCO's names
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count("| Arch | AP | Ap .5 | AP .75 | AP (M) | AP (L) | AR | AR .5 | AR .75 "
                       "| AR (M) | AR (L) |") == 1
    assert "| Arch | Part | AP | Ap .5 | AP .75 | AP (M) | AP (L) | AR | AR .5 | AR .75 | " \
           "AR (M) | AR (L) |" in lines
    for part in PARTS:
        assert any(line.startswith(f"| rtmpose | {part} | 1.000 |") for line in lines), part
    metrics = json.loads((tmp_path / "exact" / "metrics.json").read_text())
    assert metrics["metric"] == "wholebody AP" and metrics["foot AP"] == pytest.approx(1.0)
    # the official results layout: per person the five fields, x, y, score flat
    results = json.loads((tmp_path / "exact" / "results" /
                          "keypoints_val2017_results_0.json").read_text())
    assert len(results) == 5
    for r in results:
        assert r["category_id"] == 1 and 0 < r["score"] <= 1
        assert {f: len(r[f]) for f, _ in WHOLEBODY_FIELDS} == \
            {f: 3 * n for f, n in WHOLEBODY_FIELDS}
    gt = {a["image_id"]: a for a in _load(pristine, "val")["annotations"]}
    first = next(r for r in results if r["image_id"] == 101)  # the image with one person
    np.testing.assert_allclose(first["face_kpts"][0::3], gt[101]["face_kpts"][0::3],
                               atol=1e-4)

    # Face and hands moved by a few pixels: those parts and the whole body lose AP,
    # body and feet keep theirs.
    moved, main_moved, _ = score_predictions(
        cfg, ds, _predictions(ds, ((slice(23, 133), 6.0),)), tmp_path / "moved", "rtmpose")
    assert moved["AP"] == pytest.approx(1.0) and moved["foot AP"] == pytest.approx(1.0)
    for part in ("face", "lefthand", "righthand"):
        assert moved[f"{part} AP"] < 0.5, part
    assert main_moved < 1.0 and main_moved == moved["wholebody AP"]


# ----------------------------------------------------------------------------- end to end
def test_train_and_test_commands_print_the_parts(pristine, tmp_path, capsys):
    cfg_file = REPO / "humanpose" / "configs" / "demo_lpn_synthetic.yaml"
    small = ["MODEL.EXTRA.NUM_LAYERS", "18", "MODEL.EXTRA.BLOCK_GROUPS", "depthwise",
             "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]",
             "TRAIN.BATCH_SIZE_PER_GPU", "4", "TEST.BATCH_SIZE_PER_GPU", "8", "WORKERS", "0",
             "TRAIN.AMP", "none", "TEST.FLIP_TEST", "False", *WB,
             "DATASET.ROOT", str(pristine), "OUTPUT_DIR", str(tmp_path / "output"),
             "LOG_DIR", str(tmp_path / "log")]
    assert main(["train", "--cfg", str(cfg_file), *small, "TRAIN.END_EPOCH", "1",
                 "TRAIN.MAX_STEPS_PER_EPOCH", "1"]) == 0
    out = tmp_path / "output" / "coco" / "lpn" / "demo_lpn_synthetic"
    metrics = json.loads((out / "metrics.json").read_text())  # the validation's
    assert metrics["metric"] == "wholebody AP" and "righthand AR" in metrics
    capsys.readouterr()
    assert main(["test", "--cfg", str(cfg_file), *small,
                 "TEST.MODEL_FILE", str(out / "model_best.pth")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("wholebody AP ")
    assert any(line.startswith("| Arch | AP | Ap .5 | AP .75") for line in lines)
    assert any(line.startswith("| Arch | Part | AP |") for line in lines)
    for part in PARTS:
        assert any(line.startswith(f"| lpn | {part} | ") for line in lines), part
