"""Whole-body, hand and face key-point sets: mmpose's tables, parts, flips, round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from humanpose.data.coco import keypoint_set_from_category, load_coco_json
from humanpose.data.keypoints import (
    COCO,
    COCO_WHOLEBODY,
    FACE68,
    FACE106,
    HAND21,
    KEYPOINT_SETS,
    PARTS,
    keypoint_set_from_dict,
    keypoint_set_to_dict,
)


@pytest.mark.parametrize("key, kset, count", [
    ("coco_wholebody", COCO_WHOLEBODY, 133), ("hand21", HAND21, 21), ("face68", FACE68, 68),
    ("face106", FACE106, 106)])
def test_named_sets(key, kset, count):
    assert KEYPOINT_SETS[key] is kset
    assert kset.num_joints == count
    flat = [j for pair in kset.flip_pairs for j in pair]
    assert len(flat) == len(set(flat)) and all(0 <= j < count for j in flat)
    assert all(1 <= j <= count for pair in kset.skeleton for j in pair)
    assert keypoint_set_from_dict(keypoint_set_to_dict(kset)) is kset


def test_wholebody_layout_and_parts():
    w = COCO_WHOLEBODY
    # mmpose's order: COCO's body first, with COCO's flip pairs and sigmas.
    assert w.names[:17] == COCO.names
    assert np.allclose(w.sigmas[:17], COCO.sigmas)
    assert set(COCO.flip_pairs) <= set(w.flip_pairs)
    sizes = {part: len(w.part_ids(part)) for part in PARTS}
    assert sizes == {"body": 17, "foot": 6, "face": 68, "left_hand": 21, "right_hand": 21}
    assert w.part_ids("left_hand") == tuple(range(91, 112))
    assert w.part_of(16) == "body" and w.part_of(17) == "foot" and w.part_of(132) == "right_hand"
    # Hands swap with each other joint by joint; a face outline point swaps within the face.
    pairs = dict(w.flip_pairs)
    assert all(pairs[91 + i] == 112 + i for i in range(21))
    assert pairs[23] == 23 + 16  # face-0 <-> face-16 (jaw line ends)
    # Official sigmas: the whole-body table is body + foot + face + hands of the part tables.
    assert np.allclose(w.sigmas_array()[23:91], FACE68.sigmas_array())
    assert np.allclose(w.sigmas_array()[91:112], HAND21.sigmas_array())
    assert COCO.part_of(3) == "body"  # sets without parts are all body


def _write_custom(path, names, n):
    rng = np.random.default_rng(0)
    kpts = np.concatenate([rng.uniform(10, 90, (n, 2)), np.full((n, 1), 2.0)], axis=1)
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 90, 90],
                             "keypoints": kpts.ravel().tolist(), "num_keypoints": n}],
            "categories": [{"id": 1, "name": "hand", "keypoints": names}]}
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("kset", [HAND21, FACE106])
def test_hand_and_face_files_load_as_their_set(tmp_path, kset):
    path = tmp_path / "ann.json"
    _write_custom(path, list(kset.names), kset.num_joints)
    coco, k, category = load_coco_json(str(path))
    assert k == kset.num_joints
    loaded = keypoint_set_from_category(category, k, source=str(path))
    assert loaded.flip_pairs == kset.flip_pairs and loaded.parts == kset.parts
    assert loaded.skeleton == kset.skeleton


# ----------------------------------------------------------------------------- evaluation
def _wholebody_gt(rng, people=6):
    from humanpose.evaluation.wholebody import split_wholebody

    images, anns, truth = [], [], []
    for i in range(people):
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": 400, "height": 400})
        pts = np.stack([rng.uniform(50, 250, 133), rng.uniform(50, 250, 133),
                        np.full(133, 2.0)], axis=1)
        if i == 0:
            pts[91:112] = 0  # an invalid (missing) left hand
        ann = {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [50, 50, 200, 200],
               "area": 30000.0, "iscrowd": 0, "num_keypoints": 17,
               **split_wholebody(pts.ravel().tolist())}
        anns.append(ann)
        truth.append(pts)
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names)}]}
    return data, truth


def _results(truth, move=slice(0, 0), shift=0.0):
    from humanpose.evaluation.wholebody import split_wholebody

    out = []
    for i, pts in enumerate(truth):
        pred = pts.copy()
        pred[:, 2] = 0.9
        pred[move, 0] += shift * (1 + i)
        out.append({"image_id": i + 1, "category_id": 1, "score": 0.9,
                    **split_wholebody(pred.ravel().tolist())})
    return out


def test_wholebody_evaluation_known_answers():
    from humanpose.evaluation.wholebody import evaluate_wholebody

    rng = np.random.default_rng(3)
    gt, truth = _wholebody_gt(rng)
    sigmas = COCO_WHOLEBODY.sigmas_array() / 10
    perfect = evaluate_wholebody(gt, _results(truth), sigmas)
    for part in ("body", "foot", "face", "lefthand", "righthand", "wholebody"):
        assert perfect[f"{part} AP"] == pytest.approx(1.0)
        assert perfect[f"{part} AR"] == pytest.approx(1.0)
    # Person 0's left hand is missing: it is not counted as a miss (xtcocotools ignores
    # it), however far off the prediction there is.
    far = _results(truth)
    far[0]["lefthand_kpts"] = [v + 1000.0 if k % 3 < 2 else v
                               for k, v in enumerate(far[0]["lefthand_kpts"])]
    assert evaluate_wholebody(gt, far, sigmas)["lefthand AR"] == pytest.approx(1.0)
    moved = evaluate_wholebody(gt, _results(truth, slice(23, 91), 8.0), sigmas)
    assert moved["face AP"] < 0.9 and moved["wholebody AP"] < 1.0
    for part in ("body", "foot", "lefthand", "righthand"):
        assert moved[f"{part} AP"] == pytest.approx(1.0)
