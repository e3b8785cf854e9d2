"""The torch-free runtime: ``PoseModel`` on ONNX files, ``Results``, and ``humanpose infer
--weights m.onnx`` in a process where torch cannot be imported. ONNX files are exported
here (with torch, in this process); everything run from them runs in subprocesses that set
``sys.modules["torch"] = None``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import humanpose
from humanpose.data.keypoints import COCO
from humanpose.data.synthetic_video import make_walking_video, write_video
from humanpose.export import export_pose_onnx
from humanpose.inference.estimator import PoseEstimator
from humanpose.runtime.results import csv_header

from .conftest import EXPERIMENTS
from .test_inference import nontrivial_model

pytest.importorskip("onnxruntime")

RTMPOSE_T = EXPERIMENTS / "coco" / "rtmpose" / "rtmpose_t_256x192.yaml"
LPN18 = EXPERIMENTS / "coco" / "lpn" / "lpn18_256x192_gd256x2_gc.yaml"
HRNET = EXPERIMENTS / "coco" / "hrnet" / "w18_small_v2_256x192_adam_lr1e-3.yaml"
RESNET = EXPERIMENTS / "coco" / "resnet" / "res50_256x192_d256x3_adam_lr1e-3.yaml"
TINY_LPN = ["MODEL.IMAGE_SIZE", "[48,64]", "MODEL.HEATMAP_SIZE", "[12,16]"]
# Every model family, small inputs (the networks are fully convolutional).
FAMILIES = {"rtmpose": (RTMPOSE_T, []), "lpn": (LPN18, TINY_LPN),
            "hrnet": (HRNET, ["MODEL.IMAGE_SIZE", "[64,96]", "MODEL.HEATMAP_SIZE", "[16,24]",
                              "TEST.DECODER", "dark"]),
            "resnet": (RESNET, ["MODEL.IMAGE_SIZE", "[64,96]", "MODEL.HEATMAP_SIZE", "[16,24]",
                                "DATASET.UDP", "True"])}
BOXES = np.array([[10, 5, 100, 150], [150, 20, 80, 160], [200, 60, 60, 120]], np.float32)
# What `pip install humanpose` leaves out: importing any of them fails in the runtime tests.
NOT_IN_THE_RUNTIME = ("torch", "scipy", "pycocotools", "onnx")
NO_TORCH = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n"
                                      for m in NOT_IN_THE_RUNTIME))


def random_model(cfg, seed: int) -> torch.nn.Module:
    """Random weights with BatchNorm statistics that make every layer count."""
    torch.manual_seed(seed)
    model = humanpose.build_model(cfg, channels_last=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """RTMPose-t (SimCC), LPN-18, HRNet-W18-small-v2 (DARK) and SimpleBaseline-50 (UDP)
    (heatmaps, small inputs) as .pth and .onnx."""
    folder = tmp_path_factory.mktemp("runtime")
    out = {}
    for name, (path, opts) in FAMILIES.items():
        cfg = humanpose.get_cfg(path, opts)
        model = random_model(cfg, seed=1) if name == "rtmpose" else nontrivial_model(cfg, 7)
        weights = folder / f"{name}.pth"
        torch.save({"state_dict": model.state_dict()}, weights)
        onnx = folder / f"{name}.onnx"
        export_pose_onnx(model, cfg, onnx, keypoints=COCO)
        out[name] = (cfg, weights, onnx)
    return out


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    return cv2.GaussianBlur(image, (9, 9), 3)


def run_without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter where ``import torch`` (and the other packages of the
    [train] extra) fails."""
    script = NO_TORCH + textwrap.dedent(code) + (
        "\nassert sys.modules.get('torch') is None, 'torch was imported'\n")
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


