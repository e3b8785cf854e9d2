"""The person detector: codec, NMS, training, COCO box results and --detector files."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from humanpose.checkpoint import read_state_dict
from humanpose.config import get_cfg
from humanpose.data.normalize import normalize_crops
from humanpose.detection import (
    DETECTOR_NAMES,
    DetectionTask,
    ModelDetector,
    YoloOnnxDetector,
    build_detector,
    build_person_detector,
    export_detector_onnx,
)
from humanpose.detection.codec import (
    DecodeParams,
    DetectionLoss,
    decode_output,
    encode_boxes,
    image_detections,
)
from humanpose.detection.data import PersonBoxDataset, letterbox
from humanpose.detection.onnx import parse_yolo_output, yolo_layout, yolo_metadata
from humanpose.errors import HumanposeError
from humanpose.inference.detector import DetectionsFile
from humanpose.runtime.boxes import box_iou, nms, xywh_to_xyxy
from tests.peaked import CLEAR_MARGIN, clear_detector_threshold

REPO = Path(__file__).resolve().parents[1]
DEMO_CFG = REPO / "humanpose" / "configs" / "demo_detector_synthetic.yaml"
COCO_CFG = REPO / "experiments" / "detection" / "person_detector_320.yaml"
TINY = ["MODEL.IMAGE_SIZE", "[128, 128]", "MODEL.HEATMAP_SIZE", "[32, 32]",
        "MODEL.EXTRA.DET_WIDTHS", "[8, 8, 16, 16, 32]", "MODEL.EXTRA.DET_DEPTHS", "[1, 1, 1, 1]",
        "MODEL.EXTRA.DET_NECK_CHANNELS", "8", "WORKERS", "0", "TRAIN.BATCH_SIZE_PER_GPU", "4",
        "TEST.BATCH_SIZE_PER_GPU", "4", "PIN_MEMORY", "False"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These networks are tiny: one thread is as fast, and far faster on a busy machine
    (two threads spin-wait for each other when other processes hold the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from humanpose.data.synthetic import SynthConfig, write_coco_set

    root = tmp_path_factory.mktemp("synth")
    write_coco_set(str(root), num_train=8, num_val=3, seed=3,
                   cfg=SynthConfig(width=160, height=120, max_people=3))
    return root


def tiny_cfg(root: Path, out: Path, *opts: str):
    return get_cfg(DEMO_CFG, ["DATASET.ROOT", str(root), "OUTPUT_DIR", str(out / "output"),
                              "LOG_DIR", str(out / "log"), *TINY, *opts])


# ----------------------------------------------------------------------------- codec
def perfect_output(targets: dict[str, np.ndarray]) -> torch.Tensor:
    """The output maps a perfect network would predict for these targets."""
    heat = np.clip(targets["heatmap"], 1e-6, 1 - 1e-6)
    logits = np.log(heat / (1 - heat))
    return torch.from_numpy(np.concatenate([logits, targets["regression"]])[None])


def test_encode_decode_round_trip():
    boxes = np.array([[10.0, 12.0, 50.0, 110.0],  # tall person
                      [70.5, 30.25, 101.0, 90.0],
                      [20.0, 20.0, 44.0, 60.0],  # overlaps the first: a smaller box
                      [3.0, 100.0, 9.0, 111.0]])  # tiny
    targets = encode_boxes(boxes, (32, 32), stride=4)
    assert targets["heatmap"].shape == (1, 32, 32)
    assert (targets["heatmap"] == 1).sum() == 4  # one exact peak per box
    np.testing.assert_allclose(targets["weight"].sum(), 4, rtol=1e-5)  # each box weighs 1
    out, scores = decode_output(perfect_output(targets), stride=4, top_k=10)
    found = out[0].numpy()[scores[0].numpy() > 0.99]
    order = np.lexsort((found[:, 1], found[:, 0]))
    expected = boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]
    np.testing.assert_allclose(found[order], expected, atol=1e-3)


def test_decoding_undoes_the_letterbox():
    image = np.zeros((100, 200, 3), np.uint8)
    canvas, scale, offset = letterbox(image, (128, 128))
    assert canvas.shape == (128, 128, 3)
    np.testing.assert_allclose(scale, [0.64, 0.64])
    np.testing.assert_allclose(offset, [0, 32])
    box = np.array([[30.0, 20.0, 90.0, 95.0]])  # image pixels
    targets = encode_boxes(box * 0.64 + [0, 32, 0, 32], (32, 32), stride=4)
    boxes, scores = decode_output(perfect_output(targets), 4, 5)
    params = DecodeParams(stride=4, score_threshold=0.5)
    got, got_scores = image_detections(boxes[0].numpy(), scores[0].numpy(), scale, offset,
                                       (200, 100), params)
    assert len(got) == 1 and got_scores[0] > 0.99
    np.testing.assert_allclose(got, box, atol=1e-3)


def test_loss_is_small_for_a_perfect_output_and_large_otherwise():
    boxes = np.array([[10.0, 12.0, 50.0, 110.0], [70.0, 30.0, 100.0, 90.0]])
    targets = {k: torch.from_numpy(v)[None] for k, v in encode_boxes(boxes, (32, 32), 4).items()}
    loss = DetectionLoss()
    good = perfect_output({k: v[0].numpy() for k, v in targets.items()})
    bad = torch.zeros_like(good)
    # Even a perfect heatmap pays a little focal loss near the peaks (p = t < 1 there).
    assert loss(good, targets) < 0.3 < 3 < loss(bad, targets)
    assert loss(good.bfloat16(), targets).dtype == torch.float32
    shifted = good.clone()
    shifted[:, 3:] += 0.5  # sizes e^0.5 too large: L1 of 0.5 per size channel and box
    l1_only = DetectionLoss(l1_weight=1.0, giou_weight=0.0)
    assert l1_only(shifted, targets) - l1_only(good, targets) == pytest.approx(1.0, abs=1e-4)
    # Same centre, e^0.5 times the size: IoU = GIoU = e^-1 at every cell.
    giou_only = DetectionLoss(l1_weight=0.0, giou_weight=1.0)
    expected = 2 * (1 - np.exp(-1.0)) / 2  # two boxes, each weighing 1, averaged per box
    assert giou_only(shifted, targets) - giou_only(good, targets) == pytest.approx(expected,
                                                                                   abs=1e-4)


# ----------------------------------------------------------------------------- NMS
def reference_nms(boxes, scores, threshold):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if box_iou(boxes[i], boxes[j])[0, 0] <= threshold]
    return keep


def test_nms_hand_made_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [2, 0, 12, 10], [30, 30, 40, 40],
                      [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    # IoU(0, 1) = 0.82 and IoU(1, 2) = 0.82 but IoU(0, 2) = 0.67: box 1 is suppressed by 0,
    # so it cannot suppress 2 at threshold 0.7; at 0.5 box 0 suppresses both.
    assert nms(boxes, scores, 0.7).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]
    assert nms(boxes, scores, 0.5, max_output=1).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    np.testing.assert_allclose(box_iou(boxes[:1], boxes[1:2]), [[90 / 110]])


def test_nms_matches_sequential_greedy_nms():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (200, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (200, 2))], axis=1)
    scores = rng.random(200)
    for threshold in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, threshold).tolist() == reference_nms(boxes, scores, threshold)


# ----------------------------------------------------------------------------- model, data
def test_model_size_and_output_shape():
    from humanpose.summary import count_gflops

    cfg = get_cfg(COCO_CFG)
    assert cfg.MODEL.NAME in DETECTOR_NAMES
    model = build_detector(cfg)
    assert count_gflops(model, (320, 320)) < 1.0
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 320, 320)).shape == (1, 5, 80, 80)
    with pytest.raises(ValueError, match="HEATMAP_SIZE"):
        build_detector(get_cfg(COCO_CFG, ["MODEL.HEATMAP_SIZE", "[40, 40]"]))


def test_dataset_items(synth, tmp_path):
    cfg = tiny_cfg(synth, tmp_path)
    train = PersonBoxDataset(cfg, str(synth), "train2017", is_train=True)
    image, targets, meta = train[0]
    assert image.dtype == torch.uint8 and image.shape == (128, 128, 3)
    assert targets["heatmap"].shape == (1, 32, 32) and targets["regression"].shape == (4, 32, 32)
    val = PersonBoxDataset(cfg, str(synth), "val2017", is_train=False)
    _, targets, meta = val[0]
    # 160x120 images → scale 0.8, centred vertically; every person has its peak.
    np.testing.assert_allclose(meta["scale"], [0.8, 0.8])
    np.testing.assert_allclose(meta["offset"], [0, 16])
    assert (targets["heatmap"] == 1).sum() == len(val.entries[0].boxes)
    assert val.coco is not None and train.coco is None


def test_boxes_come_from_instances_json_when_present(synth, tmp_path):
    """COCO's detection file wins over the key-point file: person boxes only, no crowds."""
    import shutil

    root = tmp_path / "coco"
    shutil.copytree(synth, root, symlinks=True)
    keypoints = json.loads((root / "annotations" / "person_keypoints_val2017.json").read_text())
    first = keypoints["images"][0]
    instances = {
        "images": keypoints["images"],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": first["id"], "category_id": 1, "bbox": [10, 20, 30, 40]},
            {"id": 2, "image_id": first["id"], "category_id": 3, "bbox": [50, 50, 20, 20]},
            {"id": 3, "image_id": first["id"], "category_id": 1, "bbox": [0, 0, 90, 90],
             "iscrowd": 1},
        ]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(instances))
    val = PersonBoxDataset(tiny_cfg(root, tmp_path), str(root), "val2017", is_train=False)
    by_id = {entry.image_id: entry.boxes for entry in val.entries}
    np.testing.assert_allclose(by_id[first["id"]], [[10, 20, 40, 60]])  # x1, y1, x2, y2
    assert all(len(by_id[im["id"]]) == 0 for im in keypoints["images"][1:])


