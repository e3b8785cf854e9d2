"""The live window of ``humanpose infer --show``: the drawing and the frames/s, ``q`` or Esc
to stop.

humanpose depends on ``opencv-python-headless`` (servers have no screen), whose ``cv2`` has
no GUI: :func:`check_display` says so, with the way to get one, before a long run starts.
"""

from __future__ import annotations

import cv2
import numpy as np

from humanpose.errors import HumanposeError

__all__ = ["GUI_HINT", "LiveWindow", "StopRequested", "check_display", "has_gui"]

GUI_HINT = ("--show needs an OpenCV with a GUI and this one has none (opencv-python-headless): "
            "pip uninstall opencv-python-headless && pip install humanpose[gui]")
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Esc


class StopRequested(Exception):
    """The user closed the live window (``q``/Esc): the run ends cleanly, results kept."""


def has_gui() -> bool:
    """Whether this OpenCV was built with a GUI backend (its build information's ``GUI:``
    line is ``NONE`` for the headless wheels)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return True  # no such line: let the window itself tell


def check_display(title: str = "humanpose") -> None:
    """Raise :class:`HumanposeError` (one line, no traceback from the CLI) unless a window
    can be opened: a headless OpenCV names ``pip install humanpose[gui]``."""
    if not has_gui():
        raise HumanposeError(GUI_HINT)
    try:
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
    except cv2.error as err:
        message = str(err).strip().splitlines()[-1] if str(err).strip() else "cv2.error"
        if "not implemented" in message.lower():
            raise HumanposeError(GUI_HINT) from None
        raise HumanposeError(f"--show cannot open a window (no display?): {message}") from None


class LiveWindow:
    """Shows frames with their frames/s; :meth:`show` raises :class:`StopRequested` when
    ``q`` or Esc is pressed or the window is closed."""

    def __init__(self, title: str = "humanpose"):
        self.title = title
        check_display(title)

    def show(self, image: np.ndarray, fps: float) -> None:
        image = image.copy()
        text = f"{fps:.1f} frames/s   q / Esc: stop"
        cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3,
                    cv2.LINE_AA)
        cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        if key in QUIT_KEYS or closed:
            raise StopRequested("stopped from the window")

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
