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
import warnings
from collections.abc import Callable, Sequence

import yaml
from yacs.config import CfgNode

from humanpose.errors import HumanposeError

__all__ = ["ConfigError", "ConfigWarning", "UNUSED_KEYS", "cfg_from_yaml_text", "default_config",
           "get_cfg", "load_yaml", "tracker_settings"]


class ConfigError(HumanposeError, ValueError):
    """A configuration file or override that does not fit the schema."""


class ConfigWarning(UserWarning):
    """A config key was set that humanpose accepts (seed files have it) but never reads."""


# Seed keys that no humanpose code reads: accepted so that seed files load, and named in a
# ConfigWarning when a file or the command line sets them away from the default, so that
# nobody believes they took effect. (DDP comes from torchrun, devices from DEVICE.)
UNUSED_KEYS = (
    "GPUS", "VERBOSE", "RANK", "DIST_BACKEND", "DIST_URL", "MULTIPROCESSING_DISTRIBUTED",
    "CUDNN.BENCHMARK", "CUDNN.DETERMINISTIC", "CUDNN.ENABLED", "MODEL.TAG_PER_JOINT",
    "TRAIN.GAMMA1", "TRAIN.GAMMA2", "TEST.NMS_THRE", "TEST.BBOX_THRE",
    "DEBUG.DEBUG", "DEBUG.SAVE_BATCH_IMAGES_GT", "DEBUG.SAVE_BATCH_IMAGES_PRED",
    "DEBUG.SAVE_HEATMAPS_GT", "DEBUG.SAVE_HEATMAPS_PRED",
)

# TRAIN.RESUME True (the seed's boolean) means "resume from TRAIN.CHECKPOINT".
_RESUME_FROM_CHECKPOINT = "<TRAIN.CHECKPOINT>"


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


