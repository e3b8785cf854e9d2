"""MPII in the HRNet code base's json format, 16 joints.

Layout::

    ROOT/annot/{SET}.json       a list of {"image", "center", "scale", "joints", "joints_vis"}
    ROOT/annot/gt_{SET}.mat     the ground truth that PCKh evaluation reads (gt_valid.mat)
    ROOT/images/<image>

Centres, scales and joints are MPII's 1-based MATLAB pixels and a person scale (height/200);
they become 0-based centre/scale records exactly as in the seed: the centre moves down by
15 * scale, the scale grows by 1.25 (both unless the centre is -1), then one pixel off.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from humanpose.data.coco import DatasetError, are_numbers, field_error, is_number, read_json
from humanpose.data.keypoints import MPII, KeypointSet
from humanpose.data.topdown import Records, SampleOptions, TopDownDataset, select_data

__all__ = ["MPIIDataset", "load_mpii_records"]

logger = logging.getLogger(__name__)


def load_mpii_records(path: str, image_dir: str, num_joints: int = 16,
                      with_joints: bool = True) -> Records:
    """Records from an HRNet-style MPII json file (``with_joints`` False for the test set,
    whose people have no joints)."""
    if not os.path.isfile(path):
        raise DatasetError(f"annotation file not found: {path} (check DATASET.ROOT and the "
                           "TRAIN_SET/TEST_SET names)")
    anno = read_json(path, "MPII annotations")
    if not isinstance(anno, list):
        raise field_error(path, "top level", "a list of people", type(anno).__name__)
    files, centers, scales = [], [], []
    joints = np.zeros((len(anno), num_joints, 3))
    joints_vis = np.zeros((len(anno), num_joints, 3))
    for i, a in enumerate(anno):
        if not isinstance(a, dict):
            raise field_error(path, f"[{i}]", "an object", a)
        if not isinstance(a.get("image"), str) or not a["image"]:
            raise field_error(path, f"[{i}].image", "an image file name",
                              a.get("image", "<missing>"))
        if not are_numbers(a.get("center"), 2):
            raise field_error(path, f"[{i}].center", "[x, y]", a.get("center", "<missing>"))
        if not is_number(a.get("scale")):
            raise field_error(path, f"[{i}].scale", "a number", a.get("scale", "<missing>"))
        c = np.array(a["center"], dtype=np.float64)
        s = np.array([a["scale"], a["scale"]], dtype=np.float64)
        if c[0] != -1:  # move the box down and enlarge it so that limbs stay inside
            c[1] = c[1] + 15 * s[1]
            s = s * 1.25
        centers.append(c - 1)  # MATLAB's 1-based pixels → 0-based
        scales.append(s)
        files.append(os.path.join(image_dir, a["image"]))
        if not with_joints:
            continue
        pts = a.get("joints")
        if not (isinstance(pts, list) and len(pts) == num_joints
                and all(are_numbers(p, 2) or are_numbers(p, 3) for p in pts)):
            raise field_error(path, f"[{i}].joints", f"{num_joints} [x, y] points", pts)
        vis = a.get("joints_vis")
        if not are_numbers(vis, num_joints):
            raise field_error(path, f"[{i}].joints_vis", f"{num_joints} numbers", vis)
        joints[i, :, :2] = np.array([p[:2] for p in pts], dtype=np.float64) - 1
        joints_vis[i, :, 0] = vis
        joints_vis[i, :, 1] = vis
    n = len(anno)
    logger.info("=> %d people in %s", n, path)
    return Records.from_rows(files, np.arange(n), centers, scales, joints, joints_vis,
                             np.ones(n), np.zeros((n, 2)), center_dtype=np.float64)


class MPIIDataset(TopDownDataset):
    """MPII under ``root``; ``gt_valid_path`` is the ground truth for PCKh evaluation
    (``ROOT/annot/gt_{TEST_SET}.mat``, as the seed reads it). ``image_id`` is the person's
    position in the json file, which is also its column in that file."""

    def __init__(self, cfg, root: str, image_set: str, is_train: bool) -> None:
        if not os.path.isdir(root):
            raise DatasetError(f"data folder not found: {root!r} (DATASET.ROOT)")
        if cfg.MODEL.NUM_JOINTS != MPII.num_joints:
            raise DatasetError(f"MPII has {MPII.num_joints} key points per person but "
                               f"MODEL.NUM_JOINTS is {cfg.MODEL.NUM_JOINTS}")
        ann_file = os.path.join(root, "annot", f"{image_set}.json")
        records = load_mpii_records(ann_file, _image_dir(cfg, root), MPII.num_joints,
                                    with_joints=image_set != "test")
        if is_train and cfg.DATASET.SELECT_DATA:
            records = select_data(records)
        super().__init__(records, _keypoints(cfg), SampleOptions.from_cfg(cfg), is_train,
                         image_set)
        self.root = root
        self.annotation_file = ann_file
        self.gt_valid_path = os.path.join(root, "annot", f"gt_{cfg.DATASET.TEST_SET}.mat")


def _image_dir(cfg, root: str) -> str:
    """``ROOT/images``, or the seed's ``ROOT/images.zip@`` for DATASET.DATA_FORMAT zip."""
    if cfg.DATASET.DATA_FORMAT != "zip":
        return os.path.join(root, "images")
    zip_path = os.path.join(root, "images.zip")
    if not os.path.isfile(zip_path):
        raise DatasetError(f"zip file of images not found: {zip_path} (DATASET.ROOT, "
                           "DATASET.DATA_FORMAT zip)")
    return zip_path + "@"


def _keypoints(cfg) -> KeypointSet:
    """MPII's joints, with the config's flip pairs or upper body where given."""
    flip = cfg.DATASET.FLIP_PAIRS
    upper = cfg.DATASET.UPPER_BODY_IDS
    skeleton = cfg.DATASET.SKELETON
    if flip is None and not upper and skeleton is None:
        return MPII
    return KeypointSet(
        names=MPII.names, sigmas=MPII.sigmas,
        skeleton=MPII.skeleton if skeleton is None else
        tuple((int(a) + 1, int(b) + 1) for a, b in skeleton),
        flip_pairs=MPII.flip_pairs if flip is None else tuple((int(a), int(b)) for a, b in flip),
        upper_body_ids=tuple(int(i) for i in upper) or MPII.upper_body_ids,
    )
