"""The model zoo: verified downloads from a local HTTP server, name resolution in the CLI and
``PoseEstimator``, shipped experiment files (also from a non-editable install), and weights
files that carry their config."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import humanpose
from humanpose import zoo
from humanpose.checkpoint import config_from_weights
from humanpose.cli import main
from humanpose.config import ConfigError, get_cfg
from humanpose.engine.state import weights_with_config
from humanpose.errors import HumanposeError
from humanpose.inference import PoseEstimator
from humanpose.shipped import find_config, shipped_configs
from tests.test_inference import LPN18, SMALL, nontrivial_model, small_cfg, stick_figure

from .conftest import REPO

ORIGIN = "https://download.example.org"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """Files under ``www/`` served on 127.0.0.1; yields (www folder, mirror URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("HUMANPOSE_HOME", str(path))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish(www: Path, rel: str, data: bytes) -> str:
    """Put ``data`` at ``www/rel``; returns the official-looking URL of the file."""
    path = www / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"{ORIGIN}/{rel}"


def entry(name: str, url: str = "", digest: str = "", task: str = "pose",
          config: str = str(LPN18), opts: tuple[str, ...] = tuple(SMALL),
          file_name: str = "") -> zoo.ZooEntry:
    return zoo.ZooEntry(name, task, "coco17", (96, 128), 0.5, 0.1, 50.0, "test", config,
                        "test", url=url, sha256=digest, file_name=file_name,
                        download="https://example.org/drive", opts=opts)


def use_entries(monkeypatch, *entries: zoo.ZooEntry) -> None:
    monkeypatch.setattr(zoo, "ENTRIES", {e.name: e for e in entries})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- downloads
@pytest.mark.parametrize("prefix_only", [False, True])
def test_download_is_verified_cached_and_reverified(server, home, monkeypatch, prefix_only):
    www, mirror = server
    data = os.urandom(300_000)
    digest = sha256(data)
    url = publish(www, "mmpose/v1/w-abc.pth", data)
    use_entries(monkeypatch, entry("tiny", url, digest[:8] if prefix_only else digest))
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)

    path = zoo.fetch_weights("tiny", progress=False)
    assert path == home / "weights" / "w-abc.pth"
    assert path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == ["w-abc.pth", "w-abc.pth.sha256"]
    assert json.loads((path.parent / "w-abc.pth.sha256").read_text())["sha256"] == digest

    (www / "mmpose/v1/w-abc.pth").unlink()  # the cached copy needs no network
    assert zoo.fetch_weights("tiny", progress=False) == path

    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # damaged in the cache
    publish(www, "mmpose/v1/w-abc.pth", data)
    assert zoo.fetch_weights("tiny", progress=False).read_bytes() == data


def test_wrong_checksum_names_url_and_digests_and_leaves_nothing(server, home, monkeypatch):
    www, mirror = server
    data = b"not the weights you are looking for" * 100
    url = publish(www, "x/bad.pth", data)
    expected = "0" * 64
    use_entries(monkeypatch, entry("bad", url, expected))
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    with pytest.raises(zoo.ZooError) as err:
        zoo.fetch_weights("bad", progress=False)
    message = str(err.value)
    assert f"{mirror}/x/bad.pth" in message
    assert expected in message and sha256(data) in message
    assert list((home / "weights").iterdir()) == []


def test_offline_error_names_url_and_where_to_put_the_file(home, monkeypatch):
    use_entries(monkeypatch, entry("off", f"{ORIGIN}/a/b/off-12345678.pth", "12345678"))
    mirror = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    with pytest.raises(zoo.ZooError) as err:
        zoo.fetch_weights("off", progress=False)
    message = str(err.value)
    assert f"cannot download {mirror}/a/b/off-12345678.pth" in message
    assert f"put it at {home / 'weights' / 'off-12345678.pth'}" in message
    assert list((home / "weights").iterdir()) == []


