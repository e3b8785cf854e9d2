"""RTMPose (SimCC outputs) through ONNX: the export round trip and PoseEstimator on ONNX
Runtime against PyTorch. Loads onnxruntime, so it is one of conftest's BACKEND_TEST_FILES."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import humanpose
from humanpose.data.synthetic import SynthConfig, draw_scene
from humanpose.export import check_onnx, export_pose_onnx, run_onnx
from humanpose.inference.estimator import PoseEstimator

from .conftest import EXPERIMENTS

pytest.importorskip("onnxruntime")

RTMPOSE_T = EXPERIMENTS / "coco" / "rtmpose" / "rtmpose_t_256x192.yaml"


def random_rtmpose(cfg) -> torch.nn.Module:
    """RTMPose-t with random BatchNorm statistics and gains, so that every layer counts, and
    classifiers that make vectors of a few units (mmpose's init gives about 0.02: too flat)."""
    torch.manual_seed(0)
    model = humanpose.build_model(cfg, channels_last=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0.0, 0.1)
    for head in model.modules():
        if hasattr(head, "cls_x"):
            for linear in (head.cls_x, head.cls_y):
                torch.nn.init.normal_(linear.weight, std=10 * linear.in_features ** -0.5)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rtmpose")
    cfg = humanpose.get_cfg(RTMPOSE_T)
    model = random_rtmpose(cfg)
    weights = folder / "rtmpose_t.pth"
    torch.save({"meta": {}, "state_dict": model.state_dict()}, weights)  # mmpose's layout
    path = folder / "rtmpose_t.onnx"
    diff = export_pose_onnx(model, cfg, path)
    return cfg, model, weights, path, diff


def test_rtmpose_onnx_round_trip_within_1e4_on_both_outputs(exported):
    cfg, model, _, path, diff = exported
    assert diff <= 1e-4
    assert check_onnx(path, model, cfg, batch=3, seed=5) <= 1e-4
    x = torch.randn(2, 3, 256, 192, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = model(x)
    got = run_onnx(path, x.numpy())
    assert [o.shape for o in got] == [(2, 17, 384), (2, 17, 512)]  # simcc_x, simcc_y
    for g, w in zip(got, want, strict=True):
        assert w.abs().max() > 1.0  # not a degenerate output
        np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=0)


def test_onnx_file_names_the_simcc_outputs(exported):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported[3]), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["simcc_x", "simcc_y"]


@pytest.mark.parametrize("flip", [True, False])
def test_pose_estimator_on_onnxruntime_equals_torch(exported, tmp_path, flip):
    cfg, _, weights, path, _ = exported
    image, people = draw_scene(np.random.default_rng(2),
                               SynthConfig(width=320, height=240, max_people=3))
    boxes = np.array([p.bbox for p in people] + [[250.0, 20.0, 120.0, 200.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_est = PoseEstimator(cfg, weights, backend="torch", flip_test=flip)
        onnx_est = PoseEstimator(cfg, weights, backend="onnxruntime", flip_test=flip,
                                 onnx_path=path, cache_dir=tmp_path)
    assert onnx_est.backend == "onnxruntime"
    crops = torch_est.crop(image, boxes)[0]
    want = torch_est.outputs(crops)
    got = onnx_est.outputs(crops)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), atol=1e-4, rtol=0)
    ours = np.stack([p.keypoints for p in onnx_est(image, boxes)])
    expected = np.stack([p.keypoints for p in torch_est(image, boxes)])
    # Joints whose torch vectors have two maxima within the backends' difference may take
    # either; every other joint must land on the same place with the same score.
    flat = np.zeros(ours.shape[:2], dtype=bool)
    for w in want:
        w = w.numpy()
        top2 = np.sort(w, axis=2)[..., -2:]
        flat |= top2[..., 1] - top2[..., 0] <= 2e-4
    assert flat.mean() < 0.2
    np.testing.assert_allclose(ours[~flat][:, :2], expected[~flat][:, :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(ours[..., 2], expected[..., 2], atol=1e-4, rtol=0)


def test_auto_backend_times_and_picks_a_backend_for_simcc_outputs(exported, tmp_path):
    """``backend="auto"`` times every installed backend on the SimCC model's two outputs and
    keeps the fastest; its people equal the torch backend's."""
    cfg, _, weights, _, _ = exported
    image, people = draw_scene(np.random.default_rng(3),
                               SynthConfig(width=320, height=240, max_people=2))
    boxes = np.array([p.bbox for p in people], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = PoseEstimator(cfg, weights, backend="auto", flip_test=False, cache_dir=tmp_path)
        reference = PoseEstimator(cfg, weights, backend="torch", flip_test=False)
    assert auto.backend in auto.backend_timings and len(auto.backend_timings) >= 2
    got = np.stack([p.keypoints for p in auto(image, boxes)])
    want = np.stack([p.keypoints for p in reference(image, boxes)])
    if auto.backend in ("torch", "onnxruntime", "openvino-fp32"):  # fp32: the same people
        assert np.abs(got[..., 2] - want[..., 2]).max() < 1e-3
    assert got.shape == want.shape
