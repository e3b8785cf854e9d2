"""``humanpose infer``, ``vis`` and ``bench`` from the command line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO as CocoApi
from pycocotools.cocoeval import COCOeval

from humanpose.cli import main
from humanpose.inference import backends
from tests.test_inference import LPN18, SMALL, stick_figure, write_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_weights(tmp_path_factory.mktemp("cli") / "w.pth", seed=7)


def infer(weights: Path, *args: str) -> int:
    return main(["infer", "--cfg", str(LPN18), *SMALL, "TEST.MODEL_FILE", str(weights),
                 "--quiet", *args])


def gt_file(path: Path, images: dict[int, str]) -> Path:
    """A minimal COCO key-point ground truth: one person per image."""
    keypoints = np.zeros((17, 3))
    keypoints[:, 0] = np.linspace(130, 190, 17)
    keypoints[:, 1] = np.linspace(40, 210, 17)
    keypoints[:, 2] = 2
    data = {
        "images": [{"id": i, "file_name": n, "width": 320, "height": 240}
                   for i, n in images.items()],
        "annotations": [{"id": k + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "bbox": [120, 30, 80, 190], "area": 80 * 190, "num_keypoints": 17,
                         "keypoints": keypoints.ravel().tolist()}
                        for k, i in enumerate(images)],
        "categories": [{"id": 1, "name": "person", "keypoints": [f"k{j}" for j in range(17)],
                        "skeleton": []}],
    }
    path.write_text(json.dumps(data))
    return path


def check_results(results: Path, gt: Path, count: int) -> list[dict]:
    records = json.loads(results.read_text())
    assert len(records) == count
    for r in records:
        assert r["category_id"] == 1 and len(r["keypoints"]) == 51
        assert isinstance(r["image_id"], int) and isinstance(r["score"], float)
    if records:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = CocoApi(str(gt))
            detections = coco.loadRes(str(results))
            evaluation = COCOeval(coco, detections, "keypoints")
            evaluation.evaluate()
    return records


def test_infer_image(tmp_path, weights, capsys):
    image = tmp_path / "person.jpg"
    cv2.imwrite(str(image), stick_figure())
    out = tmp_path / "out"
    assert infer(weights, "--input", str(image), "--output", str(out), "--backend", "torch") == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("done: 1 frames") and "frames/s" in line
    for stage in ("detection", "pose", "drawing"):
        assert f"{stage} " in line
    records = check_results(out / "results.json", out / "images.json", 1)
    assert records[0]["image_id"] == 1
    assert json.loads((out / "images.json").read_text())["images"][0]["file_name"] == \
        "person.jpg"
    drawn = cv2.imread(str(out / "rendered" / "person.jpg"))
    assert drawn is not None and drawn.shape == (240, 320, 3)


def test_infer_folder_with_boxes_and_annotations(tmp_path, weights, monkeypatch):
    monkeypatch.setenv("HUMANPOSE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    folder.mkdir()
    for name, x in (("a.jpg", 120), ("b.jpg", 170)):
        cv2.imwrite(str(folder / name), stick_figure(x=x))
    gt = gt_file(tmp_path / "gt.json", {11: "a.jpg", 22: "b.jpg"})
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([
        {"image_id": 11, "category_id": 1, "bbox": [80, 30, 80, 190], "score": 0.9},
        {"image_id": 22, "category_id": 1, "bbox": [130, 30, 80, 190], "score": 0.8},
        {"image_id": 22, "category_id": 1, "bbox": [10, 10, 50, 50], "score": 0.3},
    ]))
    out = tmp_path / "out"
    assert infer(weights, "--input", str(folder), "--output", str(out), "--boxes", str(dets),
                 "--annotations", str(gt), "--backend", "onnxruntime") == 0
    records = check_results(out / "results.json", gt, 3)
    assert sorted(r["image_id"] for r in records) == [11, 22, 22]
    assert sorted(p.name for p in (out / "rendered").iterdir()) == ["a.jpg", "b.jpg"]


def test_infer_video(tmp_path, weights):
    video = tmp_path / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 12, (320, 240))
    for i in range(6):
        writer.write(stick_figure(x=110 + 15 * i))
    writer.release()
    out = tmp_path / "out"
    assert infer(weights, "--input", str(video), "--output", str(out), "--backend", "torch",
                 "--detect-every", "3") == 0
    records = check_results(out / "results.json", out / "images.json", 6)
    assert sorted(r["image_id"] for r in records) == [1, 2, 3, 4, 5, 6]
    rendered = cv2.VideoCapture(str(out / "walk_pose.mp4"))
    assert rendered.isOpened() and int(rendered.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    rendered.release()


def test_infer_no_person_gives_empty_results(tmp_path, weights):
    image = tmp_path / "000000000042.jpg"
    cv2.imwrite(str(image), np.full((120, 160, 3), 255, dtype=np.uint8))
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 7, "category_id": 1, "bbox": [0, 0, 9, 9],
                                 "score": 1.0}]))
    out = tmp_path / "out"
    assert infer(weights, "--input", str(image), "--output", str(out), "--boxes", str(dets),
                 "--backend", "torch") == 0
    assert json.loads((out / "results.json").read_text()) == []
    assert (out / "rendered" / "000000000042.jpg").is_file()


def test_infer_unreadable_input_is_named(tmp_path, weights, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG but not really")
    assert infer(weights, "--input", str(bad), "--output", str(tmp_path / "o")) == 1
    assert "broken.png" in capsys.readouterr().err
    assert infer(weights, "--input", str(tmp_path / "nowhere.mp4"), "--output",
                 str(tmp_path / "o")) == 1
    assert "nowhere.mp4" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


def test_vis_draws_results_over_images(tmp_path, weights):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), stick_figure())
    out = tmp_path / "out"
    assert infer(weights, "--input", str(folder), "--output", str(out), "--backend", "torch",
                 "--no-render") == 0
    assert not (out / "rendered").exists()
    drawn = tmp_path / "drawn"
    assert main(["vis", "--results", str(out / "results.json"), "--images", str(folder),
                 "--output", str(drawn), "--min-score", "0"]) == 0
    assert (drawn / "a.jpg").is_file()
    assert main(["vis", "--results", str(out / "results.json"), "--images",
                 str(tmp_path / "elsewhere"), "--output", str(drawn), "--min-score", "0"]) == 1


def test_bench_lists_unavailable_backends(weights, monkeypatch, capsys):
    real = backends._require

    def no_openvino(module: str, backend: str) -> None:
        if module == "openvino":
            raise backends.BackendUnavailable("openvino is not installed")
        real(module, backend)

    monkeypatch.setattr(backends, "_require", no_openvino)
    rc = main(["bench", "--cfg", str(LPN18), *SMALL, "TEST.MODEL_FILE", str(weights),
               "--backends", "torch,openvino", "--batch", "1,2", "--runs", "2"])
    table = capsys.readouterr().out
    assert rc == 0
    assert "| torch | 1 |" in table and "| torch | 2 |" in table
    assert "| openvino | 1 | unavailable" in table
