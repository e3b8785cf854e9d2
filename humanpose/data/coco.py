"""COCO-format key-point sets: COCO itself and custom sets with any number of joints.

Layout (the seed's, with each image's own ``file_name`` instead of ``%012d.jpg``)::

    ROOT/annotations/person_keypoints_{SET}.json   (image_info_{SET}.json for test sets;
                                                   coco_wholebody_{train,val}_v1.0.json first
                                                   for DATASET.KEYPOINT_SET coco_wholebody)
    ROOT/images/{SET}/<file_name>                  (test sets: ROOT/images/test2017/)
    ROOT/images/{SET}.zip holding <file_name>      (DATASET.DATA_FORMAT zip, the seed's)

Training samples come from the ground-truth boxes: clipped to the image as the seed does,
degenerate boxes and people without labelled key points dropped (and counted in the log).
Testing uses those boxes (``TEST.USE_GT_BBOX``) or the person detections of
``TEST.COCO_BBOX_FILE`` with a score of at least ``TEST.IMAGE_THRE``. The seed never reads
``TEST.BBOX_THRE``, and neither does this module.

``DATASET.KEYPOINT_SET`` names the joints where the file does not: a category without joint
names, or COCO-WholeBody's files, whose category names only the 17 body points; their part
fields are joined into 133 joints (:mod:`humanpose.data.wholebody`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Sequence
from numbers import Real

import numpy as np
from pycocotools.coco import COCO

from humanpose.data.geometry import box_to_center_scale
from humanpose.data.keypoints import COCO as COCO_KEYPOINTS
from humanpose.data.keypoints import KEYPOINT_SETS, KeypointSet, custom_keypoint_set
from humanpose.data.topdown import Records, SampleOptions, TopDownDataset, select_data
from humanpose.errors import HumanposeError

__all__ = [
    "COCODataset",
    "DatasetError",
    "annotation_file",
    "are_numbers",
    "dataset_keypoints",
    "field_error",
    "image_folder",
    "is_number",
    "keypoint_set_from_category",
    "person_category",
    "load_coco_json",
    "load_detection_records",
    "load_gt_records",
    "read_json",
]

logger = logging.getLogger(__name__)


class DatasetError(HumanposeError, ValueError):
    """Annotation files or data folders that are missing or malformed."""


# ----------------------------------------------------------------------------- paths
def annotation_file(root: str, image_set: str, keypoint_set: str = "") -> str:
    """The annotation file of ``image_set``; for ``keypoint_set`` ``coco_wholebody`` the
    official ``coco_wholebody_{train,val}_v1.0.json`` when it is there (mmpose's layout, next
    to COCO's own files, which lack the whole-body fields)."""
    if keypoint_set == "coco_wholebody":
        from humanpose.data.wholebody import official_annotation_file

        official = official_annotation_file(root, image_set)
        if os.path.isfile(official):
            return official
    prefix = "image_info" if "test" in image_set else "person_keypoints"
    return os.path.join(root, "annotations", f"{prefix}_{image_set}.json")


def image_folder(root: str, image_set: str) -> str:
    return os.path.join(root, "images", "test2017" if "test" in image_set else image_set)


# ----------------------------------------------------------------------------- validation
def is_number(v: object) -> bool:
    """A JSON number (``True`` is an int to Python, not a number to a JSON reader)."""
    return isinstance(v, Real) and not isinstance(v, bool)


def are_numbers(v: object, n: int | None = None) -> bool:
    """A JSON list of numbers, ``n`` of them when given."""
    return isinstance(v, list) and all(is_number(x) for x in v) and (n is None or len(v) == n)


def field_error(path: str, field: str, expected: str, got: object) -> DatasetError:
    """The error for a malformed field: the file, the field, what was expected and got."""
    text = repr(got)
    if len(text) > 80:
        text = text[:77] + "..."
    return DatasetError(f"{path}: {field}: expected {expected}, got {text}")


def read_json(path: str, what: str):
    """The parsed JSON file, or a :class:`DatasetError` naming it and ``what`` it holds."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({what}): {err}") from err
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not a UTF-8 JSON file ({what})") from err


def check_images(images: list, path: str) -> set:
    """The ids of a COCO file's ``images``, after checking the fields every loader reads
    (``id``, ``file_name``, positive ``width`` and ``height``)."""
    image_ids = set()
    for i, im in enumerate(images):
        if not isinstance(im, dict):
            raise field_error(path, f"images[{i}]", "an object", im)
        if not is_number(im.get("id")):
            raise field_error(path, f"images[{i}].id", "a number", im.get("id", "<missing>"))
        if not isinstance(im.get("file_name"), str) or not im["file_name"]:
            raise field_error(path, f"images[{i}].file_name", "a file name",
                              im.get("file_name", "<missing>"))
        for key in ("width", "height"):
            if not is_number(im.get(key)) or im[key] <= 0:
                raise field_error(path, f"images[{i}].{key}", "a positive number",
                                  im.get(key, "<missing>"))
        image_ids.add(im["id"])
    return image_ids


def check_coco_lists(data, path: str) -> None:
    """A COCO annotation file is an object with ``images``, ``annotations`` and
    ``categories`` lists."""
    if not isinstance(data, dict):
        raise field_error(path, "top level", "an object with images, annotations, categories",
                          type(data).__name__)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise field_error(path, key, "a list", data.get(key, "<missing>"))


def _describe_categories(categories: list) -> str:
    return ", ".join(f"{c.get('id')!r}: {c.get('name')!r}" if isinstance(c, dict) else repr(c)
                     for c in categories)


def person_category(data: dict, path: str, choice: str = "") -> dict:
    """The category of a COCO file that holds the people: ``choice`` (a name, case-
    insensitive, or an id; ``DATASET.CATEGORY``) when given, else the one named ``person``,
    else the only one with ``keypoints``, else the only one. COCO numbers it 1, other files
    0, 3 or after other categories; results and detection files must use the same id."""
    categories = [c for c in data["categories"] if isinstance(c, dict)]
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not is_number(c.get("id")):
            raise field_error(path, f"categories[{i}].id", "a number", c)
    listing = _describe_categories(categories)
    choice = str(choice).strip()
    if choice:
        found = [c for c in categories if str(c.get("name", "")).lower() == choice.lower()]
        if not found:
            found = [c for c in categories if str(c["id"]) == choice]
        if len(found) != 1:
            raise DatasetError(f"DATASET.CATEGORY {choice!r}: {len(found)} categories of {path} "
                               f"match (id or name); its categories are {listing}")
        return found[0]
    for rule in (lambda c: str(c.get("name", "")).lower() == "person",
                 lambda c: bool(c.get("keypoints")),
                 lambda c: True):
        found = [c for c in categories if rule(c)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            break
    raise DatasetError(f"{path}: cannot tell which category holds the people (none or several "
                       f"named 'person' or with key points); its categories are {listing}. "
                       "Set DATASET.CATEGORY to the name or id of one")


def _validate(data, path: str, choice: str = "") -> tuple[int, dict]:
    """Check the fields that the pipeline and pycocotools read; return (K, category)."""
    check_coco_lists(data, path)
    if not data["categories"]:
        raise field_error(path, "categories", "at least one category (the person)", [])
    category = person_category(data, path, choice)
    where = f"categories[{data['categories'].index(category)}]"
    names = category.get("keypoints")
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(n, str) for n in names)):
        raise field_error(path, f"{where}.keypoints", "a list of joint names", names)
    skeleton = category.get("skeleton", [])
    if not (isinstance(skeleton, list) and all(are_numbers(p, 2) for p in skeleton)):
        raise field_error(path, f"{where}.skeleton", "a list of [i, j] pairs", skeleton)

    image_ids = check_images(data["images"], path)

    num_joints = len(names) if names is not None else None
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise field_error(path, f"annotations[{i}]", "an object", ann)
        if ann.get("image_id") not in image_ids:
            raise field_error(path, f"annotations[{i}].image_id", "the id of an entry of images",
                        ann.get("image_id", "<missing>"))
        if not is_number(ann.get("category_id")):
            raise field_error(path, f"annotations[{i}].category_id", "a number",
                        ann.get("category_id", "<missing>"))
        if not are_numbers(ann.get("bbox"), 4):
            raise field_error(path, f"annotations[{i}].bbox", "[x, y, w, h]",
                        ann.get("bbox", "<missing>"))
        for key in ("area", "iscrowd"):
            if key in ann and not is_number(ann[key]):
                raise field_error(path, f"annotations[{i}].{key}", "a number", ann[key])
        kpts = ann.get("keypoints")
        if kpts is None or ann["category_id"] != category["id"]:
            continue
        if num_joints is None and are_numbers(kpts) and len(kpts) % 3 == 0:
            num_joints = len(kpts) // 3
        if not are_numbers(kpts, 3 * num_joints):
            raise field_error(path, f"annotations[{i}].keypoints",
                        f"{3 * num_joints} numbers (x, y, v for {num_joints} joints)", kpts)
    if num_joints is None:
        raise field_error(path, f"{where}.keypoints", "joint names (no annotation has key "
                    "points to count them)", "<missing>")
    return num_joints, category


def load_coco_json(path: str, *, config_key: str = "DATASET.ROOT",
                   category: str = "") -> tuple[COCO, int, dict]:
    """Read and check a COCO key-point file; return the pycocotools index, K and the
    person category (:func:`person_category`; ``category`` is ``DATASET.CATEGORY``)."""
    if not os.path.isfile(path):
        raise DatasetError(f"annotation file not found: {path} (check {config_key} and the "
                           "TRAIN_SET/TEST_SET names)")
    data = read_json(path, "COCO annotations")
    num_joints, category = _validate(data, path, category)
    for i, ann in enumerate(data["annotations"]):  # fields that custom sets often omit
        ann.setdefault("id", i + 1)
        ann.setdefault("iscrowd", 0)
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco, num_joints, category


def _check_pairs(pairs, num_joints: int, key: str, source: str) -> None:
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(is_number(j) and int(j) == j and 0 <= j < num_joints for j in pair)):
            raise DatasetError(f"{key}: {pair!r} is not a pair of joint indices in "
                               f"0..{num_joints - 1} ({source})")


def keypoint_set_from_category(category: dict, num_joints: int, flip_pairs=None, sigmas=None,
                               upper_body_ids=(), source: str = "",
                               skeleton=None) -> KeypointSet:
    """Joint names and skeleton from the category; flip pairs, sigmas, skeleton and
    upper-body joints from the config where given (``DATASET.FLIP_PAIRS``, ``SIGMAS``
    in pycocotools' scale, ``SKELETON`` 0-based, ``UPPER_BODY_IDS``; None: not given),
    otherwise derived (see :func:`~humanpose.data.keypoints.custom_keypoint_set`)."""
    names = category.get("keypoints")
    if not names:  # unnamed joints: COCO's when there are 17 of them
        names = COCO_KEYPOINTS.names if num_joints == 17 else \
            [f"joint_{i}" for i in range(num_joints)]
    if flip_pairs is not None:
        _check_pairs(flip_pairs, num_joints, "DATASET.FLIP_PAIRS", source)
        flat = [int(j) for pair in flip_pairs for j in pair]
        if len(flat) != len(set(flat)):
            raise DatasetError(f"DATASET.FLIP_PAIRS: a joint appears in two pairs: {flip_pairs}")
    if skeleton is not None:
        _check_pairs(skeleton, num_joints, "DATASET.SKELETON", source)
        skeleton = [(int(a) + 1, int(b) + 1) for a, b in skeleton]  # 1-based, as in files
    else:
        skeleton = category.get("skeleton") or None
    if sigmas is not None:
        if len(sigmas) != num_joints:
            raise DatasetError(f"DATASET.SIGMAS has {len(sigmas)} values but {source} has "
                               f"{num_joints} key points")
        if not all(is_number(x) and 0 < x < 0.5 for x in sigmas):
            raise DatasetError(f"DATASET.SIGMAS {list(sigmas)}: expected values in pycocotools' "
                               "scale, 0 < sigma < 0.5 (0.026 for the COCO nose)")
        sigmas = [round(10.0 * float(x), 12) for x in sigmas]  # KeypointSet units
    if any(not 0 <= int(j) < num_joints for j in upper_body_ids):
        raise DatasetError(f"DATASET.UPPER_BODY_IDS {list(upper_body_ids)}: indices must be in "
                           f"0..{num_joints - 1} ({source})")
    return custom_keypoint_set(names, skeleton, flip_pairs, sigmas, upper_body_ids,
                               source=source)


# ----------------------------------------------------------------------------- records
def _clean_box(bbox, width: float, height: float):
    """The seed's box sanitising: clip to the image; None when nothing is left, and (unlike
    the seed, whose crop of such a box is a blur of one pixel row or column) when the box is
    at most 1 pixel wide or high."""
    x, y, w, h = bbox
    x1, y1 = max(0, x), max(0, y)
    x2 = min(width - 1, x1 + max(0, w - 1))
    y2 = min(height - 1, y1 + max(0, h - 1))
    if x2 > x1 and y2 > y1:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


def load_gt_records(coco: COCO, category_id: int, num_joints: int, image_dir: str,
                    aspect_ratio: float, fields: Sequence[str] = ("keypoints",)) -> Records:
    """One record per ground-truth person, as the seed's ``_load_coco_keypoint_annotations``:
    non-crowd people of ``category_id`` with a positive area, a box left after clipping
    and at least one labelled key point.

    ``fields`` are the annotation fields joined, in order, into a person's joints (COCO-
    WholeBody's five, :data:`~humanpose.data.wholebody.WHOLEBODY_FIELDS`). A joined person's
    joint counts as visible where v > 0, mmpose's rule (those files hold float scores such as
    0.9 in some parts); one field keeps the seed's min(v, 1)."""
    files, ids, centers, scales, joints, sizes = [], [], [], [], [], []
    dropped_box = dropped_kpts = 0
    for image_id in coco.getImgIds():
        im = coco.imgs[image_id]
        width, height = im["width"], im["height"]
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)):
            if ann["category_id"] != category_id:
                continue
            box = _clean_box(ann["bbox"], width, height)
            if ann["area"] <= 0 or box is None:
                dropped_box += 1
                continue
            kpts = ann.get("keypoints") if len(fields) == 1 else \
                [x for field in fields for x in ann[field]]
            if not kpts or max(kpts) == 0:
                dropped_kpts += 1
                continue
            center, scale = box_to_center_scale(box, aspect_ratio)
            files.append(os.path.join(image_dir, im["file_name"]))
            ids.append(image_id)
            centers.append(center)
            scales.append(scale)
            joints.append(kpts)
            sizes.append((width, height))
    logger.info("=> %d people with key points; dropped %d degenerate boxes and %d people "
                "without key points", len(ids), dropped_box, dropped_kpts)
    kpts = np.asarray(joints, dtype=np.float64).reshape(len(ids), num_joints, 3)
    joints_3d = np.zeros_like(kpts)
    joints_3d[:, :, :2] = kpts[:, :, :2]
    vis = np.minimum(kpts[:, :, 2], 1.0) if len(fields) == 1 else \
        (kpts[:, :, 2] > 0).astype(np.float64)
    joints_vis = np.stack([vis, vis, np.zeros_like(vis)], axis=2)
    return Records.from_rows(files, ids, centers, scales, joints_3d, joints_vis,
                             np.ones(len(ids)), sizes)


