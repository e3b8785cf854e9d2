"""DATASET.DATA_FORMAT zip (the seed's images/<set>.zip@/<file>) and truncated images."""

import os
import random
import shutil
import warnings
import zipfile

import cv2
import numpy as np
import pytest
import torch

from humanpose.data import BadImageError, BadImageWarning, build_dataset
from humanpose.data import images as images_module
from humanpose.data.images import read_image, split_zip_path
from humanpose.data.synthetic import write_mpii_set

from .test_data_common import SMALL, data_cfg, write_small_coco


def _zip_folder(folder, zip_path, prefix=""):
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(os.listdir(folder)):
            z.write(os.path.join(folder, name), prefix + name)


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_zip")
    write_small_coco(root, num_train=4, num_val=3, seed=2)
    for image_set in ("train2017", "val2017"):
        _zip_folder(root / "images" / image_set, root / "images" / f"{image_set}.zip")
    return root


def _samples(ds, seed):
    out = []
    for i in range(len(ds)):
        np.random.seed(seed + i)
        random.seed(seed + i)
        out.append(ds[i])
    return out


def _assert_same(a, b):
    assert len(a) == len(b) > 0
    for (img_a, tgt_a, w_a, meta_a), (img_b, tgt_b, w_b, meta_b) in zip(a, b):
        assert np.array_equal(img_a, img_b) and np.array_equal(tgt_a, tgt_b)
        assert np.array_equal(w_a, w_b)
        assert np.array_equal(meta_a["joints"], meta_b["joints"])
        assert meta_a["flipped"] == meta_b["flipped"]


@pytest.mark.parametrize("is_train", [True, False])
def test_coco_zip_gives_the_folders_samples(coco_root, is_train):
    folder = build_dataset(data_cfg(coco_root), is_train=is_train)
    zipped = build_dataset(data_cfg(coco_root, "DATASET.DATA_FORMAT", "zip"), is_train=is_train)
    image_set = "train2017" if is_train else "val2017"
    first = str(zipped.records.image_files[0])
    assert first.startswith(str(coco_root / "images" / f"{image_set}.zip@/"))  # the seed's
    _assert_same(_samples(folder, 7), _samples(zipped, 7))


def test_coco_zip_fast_mode_reduced_decode(coco_root):
    opts = ("DATASET.FAST_MODE", "True")
    folder = build_dataset(data_cfg(coco_root, *opts), is_train=True)
    zipped = build_dataset(data_cfg(coco_root, "DATASET.DATA_FORMAT", "zip", *opts),
                           is_train=True)
    _assert_same(_samples(folder, 3), _samples(zipped, 3))


def test_mpii_zip_gives_the_folders_samples(tmp_path):
    write_mpii_set(str(tmp_path), num_train=3, num_val=2, seed=4, cfg=SMALL)
    _zip_folder(tmp_path / "images", tmp_path / "images.zip", prefix="images/")  # in a folder
    opts = ["DATASET.DATASET", "mpii", "DATASET.TRAIN_SET", "train", "DATASET.TEST_SET",
            "valid", "MODEL.NUM_JOINTS", "16"]
    folder = build_dataset(data_cfg(tmp_path, *opts), is_train=True)
    zipped = build_dataset(data_cfg(tmp_path, *opts, "DATASET.DATA_FORMAT", "zip"),
                           is_train=True)
    _assert_same(_samples(folder, 1), _samples(zipped, 1))


def test_one_zip_handle_per_process(coco_root, monkeypatch):
    path = str(coco_root / "images" / "val2017.zip@/") + sorted(
        os.listdir(coco_root / "images" / "val2017"))[0]
    zip_path, member = split_zip_path(path)
    read_image(path)
    read_image(path)
    mine = images_module._ZIP_HANDLES[(zip_path, os.getpid())]
    monkeypatch.setattr(images_module.os, "getpid", lambda: -12345)  # as in a worker
    read_image(path)
    assert images_module._ZIP_HANDLES[(zip_path, -12345)] is not mine
    with pytest.raises(BadImageError, match="nope.jpg"):
        read_image(zip_path + "@/nope.jpg")


def test_zip_missing_is_named(coco_root, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(coco_root, root)
    os.remove(root / "images" / "train2017.zip")
    with pytest.raises(Exception, match=r"train2017\.zip"):
        build_dataset(data_cfg(root, "DATASET.DATA_FORMAT", "zip"), is_train=True)


# ----------------------------------------------------------------------------- truncated
def _truncate(path, keep=0.6):
    data = open(path, "rb").read()
    open(path, "wb").write(data[:int(len(data) * keep)])


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_images_are_bad(tmp_path, ext):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    path = str(tmp_path / f"a{ext}")
    cv2.imwrite(path, image)
    assert read_image(path).shape == (64, 80, 3)
    _truncate(path)
    assert cv2.imread(path) is not None or ext == ".png"  # OpenCV alone would not notice
    with pytest.raises(BadImageError, match=f"truncated.*a{ext}"):
        read_image(path)


def test_truncated_jpeg_is_skipped_like_other_bad_images(coco_root, tmp_path):
    root = tmp_path / "coco"
    shutil.copytree(coco_root, root)
    ds = build_dataset(data_cfg(root), is_train=False)
    bad = str(ds.records.image_files[0])
    _truncate(bad)
    with pytest.raises(BadImageError, match="truncated"):
        ds[0]
    ds = build_dataset(data_cfg(root, "DATASET.SKIP_BAD_IMAGES", "True"), is_train=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds[0]
    assert any(issubclass(w.category, BadImageWarning) and bad in str(w.message)
               for w in record)


# ----------------------------------------------------------------------------- bad slots
class _PeakAtImageMean(torch.nn.Module):
    """Heatmaps whose peak moves with the crop's brightness: each person's prediction
    depends on its own crop, so a prediction in the wrong slot would show."""

    def forward(self, x):
        n = x.shape[0]
        maps = torch.zeros(n, 16, 16, 12)
        col = ((x.mean(dim=(1, 2, 3)) + 3) * 2).long().clamp(0, 11)
        for i in range(n):
            maps[i, :, 8, col[i]] = 1.0
        return maps


def test_mpii_bad_image_keeps_its_slot(tmp_path):
    from humanpose.engine.distributed import Dist
    from humanpose.pose.evaluate import predict_dataset, score_predictions

    write_mpii_set(str(tmp_path), num_train=2, num_val=5, seed=8, cfg=SMALL)
    opts = ["DATASET.DATASET", "mpii", "DATASET.TRAIN_SET", "train", "DATASET.TEST_SET",
            "valid", "MODEL.NUM_JOINTS", "16", "DATASET.SKIP_BAD_IMAGES", "True",
            "TEST.BATCH_SIZE_PER_GPU", "2"]
    cfg = data_cfg(tmp_path, *opts)
    model = _PeakAtImageMean()
    good = predict_dataset(model, build_dataset(cfg, is_train=False), cfg, Dist(),
                           show_progress=False)
    ds = build_dataset(cfg, is_train=False)
    bad = 2
    _truncate(str(ds.records.image_files[bad]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadImageWarning)
        preds = predict_dataset(model, ds, cfg, Dist(), show_progress=False)
    assert np.isnan(preds.keypoints[bad, :, :2]).all()
    others = [i for i in range(len(ds)) if ds.records.image_files[i]
              != ds.records.image_files[bad]]
    assert np.array_equal(preds.keypoints[others], good.keypoints[others])
    values, _, _ = score_predictions(cfg, ds, preds, tmp_path / "out", "test")
    assert np.isfinite(values["Mean"])