def test_mirror_replaces_scheme_and_host_and_keeps_the_path(monkeypatch):
    url = "https://download.openmmlab.com/mmpose/v1/x-1234abcd.pth"
    monkeypatch.delenv("HUMANPOSE_MIRROR", raising=False)
    assert zoo.mirror_url(url) == url
    monkeypatch.setenv("HUMANPOSE_MIRROR", "http://10.0.0.5:8000")
    assert zoo.mirror_url(url) == "http://10.0.0.5:8000/mmpose/v1/x-1234abcd.pth"
    monkeypatch.setenv("HUMANPOSE_MIRROR", "http://intranet/mirror/")
    assert zoo.mirror_url(url) == "http://intranet/mirror/mmpose/v1/x-1234abcd.pth"
    monkeypatch.setenv("HUMANPOSE_MIRROR", "intranet")
    with pytest.raises(zoo.ZooError, match="HUMANPOSE_MIRROR"):
        zoo.mirror_url(url)


def test_entry_without_url_takes_a_verified_local_copy(tmp_path, home, monkeypatch, capsys):
    data = b"seed weights" * 50
    good = tmp_path / "lpn_50.pth"
    good.write_bytes(data)
    use_entries(monkeypatch, entry("seedy", digest=sha256(data), file_name="lpn_50.pth"),
                entry("nodigest", file_name="other.pth"))
    with pytest.raises(zoo.ZooError) as err:
        zoo.fetch_weights("seedy", progress=False)
    assert "https://example.org/drive" in str(err.value)
    assert str(home / "weights" / "lpn_50.pth") in str(err.value)
    assert zoo.fetch_weights("seedy", good) == good
    assert [p.name for p in tmp_path.iterdir()] == ["lpn_50.pth"]  # no sidecar beside it
    bad = tmp_path / "bad.pth"
    bad.write_bytes(data + b"!")
    with pytest.raises(zoo.ZooError, match=f"bad.pth is not seedy's weights.*{sha256(data)}"):
        zoo.fetch_weights("seedy", bad)
    assert zoo.fetch_weights("nodigest", bad) == bad
    assert "unverified" in capsys.readouterr().err
    (home / "weights").mkdir(parents=True)
    shutil.copy(good, home / "weights" / "lpn_50.pth")  # put by hand where the error said
    assert zoo.fetch_weights("seedy") == home / "weights" / "lpn_50.pth"


def test_unknown_name_lists_the_zoo():
    with pytest.raises(zoo.ZooError, match="unknown model name 'rtmpose-xx'.*rtmpose-m"):
        zoo.get_entry("rtmpose-xx")


# ---------------------------------------------------------------------------- the table
UNDIGESTED = {"rtmw-m", "rtmw-l", "rtmw-l-384"}  # mmpose's README: names with a date only


def test_zoo_entries_carry_their_digest_prefix_and_licence():
    names = set(zoo.ENTRIES)
    for required in ("rtmpose-t", "rtmpose-s", "rtmpose-m", "rtmpose-l", "rtmpose-m-384",
                     "rtmpose-l-384", "rtmpose-m-body7", "rtmpose-t-halpe26", "rtmdet-nano",
                     "rtmdet-tiny", "rtmdet-m", "hrnet-w32", "hrnet-w48", "resnet-50", "lpn-50",
                     "dwpose-m", "dwpose-l", "rtmw-l", "rtmw-x", "rtmpose-m-hand",
                     "rtmpose-m-face"):
        assert required in names
    for e in zoo.ENTRIES.values():
        if e.url:
            assert e.url.startswith("https://download.openmmlab.com/")
            if e.name in UNDIGESTED:  # published without a digest in the file name
                assert not e.sha256 and Path(e.url).stem.endswith("-20231122")
            else:
                assert f"-{e.sha256}" in Path(e.url).name and len(e.sha256) in (7, 8, 64)
            assert e.licence == "Apache-2.0"
        else:
            assert e.download and "drive.google.com" in e.download
        assert e.task in ("pose", "pose-one-stage", "detection")
        assert not e.config.endswith(".yaml") and not Path(e.config).is_absolute()


