"""Steadier key points in video: a One-Euro filter per track and key point.

A pose model's key points shake by a pixel or two from frame to frame even on a still
person. The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose
cut-off frequency rises with speed: slow motion is smoothed hard (no jitter), fast motion
lightly (little lag). ``min_cutoff`` (Hz) sets the smoothing at rest, ``beta`` how fast the
cut-off grows with speed (per pixel/s: key points are in pixels), ``d_cutoff`` (Hz) the
smoothing of the speed estimate itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["KeypointSmoother", "OneEuroFilter"]


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Weight of the new sample in an exponential low-pass at ``cutoff`` Hz."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over an array of values filtered independently (e.g. ``(K, 2)``).

    Call with each new sample and its time in seconds; returns the filtered sample. The
    first call returns the sample as is.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"One-Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; "
                             f"got {min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None or self.t is None or self.x.shape != x.shape:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        if dt <= 0:  # a repeated time stamp: nothing to learn from it
            return self.x.copy()
        dx = (x - self.x) / dt
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        self.x = self.x + _alpha(cutoff, dt) * (x - self.x)
        self.t = t
        return self.x.copy()


class KeypointSmoother:
    """One-Euro filters for the key points of every track.

    ``smoother(track_ids, keypoints, timestamp)`` filters the (x, y) of ``keypoints``
    ``(N, K, 3)``, one filter per track id (confidences pass through; people with id < 0
    are not filtered). Time comes from ``timestamp`` (seconds) or, when that is None, from
    the call count at ``fps``. A track absent for more than ``max_age`` calls is forgotten
    (a new person given its id later starts fresh).

    The x and y speed are filtered separately (the paper filters each coordinate alone).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.03, d_cutoff: float = 1.0,
                 fps: float = 25.0, max_age: int = 10):
        OneEuroFilter(min_cutoff, beta, d_cutoff)  # checks the values
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.fps = fps
        self.max_age = max_age
        self.filters: dict[int, OneEuroFilter] = {}
        self._last_call: dict[int, int] = {}
        self._calls = 0

    def __call__(self, track_ids: Sequence[int] | np.ndarray, keypoints: np.ndarray,
                 timestamp: float | None = None) -> np.ndarray:
        keypoints = np.asarray(keypoints, dtype=np.float64)
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(keypoints):
            raise ValueError(f"{len(ids)} track ids for {len(keypoints)} people")
        t = self._calls / self.fps if timestamp is None else float(timestamp)
        out = keypoints.copy()
        for i, tid in enumerate(ids.tolist()):
            if tid < 0:
                continue
            f = self.filters.get(tid)
            if f is None:
                f = self.filters[tid] = OneEuroFilter(self.min_cutoff, self.beta,
                                                      self.d_cutoff)
            out[i, :, :2] = f(keypoints[i, :, :2], t)
            self._last_call[tid] = self._calls
        self._calls += 1
        for tid in [k for k, c in self._last_call.items() if self._calls - c > self.max_age]:
            self.forget(tid)
        return out

    def forget(self, track_id: int) -> None:
        """Drop a track's filter (its person left)."""
        self.filters.pop(track_id, None)
        self._last_call.pop(track_id, None)
