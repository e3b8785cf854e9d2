"""Evaluation: OKS, OKS-NMS, re-scoring, COCO AP through pycocotools, PCKh, tables."""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections import defaultdict

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from humanpose.evaluation import (
    COCO_STATS_NAMES,
    PCKH_NAMES,
    evaluate_keypoints,
    evaluate_pckh,
    format_table,
    oks_iou,
    oks_nms,
    oks_sigmas,
    rescore,
    select_people,
    soft_oks_nms,
    soft_oks_nms_with_scores,
    write_gt_valid,
    write_results,
)
from humanpose.evaluation import nms as nms_module
from humanpose.evaluation.mpii import MPII_GT_JOINTS

SIGMAS3 = np.array([0.05, 0.1, 0.08])


def person(xy, conf=1.0) -> np.ndarray:
    """(K, 3) key points from (K, 2) positions and one confidence (or K of them)."""
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.broadcast_to(np.asarray(conf, dtype=np.float64), (len(xy),))
    return np.concatenate([xy, conf[:, None]], axis=1)


def hand_oks(g_xy, d_xy, area_g, area_d, sigmas, joints) -> float:
    """The OKS formula written out joint by joint over ``joints``."""
    terms = []
    for j in joints:
        dist2 = (d_xy[j][0] - g_xy[j][0]) ** 2 + (d_xy[j][1] - g_xy[j][1]) ** 2
        terms.append(math.exp(-dist2 / (2 * sigmas[j]) ** 2 / ((area_g + area_d) / 2) / 2))
    return sum(terms) / len(terms) if terms else 0.0


# --------------------------------------------------------------------------------- OKS
G_XY = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]
D_XY = [(3.0, 4.0), (13.0, 4.0), (-6.0, 18.0)]  # offsets of length 5, 5 and 10


def test_oks_iou_matches_formula_by_hand():
    g, d = person(G_XY), person(D_XY)
    got = oks_iou(g.ravel(), d[None], 100.0, np.array([300.0]), SIGMAS3)
    want = hand_oks(G_XY, D_XY, 100.0, 300.0, SIGMAS3, range(3))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(want, abs=1e-12)
    # Identical people are perfectly similar; flat (M, K*3) rows are accepted too.
    assert oks_iou(g, np.stack([g, d]).reshape(2, -1), 100.0, [100.0, 300.0], SIGMAS3)[
        0
    ] == pytest.approx(1.0)


def test_oks_iou_in_vis_thre_filters_on_detected_scores():
    g = person(G_XY, conf=[0.9, 0.1, 0.9])  # g's low joint does not filter (seed semantics)
    d = person(D_XY, conf=[0.1, 0.9, 0.9])
    got = oks_iou(g, d[None], 100.0, np.array([300.0]), SIGMAS3, in_vis_thre=0.2)[0]
    assert got == pytest.approx(hand_oks(G_XY, D_XY, 100.0, 300.0, SIGMAS3, [1, 2]), abs=1e-12)
    assert got != pytest.approx(hand_oks(G_XY, D_XY, 100.0, 300.0, SIGMAS3, range(3)))
    nothing = person(D_XY, conf=0.1)
    assert oks_iou(g, nothing[None], 100.0, [300.0], SIGMAS3, in_vis_thre=0.2)[0] == 0.0


def test_sigmas_are_checked():
    g = person(G_XY)
    with pytest.raises(ValueError, match="10x"):
        oks_iou(g, g[None], 1.0, [1.0], SIGMAS3 * 10)
    with pytest.raises(ValueError, match="3 joints"):
        oks_iou(g, g[None], 1.0, [1.0])  # COCO's default sigmas are for 17 joints
    assert oks_sigmas()[0] == pytest.approx(0.026)


# ----------------------------------------------------------------------------- OKS-NMS
def coco_person(offset=(0.0, 0.0), conf=0.9, rng_seed=0) -> np.ndarray:
    rng = np.random.default_rng(rng_seed)
    xy = rng.uniform(0, 100, (17, 2)) + np.asarray(offset)
    return person(xy, conf)


def test_oks_nms_keeps_the_better_of_two_near_identical_people():
    a = coco_person()
    b = a.copy()
    b[:, :2] += 0.5
    keep = oks_nms(np.stack([a, b]), np.array([0.6, 0.8]), np.array([1e4, 1e4]), 0.9)
    assert keep == [1]


