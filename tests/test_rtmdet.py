"""RTMDet at inference: mmdet's pre-processing, decoding and NMS, on hand-made data, and
the detector end to end with a stand-in network (the real one is tested with the models)."""

from __future__ import annotations

import importlib.util
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from humanpose.detection import build_person_detector
from humanpose.detection.rtmdet import (
    RTMDET_METADATA_KEY,
    RTMDetDetector,
    RTMDetMeta,
    RTMDetOutputs,
    RTMDetParams,
    decode,
    decode_flat,
    export_rtmdet_onnx,
    flatten_outputs,
    preprocess,
)
from humanpose.errors import HumanposeError
from humanpose.runtime.boxes import greedy_nms, nms

MEAN = np.array([103.53, 116.28, 123.675], np.float32)  # B, G, R
STD = np.array([57.375, 57.12, 58.395], np.float32)
SIZE = 64  # input 64x64: levels 8x8, 4x4, 2x2
PARAMS = RTMDetParams(input_size=(SIZE, SIZE))


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# ----------------------------------------------------------------------------- pre-processing
def test_preprocess_resizes_pads_and_normalises_as_mmdet():
    # A uniform 40x20 (w x h) image, B=10 G=20 R=30: scale 64/40 = 1.6 -> 64x32 content.
    image = np.empty((20, 40, 3), np.uint8)
    image[:] = (10, 20, 30)
    x, meta = preprocess(image, PARAMS)
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32
    assert meta == RTMDetMeta(scale_factor=(1.6, 1.6), img_shape=(64, 64), ori_shape=(20, 40))
    x = x[0]
    # BGR kept (no swap): channel 0 is blue with mean 103.53.
    content = (np.array([10, 20, 30], np.float32) - MEAN) / STD
    pad = (np.float32(114) - MEAN) / STD
    np.testing.assert_array_equal(x[:, :32, :], np.broadcast_to(content[:, None, None],
                                                                (3, 32, 64)))
    np.testing.assert_array_equal(x[:, 32:, :], np.broadcast_to(pad[:, None, None], (3, 32, 64)))