def tracker_settings(cfg: CfgNode) -> dict:
    """``cfg.TRACK`` as :class:`~humanpose.inference.tracking.PoseTracker`'s keyword
    arguments (the same names in lower case)."""
    return {key.lower(): value for key, value in cfg.TRACK.items()}


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
    # humanpose: when the data are loaded in the main process (no loader workers, e.g. a CPU
    # without free cores), a thread loads this many batches ahead during the model's work
    # (training and test); 0: load between steps. The batches are the same either way.
    c.PREFETCH_BATCHES = 2
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
    c.MODEL.USE_UDP = False  # the UDP code base's name for DATASET.UDP (either turns it on)
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
    # RTMDet (humanpose.detection.rtmdet): candidates kept per level before NMS (mmdet's
    # test_cfg.nms_pre); its score_thr, NMS IoU and max_per_img are the three keys above.
    e.DET_NMS_PRE = 1000
    # CSPNeXt backbone (rtmpose, rtmdet), as mmdet's CSPNeXt: depth and width multipliers of
    # the P5 layout, hidden-channel ratio of the CSP layers, depthwise-separable stage convs,
    # SPP pooling sizes, channel attention in every CSP layer.
    e.DEEPEN_FACTOR = 1.0
    e.WIDEN_FACTOR = 1.0
    e.EXPAND_RATIO = 0.5
    e.USE_DEPTHWISE = False
    e.SPP_KERNEL_SIZES = [5, 9, 13]
    e.CHANNEL_ATTENTION = True
    # RTMCC head (rtmpose; its final conv kernel is FINAL_CONV_KERNEL, 7 in mmpose; its SimCC
    # bins per input pixel are MODEL.SIMCC.SPLIT_RATIO): token size, and the gated attention
    # unit's settings.
    e.HIDDEN_DIMS = 256
    e.GAU_S = 128
    e.GAU_EXPANSION_FACTOR = 2.0
    e.GAU_DROPOUT = 0.0
    e.GAU_DROP_PATH = 0.0
    e.GAU_ACT = "SiLU"
    e.GAU_USE_REL_BIAS = False
    e.GAU_POS_ENC = False
    # RTMDet (MODEL.NAME rtmdet; DET_NECK_CHANNELS is the CSPNeXt-PAFPN's output width):
    # CSP blocks per neck layer, the head's conv width and depth, whether the levels share
    # the head's convs (each keeps its BN), exp() on the box distances, the prediction conv
    # kernel, classes.
    e.DET_NECK_CSP_BLOCKS = 3
    e.DET_FEAT_CHANNELS = 256
    e.DET_STACKED_CONVS = 2
    e.DET_SHARE_CONV = True
    e.DET_EXP_ON_REG = True
    e.DET_PRED_KERNEL = 1
    e.DET_NUM_CLASSES = 1
    c.MODEL.EXTRA = e
    # RTMO (MODEL.NAME rtmo; depth/width are EXTRA.DEEPEN_FACTOR/WIDEN_FACTOR): the hybrid
    # encoder's width, its output width (= the head's input and pose-vector width: 256, 384,
    # 512 for rtmo-s/m/l), the best-scoring anchors whose key points the network decodes,
    # and the decoder's score threshold and NMS IoU (mmpose's test_cfg).
    c.MODEL.RTMO = CfgNode()
    c.MODEL.RTMO.HIDDEN_DIM = 256
    c.MODEL.RTMO.OUT_CHANNELS = 256
    c.MODEL.RTMO.TOPK = 300
    c.MODEL.RTMO.SCORE_THR = 0.1
    c.MODEL.RTMO.NMS_THR = 0.65

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
    # Key-point set overrides for COCO-format sets. None (the default, YAML ``null``) means
    # "not given: derive"; a list is taken as given, so ``FLIP_PAIRS: []`` says "this set has
    # no flip pairs, I know" (see _NULLABLE_LISTS).
    # Flip pairs [[i, j], ...] (0-based); None = derived from the joints' sided names.
    c.DATASET.FLIP_PAIRS = None
    # Per-joint OKS sigmas in pycocotools' scale (COCO nose = 0.026); None = COCO's sigma of
    # the joint with the same normalised name, else a default (logged).
    c.DATASET.SIGMAS = None
    # Skeleton for drawing, [[i, j], ...] 0-based; None = the annotation file's (1-based there).
    c.DATASET.SKELETON = None
    # Which category of the annotation file holds the people: its name or id as a string
    # ("person", "3"); empty = the one named "person", else the only one with key points.
    c.DATASET.CATEGORY = ""
    # The model's joints when no annotation file says (inference from a bare config, a file
    # whose category names no joints): "coco", "halpe26", "mpii", "coco_wholebody" (133; its
    # official files' part fields are joined, humanpose.data.wholebody), "hand21", "face68",
    # "face106" (humanpose.data.keypoints.KEYPOINT_SETS); empty: derive from the data.
    c.DATASET.KEYPOINT_SET = ""
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
    # humanpose: the path of any training checkpoint to resume from (ours, or the seed's
    # DataParallel checkpoint.pth); empty = off. The seed's True means TRAIN.CHECKPOINT.
    c.TRAIN.RESUME = ""
    # Fine-tuning: a zoo name (rtmpose-m) or a weights file to start from. Tensors with the
    # same name and shape are loaded; a head made for another key-point count (or any tensor
    # of another shape) keeps its fresh initialisation. The log lists what was loaded and
    # what was skipped, and why. Applied after MODEL.PRETRAINED, before TRAIN.RESUME.
    c.TRAIN.INIT_WEIGHTS = ""
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
    # Flip test in the validations before a stage's last epoch. True (the seed's): every
    # validation uses TEST.FLIP_TEST, so model_best.pth is chosen among comparable APs. False
    # (faster: about half the validation's forward work) validates them without it; the last
    # epoch of each stage still uses TEST.FLIP_TEST, so the final AP is `humanpose test`'s.
    c.TRAIN.VAL_FLIP_TEST = True
    c.TRAIN.MAX_STEPS_PER_EPOCH = 0  # cap iterations per epoch (quick runs); 0 = all
    c.TRAIN.SEED = 1337  # random seed (the seed's tools/train.py --seed default)
    # LPN's iterative training: after the schedule, restart N times from the best weights
    # with a fresh optimizer and schedule of ITERATIVE_EPOCHS epochs (0: the full schedule).
    c.TRAIN.ITERATIVE_STAGES = 0
    c.TRAIN.ITERATIVE_EPOCHS = 0

    # Video identities (humanpose infer --track, PoseEstimator/PoseModel.track): the
    # settings of humanpose.inference.tracking.PoseTracker, by the same names in capitals
    # (its docstring says what each does). The defaults are the tracker's.
    c.TRACK = CfgNode()
    c.TRACK.HIGH_SCORE = 0.5  # boxes scoring this are matched first and may start tracks
    c.TRACK.MIN_HITS = 3  # frames in a row before a new track's id is written
    c.TRACK.REID_SECONDS = 2.0  # how long a lost track is remembered and looked for
    c.TRACK.MIN_APPEARANCE = 0.6  # torso-colour similarity to find a lost person again
    c.TRACK.FILL_MISSED = 3  # frames after its last detector box a missed person is cropped for
    c.TRACK.OKS_WEIGHT = 0.5  # share of OKS in the similarity (the rest: box IoU)
    c.TRACK.MIN_SIMILARITY = 0.2  # the gate: less similar pairs are never matched
    c.TRACK.KEYPOINT_THRESHOLD = 0.2  # joints at this confidence count as seen
    c.TRACK.START_CONFIDENCE = 0.4  # mean joint confidence to start a track
    c.TRACK.KEEP_CONFIDENCE = 0.25  # ... to continue one
    c.TRACK.UNCERTAIN_CONFIDENCE = 0.35  # a matched track below this asks for the detector
    c.TRACK.SEARCH_FRAMES = 5  # a lost track asks for the detector this many frames
    c.TRACK.MIN_BOX_IOU = 0.3  # a track left over takes a box left over this close
    c.TRACK.LOST_REACH = 0.5  # ... or this near, in person heights (0: off)
    c.TRACK.CROWD_OVERLAP = 0.3  # tracks covered this much by another are crowded
    c.TRACK.DUPLICATE_OKS = 0.8  # a person this similar to another of the frame is a copy
    c.TRACK.VELOCITY_SMOOTHING = 0.3  # weight of the newest displacement
    c.TRACK.OKS_SCALE = 1.0  # OKS object area as a share of the predicted box's

    c.TEST = CfgNode()
    c.TEST.BATCH_SIZE_PER_GPU = 32
    c.TEST.FLIP_TEST = False
    c.TEST.POST_PROCESS = False
    c.TEST.SHIFT_HEATMAP = False
    c.TEST.USE_UDP = False  # the UDP code base's name for DATASET.UDP (either turns it on)
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
    # What runs the test's forward pass: "torch" (the model as trained, the seed's), or an
    # inference backend: "onnxruntime", "openvino", "openvino-fp32" (the ONNX export, cached
    # by the weights' content), "auto" (the fastest fp32 one here, measured once and cached).
    # `humanpose test` only; validation during training runs on "torch".
    c.TEST.BACKEND = "torch"

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


