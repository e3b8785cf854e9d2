"""Where a run writes, and its training checkpoints (atomic save, checked resume).

The layout is the seed's: ``OUTPUT_DIR/<dataset>/<model>/<cfg name>/`` holds
``checkpoint.pth``, ``model_best.pth``, ``final_state.pth``, logs and results;
TensorBoard events go to ``LOG_DIR/<dataset>/<model>/<cfg name>_<time>/``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from humanpose.errors import HumanposeError

__all__ = ["ResumeError", "load_resumed_weights", "load_training_state",
           "missing_resume_entries", "model_config_diff", "restore_optimization", "run_dirs",
           "save_atomic", "setup_logging", "weights_with_config"]

# What a humanpose training checkpoint holds beyond the weights and epoch. The HRNet code
# base (the seed) writes {epoch, model, state_dict (DataParallel's "module." keys),
# best_state_dict, perf, optimizer}: no step, scheduler, scaler or best metric of its own.
RESUME_ENTRIES = ("optimizer", "scheduler", "scaler", "best_perf")

logger = logging.getLogger("humanpose")


class ResumeError(HumanposeError, RuntimeError):
    """A training checkpoint that cannot continue this run."""


def run_dirs(cfg, cfg_path: str | os.PathLike, create: bool = True) -> tuple[Path, Path]:
    """(output folder, TensorBoard folder) of a run, named as the seed names them."""
    dataset = cfg.DATASET.DATASET
    if cfg.DATASET.HYBRID_JOINTS_TYPE:
        dataset += "_" + cfg.DATASET.HYBRID_JOINTS_TYPE
    dataset = dataset.replace(":", "_")
    name = Path(cfg_path).name.split(".")[0]
    out = Path(cfg.OUTPUT_DIR or "output") / dataset / cfg.MODEL.NAME / name
    tb = Path(cfg.LOG_DIR or "log") / dataset / cfg.MODEL.NAME / \
        f"{name}_{time.strftime('%Y-%m-%d-%H-%M')}"
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out, tb


def setup_logging(output_dir: Path, cfg_path: str | os.PathLike, phase: str,
                  is_main: bool, rank: int = 0) -> logging.Logger:
    """The 'humanpose' logger: a plain log file per rank, and the console on rank 0."""
    log = logging.getLogger("humanpose")
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    name = Path(cfg_path).name.split(".")[0]
    suffix = "" if rank == 0 else f"_rank{rank}"
    log_file = output_dir / f"{name}_{time.strftime('%Y-%m-%d-%H-%M')}_{phase}{suffix}.log"
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)-15s %(message)s"))
    log.addHandler(file_handler)
    if is_main:
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(console)
    return log


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``:
    a crash mid-write leaves the previous file intact, never a truncated one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError) and err.filename is None:  # a full disk names no file
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise


def model_config_diff(saved_yaml: str, cfg) -> list[str]:
    """Keys of MODEL whose values differ between a checkpoint's config and ``cfg``."""
    saved = yaml.safe_load(saved_yaml) or {}
    current = yaml.safe_load(cfg.MODEL.dump()) or {}
    diffs = []

    def walk(a: dict, b: dict, prefix: str) -> None:
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key), b.get(key)
            if isinstance(va, dict) and isinstance(vb, dict):
                walk(va, vb, prefix + key + ".")
            elif va != vb and key not in ("PRETRAINED", "INIT_WEIGHTS", "SYNC_BN"):
                diffs.append(f"{prefix}{key}: checkpoint {va!r}, config {vb!r}")

    walk(saved, current, "MODEL.")
    return diffs


# What NumPy scalars pickle to (np.float64(0.7) -> scalar(dtype('float64'), bytes)); NumPy 1
# (the seed's era) names the function numpy.core.multiarray.scalar, NumPy 2 numpy._core....
_SCALAR = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar
_NUMPY_SCALARS = [_SCALAR, (_SCALAR, "numpy.core.multiarray.scalar"), np.dtype,
                  *{type(np.dtype(t)) for t in "fdiq"}]


def load_training_state(path: Path, cfg) -> dict:
    """Read a training checkpoint and check that it belongs to this architecture."""
    try:
        # The seed saves ``perf`` as a NumPy scalar (COCOeval's stats): allowed, nothing else.
        with torch.serialization.safe_globals(_NUMPY_SCALARS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ResumeError(f"cannot read training checkpoint {path}: {err}") from err
    if not isinstance(state, dict) or "state_dict" not in state or "epoch" not in state:
        raise ResumeError(f"{path} is not a humanpose training checkpoint (no 'state_dict' "
                          "and 'epoch'); to start from weights use MODEL.PRETRAINED")
    if isinstance(state.get("model"), str) and state["model"] != cfg.MODEL.NAME:
        raise ResumeError(f"{path} holds a {state['model']!r} model; this run trains "
                          f"MODEL.NAME {cfg.MODEL.NAME!r}")
    if isinstance(state.get("perf"), np.generic):
        state["perf"] = float(state["perf"])
    if "best_perf" not in state and isinstance(state.get("perf"), (int, float)):
        state["best_perf"] = float(state["perf"])  # the seed's name (it resumes from it too)
    if "model_cfg" in state:
        diffs = model_config_diff(state["model_cfg"], cfg)
        if diffs:
            raise ResumeError(f"{path} was trained with another architecture; cannot resume "
                              "this run from it:\n  " + "\n  ".join(diffs) +
                              "\nUse another OUTPUT_DIR, delete the checkpoint, or set "
                              "AUTO_RESUME False.")
    return state


def missing_resume_entries(state: dict) -> list[str]:
    """The entries of :data:`RESUME_ENTRIES` a checkpoint lacks (a seed file lacks most)."""
    return [name for name in RESUME_ENTRIES if name not in state]


def load_resumed_weights(model: torch.nn.Module, state_dict: dict, path: Path) -> None:
    """Load a checkpoint's weights strictly, without DataParallel's ``module.`` prefix."""
    prefix = "module."
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ResumeError(f"the weights in {path} do not fit this model: {err}") from err


def restore_optimization(state: dict, optimizer: torch.optim.Optimizer, scheduler,
                         scaler, steps_done: int) -> None:
    """Restore what ``state`` holds of the optimizer, schedule and scaler.

    Without a scheduler entry (a seed checkpoint) the schedule is put at ``steps_done``
    iterations, which sets every group's learning rate to the one of that point.
    """
    if "optimizer" in state:
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise ResumeError(f"the optimizer state in the checkpoint does not fit "
                              f"TRAIN.OPTIMIZER and this model: {err}") from err
    if "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    else:
        scheduler.last_epoch = steps_done
        lrs = [base * lmbda(steps_done)
               for base, lmbda in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
        for group, lr in zip(optimizer.param_groups, lrs):
            group["lr"] = lr
        scheduler._last_lr = lrs
    if "scaler" in state:
        scaler.load_state_dict(state["scaler"])


def weights_with_config(state_dict: dict, cfg, cfg_path: str | os.PathLike | None = None) -> dict:
    """What ``model_best.pth`` and ``final_state.pth`` hold: the weights under
    ``state_dict`` (where :func:`humanpose.load_checkpoint` finds them) and the full config
    they were trained with, so that the file alone can be run (``infer --weights``)."""
    return {"state_dict": state_dict, "cfg": cfg.dump(), "model": cfg.MODEL.NAME,
            "model_cfg": cfg.MODEL.dump(),
            "cfg_name": Path(cfg_path).name if cfg_path is not None else ""}
