"""Model size, cost and speed: what ``humanpose info`` reports."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

__all__ = ["count_parameters", "count_gflops", "measure_latency"]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gflops(model: nn.Module, input_size: tuple[int, int]) -> float:
    """Multiply-adds of conv and linear layers for one ``(width, height)`` image, in GFLOPs.

    Counted as the HRNet code base's model summary counts them (and so the seed's tables):
    a conv costs its weight count times its output positions, transposed convs included;
    the total is divided by 1024**3. Families published by another code base say so: a
    model's ``extra_macs()`` adds products that no layer hook sees (RTMPose's attention
    matmuls), and its ``GFLOPS_DIVISOR`` replaces 1024**3 (1e9 for mmpose's and mmdet's
    models, whose tables count in units of 10**9), so each figure compares with its table.
    """
    total = 0

    def hook(module: nn.Module, inputs, output) -> None:
        nonlocal total
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)):
            total += module.weight.numel() * output[0, 0].numel()
        elif isinstance(module, nn.Linear):
            total += output.numel() * inputs[0].shape[-1]

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size[1], input_size[0], dtype=param.dtype,
                              device=param.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if hasattr(model, "extra_macs"):
        total += model.extra_macs()
    return total / getattr(model, "GFLOPS_DIVISOR", 1024**3)


def measure_latency(model: nn.Module, input_size: tuple[int, int], batch: int = 1,
                    runs: int = 20, warmup: int = 3) -> float:
    """Median wall time in milliseconds of an eager forward pass on ``batch`` images."""
    param = next(model.parameters())
    x = torch.randn(batch, 3, input_size[1], input_size[0], dtype=param.dtype,
                    device=param.device)
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + runs):
                start = time.perf_counter()
                model(x)
                if param.device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000)
    finally:
        model.train(was_training)
    return statistics.median(times)