def load_detection_records(path: str, coco: COCO, num_joints: int, image_dir: str,
                           aspect_ratio: float, image_thre: float,
                           category_id: int = 1) -> Records:
    """One record per detected person with ``score >= image_thre`` (the seed's
    ``_load_coco_person_detection_results``): the box is used as is, joints are zeros and
    all marked visible. Only ``category_id`` (the person category, 1 in COCO) is kept, and
    boxes of width or height <= 1 pixel are dropped (counted in the log).
    Detections of images missing from the annotations are skipped with a warning."""
    if not path or not os.path.isfile(path):
        raise DatasetError(f"person detection file not found: {path!r} (TEST.COCO_BBOX_FILE; "
                           "set TEST.USE_GT_BBOX True to test on ground-truth boxes)")
    dets = read_json(path, "person detections")
    if not isinstance(dets, list) or not dets:
        raise field_error(path, "top level", "a non-empty list of detections "
                    "(COCO results format)", dets if not isinstance(dets, list) else [])
    files, ids, centers, scales, scores, sizes = [], [], [], [], [], []
    unknown = degenerate = 0
    for i, det in enumerate(dets):
        if not isinstance(det, dict):
            raise field_error(path, f"[{i}]", "an object", det)
        for key in ("image_id", "category_id", "score"):
            if not is_number(det.get(key)):
                raise field_error(path, f"[{i}].{key}", "a number", det.get(key, "<missing>"))
        if not are_numbers(det.get("bbox"), 4):
            raise field_error(path, f"[{i}].bbox", "[x, y, w, h]", det.get("bbox", "<missing>"))
        if det["category_id"] != category_id or det["score"] < image_thre:
            continue
        if det["bbox"][2] <= 1 or det["bbox"][3] <= 1:
            degenerate += 1
            continue
        im = coco.imgs.get(det["image_id"])
        if im is None:
            unknown += 1
            continue
        center, scale = box_to_center_scale(det["bbox"], aspect_ratio)
        files.append(os.path.join(image_dir, im["file_name"]))
        ids.append(det["image_id"])
        centers.append(center)
        scales.append(scale)
        scores.append(det["score"])
        sizes.append((im["width"], im["height"]))
    if unknown:
        logger.warning("=> %s: skipped %d detections of images not in the annotation file",
                       path, unknown)
    logger.info("=> %d detections in %s, %d with score >= %s; dropped %d boxes of width or "
                "height <= 1", len(dets), path, len(ids), image_thre, degenerate)
    n = len(ids)
    joints = np.zeros((n, num_joints, 3))
    return Records.from_rows(files, ids, centers, scales, joints, np.ones_like(joints), scores,
                             sizes)