def test_preprocess_sizes_round_half_up_and_scale_factors_are_the_real_ratios():
    # 128x5 -> scale 0.5: height 2.5 rounds to 3 (mmcv's int(x + 0.5), not round()).
    _, meta = preprocess(np.zeros((5, 128, 3), np.uint8), PARAMS)
    assert meta.scale_factor == (0.5, 3 / 5)
    # 50x33 -> scale 1.28: 64 x int(42.24 + 0.5) = 42; factors (64/50, 42/33).
    image = np.random.default_rng(0).integers(0, 256, (33, 50, 3), dtype=np.uint8)
    x, meta = preprocess(image, PARAMS)
    assert meta.scale_factor == (64 / 50, 42 / 33)
    resized = cv2.resize(image, (64, 42), interpolation=cv2.INTER_LINEAR)
    expected = ((resized.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)
    np.testing.assert_array_equal(x[0, :, :42], expected)
    assert np.all(x[0, :, 42:] == ((np.float32(114) - MEAN) / STD)[:, None, None])


def test_preprocess_rejects_non_uint8_images():
    with pytest.raises(HumanposeError, match="uint8 BGR"):
        preprocess(np.zeros((10, 10, 3), np.float32), PARAMS)


# ----------------------------------------------------------------------------- decoding
# (stride, row, col, logit, (left, top, right, bottom)) placed on a 64x64 input.
CELLS = [
    (8, 2, 3, 4.0, (10, 6, 14, 20)),   # prior (24, 16) -> box A (14, 10, 38, 36)
    (8, 2, 4, 2.0, (16, 6, 6, 20)),    # prior (32, 16) -> (16, 10, 38, 36): IoU 0.917 with A
    (16, 1, 2, 3.0, (4, 8, 20, 30)),   # prior (32, 16) -> box B (28, 8, 52, 46): IoU 0.20
    (16, 0, 0, 5.0, (5, 2, 0, 10)),    # prior (0, 0) -> clamped to zero width: dropped
    (32, 0, 0, 1.0, (5, 5, 40, 70)),   # prior (0, 0) -> (-5, -5, 40, 70) clamped (0, 0, 40, 64)
    (32, 1, 1, -3.5, (8, 8, 8, 8)),    # score 0.029 < 0.05: dropped
]


def hand_made_outputs(classes: int = 1, cells=CELLS):
    cls = [torch.full((1, classes, SIZE // s, SIZE // s), -10.0) for s in (8, 16, 32)]
    reg = [torch.zeros(1, 4, SIZE // s, SIZE // s) for s in (8, 16, 32)]
    for stride, row, col, logit, dist in cells:
        level = {8: 0, 16: 1, 32: 2}[stride]
        cls[level][0, 0, row, col] = logit
        reg[level][0, :, row, col] = torch.tensor(dist, dtype=torch.float32)
    return cls, reg


# Original image 128 wide, 64 high, resized by 0.5 into the 64x64 input.
META = RTMDetMeta(scale_factor=(0.5, 0.5), img_shape=(64, 64), ori_shape=(64, 128))
# In original pixels (x2); y2 = 128 exceeds the image height: mmdet clamps to the padded input.
EXPECTED = np.array([[28, 20, 76, 72], [56, 16, 104, 92], [0, 0, 80, 128]], np.float32)
EXPECTED_SCORES = np.array([sig(4), sig(3), sig(1)], np.float32)


def test_decode_hand_made_outputs():
    cls, reg = hand_made_outputs()
    boxes, scores, labels = decode(cls, reg, META, score_thr=0.05, nms_pre=1000, iou_thr=0.6,
                                   max_per_img=100)
    np.testing.assert_allclose(boxes, EXPECTED, atol=1e-5)
    np.testing.assert_allclose(scores, EXPECTED_SCORES, rtol=1e-6)
    assert labels.tolist() == [0, 0, 0]


def test_decode_thresholds_nms_pre_and_max_per_img():
    cls, reg = hand_made_outputs()
    # A looser NMS keeps the box that overlaps A (third by score, sig(2))...
    boxes, scores, _ = decode(cls, reg, META, iou_thr=0.95)
    np.testing.assert_allclose(boxes[2], [32, 20, 76, 72], atol=1e-5)
    assert len(boxes) == 4
    # ...unless only the best candidate per level goes on: then stride 16 keeps only the
    # zero-width box (sig(5)), dropped later by the size filter, and loses B as well.
    boxes, _, _ = decode(cls, reg, META, iou_thr=0.95, nms_pre=1)
    np.testing.assert_allclose(boxes, EXPECTED[[0, 2]], atol=1e-5)
    boxes, scores, _ = decode(cls, reg, META, max_per_img=2)
    np.testing.assert_allclose(boxes, EXPECTED[:2], atol=1e-5)
    # A score threshold above sig(1) = 0.73 removes the clamped box.
    boxes, _, _ = decode(cls, reg, META, score_thr=0.75)
    np.testing.assert_allclose(boxes, EXPECTED[:2], atol=1e-5)
    # min_bbox_size -1 disables the size filter: the zero-width box (score sig(5)) comes first.
    boxes, scores, _ = decode(cls, reg, META, min_bbox_size=-1)
    np.testing.assert_allclose(boxes[0], [0, 0, 0, 20], atol=1e-5)
    assert scores[0] == pytest.approx(sig(5))


def test_decode_flat_equals_decode_and_nms_is_per_class():
    cls, reg = hand_made_outputs(classes=2)
    cls[0][0, 1, 2, 3] = 3.5  # box A again, as class 1: not suppressed by class 0's A
    flat = flatten_outputs(cls, reg)
    assert flat.shape == (1, 64 + 16 + 4, 6)
    params = RTMDetParams(input_size=(SIZE, SIZE), num_classes=2)
    got = decode_flat(flat, META, params)
    want = decode(cls, reg, META)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    boxes, scores, labels = got
    assert labels.tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(boxes[1], EXPECTED[0], atol=1e-5)
    assert scores[1] == pytest.approx(sig(3.5))


def test_decode_flat_rejects_a_wrong_shape():
    with pytest.raises(HumanposeError, match="expected \\(84, 5\\)"):
        decode_flat(torch.zeros(1, 80, 5), META, PARAMS)


@pytest.mark.parametrize("matrix_max", [0, 1024])  # row by row, and with the IoU matrix
def test_greedy_nms_equals_nms(matrix_max, monkeypatch):
    monkeypatch.setattr("humanpose.runtime.boxes.MATRIX_NMS_MAX", matrix_max)
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 40, (300, 2))], axis=1)
    boxes[:5, 2] = boxes[:5, 0]  # no area: suppress nothing, suppressed by nothing
    scores = rng.uniform(size=300)
    for thr in (0.3, 0.6):
        np.testing.assert_array_equal(greedy_nms(boxes, scores, thr), nms(boxes, scores, thr))
        np.testing.assert_array_equal(greedy_nms(boxes, scores, thr, 7),
                                      nms(boxes, scores, thr, 7))


# ----------------------------------------------------------------------------- detector
class StandIn(nn.Module):
    """RTMDet's output signature: fixed maps plus a 1x1 conv of the pooled input (zero
    weights unless ``random``), so the outputs are known, yet depend on the input."""

    def __init__(self, random: bool = False):
        super().__init__()
        cls, reg = hand_made_outputs()
        for i in range(3):
            self.register_buffer(f"cls{i}", cls[i])
            self.register_buffer(f"reg{i}", reg[i])
        self.conv_cls = nn.ModuleList(nn.Conv2d(3, 1, 1) for _ in range(3))
        self.conv_reg = nn.ModuleList(nn.Conv2d(3, 4, 1) for _ in range(3))
        self.stem = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)
        for conv in [*self.conv_cls, *self.conv_reg]:
            if random:
                nn.init.normal_(conv.weight, std=0.3)
            else:
                nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x):
        x = self.bn(self.stem(x))
        cls_scores, bbox_preds = [], []
        for i, stride in enumerate((8, 16, 32)):
            pooled = F.avg_pool2d(x, stride)
            cls_scores.append(getattr(self, f"cls{i}") + self.conv_cls[i](pooled))
            bbox_preds.append(getattr(self, f"reg{i}") + self.conv_reg[i](pooled))
        return tuple(cls_scores), tuple(bbox_preds)


def eager_runner(module: nn.Module):
    """The module as a runner: NumPy batches in (as the runtime's pre-processing gives)."""
    @torch.no_grad()
    def run(x):
        return module(torch.from_numpy(x))
    return run


def test_detector_with_a_stand_in_network_end_to_end():
    image = np.zeros((64, 128, 3), np.uint8)  # resized by 0.5 into 64x64: META's geometry
    model = eager_runner(RTMDetOutputs(StandIn()).eval())
    detector = RTMDetDetector(model, PARAMS, min_score=0.0)
    boxes, scores, _ = detector.detect(image)
    np.testing.assert_allclose(boxes, EXPECTED, atol=1e-5)
    people = detector(image)
    xywh = np.concatenate([EXPECTED[:, :2], EXPECTED[:, 2:] - EXPECTED[:, :2]], axis=1)
    np.testing.assert_allclose(people.boxes, xywh, atol=1e-5)
    np.testing.assert_allclose(people.scores, EXPECTED_SCORES, rtol=1e-6)
    assert len(RTMDetDetector(model, PARAMS, min_score=0.8)(image)) == 2
    assert len(detector(np.zeros((0, 5, 3), np.uint8))) == 0


def test_torch_backend_folds_and_runs_the_wrapped_network():
    from humanpose.inference.backends import TorchRunner

    image = np.zeros((64, 128, 3), np.uint8)
    runner = TorchRunner(RTMDetOutputs(StandIn()), "cpu", "torch")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in runner.model.modules())  # traced
    boxes, _, _ = RTMDetDetector(runner, PARAMS).detect(image)
    np.testing.assert_allclose(boxes, EXPECTED, atol=1e-5)


