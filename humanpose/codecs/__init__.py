"""Codecs: how key points become training targets and network outputs become key points.

``build_codec(cfg)`` picks one by ``MODEL.CODEC`` (empty: the model family's own, see
:data:`humanpose.models.MODEL_CODECS`) from :data:`CODECS`, a plain dict that this package
fills. A new codec is a class with the :class:`~humanpose.codecs.base.Codec` methods, one
entry here, and a loss in :mod:`humanpose.pose.loss`.
"""

from __future__ import annotations

from collections.abc import Callable

from humanpose.codecs.base import Codec, Outputs, as_float_outputs, average_outputs
from humanpose.codecs.heatmap import (
    DECODERS,
    HeatmapCodec,
    decode_heatmaps,
    encode_gaussian,
    get_max_preds,
    heatmap_maxima,
)
from humanpose.codecs.simcc import SimCCCodec

__all__ = [
    "CODECS",
    "DECODERS",
    "Codec",
    "HeatmapCodec",
    "Outputs",
    "SimCCCodec",
    "as_float_outputs",
    "average_outputs",
    "build_codec",
    "codec_from_meta",
    "codec_name",
    "decode_heatmaps",
    "encode_gaussian",
    "get_max_preds",
    "heatmap_maxima",
]

CODECS: dict[str, Callable[..., Codec]] = {
    "heatmap": HeatmapCodec.from_cfg,
    "simcc": SimCCCodec.from_cfg,
}


def codec_name(cfg) -> str:
    """``MODEL.CODEC``, or the model family's own codec when it is empty."""
    if cfg.MODEL.CODEC:
        return cfg.MODEL.CODEC
    from humanpose.models import MODEL_CODECS

    return MODEL_CODECS.get(cfg.MODEL.NAME, "heatmap")


def build_codec(cfg) -> Codec:
    """The codec that ``cfg`` describes (built once, then handed to every stage)."""
    name = codec_name(cfg)
    if name not in CODECS:
        raise ValueError(f"MODEL.CODEC must be one of {sorted(CODECS)}, got {name!r}")
    return CODECS[name](cfg)


def codec_from_meta(meta: dict) -> Codec:
    """A codec rebuilt from :meth:`Codec.meta` (e.g. read from an ONNX file's metadata)."""
    meta = dict(meta)
    name = meta.pop("name", None)
    if name == "heatmap":
        return HeatmapCodec(**meta)
    if name == "simcc":
        return SimCCCodec(**meta)
    raise ValueError(f"unknown codec {name!r} in metadata; expected one of {sorted(CODECS)}")