# ----------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("flip", [False, True])
def test_runtime_equals_the_torch_side_on_the_same_onnx(models, scene, name, flip):
    from humanpose.runtime import PoseModel

    cfg, weights, onnx = models[name]
    runtime = PoseModel(onnx, backend="onnxruntime", flip_test=flip)
    onnx_side = PoseEstimator(cfg, weights, backend="onnxruntime", onnx_path=onnx,
                              flip_test=flip)
    torch_side = PoseEstimator(cfg, weights, backend="torch", flip_test=flip)
    crops = runtime.crop(scene, BOXES)[0]
    got = runtime.outputs(crops)
    got = got if isinstance(got, tuple) else (got,)
    # The torch side's ONNX path runs the same session and code: equal. PyTorch computes the
    # same network in another order: within 1e-4 of the outputs' scale.
    for reference, exact in ((onnx_side.outputs(crops), True),
                             (torch_side.outputs(crops), False)):
        reference = reference if isinstance(reference, tuple) else (reference,)
        for g, r in zip(got, reference, strict=True):
            r = r.numpy()
            scale = float(np.abs(r).max())
            assert g.shape == r.shape and scale > 0
            if exact:
                np.testing.assert_array_equal(g, r)
            else:
                assert float(np.abs(g - r).max()) <= 1e-4 * max(1.0, scale)
    # Same ONNX, same code around it: the key points of the torch side's ONNX path.
    results = runtime(scene, BOXES)
    people = onnx_side(scene, BOXES)
    np.testing.assert_allclose(results.keypoints, np.stack([p.keypoints[:, :2]
                                                            for p in people]), atol=1e-4)
    np.testing.assert_allclose(results.scores, [p.score for p in people], atol=1e-6)


def test_a_file_without_humanpose_metadata_is_read_from_its_output_shapes(models, scene,
                                                                          tmp_path):
    """mmdeploy's RTMPose files carry no metadata: SimCC from the two outputs, the split
    ratio from their length, RGB ImageNet normalisation, COCO's joints for 17."""
    import onnx

    from humanpose.runtime import PoseModel

    _, _, path = models["rtmpose"]
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    described = PoseModel(path, backend="onnxruntime", flip_test=False)
    guessed = PoseModel(bare, backend="onnxruntime")
    assert guessed.codec.name == "simcc" and guessed.codec.split_ratio == 2.0
    assert guessed.keypoint_set is COCO and guessed.flip_pairs is None
    assert guessed.image_size == (192, 256)
    np.testing.assert_array_equal(guessed(scene, BOXES).keypoints,
                                  described(scene, BOXES).keypoints)


def test_results_arrays_files_and_drawing(models, scene):
    from humanpose.runtime import PoseModel, Results

    model = PoseModel(models["lpn"][2], backend="onnxruntime")
    results = model(scene, BOXES, [0.9, 0.8, 0.7])
    assert isinstance(results, Results) and len(results) == 3
    assert results.keypoints.shape == (3, 17, 2) and results.keypoint_scores.shape == (3, 17)
    assert results.names == COCO.names
    np.testing.assert_allclose(results.boxes, BOXES)
    np.testing.assert_allclose(results.boxes_xyxy[:, 2:], BOXES[:, :2] + BOXES[:, 2:])
    np.testing.assert_allclose(results.box_scores, [0.9, 0.8, 0.7])
    assert (results.track_ids == -1).all()
    rows = list(csv.reader(results.to_csv().splitlines()))
    assert rows[0] == csv_header(COCO.names) and len(rows) == 4
    assert float(rows[1][8]) == pytest.approx(float(results.keypoints[0, 0, 0]), abs=1e-3)
    records = json.loads(results.to_json())
    assert [r["bbox"] for r in records] == [[round(float(v), 2) for v in b] for b in BOXES]
    drawn = results.plot(threshold=0.0)
    assert drawn.shape == scene.shape and (drawn != scene).any()
    assert (model(scene, BOXES).image == scene).all()  # plot() draws on a copy
    assert len(model(scene, np.zeros((0, 4)))) == 0


def test_pose_model_refuses_what_it_cannot_run(tmp_path):
    from humanpose.errors import HumanposeError
    from humanpose.runtime import PoseModel

    with pytest.raises(HumanposeError, match=r"takes an \.onnx file.*humanpose\[train\]"):
        PoseModel(tmp_path / "w.pth")
    with pytest.raises(HumanposeError, match="ONNX file not found"):
        PoseModel(tmp_path / "missing.onnx")
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(HumanposeError, match="notes.onnx: not a valid ONNX model"):
        PoseModel(tmp_path / "notes.onnx", backend="onnxruntime")