def test_oks_nms_keeps_distant_people_best_first():
    a, b = coco_person(), coco_person(offset=(500.0, 0.0))
    keep = oks_nms(np.stack([a, b]), np.array([0.6, 0.8]), np.array([1e4, 1e4]), 0.9)
    assert keep == [1, 0]
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0), 0.9) == []


def test_oks_nms_threshold_edge():
    a = coco_person()
    b = a.copy()
    b[:, :2] += 6.0
    people, scores, areas = np.stack([a, b]), np.array([0.9, 0.8]), np.array([1e4, 1e4])
    overlap = oks_iou(a, b[None], areas[0], areas[1:])[0]
    assert 0.1 < overlap < 0.99
    assert oks_nms(people, scores, areas, overlap) == [0, 1]  # equal to the threshold: kept
    assert oks_nms(people, scores, areas, np.nextafter(overlap, 0)) == [0]


def test_soft_oks_nms_lowers_but_keeps_an_overlapping_person():
    a = coco_person()
    b = a.copy()
    b[:, :2] += 2.0
    c = coco_person(offset=(800.0, 0.0))
    people, areas = np.stack([a, b, c]), np.full(3, 1e4)
    scores = np.array([0.9, 0.85, 0.5])
    thresh = 0.9
    keep, kept_scores = soft_oks_nms_with_scores(people, scores, areas, thresh)
    overlap = oks_iou(a, b[None], 1e4, [1e4])[0]
    decayed = 0.85 * math.exp(-(overlap**2) / thresh)
    assert overlap > thresh  # hard NMS would drop b
    assert oks_nms(people, scores, areas, thresh) == [0, 2]
    assert decayed < 0.5  # so b now ranks after c
    assert keep == [0, 2, 1]
    np.testing.assert_allclose(kept_scores, [0.9, 0.5, decayed], rtol=1e-12)
    assert soft_oks_nms(people, scores, areas, thresh) == keep


def test_soft_oks_nms_stops_at_max_dets():
    people = np.stack([coco_person(offset=(300.0 * i, 0.0)) for i in range(25)])
    scores = np.linspace(0.9, 0.1, 25)
    keep = soft_oks_nms(people, scores, np.full(25, 1e4), 0.9)
    assert keep == list(range(20))
    assert soft_oks_nms(people, scores, np.full(25, 1e4), 0.9, max_dets=3) == [0, 1, 2]


def test_on_demand_oks_rows_match_the_table(monkeypatch):
    rng = np.random.default_rng(3)
    people = np.stack([coco_person(offset=rng.uniform(0, 30, 2), rng_seed=0) for _ in range(60)])
    scores, areas = rng.random(60), rng.uniform(5e3, 2e4, 60)
    hard = oks_nms(people, scores, areas, 0.5)
    soft = soft_oks_nms_with_scores(people, scores, areas, 0.5)
    monkeypatch.setattr(nms_module, "_TABLE_MAX_PEOPLE", 4)
    assert oks_nms(people, scores, areas, 0.5) == hard
    soft_rows = soft_oks_nms_with_scores(people, scores, areas, 0.5)
    assert soft_rows[0] == soft[0]
    np.testing.assert_array_equal(soft_rows[1], soft[1])
    assert 1 < len(hard) < 60


# --------------------------------------------------------------------------- rescoring
def test_rescore_by_hand():
    kpts = np.zeros((2, 4, 3), dtype=np.float32)
    kpts[0, :, 2] = [0.9, 0.1, 0.5, 0.3]
    kpts[1, :, 2] = [0.2, 0.1, 0.05, 0.0]  # none above 0.2 (0.2 itself is not above)
    got = rescore(kpts, np.array([0.8, 0.7]), in_vis_thre=0.2)
    assert got[0] == pytest.approx((0.9 + 0.5 + 0.3) / 3 * 0.8, rel=1e-6)
    assert got[1] == 0.0


