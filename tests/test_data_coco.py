"""COCO-format records: ground truth, detections, custom key-point sets, malformed files."""

import json
import shutil

import numpy as np
import pytest

from humanpose.data import DatasetError, build_dataset
from humanpose.data.keypoints import COCO
from humanpose.data.topdown import select_data

from .test_data_common import data_cfg, seed_box_to_cs, seed_clean_box, write_small_coco


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_pristine")
    write_small_coco(root, num_train=6, num_val=4, seed=5)
    return root


@pytest.fixture
def root(pristine, tmp_path):
    """A private copy that a test may edit."""
    dst = tmp_path / "coco"
    shutil.copytree(pristine, dst)
    return dst


def ann_path(root, image_set="train2017"):
    return root / "annotations" / f"person_keypoints_{image_set}.json"


def load(root, image_set="train2017"):
    return json.loads(ann_path(root, image_set).read_text())


def save(root, data, image_set="train2017"):
    ann_path(root, image_set).write_text(json.dumps(data))


def test_ground_truth_records_follow_the_seed(root):
    data = load(root)
    # an annotation hanging off the image and one degenerate box
    data["annotations"][0]["bbox"] = [-10.0, -5.0, 60.0, 300.0]
    data["annotations"][1]["bbox"] = [500.0, 10.0, 20.0, 20.0]  # right of a 160 px image
    data["annotations"].append(dict(data["annotations"][2], id=999, iscrowd=1))
    save(root, data)
    ds = build_dataset(data_cfg(root), is_train=True)
    images = {im["id"]: im for im in data["images"]}
    expected = []
    for ann in data["annotations"]:
        im = images[ann["image_id"]]
        box = seed_clean_box(ann["bbox"], im["width"], im["height"])
        if ann["iscrowd"] or box is None or max(ann["keypoints"]) == 0:
            continue
        expected.append((ann, im, *seed_box_to_cs(box, 48 / 64)))
    assert len(ds) == len(expected) == len(data["annotations"]) - 2
    rec = ds.records
    for i, (ann, im, center, scale) in enumerate(expected):
        assert rec.image_files[i] == str(root / "images" / "train2017" / im["file_name"])
        assert rec.image_ids[i] == ann["image_id"]
        np.testing.assert_array_equal(rec.centers[i], center)
        np.testing.assert_array_equal(rec.scales[i], scale)
        kpts = np.array(ann["keypoints"]).reshape(17, 3)
        np.testing.assert_array_equal(rec.joints[i, :, :2], kpts[:, :2])
        np.testing.assert_array_equal(rec.joints_vis[i, :, 0], np.minimum(kpts[:, 2], 1))
    assert ds.keypoints == COCO and ds.num_joints == 17
    assert ds.coco is None  # training sets do not keep the index
    test = build_dataset(data_cfg(root), is_train=False)
    assert test.coco.getImgIds() == [im["id"] for im in load(root, "val2017")["images"]]


def test_file_names_are_used_not_ids(root):
    ds = build_dataset(data_cfg(root), is_train=True)
    _, _, _, meta = ds[0]
    assert meta["image"].endswith(".jpg") and "_scene_" in meta["image"]
    assert meta["image_id"] == load(root)["annotations"][0]["image_id"]


def test_people_without_key_points_are_skipped_in_training(root):
    data = load(root)
    n = len(data["annotations"])
    data["annotations"][0]["keypoints"] = [0] * 51
    data["annotations"][0]["num_keypoints"] = 0
    del data["annotations"][1]["keypoints"]
    save(root, data)
    assert len(build_dataset(data_cfg(root), is_train=True)) == n - 2


def test_select_data_keeps_people_centred_in_their_box(root):
    ds = build_dataset(data_cfg(root), is_train=True)
    rec = ds.records
    rec.centers[0] += 1000.0  # joints far from the centre
    keep = select_data(rec)
    assert len(keep) < len(rec)
    kept = []
    for i in range(len(rec)):  # the seed's test, person by person
        vis = rec.joints_vis[i, :, 0] > 0
        if not vis.any():
            continue
        joints_center = rec.joints[i, vis, :2].mean(axis=0)
        area = rec.scales[i, 0] * rec.scales[i, 1] * 200 ** 2
        ks = np.exp(-np.sum((joints_center - rec.centers[i]) ** 2) / (0.2 ** 2 * 2.0 * area))
        if ks > (0.2 / 16) * vis.sum() + 0.45 - 0.2 / 16:
            kept.append(i)
    assert 0 not in kept
    np.testing.assert_array_equal(keep.centers, rec.centers[kept])
    cfg = data_cfg(root, "DATASET.SELECT_DATA", "True")
    assert len(build_dataset(cfg, is_train=True)) <= len(ds)