def test_every_entry_config_ships():
    missing = [e.config for e in zoo.ENTRIES.values()
               if not (REPO / "experiments" / (e.config + ".yaml")).is_file()]
    if not (REPO / "experiments" / "coco" / "rtmpose").is_dir():
        pytest.skip(f"{len(set(missing))} RTMPose/RTMDet experiment files are not in this "
                    "tree yet")
    assert missing == []


def test_zoo_command_lists_names_and_json(capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    for column in ("name", "task", "keypoints", "input", "params", "GFLOPs", "published", "AP",
                   "size", "licence"):
        assert column in header
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    for name in zoo.ENTRIES:
        assert name in rows
    assert "75.8 COCO val" in rows["rtmpose-m"] and "Apache-2.0" in rows["rtmpose-m"]
    assert main(["zoo", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == list(zoo.ENTRIES)
    nano = next(r for r in records if r["name"] == "rtmdet-nano")
    assert nano["sha256"] == "05d8511e" and nano["task"] == "detection"
    assert nano["config"] == "detection/rtmdet_nano_320_person"


# ---------------------------------------------------------------------------- name resolution
@pytest.fixture
def pose_zoo(server, home, monkeypatch, tmp_path):
    """A zoo with one small pose model served locally; yields (a local copy, its digest)."""
    www, mirror = server
    local = tmp_path / "small.pth"
    torch.save(nontrivial_model(small_cfg(), seed=3).state_dict(), local)
    data = local.read_bytes()
    url = publish(www, "mmpose/small-pose.pth", data)
    use_entries(monkeypatch, entry("small-pose", url, sha256(data)))
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    return local


def test_pose_estimator_takes_a_zoo_name(pose_zoo, home):
    image = stick_figure()
    by_name = PoseEstimator("small-pose", backend="torch", flip_test=False)
    assert by_name.weights == home / "weights" / "small-pose.pth"
    assert list(by_name.cfg.MODEL.IMAGE_SIZE) == [96, 128]
    by_file = PoseEstimator(LPN18, pose_zoo, backend="torch", flip_test=False, opts=SMALL)
    a, b = by_name(image, np.array([[100.0, 20, 120, 200]])), \
        by_file(image, np.array([[100.0, 20, 120, 200]]))
    np.testing.assert_allclose(a[0].keypoints, b[0].keypoints, rtol=0, atol=1e-4)


def test_infer_model_name_equals_cfg_and_weights(pose_zoo, tmp_path):
    image = tmp_path / "person.jpg"
    cv2.imwrite(str(image), stick_figure())
    common = ["--input", str(image), "--backend", "torch", "--quiet", "--no-flip-test"]
    assert main(["infer", "--model", "small-pose", "--output", str(tmp_path / "a"),
                 *common]) == 0
    assert main(["infer", "--cfg", str(LPN18), *SMALL, "TEST.MODEL_FILE", str(pose_zoo),
                 "--output", str(tmp_path / "b"), *common]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert len(a) == 1 and a == b


def test_export_and_bench_take_a_model_name(pose_zoo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", "small-pose"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "small-pose.onnx").is_file() and "wrote small-pose.onnx (lpn" in out
    assert main(["bench", "--model", "small-pose", "--backends", "torch", "--batch", "1",
                 "--runs", "1", "--no-flip-test"]) == 0
    err = capsys.readouterr().err
    assert "TEST.MODEL_FILE is empty" not in err


def test_model_and_cfg_together_are_refused(pose_zoo, tmp_path, capsys):
    rc = main(["infer", "--model", "small-pose", "--cfg", str(LPN18), "--input", "x.jpg",
               "--output", str(tmp_path)])
    assert rc == 2 and "--model or --cfg" in capsys.readouterr().err


def test_detector_zoo_name_builds_the_detector(server, home, monkeypatch, tmp_path, capsys):
    from humanpose.detection import build_detector

    www, mirror = server
    det_cfg = get_cfg(REPO / "experiments" / "detection" / "person_detector_320.yaml")
    local = tmp_path / "det.pth"
    torch.manual_seed(0)
    torch.save(build_detector(det_cfg).state_dict(), local)
    data = local.read_bytes()
    url = publish(www, "det/tiny-det.pth", data)
    use_entries(monkeypatch, entry("tiny-det", url, sha256(data), task="detection",
                                   config="detection/person_detector_320", opts=()),
                entry("small-pose", url, sha256(data)))
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    weights, config = zoo.resolve_detector("tiny-det", progress=False)
    assert weights == home / "weights" / "tiny-det.pth"
    assert config == str(REPO / "experiments" / "detection" / "person_detector_320.yaml")
    boxes = tmp_path / "boxes.json"
    boxes.write_text("[]")
    assert zoo.resolve_detector(boxes) == (boxes, None)
    with pytest.raises(zoo.ZooError, match="tiny-dett: file not found, and not a zoo detector; "
                                           "zoo detectors: tiny-det"):
        zoo.resolve_detector("tiny-dett")
    with pytest.raises(zoo.ZooError, match="not a person detector"):
        zoo.resolve_detector("small-pose")

    image = tmp_path / "person.jpg"
    cv2.imwrite(str(image), stick_figure())
    weights_file = tmp_path / "pose.pth"
    torch.save(nontrivial_model(small_cfg()).state_dict(), weights_file)
    rc = main(["infer", "--cfg", str(LPN18), *SMALL, "TEST.MODEL_FILE", str(weights_file),
               "--input", str(image), "--output", str(tmp_path / "out"), "--quiet",
               "--backend", "torch", "--detector", "tiny-det", "--detector-backend", "torch"])
    assert rc == 0
    assert "detector tiny-det (torch)" in capsys.readouterr().out


def test_test_command_takes_a_model_name(server, home, monkeypatch, tmp_path, capsys):
    from humanpose.data.synthetic import write_coco_set
    from tests.test_train import DEMO_CFG
    from tests.test_train import SMALL as TRAIN_SMALL

    www, mirror = server
    root = tmp_path / "synthetic"
    write_coco_set(str(root), num_train=1, num_val=2, seed=5)
    cfg = get_cfg(DEMO_CFG, TRAIN_SMALL)
    local = tmp_path / "demo.pth"
    torch.save(nontrivial_model(cfg, seed=1).state_dict(), local)
    data = local.read_bytes()
    url = publish(www, "demo/demo-lpn.pth", data)
    use_entries(monkeypatch, entry("demo-lpn", url, sha256(data), config=str(DEMO_CFG),
                                   opts=tuple(TRAIN_SMALL)))
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    common = ["DATASET.ROOT", str(root), "OUTPUT_DIR", str(tmp_path / "output"), "LOG_DIR",
              str(tmp_path / "log")]
    capsys.readouterr()
    assert main(["test", "--model", "demo-lpn", *common]) == 0
    by_name = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["test", "--cfg", str(DEMO_CFG), *TRAIN_SMALL, *common, "TEST.MODEL_FILE",
                 str(local)]) == 0
    by_file = capsys.readouterr().out.strip().splitlines()[-1]
    assert by_name.startswith("AP ") and by_name == by_file


# ---------------------------------------------------------------------------- weights + config
def test_infer_weights_alone_uses_the_config_they_carry(tmp_path, capsys):
    cfg = small_cfg()
    state = nontrivial_model(cfg, seed=4).state_dict()
    carried = tmp_path / "model_best.pth"
    torch.save(weights_with_config(state, cfg, "lpn18_small.yaml"), carried)
    bare = tmp_path / "bare.pth"
    torch.save(state, bare)
    loaded, name = config_from_weights(carried)
    assert name == "lpn18_small.yaml" and loaded.TEST.MODEL_FILE == str(carried)
    assert list(loaded.MODEL.IMAGE_SIZE) == [96, 128] and loaded.MODEL.NAME == "lpn"

    image = tmp_path / "person.jpg"
    cv2.imwrite(str(image), stick_figure())
    common = ["--input", str(image), "--backend", "torch", "--quiet"]
    assert main(["infer", "--weights", str(carried), "--output", str(tmp_path / "a"),
                 *common]) == 0
    assert main(["infer", "--cfg", str(LPN18), *SMALL, "--weights", str(bare),
                 "--output", str(tmp_path / "b"), *common]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert len(a) == 1 and a == b

    capsys.readouterr()
    assert main(["infer", "--weights", str(bare), "--output", str(tmp_path / "c"),
                 *common]) == 1
    assert "carries no config" in capsys.readouterr().err
    assert main(["infer", "--input", str(image), "--output", str(tmp_path / "d")]) == 2
    assert "--cfg or --model NAME or --weights FILE" in capsys.readouterr().err
    est = PoseEstimator(None, carried, backend="torch")
    assert est(cv2.imread(str(image)))[0].keypoints.shape == (17, 3)


# ---------------------------------------------------------------------------- shipped files
def test_shipped_names_resolve_with_or_without_yaml():
    path = REPO / "experiments" / "coco" / "lpn" / "lpn50_256x192_gd256x2_gc.yaml"
    for spec in ("coco/lpn/lpn50_256x192_gd256x2_gc", "coco/lpn/lpn50_256x192_gd256x2_gc.yaml",
                 "experiments/coco/lpn/lpn50_256x192_gd256x2_gc"):
        assert find_config(spec).resolve() == path.resolve()
    assert "coco/lpn/lpn50_256x192_gd256x2_gc" in shipped_configs()
    assert get_cfg("coco/lpn/lpn50_256x192_gd256x2_gc").MODEL.EXTRA.NUM_LAYERS == 50
    with pytest.raises(ConfigError, match="lpn50_256x192_gd256x2_gc"):
        get_cfg("coco/lpn50_256x192_gd256x2_gc")
    with pytest.raises(HumanposeError, match="not found"):
        find_config("../experiments/coco/lpn/nothing")


def test_non_editable_install_ships_the_experiment_files(tmp_path):
    """``pip install .`` (not editable) into a fresh venv; from another folder the shipped
    experiment files are found by name. About 5 s: no dependencies are installed (the venv
    sees this interpreter's packages) and nothing is downloaded."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("humanpose", "experiments"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run([str(python), "-m", "pip", "install", "--no-deps",
                              "--no-build-isolation", "--no-index", "-q", str(src)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    shutil.rmtree(src)  # the installed package must not need its source
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import json, humanpose, humanpose.shipped as s\n"
        "cfg = humanpose.get_cfg('coco/lpn/lpn50_256x192_gd256x2_gc')\n"
        "print(json.dumps({'package': humanpose.__file__, 'dir': str(s.experiments_dir()),\n"
        "    'names': s.shipped_configs(), 'layers': cfg.MODEL.EXTRA.NUM_LAYERS}))\n")
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                         env=env, cwd=elsewhere, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout)
    assert found["package"].startswith(str(venv))
    assert found["dir"].startswith(str(venv)) and found["dir"].endswith("humanpose/experiments")
    expected = sorted(p.relative_to(REPO / "experiments").with_suffix("").as_posix()
                      for p in (REPO / "experiments").rglob("*.yaml"))
    assert found["names"] == expected and found["layers"] == 50


def test_training_writes_weights_that_carry_their_config(tmp_path):
    from humanpose.data.synthetic import write_coco_set
    from humanpose.engine.train import train
    from tests.test_train import DEMO_CFG
    from tests.test_train import SMALL as TRAIN_SMALL

    root = tmp_path / "synthetic"
    write_coco_set(str(root), num_train=4, num_val=2, seed=2)
    cfg = get_cfg(DEMO_CFG, [*TRAIN_SMALL, "DATASET.ROOT", str(root), "OUTPUT_DIR",
                             str(tmp_path / "out"), "LOG_DIR", str(tmp_path / "log"),
                             "TRAIN.END_EPOCH", "1", "TRAIN.MAX_STEPS_PER_EPOCH", "1"])
    result = train(cfg, DEMO_CFG)
    for name in ("model_best.pth", "final_state.pth"):
        loaded, cfg_name = config_from_weights(result.output_dir / name)
        assert cfg_name == DEMO_CFG.name
        assert loaded.MODEL.dump() == cfg.MODEL.dump()
        model = humanpose.build_model(loaded)
        assert humanpose.load_checkpoint(model, result.output_dir / name).ok


def test_new_zoo_entries_name_configs_whose_networks_have_the_listed_size():
    """Whole-body, hand and face entries: the shipped config builds the network the entry
    describes (parameters in millions as listed, input size, key-point count)."""
    import torch

    import humanpose
    from humanpose.shipped import find_config

    joints = {"wholebody133": 133, "hand21": 21, "face106": 106}
    for e in zoo.ENTRIES.values():
        if e.keypoints not in joints and e.task != "pose-one-stage":
            continue
        cfg = humanpose.get_cfg(find_config(e.config))
        assert tuple(cfg.MODEL.IMAGE_SIZE) == e.input_size, e.name
        assert cfg.MODEL.NUM_JOINTS == joints.get(e.keypoints, 17), e.name
        with torch.device("meta"):
            model = humanpose.build_model(cfg, channels_last=False)
        assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == e.params_m, e.name


# ---------------------------------------------------------------------------- runtime ONNX
def test_onnx_packages_are_the_checkpoints_own():
    """Each published mmdeploy package is named after the entry's checkpoint (same digest
    prefix, or for RTMW's undigested files the same name), and is a zip."""
    packaged = {n: e for n, e in zoo.ENTRIES.items() if e.onnx_url}
    assert {"rtmpose-m-body7", "dwpose-m", "rtmw-l", "rtmpose-m-hand", "rtmo-s"} <= set(packaged)
    for name, e in packaged.items():
        assert e.onnx_url.startswith("https://download.openmmlab.com/mmpose/v1/projects/")
        assert "/onnx_sdk/" in e.onnx_url and e.onnx_url.endswith(".zip"), name
        stem = Path(e.onnx_url).stem
        if e.sha256:
            assert f"-{e.sha256}_" in stem, (name, stem)
        else:
            assert stem.replace("_2023", "-2023") == Path(e.url).stem, (name, stem)
    assert not zoo.ENTRIES["rtmpose-m"].onnx_url  # aic-coco: no package published
    assert zoo.entry_record(zoo.ENTRIES["rtmo-s"])["onnx_url"] == zoo.ENTRIES["rtmo-s"].onnx_url


def _package(path: Path, inner: str = "rtmo-s/end2end.onnx") -> bytes:
    """An mmdeploy-like package: end2end.onnx (the crafted two-output RTMO) and a json."""
    import io
    import zipfile

    import numpy as np
    import torch

    from tests.test_one_stage import _TwoOutputs

    dets = np.array([[100, 200, 300, 600, 0.9]], np.float32)
    kpts = np.full((1, 17, 3), 0.8, np.float32)
    torch.onnx.export(_TwoOutputs(dets, kpts), (torch.zeros(1, 3, 640, 640),), str(path),
                      input_names=["input"], output_names=["dets", "keypoints"],
                      opset_version=17, dynamo=False)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(path, inner)
        archive.writestr("rtmo-s/pipeline.json", "{}")
    return buffer.getvalue()


def test_runtime_model_by_zoo_name_downloads_the_package_once(server, home, monkeypatch,
                                                              tmp_path, capsys):
    import numpy as np

    from humanpose.runtime import OneStageModel

    www, mirror = server
    url = zoo.ENTRIES["rtmo-s"].onnx_url
    rel = urllib.parse.urlparse(url).path.lstrip("/")
    publish(www, rel, _package(tmp_path / "made.onnx"))
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    model = OneStageModel("rtmo-s", backend="onnxruntime")
    err = capsys.readouterr().err
    assert f"downloading rtmo-s (ONNX) from {mirror}/{rel}" in err and "unverified" in err
    assert model.path == home / "onnx" / (Path(rel).stem + ".onnx")
    results = model(np.zeros((320, 640, 3), np.uint8))
    np.testing.assert_allclose(results.boxes_xyxy, [[100, 40, 300, 440]], atol=1e-3)
    (www / rel).unlink()  # the cache serves it now
    assert OneStageModel("rtmo-s", backend="onnxruntime").path == model.path
    assert "downloading" not in capsys.readouterr().err


def test_a_broken_package_or_no_torch_for_an_export_is_a_clear_error(server, home,
                                                                       monkeypatch, tmp_path):
    www, mirror = server
    rel = urllib.parse.urlparse(zoo.ENTRIES["dwpose-m"].onnx_url).path.lstrip("/")
    publish(www, rel, b"not a zip")
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    with pytest.raises(zoo.ZooError, match="not a zip file.*delete it"):
        zoo.fetch_onnx("dwpose-m", progress=False)
    rel = urllib.parse.urlparse(zoo.ENTRIES["rtmpose-m-hand"].onnx_url).path.lstrip("/")
    publish(www, rel, _package(tmp_path / "made.onnx", inner="x/model.onnx"))
    with pytest.raises(zoo.ZooError, match="no end2end.onnx in it"):
        zoo.fetch_onnx("rtmpose-m-hand", progress=False)
    # Without PyTorch (humanpose[train]) a model with no published package cannot be made.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(zoo.ZooError, match="rtmdet-nano: no ONNX file is published.*"
                                           "humanpose export --model rtmdet-nano"):
        zoo.fetch_onnx("rtmdet-nano")


def test_runtime_model_by_name_exports_a_checkpoint_once(server, home, monkeypatch, tmp_path,
                                                         capsys):
    """An entry with no published ONNX: PoseModel exports its checkpoint into the cache (as
    ``humanpose export`` does), the person detector too, and reuses the files."""
    from humanpose.detection import build_detector
    from humanpose.runtime import PoseModel

    www, mirror = server
    pose = tmp_path / "small.pth"
    torch.save(nontrivial_model(small_cfg(), seed=3).state_dict(), pose)
    det = tmp_path / "det.pth"
    torch.manual_seed(0)
    torch.save(build_detector(get_cfg(REPO / "experiments" / "detection" /
                                      "person_detector_320.yaml")).state_dict(), det)
    pose_url = publish(www, "mmpose/small-pose.pth", pose.read_bytes())
    det_url = publish(www, "det/tiny-det.pth", det.read_bytes())
    use_entries(monkeypatch, entry("small-pose", pose_url, sha256(pose.read_bytes())),
                entry("tiny-det", det_url, sha256(det.read_bytes()), task="detection",
                      config="detection/person_detector_320", opts=()))
    monkeypatch.setenv("HUMANPOSE_MIRROR", mirror)
    model = PoseModel("small-pose", detector="tiny-det", backend="onnxruntime",
                      flip_test=False)
    assert model.path == home / "onnx" / "small-pose.onnx"
    assert (home / "onnx" / "tiny-det.onnx").is_file()
    assert "exporting small-pose" in capsys.readouterr().err
    image, boxes = stick_figure(), np.array([[100.0, 20, 120, 200]])
    reference = PoseEstimator("small-pose", backend="torch", flip_test=False)
    np.testing.assert_allclose(model(image, boxes).keypoints,
                               reference(image, boxes)[0].keypoints[None, :, :2], atol=1e-3)
    assert model(image).keypoints.shape[1:] == (17, 2)  # boxes from the exported detector
    stamp = model.path.stat().st_mtime_ns
    assert PoseModel("small-pose", backend="onnxruntime").path.stat().st_mtime_ns == stamp
    assert "exporting" not in capsys.readouterr().err
    with pytest.raises(HumanposeError, match="not a person detector"):
        PoseModel("small-pose", detector="small-pose", backend="onnxruntime")
