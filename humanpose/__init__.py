"""humanpose: lightweight real-time 2D human pose estimation (top-down) in PyTorch."""

from humanpose.checkpoint import CheckpointError, load_checkpoint, load_pretrained
from humanpose.compat import MIN_TORCH  # importing it checks the installed torch
from humanpose.config import ConfigError, get_cfg
from humanpose.data import build_dataset
from humanpose.inference import (  # onnxruntime/openvino load on use only
    Person,
    PoseEstimator,
    PoseTracker,
)
from humanpose.models import build_model

# The task packages register themselves with the engine (humanpose.engine.task.TASKS).
from humanpose import detection, pose  # noqa: E402,F401  isort: skip

__version__ = "0.1.0"

__all__ = [
    "MIN_TORCH",
    "CheckpointError",
    "ConfigError",
    "Person",
    "PoseEstimator",
    "PoseTracker",
    "build_dataset",
    "build_model",
    "get_cfg",
    "load_checkpoint",
    "load_pretrained",
]
