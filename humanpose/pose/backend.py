"""The network runner of ``humanpose test``: TEST.BACKEND.

``torch`` runs the model as training left it (the seed's forward, exactly). The other
backends run it through the inference runners that :class:`humanpose.PoseEstimator` uses
(:mod:`humanpose.inference.backends`): ``onnxruntime``, ``openvino``, ``openvino-fp32`` on
the model's ONNX export, and ``auto``, the fastest fp32 one on this machine (``torch``
there means the BN-folded, channels-last :class:`TorchRunner`). The export is cached under
the cache folder (``$HUMANPOSE_CACHE``) by the weights' content, and OpenVINO's compiled
models by OpenVINO's own cache in the same folder, so a repeated test pays neither.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch
from torch import nn

from humanpose.errors import HumanposeError

__all__ = ["AUTO_CANDIDATES", "TEST_BACKENDS", "build_test_runner"]

logger = logging.getLogger("humanpose")

TEST_BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "openvino-fp32")
# fp32 only: ``auto`` must not change the AP (OpenVINO's default precision is bf16 on some
# CPUs; TEST.AMP is how a test asks for low precision).
AUTO_CANDIDATES = ("torch", "onnxruntime", "openvino-fp32")
AUTO_MAX_BATCH = 16  # the measurement's batch: the test's, capped so that it stays short


def build_test_runner(model: nn.Module, cfg, device: torch.device, keypoints=None,
                      cache_dir: str | os.PathLike | None = None
                      ) -> tuple[Callable[[torch.Tensor], object], str]:
    """(the callable for :func:`humanpose.predict.predict_outputs`, the backend's name)."""
    from humanpose.inference.backends import (
        ONNX_BACKENDS,
        available_backends,
        choose_backend,
        default_cache_dir,
        make_runner,
    )

    backend = str(cfg.TEST.BACKEND)
    if backend not in TEST_BACKENDS:
        raise HumanposeError(f"TEST.BACKEND {backend!r} is not one of {list(TEST_BACKENDS)}")
    if backend == "torch":
        return model, backend
    cache_dir = cache_dir or default_cache_dir()
    digest: list[str] = []  # computed once, by the first ONNX backend that needs it

    def factory(name: str):
        if name not in ONNX_BACKENDS:
            return make_runner(name, model=model, device=device)
        from humanpose.export import cached_pose_onnx, weights_digest
        from humanpose.inference.lpn_form import ONNX_FORM_BACKENDS, is_lpn, lpn_inference_form

        if not digest:
            digest.append(weights_digest(model.state_dict()))
        # OpenVINO runs LPN faster in its inference form (equal outputs), as PoseEstimator does.
        form = name in ONNX_FORM_BACKENDS and is_lpn(model)
        # Named and keyed as PoseEstimator names and keys it: one export for both.
        path = cached_pose_onnx(lpn_inference_form(model) if form else model, cfg, cache_dir,
                                weights=str(cfg.TEST.MODEL_FILE) or None, digest=digest[0],
                                keypoints=keypoints, variant="lpn-form" if form else "")
        return make_runner(name, onnx_path=path, device=device, cache_dir=cache_dir)

    if backend != "auto":
        return factory(backend), backend
    candidates = [b for b in available_backends(device) if b in AUTO_CANDIDATES]
    batch = min(int(cfg.TEST.BATCH_SIZE_PER_GPU), AUTO_MAX_BATCH)
    batch *= 2 if cfg.TEST.FLIP_TEST else 1
    w, h = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    sample = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    chosen, _, runner = choose_backend(candidates, factory, "test|" + cfg.MODEL.dump(), device,
                                       sample, cache_dir, runs=3)
    return (runner if runner is not None else factory(chosen)), chosen
