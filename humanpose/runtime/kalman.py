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
        f = np.eye(8)
        f[:4, 4:] = np.eye(4) * steps
        return f

    def _process_noise(self, steps: float) -> np.ndarray:
        h = self.mean[3]
        std = np.array([POSITION_STD * h, POSITION_STD * h, 1e-2, POSITION_STD * h,
                        VELOCITY_STD * h, VELOCITY_STD * h, 1e-5, VELOCITY_STD * h])
        return np.diag(std ** 2) * max(steps, 1.0)

    def predict(self, steps: float = 1.0) -> None:
        """Advance the state ``steps`` frames."""
        f = self._motion(steps)
        self.mean = f @ self.mean
        self.mean[3] = max(self.mean[3], 1.0)
        self.covariance = f @ self.covariance @ f.T + self._process_noise(steps)

    def _projected(self) -> tuple[np.ndarray, np.ndarray]:
        h = self.mean[3]
        r = np.diag(np.array([POSITION_STD * h, POSITION_STD * h, 1e-1,
                              POSITION_STD * h]) ** 2)
        return self.mean[:4], self.covariance[:4, :4] + r

    def update(self, box: np.ndarray) -> None:
        """Correct the state with an observed box (x, y, w, h)."""
        z = xywh_to_cxcyah(box)
        mean, s = self._projected()
        gain = np.linalg.solve(s, self.covariance[:4]).T  # P H^T S^-1, H = [I 0]
        self.mean = self.mean + gain @ (z - mean)
        self.covariance = self.covariance - gain @ s @ gain.T

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
