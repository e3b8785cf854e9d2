"""Loading weights: model-zoo files, our own checkpoints and ImageNet initialisation.

Every file goes through ``torch.load(..., weights_only=True)``: a ``.pth`` found on the
internet can carry pickled code, and loading weights must never run it. Files written by
mmengine (mmpose, mmdet) also pickle objects besides the weights: numpy arrays in
``meta["dataset_meta"]``, ``HistoryBuffer`` objects in ``message_hub``. Each class or
function such a file names is replaced by an inert placeholder (:class:`_Opaque`) that
runs none of the file's code; the weights are read as usual and the rest is dropped.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from humanpose.errors import HumanposeError

__all__ = ["KEYPOINTS_KEY", "CheckpointError", "InitReport", "LoadReport", "config_from_weights",
           "format_init_report", "from_mmpose_layout", "init_from_weights", "load_checkpoint",
           "load_pretrained", "read_keypoint_set", "read_state_dict", "with_keypoints"]

logger = logging.getLogger(__name__)

# Keys under which training scripts (ours, the seed's, mmpose's, timm's) nest the weights.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")
# The entry of humanpose's weight files that describes the joints the model predicts (a
# plain dict, see humanpose.data.keypoints.keypoint_set_to_dict). In a bare state dict it
# is the one non-tensor entry: the seed's strict=False loading ignores it.
KEYPOINTS_KEY = "keypoints"


def with_keypoints(state_dict: Mapping[str, torch.Tensor], keypoints) -> dict:
    """``state_dict`` plus the key-point set (a KeypointSet or its dict; None: unchanged)."""
    if keypoints is None:
        return dict(state_dict)
    if not isinstance(keypoints, Mapping):
        from humanpose.data.keypoints import keypoint_set_to_dict

        keypoints = keypoint_set_to_dict(keypoints)
    return {**state_dict, KEYPOINTS_KEY: dict(keypoints)}


def _load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # files in the legacy (pre-zip) format cannot be mapped
        return torch.load(path, map_location="cpu", weights_only=True)


def read_keypoint_set(path: str | os.PathLike):
    """The key-point set stored in a weights file humanpose wrote, or None (files from
    elsewhere, or written before the set was stored)."""
    from humanpose.data.keypoints import keypoint_set_from_dict

    try:
        obj = _load(Path(path))
    except Exception:  # read_state_dict reports unreadable files
        return None
    entry = obj.get(KEYPOINTS_KEY) if isinstance(obj, Mapping) else None
    if not isinstance(entry, Mapping):
        return None
    return keypoint_set_from_dict(dict(entry), source=f"{path} ({KEYPOINTS_KEY})")


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


class _Opaque:
    """Stands in for any class or function a weights file names beyond torch's own.

    Calling it, creating it and setting its state store nothing and run nothing, so a file
    that pickles numpy arrays, mmengine objects or even ``os.system`` in its metadata loads
    its tensors and nothing else.
    """

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    pickled_name = "an object"

    def __repr__(self) -> str:
        return f"<{self.pickled_name}, not loaded>"


def _stand_in(name: str) -> type:
    """An :class:`_Opaque` subclass that remembers which global it replaces (for errors)."""
    return type(name.rsplit(".", 1)[-1], (_Opaque,), {"pickled_name": name})


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global")
_MAX_PLACEHOLDERS = 256


def _load_weights_only(path: Path):
    """``torch.load(weights_only=True)``, with :class:`_Opaque` for every global it refuses.

    torch names one refused global per attempt, so the file is read again for each new
    name; a file without such globals is read once.
    """
    stand_ins: list[tuple[type, str]] = []
    while True:
        try:
            with torch.serialization.safe_globals(stand_ins):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            match = _UNSAFE_GLOBAL.search(str(err))
            if match is None or len(stand_ins) >= _MAX_PLACEHOLDERS:
                raise
            name = match.group(1)
            if "." not in name:  # torch prints builtins without their module
                name = f"builtins.{name}"
            if any(name == known for _, known in stand_ins):
                raise
            stand_ins.append((_stand_in(name), name))


def _select_state(obj):
    """The weights inside a loaded file, or None.

    mmengine's EMAHook saves the averaged weights under ``state_dict`` (it swaps them in
    before saving) and the raw ones under ``ema_state_dict`` (``module.`` prefix and a
    ``steps`` counter); ``state_dict`` wins, ``ema_state_dict`` is used when it is alone.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get(KEYPOINTS_KEY), Mapping):
        obj = {k: v for k, v in obj.items() if k != KEYPOINTS_KEY}  # humanpose's joints entry
    if isinstance(obj, Mapping) and "ema_steps" in obj and \
            _is_state_dict(obj.get("ema_state_dict")):
        # A humanpose training checkpoint of a TRAIN.EMA run: the averaged weights, the ones
        # model_best.pth holds (its 'state_dict' holds the raw weights to resume training).
        # mmengine's checkpoints are the other way round, with no 'ema_steps': 'state_dict'.
        return obj["ema_state_dict"]
    if _is_state_dict(obj):
        return obj
    if not isinstance(obj, Mapping):
        return None
    for key in _WRAPPER_KEYS:
        if _is_state_dict(obj.get(key)):
            return obj[key]
    ema = obj.get("ema_state_dict")
    if _is_state_dict(ema):
        return {k: v for k, v in ema.items() if k != "steps"}
    return None