def test_training_steps_lower_the_loss(synth, tmp_path):
    cfg = tiny_cfg(synth, tmp_path)
    task = DetectionTask()
    dataset = task.build_dataset(cfg, is_train=False)  # fixed inputs: a deterministic test
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    images, targets, _ = next(iter(loader))
    from humanpose.data.normalize import normalize_batch

    x = normalize_batch(images)
    torch.manual_seed(0)
    model, loss_fn = task.build_model(cfg, channels_last=True), task.build_loss(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        loss = loss_fn(model(x), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]


# ----------------------------------------------------------------------------- engine
@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    """A detector through `humanpose train` and `humanpose test` (1 short epoch)."""
    from humanpose.engine.evaluate import run_test
    from humanpose.engine.task import task_for
    from humanpose.engine.train import train

    out = tmp_path_factory.mktemp("det_run")
    cfg = tiny_cfg(synth, out, "TRAIN.END_EPOCH", "1", "TRAIN.MAX_STEPS_PER_EPOCH", "2")
    assert isinstance(task_for(cfg), DetectionTask)
    result = train(cfg, DEMO_CFG)
    best = result.output_dir / "model_best.pth"
    tested = run_test(tiny_cfg(synth, out, "TEST.MODEL_FILE", str(best)), DEMO_CFG)
    return result, tested


def test_train_and_test_write_coco_box_results(trained, synth):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    result, tested = trained
    assert tested.metric_name == "AP" and 0 <= tested.value <= 1
    path = tested.output_dir / "results" / "detections_val2017_results.json"
    records = json.loads(path.read_text())
    assert records and set(records[0]) == {"image_id", "category_id", "bbox", "score"}
    assert all(r["category_id"] == 1 and len(r["bbox"]) == 4 for r in records)
    gt = COCO(str(synth / "annotations" / "person_keypoints_val2017.json"))
    evaluator = COCOeval(gt, gt.loadRes(str(path)), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(tested.value)
    metrics = json.loads((tested.output_dir / "metrics.json").read_text())
    assert metrics["metric"] == "AP" and metrics["value"] == pytest.approx(tested.value)


def test_results_file_is_a_pose_bbox_file(trained, synth):
    from humanpose.data.coco import COCODataset

    _, tested = trained
    path = tested.output_dir / "results" / "detections_val2017_results.json"
    cfg = get_cfg(REPO / "humanpose" / "configs" / "demo_lpn_synthetic.yaml",
                  ["DATASET.ROOT", str(synth), "TEST.USE_GT_BBOX", "False",
                   "TEST.COCO_BBOX_FILE", str(path), "TEST.IMAGE_THRE", "0.0"])
    dataset = COCODataset(cfg, str(synth), "val2017", is_train=False)
    assert len(dataset) == len(json.loads(path.read_text()))


# ----------------------------------------------------------------------------- --detector
def test_detector_from_pth_finds_its_config(trained, synth):
    result, _ = trained
    detector = build_person_detector(result.output_dir / "model_best.pth", backend="torch",
                                     min_score=0.0)
    assert isinstance(detector, ModelDetector)
    image = cv2.imread(str(next((synth / "images" / "val2017").iterdir())))
    found = detector(image)
    assert found.boxes.shape[1] == 4 and len(found) <= 100
    assert (found.boxes[:, 2:] >= 1).all() and (found.boxes[:, 0] + found.boxes[:, 2] <= 160).all()


def test_detector_from_yaml_and_auto_backend(trained, synth, tmp_path):
    result, _ = trained
    cfg = tiny_cfg(synth, tmp_path).clone()
    cfg.defrost()
    cfg.TEST.MODEL_FILE = str(result.output_dir / "model_best.pth")
    path = tmp_path / "detector.yaml"
    path.write_text(cfg.dump())
    detector = build_person_detector(path, backend="auto", cache_dir=tmp_path / "cache",
                                     min_score=0.0)
    assert isinstance(detector, ModelDetector)
    assert (tmp_path / "cache" / "auto_backend.json").is_file()
    image = cv2.imread(str(next((synth / "images" / "val2017").iterdir())))
    assert len(detector(image)) > 0


def test_bare_weights_without_config_are_rejected(trained, tmp_path):
    result, _ = trained
    bare = tmp_path / "weights.pth"
    torch.save(read_state_dict(result.output_dir / "model_best.pth"), bare)
    with pytest.raises(HumanposeError, match="weights.pth.*experiment file"):
        build_person_detector(bare)
    pose = tmp_path / "pose.yaml"
    pose.write_text("MODEL:\n  NAME: pose_hrnet\n  IMAGE_SIZE: [192, 256]\n"
                    "  HEATMAP_SIZE: [48, 64]\n")
    with pytest.raises(HumanposeError, match="not a person detector"):
        build_person_detector(bare, cfg=pose)


def test_detector_from_detections_json(synth):
    path = synth / "person_detection_results" / "COCO_val2017_detections_synthetic.json"
    records = json.loads(path.read_text())
    detector = build_person_detector(path)
    assert isinstance(detector, DetectionsFile)
    image_id = records[0]["image_id"]
    found = detector(np.zeros((120, 160, 3), np.uint8), image_id=image_id)
    assert len(found) == sum(r["image_id"] == image_id for r in records)


@pytest.fixture(scope="module")
def peaked_detector(synth, tmp_path_factory):
    """A tiny detector trained (300 Adam steps) on the first validation image until its
    centre map has clear peaks, its weights and its ONNX export: boxes compared across
    backends then rest on decisions far above float rounding (a barely trained detector's
    map is flat to 1e-5, and which cells are peaks is left to rounding)."""
    folder = tmp_path_factory.mktemp("peaked_detector")
    cfg = tiny_cfg(synth, folder)
    image, image_id, _ = val_image(synth)
    ann = json.loads((synth / "annotations" / "person_keypoints_val2017.json").read_text())
    xywh = np.array([a["bbox"] for a in ann["annotations"] if a["image_id"] == image_id])
    canvas, scale, offset = letterbox(image, (128, 128))
    boxes = xywh_to_xyxy(xywh) * np.tile(scale, 2) + np.tile(offset, 2)
    targets = {k: torch.from_numpy(v)[None] for k, v in encode_boxes(boxes, (32, 32), 4).items()}
    x = torch.from_numpy(normalize_crops(np.ascontiguousarray(canvas[None, :, :, ::-1])))
    torch.manual_seed(0)
    model = build_detector(cfg, channels_last=False).train()
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    loss = DetectionLoss()
    for _ in range(300):
        optimiser.zero_grad()
        loss(model(x), targets).backward()
        optimiser.step()
    model.eval()
    weights = folder / "detector.pth"
    torch.save(model.state_dict(), weights)
    path = folder / "detector.onnx"
    assert export_detector_onnx(model, cfg, path) < 1e-4
    return cfg, weights, path


def test_exported_detector_onnx_round_trip(peaked_detector, synth):
    pytest.importorskip("onnxruntime")
    cfg, weights, path = peaked_detector
    image, _, _ = val_image(synth)
    min_score = clear_min_score(build_person_detector(weights, cfg=cfg, backend="torch"), image)
    from_onnx = build_person_detector(path, backend="onnxruntime", min_score=min_score)
    from_torch = build_person_detector(weights, cfg=cfg, backend="torch", min_score=min_score)
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(from_onnx.runner(x).numpy(), from_torch.runner(x).numpy(),
                               atol=1e-4)
    got, expected = from_onnx(image), from_torch(image)
    assert len(got) == len(expected) > 0

    def by_position(found):  # near-tied scores of a barely trained net may swap places
        order = np.lexsort(np.round(found.boxes, 1).T[::-1])
        return found.boxes[order], found.scores[order]

    for a, b in zip(by_position(got), by_position(expected)):
        np.testing.assert_allclose(a, b, atol=1e-2)


# ----------------------------------------------------------------------------- YOLO ONNX
class FakeYolo(nn.Module):
    """A 'YOLO' whose output does not depend on the image: known boxes in known layouts."""

    def __init__(self, rows: np.ndarray, layout: str):
        super().__init__()
        self.layout = layout
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rows[None] + 0 * x.mean()
        return out.transpose(1, 2) if self.layout == "yolov8" else out


def export_fake_yolo(path: Path, rows: np.ndarray, layout: str, size=(64, 96)) -> Path:
    import warnings

    model = FakeYolo(rows, layout).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, size[1], size[0]),), str(path),
                          input_names=["images"], output_names=["output0"], opset_version=17,
                          dynamo=False)
    return path


