"""Heatmap decoding recovers known sub-pixel peaks; the flip test path is consistent."""

import numpy as np
import pytest
import torch

from humanpose.codecs import HeatmapCodec, decode_heatmaps, encode_gaussian, get_max_preds
from humanpose.data.geometry import PIXEL_STD
from humanpose.data.normalize import normalize_batch
from humanpose.predict import predict_outputs

W, H = 48, 64
# A crop whose heatmap pixels are image pixels: scale x 200 = heatmap width, centre = middle.
CENTER = np.array([[W / 2, H / 2]])
SCALE = np.array([[W / PIXEL_STD, H / PIXEL_STD]])


def gaussian(cx: float, cy: float, sigma: float = 2.0) -> np.ndarray:
    x, y = np.meshgrid(np.arange(W), np.arange(H))
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2)).astype(np.float32)


PEAKS = [(10.3, 20.7), (24.5, 31.2), (37.8, 50.05), (5.6, 5.4)]


@pytest.mark.parametrize("method,tolerance", [("argmax", 0.25 + 1e-6), ("softargmax", 0.25 + 1e-6),
                                              ("dark", 0.01)])
def test_decoders_recover_subpixel_peaks(method, tolerance):
    heatmaps = np.stack([gaussian(x, y) for x, y in PEAKS])[None]
    preds, conf = decode_heatmaps(heatmaps, CENTER, SCALE, method)
    err = np.abs(preds[0] - np.array(PEAKS))
    assert err.max() <= tolerance
    assert np.all(conf > 0.8)


def test_quarter_shift_moves_towards_the_higher_neighbour():
    hm = gaussian(20.3, 30.0)[None, None]
    raw, _ = decode_heatmaps(hm, CENTER, SCALE, "argmax", post_process=False)
    shifted, _ = decode_heatmaps(hm, CENTER, SCALE, "argmax", post_process=True)
    assert raw[0, 0].tolist() == pytest.approx([20.0, 30.0])
    assert shifted[0, 0].tolist() == pytest.approx([20.25, 30.0])


def test_heatmap_coordinates_map_to_the_image_crop():
    # A 2x larger crop centred at (100, 50): heatmap pixel (24, 32) is the crop centre.
    hm = gaussian(24, 32)[None, None]
    preds, _ = decode_heatmaps(hm, np.array([[100.0, 50.0]]), SCALE * 2, "argmax")
    assert preds[0, 0].tolist() == pytest.approx([100.0, 50.0], abs=1e-4)
    hm = gaussian(34, 32)[None, None]  # 10 heatmap px right = 20 image px
    preds, _ = decode_heatmaps(hm, np.array([[100.0, 50.0]]), SCALE * 2, "argmax")
    assert preds[0, 0].tolist() == pytest.approx([120.0, 50.0], abs=1e-4)


def test_argmax_of_non_positive_maps_is_zero():
    hm = -np.ones((1, 2, H, W), np.float32)
    preds, maxvals = get_max_preds(hm)
    assert np.all(preds == 0) and np.all(maxvals == -1)


def test_encode_decode_round_trip():
    joints = np.array([[40.0, 60.0, 0], [100.5, 130.25, 0], [180.0, 250.0, 0]])
    vis = np.ones((3, 3))
    target, weight = encode_gaussian(joints, vis, (192, 256), (48, 64), sigma=2)
    assert weight.ravel().tolist() == [1, 1, 1]
    center = np.array([[96.0, 128.0]])
    scale = np.array([[192 / PIXEL_STD, 256 / PIXEL_STD]])
    preds, _ = decode_heatmaps(target[None], center, scale, "dark")
    # Classic encoding rounds to the heatmap pixel (4 input px): within 2 px.
    assert np.abs(preds[0] - joints[:, :2]).max() <= 2.0 + 1e-6


def test_udp_encode_decode_is_unbiased():
    joints = np.array([[40.3, 61.7, 0], [100.5, 130.25, 0]])
    vis = np.ones((2, 3))
    target, _ = encode_gaussian(joints, vis, (192, 256), (48, 64), sigma=2, udp=True)
    center = np.array([[95.5, 127.5]])  # pixel-centre convention of UDP
    scale = np.array([[191 / PIXEL_STD, 255 / PIXEL_STD]])
    preds, _ = decode_heatmaps(target[None], center, scale, "dark", udp=True)
    assert np.abs(preds[0] - joints[:, :2]).max() < 0.1


def test_unknown_decoder_is_named():
    with pytest.raises(ValueError, match="'mean'"):
        decode_heatmaps(np.zeros((1, 1, 4, 4)), CENTER, SCALE, "mean")