# ------------------------------------------------- select_people against a plain loop
def loop_select(kpts, areas, box_scores, image_ids, in_vis_thre, oks_thre, soft, sigmas):
    """The seed's post-processing written as plain loops: (image, index, score) triples."""
    k = kpts.shape[1]

    def oks(i, j):
        terms = []
        for t in range(k):
            dist2 = float(kpts[j, t, 0] - kpts[i, t, 0]) ** 2 + float(
                kpts[j, t, 1] - kpts[i, t, 1]
            ) ** 2
            mean_area = (areas[i] + areas[j]) / 2 + np.spacing(1)
            terms.append(math.exp(-dist2 / (2 * sigmas[t]) ** 2 / mean_area / 2))
        return sum(terms) / k

    scores = {}
    for i in range(len(kpts)):
        passing = [float(c) for c in kpts[i, :, 2] if c > in_vis_thre]
        scores[i] = (sum(passing) / len(passing) if passing else 0.0) * float(box_scores[i])
    by_image = defaultdict(list)
    for i, image in enumerate(image_ids):
        by_image[int(image)].append(i)
    out = []
    for image, members in by_image.items():
        order = sorted(members, key=lambda m: -scores[m])
        current = {m: scores[m] for m in members}
        keep = []
        while order and (not soft or len(keep) < 20):
            best, order = order[0], order[1:]
            keep.append(best)
            if soft:
                for m in order:
                    current[m] *= math.exp(-oks(best, m) ** 2 / oks_thre)
                order.sort(key=lambda m: -current[m])
            else:
                order = [m for m in order if oks(best, m) <= oks_thre]
        out.extend((image, m, scores[m]) for m in keep)
    return out


@pytest.mark.parametrize("soft", [False, True])
def test_select_people_matches_a_plain_loop(soft):
    rng = np.random.default_rng(7)
    n = 120
    image_ids = rng.choice([11, 5, 42, 7, 300], size=n)
    base = rng.uniform(0, 200, (5, 17, 2))
    xy = base[rng.integers(0, 5, n)] + rng.normal(0, 1, (n, 1, 1)) * rng.uniform(0, 8, (n, 17, 2))
    kpts = np.concatenate([xy, rng.random((n, 17, 1))], axis=2).astype(np.float32)
    centers, scales = rng.uniform(0, 500, (n, 2)), rng.uniform(0.3, 1.5, (n, 2))
    areas = np.prod(scales * 200, axis=1)
    box_scores = rng.uniform(0.3, 1.0, n)
    records = select_people(
        kpts, centers, scales, areas, box_scores, image_ids,
        in_vis_thre=0.2, oks_thre=0.9, soft_nms=soft, sigmas=oks_sigmas(),
    )
    want = loop_select(kpts, areas, box_scores, image_ids, 0.2, 0.9, soft, oks_sigmas())
    assert 10 < len(records) < n if not soft else len(records) == sum(
        min(20, int(np.sum(image_ids == i))) for i in set(image_ids.tolist())
    )
    assert [r["image_id"] for r in records] == [w[0] for w in want]
    chosen = [w[1] for w in want]
    np.testing.assert_allclose([r["score"] for r in records], [w[2] for w in want], rtol=1e-6)
    np.testing.assert_array_equal(
        np.array([r["keypoints"] for r in records]), kpts[chosen].reshape(len(chosen), -1)
    )
    np.testing.assert_array_equal([r["center"] for r in records], centers[chosen])
    np.testing.assert_array_equal([r["scale"] for r in records], scales[chosen])
    assert all(r["category_id"] == 1 and isinstance(r["image_id"], int) for r in records)


def test_select_people_empty():
    empty = np.zeros((0, 17, 3))
    z = np.zeros(0)
    assert select_people(
        empty, np.zeros((0, 2)), np.zeros((0, 2)), z, z, z,
        in_vis_thre=0.2, oks_thre=0.9, soft_nms=False,
    ) == []


