"""The SimCC codec (Li et al., 2022; RTMPose): one classification vector per axis and joint.

Each joint's x and y become bins of ``split_ratio`` per input pixel; the target is a
Gaussian over the bins (mmpose 1.3's ``SimCCLabel`` with ``smoothing_type='gaussian'``), and
decoding is the argmax of each vector divided by the ratio, with the smaller of the two
maxima as the score. Followed: mmpose 1.3.2 (``SimCCLabel``, ``get_simcc_maximum``,
``flip_vectors``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from humanpose.codecs.base import Outputs, as_numpy

__all__ = ["SIMCC_SIGMAS", "SimCCCodec", "simcc_maximum"]

# mmpose 1.3.2's label sigmas (x, y) per input size (w, h) of the RTMPose COCO recipes
# (rtmpose-*_8xb256-420e_coco-256x192.py / -384x288.py).
SIMCC_SIGMAS = {(192, 256): (4.9, 5.66), (288, 384): (6.0, 6.93)}


def simcc_maximum(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax bins ``(N, K, 2)`` (x, y) and scores ``(N, K)``: the smaller of the two maxima.

    Joints whose score is not positive get location -1, as mmpose's decoder gives them.
    """
    x_bins = simcc_x.argmax(axis=2)
    y_bins = simcc_y.argmax(axis=2)
    locs = np.stack([x_bins, y_bins], axis=-1).astype(np.float32)
    scores = np.minimum(simcc_x.max(axis=2), simcc_y.max(axis=2)).astype(np.float32)
    locs[scores <= 0.0] = -1
    return locs, scores


class SimCCCodec:
    """Key points ↔ SimCC x/y vectors of ``input size × split_ratio`` bins."""

    name = "simcc"
    output_names = ("simcc_x", "simcc_y")
    udp = False

    def __init__(self, input_size: Sequence[int], sigma: Sequence[float] | float,
                 split_ratio: float = 2.0, normalize: bool = False):
        self.input_size = (int(input_size[0]), int(input_size[1]))
        sig = (float(sigma), float(sigma)) if np.isscalar(sigma) else tuple(map(float, sigma))
        if len(sig) != 2 or min(sig) <= 0:
            raise ValueError(f"SimCC sigma must be one or two positive numbers, got {sigma!r}")
        self.sigma = np.array(sig, dtype=np.float64)
        if split_ratio <= 0:
            raise ValueError(f"SimCC split ratio must be positive, got {split_ratio}")
        self.split_ratio = float(split_ratio)
        self.normalize = bool(normalize)

    @classmethod
    def from_cfg(cls, cfg) -> SimCCCodec:
        size = (int(cfg.MODEL.IMAGE_SIZE[0]), int(cfg.MODEL.IMAGE_SIZE[1]))
        sigma = list(cfg.MODEL.SIMCC.SIGMA) or SIMCC_SIGMAS.get(size)
        if not sigma:
            raise ValueError(f"MODEL.SIMCC.SIGMA is empty and there is no default for input "
                             f"size {size}; known: {sorted(SIMCC_SIGMAS)}")
        return cls(size, sigma, cfg.MODEL.SIMCC.SPLIT_RATIO, cfg.MODEL.SIMCC.NORMALIZE)

    @property
    def bins(self) -> tuple[int, int]:
        """Vector lengths (x, y)."""
        return (int(np.around(self.input_size[0] * self.split_ratio)),
                int(np.around(self.input_size[1] * self.split_ratio)))

    def encode(self, keypoints: np.ndarray, visible: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Targets ``(K, Wx)``, ``(K, Wy)`` and weights ``(K,)``.

        A joint's centre bin is its position times the ratio, rounded; a joint whose
        3-sigma Gaussian lies wholly outside the vectors gets weight 0, as do invisible ones
        (their vectors stay zero).
        """
        wx, wy = self.bins
        visible = np.asarray(visible, dtype=np.float32).reshape(-1)
        k = visible.shape[0]
        weight = visible.copy()
        target_x = np.zeros((k, wx), dtype=np.float32)
        target_y = np.zeros((k, wy), dtype=np.float32)
        mu = np.around(np.asarray(keypoints, dtype=np.float64)[:, :2] * self.split_ratio)
        radius = self.sigma * 3
        xs = np.arange(wx, dtype=np.float32)
        ys = np.arange(wy, dtype=np.float32)
        for j in range(k):
            if visible[j] < 0.5:
                continue
            left, top = mu[j] - radius
            right, bottom = mu[j] + radius + 1
            if left >= wx or top >= wy or right < 0 or bottom < 0:
                weight[j] = 0
                continue
            target_x[j] = np.exp(-((xs - mu[j, 0]) ** 2) / (2 * self.sigma[0] ** 2))
            target_y[j] = np.exp(-((ys - mu[j, 1]) ** 2) / (2 * self.sigma[1] ** 2))
        if self.normalize:
            norm = self.sigma * np.sqrt(np.pi * 2)
            target_x /= norm[0]
            target_y /= norm[1]
        return target_x, target_y, weight

    @staticmethod
    def network_outputs(outputs: Outputs) -> tuple:
        """Both vectors, x then y, as the network returns them."""
        return tuple(outputs)

    def decode(self, outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
        simcc_x, simcc_y = (as_numpy(o) for o in outputs)
        if simcc_x.ndim != 3 or simcc_y.ndim != 3:
            raise ValueError(f"SimCC outputs must be (N, K, bins), got {simcc_x.shape} and "
                             f"{simcc_y.shape}")
        locs, scores = simcc_maximum(simcc_x, simcc_y)
        return locs.astype(np.float64) / self.split_ratio, scores

    def flip_back(self, outputs: Outputs, flip_pairs: Sequence[Sequence[int]]
                  ) -> tuple[Outputs, Outputs]:
        """mmpose's ``flip_vectors``: swap left/right joints, reverse the x vectors."""
        simcc_x, simcc_y = outputs
        order = list(range(simcc_x.shape[1]))
        for a, b in flip_pairs:
            order[a], order[b] = order[b], order[a]
        if isinstance(simcc_x, np.ndarray):
            return simcc_x[:, order, ::-1], simcc_y[:, order]
        return simcc_x[:, order].flip(-1), simcc_y[:, order]

    def meta(self) -> dict:
        return {"name": self.name, "input_size": list(self.input_size),
                "sigma": self.sigma.tolist(), "split_ratio": self.split_ratio,
                "normalize": self.normalize}
