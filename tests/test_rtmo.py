"""RTMO: the network as mmpose builds it (parameter counts, checkpoint keys), and its NumPy
pre-processing and decoding on hand-made data. Equivalence with mmpose on the same weights
is benchmarks/check_mm_equivalence.py --rtmo (it needs the mmpose venv)."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import humanpose
from humanpose.runtime.rtmo import RTMOMeta, decode, predict_rtmo, preprocess

# Measured with mmpose 1.3.2 (reference venv, /work/shared/reference): init_model on
# configs/body_2d_keypoint/rtmo/coco/rtmo-{s,m,l}_*-640x640.py, sum of p.numel() over
# model.parameters(), and len(model.state_dict()).
MMPOSE_PARAMS = {"s": 9_868_899, "m": 22_526_307, "l": 44_693_315}
MMPOSE_KEYS = {"s": 514, "m": 658, "l": 778}
# A few of mmpose's state-dict keys for rtmo-s (same source), one per kind of module.
MMPOSE_KEY_SAMPLE = {
    "backbone.stem.conv.conv.weight": (32, 12, 3, 3),
    "backbone.stage4.1.conv2.conv.weight": (512, 1024, 1, 1),
    "neck.encoder.0.layers.0.self_attn.attn.in_proj_weight": (768, 256),
    "neck.encoder.0.layers.0.ffn.layers.0.0.weight": (1024, 256),
    "neck.fpn_blocks.0.bottlenecks.0.branch_3x3.conv.weight": (128, 128, 3, 3),
    "neck.projector.convs.1.bn.running_var": (256,),
    "neck.sincos_pos_enc.dim_t": (64,),
    "head.head_module.conv_pose.0.1.conv.weight": (144, 18, 3, 3),
    "head.head_module.out_pose.1.weight": (256, 144, 1, 1),
    "head.dcc.pose_to_kpts.1.running_mean": (2176,),
    "head.dcc.gau.uv.weight": (640, 128),
    "head.dcc.x_bins": (192,),
    "head.dcc.sigma_fc.2.scale": (),
    "head.loss_oks.sigmas": (17,),
}


def rtmo_cfg(size: str = "s", side: int = 640, topk: int = 300):
    return humanpose.get_cfg(f"experiments/coco/rtmo/rtmo_{size}_640x640.yaml",
                             ["MODEL.IMAGE_SIZE", [side, side], "MODEL.RTMO.TOPK", topk])


@pytest.mark.parametrize("size", ["s", "m", "l"])
def test_parameter_counts_are_mmposes(size):
    model = humanpose.build_model(rtmo_cfg(size))
    assert sum(p.numel() for p in model.parameters()) == MMPOSE_PARAMS[size]
    assert len(model.state_dict()) == MMPOSE_KEYS[size]


def random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random weights (the constant buffers kept): a fresh model's near-zero predictors give
    every anchor the same score, and tied scores make the top-k order arbitrary."""
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(v.shape, generator=gen) * 0.05 if v.is_floating_point()
                and not k.endswith(("running_var", "dim_t", "bins", "sigmas")) else v.clone())
            for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def small():
    cfg = rtmo_cfg("s", side=320, topk=50)
    model = humanpose.build_model(cfg).eval()
    model.load_state_dict(random_state(model, 0))
    with torch.no_grad():  # scores spread apart: no near-ties for the top-k to break
        for conv in model.head.head_module.out_cls:
            conv.weight.mul_(40)
    return cfg, model


def test_mmpose_layout_checkpoint_loads_strictly(small, tmp_path):
    cfg, model = small
    state = model.state_dict()
    for key, shape in MMPOSE_KEY_SAMPLE.items():
        assert tuple(state[key].shape) == shape, key
    state = random_state(model, 1)
    path = tmp_path / "rtmo-s.pth"
    torch.save({"meta": {"dataset_meta": {"dataset_name": "coco"}}, "state_dict": state}, path)
    fresh = humanpose.build_model(cfg).eval()
    humanpose.load_checkpoint(fresh, path)
    for key, value in state.items():
        assert torch.equal(fresh.state_dict()[key], value), key
    x = torch.rand(1, 3, 320, 320) * 255
    with torch.no_grad():
        assert not torch.allclose(fresh(x), model(x))  # the weights did change something


