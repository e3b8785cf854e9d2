"""The experiment configuration: a yacs schema holding every key of the seed's YAML files.

The keys and their defaults mean what they meant in the seed (``humanpose.pytorch``, itself
the HRNet code base), so a seed experiment file loads unchanged and trains/tests the same
way. Keys that humanpose adds have defaults that keep the seed files' meaning.

Unlike the seed, ``MODEL.EXTRA`` has a fixed schema too, so a misspelt key anywhere fails
loudly instead of being silently ignored.
"""

from __future__ import annotations

import ast
import difflib
import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from yacs.config import CfgNode

from humanpose.errors import HumanposeError

__all__ = ["ConfigError", "default_config", "get_cfg", "load_yaml"]


class ConfigError(HumanposeError, ValueError):
    """A configuration file or override that does not fit the schema."""


def _stage(num_modules: int, num_branches: int, block: str, num_blocks: list[int],
           num_channels: list[int]) -> CfgNode:
    node = CfgNode()
    node.NUM_MODULES = num_modules
    node.NUM_BRANCHES = num_branches
    node.BLOCK = block
    node.NUM_BLOCKS = num_blocks
    node.NUM_CHANNELS = num_channels
    node.FUSE_METHOD = "SUM"
    return node


def default_config() -> CfgNode:
    """A fresh copy of the schema with its defaults (the seed's ``lib/config/default.py``)."""
    c = CfgNode()
    c.OUTPUT_DIR = ""
    c.LOG_DIR = ""
    c.DATA_DIR = ""
    c.GPUS = (0,)
    c.WORKERS = 4
    c.PRINT_FREQ = 20
    c.AUTO_RESUME = False
    c.PIN_MEMORY = True
    c.VERBOSE = True
    c.RANK = 0
    c.DIST_BACKEND = "nccl"
    c.DIST_URL = "tcp://localhost:23456"
    c.MULTIPROCESSING_DISTRIBUTED = True
    # humanpose: "cpu", "cuda", "cuda:1"...; empty picks CUDA when available (under torchrun,
    # each process takes the GPU of its LOCAL_RANK).
    c.DEVICE = ""

    c.CUDNN = CfgNode()
    c.CUDNN.BENCHMARK = True
    c.CUDNN.DETERMINISTIC = False
    c.CUDNN.ENABLED = True

    c.MODEL = CfgNode()
    c.MODEL.NAME = "pose_hrnet"
    c.MODEL.INIT_WEIGHTS = True
    c.MODEL.PRETRAINED = ""
    c.MODEL.NUM_JOINTS = 17
    c.MODEL.TAG_PER_JOINT = True
    c.MODEL.TARGET_TYPE = "gaussian"
    c.MODEL.IMAGE_SIZE = [256, 256]  # width, height
    c.MODEL.HEATMAP_SIZE = [64, 64]  # width, height
    c.MODEL.SIGMA = 2
    c.MODEL.SYNC_BN = False
    # The codec (humanpose.codecs): "heatmap" or "simcc"; empty: the model family's own.
    c.MODEL.CODEC = ""
    c.MODEL.SIMCC = CfgNode()
    c.MODEL.SIMCC.SPLIT_RATIO = 2.0  # bins per input pixel
    c.MODEL.SIMCC.SIGMA = []  # label Gaussian (x, y) in bins; empty: mmpose's for the size
    c.MODEL.SIMCC.NORMALIZE = False

    # Architecture details. The union of what pose_resnet, pose_hrnet and lpn read.
    e = CfgNode()
    e.PRETRAINED_LAYERS = ["*"]
    e.FINAL_CONV_KERNEL = 1
    # SimpleBaseline / LPN
    e.NUM_LAYERS = 50
    e.DECONV_WITH_BIAS = False
    e.NUM_DECONV_LAYERS = 3
    e.NUM_DECONV_FILTERS = [256, 256, 256]
    e.NUM_DECONV_KERNELS = [4, 4, 4]
    # LPN: attention after each block ("GC", "SE" or "" for none; absent in the seed = none)
    e.ATTENTION = ""
    # LPN-18/34 grouped 3x3 convs: "half" (groups = channels // 2, the seed code) or "depthwise"
    e.BLOCK_GROUPS = "half"
    # HRNet
    e.STEM_INPLANES = 64
    e.STAGE1 = _stage(1, 1, "BOTTLENECK", [4], [64])
    e.STAGE2 = _stage(1, 2, "BASIC", [4, 4], [32, 64])
    e.STAGE3 = _stage(1, 3, "BASIC", [4, 4, 4], [32, 64, 128])
    e.STAGE4 = _stage(1, 4, "BASIC", [4, 4, 4, 4], [32, 64, 128, 256])
    # Person detector (MODEL.NAME person_detector, humanpose.detection): channels of the
    # stem and of the stride 4/8/16/32 stages, BasicBlocks per stage, channels of the
    # stride-4 neck and head; decoding: boxes kept per image, their least score, box-NMS IoU.
    e.DET_WIDTHS = [16, 24, 48, 96, 192]
    e.DET_DEPTHS = [1, 1, 2, 2]
    e.DET_NECK_CHANNELS = 48
    e.DET_MAX_DETECTIONS = 100
    e.DET_SCORE_THRE = 0.01
    e.DET_NMS_THRE = 0.7
    c.MODEL.EXTRA = e

    c.LOSS = CfgNode()
    c.LOSS.USE_OHKM = False
    c.LOSS.TOPK = 8
    c.LOSS.USE_TARGET_WEIGHT = True
    c.LOSS.USE_DIFFERENT_JOINTS_WEIGHT = False
    # SimCC's KL loss (MODEL.CODEC simcc): mmpose's KLDiscretLoss settings of RTMPose.
    c.LOSS.SIMCC_BETA = 10.0
    c.LOSS.SIMCC_LABEL_SOFTMAX = True
    c.LOSS.SIMCC_LABEL_BETA = 10.0

    c.DATASET = CfgNode()
    c.DATASET.ROOT = ""
    c.DATASET.DATASET = "mpii"
    c.DATASET.TRAIN_SET = "train"
    c.DATASET.TEST_SET = "valid"
    c.DATASET.DATA_FORMAT = "jpg"
    c.DATASET.HYBRID_JOINTS_TYPE = ""
    c.DATASET.SELECT_DATA = False
    c.DATASET.FLIP = True
    c.DATASET.SCALE_FACTOR = 0.25
    c.DATASET.ROT_FACTOR = 30
    c.DATASET.PROB_HALF_BODY = 0.0
    c.DATASET.NUM_JOINTS_HALF_BODY = 8
    c.DATASET.COLOR_RGB = False
    # Unbiased data processing (Huang et al. 2020) for the crop and the targets; False = seed.
    c.DATASET.UDP = False
    # Skip unreadable/missing images (counted in a warning) instead of raising.
    c.DATASET.SKIP_BAD_IMAGES = False
    # Flip pairs [[i, j], ...] (0-based); empty = derived from left_/right_ joint names.
    c.DATASET.FLIP_PAIRS = []
    # Per-joint OKS sigmas in KeypointSet units (COCO nose = 0.26); empty = COCO's/default.
    c.DATASET.OKS_SIGMAS = []
    # Joints used by half-body augmentation as the upper body; empty = derived from names.
    c.DATASET.UPPER_BODY_IDS = []
    # Opt-in fast loading: uint8 crops normalised on the device, reduced-resolution decode.
    c.DATASET.FAST_MODE = False
    # Training augmentation: "seed" (the seed's draws, exactly) or "rtmpose" (mmpose 1.3's
    # RTMPose pipeline: flip, half body, box shift/scale/rotate from truncated normals, then on
    # the crop YOLOX HSV, Blur, MedianBlur and CoarseDropout). The AUG_* keys are read by
    # "rtmpose" only; the AUG_STAGE2_* values replace them for the last TRAIN.STAGE2_EPOCHS.
    # "rtmpose" reads FLIP, PROB_HALF_BODY (mmpose: 0.3) and NUM_JOINTS_HALF_BODY (half body
    # needs more visible joints than this, as in the seed: 8 = mmpose's minimum of 9).
    c.DATASET.AUG_STYLE = "seed"
    c.DATASET.AUG_SHIFT_FACTOR = 0.16  # box centre shift, in box sizes (truncated normal)
    c.DATASET.AUG_SHIFT_PROB = 0.3
    c.DATASET.AUG_SCALE_RANGE = [0.6, 1.4]  # box scale range (truncated normal over it)
    c.DATASET.AUG_SCALE_PROB = 1.0
    c.DATASET.AUG_ROTATE_FACTOR = 80.0  # degrees (truncated normal times this)
    c.DATASET.AUG_ROTATE_PROB = 0.6
    # Colour: "hsv" (mmdet's YOLOXHSVRandomAug, the COCO recipe), "photometric" (mmpose's
    # PhotometricDistortion, the Halpe-26 recipe's first stage) or "none".
    c.DATASET.AUG_COLOR = "hsv"
    c.DATASET.AUG_HSV = [5, 30, 30]  # YOLOX HSV deltas (hue, saturation, value); [] = off
    c.DATASET.AUG_BLUR_PROB = 0.1  # albumentations Blur, kernel 3..7
    c.DATASET.AUG_MEDIAN_BLUR_PROB = 0.1  # albumentations MedianBlur, kernel 3..7
    c.DATASET.AUG_DROPOUT_PROB = 1.0  # CoarseDropout: one hole, 0.2-0.4 of the crop size
    c.DATASET.AUG_DROPOUT_SIZE = [0.2, 0.4]
    c.DATASET.AUG_STAGE2_SHIFT_FACTOR = 0.0
    c.DATASET.AUG_STAGE2_SCALE_RANGE = [0.75, 1.25]
    c.DATASET.AUG_STAGE2_ROTATE_FACTOR = 60.0
    c.DATASET.AUG_STAGE2_DROPOUT_PROB = 0.5
    c.DATASET.AUG_STAGE2_COLOR = "hsv"  # the Halpe-26 recipe: "none"

    c.TRAIN = CfgNode()
    c.TRAIN.LR_FACTOR = 0.1
    c.TRAIN.LR_STEP = [90, 110]
    c.TRAIN.LR = 0.001
    c.TRAIN.OPTIMIZER = "adam"
    c.TRAIN.MOMENTUM = 0.9
    c.TRAIN.WD = 0.0001
    c.TRAIN.NESTEROV = False
    c.TRAIN.GAMMA1 = 0.99
    c.TRAIN.GAMMA2 = 0.0
    c.TRAIN.BEGIN_EPOCH = 0
    c.TRAIN.END_EPOCH = 140
    c.TRAIN.RESUME = False
    c.TRAIN.CHECKPOINT = ""
    c.TRAIN.BATCH_SIZE_PER_GPU = 32
    c.TRAIN.SHUFFLE = True
    # humanpose additions; the defaults marked "fast" can be set back to the seed's exact
    # fp32 behaviour with TRAIN.AMP none TRAIN.CHANNELS_LAST False.
    c.TRAIN.AMP = "auto"  # fast: "auto" (bf16 where the CPU/GPU has it), "bf16", "fp16", "none"
    c.TRAIN.CHANNELS_LAST = True  # fast: NHWC weights and activations
    c.TRAIN.COMPILE = False  # torch.compile the model
    c.TRAIN.CLIP_GRAD = 0.0  # max gradient norm; 0 disables clipping
    c.TRAIN.LR_SCHEDULER = "multistep"  # "multistep" (the seed's) or "cosine"
    c.TRAIN.WARMUP_EPOCHS = 0.0  # linear warm-up length, in (fractional) epochs
    # RTMPose's schedule (mmengine LinearLR then CosineAnnealingLR, per iteration): warm-up
    # over WARMUP_ITERS iterations from WARMUP_START_FACTOR * LR; "cosine" stays at LR until
    # COSINE_BEGIN_EPOCH (of the stage), then anneals to LR * COSINE_MIN_LR_RATIO at the end.
    c.TRAIN.WARMUP_ITERS = 0
    c.TRAIN.WARMUP_START_FACTOR = 1e-5
    c.TRAIN.COSINE_BEGIN_EPOCH = 0
    c.TRAIN.COSINE_MIN_LR_RATIO = 0.0
    # False: no weight decay on normalisation layers' weights and on biases (mmpose's
    # paramwise_cfg norm_decay_mult=0, bias_decay_mult=0); True: decay on all (the seed's).
    c.TRAIN.NORM_BIAS_DECAY = True
    # Exponential moving average of the weights (mmdet's ExpMomentumEMA): validated, kept as
    # model_best.pth / final_state.pth, and saved with checkpoint.pth for resuming.
    c.TRAIN.EMA = False
    c.TRAIN.EMA_MOMENTUM = 0.0002
    c.TRAIN.EMA_GAMMA = 2000.0
    # The last STAGE2_EPOCHS epochs of DATASET.AUG_STYLE "rtmpose" use the AUG_STAGE2_* values
    # (mmpose's PipelineSwitchHook at END_EPOCH - STAGE2_EPOCHS); 0: no switch.
    c.TRAIN.STAGE2_EPOCHS = 0
    c.TRAIN.VAL_INTERVAL = 1  # validate every N epochs and after the last; 0: never
    c.TRAIN.MAX_STEPS_PER_EPOCH = 0  # cap iterations per epoch (quick runs); 0 = all
    c.TRAIN.SEED = 1337  # random seed (the seed's tools/train.py --seed default)
    # LPN's iterative training: after the schedule, restart N times from the best weights
    # with a fresh optimizer and schedule of ITERATIVE_EPOCHS epochs (0: the full schedule).
    c.TRAIN.ITERATIVE_STAGES = 0
    c.TRAIN.ITERATIVE_EPOCHS = 0

    c.TEST = CfgNode()
    c.TEST.BATCH_SIZE_PER_GPU = 32
    c.TEST.FLIP_TEST = False
    c.TEST.POST_PROCESS = False
    c.TEST.SHIFT_HEATMAP = False
    c.TEST.USE_GT_BBOX = False
    c.TEST.IMAGE_THRE = 0.1
    c.TEST.NMS_THRE = 0.6
    c.TEST.SOFT_NMS = False
    c.TEST.OKS_THRE = 0.5
    c.TEST.IN_VIS_THRE = 0.0
    c.TEST.COCO_BBOX_FILE = ""
    c.TEST.BBOX_THRE = 1.0
    c.TEST.MODEL_FILE = ""
    c.TEST.SOFT_ARGMAX = False
    c.TEST.BIAS = 0.0
    # humanpose additions
    c.TEST.DECODER = ""  # "argmax", "softargmax" or "dark"; empty: from TEST.SOFT_ARGMAX
    c.TEST.AMP = "none"  # "none" (the seed's fp32), "bf16" or "fp16" for the test forward

    c.DEBUG = CfgNode()
    c.DEBUG.DEBUG = False
    c.DEBUG.SAVE_BATCH_IMAGES_GT = False
    c.DEBUG.SAVE_BATCH_IMAGES_PRED = False
    c.DEBUG.SAVE_HEATMAPS_GT = False
    c.DEBUG.SAVE_HEATMAPS_PRED = False
    return c