# ----------------------------------------------------------------------------- detections
def test_detection_boxes_filtered_by_image_thre(root):
    image = load(root, "val2017")["images"][0]
    dets = [
        {"image_id": image["id"], "category_id": 1, "bbox": [10, 20, 30, 60], "score": 0.95},
        {"image_id": image["id"], "category_id": 1, "bbox": [5, 5, 50, 40], "score": 0.1},
        {"image_id": image["id"], "category_id": 1, "bbox": [5, 5, 50, 40], "score": 0.09},
        {"image_id": image["id"], "category_id": 2, "bbox": [5, 5, 50, 40], "score": 0.9},
        {"image_id": 123456789, "category_id": 1, "bbox": [5, 5, 50, 40], "score": 0.9},
    ]
    det_file = root / "dets.json"
    det_file.write_text(json.dumps(dets))
    cfg = data_cfg(root, "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", det_file,
                   "TEST.IMAGE_THRE", "0.1")
    ds = build_dataset(cfg, is_train=False)
    assert len(ds) == 2
    for i, det in enumerate(dets[:2]):
        center, scale = seed_box_to_cs(det["bbox"], 48 / 64)  # not clipped
        np.testing.assert_array_equal(ds.records.centers[i], center)
        np.testing.assert_array_equal(ds.records.scales[i], scale)
        _, _, weight, meta = ds[i]
        assert meta["score"] == det["score"] and meta["image_id"] == image["id"]
        assert meta["image"].endswith(image["file_name"])
        assert (meta["joints_vis"][:, :2] == 1).all() and weight.shape == (17, 1)
    cfg = data_cfg(root, "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", det_file,
                   "TEST.IMAGE_THRE", "0.5")
    assert len(build_dataset(cfg, is_train=False)) == 1


def test_synthetic_detection_file_loads(root):
    det_file = root / "person_detection_results" / "COCO_val2017_detections_synthetic.json"
    cfg = data_cfg(root, "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", det_file)
    ds = build_dataset(cfg, is_train=False)
    scores = [d["score"] for d in json.loads(det_file.read_text()) if d["score"] >= 0.1]
    assert len(ds) == len(scores) > 0
    image, target, weight, meta = ds[len(ds) - 1]
    assert image.shape == (3, 64, 48) and target.shape == (17, 16, 12)


def test_missing_detection_file_names_the_key(root):
    cfg = data_cfg(root, "TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", root / "none.json")
    with pytest.raises(DatasetError, match=r"TEST\.COCO_BBOX_FILE.*|none\.json"):
        build_dataset(cfg, is_train=False)
    cfg = data_cfg(root, "TEST.USE_GT_BBOX", "False")
    with pytest.raises(DatasetError, match=r"TEST\.COCO_BBOX_FILE"):
        build_dataset(cfg, is_train=False)


# ----------------------------------------------------------------------------- custom sets
def write_custom(root, names, pick, skeleton=()):
    """Turn the synthetic COCO set into a set of the COCO joints ``pick``, renamed."""
    for image_set in ("train2017", "val2017"):
        data = load(root, image_set)
        data["categories"][0]["keypoints"] = list(names)
        data["categories"][0]["skeleton"] = [list(p) for p in skeleton]
        for ann in data["annotations"]:
            kpts = np.array(ann["keypoints"]).reshape(17, 3)[list(pick)]
            ann["keypoints"] = kpts.ravel().tolist()
            ann["num_keypoints"] = int((kpts[:, 2] > 0).sum())
        save(root, data, image_set)


def test_custom_key_point_set(root):
    names = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
    write_custom(root, names, [0, 9, 10, 15, 16], skeleton=[(1, 2), (1, 3)])
    cfg = data_cfg(root, "MODEL.NUM_JOINTS", "5")
    ds = build_dataset(cfg, is_train=True)
    kp = ds.keypoints
    assert kp.names == tuple(names) and ds.num_joints == 5
    assert kp.flip_pairs == ((1, 2), (3, 4))  # from left_/right_
    assert kp.skeleton == ((1, 2), (1, 3))
    assert kp.upper_body_ids == (0, 1, 2)  # head, hands
    assert len(kp.sigmas) == 5 and kp.sigmas[0] == pytest.approx(0.6)
    image, target, weight, meta = ds[0]
    assert target.shape == (5, 16, 12) and weight.shape == (5, 1) and meta["joints"].shape == (5, 3)
    # sigmas and flip pairs from the config
    cfg = data_cfg(root, "MODEL.NUM_JOINTS", "5", "DATASET.SIGMAS",
                   "[0.03, 0.05, 0.05, 0.09, 0.09]", "DATASET.FLIP_PAIRS", "[[3, 4]]")
    kp = build_dataset(cfg, is_train=False).keypoints
    assert kp.sigmas == (0.3, 0.5, 0.5, 0.9, 0.9) and kp.flip_pairs == ((3, 4),)


def test_custom_set_with_coco_names_uses_coco_sigmas(root):
    names = ["nose", "left_wrist", "right_wrist"]
    write_custom(root, names, [0, 9, 10])
    kp = build_dataset(data_cfg(root, "MODEL.NUM_JOINTS", "3"), is_train=True).keypoints
    assert kp.sigmas == (COCO.sigmas[0], COCO.sigmas[9], COCO.sigmas[10])
    assert kp.flip_pairs == ((1, 2),)


