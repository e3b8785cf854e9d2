"""Heatmap decoding recovers known sub-pixel peaks; the flip test path is consistent."""

import numpy as np
import pytest
import torch

from humanpose.codecs import decode_heatmaps, encode_gaussian, get_max_preds
from humanpose.data.geometry import PIXEL_STD
from humanpose.predict import normalize_uint8, predict_heatmaps

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


def test_normalize_uint8_matches_totensor_normalize():
    img = torch.randint(0, 256, (2, 8, 6, 3), dtype=torch.uint8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = (img.permute(0, 3, 1, 2).float() / 255 - mean) / std
    assert torch.equal(normalize_uint8(img), expected)


def test_flip_test_averages_mirrored_prediction():
    class Mirror(torch.nn.Module):
        """Heatmap = first input channel; joint 0 is "left", joint 1 "right"."""

        def forward(self, x):
            return torch.stack([x[:, 0], x[:, 0] * 0.5], dim=1)

    x = torch.rand(1, 3, 4, 6)
    out = predict_heatmaps(Mirror(), x, flip_pairs=[(0, 1)])
    # Flipped pass: joint 0 <- joint 1 of the mirrored image, mirrored back.
    assert torch.allclose(out[0, 0], (x[0, 0] + x[0, 0] * 0.5) / 2)
    assert torch.allclose(out[0, 1], (x[0, 0] * 0.5 + x[0, 0]) / 2)
    shifted = predict_heatmaps(Mirror(), x, flip_pairs=[(0, 1)], shift_heatmap=True)
    assert torch.allclose(shifted[0, 0, :, 1:], (x[0, 0, :, 1:] + x[0, 0, :, :-1] * 0.5) / 2)