def test_network_rows(small):
    cfg, model = small
    x = torch.rand(2, 3, 320, 320) * 255
    with torch.no_grad():
        rows = model(x)
    assert rows.shape == (2, 50, 5 + 3 * 17)
    scores = rows[..., 4]
    assert torch.all(scores[:, :-1] >= scores[:, 1:])  # best first
    assert torch.all((scores > 0) & (scores < 1)) and torch.all(rows[..., 56:] > 0)
    assert torch.all(rows[..., 2] > rows[..., 0]) and torch.all(rows[..., 3] > rows[..., 1])
    # The DCC of one anchor does not depend on the others: decoding the best row alone
    # (mmpose runs it on the NMS survivors only) gives the same key points.
    head = model.head
    with torch.no_grad():
        feats = model.neck(model.backbone(x[:1]))
        _, _, _, pose = head.head_module(feats)
        pose = head._flat(pose)[0]
        sizes = [tuple(f.shape[2:]) for f in head.head_module(feats)[0]]
        priors = head._priors(sizes, x)
        scores_all = head._flat(head.head_module(feats)[0]).sigmoid()[0, :, 0]
        best = int(scores_all.argmax())
        alone = head.dcc(pose[best:best + 1], rows[0, :1, :4], priors[best:best + 1, :2])
    torch.testing.assert_close(alone.reshape(-1), rows[0, 0, 5:39], rtol=1e-5, atol=1e-4)
    # Key points of the best anchor lie inside its box enlarged by mmpose's padding 1.25.
    box = rows[0, 0, :4]
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * 0.625
    xy = rows[0, 0, 5:39].reshape(17, 2)
    assert torch.all((xy >= centre - half - 1e-3) & (xy <= centre + half + 1e-3))


def test_preprocess_geometry_round_trip():
    image = np.full((100, 200, 3), 50, np.uint8)  # w 200, h 100: fits 640 wide, 320 high
    image[30, 150] = (10, 200, 250)
    batch, meta = preprocess(image, (640, 640))
    assert batch.shape == (1, 3, 640, 640) and batch.dtype == np.float32
    assert meta.center == (100.0, 50.0) and meta.scale == (200.0, 200.0)
    # Centred, not top-left: 160 rows of padding (114) above and below the picture.
    assert np.all(batch[0, :, :150] == 114) and np.all(batch[0, :, 490:] == 114)
    assert np.all(batch[0, :, 200:400, 20:100] == 50)
    # The marked pixel's centre: (x + 0.5 - 100) * 3.2 + 320 - 0.5 (pixel centres).
    x_in, y_in = (150 + 0.5 - 100) * 3.2 + 320 - 0.5, (30 + 0.5 - 50) * 3.2 + 320 - 0.5
    red = batch[0, 2]
    peak = np.unravel_index(np.argmax(red), red.shape)
    assert abs(peak[0] - y_in) <= 2 and abs(peak[1] - x_in) <= 2
    back = meta.to_image(np.array([[(150 - 100) * 3.2 + 320, (30 - 50) * 3.2 + 320]]))
    np.testing.assert_allclose(back, [[150, 30]], atol=1e-4)


def _row(box, score, k=17, seed=0):
    """A network row whose key points lie on a grid inside ``box``, visibility 0.5..0.9."""
    rng = np.random.default_rng(seed)
    x1, y1, x2, y2 = box
    pts = np.stack([rng.uniform(x1, x2, k), rng.uniform(y1, y2, k)], axis=1)
    return np.concatenate([box, [score], pts.reshape(-1), rng.uniform(0.5, 0.9, k)]
                          ).astype(np.float32), pts