def test_onnx_round_trip_and_onnx_file_is_a_detector(tmp_path):
    pytest.importorskip("onnxruntime")
    from humanpose.detection.onnx import onnx_metadata

    torch.manual_seed(0)
    network = StandIn(random=True).eval()
    path = tmp_path / "rtmdet.onnx"
    params = RTMDetParams(input_size=(SIZE, SIZE), score_thr=0.1, iou_thr=0.5)
    diff = export_rtmdet_onnx(network, params, path)
    assert diff <= 1e-4
    assert RTMDetParams.from_json(onnx_metadata(path)[RTMDET_METADATA_KEY]) == params
    detector = build_person_detector(path, backend="onnxruntime", min_score=0.0)
    assert isinstance(detector, RTMDetDetector) and detector.backend == "onnxruntime"
    assert detector.params == params
    image = np.random.default_rng(0).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    reference = RTMDetDetector(eager_runner(RTMDetOutputs(network).eval()), params)
    want, got = reference.detect(image), detector.detect(image)
    assert len(want[0]) > 0 and len(got[0]) == len(want[0])
    np.testing.assert_allclose(got[0], want[0], atol=1e-3)
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)
    if importlib.util.find_spec("openvino") is not None:
        detector = build_person_detector(path, backend="openvino-fp32", min_score=0.0)
        got = detector.detect(image)
        assert detector.backend == "openvino-fp32" and len(got[0]) == len(want[0])
        np.testing.assert_allclose(got[0], want[0], atol=1e-3)


