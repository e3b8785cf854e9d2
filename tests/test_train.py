"""The training engine end to end on generated data: outputs, resume, DDP, bad situations."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import humanpose
from humanpose.checkpoint import read_state_dict
from humanpose.cli import main
from humanpose.data.keypoints import COCO
from humanpose.data.synthetic import write_coco_set
from humanpose.engine.train import TrainingError, _seed_epoch, train

from .conftest import REPO

DEMO_CFG = REPO / "humanpose" / "configs" / "demo_lpn_synthetic.yaml"
SMALL = ["MODEL.EXTRA.NUM_LAYERS", "18", "MODEL.EXTRA.BLOCK_GROUPS", "depthwise",
         "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]",
         "TRAIN.BATCH_SIZE_PER_GPU", "4", "TEST.BATCH_SIZE_PER_GPU", "8", "WORKERS", "0",
         "TRAIN.AMP", "none"]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_coco_set(str(root), num_train=6, num_val=3, seed=3)
    return root


def make_cfg(root: Path, out: Path, *opts: str):
    return humanpose.get_cfg(DEMO_CFG, [*SMALL, "DATASET.ROOT", str(root), "OUTPUT_DIR",
                                        str(out / "output"), "LOG_DIR", str(out / "log"), *opts])


def weights(path: Path) -> dict:
    """The weights of a file training wrote (model_best/final_state wrap them with the config)."""
    obj = torch.load(path, weights_only=True)
    return obj["state_dict"] if "cfg" in obj and "epoch" not in obj else obj


def assert_same_state(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if not isinstance(a[k], torch.Tensor):  # the key-point set entry
            assert a[k] == b[k], k
        elif a[k].dtype.is_floating_point:
            assert torch.allclose(a[k], b[k], atol=atol, rtol=0), k
        else:
            assert torch.equal(a[k], b[k]), k


def test_train_writes_the_seed_layout_and_test_prints_ap(synthetic_root, tmp_path, capsys):
    cfg = make_cfg(synthetic_root, tmp_path, "TRAIN.END_EPOCH", "1", "TRAIN.MAX_STEPS_PER_EPOCH",
                   "2")
    result = train(cfg, DEMO_CFG)
    out = tmp_path / "output" / "coco" / "lpn" / "demo_lpn_synthetic"
    assert result.output_dir == out
    for name in ("checkpoint.pth", "model_best.pth", "final_state.pth", "metrics.json",
                 "results/keypoints_val2017_results_0.json"):
        assert (out / name).is_file(), name
    assert list(out.glob("demo_lpn_synthetic_*_train.log"))
    ckpt = weights(out / "checkpoint.pth")
    assert ckpt["epoch"] == 1 and {"optimizer", "scheduler", "scaler"} <= ckpt.keys()
    for name in ("checkpoint.pth", "model_best.pth", "final_state.pth"):  # the model's joints
        saved = torch.load(out / name, weights_only=True)
        assert saved["keypoints"]["names"] == list(COCO.names), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "AP" and 0.0 <= metrics["AP"] <= 1.0

    capsys.readouterr()
    rc = main(["test", "--cfg", str(DEMO_CFG), *SMALL, "DATASET.ROOT", str(synthetic_root),
               "OUTPUT_DIR", str(tmp_path / "output"), "LOG_DIR", str(tmp_path / "log"),
               "TEST.MODEL_FILE", str(out / "model_best.pth")])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert lines[-1] == f"AP {metrics['AP']:.4f}"
    assert any(line.startswith("| Arch | AP | Ap .5 | AP .75") for line in lines)


def test_resume_after_a_stop_continues_identically(synthetic_root, tmp_path):
    # A schedule that does not depend on END_EPOCH (cosine would), so stopping changes nothing.
    opts = ("TRAIN.MAX_STEPS_PER_EPOCH", "2", "TRAIN.VAL_INTERVAL", "100", "AUTO_RESUME", "True",
            "TRAIN.LR_SCHEDULER", "multistep", "TRAIN.LR_STEP", "[1]", "TRAIN.WARMUP_EPOCHS", "0")
    straight = train(make_cfg(synthetic_root, tmp_path / "a", "TRAIN.END_EPOCH", "2", *opts),
                     DEMO_CFG)
    # The same run stopped after its first epoch, then started again with AUTO_RESUME.
    first = make_cfg(synthetic_root, tmp_path / "b", "TRAIN.END_EPOCH", "1", *opts)
    stopped = train(first, DEMO_CFG)
    resumed = train(make_cfg(synthetic_root, tmp_path / "b", "TRAIN.END_EPOCH", "2", *opts),
                    DEMO_CFG)
    assert stopped.epochs_run == 1 and resumed.epochs_run == 1
    a = weights(straight.output_dir / "checkpoint.pth")
    b = weights(resumed.output_dir / "checkpoint.pth")
    assert_same_state(a["state_dict"], b["state_dict"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][k]["exp_avg"],
                           b["optimizer"]["state"][k]["exp_avg"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 4


def test_interrupt_leaves_a_resumable_checkpoint(synthetic_root, tmp_path, monkeypatch):
    from humanpose.engine import train as engine

    calls = {"n": 0}
    original = engine._Run._check_finite

    def interrupt_on_second_step(self, loss):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, loss)

    monkeypatch.setattr(engine._Run, "_check_finite", interrupt_on_second_step)
    cfg = make_cfg(synthetic_root, tmp_path, "TRAIN.END_EPOCH", "1", "AUTO_RESUME", "True")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, DEMO_CFG)
    out = tmp_path / "output" / "coco" / "lpn" / "demo_lpn_synthetic"
    state = weights(out / "checkpoint.pth")
    assert state["epoch"] == 0 and state["step"] == 1
    monkeypatch.undo()
    resumed = train(cfg, DEMO_CFG)  # continues the interrupted epoch from its second batch
    assert resumed.epochs_run == 1
    assert weights(out / "checkpoint.pth")["epoch"] == 1


def test_nan_loss_stops_with_step_and_checkpoint(synthetic_root, tmp_path):
    cfg = make_cfg(synthetic_root, tmp_path, "TRAIN.END_EPOCH", "1", "TRAIN.LR", "1e30",
                   "TRAIN.OPTIMIZER", "sgd")
    with pytest.raises(TrainingError, match=r"loss is (nan|inf) at epoch 0 step \d+.*Last good "
                                            r"checkpoint: none"):
        train(cfg, DEMO_CFG)


def test_missing_data_folder_fails_before_the_model_is_built(tmp_path, monkeypatch):
    import humanpose.pose.task as engine

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be built")

    monkeypatch.setattr(engine.PoseTask, "build_model", no_model)
    cfg = make_cfg(tmp_path / "nowhere", tmp_path)
    with pytest.raises(humanpose.errors.HumanposeError, match="nowhere"):
        train(cfg, DEMO_CFG)


def test_resume_from_another_architecture_fails_clearly(synthetic_root, tmp_path, capsys):
    args = [str(DEMO_CFG), *SMALL, "DATASET.ROOT", str(synthetic_root), "OUTPUT_DIR",
            str(tmp_path / "output"), "LOG_DIR", str(tmp_path / "log"), "TRAIN.END_EPOCH", "1",
            "TRAIN.MAX_STEPS_PER_EPOCH", "1", "TRAIN.VAL_INTERVAL", "100"]
    assert main(["train", "--cfg", *args]) == 0
    capsys.readouterr()
    rc = main(["train", "--cfg", *args, "AUTO_RESUME", "True", "MODEL.EXTRA.NUM_LAYERS", "34"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "another architecture" in err and "NUM_LAYERS: checkpoint 18, config 34" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ddp_equals_one_process(synthetic_root, tmp_path):
    """Two processes of batch 2 make the update of one process of batch 4: same samples
    (DistributedSampler shards one permutation), gradients averaged, and BatchNorm statistics
    over the global batch (MODEL.SYNC_BN, CPU-synchronised). Augmentation is off so that
    both runs see identical crops."""
    common = ["MODEL.SYNC_BN", "True", "DATASET.FLIP", "False", "DATASET.SCALE_FACTOR", "0.0",
              "DATASET.ROT_FACTOR", "0",
              "DATASET.PROB_HALF_BODY", "0.0", "TRAIN.OPTIMIZER", "sgd", "TRAIN.LR", "0.5",
              "TRAIN.MOMENTUM", "0.0", "TRAIN.WD", "0.0", "TRAIN.END_EPOCH", "1",
              "TRAIN.LR_SCHEDULER", "multistep", "TRAIN.WARMUP_EPOCHS", "0.0",
              "TRAIN.VAL_INTERVAL", "100", "TRAIN.CHANNELS_LAST", "False",
              "TRAIN.MAX_STEPS_PER_EPOCH", "1"]

    def run(nproc: int, batch: int, name: str) -> dict:
        opts = [*SMALL, *common, "TRAIN.BATCH_SIZE_PER_GPU", str(batch), "DATASET.ROOT",
                str(synthetic_root), "OUTPUT_DIR", str(tmp_path / name), "LOG_DIR",
                str(tmp_path / "log")]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               "-m", "humanpose", "train", "--cfg", str(DEMO_CFG), *opts]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return weights(tmp_path / name / "coco" / "lpn" / "demo_lpn_synthetic" /
                       "final_state.pth")

    cfg = make_cfg(synthetic_root, tmp_path)
    _seed_epoch(cfg.TRAIN.SEED, -1, 0)  # the engine's seeding before it builds the model
    init = humanpose.build_model(cfg, channels_last=False).state_dict()
    single = run(1, 4, "single")
    ddp = run(2, 2, "ddp")
    assert_same_state(single, ddp, atol=1e-6)
    moved = max((single[k] - init[k]).abs().max().item() for k in init
                if k.endswith("weight") and "bn" not in k)
    assert moved > 1e-4  # the step did change the weights


def test_demo_smoke(tmp_path, capsys):
    """`humanpose demo` end to end, shrunk: synth, train, test, draw, print AP (the detector
    part is tests/test_demo.py's)."""
    rc = main(["demo", "--workdir", str(tmp_path), "--train", "4", "--val", "2", "--no-detector",
               *SMALL,
               "TRAIN.END_EPOCH", "1", "TRAIN.MAX_STEPS_PER_EPOCH", "2"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    assert out[-1].startswith("AP ") and 0.0 <= float(out[-1].split()[1]) <= 1.0
    assert (tmp_path / "data" / "annotations" / "person_keypoints_val2017.json").is_file()
    assert list((tmp_path / "predictions").glob("*.jpg"))


def seed_layout_checkpoint(cfg, path: Path, epoch: int, perf: float) -> dict:
    """A checkpoint as the HRNet code base's tools/train.py writes it: a DataParallel
    model's state_dict ("module." keys), the optimizer (after MultiStepLR set initial_lr),
    and no step, scheduler, scaler or model config; ``perf`` is a NumPy scalar, as the
    seed's COCO evaluation returns it."""
    model = humanpose.build_model(cfg, channels_last=cfg.TRAIN.CHANNELS_LAST)
    parallel = torch.nn.DataParallel(model)
    optimizer = torch.optim.Adam(parallel.parameters(), lr=cfg.TRAIN.LR)
    torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.TRAIN.LR_STEP), cfg.TRAIN.LR_FACTOR)
    parallel(torch.randn(2, 3, 64, 48)).square().mean().backward()
    optimizer.step()
    state = {"epoch": epoch, "model": cfg.MODEL.NAME, "state_dict": parallel.state_dict(),
             "best_state_dict": model.state_dict(), "perf": np.float64(perf),
             "optimizer": optimizer.state_dict()}
    assert all(k.startswith("module.") for k in state["state_dict"])
    torch.save(state, path)
    return state


def test_resume_from_a_seed_layout_checkpoint(synthetic_root, tmp_path):
    opts = ("TRAIN.MAX_STEPS_PER_EPOCH", "2", "TRAIN.VAL_INTERVAL", "100", "TRAIN.LR", "0.01",
            "TRAIN.LR_SCHEDULER", "multistep", "TRAIN.LR_STEP", "[2]", "TRAIN.WARMUP_EPOCHS",
            "0", "TRAIN.RESUME", str(tmp_path / "checkpoint.pth"))
    seed = seed_layout_checkpoint(make_cfg(synthetic_root, tmp_path), tmp_path / "checkpoint.pth",
                                  epoch=2, perf=0.25)
    # Resumed at its END_EPOCH: nothing to train, the final weights are the seed's.
    done = train(make_cfg(synthetic_root, tmp_path / "a", "TRAIN.END_EPOCH", "2", *opts),
                 DEMO_CFG)
    assert done.epochs_run == 0 and done.best_metric == 0.25
    final = read_state_dict(done.output_dir / "final_state.pth")
    assert_same_state(final, {k[len("module."):]: v for k, v in seed["state_dict"].items()})
    log = "".join(p.read_text() for p in done.output_dir.glob("*_train.log"))
    assert "has no scheduler, scaler" in log

    # One more epoch: the third (index 2), after LR_STEP [2], so at LR * LR_FACTOR.
    resumed = train(make_cfg(synthetic_root, tmp_path / "b", "TRAIN.END_EPOCH", "3", *opts),
                    DEMO_CFG)
    assert resumed.epochs_run == 1
    state = weights(resumed.output_dir / "checkpoint.pth")
    assert state["epoch"] == 3 and state["best_perf"] == 0.25
    assert state["scheduler"]["last_epoch"] == 3 * 2  # iterations of epochs 0-2
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.001)
    # The optimizer's moments continued from the seed's (one step there, two here).
    assert state["optimizer"]["state"][0]["step"].item() == 3