def _all_keys(node: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for k, v in node.items():
        keys.append(prefix + k)
        if isinstance(v, CfgNode):
            keys.extend(_all_keys(v, prefix + k + "."))
    return keys


def _unknown_key_error(key: str, source: str) -> ConfigError:
    known = _all_keys(default_config())
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    msg = f"{source}: unknown config key {key!r}"
    if hint:
        msg += f" (did you mean {hint[0]!r}?)"
    return ConfigError(msg)


def _coerce(key: str, old, value, source: str):
    """Return ``value`` converted to the type of the default ``old``, or raise naming ``key``."""
    if isinstance(value, str) and not isinstance(old, str):
        value = _parse_value(value)
    if isinstance(old, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(old, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(old, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(old, str):
        if isinstance(value, str):
            return value
        if value is None:
            return ""
    elif isinstance(old, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return type(old)(value)
        if isinstance(value, int) and not isinstance(value, bool):  # GPUS: 0
            return type(old)([value])
    raise ConfigError(
        f"{source}: {key} expects {type(old).__name__} (default {old!r}), got "
        f"{type(value).__name__} {value!r}"
    )


def _merge(cfg: CfgNode, src: dict, source: str, prefix: str = "") -> None:
    """Merge a nested dict into ``cfg``, checking every key and type against the schema.

    yacs could do the merge, but its errors name neither the file nor a likely correction.
    """
    for key, value in src.items():
        full = prefix + str(key)
        if key not in cfg:
            raise _unknown_key_error(full, source)
        if isinstance(cfg[key], CfgNode):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {full} must be a mapping of keys, got {value!r}")
            _merge(cfg[key], value, source, full + ".")
        else:
            cfg[key] = _coerce(full, cfg[key], value, source)


def load_yaml(path: str | os.PathLike) -> dict:
    """Read an experiment file, failing with its path on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return data


def _parse_value(raw: str):
    """A command-line value as a Python literal (the seed's way) or a YAML scalar ('true')."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def merge_opts(cfg: CfgNode, opts: Sequence[str]) -> None:
    """Apply ``KEY VALUE`` pairs from the command line (Python literals or YAML scalars)."""
    if len(opts) % 2:
        raise ConfigError(f"command-line overrides come in KEY VALUE pairs, got {list(opts)}")
    for key, raw in zip(opts[0::2], opts[1::2]):
        node = cfg
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, CfgNode) or part not in node:
                raise _unknown_key_error(key, "command line")
            if i < len(parts) - 1:
                node = node[part]
        if isinstance(node[parts[-1]], CfgNode):
            raise ConfigError(f"command line: {key} is a group of keys, not a value")
        node[parts[-1]] = _coerce(key, node[parts[-1]], raw, "command line")


def _join_data_dir(cfg: CfgNode) -> None:
    """The seed resolves these three paths against DATA_DIR."""
    cfg.DATASET.ROOT = os.path.join(cfg.DATA_DIR, cfg.DATASET.ROOT)
    if cfg.MODEL.PRETRAINED:
        cfg.MODEL.PRETRAINED = os.path.join(cfg.DATA_DIR, cfg.MODEL.PRETRAINED)
    if cfg.TEST.MODEL_FILE:
        cfg.TEST.MODEL_FILE = os.path.join(cfg.DATA_DIR, cfg.TEST.MODEL_FILE)


def get_cfg(path: str | os.PathLike | None = None, opts: Sequence[str] = (),
            freeze: bool = True) -> CfgNode:
    """Build a config: defaults, then the YAML file at ``path``, then ``KEY VALUE`` ``opts``.

    Unknown keys and values of the wrong type raise :class:`ConfigError` naming the file
    (or "command line") and the key.
    """
    cfg = default_config()
    if path is not None:
        _merge(cfg, load_yaml(path), str(path))
    merge_opts(cfg, list(opts))
    _join_data_dir(cfg)
    if freeze:
        cfg.freeze()
    return cfg
