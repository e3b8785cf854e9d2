"""`humanpose test` on the inference backends (TEST.BACKEND): the same AP as PyTorch, and
the ONNX export cached by the weights' content.

Key points are compared only for weights trained to peak (:mod:`tests.peaked`): with random
weights the argmax of a flat heatmap is decided by rounding, which differs between backends
and CPUs."""

import importlib.util
import json

import numpy as np
import pytest
import torch

import humanpose
import humanpose.export
from humanpose.codecs import build_codec
from humanpose.data.synthetic import write_coco_set
from humanpose.engine.distributed import Dist
from humanpose.engine.evaluate import run_test
from humanpose.export import onnx_cache_path, weights_digest
from humanpose.pose.evaluate import predict_dataset

from .conftest import REPO
from .peaked import CLEAR_MARGIN, decision_margin, train_to_peak

DEMO_CFG = REPO / "humanpose" / "configs" / "demo_lpn_synthetic.yaml"
SMALL = ["MODEL.EXTRA.NUM_LAYERS", "18", "MODEL.EXTRA.BLOCK_GROUPS", "depthwise",
         "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]",
         "TEST.BATCH_SIZE_PER_GPU", "4", "WORKERS", "0"]
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                               reason="onnxruntime is not installed")
needs_ov = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                              reason="openvino is not installed")


def peaked(model, cfg, **training):
    """``model`` trained to peak on the validation crops, and checked: every decode decision
    stands clear of rounding, with and without the flip test."""
    from humanpose.predict import predict_outputs

    dataset = humanpose.build_dataset(cfg, is_train=False)
    inputs = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(len(dataset))])
    codec = build_codec(cfg)
    train_to_peak(model, inputs, codec, dataset.keypoints.flip_pairs, **training)
    with torch.no_grad():
        for pairs in (None, dataset.keypoints.flip_pairs):
            margin = decision_margin(predict_outputs(model, inputs, codec, pairs))
            assert margin > CLEAR_MARGIN, f"weights not peaked enough: margin {margin:.2e}"
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_coco_set(str(root), num_train=0, num_val=4, seed=5)
    cfg = humanpose.get_cfg(DEMO_CFG, [*SMALL, "DATASET.ROOT", str(root)])
    torch.manual_seed(0)
    model = peaked(humanpose.build_model(cfg), cfg)
    # Training left the BatchNorm statistics at the crops' own, far from (0, 1): a wrong
    # folding would show.
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert bn.running_var.sub(1).abs().max() > 0.1
    weights = root / "w.pth"
    torch.save(model.state_dict(), weights)
    return root, weights


def make_cfg(root, weights, out, *opts):
    return humanpose.get_cfg(DEMO_CFG, [*SMALL, "DATASET.ROOT", str(root),
                                        "TEST.MODEL_FILE", str(weights),
                                        "OUTPUT_DIR", str(out / "output"),
                                        "LOG_DIR", str(out / "log"), *opts])


@needs_ort
def test_onnxruntime_gives_torch_ap_and_reuses_the_export(setup, tmp_path, monkeypatch):
    root, weights = setup
    monkeypatch.setenv("HUMANPOSE_CACHE", str(tmp_path / "cache"))
    exports = []
    real_export = humanpose.export.export_pose_onnx
    monkeypatch.setattr(humanpose.export, "export_pose_onnx",
                        lambda *a, **k: exports.append(a[2]) or real_export(*a, **k))
    torch_result = run_test(make_cfg(root, weights, tmp_path / "t"), DEMO_CFG)
    ort_result = run_test(make_cfg(root, weights, tmp_path / "o", "TEST.BACKEND", "onnxruntime"),
                          DEMO_CFG)
    assert len(exports) == 1 and exports[0].parent == tmp_path / "cache" / "onnx"
    assert ort_result.value == pytest.approx(torch_result.value, abs=1e-6)
    assert ort_result.metrics.keys() == torch_result.metrics.keys()
    for name, value in torch_result.metrics.items():
        assert ort_result.metrics[name] == pytest.approx(value, abs=1e-6), name
    # The results files: the same people, key points equal within float noise.
    a, b = (json.loads(next((r.output_dir / "results").glob("*.json")).read_text())
            for r in (torch_result, ort_result))
    assert [p["image_id"] for p in a] == [p["image_id"] for p in b] and len(a) > 0
    np.testing.assert_allclose([p["keypoints"] for p in a], [p["keypoints"] for p in b],
                               atol=2e-3)
    mtime = exports[0].stat().st_mtime_ns
    again = run_test(make_cfg(root, weights, tmp_path / "o2", "TEST.BACKEND", "onnxruntime"),
                     DEMO_CFG)
    assert len(exports) == 1  # the second test reused the file
    assert exports[0].stat().st_mtime_ns == mtime
    assert again.value == ort_result.value
    # PoseEstimator on the same weights finds the same file: one export for both.
    est = humanpose.PoseEstimator(make_cfg(root, weights, tmp_path / "e"), weights,
                                  backend="onnxruntime", cache_dir=tmp_path / "cache")
    assert est.onnx_path == exports[0] and len(exports) == 1


