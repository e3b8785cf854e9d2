"""Person categories other than id 1: selection, results files, detection files, AP."""

import json
import shutil

import numpy as np
import pytest

from humanpose.data import DatasetError, build_dataset
from humanpose.pose.evaluate import Predictions, score_predictions

from .test_data_common import data_cfg, write_small_coco

DET_FILE = "person_detection_results/COCO_val2017_detections_synthetic.json"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_category")
    write_small_coco(root, num_train=2, num_val=6, seed=11)
    return root


def _renumber(root, person_id: int, bicycle_first: bool) -> None:
    """The same set with the person category numbered ``person_id``; with
    ``bicycle_first`` a bicycle category (with its own annotation and detections) first."""
    for image_set in ("train2017", "val2017"):
        path = root / "annotations" / f"person_keypoints_{image_set}.json"
        data = json.loads(path.read_text())
        data["categories"][0]["id"] = person_id
        for ann in data["annotations"]:
            ann["category_id"] = person_id
        if bicycle_first:
            data["categories"].insert(0, {"id": 1, "name": "bicycle",
                                          "supercategory": "vehicle"})
            data["annotations"].append({"id": 10_000, "image_id": data["images"][0]["id"],
                                        "category_id": 1, "bbox": [5, 5, 40, 30],
                                        "area": 1200.0, "iscrowd": 0})
        path.write_text(json.dumps(data))
    path = root / DET_FILE
    dets = json.loads(path.read_text())
    for det in dets:
        det["category_id"] = person_id
    if bicycle_first:  # confident boxes of another category must not become people
        dets += [dict(det, category_id=1, score=0.99) for det in dets[:5]]
    path.write_text(json.dumps(dets))


def _score(root, out, *opts):
    ds = build_dataset(data_cfg(root, *opts), is_train=False)
    rng = np.random.default_rng(0)
    r = ds.records
    kpts = r.joints.copy()
    kpts[:, :, :2] += rng.normal(0, 2.0, kpts[:, :, :2].shape)
    kpts[:, :, 2] = 0.9
    preds = Predictions(kpts.astype(np.float32), r.centers.astype(np.float64),
                        r.scales.astype(np.float64), r.scores, r.image_ids,
                        np.arange(len(r)))
    values, _, _ = score_predictions(data_cfg(root, *opts), ds, preds, out, "test")
    results = json.loads((out / "results" / "keypoints_val2017_results_0.json").read_text())
    return ds, values, results


@pytest.mark.parametrize("person_id, bicycle_first", [(3, False), (2, True), (0, False)])
def test_other_person_ids_give_the_same_results_and_ap(pristine, tmp_path, person_id,
                                                       bicycle_first):
    root = tmp_path / "coco"
    shutil.copytree(pristine, root)
    _renumber(root, person_id, bicycle_first)
    ref_ds, ref_values, ref_results = _score(pristine, tmp_path / "ref")
    ds, values, results = _score(root, tmp_path / "other")
    assert ds.category_id == person_id
    assert ref_values["AP"] > 0.5
    assert dict(values) == pytest.approx(dict(ref_values))
    assert {r["category_id"] for r in results} == {person_id}
    assert [dict(r, category_id=1) for r in results] == ref_results
    # detection files are read by the same id: the same boxes, other categories dropped
    det_opts = ("TEST.USE_GT_BBOX", "False", "TEST.COCO_BBOX_FILE", str(root / DET_FILE))
    ref_det = build_dataset(data_cfg(pristine, "TEST.USE_GT_BBOX", "False",
                                     "TEST.COCO_BBOX_FILE", str(pristine / DET_FILE)),
                            is_train=False)
    det = build_dataset(data_cfg(root, *det_opts), is_train=False)
    assert len(det) == len(ref_det) > 0
    assert np.array_equal(det.records.centers, ref_det.records.centers)


def test_category_choice_and_ambiguity(pristine, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(pristine, root)
    for image_set in ("train2017", "val2017"):
        path = root / "annotations" / f"person_keypoints_{image_set}.json"
        data = json.loads(path.read_text())
        cat = data["categories"][0]
        data["categories"] = [dict(cat, id=1, name="people"), dict(cat, id=7, name="humans")]
        path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"1: 'people', 7: 'humans'.*DATASET\.CATEGORY"):
        build_dataset(data_cfg(root), is_train=True)
    assert build_dataset(data_cfg(root, "DATASET.CATEGORY", "people"),
                         is_train=True).category_id == 1
    by_id = build_dataset(data_cfg(root, "DATASET.CATEGORY", "1"), is_train=True)
    assert by_id.category_id == 1 and len(by_id) > 0
    with pytest.raises(DatasetError, match=r"DATASET\.CATEGORY 'dog'.*'people'"):
        build_dataset(data_cfg(root, "DATASET.CATEGORY", "dog"), is_train=True)