@pytest.fixture
def rtmdet_cfg(tmp_path, monkeypatch):
    """An RTMDet experiment file whose network is the stand-in (registered for the test)."""
    from humanpose.models import MODEL_BUILDERS

    monkeypatch.setitem(MODEL_BUILDERS, "rtmdet", lambda cfg: StandIn())
    weights = tmp_path / "rtmdet.pth"
    torch.save(StandIn().state_dict(), weights)
    path = tmp_path / "rtmdet.yaml"
    path.write_text(f"MODEL:\n  NAME: rtmdet\n  IMAGE_SIZE: [{SIZE}, {SIZE}]\n"
                    f"  HEATMAP_SIZE: [8, 8]\n  EXTRA:\n    DET_SCORE_THRE: 0.05\n"
                    "    DET_NMS_THRE: 0.6\n    DET_MAX_DETECTIONS: 100\n    DET_NMS_PRE: 1000\n"
                    f"TEST:\n  MODEL_FILE: {weights}\n")
    return path


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_rtmdet_config_is_a_person_detector(rtmdet_cfg, backend, tmp_path):
    detector = build_person_detector(rtmdet_cfg, backend=backend, min_score=0.5,
                                     cache_dir=tmp_path / "cache")
    assert isinstance(detector, RTMDetDetector)
    assert detector.params == PARAMS
    people = detector(np.zeros((64, 128, 3), np.uint8))
    np.testing.assert_allclose(people.boxes[:, :2], EXPECTED[:, :2], atol=1e-4)


def test_export_of_an_rtmdet_config_writes_raw_outputs_and_metadata(rtmdet_cfg, tmp_path,
                                                                   capsys):
    pytest.importorskip("onnxruntime")
    import onnx

    from humanpose.cli import main

    path = tmp_path / "out.onnx"
    assert main(["export", "--cfg", str(rtmdet_cfg), "--output", str(path)]) == 0
    assert f"wrote {path} (rtmdet" in capsys.readouterr().out
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["detections"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert RTMDetParams.from_json(meta[RTMDET_METADATA_KEY]) == PARAMS
    detector = build_person_detector(path, backend="onnxruntime", min_score=0.0)
    boxes, _, _ = detector.detect(np.zeros((64, 128, 3), np.uint8))
    np.testing.assert_allclose(boxes, EXPECTED, atol=1e-4)


def test_torch_backend_keeps_rtmdet_outputs_with_shared_head_convs():
    """RTMDet-tiny/-m share the head convs between levels, each level with its own BN
    statistics: the torch runner (BN folded, channels last) must give the eager outputs."""
    from humanpose.config import get_cfg
    from humanpose.detection import build_detector
    from humanpose.inference.backends import TorchRunner

    from .conftest import EXPERIMENTS

    cfg = get_cfg(EXPERIMENTS / "detection" / "rtmdet_tiny_640_person.yaml")
    assert cfg.MODEL.EXTRA.DET_SHARE_CONV
    torch.manual_seed(0)
    network = build_detector(cfg, channels_last=False).eval()
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    model = RTMDetOutputs(network)
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x)
        got = TorchRunner(model, "cpu", "torch")(x)
    scale = want.abs().max()
    assert float((got - want).abs().max() / scale) < 1e-4