def _drop_ema_copies(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the EMA buffers of mmcv 1.x's EMA hooks (``ema_backbone_stem_0_conv_weight``).

    They sit at the top level beside the model's own keys (no dot in their names) and
    mirror them; the model's own keys are what evaluation and deployment use.
    """
    own = {k.replace(".", "_") for k in state if "." in k}
    copies = {k for k in state if k.startswith("ema_") and "." not in k and k[4:] in own}
    return {k: v for k, v in state.items() if k not in copies}


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file into a flat state dict.

    Accepts a bare state dict, one nested under ``state_dict``/``model`` (training
    checkpoints), mmengine's files (``{"meta", "state_dict", ...}``, with or without
    ``ema_state_dict``), ours of TRAIN.EMA runs (the averaged ``ema_state_dict``), and keys
    prefixed with ``module.`` by DataParallel/DDP.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        obj = _load_weights_only(path)
    except Exception as err:  # pickle errors, truncated files, non-torch files
        raise CheckpointError(
            f"cannot read weights file {path}: {err}. Only tensors and plain containers are "
            "accepted (torch.load(weights_only=True)); re-save the file with "
            "torch.save(model.state_dict(), path).") from err
    state = _select_state(obj)
    if state is None:
        kind = obj.pickled_name if isinstance(obj, _Opaque) else type(obj).__name__
        keys = list(obj)[:8] if isinstance(obj, Mapping) else []
        raise CheckpointError(
            f"{path} holds no state dict (a {kind} with keys {keys}); expected a mapping of "
            f"parameter names to tensors, bare or under one of {list(_WRAPPER_KEYS)}")
    return _drop_ema_copies({_strip_prefix(k): v for k, v in state.items()})


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


_MM_PREFIXES = ("backbone.", "neck.", "head.")


def from_mmpose_layout(model: nn.Module, state: dict[str, torch.Tensor]
                       ) -> dict[str, torch.Tensor]:
    """mmpose's top-down HRNet/SimpleBaseline files (``backbone.*``, ``head.final_layer``,
    ``head.deconv_layers``) in the HRNet code base's layout, which the seed's models use:
    mmpose kept every module name under those two prefixes. Files already in the model's
    layout (e.g. RTMPose, whose model is laid out as mmpose's) are returned unchanged."""
    own = model.state_dict().keys()
    if any(k.startswith(_MM_PREFIXES) for k in own) or not state:
        return state
    if not all(k.startswith(_MM_PREFIXES) for k in state):
        return state
    return {k.split(".", 1)[1]: v for k, v in state.items()}


def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> LoadReport:
    """Load weights from ``path`` into ``model``; see :func:`read_state_dict` for the formats.

    Strict by default: any missing, unexpected or differently shaped key raises a
    :class:`CheckpointError` that lists them and suggests the likely cause. With
    ``strict=False`` the matching tensors are loaded and the report says what was not.
    """
    state = from_mmpose_layout(model, read_state_dict(path))
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


@dataclass
class InitReport:
    """What :func:`init_from_weights` did: tensors loaded, tensors of the file skipped
    (each with the reason), and the model's tensors that keep their fresh values."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)


def init_from_weights(model: nn.Module, path: str | os.PathLike,
                      head_prefixes: Sequence[str] = ()) -> InitReport:
    """Start fine-tuning from ``path`` (any layout :func:`read_state_dict` reads).

    Tensors with the model's names and shapes are loaded. When a tensor under
    ``head_prefixes`` (the modules sized by the key-point count) has another shape, the
    file's head was made for another key-point set, and the whole head keeps its fresh
    initialisation: its joint-by-joint layers would be meaningless, and mixing them with
    loaded attention or classifier weights of another set would start from neither.
    """
    state = from_mmpose_layout(model, read_state_dict(path))
    compared = _compare(model, state)
    heads = tuple(head_prefixes)
    other_head = next(((k, f, m) for k, f, m in compared.mismatched
                       if heads and k.startswith(heads)), None)
    report = InitReport()
    for key in compared.loaded:
        if other_head is not None and key.startswith(heads):
            k, f, m = other_head
            report.skipped.append((key, f"head re-initialised: the file's head is for another "
                                        f"key-point set ({k} {list(f)} in the file, "
                                        f"{list(m)} in the model)"))
        else:
            report.loaded.append(key)
    report.skipped += [(k, f"other shape: {list(f)} in the file, {list(m)} in the model")
                       for k, f, m in compared.mismatched]
    report.skipped += [(k, "not in the model") for k in compared.unexpected]
    if not report.loaded:
        raise CheckpointError(f"TRAIN.INIT_WEIGHTS {path}: no tensor fits the "
                              f"{type(model).__name__} built from the config "
                              f"({_describe(compared, limit=5)})")
    model.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    done = set(report.loaded)
    report.fresh = [k for k in model.state_dict()
                    if k not in done and not k.endswith("num_batches_tracked")]
    return report


def _by_module(keys: Iterable[str], depth: int = 2) -> str:
    """``backbone.stem (12), head.gau (9)``: keys counted per leading module path."""
    counts: dict[str, int] = {}
    for key in keys:
        module = ".".join(key.split(".")[:depth])
        counts[module] = counts.get(module, 0) + 1
    return ", ".join(f"{m} ({n})" for m, n in counts.items())


def format_init_report(report: InitReport, path: str | os.PathLike) -> list[str]:
    """Log lines: loaded tensors per module, every skipped tensor with why, and the count
    of tensors left at their fresh values."""
    lines = [f"=> TRAIN.INIT_WEIGHTS {path}: loaded {len(report.loaded)} tensors: "
             f"{_by_module(report.loaded)}"]
    lines += [f"   skipped {key}: {why}" for key, why in report.skipped]
    lines.append(f"   {len(report.fresh)} tensors of the model keep their fresh "
                 f"initialisation" + (f": {_by_module(report.fresh)}" if report.fresh else ""))
    return lines


def config_from_weights(path: str | os.PathLike, opts=()) -> tuple:
    """(config, name of the experiment file it came from) that a humanpose weights file
    carries (``cfg``, else a training checkpoint's ``model_cfg`` over the defaults), with
    ``opts`` applied and ``TEST.MODEL_FILE`` set to ``path``; the name (the weights' own
    when none is stored) names output folders. Files from elsewhere carry no config: the
    error says to give ``--cfg``."""
    import yaml

    from humanpose.config import cfg_from_yaml_text

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        obj = _load_weights_only(path)
    except Exception as err:
        raise CheckpointError(f"cannot read weights file {path}: {err}") from err
    text = None
    if isinstance(obj, dict):
        if isinstance(obj.get("cfg"), str):
            text = obj["cfg"]
        elif isinstance(obj.get("model_cfg"), str):
            text = yaml.safe_dump({"MODEL": yaml.safe_load(obj["model_cfg"])})
    if text is None:
        raise CheckpointError(f"{path} carries no config (bare weights, or a file humanpose did "
                             "not write); give the experiment file too: --cfg FILE")
    cfg = cfg_from_yaml_text(text, str(path), [*opts, "TEST.MODEL_FILE", str(path)])
    name = obj.get("cfg_name") or path.name
    return cfg, name if isinstance(name, str) else path.name