def test_sigterm_leaves_a_resumable_checkpoint(synthetic_root, tmp_path):
    import signal
    import time

    out = tmp_path / "output" / "coco" / "lpn" / "demo_lpn_synthetic"
    opts = [*SMALL, "DATASET.ROOT", str(synthetic_root), "OUTPUT_DIR", str(tmp_path / "output"),
            "LOG_DIR", str(tmp_path / "log"), "TRAIN.END_EPOCH", "1000",
            "TRAIN.VAL_INTERVAL", "100", "AUTO_RESUME", "True"]
    proc = subprocess.Popen([sys.executable, "-m", "humanpose", "train", "--cfg", str(DEMO_CFG),
                             *opts], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pth").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # training is under way once the first epoch is saved
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr and "stopped by SIGTERM" in stderr
    assert "resumable checkpoint" in stdout
    state = weights(out / "checkpoint.pth")
    stopped_at = state["epoch"]
    assert 1 <= stopped_at < 1000
    resumed = train(make_cfg(synthetic_root, tmp_path, "TRAIN.END_EPOCH", str(stopped_at + 1),
                             "TRAIN.VAL_INTERVAL", "100", "AUTO_RESUME", "True"), DEMO_CFG)
    assert resumed.epochs_run == 1  # the rest of the stopped epoch
    assert weights(out / "checkpoint.pth")["epoch"] == stopped_at + 1


def test_nan_weights_are_never_saved_as_the_last_good_checkpoint(synthetic_root, tmp_path,
                                                                 monkeypatch):
    from humanpose.engine import train as engine

    original = engine._Run.train_epoch

    def nan_after_second_epoch(self, loader, epoch, *args):
        loss = original(self, loader, epoch, *args)
        if epoch == 1:  # the last step left NaN weights behind a finite loss
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))
        return loss

    monkeypatch.setattr(engine._Run, "train_epoch", nan_after_second_epoch)
    cfg = make_cfg(synthetic_root, tmp_path, "TRAIN.END_EPOCH", "3",
                   "TRAIN.MAX_STEPS_PER_EPOCH", "1", "TRAIN.VAL_INTERVAL", "100")
    out = tmp_path / "output" / "coco" / "lpn" / "demo_lpn_synthetic"
    with pytest.raises(TrainingError, match=r"NaN/inf after epoch 1 .*Last good checkpoint: "
                                            + re.escape(str(out / "checkpoint.pth"))):
        train(cfg, DEMO_CFG)
    state = weights(out / "checkpoint.pth")
    assert state["epoch"] == 1  # epoch 0's, not epoch 1's
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values()
               if v.is_floating_point())
    assert not (out / "final_state.pth").exists()


def test_the_engine_finds_the_tasks_without_the_task_packages_imported_first():
    """``engine.train.train(cfg)`` from a script that imported only the engine: the pose and
    detector tasks load on the first look-up (it said 'the models that can: []')."""
    code = ("from humanpose.config import get_cfg\n"
            "from humanpose.engine.task import task_for\n"
            "cfg = get_cfg(); cfg.defrost()\n"
            "for name in ('lpn', 'pose_hrnet', 'person_detector'):\n"
            "    cfg.MODEL.NAME = name; print(type(task_for(cfg)).__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["PoseTask", "PoseTask", "DetectionTask"]
