"""What a new user meets in the first hour: no silent random weights, one consistent command
line (``--version``, ``--weights`` wherever ``--model`` is, defaults in every ``--help``),
and messages that name what to do."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from humanpose import cli, zoo
from humanpose.cli import main
from humanpose.engine.state import weights_with_config
from humanpose.inference import PoseEstimator
from humanpose.inference.outputs import RunSummary
from humanpose.runtime.sessions import resolve_device
from tests.test_inference import LPN18, SMALL, nontrivial_model, small_cfg, stick_figure
from tests.test_zoo import entry, publish, sha256, use_entries

NO_WEIGHTS = "no weights: give a weights file"


@pytest.fixture(scope="module")
def carried(tmp_path_factory) -> Path:
    """A ``model_best.pth`` as training writes it: weights with their config."""
    cfg = small_cfg()
    path = tmp_path_factory.mktemp("carried") / "model_best.pth"
    torch.save(weights_with_config(nontrivial_model(cfg, seed=3).state_dict(), cfg,
                                   "lpn18_small.yaml"), path)
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), stick_figure())
    return path


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """An empty weights cache and a mirror nobody answers: any download fails."""
    home = tmp_path / "home"
    monkeypatch.setenv("HUMANPOSE_HOME", str(home))
    monkeypatch.setenv("HUMANPOSE_MIRROR", "http://127.0.0.1:9")
    return home


# ---------------------------------------------------------------------------- no weights
def test_infer_and_bench_refuse_to_run_without_weights(tmp_path, photo, capsys):
    out = tmp_path / "out"
    rc = main(["infer", "--cfg", str(LPN18), *SMALL, "--input", str(photo), "--output",
               str(out), "--quiet"])
    assert rc == 1 and not out.exists()
    err = capsys.readouterr().err
    assert NO_WEIGHTS in err and "--weights FILE" in err and "--model NAME" in err
    assert "TEST.MODEL_FILE" in err
    rc = main(["bench", "--cfg", str(LPN18), *SMALL, "--backends", "torch", "--batch", "1",
               "--runs", "1"])
    assert rc == 1 and NO_WEIGHTS in capsys.readouterr().err
    rc = main(["infer", "--cfg", str(LPN18), *SMALL, "--input", str(photo), "--output",
               str(out), "--quiet", "--random-weights", "--backend", "torch"])
    assert rc == 0 and (out / "results.json").is_file()


def test_test_without_weights_names_how_to_give_them(tmp_path, capsys):
    from humanpose.data.synthetic import write_coco_set

    root = tmp_path / "data"
    write_coco_set(root, 2, 2, 0)
    rc = main(["test", "--cfg", str(LPN18), *SMALL, "DATASET.ROOT", str(root),
               "OUTPUT_DIR", str(tmp_path / "o"), "LOG_DIR", str(tmp_path / "l")])
    err = capsys.readouterr().err
    assert rc == 1 and "no weights" in err and "final_state.pth" in err
    assert "--weights FILE" in err


# ---------------------------------------------------------------------------- PoseEstimator
def test_estimator_takes_a_weights_file_as_its_first_argument(carried):
    image = stick_figure()
    box = [[120, 30, 80, 190]]
    by_file = PoseEstimator(carried, backend="torch", flip_test=False)(image, box)
    by_both = PoseEstimator(None, carried, backend="torch", flip_test=False)(image, box)
    np.testing.assert_array_equal(by_file[0].keypoints, by_both[0].keypoints)
    with pytest.raises(Exception, match="is a weights file and so is"):
        PoseEstimator(carried, carried)


def test_estimator_takes_a_zoo_name_with_a_local_copy(tmp_path, offline, monkeypatch):
    state = nontrivial_model(small_cfg(), seed=5).state_dict()
    local = tmp_path / "copy.pth"
    torch.save(state, local)
    data = local.read_bytes()
    use_entries(monkeypatch, entry("small-pose", publish(tmp_path, "w/small.pth", data),
                                   sha256(data)),
                entry("small-det", task="detection"))
    est = PoseEstimator("small-pose", weights=local, backend="torch", flip_test=False)
    assert est.weights == local and est.image_size == (96, 128)
    reference = PoseEstimator(small_cfg(), local, backend="torch", flip_test=False)
    box = [[120, 30, 80, 190]]
    np.testing.assert_array_equal(est(stick_figure(), box)[0].keypoints,
                                  reference(stick_figure(), box)[0].keypoints)
    with pytest.raises(zoo.ZooError, match="small-det is a detection model, not a pose"):
        PoseEstimator("small-det", backend="torch")


def test_channel_order_per_call(carried):
    bgr = stick_figure()
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    box = [[120, 30, 80, 190]]
    est = PoseEstimator(carried, backend="torch", flip_test=False)
    expected = est(bgr, box)[0].keypoints
    np.testing.assert_array_equal(est(rgb, box, rgb=True)[0].keypoints, expected)
    np.testing.assert_array_equal(est(bgr, box, rgb=False)[0].keypoints, expected)
    assert not np.array_equal(est(rgb, box)[0].keypoints, expected)  # the order matters


def test_device_auto_is_the_cpu_without_cuda():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") == expected and resolve_device("cpu") == "cpu"


# ---------------------------------------------------------------------------- the CLI
def test_version(capsys):
    from humanpose import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"humanpose {__version__}"


def test_info_and_bench_take_weights(carried, capsys):
    assert main(["info", "--weights", str(carried), "--runs", "1", "--json"]) == 0
    info = capsys.readouterr().out
    assert '"input_size": [96, 128]' in info
    assert main(["bench", "--weights", str(carried), "--backends", "torch", "--batch", "1",
                 "--runs", "1"]) == 0
    assert "lpn 96x128" in capsys.readouterr().out


def test_info_of_a_zoo_model_downloads_nothing(offline, capsys):
    assert main(["info", "--model", "rtmpose-t", "--runs", "1", "--json"]) == 0
    printed = capsys.readouterr()
    assert '"params": 3337007' in printed.out and "downloading" not in printed.err
    assert not (offline / "weights").exists()


def test_a_detector_as_the_pose_model_is_refused_before_the_download(offline, photo, capsys):
    rc = main(["infer", "--model", "rtmdet-nano", "--input", str(photo), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "rtmdet-nano is a detection model, not a pose model" in err
    assert "--detector" in err and "downloading" not in err


def test_an_unknown_detector_name_lists_the_zoo_detectors(carried, photo, capsys, tmp_path):
    rc = main(["infer", "--weights", str(carried), "--input", str(photo), "--detector",
               "yolov8n", "--output", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "yolov8n: file not found, and not a zoo detector" in err
    for name in zoo.detector_names():
        assert name in err


def test_not_a_person_detector_names_each_kind_once(tmp_path):
    from humanpose.detection.detectors import detector_config

    with pytest.raises(Exception) as caught:
        detector_config(tmp_path / "w.pth", small_cfg())
    assert "not a person detector (person_detector, rtmdet)" in str(caught.value)


def test_a_bad_override_names_the_command_line(carried, photo, tmp_path, capsys):
    rc = main(["infer", "--weights", str(carried), "--input", str(photo), "--output",
               str(tmp_path / "o"), "TEST.DECODER", "foo", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "(or the command line)" in err and "TEST.DECODER" in err


def test_whole_image_note_default_output_and_speed_line(carried, photo, tmp_path, monkeypatch,
                                                        capsys):
    monkeypatch.chdir(tmp_path)
    common = ["infer", "--weights", str(carried), "--input", str(photo), "--quiet",
              "--backend", "torch"]
    assert main(common) == 0
    printed = capsys.readouterr()
    assert "no --detector: each image is taken as one person's box" in printed.err
    assert "--detector rtmdet-nano" in printed.err
    assert (tmp_path / "runs" / "infer" / "photo" / "results.json").is_file()
    assert printed.out.strip().splitlines()[-1].endswith("-> runs/infer/photo")
    assert main(common) == 0  # a second run does not mix with the first
    assert capsys.readouterr().out.strip().endswith("-> runs/infer/photo2")


def test_speed_line_leaves_out_the_first_frame():
    summary = RunSummary(Path("out"), frames=11, seconds=2.0, first_frame_seconds=1.0)
    assert summary.fps == pytest.approx(10.0)
    assert "10.0 frames/s after the first frame (1000 ms, warm-up)" in summary.line()
    assert RunSummary(Path("out"), frames=1, seconds=0.5, first_frame_seconds=0.5).fps == 2.0


def test_ctrl_c_prints_a_proper_line(monkeypatch, capsys):
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "zoo", cli.Command("zoo", cli._zoo_args, interrupted,
                                                         needs_torch=False))
    assert main(["zoo"]) == 130
    assert capsys.readouterr().err.strip() == "humanpose zoo: interrupted (Ctrl-C)"


def test_every_help_shows_the_defaults():
    for name, command in cli.COMMANDS.items():
        parser = argparse.ArgumentParser(formatter_class=cli._DefaultsShown)
        command.add_args(parser)
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if not action.option_strings or action.default in (None, argparse.SUPPRESS):
                continue
            if action.default is False:  # an off switch
                continue
            help_text = " ".join(parser._get_formatter()._get_help_string(action).split())
            assert "default" in help_text, (name, action.option_strings)
        for flag in {"infer": ["--min-score", "--threshold", "--backend",
                               "--detector-backend"],
                     "demo": ["--workdir"], "bench": ["--batch", "--runs"],
                     "export": ["--opset", "--tolerance"], "info": ["--runs"]}.get(name, []):
            assert "(default: " in text.split(flag, 2)[-1][:400], (name, flag)


def test_a_text_file_as_video_gives_our_line_only(tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    done = subprocess.run([sys.executable, "-m", "humanpose", "infer", "--weights",
                           str(tmp_path / "m.onnx"), "--input", str(fake), "--output",
                           str(tmp_path / "o")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"humanpose infer: error: cannot open video {fake}: not a video OpenCV can decode"]
