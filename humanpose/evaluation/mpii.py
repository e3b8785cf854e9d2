"""MPII PCKh: the fraction of joints within a fraction of the head size of the truth.

Reproduces the seed's ``MPIIDataset.evaluate`` on the official ``gt_valid.mat`` layout
(16 x 2 x N joint positions, 16 x N missing flags, 2 x 2 x N head boxes, 1-based pixels),
including its quirks: pelvis and thorax are left out of the means, and ``Mean@0.1`` is
measured at the 12th step of its 0.01-spaced threshold grid, i.e. 0.11.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

__all__ = ["MPII_GT_JOINTS", "PCKH_NAMES", "evaluate_pckh", "write_gt_valid"]

# Joint names of gt_valid.mat's ``dataset_joints``, in the MPII order the models predict.
MPII_GT_JOINTS = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor",
    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
)
# Reported groups: a name and the joints whose PCKh it averages.
_GROUPS = (
    ("Head", ("head",)),
    ("Shoulder", ("lsho", "rsho")),
    ("Elbow", ("lelb", "relb")),
    ("Wrist", ("lwri", "rwri")),
    ("Hip", ("lhip", "rhip")),
    ("Knee", ("lkne", "rkne")),
    ("Ankle", ("lank", "rank")),
)
PCKH_NAMES = tuple(name for name, _ in _GROUPS) + ("Mean", "Mean@0.1")
# Head size = this fraction of the head box diagonal (the MPII benchmark's definition).
_SC_BIAS = 0.6
# Positions left out of the means (pelvis and thorax), by index as in the seed.
_EXCLUDED_FROM_MEAN = slice(6, 8)
# The threshold the seed's "Mean@0.1" really uses: step 11 of arange(0, 0.51, 0.01).
_MEAN_AT_THRESHOLD = 11 * 0.01
_NUM_JOINTS = len(MPII_GT_JOINTS)


def write_gt_valid(
    path: str | os.PathLike, joints: np.ndarray, missing: np.ndarray, headboxes: np.ndarray
) -> None:
    """Write ground truth in gt_valid.mat's layout.

    ``joints`` (N, 16, 2) are 1-based pixels, ``missing`` (N, 16) flags unlabelled joints and
    ``headboxes`` (N, 2, 2) hold each head box's two corners as (x, y).
    """
    joints = np.asarray(joints, dtype=np.float64)
    n = len(joints)
    missing = np.asarray(missing).astype(np.float64).reshape(n, _NUM_JOINTS)
    headboxes = np.asarray(headboxes, dtype=np.float64).reshape(n, 2, 2)
    names = np.empty((1, _NUM_JOINTS), dtype=object)
    names[0, :] = MPII_GT_JOINTS
    from scipy.io import savemat  # the [train] extra's; the runtime has no SciPy

    savemat(
        os.fspath(path),
        {
            "dataset_joints": names,
            "jnt_missing": missing.T,
            "pos_gt_src": joints.reshape(n, _NUM_JOINTS, 2).transpose(1, 2, 0),
            "headboxes_src": headboxes.transpose(1, 2, 0),
        },
    )


def _joint_names(value: np.ndarray, path: Path) -> list[str]:
    """``dataset_joints`` as plain strings, however loadmat nested the cell array."""
    names = []
    for item in np.asarray(value, dtype=object).ravel():
        while isinstance(item, np.ndarray):
            if item.size != 1:
                raise ValueError(f"{path}: malformed dataset_joints entry {item!r}")
            item = item.ravel()[0]
        names.append(str(item))
    if sorted(names) != sorted(MPII_GT_JOINTS):
        raise ValueError(f"{path}: dataset_joints {names} are not MPII's 16 joints")
    return names


def _load_gt(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Joint names, missing (16, N), positions (16, 2, N) and head boxes (2, 2, N)."""
    if not path.is_file():
        raise FileNotFoundError(f"MPII ground truth {path} not found")
    try:
        from scipy.io import loadmat

        mat = loadmat(os.fspath(path))
    except Exception as err:  # scipy raises several types for unreadable files
        raise ValueError(f"cannot read MPII ground truth {path}: {err}") from err
    keys = ("dataset_joints", "jnt_missing", "pos_gt_src", "headboxes_src")
    absent = [key for key in keys if key not in mat]
    if absent:
        raise ValueError(f"MPII ground truth {path} lacks {absent}")
    names = _joint_names(mat["dataset_joints"], path)
    missing, positions, headboxes = (np.asarray(mat[key]) for key in keys[1:])
    n = positions.shape[-1] if positions.ndim == 3 else 1
    try:
        missing = missing.reshape(_NUM_JOINTS, n)
        positions = positions.reshape(_NUM_JOINTS, 2, n)
        headboxes = headboxes.reshape(2, 2, n)
    except ValueError as err:
        raise ValueError(
            f"MPII ground truth {path}: expected 16x{n} jnt_missing, 16x2x{n} pos_gt_src and "
            f"2x2x{n} headboxes_src, got {mat['jnt_missing'].shape}, "
            f"{mat['pos_gt_src'].shape} and {mat['headboxes_src'].shape}"
        ) from err
    return names, missing, positions, headboxes


def evaluate_pckh(
    preds: np.ndarray, gt_valid_path: str | os.PathLike, threshold: float = 0.5
) -> OrderedDict[str, float]:
    """PCKh in percent per joint group, their visibility-weighted mean and ``Mean@0.1``.

    ``preds`` (N, 16, 2 or 3) are 0-based image pixels in the order of the file's people.
    """
    path = Path(gt_valid_path)
    names, missing, gt, headboxes = _load_gt(path)
    preds = np.asarray(preds)
    if preds.ndim != 3 or preds.shape[1] != _NUM_JOINTS or preds.shape[2] < 2:
        raise ValueError(f"expected predictions of shape (N, 16, 2 or 3), got {preds.shape}")
    if len(preds) != gt.shape[-1]:
        raise ValueError(
            f"{len(preds)} predictions but MPII ground truth {path} has {gt.shape[-1]} people"
        )

    pred = np.transpose(preds[:, :, 0:2] + 1.0, (1, 2, 0))  # 1-based, like the file
    visible = 1 - missing
    error = np.linalg.norm(pred - gt, axis=1)
    head_size = np.linalg.norm(headboxes[1] - headboxes[0], axis=0) * _SC_BIAS
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = error / head_size * visible
        count = np.sum(visible, axis=1)

        def pckh(thr: float) -> np.ndarray:
            return 100.0 * np.sum((scaled <= thr) * visible, axis=1) / count

        at_threshold, at_mean = pckh(threshold), pckh(_MEAN_AT_THRESHOLD)

    used = np.ones(_NUM_JOINTS, dtype=bool)
    used[_EXCLUDED_FROM_MEAN] = False
    ratio = count / np.float64(np.sum(count[used]))

    def weighted_mean(values: np.ndarray) -> float:
        return float(np.where(used, values * ratio, 0.0).sum())

    index = {name: i for i, name in enumerate(names)}
    result = OrderedDict(
        (group, float(np.mean([at_threshold[index[j]] for j in joints])))
        for group, joints in _GROUPS
    )
    result["Mean"] = weighted_mean(at_threshold)
    result["Mean@0.1"] = weighted_mean(at_mean)
    return result
