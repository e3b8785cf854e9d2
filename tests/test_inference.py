"""PoseEstimator, backends, frame sources, detectors, video box reuse and drawing."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import humanpose
from humanpose.codecs import decode_heatmaps
from humanpose.data.geometry import box_to_center_scale, get_affine_transform
from humanpose.data.keypoints import COCO
from humanpose.inference import (
    Detections,
    DetectionsFile,
    Person,
    PoseEstimator,
    WholeImageDetector,
    available_backends,
)
from humanpose.inference.backends import (
    AutoChoiceCache,
    TorchRunner,
    fold_batchnorm,
)
from humanpose.inference.sources import SourceError, open_source
from humanpose.inference.tracking import PoseTracker, follow_people
from humanpose.vis import draw_people, style_for

REPO = Path(__file__).resolve().parents[1]
LPN18 = REPO / "experiments" / "coco" / "lpn" / "lpn18_256x192_gd256x2_gc.yaml"
SMALL = ["MODEL.IMAGE_SIZE", "[96,128]", "MODEL.HEATMAP_SIZE", "[24,32]"]
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def small_cfg(*opts: str):
    return humanpose.get_cfg(LPN18, [*SMALL, *opts])


def nontrivial_model(cfg, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised model whose heatmaps are not flat: batch-norm statistics
    measured on random input (as after training) and a scaled-up final layer."""
    torch.manual_seed(seed)
    model = humanpose.build_model(cfg)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0.0, 0.1)
    model.train()
    w, h = cfg.MODEL.IMAGE_SIZE
    with torch.no_grad():
        model(torch.randn(4, 3, h, w))
        model.final_layer.weight.mul_(20.0)
    return model.eval()


def write_weights(path: Path, seed: int = 0) -> Path:
    torch.save(nontrivial_model(small_cfg(), seed).state_dict(), path)
    return path


def stick_figure(width: int = 320, height: int = 240, x: int = 160) -> np.ndarray:
    """A BGR image with one drawn person standing at column ``x``."""
    image = np.full((height, width, 3), (90, 140, 120), dtype=np.uint8)
    head, neck, hip = (x, 50), (x, 75), (x, 140)
    cv2.circle(image, head, 16, (150, 180, 230), -1)
    for a, b in ((neck, hip), (neck, (x - 35, 110)), (neck, (x + 35, 110)),
                 (hip, (x - 25, 210)), (hip, (x + 25, 210))):
        cv2.line(image, a, b, (40, 60, 200), 9)
    return image


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_weights(tmp_path_factory.mktemp("weights") / "lpn18_small.pth")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return stick_figure()


