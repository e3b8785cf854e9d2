"""``humanpose infer``, ``vis`` and ``bench`` from the command line."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO as CocoApi
from pycocotools.cocoeval import COCOeval

from humanpose.cli import main
from humanpose.inference import backends
from tests.processes import signal_after_lines
from tests.test_inference import LPN18, REPO, SMALL, stick_figure, write_weights


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
    lines = read_lines(out / "results.jsonl")
    assert [line["frame"] for line in lines] == list(range(6))
    np.testing.assert_allclose([line["time"] for line in lines], np.arange(6) / 12, atol=1e-3)
    assert all("file_name" not in line for line in lines)


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


# ----------------------------------------------------------------------------- stopping a run
def read_lines(path: Path) -> list[dict]:
    """Every line of a JSON Lines file (each must be whole and valid)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_saved_run(out: Path) -> list[dict]:
    """The COCO files and the JSON Lines file of a (possibly stopped) run agree: the same
    frames, the same people."""
    lines = read_lines(out / "results.jsonl")
    records = json.loads((out / "results.json").read_text())
    images = json.loads((out / "images.json").read_text())["images"]
    assert [i["id"] for i in images] == [line["image_id"] for line in lines]
    assert [i["file_name"] for i in images] == [line["file_name"] for line in lines]
    assert sorted(r["image_id"] for r in records) == sorted(
        line["image_id"] for line in lines for _ in line["people"])
    by_id = {line["image_id"]: line["people"] for line in lines}
    for r in records:
        person = by_id[r["image_id"]][0]
        np.testing.assert_allclose(np.ravel(person["keypoints"]), r["keypoints"], atol=1e-3)
    return lines


def image_folder(folder: Path, count: int, size=(160, 120)) -> Path:
    folder.mkdir()
    image = stick_figure(*size, x=size[0] // 2)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), image)
    return folder


@pytest.mark.parametrize("signal_number,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_infer_stopped_by_a_signal_keeps_every_frame_done(tmp_path, weights, signal_number,
                                                          code):
    """A run killed mid-folder (Ctrl-C, or SIGTERM as schedulers send) leaves valid results
    for every frame it finished. 400 frames take seconds here: the signal comes after 2."""
    folder = image_folder(tmp_path / "images", 400)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "humanpose", "infer", "--cfg", str(LPN18), *SMALL,
               "TEST.MODEL_FILE", str(weights), "--input", str(folder), "--output", str(out),
               "--quiet", "--backend", "torch", "--threads", "1"]
    lines_file = out / "results.jsonl"
    returncode, stdout, stderr = signal_after_lines(command, env, lines_file, 2, signal_number)
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    lines = check_saved_run(out)
    assert 2 <= len(lines) < 400  # stopped mid-folder, nothing it finished is lost
    assert [line["file_name"] for line in lines] == [f"{i:04d}.jpg" for i in range(len(lines))]
    assert f"stopped ({'interrupted' if code == 130 else 'terminated'}): {len(lines)} frames" \
        in stdout


def test_infer_error_mid_folder_keeps_the_frames_done(tmp_path, weights, capsys):
    folder = image_folder(tmp_path / "images", 3)
    gt = gt_file(tmp_path / "gt.json", {5: "0000.jpg", 6: "0001.jpg"})  # not 0002.jpg
    out = tmp_path / "out"
    assert infer(weights, "--input", str(folder), "--output", str(out), "--annotations",
                 str(gt), "--backend", "torch") == 1
    captured = capsys.readouterr()
    assert "0002.jpg is not in the annotation file" in captured.err
    assert "stopped (error: HumanposeError): 2 frames" in captured.out
    lines = check_saved_run(out)
    assert [line["image_id"] for line in lines] == [5, 6]
    check_results(out / "results.json", gt, 2)


def test_infer_skips_and_names_unreadable_images_in_a_folder(tmp_path, weights, capsys):
    folder = image_folder(tmp_path / "images", 3)
    (folder / "0001.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (folder / "0003.png").write_text("text")
    out = tmp_path / "out"
    assert infer(weights, "--input", str(folder), "--output", str(out), "--backend",
                 "torch") == 0
    stdout = capsys.readouterr().out
    assert "skipped 2 unreadable file(s):" in stdout
    assert "0001.jpg: truncated JPEG" in stdout and "0003.png: cannot decode" in stdout
    assert stdout.strip().splitlines()[-1].startswith("done: 2 frames")
    lines = check_saved_run(out)
    # Image ids follow the folder's order, skipped files included.
    assert [(line["file_name"], line["image_id"]) for line in lines] == [("0000.jpg", 1),
                                                                         ("0002.jpg", 3)]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o007, 0o660)])
def test_infer_output_files_follow_the_umask(tmp_path, weights, umask, mode):
    folder = image_folder(tmp_path / "images", 1)
    out = tmp_path / "out"
    previous = os.umask(umask)
    try:
        assert infer(weights, "--input", str(folder), "--output", str(out), "--backend",
                     "torch") == 0
    finally:
        os.umask(previous)
    for path in (out / "results.json", out / "results.jsonl", out / "images.json",
                 out / "rendered" / "0000.jpg"):
        assert path.stat().st_mode & 0o777 == mode, path
