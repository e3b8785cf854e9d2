"""Loading weights: model-zoo files, our own checkpoints and ImageNet initialisation.

Every file goes through ``torch.load(..., weights_only=True)``: a ``.pth`` found on the
internet can carry pickled code, and loading weights must never run it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from humanpose.errors import HumanposeError

__all__ = ["CheckpointError", "LoadReport", "load_checkpoint", "load_pretrained", "read_state_dict"]

logger = logging.getLogger(__name__)

# Keys under which training scripts (ours, the seed's, mmpose's, timm's) nest the weights.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


class CheckpointError(HumanposeError, RuntimeError):
    """A weights file that cannot be read or does not fit the model."""


@dataclass
class LoadReport:
    """What a (possibly non-strict) load did."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # key, file, model

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file into a flat state dict.

    Accepts a bare state dict, one nested under ``state_dict``/``model`` (training
    checkpoints; ``ema_state_dict`` for ours of TRAIN.EMA runs), and keys prefixed with
    ``module.`` by DataParallel/DDP.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors, truncated files, non-torch files
        raise CheckpointError(
            f"cannot read weights file {path}: {err}. Only tensors and plain containers are "
            "accepted (torch.load(weights_only=True)); re-save the file with "
            "torch.save(model.state_dict(), path).") from err
    state = obj
    if isinstance(state, Mapping) and "ema_steps" in state and \
            _is_state_dict(state.get("ema_state_dict")):
        # A humanpose training checkpoint of a TRAIN.EMA run: the averaged weights, the ones
        # model_best.pth holds (its 'state_dict' holds the raw weights to resume training).
        # mmengine's checkpoints are the other way round, with no 'ema_steps': 'state_dict'.
        state = state["ema_state_dict"]
    if not _is_state_dict(state) and isinstance(state, Mapping):
        for key in _WRAPPER_KEYS:
            if _is_state_dict(state.get(key)):
                state = state[key]
                break
    if not _is_state_dict(state):
        kind = type(obj).__name__
        keys = list(obj)[:8] if isinstance(obj, Mapping) else []
        raise CheckpointError(
            f"{path} holds no state dict (a {kind} with keys {keys}); expected a mapping of "
            f"parameter names to tensors, bare or under one of {list(_WRAPPER_KEYS)}")
    return {_strip_prefix(k): v for k, v in state.items()}


def _strip_prefix(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):  # DDP/DataParallel, torch.compile
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _compare(model: nn.Module, state: Mapping[str, torch.Tensor]) -> LoadReport:
    own = model.state_dict()
    report = LoadReport()
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            report.loaded.append(key)
    # BatchNorm's step counter is absent from checkpoints saved before PyTorch 0.4.1 and is
    # not a weight; PyTorch fills it in, so its absence is no mismatch.
    report.missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    return report


def _guess_family(keys: Iterable[str]) -> str:
    keys = set(keys)
    if "transition1.0.0.weight" in keys or any(k.startswith("stage2.") for k in keys):
        return "pose_hrnet"
    if any(".att." in k for k in keys) or "deconv_layers.3.weight" in keys:
        return "lpn"
    if "deconv_layers.0.weight" in keys:
        return "pose_resnet"
    if "fc.weight" in keys:
        return "an ImageNet classifier (use it as MODEL.PRETRAINED, not as weights)"
    return "unknown"