def expected_keypoints(cfg, model, image_bgr, boxes, flip: bool) -> np.ndarray:
    """Key points computed step by step without PoseEstimator: crop, normalise, forward the
    eager model, optionally flip test, decode."""
    w, h = cfg.MODEL.IMAGE_SIZE
    centers, scales, inputs = [], [], []
    rgb = image_bgr[:, :, ::-1] if cfg.DATASET.COLOR_RGB else image_bgr
    for box in boxes:
        c, s = box_to_center_scale(box, w / h)
        trans = get_affine_transform(c, s, 0, (w, h))
        crop = cv2.warpAffine(np.ascontiguousarray(rgb), trans, (w, h), flags=cv2.INTER_LINEAR)
        inputs.append(((crop.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1))
        centers.append(c)
        scales.append(s)
    x = torch.from_numpy(np.stack(inputs))
    with torch.no_grad():
        heatmaps = model(x)
        if flip:
            mirrored = model(x.flip(3)).flip(3)
            order = list(range(heatmaps.shape[1]))
            for a, b in COCO.flip_pairs:
                order[a], order[b] = b, a
            mirrored = mirrored[:, order]
            if cfg.TEST.SHIFT_HEATMAP:
                mirrored[..., 1:] = mirrored[..., :-1].clone()
            heatmaps = (heatmaps + mirrored) / 2
    method = "softargmax" if cfg.TEST.SOFT_ARGMAX else "argmax"
    coords, conf = decode_heatmaps(heatmaps.numpy(), np.stack(centers), np.stack(scales),
                                   method, post_process=cfg.TEST.POST_PROCESS)
    return np.concatenate([coords, conf], axis=2)


# ----------------------------------------------------------------------------- estimator
@pytest.mark.parametrize("flip", [False, True])
def test_estimator_matches_direct_computation(weights, image, flip):
    cfg = small_cfg()
    est = PoseEstimator(cfg, weights, backend="torch", flip_test=flip)
    boxes = np.array([[120, 30, 80, 190], [100, 20, 130, 200]], dtype=np.float32)
    people = est(image, boxes, box_scores=[0.9, 0.5])

    model = humanpose.build_model(cfg, channels_last=False)
    humanpose.load_checkpoint(model, weights)
    expected = expected_keypoints(cfg, model.eval(), image, boxes, flip)
    assert len(people) == 2
    got = np.stack([p.keypoints for p in people])
    assert got.shape == (2, COCO.num_joints, 3)
    # BN folding changes the heatmaps by ~1e-6, which soft-argmax turns into < 0.01 px
    np.testing.assert_allclose(got[..., :2], expected[..., :2], atol=1e-2)
    np.testing.assert_allclose(got[..., 2], expected[..., 2], atol=1e-4)
    assert people[0].box == (120.0, 30.0, 80.0, 190.0)
    assert people[1].box_score == pytest.approx(0.5)
    # image coordinates: the key points lie around the boxes, not in crop/heatmap pixels
    assert (got[..., 0] > 60).all() and (got[..., 0] < 260).all()
    record = people[0].to_coco(7)
    assert record["image_id"] == 7 and len(record["keypoints"]) == 3 * COCO.num_joints


def test_channel_order_flag(weights, image):
    est = PoseEstimator(small_cfg(), weights, backend="torch", flip_test=False)
    bgr = est(image, [[120, 30, 80, 190]])[0].keypoints
    rgb = PoseEstimator(small_cfg(), weights, backend="torch", flip_test=False, rgb=True)(
        np.ascontiguousarray(image[:, :, ::-1]), [[120, 30, 80, 190]])[0].keypoints
    np.testing.assert_allclose(bgr, rgb, atol=1e-5)
    # the model's channel order matters: feeding the wrong order changes the result
    swapped = est(np.ascontiguousarray(image[:, :, ::-1]), [[120, 30, 80, 190]])[0].keypoints
    assert np.abs(swapped[:, 2] - bgr[:, 2]).max() > 1e-4


def test_no_person_gives_empty_result(weights, image):
    est = PoseEstimator(small_cfg(), weights, backend="torch")
    assert est(image, boxes=np.zeros((0, 4))) == []
    assert est(np.zeros((0, 0, 3), dtype=np.uint8)) == []
    nobody = PoseEstimator(small_cfg(), weights, backend="torch",
                           boxes_from=lambda image, **_: Detections.empty())
    assert nobody(image) == []
    assert est(image, boxes=[[0, 0, 10, 10]], box_scores=[1.0]) != []
    strict = PoseEstimator(small_cfg(), weights, backend="torch", min_score=2.0)
    assert strict(image) == []


def test_whole_image_is_one_person_without_boxes(weights, image):
    people = PoseEstimator(small_cfg(), weights, backend="torch")(image)
    assert len(people) == 1
    assert people[0].box == (0.0, 0.0, 320.0, 240.0)
    assert isinstance(people[0], Person) and people[0].keypoints.shape == (17, 3)


def test_bad_images_are_rejected(weights):
    est = PoseEstimator(small_cfg(), weights, backend="torch")
    with pytest.raises(humanpose.errors.HumanposeError, match="uint8"):
        est(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(humanpose.errors.HumanposeError, match="boxes but"):
        est(np.zeros((10, 10, 3), dtype=np.uint8), [[0, 0, 5, 5]], [1.0, 1.0])


def test_no_weights_is_refused_unless_asked_for():
    with pytest.raises(humanpose.errors.HumanposeError, match="no weights: give a weights file"):
        PoseEstimator(small_cfg(), backend="torch")
    est = PoseEstimator(small_cfg(), backend="torch", random_weights=True)
    assert est.weights is None


def test_bf16_backend_runs_close_to_fp32(weights, image):
    fp32 = PoseEstimator(small_cfg(), weights, backend="torch", flip_test=False)
    bf16 = PoseEstimator(small_cfg(), weights, backend="torch-bf16", flip_test=False)
    crops, _, _ = fp32.crop(image, np.array([[120, 30, 80, 190]]))
    reference = fp32.outputs(crops)
    error = (bf16.outputs(crops) - reference).abs().max().item()
    assert error < 0.05 * reference.abs().max().item()
    assert len(bf16(image)) == 1


def test_auto_backend_measures_once_and_caches(weights, tmp_path):
    est = PoseEstimator(small_cfg(), weights, backend="auto", cache_dir=tmp_path)
    assert est.backend in available_backends("cpu")
    assert est.backend in est.backend_timings
    assert (tmp_path / "auto_backend.json").is_file()
    again = PoseEstimator(small_cfg(), weights, backend="auto", cache_dir=tmp_path)
    assert again.backend == est.backend and again.backend_timings == {}


# ----------------------------------------------------------------------------- backends
def test_fold_batchnorm_keeps_outputs():
    cfg = small_cfg()
    model = nontrivial_model(cfg, seed=3)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        reference = model(x)
        np.testing.assert_allclose(folded(x).numpy(), reference.numpy(), atol=1e-4)
        runner = TorchRunner(model, "cpu", "torch")
        np.testing.assert_allclose(runner(x).numpy(), reference.numpy(), atol=1e-4)


def test_fold_batchnorm_hrnet_and_grouped_deconv():
    cfg = humanpose.get_cfg(REPO / "experiments/coco/hrnet/w18_small_v2_256x192_adam_lr1e-3.yaml",
                            SMALL)
    model = nontrivial_model(cfg, seed=1)
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        np.testing.assert_allclose(fold_batchnorm(model)(x).numpy(), model(x).numpy(),
                                   atol=1e-4)
    deconv = torch.nn.Sequential(torch.nn.ConvTranspose2d(8, 4, 4, 2, 1, groups=2),
                                 torch.nn.BatchNorm2d(4)).eval()
    deconv[1].running_mean.normal_()
    deconv[1].running_var.uniform_(0.5, 2)
    deconv[1].weight.data.normal_()
    y = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        np.testing.assert_allclose(fold_batchnorm(deconv)(y).numpy(), deconv(y).numpy(),
                                   atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino-fp32"])
def test_lpn_inference_form_leaves_estimates_unchanged(tmp_path, image, backend):
    """PoseEstimator with LPN's inference form (torch runner, ONNX export) gives what it
    gives without it: LPN-50 (GC, bottlenecks, grouped deconvolutions), flip test on."""
    if backend not in available_backends():
        pytest.skip(f"{backend} not installed")
    cfg = humanpose.get_cfg(REPO / "experiments" / "coco" / "lpn" /
                            "lpn50_256x192_gd256x2_gc.yaml", SMALL)
    weights = tmp_path / "lpn50.pth"
    torch.save(nontrivial_model(cfg, seed=3).state_dict(), weights)
    boxes = np.array([[120, 30, 80, 190], [100, 20, 130, 200]], dtype=np.float32)
    results = {}
    for form in (True, False):
        est = PoseEstimator(cfg, weights, backend=backend, flip_test=True,
                            cache_dir=tmp_path / "cache", inference_form=form)
        crops, _, _ = est.crop(image, boxes)
        results[form] = (est.outputs(crops), est(image, boxes), est.onnx_path)
    (heat_form, people_form, onnx_form), (heat, people, onnx) = results[True], results[False]
    assert heat.std() > 1e-3
    assert (heat_form - heat).abs().max() < 1e-4
    for a, b in zip(people_form, people):
        assert np.abs(a.keypoints - b.keypoints).max() < 0.05  # soft-argmax of ~1e-5 changes
    if backend.startswith("openvino"):  # OpenVINO runs an export of the form, cached apart
        assert onnx_form != onnx and onnx_form.is_file() and onnx.is_file()
    elif backend == "onnxruntime":  # onnxruntime runs the model as built (faster there)
        assert onnx_form == onnx


def test_auto_cache_key_depends_on_model(tmp_path):
    cache = AutoChoiceCache(tmp_path)
    a = cache.key("model-a", torch.device("cpu"), 1, ["torch"])
    b = cache.key("model-b", torch.device("cpu"), 1, ["torch"])
    assert a != b
    cache.put(a, "torch", {"torch": 1.0})
    assert cache.get(a) == "torch" and cache.get(b) is None


def test_unknown_backend_is_named(weights):
    with pytest.raises(humanpose.errors.HumanposeError, match="tensorrt"):
        PoseEstimator(small_cfg(), weights, backend="tensorrt")


# ----------------------------------------------------------------------------- sources
def test_sources_image_folder_video(tmp_path, image):
    cv2.imwrite(str(tmp_path / "b10.png"), image)
    cv2.imwrite(str(tmp_path / "b2.jpg"), image)
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(open_source(tmp_path))
    assert [f.name for f in frames] == ["b2.jpg", "b10.png"]  # natural order, images only
    assert frames[0].image.shape == (240, 320, 3) and frames[0].image.dtype == np.uint8
    single = open_source(tmp_path / "b10.png")
    assert len(single) == 1 and single.kind == "image"

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(4):
        writer.write(stick_figure(x=100 + 20 * i))
    writer.release()
    source = open_source(video)
    assert source.kind == "video" and source.fps == pytest.approx(10)
    names = [f.name for f in source]
    assert names == [f"clip_{i:06d}" for i in range(4)]


def test_unreadable_sources_are_named(tmp_path):
    with pytest.raises(SourceError, match="missing.jpg"):
        open_source(tmp_path / "missing.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(humanpose.errors.HumanposeError, match="broken.jpg"):
        open_source(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="empty"):
        open_source(empty)
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="broken.mp4"):
        list(open_source(video))
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), stick_figure())
    (folder / "b.jpg").write_bytes(b"garbage")
    # One bad file in a folder is skipped and named, not a reason to lose the run.
    source = open_source(folder)
    assert [frame.name for frame in source] == ["a.jpg"]
    assert len(source.skipped) == 1 and source.skipped[0].startswith("b.jpg: cannot decode")


# ----------------------------------------------------------------------------- detectors
def test_detections_file_lookup(tmp_path):
    dets = [
        {"image_id": 397133, "category_id": 1, "bbox": [1, 2, 30, 60], "score": 0.9},
        {"image_id": 397133, "category_id": 1, "bbox": [5, 5, 10, 10], "score": 0.05},
        {"image_id": 397133, "category_id": 2, "bbox": [0, 0, 5, 5], "score": 0.99},
        {"image_id": 5, "category_id": 1, "bbox": [0, 0, 8, 8], "score": 0.7},
    ]
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    detector = DetectionsFile(path, min_score=0.1, file_ids={"frame.jpg": 5})
    found = detector(image, image_id=397133)
    np.testing.assert_allclose(found.boxes, [[1, 2, 30, 60]])
    assert detector(image, file_name="000000397133.jpg").boxes.shape == (1, 4)
    assert detector(image, file_name="frame.jpg").scores.tolist() == pytest.approx([0.7])
    assert len(detector(image, image_id=42)) == 0
    with pytest.raises(humanpose.errors.HumanposeError, match="cat.jpg"):
        detector(image, file_name="cat.jpg")
    path.write_text("{broken")
    with pytest.raises(humanpose.errors.HumanposeError, match="dets.json"):
        DetectionsFile(path)
    whole = WholeImageDetector()(image)
    np.testing.assert_allclose(whole.boxes, [[0, 0, 100, 100]])


def test_estimator_detector_argument(weights, image, tmp_path):
    """``detector=`` takes a PersonDetector or a file; ``boxes_from`` is its older name."""
    seen = []

    def detector(img, image_id=None, file_name=None):
        seen.append((img[0, 0].tolist(), image_id, file_name))
        return Detections(np.array([[120, 30, 80, 190], [10, 10, 40, 90]]), np.array([0.9, 0.5]))

    est = PoseEstimator(small_cfg(), weights, backend="torch", detector=detector, rgb=True)
    assert est.boxes_from is detector
    people = est(np.ascontiguousarray(image[:, :, ::-1]), image_id=7)
    assert [p.box for p in people] == [(120.0, 30.0, 80.0, 190.0), (10.0, 10.0, 40.0, 90.0)]
    assert [p.box_score for p in people] == pytest.approx([0.9, 0.5])
    assert est.timing.detect > 0 and est.timing.total >= est.timing.detect
    # An rgb=True estimator hands its detector the BGR image (detectors take OpenCV's order).
    assert seen == [(image[0, 0].tolist(), 7, None)]
    with pytest.raises(humanpose.errors.HumanposeError, match="not both"):
        PoseEstimator(small_cfg(), weights, backend="torch", detector=detector,
                      boxes_from=detector)
    old = PoseEstimator(small_cfg(), weights, "cpu", "torch", None, detector)  # positional
    assert old.detector is detector and len(old(image)) == 2
    old.boxes_from = WholeImageDetector()  # the attribute stays assignable
    assert isinstance(old.detector, WholeImageDetector)
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 3, "category_id": 1, "bbox": [120, 30, 80, 190],
                                 "score": 0.8}]))
    from_file = PoseEstimator(small_cfg(), weights, backend="torch", detector=dets)
    assert isinstance(from_file.detector, DetectionsFile)
    assert [p.box for p in from_file(image, image_id=3)] == [(120.0, 30.0, 80.0, 190.0)]
    assert from_file(image, file_name="000000000004.jpg") == []
    with pytest.raises(humanpose.errors.HumanposeError, match="missing.pth"):
        PoseEstimator(small_cfg(), weights, backend="torch", detector=tmp_path / "missing.pth")


