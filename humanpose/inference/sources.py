"""Frames to run on: an image, a folder of images, a video file or a webcam.

Every frame is a BGR uint8 ``(H, W, 3)`` array (OpenCV's convention, as the seed reads
images). Inputs that cannot be read raise :class:`SourceError` naming them, before any work
is done where that is possible (a missing path, an empty folder, a video that does not open).
One unreadable file in a folder is not worth losing a long run for: it is skipped and listed
in the source's ``skipped``, for the run to report.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from humanpose.data.images import BadImageError, read_image
from humanpose.errors import HumanposeError

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "Frame", "FrameSource", "SourceError",
           "open_source"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".jp2"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg",
                              ".mpeg", ".wmv", ".flv", ".gif"})
DEFAULT_FPS = 25.0


class SourceError(HumanposeError):
    """An input path, folder, video or camera that cannot be read."""


@dataclass
class Frame:
    """One image to process: pixels (BGR uint8), position in the source and a name.

    ``name`` is the image's file name, or ``<video stem>_<index>`` for video frames, whose
    ``time`` is their time stamp in seconds (position in a video file, time since the start
    for a webcam).
    """

    image: np.ndarray
    index: int
    name: str
    path: Path | None = None
    time: float | None = None


class FrameSource:
    """Iterates over :class:`Frame` objects; ``len()`` is the frame count when known."""

    kind = "images"
    fps = DEFAULT_FPS
    skipped: Sequence[str] = ()  # "name: reason" of the files that could not be read

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __len__(self) -> int:
        return 0

    def close(self) -> None:
        """Release the file or camera."""


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class ImageFiles(FrameSource):
    """One image or a folder's images (sorted by name, numbers in numeric order)."""

    def __init__(self, paths: list[Path], kind: str, first: np.ndarray | None = None):
        self.paths = paths
        self.kind = kind
        self._first = first  # already decoded (to check it early): not decoded twice
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            if i == 0 and self._first is not None:
                image = self._first
            else:
                try:
                    image = read_image(str(path))
                except BadImageError as err:
                    if self.kind != "folder":
                        raise
                    self.skipped.append(f"{path.name}: {err}")
                    continue
            yield Frame(image, i, path.name, path)


class VideoSource(FrameSource):
    """A video file or a camera, decoded frame by frame with OpenCV."""

    def __init__(self, spec: str | int, kind: str):
        self.kind = kind
        self.label = f"webcam {spec}" if kind == "webcam" else f"video {spec}"
        self.capture = cv2.VideoCapture(spec)
        if not self.capture.isOpened():
            raise SourceError(f"cannot open {self.label}: not a video OpenCV can decode"
                              if kind == "video" else f"cannot open {self.label}")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else DEFAULT_FPS
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.count = count if kind == "video" and count > 0 else 0
        self.stem = Path(str(spec)).stem if kind == "video" else f"webcam{spec}"
        self.path = Path(str(spec)) if kind == "video" else None

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        start = time.monotonic()
        while True:
            ok, image = self.capture.read()
            if not ok:
                break
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            stamp = index / self.fps if self.kind == "video" else time.monotonic() - start
            yield Frame(image, index, f"{self.stem}_{index:06d}", self.path, round(stamp, 3))
            index += 1
        if index == 0:
            raise SourceError(f"cannot read any frame from {self.label}")

    def close(self) -> None:
        self.capture.release()


def open_source(spec: str | os.PathLike | int) -> FrameSource:
    """The frames of ``spec``: an image file, a folder of images, a video file, or a webcam
    index (an int or a string of digits that is not an existing path)."""
    text = str(spec)
    if isinstance(spec, int) or (text.isdigit() and not os.path.exists(text)):
        return VideoSource(int(text), "webcam")
    path = Path(text)
    if path.is_dir():
        images = sorted((p for p in path.iterdir()
                         if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                        key=_natural_key)
        if not images:
            raise SourceError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in folder "
                              f"{path}")
        return ImageFiles(images, "folder")
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if not path.is_file() or not os.access(path, os.R_OK):
        raise SourceError(f"cannot read input {path}: not a readable file")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return VideoSource(str(path), "video")
    if suffix in IMAGE_EXTENSIONS:
        # Decoded now so that a bad file fails before any model is loaded.
        return ImageFiles([path], "image", first=read_image(str(path)))
    if cv2.haveImageReader(str(path)):
        return ImageFiles([path], "image")
    try:
        return VideoSource(str(path), "video")
    except SourceError:
        raise SourceError(f"cannot read input {path}: neither an image nor a video that "
                          "OpenCV can decode") from None