def test_normalize_batch_matches_totensor_normalize_in_either_layout():
    img = torch.randint(0, 256, (2, 8, 6, 3), dtype=torch.uint8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = (img.permute(0, 3, 1, 2).float() / 255 - mean) / std
    assert torch.equal(normalize_batch(img), expected)
    assert torch.equal(normalize_batch(img.permute(0, 3, 1, 2)), expected)


def test_flip_test_averages_mirrored_prediction():
    class Mirror(torch.nn.Module):
        """Heatmap = first input channel; joint 0 is "left", joint 1 "right"."""

        def forward(self, x):
            return torch.stack([x[:, 0], x[:, 0] * 0.5], dim=1)

    x = torch.rand(1, 3, 4, 6)
    codec = HeatmapCodec((6, 4), (6, 4), sigma=1.0)
    out = predict_outputs(Mirror(), x, codec, flip_pairs=[(0, 1)])
    # Flipped pass: joint 0 <- joint 1 of the mirrored image, mirrored back.
    assert torch.allclose(out[0, 0], (x[0, 0] + x[0, 0] * 0.5) / 2)
    assert torch.allclose(out[0, 1], (x[0, 0] * 0.5 + x[0, 0]) / 2)
    shifting = HeatmapCodec((6, 4), (6, 4), sigma=1.0, flip_shift=True)
    shifted = predict_outputs(Mirror(), x, shifting, flip_pairs=[(0, 1)])
    # UDP's flip is aligned: the seed's shift is never applied with it.
    udp = HeatmapCodec((6, 4), (6, 4), sigma=1.0, udp=True, flip_shift=True)
    assert torch.equal(predict_outputs(Mirror(), x, udp, flip_pairs=[(0, 1)]), out)
    assert torch.allclose(shifted[0, 0, :, 1:], (x[0, 0, :, 1:] + x[0, 0, :, :-1] * 0.5) / 2)


# ----------------------------------------------------------------------------- the codec seam
from humanpose.codecs import SimCCCodec, build_codec, codec_from_meta  # noqa: E402
from humanpose.config import get_cfg  # noqa: E402

INPUT = (192, 256)
KEYPOINTS = np.array([[30.3, 40.7], [96.0, 128.0], [150.26, 201.9], [160.0, 220.5]])


@pytest.mark.parametrize("decoder,udp,tolerance", [
    # the seed's targets sit on whole heatmap pixels (4 input pixels): half of one at most
    ("argmax", False, 4 * 0.5 + 1e-6),
    ("softargmax", False, 4 * 0.5 + 1e-6),
    ("dark", False, 4 * 0.5 + 1e-6),
    ("dark", True, 0.05),  # UDP's targets are sub-pixel, and DARK finds them
])
def test_heatmap_codec_round_trip_in_crop_pixels(decoder, udp, tolerance):
    codec = HeatmapCodec(INPUT, (48, 64), sigma=2, udp=udp, decoder=decoder)
    target, weight = codec.encode(KEYPOINTS, np.ones(len(KEYPOINTS)))
    assert target.shape == (4, 64, 48) and weight.shape == (4, 1)
    coords, scores = codec.decode(torch.from_numpy(target[None]))
    assert coords.shape == (1, 4, 2) and scores.shape == (1, 4)
    err = np.abs(coords[0] - KEYPOINTS).max()
    assert err <= tolerance, (decoder, udp, err)
    assert np.all(scores > 0.5)


def test_heatmap_codec_equals_the_image_space_decoder():
    """Crop pixels through the geometry give what decoding straight to the image gave."""
    from humanpose.predict import decode_to_image

    codec = HeatmapCodec(INPUT, (48, 64), sigma=2, decoder="argmax", post_process=True)
    rng = np.random.default_rng(0)
    hm = rng.random((3, 17, 64, 48)).astype(np.float32)
    centers = np.array([[100.0, 80.0], [300.5, 200.25], [50.0, 60.0]])
    scales = np.array([[1.2, 1.6], [0.5, 0.6667], [2.0, 2.6667]])
    ref, conf = decode_heatmaps(hm, centers, scales, "argmax", post_process=True)
    got = decode_to_image(codec, torch.from_numpy(hm), centers, scales)
    assert np.abs(got[..., :2] - ref).max() < 1e-3
    assert np.array_equal(got[..., 2], conf[..., 0])


def test_simcc_codec_round_trip_to_one_bin():
    codec = SimCCCodec(INPUT, sigma=(4.9, 5.66), split_ratio=2.0)
    tx, ty, weight = codec.encode(KEYPOINTS, np.ones(len(KEYPOINTS)))
    assert tx.shape == (4, 384) and ty.shape == (4, 512)
    assert np.array_equal(weight, np.ones(4, np.float32))
    assert tx.max() == pytest.approx(1.0)  # normalize=False: peaks of 1, as mmpose's labels
    coords, scores = codec.decode((torch.from_numpy(tx[None]), torch.from_numpy(ty[None])))
    assert np.abs(coords[0] - KEYPOINTS).max() <= 0.5 / codec.split_ratio + 1e-9
    assert np.allclose(scores, 1.0)


def test_simcc_codec_weights_and_scores():
    codec = SimCCCodec(INPUT, sigma=(4.9, 5.66))
    far = np.array([[-100.0, 10.0], [20.0, 30.0], [30.0, 40.0]])
    tx, ty, weight = codec.encode(far, np.array([1.0, 0.0, 1.0]))
    assert weight.tolist() == [0.0, 0.0, 1.0]  # outside the vectors; invisible
    assert not tx[:2].any() and not ty[:2].any()
    # score = the smaller maximum; non-positive scores give location -1 (mmpose)
    x = np.full((1, 2, 384), -1.0, np.float32)
    y = np.full((1, 2, 512), -1.0, np.float32)
    x[0, 0, 100], y[0, 0, 50] = 0.9, 0.4
    x[0, 1, 10], y[0, 1, 20] = -0.1, 0.3
    coords, scores = codec.decode((x, y))
    assert scores[0].tolist() == pytest.approx([0.4, -0.1])
    assert coords[0, 0].tolist() == [50.0, 25.0] and coords[0, 1].tolist() == [-0.5, -0.5]


def test_simcc_flip_test_on_a_symmetric_input():
    """A network that sees mirrored people consistently (joint j's x vector is image row j
    upsampled to 2 bins per pixel; both joints' rows equal): the flip test gives back its
    plain prediction exactly, and flip_back swaps the pairs and reverses x only."""
    codec = SimCCCodec((8, 8), sigma=1.0, split_ratio=2.0)

    class RowNet(torch.nn.Module):
        def forward(self, x):
            rows = x[:, 0, :2, :]  # (N, 2 joints, W)
            sx = rows.repeat_interleave(2, dim=-1)
            column = x[:, 1].sum(dim=-1)  # (N, H): unchanged by mirroring, as y must be
            sy = torch.stack([column, column], dim=1).repeat_interleave(2, dim=-1)
            return sx, sy

    x = torch.zeros(1, 3, 8, 8)
    row = torch.rand(8)
    x[0, 0, 0] = x[0, 0, 1] = row
    x[0, 1] = torch.rand(8, 8)
    plain = RowNet()(x)
    tested = predict_outputs(RowNet(), x, codec, flip_pairs=[(0, 1)])
    assert torch.allclose(tested[0], plain[0]) and torch.allclose(tested[1], plain[1])
    vx = torch.arange(2 * 16, dtype=torch.float32).reshape(1, 2, 16)
    vy = torch.arange(2 * 4, dtype=torch.float32).reshape(1, 2, 4)
    bx, by = codec.flip_back((vx, vy), [(0, 1)])
    assert torch.equal(bx[0, 0], vx[0, 1].flip(0)) and torch.equal(bx[0, 1], vx[0, 0].flip(0))
    assert torch.equal(by[0, 0], vy[0, 1]) and torch.equal(by[0, 1], vy[0, 0])


def test_codec_from_config_and_metadata():
    cfg = get_cfg("experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml")
    codec = build_codec(cfg)
    assert codec.name == "heatmap" and codec.output_names == ("heatmaps",)
    assert codec_from_meta(codec.meta()).meta() == codec.meta()
    cfg.defrost()
    cfg.MODEL.CODEC = "simcc"
    simcc = build_codec(cfg)
    assert simcc.output_names == ("simcc_x", "simcc_y")
    assert simcc.sigma.tolist() == [4.9, 5.66]  # mmpose's for 192x256
    assert codec_from_meta(simcc.meta()).meta() == simcc.meta()
    cfg.MODEL.CODEC = "nope"
    with pytest.raises(ValueError, match="MODEL.CODEC must be one of"):
        build_codec(cfg)


@pytest.mark.parametrize("key", ["DATASET.UDP", "TEST.USE_UDP", "MODEL.USE_UDP"])
def test_udp_switch_turns_off_the_seed_flip_shift(key):
    cfg = get_cfg("experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml",
                  ["TEST.SHIFT_HEATMAP", "True", key, "True"])
    assert cfg.DATASET.UDP
    codec = build_codec(cfg)
    assert codec.udp and not codec.flip_shift
    plain = build_codec(get_cfg("experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml",
                                ["TEST.SHIFT_HEATMAP", "True"]))
    assert not plain.udp and plain.flip_shift