# ------------------------------------------------------------------------ COCO eval
def make_coco(num_joints=17, num_images=4, per_image=3, seed=0):
    """A small COCO key-point ground truth: its dict and pycocotools' index of it."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "width": 640, "height": 480, "file_name": f"{image_id}.jpg"})
        for _ in range(per_image):
            side = rng.uniform(50, 200)  # medium and large people
            origin = rng.uniform(0, 400, 2)
            xy = origin + rng.uniform(0, side, (num_joints, 2))
            vis = np.where(rng.random(num_joints) < 0.8, 2, 0)
            vis[:2] = 2
            x0, y0 = xy[vis > 0].min(0)
            x1, y1 = xy[vis > 0].max(0)
            kp = np.concatenate([xy * (vis[:, None] > 0), vis[:, None]], 1)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "keypoints": kp.ravel().tolist(), "num_keypoints": int((vis > 0).sum()),
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float((x1 - x0) * (y1 - y0) * 0.8),
                "iscrowd": 0,
            })
    categories = [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": [f"j{i}" for i in range(num_joints)], "skeleton": [],
    }]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    coco = COCO()
    coco.dataset = json.loads(json.dumps(gt))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return gt, coco


def results_from_gt(gt, noise, seed=1, extra=2):
    """Detections: the ground truth moved by ``noise`` pixels, plus a few stray people."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in gt["annotations"]:
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, noise, (len(kp), 2))
        kp[:, 2] = rng.uniform(0.2, 1.0, len(kp))
        results.append({
            "image_id": ann["image_id"], "category_id": 1,
            "keypoints": kp.ravel().tolist(), "score": float(rng.uniform(0.5, 1)),
        })
    for _ in range(extra):
        kp = np.concatenate([rng.uniform(0, 600, (len(kp), 2)), np.ones((len(kp), 1))], 1)
        results.append({
            "image_id": 1, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": 0.3,
        })
    return results


def direct_cocoeval(coco, path, sigmas=None) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(coco, coco.loadRes(str(path)), "keypoints")
        coco_eval.params.useSegm = None
        if sigmas is not None:
            coco_eval.params.kpt_oks_sigmas = sigmas
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def test_coco_evaluation_equals_cocoeval(tmp_path):
    gt, coco = make_coco()
    path = tmp_path / "results" / "keypoints.json"
    write_results(results_from_gt(gt, noise=6.0), path)
    got = evaluate_keypoints(coco, path, quiet=True)
    assert list(got) == list(COCO_STATS_NAMES)
    want = direct_cocoeval(coco, path)
    np.testing.assert_allclose(list(got.values()), want[:10], rtol=0, atol=1e-12)
    assert 0.0 < got["AP"] < 1.0
    assert [p.name for p in path.parent.iterdir()] == ["keypoints.json"]  # no temp file left
    # The records in memory score exactly as the file they were written to.
    records = results_from_gt(gt, noise=6.0)
    np.testing.assert_array_equal(list(evaluate_keypoints(coco, records, quiet=True).values()),
                                  list(got.values()))


def test_coco_perfect_predictions_give_ap_one(tmp_path):
    gt, coco = make_coco()
    path = tmp_path / "perfect.json"
    write_results(results_from_gt(gt, noise=0.0, extra=0), path)
    got = evaluate_keypoints(coco, path, quiet=True)
    assert got["AP"] == pytest.approx(1.0)
    assert got["AR"] == pytest.approx(1.0)


def test_coco_custom_sigmas_for_five_keypoints(tmp_path):
    gt, coco = make_coco(num_joints=5)
    sigmas = np.array([0.025, 0.035, 0.079, 0.072, 0.062])
    path = tmp_path / "five.json"
    write_results(results_from_gt(gt, noise=4.0), path)
    got = evaluate_keypoints(coco, path, sigmas=sigmas, quiet=True)
    want = direct_cocoeval(coco, path, sigmas)
    np.testing.assert_allclose(list(got.values()), want[:10], rtol=0, atol=1e-12)
    write_results(results_from_gt(gt, noise=0.0, extra=0), path)
    assert evaluate_keypoints(coco, path, sigmas=sigmas, quiet=True)["AP"] == pytest.approx(1.0)


def test_coco_empty_results_give_zeros(tmp_path):
    _, coco = make_coco()
    path = tmp_path / "empty.json"
    write_results([], path)
    assert json.loads(path.read_text()) == []
    got = evaluate_keypoints(coco, path, quiet=True)
    assert list(got) == list(COCO_STATS_NAMES) and set(got.values()) == {0.0}


def test_coco_results_for_unknown_images_are_refused(tmp_path):
    gt, coco = make_coco()
    results = results_from_gt(gt, noise=1.0)
    results[0]["image_id"] = 999
    path = tmp_path / "bad.json"
    write_results(results, path)
    with pytest.raises(ValueError, match="bad.json"):
        evaluate_keypoints(coco, path, quiet=True)