def yolo_rows(num_classes: int, layout: str, anchors: int = 120) -> np.ndarray:
    """Boxes in a 64 (w) x 96 (h) input: two overlapping people, a person scored low, and
    a confident box of another class; then empty anchors (real models have thousands)."""
    boxes = [[20, 40, 10, 30], [21, 40, 10, 30], [45, 60, 8, 16], [32, 48, 20, 20]]
    person = [0.9, 0.6, 0.1, 0.05]
    other = [0.0, 0.0, 0.0, 0.95]
    rows = np.zeros((anchors, 4 + num_classes + (layout == "yolov5")), np.float32)
    rows[:4, :4] = boxes
    first = 4
    if layout == "yolov5":
        rows[:4, 4] = 1.0  # objectness
        first = 5
    rows[:4, first] = person
    rows[:4, first + 1] = other
    return rows


@pytest.mark.parametrize("layout", ["yolov8", "yolov5"])
def test_yolo_onnx_detector(tmp_path, layout):
    pytest.importorskip("onnxruntime")
    rows = yolo_rows(80, layout)
    path = export_fake_yolo(tmp_path / f"{layout}.onnx", rows, layout)
    detector = build_person_detector(path, min_score=0.3)
    assert isinstance(detector, YoloOnnxDetector)
    assert detector.layout == layout and detector.input_size == (64, 96)
    # A 128x96 image fits the 64x96 input at half size, centred: 24 grey rows above.
    found = detector(np.zeros((96, 128, 3), np.uint8))
    assert len(found) == 1  # the duplicate is suppressed, class 1 and low scores dropped
    np.testing.assert_allclose(found.scores, [0.9])
    np.testing.assert_allclose(found.boxes[0], [(15 - 0) * 2, (25 - 24) * 2, 20, 60], atol=1e-4)