def test_tracked_boxes_place_the_crops_between_detections():
    """The video loop: the detector on the first frame, every ``detect_every`` frames and
    when nobody is followed; otherwise the detector's last box, moved with the joints."""
    calls = []

    def detector():
        calls.append(len(calls))
        return Detections(np.array([[10, 10, 50, 100]]), np.array([0.8]))

    keypoints = np.zeros((17, 3), dtype=np.float32)
    keypoints[:, 0] = np.linspace(20, 60, 17)
    keypoints[:, 1] = np.linspace(20, 120, 17)
    keypoints[:, 2] = 0.9
    crops = []
    found = {"kpts": keypoints}

    def estimate(image, boxes, scores):
        crops.append(np.array(boxes))
        return [Person(tuple(b), float(s), found["kpts"].copy(), 0.7)
                for b, s in zip(boxes, scores)]

    tracker = PoseTracker(detect_every=3)
    frame = np.zeros((200, 200, 3), dtype=np.uint8)
    people = follow_people(tracker, estimate, frame, detector)
    assert len(calls) == 1 and people[0].track_id == 1
    found["kpts"] = keypoints + np.array([5, 3, 0], dtype=np.float32)  # the person moves
    people = follow_people(tracker, estimate, frame, detector)
    assert len(calls) == 1 and people[0].track_id == 1
    np.testing.assert_allclose(crops[-1], [[10, 10, 50, 100]], atol=1e-4)  # as detected
    assert people[0].box_score == pytest.approx(0.8)
    follow_people(tracker, estimate, frame, detector)
    # The box moved as the joints did (5, 3), and on by the motion ahead; same size.
    moved = crops[-1][0, :2] - np.array([10, 10])
    assert moved[0] > 5 and moved[1] > 3
    np.testing.assert_allclose(crops[-1][0, 2:], [50, 100], atol=1e-4)
    follow_people(tracker, estimate, frame, detector)
    assert len(calls) == 2  # detect_every=3: frames 1 and 2 tracked, frame 3 detected
    found["kpts"] = keypoints * np.array([1, 1, 0])  # the person is gone
    follow_people(tracker, estimate, frame, detector)
    follow_people(tracker, estimate, frame, detector)
    assert len(calls) == 3  # the track was lost: detect again


