"""Evaluation: COCO key-point AP (re-scoring, OKS-NMS, pycocotools) and MPII PCKh."""

from humanpose.evaluation.coco import (
    COCO_STATS_NAMES,
    evaluate_keypoints,
    format_table,
    rescore,
    select_people,
    write_results,
)
from humanpose.evaluation.mpii import PCKH_NAMES, evaluate_pckh, write_gt_valid
from humanpose.evaluation.nms import (
    oks_iou,
    oks_nms,
    oks_sigmas,
    soft_oks_nms,
    soft_oks_nms_with_scores,
)

__all__ = [
    "COCO_STATS_NAMES",
    "PCKH_NAMES",
    "evaluate_keypoints",
    "evaluate_pckh",
    "format_table",
    "oks_iou",
    "oks_nms",
    "oks_sigmas",
    "rescore",
    "select_people",
    "soft_oks_nms",
    "soft_oks_nms_with_scores",
    "write_gt_valid",
    "write_results",
]
