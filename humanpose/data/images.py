"""Reading images for the data pipeline, with one policy for bad files.

Images are decoded as the seed decodes them (``cv2.imread`` with ``IMREAD_COLOR |
IMREAD_IGNORE_ORIENTATION``): always 3-channel BGR uint8, grayscale expanded, an alpha channel
dropped, and the EXIF orientation ignored, so key-point coordinates refer to the stored
pixels. A file that is missing, truncated (a JPEG without its end marker, a PNG without its
``IEND`` chunk: OpenCV would fill the missing rows with grey and say nothing) or cannot be
decoded raises :class:`BadImageError` naming it.

Paths of the form ``<folder>/<set>.zip@<file>`` (the seed's ``DATASET.DATA_FORMAT zip``, whose
``zipreader`` reads ``images/val2017.zip@/000000000139.jpg``) are read from inside the zip
file, through one open handle per zip file and process: each DataLoader worker opens its
own, since a handle shared across ``fork`` would share its file position.
"""

from __future__ import annotations

import os
import zipfile

import cv2
import numpy as np

from humanpose.errors import HumanposeError

__all__ = ["REDUCED_FACTORS", "BadImageError", "BadImageWarning", "check_complete",
           "read_image", "read_image_bytes", "split_zip_path", "zip_image_path"]

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


# Open zip files, by (path, process id).
_ZIP_HANDLES: dict[tuple[str, int], zipfile.ZipFile] = {}
_ZIP_SEP = ".zip@"
# How far from the end an end marker may sit: some writers pad files after it.
_TAIL = 4096


def zip_image_path(folder: str, member: str) -> str:
    """The seed's path of ``member`` inside ``folder + '.zip'`` (``images/val2017`` ->
    ``images/val2017.zip@/<member>``)."""
    return f"{folder}.zip@/{member}"


def split_zip_path(path: str) -> tuple[str, str] | None:
    """(zip file, member) of a ``<x>.zip@<member>`` path; None for a plain path."""
    at = path.find(_ZIP_SEP)
    if at < 0:
        return None
    return path[:at + len(".zip")], path[at + len(_ZIP_SEP):].lstrip("/")


def _zip_handle(zip_path: str) -> zipfile.ZipFile:
    key = (zip_path, os.getpid())
    handle = _ZIP_HANDLES.get(key)
    if handle is None:
        if not os.path.isfile(zip_path):
            raise BadImageError(f"zip file of images not found: {zip_path}")
        try:
            handle = zipfile.ZipFile(zip_path)
        except (zipfile.BadZipFile, OSError) as err:
            raise BadImageError(f"cannot open zip file of images {zip_path}: {err}") from err
        _ZIP_HANDLES[key] = handle
    return handle


def read_image_bytes(path: str) -> bytes:
    """The encoded bytes of an image file, or of a member of a zip file (see the module)."""
    parts = split_zip_path(path)
    if parts is None:
        if not os.path.isfile(path):  # checked first: a clearer message than open's
            raise BadImageError(f"image not found: {path}")
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as err:
            raise BadImageError(f"cannot read image {path}: {err}") from err
    zip_path, member = parts
    handle = _zip_handle(zip_path)
    stem = os.path.splitext(os.path.basename(zip_path))[0]
    for name in (member, f"{stem}/{member}"):  # zips made of the files or of their folder
        try:
            return handle.read(name)
        except KeyError:
            continue
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise BadImageError(f"cannot read {member} from {zip_path}: {err}") from err
    raise BadImageError(f"image not found: {member} in {zip_path}")


def check_complete(data: bytes, path: str) -> None:
    """Refuse a JPEG without its end-of-image marker (FF D9) or a PNG without ``IEND``:
    truncated files that decoders fill with grey without an error."""
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[2:][-_TAIL:]:
        raise BadImageError(f"truncated JPEG (no end-of-image marker): {path}")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        raise BadImageError(f"truncated PNG (no IEND chunk): {path}")


def read_image(path: str, reduce: int = 1) -> np.ndarray:
    """The image at ``path`` (a file, or ``<x>.zip@<member>``) as an ``(H, W, 3)`` BGR uint8
    array.

    ``reduce`` (2, 4 or 8) decodes at that fraction of the resolution: pixel ``(u, v)`` of
    the result covers ``(reduce * u + (reduce - 1) / 2, ...)`` of the full image.
    """
    data = read_image_bytes(path)
    check_complete(data, path)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8),
                         _FLAGS if reduce == 1 else _REDUCED_FLAGS[reduce])
    if image is None:
        raise BadImageError(f"cannot decode image (corrupt or unsupported format): {path}")
    return image