def test_key_point_count_must_match_the_model(root):
    write_custom(root, ["a", "b", "c", "d"], [0, 1, 2, 3])
    with pytest.raises(DatasetError, match=r"4 key points.*MODEL\.NUM_JOINTS is 17") as err:
        build_dataset(data_cfg(root), is_train=True)
    assert "person_keypoints_train2017.json" in str(err.value)


def test_bad_config_flip_pairs_and_sigmas(root):
    with pytest.raises(DatasetError, match="FLIP_PAIRS"):
        build_dataset(data_cfg(root, "DATASET.FLIP_PAIRS", "[[1, 40]]"), is_train=True)
    with pytest.raises(DatasetError, match="FLIP_PAIRS"):
        build_dataset(data_cfg(root, "DATASET.FLIP_PAIRS", "[[1, 2], [2, 1]]"), is_train=True)
    with pytest.raises(DatasetError, match="SIGMAS has 2 values"):
        build_dataset(data_cfg(root, "DATASET.SIGMAS", "[0.01, 0.02]"), is_train=True)
    with pytest.raises(DatasetError, match="pycocotools' scale"):  # KeypointSet units given
        build_dataset(data_cfg(root, "DATASET.SIGMAS", str([0.6] * 17)), is_train=True)


# ----------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("edit, field", [
    (lambda d: d["annotations"][1].pop("bbox"), r"annotations\[1\]\.bbox"),
    (lambda d: d["annotations"][0].__setitem__("keypoints", [1, 2, 3]),
     r"annotations\[0\]\.keypoints: expected 51 numbers"),
    (lambda d: d["annotations"][0].__setitem__("image_id", -7), r"annotations\[0\]\.image_id"),
    (lambda d: d["images"][2].pop("file_name"), r"images\[2\]\.file_name"),
    (lambda d: d["images"][0].__setitem__("width", "wide"), r"images\[0\]\.width"),
    (lambda d: d.pop("categories"), "categories"),
    (lambda d: d["categories"][0].__setitem__("keypoints", "nose"), r"categories\[0\]\.keypoints"),
])
def test_malformed_annotations_name_file_and_field(root, edit, field):
    data = load(root)
    edit(data)
    save(root, data)
    with pytest.raises(DatasetError, match=field) as err:
        build_dataset(data_cfg(root), is_train=True)
    assert str(ann_path(root)) in str(err.value)


def test_invalid_json_names_the_file(root):
    ann_path(root).write_text('{"images": [')
    with pytest.raises(DatasetError, match="not valid JSON") as err:
        build_dataset(data_cfg(root), is_train=True)
    assert str(ann_path(root)) in str(err.value)


def test_missing_paths_name_the_config_key(root, tmp_path):
    with pytest.raises(DatasetError, match=r"DATASET\.ROOT") as err:
        build_dataset(data_cfg(tmp_path / "nowhere"), is_train=True)
    assert "nowhere" in str(err.value)
    with pytest.raises(DatasetError, match=r"person_keypoints_train2014\.json.*DATASET"):
        build_dataset(data_cfg(root, "DATASET.TRAIN_SET", "train2014"), is_train=True)
    shutil.rmtree(root / "images" / "train2017")
    with pytest.raises(DatasetError, match=r"image folder not found.*train2017"):
        build_dataset(data_cfg(root), is_train=True)
    with pytest.raises(DatasetError, match=r"DATASET\.DATASET 'lsp'"):
        build_dataset(data_cfg(root, "DATASET.DATASET", "lsp"), is_train=True)


def test_boxes_one_pixel_wide_or_high_are_dropped_and_counted(root, caplog):
    data = load(root)
    n = len(build_dataset(data_cfg(root), is_train=True))
    data["annotations"][0]["bbox"][2] = 1.0  # one pixel wide
    data["annotations"][1]["bbox"][3] = 0.5  # half a pixel high
    save(root, data)
    with caplog.at_level("INFO"):
        ds = build_dataset(data_cfg(root), is_train=True)
    assert len(ds) == n - 2
    assert "dropped 2 degenerate boxes" in caplog.text
    det_file = root / "person_detection_results" / "COCO_val2017_detections_synthetic.json"
    dets = json.loads(det_file.read_text())
    opts = ("TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", str(det_file),
            "TEST.IMAGE_THRE", "0.0")
    n = len(build_dataset(data_cfg(root, *opts), is_train=False))
    dets[0]["bbox"][2] = 1.0
    dets[1]["bbox"][3] = 0.0
    det_file.write_text(json.dumps(dets))
    caplog.clear()
    with caplog.at_level("INFO"):
        assert len(build_dataset(data_cfg(root, *opts), is_train=False)) == n - 2
    assert "dropped 2 boxes of width or height <= 1" in caplog.text