# ----------------------------------------------------------------------------- no torch
def test_runtime_modules_import_without_torch(tmp_path):
    modules = ["humanpose", "humanpose.runtime", "humanpose.runtime.detectors",
               "humanpose.inference.video", "humanpose.inference.sources",
               "humanpose.inference.tracking", "humanpose.vis", "humanpose.cli"]
    done = run_without_torch("import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in modules) + "import humanpose\n"
        "try:\n    humanpose.PoseEstimator\nexcept ImportError as err:\n"
        "    print('refused:', err)\n", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "refused: this needs PyTorch" in done.stdout and "humanpose[train]" in done.stdout


def test_images_folder_and_video_with_tracking_and_csv_without_torch(models, tmp_path):
    _, _, onnx = models["lpn"]
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(images / f"im{i}.jpg"),
                    rng.integers(0, 256, (120, 90, 3), dtype=np.uint8))
    truth = make_walking_video(8, width=320, height=240)
    video = tmp_path / "walk.avi"
    write_video(truth, video, fourcc="MJPG")
    detections = [{"frame": f, "image_id": f + 1, "category_id": 1, "bbox": b.tolist(),
                   "score": 0.9} for f in range(8) for b in truth.boxes[f]]
    (tmp_path / "dets.json").write_text(json.dumps(detections))
    done = run_without_torch(f"""
        from humanpose.cli import main
        common = ["--weights", {str(onnx)!r}, "--quiet", "--backend", "onnxruntime"]
        assert main(["infer", *common, "--input", {str(images / 'im0.jpg')!r},
                     "--output", "one"]) == 0
        assert main(["infer", *common, "--input", {str(images)!r}, "--output", "folder"]) == 0
        assert main(["infer", *common, "--input", {str(video)!r}, "--output", "video",
                     "--detector", "dets.json", "--track", "--save-csv", "people.csv"]) == 0
        assert main(["infer", *common, "--input", {str(video)!r}, "--output", "video0",
                     "--detector", "dets.json", "--track", "TRACK.FILL_MISSED", "0"]) == 0
        from humanpose.runtime import PoseModel
        model = PoseModel({str(onnx)!r}, "dets.json", backend="onnxruntime")
        ids = [r.track_ids.tolist() for r in model.track({str(video)!r})]
        print("stream", ids)
        """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads((tmp_path / "one" / "results.json").read_text())) == 1
    assert len(json.loads((tmp_path / "folder" / "results.json").read_text())) == 3
    records = json.loads((tmp_path / "video" / "results.json").read_text())
    # TRACK.* overrides reach the torch-free run: without crops of its own for people the
    # file misses (TRACK.FILL_MISSED 0) it writes the file's boxes exactly.
    only_file = json.loads((tmp_path / "video0" / "results.json").read_text())
    assert len(only_file) == sum(len(b) for b in truth.boxes) <= len(records)
    assert {r["track_id"] for r in records if r["track_id"] >= 0}
    with open(tmp_path / "people.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == csv_header(COCO.names) and len(rows) - 1 == len(records)
    stream = json.loads(done.stdout.split("stream", 1)[1].strip())
    # model.track(source) is infer --track's frame step: the same ids, frame by frame.
    by_frame = [sorted(r["track_id"] for r in records if r["image_id"] == f + 1)
                for f in range(8)]
    assert len(stream) == 8 and [sorted(ids) for ids in stream] == by_frame
    # The first frame's tracks are confirmed at once; later ones wait for min_hits (-1).
    assert min(stream[0]) >= 1 and all(ids and max(ids) >= 1 for ids in stream)


def test_a_command_that_needs_torch_says_which_extra_without_it(models, tmp_path):
    done = run_without_torch(f"""
        from humanpose.cli import main
        code = main(["info", "--cfg", {str(LPN18)!r}])
        print("exit", code)
        """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exit 1" in done.stdout
    assert "humanpose info: error: this needs PyTorch" in done.stderr
    assert "pip install 'humanpose[train]'" in done.stderr