def test_decode_crafted_people():
    # A 640x480 image in a 640x640 input: input y = image y + 80, x unchanged.
    _, meta = preprocess(np.zeros((480, 640, 3), np.uint8), (640, 640))
    assert meta == RTMOMeta((320.0, 240.0), (640.0, 640.0), (640, 640))
    a, a_pts = _row([100, 150, 200, 400], 0.9, seed=1)
    dup, _ = _row([104, 152, 203, 398], 0.8, seed=2)  # IoU with a ~0.93: suppressed
    b, b_pts = _row([300, 100, 420, 500], 0.6, seed=3)
    low, _ = _row([500, 200, 600, 400], 0.09, seed=4)  # below the 0.1 threshold
    edge, _ = _row([-30, 70, 60, 700], 0.3, seed=5)  # leaves the input: box clamped
    rows = np.stack([dup, low, b, edge, a])  # in no particular order
    boxes, kpts = decode(rows, meta, score_thr=0.1, nms_thr=0.65)
    assert boxes.shape == (3, 5) and kpts.shape == (3, 17, 3)
    np.testing.assert_allclose(boxes[:, 4], [0.9, 0.6, 0.3], rtol=1e-6)
    np.testing.assert_allclose(boxes[0, :4], [100, 70, 200, 320], atol=1e-4)
    np.testing.assert_allclose(boxes[1, :4], [300, 20, 420, 420], atol=1e-4)
    np.testing.assert_allclose(boxes[2, :4], [0, -10, 60, 560], atol=1e-4)  # clamped input
    np.testing.assert_allclose(kpts[0, :, :2], a_pts - [0, 80], atol=1e-4)
    np.testing.assert_allclose(kpts[1, :, :2], b_pts - [0, 80], atol=1e-4)
    np.testing.assert_allclose(kpts[0, :, 2], a[5 + 34:], rtol=1e-6)
    # No NMS (nms_thr 1): the duplicate stays; a high threshold keeps only a.
    assert len(decode(rows, meta, 0.1, 1.0)[0]) == 4
    assert len(decode(rows, meta, 0.7, 0.65)[0]) == 1
    assert decode(rows[:0], meta)[1].shape == (0, 17, 3)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                    reason="onnxruntime not installed")
def test_onnx_export_matches_torch(small, tmp_path):
    from humanpose.export import export_onnx
    from humanpose.runtime.sessions import OnnxRuntimeSession

    cfg, model = small
    path = tmp_path / "rtmo.onnx"
    export_onnx(model, cfg, path, output_names=("detections",), check=False)
    # All 500 anchors (top-k of all): the same rows whatever near-tied scores do to the order.
    every = copy.deepcopy(model)
    every.head.topk = 10_000
    every_path = tmp_path / "every.onnx"
    export_onnx(every, cfg, every_path, output_names=("detections",), check=False)
    x = (np.random.default_rng(1).random((2, 3, 320, 320)) * 255).astype(np.float32)
    with torch.no_grad():
        expect = every(torch.from_numpy(x)).numpy()
    got = OnnxRuntimeSession(every_path)(x)[0]
    assert got.shape == expect.shape == (2, 500, 56)
    for a, b in zip(got, expect):
        a, b = (r[np.lexsort((r[:, 1].round(2), r[:, 0].round(2)))] for r in (a, b))
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-2)
    # predict_rtmo runs an ONNX Runtime session as it runs the PyTorch model.
    image = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8)
    results = [predict_rtmo(run, image, (320, 320), score_thr=0.0, nms_thr=1.0)
               for run in (OnnxRuntimeSession(every_path),
                           lambda b: every(torch.from_numpy(b)))]
    (boxes_a, kpts_a), (boxes_b, kpts_b) = results
    assert len(boxes_a) == len(boxes_b) == 500 and kpts_a.shape == (500, 17, 3)
    order_a = np.lexsort((boxes_a[:, 1].round(2), boxes_a[:, 0].round(2)))
    order_b = np.lexsort((boxes_b[:, 1].round(2), boxes_b[:, 0].round(2)))
    np.testing.assert_allclose(boxes_a[order_a], boxes_b[order_b], rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(kpts_a[order_a], kpts_b[order_b], rtol=1e-3, atol=1e-2)


def test_runtime_decoder_needs_no_torch(tmp_path):
    code = (
        "import sys\n"
        "for name in ('torch', 'torchvision'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "from humanpose.runtime.rtmo import predict_rtmo\n"
        "rows = np.zeros((1, 4, 56), np.float32)\n"
        "rows[0, 0, :5] = [10, 10, 50, 90, 0.9]\n"
        "boxes, kpts = predict_rtmo(lambda b: rows, np.zeros((64, 64, 3), np.uint8), (64, 64))\n"
        "assert boxes.shape == (1, 5) and kpts.shape == (1, 17, 3), (boxes, kpts)\n"
        "assert sys.modules.get('torch') is None\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 0, done.stderr