# Keys whose default None means "not given" and that otherwise hold a list: yacs allows
# None values, and None (unlike []) lets an explicit empty list mean "none, I know".
_NULLABLE_LISTS = ("DATASET.FLIP_PAIRS", "DATASET.SIGMAS", "DATASET.SKELETON")


def _coerce(key: str, old, value, source: str):
    """Return ``value`` converted to the type of the default ``old``, or raise naming ``key``."""
    if key == "TRAIN.RESUME":  # a path here, a boolean in the seed
        flag = value.lower() if isinstance(value, str) else value
        if flag in (True, "true"):
            return _RESUME_FROM_CHECKPOINT
        if flag in (False, "false", None):
            return ""
    if key in _NULLABLE_LISTS:
        if isinstance(value, str):
            value = _parse_value(value)
        if value is None or isinstance(value, (list, tuple)):
            return None if value is None else list(value)
        raise ConfigError(f"{source}: {key} expects a list (or null: derive), got "
                          f"{type(value).__name__} {value!r}")
    if key == "DATASET.CATEGORY" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a category id
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
    """Read an experiment file (a path or a shipped name), failing with its path on any
    problem."""
    from humanpose.shipped import find_config

    try:
        path = find_config(path)
    except HumanposeError as err:
        raise ConfigError(str(err)) from None
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
    source = f"{path} (or the command line)" if path is not None else "command line"
    _resolve_resume(cfg, source)
    _resolve_udp(cfg)
    _warn_unused(cfg, source)
    check_config(cfg, source)
    if freeze:
        cfg.freeze()
    return cfg


def _resolve_udp(cfg: CfgNode) -> None:
    """UDP is one switch, DATASET.UDP, read by the crops and the codec (which then never
    applies TEST.SHIFT_HEATMAP); files of the UDP code base say TEST.USE_UDP or
    MODEL.USE_UDP."""
    if cfg.TEST.USE_UDP or cfg.MODEL.USE_UDP:
        cfg.DATASET.UDP = True


def _resolve_resume(cfg: CfgNode, source: str) -> None:
    if cfg.TRAIN.RESUME == _RESUME_FROM_CHECKPOINT:
        if not cfg.TRAIN.CHECKPOINT:
            raise ConfigError(f"{source}: TRAIN.RESUME True needs TRAIN.CHECKPOINT (or give "
                              "TRAIN.RESUME the checkpoint's path)")
        cfg.TRAIN.RESUME = cfg.TRAIN.CHECKPOINT


def _warn_unused(cfg: CfgNode, source: str) -> None:
    defaults = default_config()
    changed = [key for key in UNUSED_KEYS if _get(cfg, key) != _get(defaults, key)]
    if changed:
        warnings.warn(f"{source}: humanpose does not read {', '.join(changed)} (accepted for "
                      "seed files; these settings have no effect)", ConfigWarning, stacklevel=3)


