"""`humanpose demo` with its detector part: pose AP with ground-truth and detected boxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from humanpose.cli import main
from humanpose.demo import DemoResult, split_opts
from tests.test_detection import TINY

POSE_SMALL = ["MODEL.EXTRA.NUM_LAYERS", "18", "MODEL.EXTRA.BLOCK_GROUPS", "depthwise",
              "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]",
              "TRAIN.BATCH_SIZE_PER_GPU", "4", "TEST.BATCH_SIZE_PER_GPU", "8", "WORKERS", "0",
              "TRAIN.AMP", "none", "TRAIN.END_EPOCH", "1", "TRAIN.MAX_STEPS_PER_EPOCH", "2"]
DETECTOR_SMALL = [f"DETECTOR.{v}" if i % 2 == 0 else v for i, v in enumerate(
    [*TINY, "TRAIN.END_EPOCH", "1", "TRAIN.MAX_STEPS_PER_EPOCH", "2"])]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is as fast, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def value(line: str, label: str) -> float:
    assert line.startswith(label + " "), line
    number = float(line[len(label):])
    assert 0.0 <= number <= 1.0
    return number


def test_demo_with_detector(tmp_path, capsys):
    """The whole demo, shrunk: pose model, detector, pose test on the detected boxes."""
    # TEST.IMAGE_THRE 0: a detector trained for two steps scores every box low; the pose
    # test on its boxes must run all the same.
    rc = main(["demo", "--workdir", str(tmp_path), "--train", "4", "--val", "2",
               "--detector-train", "3", *POSE_SMALL, "TEST.IMAGE_THRE", "0.0", *DETECTOR_SMALL])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    gt_ap = value(out[-1], "AP")  # the last line, as before the detector came
    assert out[-2].startswith("=> demo finished in")
    assert value(out[-5], "pose AP (ground-truth boxes)") == gt_ap
    value(out[-4], "box AP (detector)")
    value(out[-3], "pose AP (detected boxes)")
    detector_dir = tmp_path / "output" / "coco" / "person_detector" / "demo_detector_synthetic"
    boxes = detector_dir / "results" / "detections_val2017_results.json"
    assert json.loads(boxes.read_text())
    detected = (tmp_path / "output" / "detected_boxes" / "coco" / "lpn" / "demo_lpn_synthetic" /
                "results" / "keypoints_val2017_results_0.json")
    assert json.loads(detected.read_text())
    # The test on ground-truth boxes keeps its own results (the drawings come from them).
    assert (tmp_path / "output" / "coco" / "lpn" / "demo_lpn_synthetic" / "results" /
            "keypoints_val2017_results_0.json").is_file()
    assert list((tmp_path / "predictions").glob("*.jpg"))
    # The detector learnt from its own split (other images than the pose model's).
    annotations = tmp_path / "data" / "annotations"
    detector_images = json.loads(
        (annotations / "person_keypoints_detector_train2017.json").read_text())["images"]
    pose_images = json.loads((annotations / "person_keypoints_train2017.json").read_text())
    assert len(detector_images) == 3 and len(pose_images["images"]) == 4
    assert len(list((tmp_path / "data" / "images" / "detector_train2017").glob("*.jpg"))) == 3


def test_demo_no_detector_prints_the_pose_ap_only(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_run_demo(workdir, num_train, num_val, opts, detector=True, num_detector_train=0):
        calls.append((list(opts), detector))
        return DemoResult(0.5, Path(workdir), [], 60.0)

    monkeypatch.setattr("humanpose.demo.run_demo", fake_run_demo)
    assert main(["demo", "--workdir", str(tmp_path), "--no-detector", "TRAIN.END_EPOCH",
                 "1"]) == 0
    assert calls == [(["TRAIN.END_EPOCH", "1"], False)]
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "pose AP (ground-truth boxes) 0.5000" and out[-1] == "AP 0.5000"
    assert not any("box AP" in line or "detected boxes" in line for line in out)


def test_demo_opts_for_the_detector_carry_its_prefix():
    pose, detector = split_opts(["TRAIN.END_EPOCH", "2", "DETECTOR.TRAIN.END_EPOCH", "3",
                                 "DETECTOR.MODEL.IMAGE_SIZE", "[128, 128]", "WORKERS", "0"])
    assert pose == ["TRAIN.END_EPOCH", "2", "WORKERS", "0"]
    assert detector == ["TRAIN.END_EPOCH", "3", "MODEL.IMAGE_SIZE", "[128, 128]"]
    assert split_opts(["TRAIN.END_EPOCH"]) == (["TRAIN.END_EPOCH"], [])


def test_a_bad_detector_override_fails_before_training(tmp_path, capsys):
    rc = main(["demo", "--workdir", str(tmp_path), "--train", "2", "--val", "1",
               "DETECTOR.TRAIN.END_EPOK", "1"])
    assert rc == 2
    assert "END_EPOK" in capsys.readouterr().err
    assert not (tmp_path / "output").exists()