# ----------------------------------------------------------------------------- drawing
def test_draw_people_colours_the_skeleton():
    canvas = np.zeros((200, 200, 3), dtype=np.uint8)
    keypoints = np.zeros((17, 3), dtype=np.float32)
    keypoints[:, 0] = np.linspace(40, 160, 17)
    keypoints[:, 1] = np.linspace(20, 180, 17)
    keypoints[:, 2] = 1.0
    keypoints[0, 2] = 0.0  # nose below the threshold: not drawn
    out = draw_people(canvas, [Person((0, 0, 200, 200), 1.0, keypoints, 1.0)], COCO)
    assert out is canvas and canvas.any()
    assert not canvas[20, 40].any()  # the nose position stays black
    style = style_for(COCO)
    assert len(style.limbs) == len(COCO.skeleton)
    left_ankle, right_ankle = COCO.names.index("left_ankle"), COCO.names.index("right_ankle")
    assert style.joint_colors[left_ankle] != style.joint_colors[right_ankle]
    records = [{"keypoints": keypoints.ravel().tolist(), "bbox": [0, 0, 10, 10]}]
    draw_people(np.zeros((200, 200, 3), dtype=np.uint8), records, draw_boxes=True)


def test_fold_batchnorm_leaves_a_conv_shared_by_two_batchnorms():
    """RTMDet's head calls one conv per level, each followed by its own BatchNorm: folding
    a BN into the shared conv would change the other levels (it did, by 100s of pixels)."""

    class Shared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.bn1, self.bn2 = torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn1(self.conv(x)), self.bn2(self.conv(x * 2))

    torch.manual_seed(0)
    model = Shared().eval()
    for bn in (model.bn1, model.bn2):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        for got, want in zip(fold_batchnorm(model)(x), model(x)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


def test_predict_with_no_boxes_gives_no_people():
    cfg = small_cfg()
    est = PoseEstimator(cfg, backend="torch", random_weights=True)
    out = est.predict(np.zeros((60, 80, 3), np.uint8), np.zeros((0, 4)))
    assert out.shape == (0, est.keypoint_set.num_joints, 3)