def predictions(cfg, model):
    dataset = humanpose.build_dataset(cfg, is_train=False)
    return predict_dataset(model, dataset, cfg, Dist(0, 1, 0, torch.device("cpu")),
                           show_progress=False)


@needs_ort
@pytest.mark.parametrize("flip", [True, False])
def test_onnxruntime_predictions_equal_torch_with_and_without_flip(setup, tmp_path,
                                                                   monkeypatch, flip):
    root, weights = setup
    monkeypatch.setenv("HUMANPOSE_CACHE", str(tmp_path / "cache"))
    cfg = make_cfg(root, weights, tmp_path, "TEST.FLIP_TEST", str(flip))
    model = humanpose.build_model(cfg)
    humanpose.load_checkpoint(model, weights)
    expected = predictions(cfg, model)
    got = predictions(make_cfg(root, weights, tmp_path, "TEST.FLIP_TEST", str(flip),
                               "TEST.BACKEND", "onnxruntime"), model)
    np.testing.assert_allclose(got.keypoints, expected.keypoints, atol=1e-3)
    np.testing.assert_array_equal(got.indices, expected.indices)


@needs_ov
def test_openvino_fp32_and_auto_predict_like_torch(setup, tmp_path, monkeypatch):
    root, weights = setup
    monkeypatch.setenv("HUMANPOSE_CACHE", str(tmp_path / "cache"))
    cfg = make_cfg(root, weights, tmp_path)
    model = humanpose.build_model(cfg)
    humanpose.load_checkpoint(model, weights)
    expected = predictions(cfg, model)
    for backend in ("openvino-fp32", "auto"):
        got = predictions(make_cfg(root, weights, tmp_path, "TEST.BACKEND", backend), model)
        np.testing.assert_allclose(got.keypoints, expected.keypoints, atol=1e-3,
                                   err_msg=backend)
    assert list((tmp_path / "cache" / "openvino").iterdir())  # compiled blobs are kept
    assert (tmp_path / "cache" / "auto_backend.json").is_file()


def test_export_cache_key_is_the_weights_content(setup, tmp_path):
    root, weights = setup
    cfg = humanpose.get_cfg(DEMO_CFG, SMALL)
    copy = tmp_path / "copy.pth"
    copy.write_bytes(weights.read_bytes())
    assert onnx_cache_path(cfg, copy, tmp_path).name.split("-")[-1] == \
        onnx_cache_path(cfg, weights, tmp_path).name.split("-")[-1]
    model = humanpose.build_model(cfg)
    humanpose.load_checkpoint(model, weights)
    a = weights_digest(model.state_dict())
    assert weights_digest(model.to(memory_format=torch.channels_last).state_dict()) == a
    with torch.no_grad():
        next(model.parameters()).add_(1e-6)
    assert weights_digest(model.state_dict()) != a


def test_an_unknown_test_backend_is_refused():
    with pytest.raises(humanpose.errors.HumanposeError, match="TEST.BACKEND"):
        humanpose.get_cfg(DEMO_CFG, [*SMALL, "TEST.BACKEND", "tensorrt"])


@needs_ort
def test_a_simcc_model_with_flip_test_runs_on_onnxruntime(setup, tmp_path, monkeypatch):
    root, _ = setup
    monkeypatch.setenv("HUMANPOSE_CACHE", str(tmp_path / "cache"))
    opts = ["MODEL.IMAGE_SIZE", "[64, 64]", "DATASET.ROOT", str(root), "WORKERS", "0",
            "TEST.BATCH_SIZE_PER_GPU", "4", "TEST.FLIP_TEST", "True", "TEST.USE_GT_BBOX", "True"]
    path = REPO / "experiments" / "coco" / "rtmpose" / "rtmpose_t_256x192.yaml"
    cfg = humanpose.get_cfg(path, opts)
    assert cfg.MODEL.CODEC == "simcc"
    torch.manual_seed(0)
    model = peaked(humanpose.build_model(cfg), cfg, steps=150, lr=1e-3)
    expected = predictions(cfg, model)
    got = predictions(humanpose.get_cfg(path, [*opts, "TEST.BACKEND", "onnxruntime"]), model)
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 1
    np.testing.assert_allclose(got.keypoints, expected.keypoints, atol=1e-3)