def dataset_keypoints(cfg, data: dict, category: dict, num_joints: int,
                      path: str) -> tuple[KeypointSet, tuple[str, ...]]:
    """The joints of a loaded COCO-format file and the annotation fields that hold them.

    The file's joint names win where it has them (``num_joints`` of them); otherwise
    ``DATASET.KEYPOINT_SET`` names them. With ``coco_wholebody`` and a file of 17 body points
    (the official layout) the five part fields are checked and joined into 133
    (:func:`humanpose.data.wholebody.check_part_fields`; this fills, in ``data``, the fields
    single annotations lack). The config's flip pairs, sigmas, skeleton and upper body apply,
    and the count must be ``MODEL.NUM_JOINTS``.
    """
    from humanpose.data.wholebody import WHOLEBODY_FIELDS, check_part_fields

    d = cfg.DATASET
    fields: tuple[str, ...] = ("keypoints",)
    if d.KEYPOINT_SET and d.KEYPOINT_SET not in KEYPOINT_SETS:
        raise DatasetError(f"DATASET.KEYPOINT_SET {d.KEYPOINT_SET!r} is not one of "
                           f"{sorted(KEYPOINT_SETS)}")
    named = KEYPOINT_SETS[d.KEYPOINT_SET] if d.KEYPOINT_SET else None
    if d.KEYPOINT_SET == "coco_wholebody" and num_joints == 17:
        check_part_fields(data, path, category["id"])
        fields = tuple(f for f, _ in WHOLEBODY_FIELDS)
        num_joints = named.num_joints
        category = {**category, "keypoints": list(named.names), "skeleton": None}
    elif named is not None and not category.get("keypoints") \
            and num_joints == named.num_joints:
        category = {**category, "keypoints": list(named.names)}
    if num_joints != cfg.MODEL.NUM_JOINTS:
        hint = ""
        if d.KEYPOINT_SET != "coco_wholebody" and data["annotations"] \
                and "foot_kpts" in data["annotations"][0]:
            hint = " (a COCO-WholeBody file: DATASET.KEYPOINT_SET coco_wholebody joins its " \
                   "parts into 133 points)"
        raise DatasetError(f"{path} has {num_joints} key points per person but "
                           f"MODEL.NUM_JOINTS is {cfg.MODEL.NUM_JOINTS}{hint}")
    keypoints = keypoint_set_from_category(
        category, num_joints, d.FLIP_PAIRS, d.SIGMAS, d.UPPER_BODY_IDS, source=path,
        skeleton=d.SKELETON)
    return keypoints, fields