def _get(cfg: CfgNode, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _choices(values, case_sensitive: bool = True) -> Callable[[], tuple[tuple, bool]]:
    return lambda: (tuple(values), case_sensitive)


def _model_names() -> tuple[tuple, bool]:
    # Read at validation time: every family registered by then counts (the detection
    # package adds its networks to the same dict when humanpose is imported).
    from humanpose.models import MODEL_BUILDERS

    return tuple(MODEL_BUILDERS), True


def _decoders() -> tuple[tuple, bool]:
    from humanpose.codecs import DECODERS

    return ("", *DECODERS), True


def _codec_names() -> tuple:
    from humanpose.codecs import CODECS

    return tuple(CODECS)


def _keypoint_set_names() -> tuple:
    from humanpose.data.keypoints import KEYPOINT_SETS

    return tuple(KEYPOINT_SETS)


def _block_groups() -> tuple[tuple, bool]:
    from humanpose.models.lpn import BLOCK_GROUPS

    return BLOCK_GROUPS, True


def _hrnet_blocks() -> tuple[tuple, bool]:
    from humanpose.models.hrnet import BLOCKS

    return tuple(BLOCKS), True


_AMP = _choices(("auto", "none", "fp32", "bf16", "fp16", ""), case_sensitive=False)

# Keys whose value is one of a few names: key -> () -> (allowed values, case-sensitive?),
# checked by get_cfg so that a typo fails before anything is built.
ENUM_KEYS: dict[str, Callable[[], tuple[tuple, bool]]] = {
    "MODEL.NAME": _model_names,
    "TRAIN.OPTIMIZER": _choices(("adam", "adamw", "sgd"), case_sensitive=False),
    "TRAIN.LR_SCHEDULER": _choices(("multistep", "cosine"), case_sensitive=False),
    "TRAIN.AMP": _AMP,
    "TEST.AMP": _AMP,
    "TEST.BACKEND": _choices(("auto", "torch", "onnxruntime", "openvino", "openvino-fp32")),
    "TEST.DECODER": _decoders,
    "DATASET.DATA_FORMAT": _choices(("jpg", "jpeg", "png", "zip"), case_sensitive=False),
    "MODEL.EXTRA.BLOCK_GROUPS": _block_groups,
    "MODEL.EXTRA.ATTENTION": _choices(("", "GC", "SE", "NONE"), case_sensitive=False),
    "MODEL.CODEC": lambda: (("", *_codec_names()), True),
    "DATASET.AUG_STYLE": _choices(("seed", "rtmpose")),
    "DATASET.AUG_COLOR": _choices(("hsv", "photometric", "none")),
    "DATASET.AUG_STAGE2_COLOR": _choices(("hsv", "photometric", "none")),
    "DATASET.KEYPOINT_SET": lambda: (("", *_keypoint_set_names()), True),
    **{f"MODEL.EXTRA.STAGE{i}.BLOCK": _hrnet_blocks for i in range(1, 5)},
    **{f"MODEL.EXTRA.STAGE{i}.FUSE_METHOD": _choices(("SUM",)) for i in range(1, 5)},
}


def check_config(cfg: CfgNode, source: str = "config") -> None:
    """Values that cannot work, found before anything is built: enum-like keys outside
    their allowed values, and a MODEL.HEATMAP_SIZE the network does not output."""
    for key, allowed_values in ENUM_KEYS.items():
        value = _get(cfg, key)
        allowed, case_sensitive = allowed_values()
        fold = (lambda v: v) if case_sensitive else (lambda v: str(v).lower())
        if fold(value) not in {fold(a) for a in allowed}:
            shown = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"{source}: {key} {value!r} is not one of: {shown}")
    _check_heatmap_size(cfg, source)


def _check_heatmap_size(cfg: CfgNode, source: str) -> None:
    from humanpose.models import heatmap_size

    expected = heatmap_size(cfg)
    if expected is None:
        return
    given = [int(v) for v in cfg.MODEL.HEATMAP_SIZE]
    if given != list(expected):
        raise ConfigError(
            f"{source}: MODEL.HEATMAP_SIZE {given} does not fit MODEL.IMAGE_SIZE "
            f"{list(cfg.MODEL.IMAGE_SIZE)}: {cfg.MODEL.NAME} outputs {list(expected)} "
            "heatmaps (width, height) for that input")


def cfg_from_yaml_text(text: str, source: str, opts: Sequence[str] = ()) -> CfgNode:
    """A config from YAML text, e.g. the ``cfg.dump()`` a checkpoint carries, checked
    against the schema like a file; ``source`` names where the text came from in errors."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: the stored config is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the stored config is not a mapping of config keys")
    cfg = default_config()
    _merge(cfg, data, source)
    merge_opts(cfg, list(opts))  # paths in a dump are already joined with DATA_DIR
    check_config(cfg, f"{source} (or the command line)" if opts else source)
    cfg.freeze()
    return cfg
