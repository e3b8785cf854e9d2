"""The video path of ``humanpose infer``: track ids in every output, the CSV, the live
window's message on a headless OpenCV, network streams (and Ctrl-C during one), boxes from
a detections file by frame, and pipelined = serial."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from humanpose.cli import main
from humanpose.data.keypoints import COCO
from humanpose.data.synthetic_video import make_walking_video, write_video
from humanpose.inference import Person, PoseEstimator, PoseTracker, outputs
from humanpose.inference.display import GUI_HINT, check_display, has_gui
from humanpose.inference.video import csv_header
from humanpose.vis import draw_people, track_color
from tests.processes import signal_after_lines
from tests.test_inference import LPN18, REPO, small_cfg, write_weights
from tests.test_streams import mjpeg_server  # noqa: F401 - the fixture

FRAMES = 10


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_weights(tmp_path_factory.mktemp("video") / "w.pth", seed=7)


@pytest.fixture(scope="module")
def walking(tmp_path_factory):
    """A 320x240 video of 3 people walking (ground-truth boxes known), and its path."""
    truth = make_walking_video(FRAMES, width=320, height=240)
    path = tmp_path_factory.mktemp("walk") / "walk.avi"
    write_video(truth, path, fourcc="MJPG")  # lossless enough, and fast to decode
    return truth, path


# Smaller crops than the weights were made for (the network is fully convolutional): fast.
TINY = ["MODEL.IMAGE_SIZE", "[48,64]", "MODEL.HEATMAP_SIZE", "[12,16]"]


def infer(weights: Path, *args: str) -> int:
    return main(["infer", "--cfg", str(LPN18), *TINY, "TEST.MODEL_FILE", str(weights),
                 "--quiet", "--backend", "torch", "--no-flip-test", *args])


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def detections(truth, frames, with_frame: bool = True) -> list[dict]:
    """Ground-truth boxes of ``frames`` as COCO detections, by ``frame`` or by image id."""
    out = []
    for f in frames:
        for box in truth.boxes[f]:
            record = {"image_id": f + 1, "category_id": 1, "bbox": box.tolist(), "score": 0.9}
            if with_frame:
                record = {**record, "frame": f, "image_id": 1000 + f}  # ids ignored then
            out.append(record)
    return out


def test_track_ids_reach_results_lines_and_csv(tmp_path, weights, walking):
    truth, path = walking
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(detections(truth, range(FRAMES))))
    out, table = tmp_path / "out", tmp_path / "tables" / "people.csv"
    # TRACK.FILL_MISSED 0: no crops of our own for people the file misses, so the results
    # hold the file's boxes exactly (the default fills; checked below).
    assert infer(weights, "--input", str(path), "--output", str(out), "--detector", str(dets),
                 "--track", "--save-csv", str(table), "TRACK.FILL_MISSED", "0") == 0
    filled = tmp_path / "filled"
    assert infer(weights, "--input", str(path), "--output", str(filled), "--detector",
                 str(dets), "--track") == 0
    extra = json.loads((filled / "results.json").read_text())
    records = json.loads((out / "results.json").read_text())
    assert len(extra) >= len(records)
    lines = read_lines(out / "results.jsonl")
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert len(records) == sum(len(b) for b in truth.boxes)  # the file's boxes, every frame
    assert all(isinstance(r["track_id"], int) for r in records)
    followed = {r["track_id"] for r in records if r["track_id"] >= 0}
    assert followed and min(followed) >= 1
    # The same people, with the same ids, in results.json and results.jsonl.
    from_lines = sorted((line["image_id"], p["track_id"], p["keypoints"][0][0])
                        for line in lines for p in line["people"])
    from_json = sorted((r["image_id"], r["track_id"], r["keypoints"][0]) for r in records)
    assert [(a, b) for a, b, _ in from_lines] == [(a, b) for a, b, _ in from_json]
    np.testing.assert_allclose([c for *_, c in from_lines], [c for *_, c in from_json],
                               atol=1e-3)
    # The CSV: joint names as headers, one row per person and frame.
    with open(table, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == csv_header(COCO.names)
    assert rows[0][:11] == ["frame", "time", "track_id", "x", "y", "w", "h", "score",
                            "nose_x", "nose_y", "nose_score"]
    assert rows[0][-3:] == ["right_ankle_x", "right_ankle_y", "right_ankle_score"]
    assert len(rows) - 1 == len(records)
    assert sorted(int(r[2]) for r in rows[1:]) == sorted(r["track_id"] for r in records)
    first = [r for r in rows[1:] if r[0] == "0"]
    assert len(first) == 3 and all(float(r[1]) == 0.0 for r in first)
    assert all(len(r) == 8 + 3 * 17 for r in rows)


def test_detections_file_gives_frames_by_frame_or_image_id_and_others_are_tracked(
        tmp_path, weights, walking):
    truth, path = walking
    listed = [0, 4, 8]
    for with_frame in (True, False):
        dets = tmp_path / f"dets_{with_frame}.json"
        dets.write_text(json.dumps(detections(truth, listed, with_frame)))
        out = tmp_path / f"out_{with_frame}"
        # TRACK.FILL_MISSED 0: the listed frames hold the file's boxes and no crop of ours.
        assert infer(weights, "--input", str(path), "--output", str(out), "--detector",
                     str(dets), "--no-render", "TRACK.FILL_MISSED", "0") == 0
        lines = read_lines(out / "results.jsonl")
        assert len(lines) == FRAMES
        for line in lines:
            boxes = np.array([p["box"] for p in line["people"]]).reshape(-1, 4)
            truth_boxes = truth.boxes[line["frame"]]
            if line["frame"] in listed:  # the file's boxes place the crops
                np.testing.assert_allclose(np.sort(boxes, 0), np.sort(truth_boxes, 0),
                                           atol=0.01)
            elif boxes.shape == truth_boxes.shape:  # tracked on: boxes from the key points
                assert not np.allclose(np.sort(boxes, 0), np.sort(truth_boxes, 0), atol=0.5)
        # No track id is written without --track.
        assert all("track_id" not in p for line in lines for p in line["people"])
        assert all("track_id" not in r
                   for r in json.loads((out / "results.json").read_text()))


def test_pipelined_and_serial_runs_write_the_same_results(tmp_path, weights, walking, capsys):
    _, path = walking
    outs = []
    for flag in (("--pipeline", "on"), ("--no-pipeline",)):
        serial = flag == ("--no-pipeline",)
        out = tmp_path / ("serial" if serial else "pipelined")
        assert infer(weights, "--input", str(path), "--output", str(out), "--track",
                     "--detect-every", "3", *flag) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        assert line.startswith(f"done: {FRAMES} frames")
        assert ("serial" if serial else "pipelined") in line and "read to written" in line
        for stage in ("reading", "detection", "pose", "tracking", "drawing", "writing"):
            assert f"{stage} " in line
        outs.append(out)
    for name in ("results.json", "results.jsonl", "images.json"):
        assert (outs[0] / name).read_text() == (outs[1] / name).read_text(), name
    frames = [cv2.VideoCapture(str(out / "walk_pose.mp4")) for out in outs]
    assert [int(c.get(cv2.CAP_PROP_FRAME_COUNT)) for c in frames] == [FRAMES, FRAMES]


def test_max_frames_and_duration_stop_a_video(tmp_path, weights, walking):
    _, path = walking  # 25 frames/s
    out = tmp_path / "out"
    assert infer(weights, "--input", str(path), "--output", str(out), "--duration", "0.2",
                 "--no-render") == 0
    assert [line["frame"] for line in read_lines(out / "results.jsonl")] == list(range(6))
    assert infer(weights, "--input", str(path), "--output", str(out), "--max-frames", "4",
                 "--no-render", "--no-pipeline") == 0
    assert len(read_lines(out / "results.jsonl")) == 4


def test_video_without_h264_falls_back_to_mp4v_with_a_note(tmp_path, weights, walking,
                                                             monkeypatch, capsys):
    _, path = walking
    monkeypatch.setattr(outputs, "_AVC1", False)
    out = tmp_path / "out"
    assert infer(weights, "--input", str(path), "--output", str(out), "--max-frames", "3") == 0
    err = capsys.readouterr().err
    assert "no H.264 (avc1) encoder" in err and "mp4v" in err and err.count("no H.264 (avc1)") == 1
    rendered = cv2.VideoCapture(str(out / "walk_pose.mp4"))
    assert int(rendered.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert int(rendered.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") in (b"mp4v", b"FMP4")


def test_show_without_gui_says_how_to_get_one(tmp_path, weights, walking, capsys):
    _, path = walking
    if has_gui():
        pytest.skip("this OpenCV has a GUI")
    with pytest.raises(Exception, match=r"pip install humanpose\[gui\]"):
        check_display()
    out = tmp_path / "out"
    assert infer(weights, "--input", str(path), "--output", str(out), "--show") == 1
    captured = capsys.readouterr()
    assert "pip install humanpose[gui]" in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not out.exists()  # stopped before any work


def test_gui_detection_reads_the_build_information(monkeypatch):
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:     NONE\n")
    assert not has_gui()
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:      GTK3\n")
    assert has_gui()
    assert "humanpose[gui]" in GUI_HINT


def test_stream_is_read_over_http(tmp_path, weights, mjpeg_server):  # noqa: F811
    server, url = mjpeg_server(frames_per_connection=4)  # drops every 4 frames
    out = tmp_path / "out"
    assert infer(weights, "--input", url, "--output", str(out), "--max-frames", "10",
                 "--track") == 0
    lines = read_lines(out / "results.jsonl")
    assert [line["frame"] for line in lines] == list(range(10))
    assert server.connections >= 3  # reconnected after each drop
    stamps = [line["time"] for line in lines]
    assert stamps[0] == 0.0 and stamps == sorted(stamps)
    assert int(cv2.VideoCapture(str(out / "stream_pose.mp4")).get(
        cv2.CAP_PROP_FRAME_COUNT)) == 10


def test_sigint_during_a_stream_keeps_the_results(tmp_path, weights, mjpeg_server):  # noqa: F811
    _, url = mjpeg_server(frames_per_connection=100_000, delay=0.02)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "humanpose", "infer", "--cfg", str(LPN18), *TINY,
               "TEST.MODEL_FILE", str(weights), "--input", url, "--output", str(out),
               "--quiet", "--backend", "torch", "--no-flip-test", "--threads", "1", "--track",
               "--save-csv", str(out / "people.csv")]
    lines_file = out / "results.jsonl"
    returncode, stdout, stderr = signal_after_lines(command, env, lines_file, 3, signal.SIGINT)
    assert returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = read_lines(lines_file)
    images = json.loads((out / "images.json").read_text())["images"]
    records = json.loads((out / "results.json").read_text())
    assert len(lines) >= 3 and [i["id"] for i in images] == [line["image_id"]
                                                            for line in lines]
    assert len(records) == sum(len(line["people"]) for line in lines)
    assert all("track_id" in r for r in records)
    with open(out / "people.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 1 + len(records)
    assert f"stopped (interrupted): {len(lines)} frames" in stdout
    assert int(cv2.VideoCapture(str(out / "stream_pose.mp4")).get(
        cv2.CAP_PROP_FRAME_COUNT)) == len(lines)


def test_pose_estimator_track_gives_ids_across_frames(weights, walking):
    truth, _ = walking
    est = PoseEstimator(small_cfg(*TINY), weights, backend="torch", flip_test=False)
    est.tracker = PoseTracker(detect_every=5)
    boxes = iter(truth.boxes)

    def detector(image, image_id=None, file_name=None):
        from humanpose.inference import Detections
        found = next(boxes)
        return Detections(found, np.full(len(found), 0.9))

    est.detector = detector
    seen = []
    for i, frame in enumerate(truth.frames[:6]):
        people = est.track(frame, timestamp=i / truth.fps)
        assert all(isinstance(p, Person) and isinstance(p.track_id, int) for p in people)
        seen.append(sorted(p.track_id for p in people))
    assert seen[0] == [1, 2, 3]  # three people start three tracks
    assert est.tracker.frame == 5 and est.smoother is not None
    est.reset_tracking()
    assert est.tracker.tracks == [] and est.smoother is None


def test_a_colour_per_track_id_in_the_drawing():
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, 0] = np.linspace(30, 90, 17)
    keypoints[:, 1] = np.linspace(30, 150, 17)
    keypoints[:, 2] = 0.9
    colours = {}
    for track_id in (1, 2):
        image = np.zeros((200, 200, 3), np.uint8)
        draw_people(image, [Person((20, 20, 80, 140), 1.0, keypoints, 0.9, track_id)])
        found = {tuple(int(v) for v in px) for px in image.reshape(-1, 3)}
        assert track_color(track_id) in found
        colours[track_id] = found
    assert track_color(1) != track_color(2) and track_color(2) not in colours[1]


@pytest.mark.parametrize("pipeline", [True, False])
def test_a_writing_error_stops_the_run_and_keeps_the_frames_written(tmp_path, weights, walking,
                                                                    monkeypatch, pipeline):
    from humanpose.inference.sources import open_source
    from humanpose.inference.video import RunOutputs, RunSummary, run_on_source

    _, path = walking
    real = RunOutputs._write_drawing
    calls = []

    def failing(self, frame):
        calls.append(frame.index)
        if frame.index == 3:
            raise OSError(28, "No space left on device")
        real(self, frame)

    monkeypatch.setattr(RunOutputs, "_write_drawing", failing)
    est = PoseEstimator(small_cfg(*TINY), weights, backend="torch", flip_test=False)
    summary = RunSummary(tmp_path / "out")
    start = time.monotonic()
    with pytest.raises(OSError, match="No space left"):
        run_on_source(est, open_source(path), tmp_path / "out", progress=False,
                      summary=summary, pipeline=pipeline)
    assert time.monotonic() - start < 60  # no thread left hanging
    assert summary.frames == 3 and summary.stopped == "error: OSError"
    lines = read_lines(tmp_path / "out" / "results.jsonl")
    assert [line["frame"] for line in lines] == [0, 1, 2]
    images = json.loads((tmp_path / "out" / "images.json").read_text())["images"]
    assert len(images) == 3