def test_write_results_accepts_numpy_values(tmp_path):
    path = tmp_path / "np.json"
    write_results(
        [{"image_id": np.int64(3), "keypoints": np.arange(3.0), "score": np.float32(0.5)}], path
    )
    assert json.loads(path.read_text()) == [{"image_id": 3, "keypoints": [0, 1, 2], "score": 0.5}]


# ---------------------------------------------------------------------------- table
def test_format_table_layout():
    values = {"AP": 0.76543, "Ap .5": 0.9}
    assert format_table(values, "pose_hrnet").splitlines() == [
        "| Arch | AP | Ap .5 |",
        "|---|---|---|",
        "| pose_hrnet | 0.765 | 0.900 |",
    ]
    long_name = format_table(values, "lpn_50_256x192_gd256x2_gc").splitlines()[2]
    assert long_name == "| lpn_50_2... | 0.765 | 0.900 |"
    assert format_table(values, "x" * 15).splitlines()[2].startswith("| " + "x" * 15 + " |")


# ----------------------------------------------------------------------------- PCKh
def test_pckh_by_hand(tmp_path):
    n = 4
    rng = np.random.default_rng(0)
    joints = rng.uniform(50, 400, (n, 16, 2))  # 1-based pixels
    headboxes = np.zeros((n, 2, 2))
    headboxes[:, 0] = [10.0, 20.0]
    headboxes[:, 1] = [10.0 + 30.0, 20.0 + 40.0]  # diagonal 50 -> head size 0.6 * 50 = 30
    head = 30.0
    missing = np.zeros((n, 16), dtype=bool)
    missing[0, [0, 9]] = True  # person 0: right ankle and head top unlabelled
    missing[:, 6] = True  # pelvis never labelled: must not affect the means
    # Distance of each prediction in head sizes: 0.05 (passes both), 0.3 (only @0.5),
    # 0.105 (passes the seed's "@0.1", measured at 0.11) or 0.7 (fails both).
    fractions = np.array([0.05, 0.3, 0.105, 0.7])
    factor = fractions[(np.arange(n)[:, None] + np.arange(16)[None]) % 4]
    angle = rng.uniform(0, 2 * np.pi, (n, 16))
    offset = np.stack([np.cos(angle), np.sin(angle)], -1) * (factor * head)[..., None]
    preds = joints + offset - 1.0  # 0-based, as the models give them
    path = tmp_path / "gt_valid.mat"
    write_gt_valid(path, joints, missing, headboxes)

    got = evaluate_pckh(np.concatenate([preds, np.ones((n, 16, 1))], -1), path)
    assert list(got) == list(PCKH_NAMES)

    visible = ~missing

    def pck(joint_ids, limit):
        ids = [MPII_GT_JOINTS.index(j) for j in joint_ids]
        hits = sum((factor[p, j] <= limit) for p in range(n) for j in ids if visible[p, j])
        total = sum(visible[p, j] for p in range(n) for j in ids)
        return 100.0 * hits / total

    groups = {
        "Head": ["head"], "Shoulder": ["lsho", "rsho"], "Elbow": ["lelb", "relb"],
        "Wrist": ["lwri", "rwri"], "Hip": ["lhip", "rhip"], "Knee": ["lkne", "rkne"],
        "Ankle": ["lank", "rank"],
    }
    for name, ids in groups.items():
        # The seed averages the left and right joints' PCKh (not the pooled hits).
        want = np.mean([pck([j], 0.5) for j in ids])
        assert got[name] == pytest.approx(want, abs=1e-9), name
    body = [j for j in MPII_GT_JOINTS if j not in ("pelv", "thor")]
    assert got["Mean"] == pytest.approx(pck(body, 0.5), abs=1e-9)
    assert got["Mean@0.1"] == pytest.approx(pck(body, 0.11), abs=1e-9)
    assert got["Mean@0.1"] > pck(body, 0.1)  # the 0.105 joints count, as in the seed

    with pytest.raises(ValueError, match="gt_valid.mat"):
        evaluate_pckh(preds[:3], path)
    with pytest.raises(FileNotFoundError, match="nothere.mat"):
        evaluate_pckh(preds, tmp_path / "nothere.mat")
    (tmp_path / "broken.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="broken.mat"):
        evaluate_pckh(preds, tmp_path / "broken.mat")
