"""humanpose: lightweight real-time 2D human pose estimation (top-down) in PyTorch."""

from humanpose.checkpoint import CheckpointError, load_checkpoint, load_pretrained
from humanpose.config import ConfigError, get_cfg
from humanpose.models import build_model

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "build_model",
    "get_cfg",
    "load_checkpoint",
    "load_pretrained",
]
