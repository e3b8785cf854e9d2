"""Bad input ends in one line naming the key or path, never a traceback (unless --debug)."""

import errno
import os
import subprocess
import sys
import warnings

import pytest
import torch

import humanpose
from humanpose.cli import main
from humanpose.config import ConfigError, ConfigWarning
from humanpose.data.synthetic import write_coco_set

from .conftest import EXPERIMENTS, REPO

LPN18 = EXPERIMENTS / "coco/lpn/lpn18_256x192_gd256x2_gc.yaml"
DEMO_CFG = REPO / "humanpose" / "configs" / "demo_lpn_synthetic.yaml"
SMALL = ["MODEL.EXTRA.NUM_LAYERS", "18", "MODEL.EXTRA.BLOCK_GROUPS", "depthwise",
         "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]",
         "TRAIN.BATCH_SIZE_PER_GPU", "4", "WORKERS", "0", "TRAIN.AMP", "none",
         "TRAIN.END_EPOCH", "1", "TRAIN.MAX_STEPS_PER_EPOCH", "1", "TRAIN.VAL_INTERVAL", "100"]


def humanpose_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "humanpose", *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, **(env or {})))


@pytest.mark.parametrize("key, bad, allowed", [
    ("TRAIN.OPTIMIZER", "adamx", "'sgd'"),
    ("TRAIN.LR_SCHEDULER", "step", "'cosine'"),
    ("TEST.DECODER", "argmin", "'dark'"),
    ("MODEL.NAME", "pose_hrnett", "'pose_hrnet'"),
    ("TRAIN.AMP", "fp8", "'bf16'"),
    ("TEST.AMP", "int8", "'fp16'"),
    ("DATASET.DATA_FORMAT", "tiff", "'zip'"),
    ("MODEL.EXTRA.BLOCK_GROUPS", "quarter", "'depthwise'"),
    ("MODEL.EXTRA.ATTENTION", "CBAM", "'GC'"),
    ("MODEL.EXTRA.STAGE2.BLOCK", "BASICC", "'BOTTLENECK'"),
])
def test_bad_enum_value_fails_at_config_time_with_the_allowed_values(key, bad, allowed):
    with pytest.raises(ConfigError) as info:
        humanpose.get_cfg(LPN18, [key, bad])
    message = str(info.value)
    assert key in message and repr(bad) in message and allowed in message


def test_enum_values_keep_their_accepted_spellings():
    cfg = humanpose.get_cfg(LPN18, ["TRAIN.OPTIMIZER", "SGD", "TRAIN.AMP", "None",
                                    "MODEL.EXTRA.ATTENTION", "se", "TEST.DECODER", "dark"])
    assert cfg.TRAIN.OPTIMIZER == "SGD"


def test_model_names_come_from_the_registry(monkeypatch):
    from humanpose import models

    with pytest.raises(ConfigError, match="person_detector") as info:
        humanpose.get_cfg(LPN18, ["MODEL.NAME", "my_net"])
    assert "'lpn'" in str(info.value)
    monkeypatch.setitem(models.MODEL_BUILDERS, "my_net", lambda cfg: torch.nn.Identity())
    assert humanpose.get_cfg(LPN18, ["MODEL.NAME", "my_net"]).MODEL.NAME == "my_net"


def test_heatmap_size_that_does_not_fit_the_image_size_names_both():
    with pytest.raises(ConfigError) as info:
        humanpose.get_cfg(LPN18, ["MODEL.HEATMAP_SIZE", "[64, 64]"])
    message = str(info.value)
    assert "MODEL.HEATMAP_SIZE [64, 64]" in message and "MODEL.IMAGE_SIZE [192, 256]" in message
    assert "[48, 64]" in message  # what lpn outputs for 192x256


@pytest.mark.parametrize("name, size", [
    *[(f"coco/{net}", size) for net in ("lpn/lpn18_256x192_gd256x2_gc",
                                        "resnet/res50_256x192_d256x3_adam_lr1e-3")
      for size in ((192, 256), (100, 130), (36, 52))],
    # HRNet's branches fuse only when the input divides by 32
    *[("coco/hrnet/w18_small_v1_256x192_adam_lr1e-3", size) for size in ((192, 256),
                                                                           (96, 160))],
])
def test_checked_heatmap_size_is_what_the_network_outputs(name, size):
    """The config check's size per family equals a forward pass (on the meta device)."""
    from humanpose.models import heatmap_size

    cfg = humanpose.get_cfg(EXPERIMENTS / f"{name}.yaml", freeze=False)
    cfg.MODEL.IMAGE_SIZE = list(size)
    with torch.device("meta"):
        model = humanpose.build_model(cfg, channels_last=False)
        out = model(torch.empty(1, 3, size[1], size[0]))
    assert heatmap_size(cfg) == (out.shape[-1], out.shape[-2])