def _likely_cause(report: LoadReport, file_keys: Iterable[str]) -> str:
    """A guess at the config difference behind a mismatch, for the error message."""
    total = len(report.loaded) + len(report.missing) + len(report.mismatched)
    if total and len(report.loaded) < total / 2:
        return ("most keys differ: the file is probably another architecture (it looks like "
                f"{_guess_family(file_keys)}); check MODEL.NAME and MODEL.EXTRA")
    hints = []
    for key, file_shape, model_shape in report.mismatched:
        if key.startswith("final_layer.") and file_shape[0] != model_shape[0]:
            hints.append(f"the file predicts {file_shape[0]} joints but MODEL.NUM_JOINTS is "
                         f"{model_shape[0]}")
            break
    grouped = [m for m in report.mismatched
               if m[0].endswith(("conv1.weight", "conv2.weight")) and len(m[1]) == 4
               and m[1][0] == m[2][0] and m[1][1] != m[2][1]]
    if grouped:
        key, file_shape, model_shape = grouped[0]
        hints.append(f"grouped convolutions differ ({key}: {file_shape[1]} input channels per "
                     f"group in the file, {model_shape[1]} in the model); for LPN-18/34 try the "
                     "other MODEL.EXTRA.BLOCK_GROUPS variant ('half' or 'depthwise')")
    att_missing = any(".att." in k for k in report.missing)
    att_extra = any(".att." in k for k in report.unexpected)
    if att_missing or att_extra:
        hints.append(f"the file {'has' if att_extra else 'lacks'} attention modules the model "
                     f"{'lacks' if att_extra else 'has'}: check MODEL.EXTRA.ATTENTION "
                     "('GC', 'SE' or '')")
    if not hints and (report.missing or report.unexpected or report.mismatched):
        hints.append("the depth or widths differ: check MODEL.EXTRA (NUM_LAYERS, STAGE*, "
                     "NUM_DECONV_*)")
    return "; ".join(hints)


def _describe(report: LoadReport, limit: int = 10) -> str:
    def listing(items: list) -> str:
        shown = ", ".join(str(i) for i in items[:limit])
        return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")

    parts = []
    if report.missing:
        parts.append(f"missing keys ({len(report.missing)}): {listing(report.missing)}")
    if report.unexpected:
        parts.append(f"unexpected keys ({len(report.unexpected)}): {listing(report.unexpected)}")
    if report.mismatched:
        shapes = [f"{k} file {list(f)} vs model {list(m)}" for k, f, m in report.mismatched]
        parts.append(f"shape mismatches ({len(shapes)}): {listing(shapes)}")
    return "\n  ".join(parts)


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> LoadReport:
    """Load weights from ``path`` into ``model``; see :func:`read_state_dict` for the formats.

    Strict by default: any missing, unexpected or differently shaped key raises a
    :class:`CheckpointError` that lists them and suggests the likely cause. With
    ``strict=False`` the matching tensors are loaded and the report says what was not.
    """
    state = read_state_dict(path)
    report = _compare(model, state)
    if strict and not report.ok:
        cause = _likely_cause(report, state)
        raise CheckpointError(
            f"{path} does not fit the {type(model).__name__} built from the config:\n  "
            f"{_describe(report)}" + (f"\n  likely cause: {cause}" if cause else ""))
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    return report


def load_pretrained(model: nn.Module, path: str | os.PathLike,
                    layers: Iterable[str] = ("*",)) -> LoadReport:
    """Initialise from an ImageNet checkpoint the way the seed does.

    Keys whose first component is in ``layers`` (``MODEL.EXTRA.PRETRAINED_LAYERS``; ``*``
    means all) and whose shapes fit are copied; everything else keeps the seed's
    from-scratch initialisation. Classifier heads and other extras are skipped and logged.
    """
    if not Path(path).is_file():
        raise CheckpointError(f"MODEL.PRETRAINED: file not found: {path}")
    layers = list(layers)
    state = read_state_dict(path)
    if "*" not in layers:
        state = {k: v for k, v in state.items() if k.split(".")[0] in layers}
    report = _compare(model, state)
    if not report.loaded:
        raise CheckpointError(f"MODEL.PRETRAINED {path}: no tensor fits the model "
                              f"({_describe(report, limit=5)})")
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    logger.info("=> loaded %d tensors from %s (%d skipped: not in the model or other shape)",
                len(report.loaded), path, len(report.unexpected) + len(report.mismatched))
    return report
