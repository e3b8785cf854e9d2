"""Network outputs for a batch of crops: the one forward path that evaluation and inference share.

It owns the flip test (forward the mirrored crops too, let the codec mirror their outputs
back, average), so ``humanpose test`` and ``PoseEstimator`` cannot drift apart. Whether the
outputs are heatmaps or SimCC vectors is the codec's business.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import numpy as np
import torch

from humanpose.codecs import Codec, Outputs, as_float_outputs, average_outputs
from humanpose.data.geometry import transform_preds

__all__ = ["autocast_for", "decode_to_image", "predict_outputs"]


def autocast_for(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` (bf16/fp16) on ``device``, or a no-op for fp32."""
    if dtype is None or dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _split(outputs: Outputs, n: int) -> tuple[Outputs, Outputs]:
    if isinstance(outputs, tuple):
        return tuple(o[:n] for o in outputs), tuple(o[n:] for o in outputs)
    return outputs[:n], outputs[n:]


@torch.inference_mode()
def predict_outputs(model: Callable[[torch.Tensor], Outputs], inputs: torch.Tensor, codec: Codec,
                    flip_pairs: Sequence[Sequence[int]] | None = None,
                    amp_dtype: torch.dtype | None = None) -> Outputs:
    """Float32 outputs for normalised crops ``(N, 3, H, W)``.

    With ``flip_pairs`` (not None) the flip test runs: the mirrored crops go through the
    model in the same batch, the codec maps their outputs back to the original crops, and
    the result is the mean of both predictions (the seed's ``TEST.FLIP_TEST``, mmpose's
    ``flip_test``).
    """
    n = inputs.shape[0]
    batch = inputs if flip_pairs is None else torch.cat([inputs, inputs.flip(3)])
    with autocast_for(batch.device, amp_dtype):
        out = model(batch)
    out = as_float_outputs(codec.network_outputs(out))
    if flip_pairs is None:
        return out
    plain, mirrored = _split(out, n)
    return average_outputs(plain, codec.flip_back(mirrored, flip_pairs))


def decode_to_image(codec: Codec, outputs: Outputs, centers: np.ndarray, scales: np.ndarray,
                    bias: float = 0.0) -> np.ndarray:
    """Key points ``(N, K, 3)`` (x, y, score) in image pixels: the codec's crop-pixel key
    points through the crop geometry (``bias``: the seed's ``TEST.BIAS``, in pixels)."""
    coords, scores = codec.decode(outputs)
    coords = transform_preds(coords, centers, scales, codec.input_size, udp=codec.udp) - bias
    return np.concatenate([coords, scores[..., None]], axis=2).astype(np.float32)
