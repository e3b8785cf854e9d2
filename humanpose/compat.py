"""The oldest torch humanpose runs on, checked when the PyTorch side is imported.

The floor is set by the newest APIs the code calls: ``torch.serialization.safe_globals``
with ``(object, "module.name")`` pairs (2.6; reading mmpose/mmdet checkpoints and the seed's
NumPy-scalar metrics under ``weights_only``), ``torch.onnx.export(..., dynamo=False)`` (the
``dynamo`` argument exists from 2.5; ``humanpose export``) and
``torch.amp.GradScaler(device)`` (2.3; training with fp16). pyproject.toml declares the
same floor; tests/test_packaging.py keeps the two equal.
"""

from __future__ import annotations

import re

__all__ = ["MIN_TORCH", "TORCH_HINT", "check_torch", "require_torch"]

MIN_TORCH = (2, 6)
TORCH_HINT = ("this needs PyTorch, which the runtime install leaves out: "
              "pip install 'humanpose[train]'")


def check_torch(version: str) -> None:
    """Raise ImportError naming both versions when ``version`` is below :data:`MIN_TORCH`."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return  # a build without a numeric version: let it try
    if (int(match[1]), int(match[2])) < MIN_TORCH:
        floor = ".".join(map(str, MIN_TORCH))
        raise ImportError(f"humanpose needs torch>={floor}, found torch {version}; upgrade it "
                          f"(pip install 'torch>={floor}') or see the README's set-up")


def require_torch() -> None:
    """Import torch and check its version; without it, an ImportError that names the extra
    to install."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(TORCH_HINT) from err
    check_torch(torch.__version__)
