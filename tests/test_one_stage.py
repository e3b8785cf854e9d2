"""One-stage RTMO through the same paths as the top-down models: OneStageEstimator (PyTorch
side, every backend), OneStageModel (the runtime, torch made unimportable), mmdeploy's
two-output RTMO files, ``humanpose export`` and ``humanpose infer`` with tracking and CSV.

The network is RTMO-s at 64x64 with top-k 20: every anchor of its two levels (16 + 4) is
kept, so with score threshold 0 and no NMS the two sides give the same people whatever
near-tied scores do to their order; people are compared in box order."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import humanpose
from humanpose.cli import main
from humanpose.errors import HumanposeError
from tests.test_rtmo import random_state, rtmo_cfg
from tests.test_runtime import run_without_torch

SIDE, ANCHORS = 64, 20  # 64/16 squared + 64/32 squared
ALL_PEOPLE = ["MODEL.RTMO.SCORE_THR", 0.0, "MODEL.RTMO.NMS_THR", 1.0]


def tiny_cfg(*opts):
    cfg = rtmo_cfg("s", side=SIDE, topk=ANCHORS)
    cfg.merge_from_list([*ALL_PEOPLE, *opts])
    return cfg


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one_stage")
    cfg = tiny_cfg()
    model = humanpose.build_model(cfg).eval()
    state = random_state(model, 3)
    for key in [k for k in state if "out_kpt_vis" in k and k.endswith("bias")]:
        state[key] = torch.full_like(state[key], 3.0)  # joints seen: the tracker keeps them
    model.load_state_dict(state)
    path = folder / "rtmo_tiny.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return cfg, path, folder


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), (5, 5), 2)


def in_box_order(people):
    boxes = np.array([p.box for p in people])
    order = np.lexsort((boxes[:, 1].round(2), boxes[:, 0].round(2)))
    return (boxes[order], np.stack([people[i].keypoints for i in order]),
            np.array([people[i].score for i in order]))


def test_backends_give_the_same_people(weights, image):
    from humanpose.inference.one_stage import OneStageEstimator

    cfg, path, folder = weights
    results = {}
    for backend in ("torch", "onnxruntime", "openvino-fp32"):
        est = OneStageEstimator(cfg, path, backend=backend, cache_dir=folder / "cache")
        people = est(image)
        assert est.backend == backend and len(people) == ANCHORS
        assert est.timing.people == ANCHORS and est.timing.model > 0
        results[backend] = in_box_order(people)
    for backend in ("onnxruntime", "openvino-fp32"):
        for got, expect in zip(results[backend], results["torch"]):
            np.testing.assert_allclose(got, expect, rtol=1e-4, atol=2e-3)
    with pytest.raises(HumanposeError, match="takes no boxes"):
        est(image, np.array([[0, 0, 10, 10]]))


def test_export_and_runtime_without_torch(weights, image, tmp_path):
    from humanpose.export import check_one_stage_onnx, export_one_stage_onnx
    from humanpose.inference.one_stage import OneStageEstimator
    from humanpose.runtime.one_stage import ONE_STAGE_KEY
    from humanpose.runtime.sessions import onnx_metadata

    cfg, path, _ = weights
    est = OneStageEstimator(cfg, path, backend="torch")
    onnx = tmp_path / "rtmo.onnx"
    assert export_one_stage_onnx(est.model, cfg, onnx) < 1e-4
    settings = json.loads(onnx_metadata(onnx)[ONE_STAGE_KEY])
    assert settings == {"kind": "rtmo", "input_size": [SIDE, SIDE], "score_thr": 0.0,
                        "nms_thr": 1.0}
    # The check matches rows whatever their order: a model with other weights fails it.
    other = humanpose.build_model(cfg).eval()
    other.load_state_dict(random_state(other, 9))
    assert check_one_stage_onnx(onnx, other, cfg) > 1e-2
    np.save(tmp_path / "image.npy", image)
    video = tmp_path / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (80, 48))
    for shift in range(4):
        writer.write(np.roll(image, shift, axis=1))
    writer.release()
    done = run_without_torch(f"""
        import json
        import numpy as np
        from humanpose.runtime import OneStageModel
        model = OneStageModel({str(onnx)!r}, backend="onnxruntime")
        results = model(np.load({str(tmp_path / 'image.npy')!r}))
        np.save({str(tmp_path / 'boxes.npy')!r}, results.boxes)
        np.save({str(tmp_path / 'kpts.npy')!r}, np.concatenate(
            [results.keypoints, results.keypoint_scores[..., None]], -1))
        frames = [r.track_ids.tolist() for r in model.track({str(video)!r})]
        print(json.dumps({{"repr": repr(model), "frames": frames}}))
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "OneStageModel(rtmo.onnx 64x64, 17 key points" in report["repr"]
    assert len(report["frames"]) == 4 and all(len(ids) == ANCHORS for ids in report["frames"])
    # The same people as the PyTorch side, in box order.
    boxes, kpts = np.load(tmp_path / "boxes.npy"), np.load(tmp_path / "kpts.npy")
    order = np.lexsort((boxes[:, 1].round(2), boxes[:, 0].round(2)))
    expect_boxes, expect_kpts, _ = in_box_order(est(image))
    np.testing.assert_allclose(boxes[order], expect_boxes, rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(kpts[order], expect_kpts, rtol=1e-4, atol=2e-3)


class _TwoOutputs(torch.nn.Module):
    """An mmdeploy-style RTMO file: ``dets`` (1, D, 5) and ``keypoints`` (1, D, K, 3) in
    input pixels, here constants (the input only sets the batch)."""

    def __init__(self, dets: np.ndarray, keypoints: np.ndarray):
        super().__init__()
        self.register_buffer("dets", torch.from_numpy(dets))
        self.register_buffer("kpts", torch.from_numpy(keypoints))

    def forward(self, x):
        zero = x.mean() * 0
        return self.dets[None] + zero, self.kpts[None] + zero


def test_mmdeploy_two_output_file(tmp_path):
    from humanpose.runtime import OneStageModel, PoseModel

    dets = np.array([[100, 200, 300, 600, 0.9], [400, 100, 500, 300, 0.05]], np.float32)
    kpts = np.zeros((2, 17, 3), np.float32)
    kpts[:, :, 0], kpts[:, :, 1], kpts[:, :, 2] = 200, 400, 0.8
    path = tmp_path / "end2end.onnx"
    torch.onnx.export(_TwoOutputs(dets, kpts), (torch.zeros(1, 3, 640, 640),), str(path),
                      input_names=["input"], output_names=["dets", "keypoints"],
                      opset_version=17, dynamo=False)
    model = OneStageModel(path, backend="onnxruntime")
    assert model.info.layout == "mmdeploy" and model.input_size == (640, 640)
    assert model.score_thr == pytest.approx(0.1)  # mmpose's test setting: the 0.05 box goes
    image = np.zeros((320, 640, 3), np.uint8)  # scale 1, the image centred: y offset -160
    results = model(image)
    assert len(results) == 1
    np.testing.assert_allclose(results.boxes_xyxy[0], [100, 40, 300, 440], atol=1e-3)
    np.testing.assert_allclose(results.keypoints[0], [[200, 240]] * 17, atol=1e-3)
    np.testing.assert_allclose(results.scores, [0.9], rtol=1e-6)
    with pytest.raises(HumanposeError, match="one-stage model.*OneStageModel"):
        PoseModel(path)


def test_infer_and_export_commands(weights, image, tmp_path, monkeypatch, capsys):
    cfg, path, _ = weights
    monkeypatch.chdir(tmp_path)
    video = tmp_path / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (80, 48))
    for shift in range(3):
        writer.write(np.roll(image, shift, axis=1))
    writer.release()
    opts = ["MODEL.IMAGE_SIZE", f"[{SIDE},{SIDE}]", "MODEL.RTMO.TOPK", str(ANCHORS),
            "MODEL.RTMO.SCORE_THR", "0.0", "MODEL.RTMO.NMS_THR", "1.0"]
    base = ["--cfg", "experiments/coco/rtmo/rtmo_s_640x640.yaml"]
    monkeypatch.chdir(humanpose.shipped.experiments_dir().parent)
    assert main(["export", *base, "--weights", str(path), "--output",
                 str(tmp_path / "rtmo.onnx"), *opts]) == 0
    runs = {}
    for name, args in (("pth", [*base, "--weights", str(path), "--backend", "torch", *opts]),
                       ("onnx", ["--weights", str(tmp_path / "rtmo.onnx"),
                                 "--backend", "onnxruntime"])):
        out = tmp_path / f"out_{name}"
        assert main(["infer", *args, "--input", str(video), "--track", "--output", str(out),
                     "--save-csv", str(out / "people.csv"), "--quiet"]) == 0
        frames = [json.loads(line) for line in (out / "results.jsonl").open()]
        assert len(frames) == 3 and all(len(f["people"]) == ANCHORS for f in frames)
        assert all("track_id" in p for f in frames for p in f["people"])
        header = (out / "people.csv").read_text().splitlines()[0]
        assert header.startswith("frame,time,track_id,x,y,w,h,score,nose_x")
        assert (out / "walk_pose.mp4").is_file()
        runs[name] = frames
    for a, b in zip(runs["pth"], runs["onnx"]):
        ka = sorted(tuple(np.round(p["box"], 1)) for p in a["people"])
        kb = sorted(tuple(np.round(p["box"], 1)) for p in b["people"])
        np.testing.assert_allclose(ka, kb, atol=0.05)
    capsys.readouterr()
    assert main(["infer", "--weights", str(tmp_path / "rtmo.onnx"), "--input", str(video),
                 "--boxes", str(tmp_path / "none.json"), "--output", str(tmp_path / "x")]) != 0
    assert "finds the people itself" in capsys.readouterr().err
