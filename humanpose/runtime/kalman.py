"""A constant-velocity Kalman filter on a person's box, as SORT, DeepSORT and ByteTrack keep.

State ``(cx, cy, a, h, vcx, vcy, va, vh)``: box centre, aspect ratio (w / h), height and
their velocities per frame; observations ``(cx, cy, a, h)``. The noise scales with the box
height (DeepSORT's choice: a near person moves more pixels per frame than a far one), so
one set of constants serves every size. A track hidden for a while is predicted with a
growing uncertainty, and :meth:`BoxKalman.distance` (the squared Mahalanobis distance of a
box to the prediction) widens its gate with it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BoxKalman", "xywh_to_cxcyah", "cxcyah_to_xywh"]

# DeepSORT's standard deviations, as shares of the box height: position, velocity.
POSITION_STD = 1.0 / 20
VELOCITY_STD = 1.0 / 160

# Built once: a tracker runs these small matrices for every person on every frame, and
# making them anew (np.eye, np.diag) cost more than the arithmetic.
_IDENTITY = np.eye(8)
_VELOCITY_INTO_POSITION = np.eye(8, k=4)  # F = I + steps x this
_NOISE_PER_HEIGHT = np.array([POSITION_STD, POSITION_STD, 0.0, POSITION_STD,
                              VELOCITY_STD, VELOCITY_STD, 0.0, VELOCITY_STD])
_NOISE_FIXED = np.array([0.0, 0.0, 1e-2, 0.0, 0.0, 0.0, 1e-5, 0.0])  # aspect, its velocity
_OBSERVATION_PER_HEIGHT = np.array([POSITION_STD, POSITION_STD, 0.0, POSITION_STD])
_OBSERVATION_FIXED = np.array([0.0, 0.0, 1e-1, 0.0])


def xywh_to_cxcyah(box: np.ndarray) -> np.ndarray:
    x, y, w, h = np.asarray(box, dtype=np.float64)
    h = max(h, 1e-6)
    return np.array([x + w / 2, y + h / 2, w / h, h])


def cxcyah_to_xywh(state: np.ndarray) -> np.ndarray:
    cx, cy, a, h = state[:4]
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, w, h])


class BoxKalman:
    """One track's box filter: :meth:`predict` once per frame (or for several frames at
    once), :meth:`update` with the box observed; :meth:`box_at` looks ahead without
    changing the state."""

    def __init__(self, box: np.ndarray):
        z = xywh_to_cxcyah(box)
        self.mean = np.concatenate([z, np.zeros(4)])
        h = z[3]
        std = np.array([2 * POSITION_STD * h, 2 * POSITION_STD * h, 1e-2, 2 * POSITION_STD * h,
                        10 * VELOCITY_STD * h, 10 * VELOCITY_STD * h, 1e-5,
                        10 * VELOCITY_STD * h])
        self.covariance = np.diag(std ** 2)

    @staticmethod
    def _motion(steps: float) -> np.ndarray:
        return _IDENTITY + steps * _VELOCITY_INTO_POSITION

    def _process_variance(self, steps: float) -> np.ndarray:
        """The diagonal of the process noise for ``steps`` frames."""
        std = _NOISE_PER_HEIGHT * self.mean[3] + _NOISE_FIXED
        return std ** 2 * max(steps, 1.0)

    def predict(self, steps: float = 1.0) -> None:
        """Advance the state ``steps`` frames."""
        f = self._motion(steps)
        self.mean = f @ self.mean
        self.mean[3] = max(self.mean[3], 1.0)
        self.covariance = f @ self.covariance @ f.T
        self.covariance.flat[::9] += self._process_variance(steps)

    def _projected(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.covariance[:4, :4].copy()
        s.flat[::5] += (_OBSERVATION_PER_HEIGHT * self.mean[3] + _OBSERVATION_FIXED) ** 2
        return self.mean[:4], s

    def update(self, box: np.ndarray) -> None:
        """Correct the state with an observed box (x, y, w, h).

        The motion couples each observed value only with its own velocity and every noise
        is diagonal, so the covariance stays four 2x2 blocks and the innovation covariance
        S is diagonal: S^-1 is a division (a 4x4 ``np.linalg.solve`` per person per frame
        was a third of the tracker's time for 10 people)."""
        z = xywh_to_cxcyah(box)
        mean, s = self._projected()
        variance = s.diagonal()
        gain = self.covariance[:, :4] / variance  # P H^T S^-1, H = [I 0]
        self.mean = self.mean + gain @ (z - mean)
        self.covariance = self.covariance - (gain * variance) @ gain.T

    def box_at(self, steps: float) -> np.ndarray:
        """The box (x, y, w, h) expected ``steps`` frames ahead of the state."""
        return cxcyah_to_xywh(self._motion(steps) @ self.mean)

    @property
    def velocity(self) -> np.ndarray:
        """Centre velocity (x, y) in pixels per frame."""
        return self.mean[4:6].copy()

    def distance(self, boxes: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of the centres of ``boxes`` ``(N, 4)`` to the
        current state's (2 degrees of freedom: 5.99 is the 95 % gate)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        mean, s = self._projected()
        d = boxes[:, :2] + boxes[:, 2:] / 2 - mean[:2]
        return np.einsum("ni,ij,nj->n", d, np.linalg.inv(s[:2, :2]), d)
