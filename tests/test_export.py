"""ONNX export: round trip against PyTorch, and the ONNX backends of PoseEstimator."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import humanpose
from humanpose.cli import main
from humanpose.codecs import build_codec
from humanpose.data.normalize import normalize_crops
from humanpose.export import (
    check_onnx,
    export_pose_onnx,
    onnx_cache_path,
    run_onnx,
    weights_digest,
)
from humanpose.inference import PoseEstimator
from humanpose.predict import predict_outputs
from tests.peaked import CLEAR_MARGIN, decision_margin, train_to_peak
from tests.test_inference import (
    LPN18,
    SMALL,
    nontrivial_model,
    small_cfg,
    stick_figure,
    write_weights,
)

needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="onnx and onnxruntime are not installed (pip install 'humanpose[onnx]')")
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="openvino is not installed "
                                           "(pip install 'humanpose[openvino]')")


# The boxes the backend tests decode key points in (one person drawn, one box on background).
BOXES = np.array([[120, 30, 80, 190], [20, 20, 100, 150]])


def peaked_on_boxes(model, cfg):
    """``model`` trained to peak on the crops of :data:`BOXES`: the key points the backends
    decode from it rest on decisions well above float (and bf16) rounding, on every CPU."""
    est = PoseEstimator(cfg, None, backend="torch", random_weights=True)  # for its crops
    flip_pairs = [list(p) for p in est.keypoint_set.flip_pairs]
    inputs = torch.from_numpy(normalize_crops(est.crop(stick_figure(), BOXES)[0]))
    codec = build_codec(cfg)
    train_to_peak(model, inputs, codec, flip_pairs)
    with torch.no_grad():
        for pairs in (None, flip_pairs):
            margin = decision_margin(predict_outputs(model, inputs, codec, pairs))
            assert margin > CLEAR_MARGIN, f"weights not peaked enough: margin {margin:.2e}"
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    cfg = small_cfg()
    torch.manual_seed(5)
    model = peaked_on_boxes(humanpose.build_model(cfg), cfg)
    weights = folder / "model.pth"
    torch.save(model.state_dict(), weights)
    path = folder / "model.onnx"
    diff = export_pose_onnx(model, cfg, path)
    return cfg, model, weights, path, diff


@needs_onnx
def test_onnx_round_trip_within_1e4(exported):
    cfg, model, _, path, diff = exported
    assert diff <= 1e-4
    import onnx

    graph = onnx.load(str(path))
    assert graph.opset_import[0].version >= 17
    batch_dim = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch"  # dynamic batch
    x = torch.randn(3, 3, 128, 96)
    with torch.no_grad():
        expected = model(x).numpy()
    (got,) = run_onnx(path, x.numpy())
    assert got.shape == (3, 17, 32, 24)
    assert np.abs(got - expected).max() <= 1e-4
    assert expected.std() > 0.02  # the comparison is not between near-zero maps
    assert check_onnx(path, model, cfg, batch=1) <= 1e-4


@needs_onnx
def test_onnxruntime_backend_matches_torch(exported):
    cfg, _, weights, path, _ = exported
    image, boxes = stick_figure(), BOXES
    reference = PoseEstimator(cfg, weights, backend="torch")(image, boxes)
    est = PoseEstimator(cfg, weights, backend="onnxruntime", onnx_path=path)
    people = est(image, boxes)
    assert est.backend == "onnxruntime" and len(people) == 2
    for a, b in zip(reference, people):
        np.testing.assert_allclose(a.keypoints[:, :2], b.keypoints[:, :2], atol=0.05)
        np.testing.assert_allclose(a.keypoints[:, 2], b.keypoints[:, 2], atol=1e-3)
    # an .onnx file as the weights: no PyTorch model is built
    only_onnx = PoseEstimator(cfg, path, backend="onnxruntime")
    assert only_onnx.model is None
    np.testing.assert_allclose(only_onnx(image, boxes)[0].keypoints, people[0].keypoints,
                               atol=1e-5)
    with pytest.raises(humanpose.errors.HumanposeError, match="needs PyTorch weights"):
        PoseEstimator(cfg, path, backend="torch")


@needs_onnx
def test_onnx_backend_exports_on_the_fly(tmp_path):
    weights = write_weights(tmp_path / "w.pth", seed=2)
    cfg = small_cfg()
    est = PoseEstimator(cfg, weights, backend="onnxruntime", cache_dir=tmp_path / "cache")
    digest = weights_digest(est.model.state_dict())
    assert est.onnx_path == onnx_cache_path(cfg, weights, tmp_path / "cache", digest=digest)
    assert est.onnx_path.is_file()
    assert len(est(stick_figure())) == 1
    other = write_weights(tmp_path / "w2.pth", seed=3)
    other_digest = weights_digest(torch.load(other, weights_only=True))
    assert other_digest != digest
    assert onnx_cache_path(cfg, other, tmp_path / "cache", digest=other_digest) != est.onnx_path


@needs_onnx
@needs_openvino
def test_openvino_backend_runs_the_onnx_model(exported):
    cfg, _, weights, path, _ = exported
    image = stick_figure()
    boxes = np.array([[120, 30, 80, 190]])
    reference = PoseEstimator(cfg, weights, backend="torch", flip_test=False)
    expected = reference.outputs(reference.crop(image, boxes)[0])
    for backend, tolerance in (("openvino-fp32", 1e-3), ("openvino", 0.05)):
        est = PoseEstimator(cfg, weights, backend=backend, onnx_path=path, flip_test=False)
        got = est.outputs(est.crop(image, boxes)[0])
        assert (got - expected).abs().max().item() <= tolerance * expected.abs().max().item()
        assert len(est(image, boxes)) == 1
        assert len(est(image, np.tile(boxes, (3, 1)))) == 3  # dynamic batch


@needs_onnx
@needs_openvino
@pytest.mark.parametrize("forced,computes,tolerance", [("bf16", "bf16", 0.05),
                                                       ("fp32", "f32", 1e-3)])
def test_openvino_default_precision_emulates_either_cpu_kind(exported, monkeypatch, forced,
                                                             computes, tolerance):
    """$HUMANPOSE_OPENVINO_PRECISION makes the plain ``openvino`` backend compute as an AMX /
    AVX512-BF16 CPU (bf16) or any other CPU (fp32) would: the raw outputs stay within the
    tolerance of that precision, and the crop count is kept."""
    cfg, _, weights, path, _ = exported
    image, boxes = stick_figure(), np.array([[120, 30, 80, 190]])
    reference = PoseEstimator(cfg, weights, backend="torch", flip_test=False)
    expected = reference.outputs(reference.crop(image, boxes)[0])
    monkeypatch.setenv("HUMANPOSE_OPENVINO_PRECISION", forced)
    est = PoseEstimator(cfg, weights, backend="openvino", onnx_path=path, flip_test=False)
    assert est.runner.inference_precision == computes
    got = est.outputs(est.crop(image, boxes)[0])
    assert (got - expected).abs().max().item() <= tolerance * expected.abs().max().item()
    assert len(est(image, np.tile(boxes, (2, 1)))) == 2
    monkeypatch.setenv("HUMANPOSE_OPENVINO_PRECISION", "int4")
    with pytest.raises(humanpose.errors.HumanposeError, match="HUMANPOSE_OPENVINO_PRECISION"):
        PoseEstimator(cfg, weights, backend="openvino", onnx_path=path, flip_test=False)


@needs_onnx
def test_export_command(tmp_path, capsys):
    weights = write_weights(tmp_path / "w.pth", seed=4)
    out = tmp_path / "exported.onnx"
    rc = main(["export", "--cfg", str(LPN18), *SMALL, "TEST.MODEL_FILE", str(weights),
               "--format", "onnx", "--output", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and out.is_file()
    assert "max |ONNX - PyTorch|" in printed
    rc = main(["export", "--cfg", str(LPN18), *SMALL, "--output", str(tmp_path / "random.onnx")])
    assert rc == 1 and not (tmp_path / "random.onnx").exists()
    assert "no weights: give a weights file" in capsys.readouterr().err
    rc = main(["export", "--cfg", str(LPN18), *SMALL, "--random-weights",
               "--output", str(tmp_path / "random.onnx")])
    assert rc == 0 and (tmp_path / "random.onnx").is_file()
    assert "--random-weights: exporting untrained weights" in capsys.readouterr().err


@needs_onnx
def test_onnx_metadata_carries_the_key_point_set(tmp_path, capsys):
    from humanpose.checkpoint import with_keypoints
    from humanpose.data.keypoints import custom_keypoint_set
    from humanpose.export import read_onnx_keypoints

    five = custom_keypoint_set(["Head top", "Left Shoulder", "Right Shoulder", "L_Hip", "R_Hip"],
                               skeleton=[(1, 2), (1, 3)])
    cfg = small_cfg("MODEL.NUM_JOINTS", "5")
    model = nontrivial_model(cfg, seed=1)
    weights = tmp_path / "five.pth"
    torch.save(with_keypoints(model.state_dict(), five), weights)
    out = tmp_path / "five.onnx"
    rc = main(["export", "--cfg", str(LPN18), *SMALL, "MODEL.NUM_JOINTS", "5",
               "TEST.MODEL_FILE", str(weights), "--output", str(out)])
    assert rc == 0
    stored = read_onnx_keypoints(out)
    assert stored.names == five.names and stored.flip_pairs == five.flip_pairs == ((1, 2), (3, 4))
    assert stored.skeleton == five.skeleton
    est = PoseEstimator(cfg, out, backend="onnxruntime", flip_test=True)
    assert est.keypoint_set.names == five.names and est.flip_pairs == [[1, 2], [3, 4]]
    # exported on the fly from the .pth: the cached file carries the set too
    est = PoseEstimator(cfg, weights, backend="onnxruntime", cache_dir=tmp_path / "cache")
    assert read_onnx_keypoints(est.onnx_path).names == five.names
