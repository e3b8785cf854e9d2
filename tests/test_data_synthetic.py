"""The synthetic data set: deterministic, COCO-valid, with realistic visibility and
detections, and the ``humanpose synth`` command."""

import json

import cv2
import numpy as np

from humanpose.cli import main
from humanpose.data.synthetic import SynthConfig, draw_scene, write_coco_set

from .test_data_common import SMALL


def test_deterministic_for_a_seed(tmp_path):
    a = write_coco_set(str(tmp_path / "a"), 3, 2, seed=4, cfg=SMALL)
    b = write_coco_set(str(tmp_path / "b"), 3, 2, seed=4, cfg=SMALL)
    c = write_coco_set(str(tmp_path / "c"), 3, 2, seed=5, cfg=SMALL)
    for key in ("train2017_annotations", "val2017_detections"):
        text = open(a[key]).read()
        assert text == open(b[key]).read() and text != open(c[key]).read()
    name = "train2017_scene_00001.jpg"
    assert (tmp_path / "a/images/train2017" / name).read_bytes() == \
        (tmp_path / "b/images/train2017" / name).read_bytes()


def test_annotations_are_valid_coco(tmp_path):
    paths = write_coco_set(str(tmp_path), 30, 2, seed=0, cfg=SMALL)
    data = json.load(open(paths["train2017_annotations"]))
    assert data["categories"][0]["keypoints"][1] == "left_eye"
    images = {im["id"]: im for im in data["images"]}
    assert all(not im["file_name"].startswith("0000") for im in images.values())
    per_image = np.bincount([a["image_id"] - min(images) for a in data["annotations"]])
    assert per_image.max() >= 2 and len(data["annotations"]) > 30  # several people
    vis_counts = np.zeros(3, int)
    for ann in data["annotations"]:
        im = images[ann["image_id"]]
        kpts = np.array(ann["keypoints"]).reshape(17, 3)
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= im["width"] and y + h <= im["height"]
        assert ann["area"] == round(0.6 * w * h, 2) and ann["iscrowd"] == 0
        assert ann["num_keypoints"] == (kpts[:, 2] > 0).sum() > 0
        assert (kpts[kpts[:, 2] == 0, :2] == 0).all()
        inside = kpts[kpts[:, 2] > 0]
        assert (inside[:, :2] >= 0).all() and (inside[:, 0] <= im["width"] - 1).all()
        assert (inside[:, 1] <= im["height"] - 1).all()
        vis_counts += np.bincount(kpts[:, 2].astype(int), minlength=3)
    assert (vis_counts >= 10).all()  # outside, occluded and visible joints all occur


def test_people_are_drawn_where_annotated(tmp_path):
    paths = write_coco_set(str(tmp_path), 4, 1, seed=0, cfg=SynthConfig(noise=0))
    data = json.load(open(paths["train2017_annotations"]))
    images = {im["id"]: im for im in data["images"]}
    for ann in data["annotations"]:
        image = cv2.imread(str(tmp_path / "images/train2017" / images[ann["image_id"]]
                               ["file_name"]))
        kpts = np.array(ann["keypoints"]).reshape(17, 3)
        hand = kpts[9] if kpts[9, 2] == 2 else kpts[10]
        if hand[2] == 2:  # a visible wrist is on an orange hand (BGR 0, 120, 255)
            b, g, r = image[int(round(hand[1])), int(round(hand[0]))].astype(int)
            assert r > 180 and r - b > 80, (b, g, r)


def test_a_pole_runs_top_to_bottom_and_hides_the_joints_behind_it():
    cfg = SynthConfig(occluder_prob=1.0, pole_share=1.0, noise=0.0, max_people=4)
    hidden = 0
    for seed in range(12):
        image, people = draw_scene(np.random.default_rng(seed), cfg)
        # The pole: the columns whose pixels are one colour from the top row to the bottom.
        flat = (image == image[:1]).all(axis=(0, 2))
        columns = np.flatnonzero(flat)
        assert len(columns) >= cfg.width // 16 - 1 or columns.max(initial=0) >= cfg.width - 2
        x0, x1 = columns.min(), columns.max()
        assert (columns == np.arange(x0, x1 + 1)).all()  # one band
        for person in people:
            joints = person.joints
            behind = (joints[:, 0] > x0 + 1) & (joints[:, 0] < x1 - 1) & \
                (joints[:, 1] >= 0) & (joints[:, 1] < cfg.height)
            assert (person.keypoints[behind, 2] == 1).all()
            hidden += int(behind.sum())
    assert hidden >= 5  # people did pass behind poles


def test_detections_look_like_a_detector(tmp_path):
    paths = write_coco_set(str(tmp_path), 2, 30, seed=0, cfg=SMALL)
    dets = json.load(open(paths["val2017_detections"]))
    scores = np.array([d["score"] for d in dets])
    assert {d["category_id"] for d in dets} == {1}
    assert (scores > 0.8).sum() > 20 and (scores < 0.3).sum() > 3
    assert all(len(d["bbox"]) == 4 and d["bbox"][2] > 1 for d in dets)


def test_synth_command(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "s"), "--train", "2", "--val", "1",
                 "--size", "128x96"]) == 0
    out = capsys.readouterr().out
    assert "person_keypoints_train2017.json" in out and "detections" in out
    image = next((tmp_path / "s/images/val2017").iterdir())
    assert cv2.imread(str(image)).shape == (96, 128, 3)
    assert main(["synth", str(tmp_path / "m"), "--format", "mpii", "--train", "1",
                 "--val", "1"]) == 0
    assert (tmp_path / "m/annot/gt_valid.mat").is_file()
