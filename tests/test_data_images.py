"""Bad input: missing and corrupt images, the skip switch, grayscale, RGBA and EXIF."""

import json
import shutil
import struct

import cv2
import numpy as np
import pytest

from humanpose.data import BadImageError, BadImageWarning, build_dataset
from humanpose.data.images import read_image

from .test_data_common import MEAN, STD, data_cfg, write_small_coco


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_images")
    write_small_coco(root, num_train=4, num_val=2, seed=7)
    return root


@pytest.fixture
def root(pristine, tmp_path):
    dst = tmp_path / "coco"
    shutil.copytree(pristine, dst)
    return dst


def test_missing_image_raises_naming_it(root):
    ds = build_dataset(data_cfg(root), is_train=True)
    path = ds.records.image_files[0]
    (root / "images" / "train2017" / path.split("/")[-1]).unlink()
    with pytest.raises(BadImageError, match="image not found") as err:
        ds[0]
    assert path in str(err.value)


def test_corrupt_image_raises_naming_it(root):
    ds = build_dataset(data_cfg(root), is_train=False)
    path = ds.records.image_files[0]
    with open(path, "wb") as f:
        f.write(b"not a jpeg at all")
    with pytest.raises(BadImageError, match="cannot decode") as err:
        ds[0]
    assert path in str(err.value)


def test_skip_switch_skips_and_counts_in_a_warning(root):
    ds = build_dataset(data_cfg(root, "DATASET.SKIP_BAD_IMAGES", "True"), is_train=False)
    bad = ds.records.image_files[0]
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8broken")
    with pytest.warns(BadImageWarning, match=r"1 unreadable image\(s\)") as record:
        image, target, weight, meta = ds[0]
    assert bad in str(record[0].message) and "SKIP_BAD_IMAGES" in str(record[0].message)
    # a test sample keeps its own slot, marked missing, so no other person fills it
    assert meta["index"] == 0 and meta["image"] == bad and meta["missing"]
    assert ds.bad_images == {bad}
    # a training set takes the next readable sample instead
    train = build_dataset(data_cfg(root, "DATASET.SKIP_BAD_IMAGES", "True"), is_train=True)
    bad_train = train.records.image_files[0]
    with open(bad_train, "wb") as f:
        f.write(b"\xff\xd8broken")
    first_good = next(i for i in range(len(train))
                      if train.records.image_files[i] != bad_train)
    with pytest.warns(BadImageWarning):
        meta = train[0][3]
    assert meta["index"] == first_good and not meta["missing"]


def _write_as(root, ds, index, image, suffix):
    """Replace the image of record ``index`` by ``image`` saved with ``suffix``."""
    old = ds.records.image_files[index]
    new = old.rsplit(".", 1)[0] + suffix
    cv2.imwrite(new, image)
    ann = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(ann.read_text())
    name = old.split("/")[-1]
    for im in data["images"]:
        if im["file_name"] == name:
            im["file_name"] = new.split("/")[-1]
    ann.write_text(json.dumps(data))
    return new


def _unnormalise(image):
    x = image.numpy() * STD[:, None, None] + MEAN[:, None, None]
    return np.round(x * 255)


def test_grayscale_image_gives_three_equal_channels(root):
    ds = build_dataset(data_cfg(root), is_train=False)
    colour = cv2.imread(ds.records.image_files[0])
    _write_as(root, ds, 0, cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), ".png")
    ds = build_dataset(data_cfg(root), is_train=False)
    image = _unnormalise(ds[0][0])
    assert image.shape == (3, 64, 48)
    assert (image[0] == image[1]).all() and (image[1] == image[2]).all() and image.std() > 0


def test_rgba_image_drops_alpha(root):
    ds = build_dataset(data_cfg(root), is_train=False)
    expected = ds[0][0]
    colour = cv2.imread(ds.records.image_files[0])
    rgba = cv2.cvtColor(colour, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = np.random.default_rng(0).integers(0, 256, rgba.shape[:2])
    _write_as(root, ds, 0, rgba, ".png")
    ds = build_dataset(data_cfg(root), is_train=False)
    assert ds.records.image_files[0].endswith(".png")
    image = ds[0][0]
    assert image.shape == (3, 64, 48)
    np.testing.assert_array_equal(image.numpy(), expected.numpy())  # same pixels as the JPEG


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 Exif segment holding only an Orientation tag after the SOI marker."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_orientation_is_ignored(tmp_path):
    image = np.zeros((30, 50, 3), dtype=np.uint8)
    image[:, :25] = 255
    ok, jpeg = cv2.imencode(".jpg", image)
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_with_exif_orientation(jpeg.tobytes(), 6))  # "rotate 90 degrees"
    assert cv2.imread(str(path)).shape[:2] == (50, 30)  # OpenCV would rotate it...
    out = read_image(str(path))
    assert out.shape == (30, 50, 3)  # ...the pipeline reads the stored pixels, as the seed
    assert out[:, :20].mean() > 200 and out[:, 30:].mean() < 50
