"""Model families, chosen by ``MODEL.NAME`` through a plain dict."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from yacs.config import CfgNode

from humanpose.compat import check_torch

from .hrnet import build_pose_hrnet
from .lpn import build_lpn
from .resnet import build_pose_resnet
from .rtmo import build_rtmo
from .rtmpose import build_rtmpose
from .rtmw import build_rtmw

check_torch(torch.__version__)  # the PyTorch side's floor, named when it is not met

MODEL_BUILDERS: dict[str, Callable[[CfgNode], nn.Module]] = {
    "pose_resnet": build_pose_resnet,
    "pose_hrnet": build_pose_hrnet,
    "lpn": build_lpn,
    "rtmpose": build_rtmpose,
    "rtmw": build_rtmw,
    "rtmo": build_rtmo,
}

# The modules of each family whose shapes follow MODEL.NUM_JOINTS (its "head"): fine-tuning
# to another key-point set re-initialises them (humanpose.checkpoint.init_from_weights).
HEAD_PREFIXES: dict[str, tuple[str, ...]] = {
    "pose_resnet": ("final_layer.",),
    "pose_hrnet": ("final_layer.",),
    "lpn": ("final_layer.",),
    "rtmpose": ("head.",),
    "rtmw": ("head.",),
}

# Model families whose codec is not the heatmap one (humanpose.codecs.codec_name).
MODEL_CODECS: dict[str, str] = {"rtmpose": "simcc", "rtmw": "simcc"}


def _halve(size: int, times: int) -> int:
    """A side after ``times`` stride-2 layers that pad to keep ceil(size / 2)."""
    for _ in range(times):
        size = -(-size // 2)
    return size


def _deconv_head_size(cfg: CfgNode, halvings: int) -> tuple[int, int] | None:
    """SimpleBaseline/LPN: the backbone's stride, then each deconvolution doubles."""
    extra = cfg.MODEL.EXTRA
    if len(extra.NUM_DECONV_FILTERS) != extra.NUM_DECONV_LAYERS:
        return None  # the builder names that mistake
    grow = 2 ** extra.NUM_DECONV_LAYERS
    w, h = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    return _halve(w, halvings) * grow, _halve(h, halvings) * grow


# MODEL.NAME -> the (width, height) of the heatmaps the network outputs for
# MODEL.IMAGE_SIZE; get_cfg checks MODEL.HEATMAP_SIZE against it. A family not listed
# (or one that outputs no heatmaps) is not checked.
HEATMAP_SIZES: dict[str, Callable[[CfgNode], tuple[int, int] | None]] = {
    "pose_resnet": lambda cfg: _deconv_head_size(cfg, 5),  # stem, max-pool, layers 2-4
    "lpn": lambda cfg: _deconv_head_size(cfg, 4),  # as ResNet, layer 4 at stride 1
    "pose_hrnet": lambda cfg: tuple(_halve(int(v), 2) for v in cfg.MODEL.IMAGE_SIZE),
}


def heatmap_size(cfg: CfgNode) -> tuple[int, int] | None:
    """The heatmap size ``cfg``'s network outputs, or None where it is not known."""
    size_of = HEATMAP_SIZES.get(cfg.MODEL.NAME)
    return None if size_of is None else size_of(cfg)


def build_model(cfg: CfgNode, channels_last: bool = True) -> nn.Module:
    """Build the network that ``cfg.MODEL`` describes, initialised as the seed initialises it.

    ``channels_last`` stores the weights NHWC, which makes PyTorch's CPU (oneDNN) and
    tensor-core kernels run NHWC end to end: 1.2-1.6x faster eager forward passes here,
    with the same results and state-dict keys. Inputs may stay NCHW.
    ImageNet initialisation (``MODEL.PRETRAINED``) is a separate step,
    :func:`humanpose.checkpoint.load_pretrained`, done by training.
    """
    name = cfg.MODEL.NAME
    if name not in MODEL_BUILDERS:
        raise ValueError(f"MODEL.NAME must be one of {sorted(MODEL_BUILDERS)}, got {name!r}")
    if cfg.MODEL.NUM_JOINTS < 1:
        raise ValueError(f"MODEL.NUM_JOINTS must be positive, got {cfg.MODEL.NUM_JOINTS}")
    model = MODEL_BUILDERS[name](cfg)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


__all__ = ["HEAD_PREFIXES", "HEATMAP_SIZES", "MODEL_BUILDERS", "MODEL_CODECS", "build_model",
           "heatmap_size"]