def test_real_rtmdet_nano_exports_within_1e4_and_its_file_detects_as_torch(tmp_path):
    """The shipped RTMDet-nano experiment, random weights with trained-like BN statistics:
    ``humanpose export`` within 1e-4 of PyTorch, and the file, as a detector on ONNX
    Runtime, gives the boxes of the torch detector built from the same weights."""
    pytest.importorskip("onnxruntime")
    from humanpose.cli import main
    from humanpose.config import get_cfg
    from humanpose.detection import build_detector

    from .conftest import EXPERIMENTS

    experiment = EXPERIMENTS / "detection" / "rtmdet_nano_320_person.yaml"
    torch.manual_seed(0)
    network = build_detector(get_cfg(experiment), channels_last=False).eval()
    with torch.no_grad():  # unit-gain convs (mmdet's init: N(0, 0.01)), trained-like BNs
        for module in network.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.uniform_(0.5, 1.5)
            elif isinstance(module, nn.Conv2d):
                module.weight.normal_(0.0, module.weight[0].numel() ** -0.5)
        # about 50 boxes of distinct scores, distances of about 2 strides
        for conv in network.bbox_head.rtm_cls:
            conv.weight.mul_(25.0)
            conv.bias.fill_(-5.5)
        for conv in network.bbox_head.rtm_reg:
            conv.weight.mul_(0.3)
            conv.bias.fill_(2.0)
    weights = tmp_path / "nano.pth"
    torch.save({"meta": {}, "state_dict": network.state_dict()}, weights)
    path = tmp_path / "nano.onnx"
    assert main(["export", "--cfg", str(experiment), "--weights", str(weights),
                 "--output", str(path)]) == 0
    image = cv2.resize(np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8),
                       (640, 480), interpolation=cv2.INTER_LINEAR)
    cfg_path = tmp_path / "nano.yaml"
    cfg_path.write_text(get_cfg(experiment, ["TEST.MODEL_FILE", str(weights)]).dump())
    want = build_person_detector(cfg_path, backend="torch").detect(image)
    got = build_person_detector(path, backend="onnxruntime").detect(image)
    assert 10 <= len(want[0]) < 100 and len(got[0]) == len(want[0])
    # As sets: random weights give runs of near-equal scores (a padded row is 114
    # everywhere) whose order rounding may swap.
    gaps = np.abs(got[0][:, None] - want[0][None]).max(axis=2)
    nearest = gaps.argmin(axis=1)
    assert len(set(nearest.tolist())) == len(nearest)
    assert gaps.min(axis=1).max() <= 1e-3
    np.testing.assert_allclose(got[1], want[1][nearest], atol=1e-5)


def test_the_runtime_reads_an_rtmdet_export_as_the_torch_side_does(tmp_path):
    pytest.importorskip("onnxruntime")
    from humanpose.runtime.detectors import onnx_person_detector

    torch.manual_seed(1)
    network = StandIn(random=True).eval()
    path = tmp_path / "rtmdet.onnx"
    params = RTMDetParams(input_size=(SIZE, SIZE), score_thr=0.1, iou_thr=0.5)
    export_rtmdet_onnx(network, params, path)
    runtime = onnx_person_detector(path, min_score=0.0, nms_threshold=0.4)
    assert isinstance(runtime, RTMDetDetector) and runtime.params.iou_thr == 0.4
    torch_side = build_person_detector(path, backend="onnxruntime", min_score=0.0,
                                       nms_threshold=0.4)
    image = np.random.default_rng(2).integers(0, 256, (50, 90, 3), dtype=np.uint8)
    got, want = runtime.detect(image), torch_side.detect(image)
    assert len(got[0]) > 0
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    eager = RTMDetDetector(eager_runner(RTMDetOutputs(network).eval()), runtime.params)
    np.testing.assert_allclose(got[0], eager.detect(image)[0], atol=1e-3)