def test_seed_keys_humanpose_ignores_are_named_in_one_warning(tmp_path):
    path = tmp_path / "seed.yaml"
    path.write_text(LPN18.read_text() + "\nCUDNN:\n  BENCHMARK: true\n")
    with pytest.warns(ConfigWarning) as record:
        humanpose.get_cfg(path)
    assert len(record) == 1
    message = str(record[0].message)
    assert "GPUS" in message and "DEBUG.SAVE_HEATMAPS_PRED" in message
    assert "CUDNN.BENCHMARK" not in message  # set, but to the default: nothing to believe
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        humanpose.get_cfg(None, ["MODEL.IMAGE_SIZE", "[256, 256]"])  # defaults: no warning


def test_train_resume_key_takes_a_path_or_the_seed_boolean():
    assert humanpose.get_cfg(None, ["TRAIN.RESUME", "runs/a.pth"]).TRAIN.RESUME == "runs/a.pth"
    assert humanpose.get_cfg(None, ["TRAIN.RESUME", "False"]).TRAIN.RESUME == ""
    assert humanpose.get_cfg(None, ["TRAIN.RESUME", "True", "TRAIN.CHECKPOINT", "c.pth"]
                             ).TRAIN.RESUME == "c.pth"
    with pytest.raises(ConfigError, match="TRAIN.CHECKPOINT"):
        humanpose.get_cfg(None, ["TRAIN.RESUME", "True"])


def test_bad_enum_on_the_command_line_has_no_traceback_unless_debug():
    proc = humanpose_cli("info", "--cfg", str(LPN18), "TRAIN.OPTIMIZER", "adamx")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "TRAIN.OPTIMIZER 'adamx'" in proc.stderr
    assert "humanpose info: warning: " in proc.stderr and "GPUS" in proc.stderr
    proc = humanpose_cli("info", "--cfg", str(LPN18), "TRAIN.OPTIMIZER", "adamx", "--debug")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_unwritable_output_folder_is_one_line_and_exit_1(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "runs"
    args = ["--cfg", str(DEMO_CFG), *SMALL, "OUTPUT_DIR", str(out), "DATASET.ROOT",
            str(tmp_path / "data"), "LOG_DIR", str(tmp_path / "log")]
    for run in (lambda: humanpose_cli("train", *args),
                lambda: subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), *args],
                                       capture_output=True, text=True, timeout=120)):
        proc = run()
        assert proc.returncode == 1, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if "error" in line]
        assert len(lines) == 1 and str(blocker) in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
    for env in ({"HUMANPOSE_DEBUG": "1"}, {}):
        proc = humanpose_cli("train", *args, *([] if env else ["--debug"]), env=env)
        assert proc.returncode == 1 and "Traceback" in proc.stderr


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_coco_set(str(root), num_train=4, num_val=2, seed=3)
    return root


def test_full_disk_while_saving_is_one_line_naming_the_file(synthetic_root, tmp_path,
                                                           monkeypatch, capsys):
    import humanpose.engine.state as state

    def full_disk(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write() raises it

    monkeypatch.setattr(state.torch, "save", full_disk)
    rc = main(["train", "--cfg", str(DEMO_CFG), *SMALL, "DATASET.ROOT", str(synthetic_root),
               "OUTPUT_DIR", str(tmp_path / "out"), "LOG_DIR", str(tmp_path / "log")])
    err = capsys.readouterr().err
    assert rc == 1
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "No space left on device" in lines[0]
    assert "checkpoint.pth" in lines[0] and "Traceback" not in err
    assert not list((tmp_path / "out").rglob("*.tmp"))  # no half-written file left


def test_permission_error_is_one_line_naming_the_path(monkeypatch, capsys, tmp_path):
    import humanpose.engine.train as engine

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/runs/coco")

    monkeypatch.setattr(engine, "run_dirs", denied)
    rc = main(["train", "--cfg", str(DEMO_CFG), *SMALL, "DATASET.ROOT", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip() == "humanpose train: error: Permission denied: /srv/runs/coco"