# ----------------------------------------------------------------------------- dataset
class COCODataset(TopDownDataset):
    """A COCO-format key-point set under ``root`` (see the module docstring for the layout).

    ``coco`` is the pycocotools index of the ground truth, for evaluation (test sets only;
    None for training sets); ``keypoints`` describes the joints (COCO's 17, the file's, or
    those ``DATASET.KEYPOINT_SET`` names: :func:`dataset_keypoints`).
    """

    def __init__(self, cfg, root: str, image_set: str, is_train: bool) -> None:
        if not os.path.isdir(root):
            raise DatasetError(f"data folder not found: {root!r} (DATASET.ROOT)")
        named = cfg.DATASET.KEYPOINT_SET
        ann_file = annotation_file(root, image_set, named)
        key = "DATASET.TRAIN_SET" if is_train else "DATASET.TEST_SET"
        if named == "coco_wholebody" and not os.path.isfile(ann_file):
            from humanpose.data.wholebody import official_annotation_file

            raise DatasetError(f"annotation file not found: "
                               f"{official_annotation_file(root, image_set)} (COCO-WholeBody's "
                               f"name) nor {ann_file} (check DATASET.ROOT/{key})")
        coco, num_joints, category = load_coco_json(ann_file, config_key=f"DATASET.ROOT/{key}",
                                                    category=cfg.DATASET.CATEGORY)
        keypoints, fields = dataset_keypoints(cfg, coco.dataset, category, num_joints,
                                              ann_file)
        num_joints = keypoints.num_joints
        if is_train and cfg.DATASET.FLIP and not keypoints.flip_pairs \
                and cfg.DATASET.FLIP_PAIRS is None \
                and not any(keypoints.names == s.names for s in KEYPOINT_SETS.values()):
            raise DatasetError(
                f"{ann_file}: DATASET.FLIP is on but no flip pairs could be derived from the "
                f"joint names {list(keypoints.names)}: mirrored images would keep left and "
                "right labels. Set DATASET.FLIP_PAIRS ([[i, j], ...] 0-based), or "
                "DATASET.FLIP_PAIRS [] if the set truly has no left/right joints, or "
                "DATASET.FLIP False")
        image_dir = image_folder(root, image_set)
        if cfg.DATASET.DATA_FORMAT == "zip":  # the seed's images/<set>.zip@/<file> paths
            if not os.path.isfile(image_dir + ".zip"):
                raise DatasetError(f"zip file of images not found: {image_dir}.zip "
                                   f"(DATASET.ROOT/{key}, DATASET.DATA_FORMAT zip)")
            image_dir += ".zip@"
        elif not os.path.isdir(image_dir):
            raise DatasetError(f"image folder not found: {image_dir} (DATASET.ROOT/{key})")
        options = SampleOptions.from_cfg(cfg)
        if is_train or cfg.TEST.USE_GT_BBOX:
            records = load_gt_records(coco, category["id"], num_joints, image_dir,
                                      options.aspect_ratio, fields)
        else:
            records = load_detection_records(cfg.TEST.COCO_BBOX_FILE, coco, num_joints,
                                             image_dir, options.aspect_ratio,
                                             cfg.TEST.IMAGE_THRE, category["id"])
        if is_train and cfg.DATASET.SELECT_DATA:
            before = len(records)
            records = select_data(records)
            logger.info("=> SELECT_DATA kept %d of %d people", len(records), before)
        super().__init__(records, keypoints, options, is_train, image_set)
        # Test sets keep the index for evaluation. Training sets drop it: forked loader
        # workers would copy its millions of Python objects as the garbage collector
        # touches them.
        self.coco = None if is_train else coco
        self.category_id = category["id"]  # results and detection files use this id
        self.annotation_file = ann_file
        self.root = root
        # The annotation fields that make the joints: more than one for COCO-WholeBody, whose
        # test sets are then scored part by part (humanpose.pose.evaluate).
        self.fields = fields
