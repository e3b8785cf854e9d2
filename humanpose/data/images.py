"""Reading images for the data pipeline, with one policy for bad files.

Images are decoded as the seed decodes them (``cv2.imread`` with ``IMREAD_COLOR |
IMREAD_IGNORE_ORIENTATION``): always 3-channel BGR uint8, grayscale expanded, an alpha channel
dropped, and the EXIF orientation ignored, so key-point coordinates refer to the stored
pixels. A file that is missing or cannot be decoded raises :class:`BadImageError` naming it.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from humanpose.errors import HumanposeError

__all__ = ["REDUCED_FACTORS", "BadImageError", "BadImageWarning", "read_image"]

_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
# Decoding at 1/2, 1/4 or 1/8 of the resolution; JPEGs decode faster (DCT scaling).
_REDUCED_FLAGS = {
    2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
    4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
    8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION,
}
REDUCED_FACTORS = (8, 4, 2)


class BadImageError(HumanposeError, OSError):
    """An image file that is missing or cannot be decoded."""


class BadImageWarning(RuntimeWarning):
    """An unreadable image was skipped (``DATASET.SKIP_BAD_IMAGES``)."""


def read_image(path: str, reduce: int = 1) -> np.ndarray:
    """The image at ``path`` as an ``(H, W, 3)`` BGR uint8 array.

    ``reduce`` (2, 4 or 8) decodes at that fraction of the resolution: pixel ``(u, v)`` of
    the result covers ``(reduce * u + (reduce - 1) / 2, ...)`` of the full image.
    """
    if not os.path.isfile(path):  # checked first: OpenCV would only log a warning
        raise BadImageError(f"image not found: {path}")
    image = cv2.imread(path, _FLAGS if reduce == 1 else _REDUCED_FLAGS[reduce])
    if image is None:
        raise BadImageError(f"cannot decode image (corrupt or unsupported format): {path}")
    return image