def test_yolo_output_parsing_and_layouts():
    assert yolo_layout((1, 84, 8400)) == "yolov8"
    assert yolo_layout((1, 25200, 85)) == "yolov5"
    out = yolo_rows(2, "yolov8").T[None]
    boxes, scores = parse_yolo_output(out, "yolov8", 0)
    np.testing.assert_allclose(boxes[0], [15, 25, 25, 55])
    np.testing.assert_allclose(scores[:5], [0.9, 0.6, 0.1, 0.05, 0])
    for shape in [(1, 84), (2, 84, 100), (1, 4, 100), (1, 64, 48, 5)]:
        with pytest.raises(HumanposeError, match="expected"):
            yolo_layout(shape)


def constant_yolo(path: Path, output: np.ndarray, metadata: dict[str, str] | None = None,
                  size=(64, 96)) -> Path:
    """An ONNX 'detector' built with onnx.helper whose output is ``output`` whatever the
    image (its input is multiplied by 0 and added, so that the input is used); ``size``
    ``None``: height and width left dynamic."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    output = np.asarray(output, np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "constant_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                       [1, 3, *(size[::-1] if size else ["h", "w"])])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[numpy_helper.from_array(output, "table"),
                     numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


# Ultralytics writes str() of Python values: the 80 COCO names (abridged: 3 here, the count
# is what matters) and the end-to-end flag of YOLOv10/YOLO26 heads.
E2E_META = {"task": "detect", "end2end": "True", "imgsz": "[96, 64]",
            "names": str({0: "person", 1: "bicycle", 2: "car"})}
NMS_META = {"task": "detect", "end2end": "False", "names": str({0: "person", 1: "bicycle"}),
            "args": str({"batch": 1, "dynamic": False, "nms": True})}


def end2end_rows(count: int = 300) -> np.ndarray:
    """x1 y1 x2 y2 score class in a 64 (w) x 96 (h) letterboxed input; zero rows after."""
    rows = np.zeros((count, 6), np.float32)
    rows[0] = [10, 34, 30, 60, 0.92, 0]   # a person
    rows[1] = [40, 26, 60, 50, 0.88, 2]   # a car, more confident than the second person
    rows[2] = [34, 40, 44, 70, 0.55, 0]   # a second person, reaching into the padding
    rows[3] = [0, 30, 20, 60, 0.10, 0]    # a person below the score threshold
    rows[4] = [5, 30, 25, 60, 0.99, 1]    # a bicycle
    return rows


@pytest.mark.parametrize("transposed,metadata", [(False, E2E_META), (True, E2E_META),
                                                  (False, NMS_META), (True, NMS_META)])
def test_end_to_end_yolo_gives_its_person_boxes_in_image_pixels(tmp_path, transposed,
                                                                  metadata):
    pytest.importorskip("onnxruntime")
    rows = end2end_rows()
    output = (rows.T if transposed else rows)[None]
    path = constant_yolo(tmp_path / "yolo26n.onnx", output, metadata)
    detector = build_person_detector(path, min_score=0.3)
    assert isinstance(detector, YoloOnnxDetector) and detector.layout == "end2end"
    # A 200 (w) x 100 (h) image fits the 64x96 input at scale 0.32: 64x32 pixels, with
    # 32 grey rows above (input y = 0.32 * image y + 32).
    found = detector(np.zeros((100, 200, 3), np.uint8))
    np.testing.assert_allclose(found.scores, [0.92, 0.55], atol=1e-6)
    # (x1, y1, x2, y2) -> ((x1 - 0) / 0.32, (y1 - 32) / 0.32, ...), as (x, y, w, h); the
    # second person's bottom (input y 70 -> image y 118.75) is cut at the image's 100.
    expected = [[31.25, 6.25, 62.5, 81.25], [106.25, 25.0, 31.25, 75.0]]
    np.testing.assert_allclose(found.boxes, expected, rtol=1e-4, atol=1e-3)


def test_end_to_end_layout_without_metadata_is_read_from_the_row_count(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    rows = end2end_rows()
    # (1, 300, 6) could be YOLOv5 with one class, (1, 6, 300) YOLOv8 with two, but no raw YOLO
    # grid is that short: end-to-end, with a note, and its person boxes are found.
    for name, output in [("rows.onnx", rows[None]), ("columns.onnx", rows.T[None])]:
        detector = build_person_detector(constant_yolo(tmp_path / name, output), min_score=0.3)
        assert detector.layout == "end2end"
        assert "read as end-to-end" in capsys.readouterr().out
        found = detector(np.zeros((100, 200, 3), np.uint8))
        np.testing.assert_allclose(found.scores, [0.92, 0.55], atol=1e-6)
    # A grid-sized 6-wide output (a one-class YOLOv5 head at 640x640) stays ambiguous.
    grid = np.zeros((25200, 6), np.float32)
    for name, output in [("grid_rows.onnx", grid[None]), ("grid_columns.onnx", grid.T[None])]:
        path = constant_yolo(tmp_path / name, output)
        with pytest.raises(HumanposeError, match=rf"{name}.*shape \(1, (25200, 6|6, 25200)\).*"
                                                 "more than one layout"):
            build_person_detector(path)
    # Explicit metadata for a raw head decides the other way: 1 class, YOLOv5 rows.
    raw = constant_yolo(tmp_path / "v5.onnx", rows[None],
                        {"names": str({0: "person"}), "end2end": "False"})
    assert build_person_detector(raw).layout == "yolov5"
    # With 80 names a 6-wide output can only be end-to-end, even without an end2end key.
    names = str({i: f"class{i}" for i in range(80)})
    e2e = constant_yolo(tmp_path / "old.onnx", rows[None], {"names": names})
    assert build_person_detector(e2e).layout == "end2end"
    # A dynamic input takes its size from Ultralytics' imgsz ([height, width]).
    dynamic = constant_yolo(tmp_path / "dynamic.onnx", rows[None], E2E_META, size=None)
    assert build_person_detector(dynamic).input_size == (64, 96)


def test_unknown_yolo_layouts_are_refused_naming_their_shape(tmp_path):
    pytest.importorskip("onnxruntime")
    path = constant_yolo(tmp_path / "odd.onnx", np.zeros((1, 4, 4), np.float32))
    with pytest.raises(HumanposeError, match=r"odd.onnx.*shape \(1, 4, 4\); expected .*"
                                             r"\(1, N, 6\) or \(1, 6, N\)"):
        build_person_detector(path)
    # Metadata that contradicts the shape: end-to-end declared, 85-wide rows.
    path = constant_yolo(tmp_path / "liar.onnx", np.zeros((1, 300, 85), np.float32),
                         {"end2end": "True"})
    with pytest.raises(HumanposeError, match=r"liar.onnx.*\(1, 300, 85\).*end2end=True"):
        build_person_detector(path)
    assert yolo_layout((1, 84, 8400), end2end=False, classes=80) == "yolov8"
    with pytest.raises(HumanposeError, match="expected"):
        yolo_layout((1, 84, 8400), classes=3)


def test_ultralytics_metadata_is_read_as_literals_not_code():
    assert yolo_metadata(E2E_META) == (True, 3)
    assert yolo_metadata(NMS_META) == (True, 2)
    assert yolo_metadata({"end2end": "False", "names": "{0: 'person'}"}) == (False, 1)
    assert yolo_metadata({"names": "__import__('os').system('false')"}) == (None, None)
    assert yolo_metadata({}) == (None, None)


# ----------------------------------------------------------------------------- bad files
def test_bad_detector_files_are_rejected_with_the_problem(tmp_path):
    with pytest.raises(HumanposeError, match="not found.*missing.onnx"):
        build_person_detector(tmp_path / "missing.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(HumanposeError, match="notes.onnx: not a valid ONNX model"):
        build_person_detector(text)
    annotations = tmp_path / "annotations.json"
    annotations.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(HumanposeError, match="annotations.json.*COCO results format"):
        build_person_detector(annotations)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"image_id": 1, "bbox": [1, 2, 3]}]))
    with pytest.raises(HumanposeError, match="broken.json.*bbox"):
        build_person_detector(broken)
    other = tmp_path / "model.bin"
    other.write_bytes(b"\0")
    with pytest.raises(HumanposeError, match="model.bin.*unknown detector file type"):
        build_person_detector(other)


def test_onnx_with_a_wrong_output_is_rejected(tmp_path):
    pytest.importorskip("onnxruntime")
    path = export_fake_yolo(tmp_path / "flat.onnx", np.zeros((3, 2), np.float32), "yolov5")
    with pytest.raises(HumanposeError, match=r"flat.onnx: output 'output0' has shape \(1, 3, 2\)"):
        build_person_detector(path)
    # 3 classes: 2 would give a 6-row output, which could be end-to-end (refused above).
    path = export_fake_yolo(tmp_path / "classes.onnx", yolo_rows(3, "yolov8"), "yolov8")
    with pytest.raises(HumanposeError, match="classes.onnx.*person class 5"):
        build_person_detector(path, yolo_class_id=5)


# ----------------------------------------------------------------------------- at inference
POSE_CFG = REPO / "humanpose" / "configs" / "demo_lpn_synthetic.yaml"
POSE_SMALL = ["MODEL.EXTRA.NUM_LAYERS", "18", "MODEL.EXTRA.BLOCK_GROUPS", "depthwise",
              "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]"]


@pytest.fixture(scope="module")
def pose_weights(tmp_path_factory) -> Path:
    """A small pose model (untrained: these tests are about boxes, not key points)."""
    import humanpose

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pose") / "pose.pth"
    torch.save(humanpose.build_model(get_cfg(POSE_CFG, POSE_SMALL)).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def detector_onnx(trained, tmp_path_factory) -> Path:
    """Our trained detector through `humanpose export` (its config picks the detector)."""
    pytest.importorskip("onnxruntime")
    from humanpose.cli import main

    result, _ = trained
    path = tmp_path_factory.mktemp("det_onnx") / "detector.onnx"
    rc = main(["export", "--cfg", str(DEMO_CFG), *TINY, "TEST.MODEL_FILE",
               str(result.output_dir / "model_best.pth"), "--output", str(path)])
    assert rc == 0 and path.is_file()
    return path


def clear_min_score(detector, image: np.ndarray) -> float:
    """The premise of a comparison of boxes across backends: a score threshold for which no
    peak or threshold decision of the detector on ``image`` is close enough to be left to
    float rounding (which differs between PyTorch, ONNX Runtime and CPUs)."""
    canvas, _, _ = letterbox(image, detector.input_size)
    min_score, margin = clear_detector_threshold(detector.outputs(canvas))
    assert margin > CLEAR_MARGIN, f"detector decisions too close to call: margin {margin:.2e}"
    return min_score


def val_image(synth: Path) -> tuple[np.ndarray, int, str]:
    ann = json.loads((synth / "annotations" / "person_keypoints_val2017.json").read_text())
    first = ann["images"][0]
    image = cv2.imread(str(synth / "images" / "val2017" / first["file_name"]))
    return image, first["id"], first["file_name"]


def test_pose_estimator_with_a_detections_file(synth, pose_weights):
    from humanpose.inference import PoseEstimator

    path = synth / "person_detection_results" / "COCO_val2017_detections_synthetic.json"
    image, image_id, _ = val_image(synth)
    est = PoseEstimator(POSE_CFG, pose_weights, backend="torch", opts=POSE_SMALL,
                        detector=path)
    expected = [r for r in json.loads(path.read_text()) if r["image_id"] == image_id]
    people = est(image, image_id=image_id)
    assert expected and len(people) == len(expected)
    np.testing.assert_allclose(sorted(p.box for p in people),
                               sorted(tuple(r["bbox"]) for r in expected), atol=1e-3)


def test_pose_estimator_with_our_trained_detector(trained, synth, pose_weights, tmp_path):
    from humanpose.inference import PoseEstimator

    result, _ = trained
    best = result.output_dir / "model_best.pth"
    image, _, _ = val_image(synth)
    # A detector object: its backend and score threshold chosen by the caller.
    detector = build_person_detector(best, backend="torch", min_score=0.0)
    found = detector(image)
    est = PoseEstimator(POSE_CFG, pose_weights, backend="torch", opts=POSE_SMALL,
                        detector=detector)
    people = est(image)
    assert len(found) > 0 and len(people) == len(found)
    np.testing.assert_allclose(np.array([p.box for p in people]), found.boxes, atol=1e-4)
    np.testing.assert_allclose([p.box_score for p in people], found.scores, atol=1e-6)
    # A path: built by build_person_detector on the estimator's device and cache folder.
    by_path = PoseEstimator(POSE_CFG, pose_weights, backend="torch", opts=POSE_SMALL,
                            detector=str(best), cache_dir=tmp_path)
    assert isinstance(by_path.detector, ModelDetector)
    expected = by_path.detector(image)
    assert len(by_path(image)) == len(expected)


def infer_cli(pose_weights: Path, *args: str) -> int:
    from humanpose.cli import main

    return main(["infer", "--cfg", str(POSE_CFG), *POSE_SMALL, "TEST.MODEL_FILE",
                 str(pose_weights), "--backend", "torch", "--quiet", *args])


def test_infer_with_a_detections_file(synth, pose_weights, tmp_path, capsys):
    from tests.test_inference_cli import check_results

    path = synth / "person_detection_results" / "COCO_val2017_detections_synthetic.json"
    ann = synth / "annotations" / "person_keypoints_val2017.json"
    out = tmp_path / "out"
    assert infer_cli(pose_weights, "--input", str(synth / "images" / "val2017"), "--output",
                     str(out), "--detector", str(path), "--annotations", str(ann),
                     "--no-render") == 0
    records = check_results(out / "results.json", ann, len(json.loads(path.read_text())))
    expected = sorted((r["image_id"], *r["bbox"]) for r in json.loads(path.read_text()))
    got = sorted((r["image_id"], *r["bbox"]) for r in records)
    np.testing.assert_allclose(got, expected, atol=0.01)
    assert "detector COCO_val2017_detections_synthetic.json" in capsys.readouterr().out


def test_infer_with_our_exported_detector(detector_onnx, synth, pose_weights, tmp_path,
                                          capsys):
    from tests.test_inference_cli import check_results

    folder = synth / "images" / "val2017"
    out = tmp_path / "out"
    capsys.readouterr()
    assert infer_cli(pose_weights, "--input", str(folder), "--output", str(out), "--detector",
                     str(detector_onnx), "--detector-backend", "onnxruntime",
                     "--detector-score", "0.0") == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert "detector detector.onnx (onnxruntime)" in printed[-2]
    # The closing line splits each frame's time: the detector's apart from the pose model's.
    for stage in ("detection", "pose", "drawing"):
        assert f"{stage} " in printed[-1]
    detector = build_person_detector(detector_onnx, backend="onnxruntime", min_score=0.0)
    names = json.loads((out / "images.json").read_text())["images"]
    expected = sum(len(detector(cv2.imread(str(folder / im["file_name"])))) for im in names)
    records = check_results(out / "results.json", out / "images.json", expected)
    assert expected > 0 and len({r["image_id"] for r in records}) == len(names)


def test_infer_video_with_our_detector(detector_onnx, synth, pose_weights, tmp_path, capsys):
    frames = sorted((synth / "images" / "val2017").iterdir())
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for path in [*frames, *frames]:
        writer.write(cv2.imread(str(path)))
    writer.release()
    out = tmp_path / "out"
    capsys.readouterr()
    assert infer_cli(pose_weights, "--input", str(video), "--output", str(out), "--detector",
                     str(detector_onnx), "--detector-score", "0.0", "--detect-every", "2",
                     "--no-render") == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"done: {2 * len(frames)} frames")
    for stage in ("detection", "pose", "drawing"):
        assert f"{stage} " in line
    records = json.loads((out / "results.json").read_text())
    assert records and {r["image_id"] for r in records} <= set(range(1, 2 * len(frames) + 1))


def test_exported_detector_file_is_a_detector(detector_onnx):
    from humanpose.detection.onnx import METADATA_KEY, onnx_metadata

    assert METADATA_KEY in onnx_metadata(detector_onnx)  # the file alone is a detector
    assert isinstance(build_person_detector(detector_onnx, backend="onnxruntime"),
                      ModelDetector)


def test_export_of_a_detector_config_prints_the_difference(trained, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from humanpose.cli import main

    result, _ = trained
    path = tmp_path / "d.onnx"
    assert main(["export", "--cfg", str(DEMO_CFG), *TINY, "TEST.MODEL_FILE",
                 str(result.output_dir / "model_best.pth"), "--output", str(path),
                 "--static-batch"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {path} (person_detector, opset 17, batch 1)" in out
    diff = float(out.split("max |ONNX - PyTorch| on a random batch:")[1].split()[0])
    assert diff <= 1e-4


def test_infer_detector_errors_name_the_file(synth, pose_weights, tmp_path, capsys):
    image = str(next((synth / "images" / "val2017").iterdir()))
    dets = synth / "person_detection_results" / "COCO_val2017_detections_synthetic.json"
    out = str(tmp_path / "out")
    assert infer_cli(pose_weights, "--input", image, "--output", out, "--detector",
                     str(tmp_path / "missing.pth")) == 1
    assert "not found" in (err := capsys.readouterr().err) and "missing.pth" in err
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"not a checkpoint")
    assert infer_cli(pose_weights, "--input", image, "--output", out, "--detector",
                     str(bad)) == 1
    assert "garbage.pth" in capsys.readouterr().err
    notes = tmp_path / "notes.onnx"
    notes.write_text("not a model")
    assert infer_cli(pose_weights, "--input", image, "--output", out, "--detector",
                     str(notes)) == 1
    assert "notes.onnx: not a valid ONNX model" in capsys.readouterr().err
    assert infer_cli(pose_weights, "--input", image, "--output", out, "--detector",
                     str(dets), "--detector-backend", "tpu") == 1
    assert "unknown detector backend 'tpu'" in capsys.readouterr().err
    assert infer_cli(pose_weights, "--input", image, "--output", out, "--detector",
                     str(dets), "--boxes", str(dets)) == 1
    assert "--boxes or --detector, not both" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_runtime_reads_our_exported_detector_as_the_torch_side_does(peaked_detector,
                                                                        synth):
    """The torch-free runtime's detector: the same boxes as the PyTorch side's ONNX path
    (same file, same code) and as the PyTorch model, within float32 noise."""
    from humanpose.runtime.detectors import HeatmapBoxDetector, onnx_person_detector

    cfg, weights, path = peaked_detector
    image, _, _ = val_image(synth)
    min_score = clear_min_score(build_person_detector(weights, cfg=cfg, backend="torch"), image)
    runtime = onnx_person_detector(path, min_score=min_score)
    assert isinstance(runtime, HeatmapBoxDetector) and runtime.backend == "onnxruntime"
    onnx_side = build_person_detector(path, backend="onnxruntime", min_score=min_score)
    torch_side = build_person_detector(weights, cfg=cfg, backend="torch", min_score=min_score)
    got, want, eager = runtime(image), onnx_side(image), torch_side(image)
    assert len(got) > 0
    np.testing.assert_array_equal(got.boxes, want.boxes)
    np.testing.assert_array_equal(got.scores, want.scores)
    assert len(eager) == len(got)
    np.testing.assert_allclose(got.boxes, eager.boxes, atol=1e-2)
    np.testing.assert_allclose(got.scores, eager.scores, atol=1e-4)
