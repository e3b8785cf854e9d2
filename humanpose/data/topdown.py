"""The top-down sample pipeline: read image → augment → crop → encode targets.

One implementation serves every data set (COCO, custom COCO-format sets, MPII): a loader
turns annotation files into :class:`Records` (one row per person, as NumPy arrays) and
:class:`TopDownDataset` turns a row into ``(image, target, target_weight, meta)`` as the
seed's ``JointsDataset`` does: the same random draws in the same order from the same
generators (``np.random`` and ``random``), the same Gaussian targets and weights, and the
same crop within one grey level.

Where the seed is slow, this module gets the same numbers another way (about 1.6x the
seed's samples/s; see benchmarks/RESULTS.md): records are sliced, not deep-copied; only
the image region that the crop samples is mirrored and warped, the mirror by ``cv2.flip``
instead of a negative-stride view that OpenCV copies element by element; the warp runs on
4 channels, OpenCV's vectorised case; ``COLOR_RGB`` picks channels of the crop instead of
converting the whole image; joints are mapped in one matrix product; and ToTensor +
Normalize become one table look-up per channel (the table holds the values torch computes).

``DATASET.FAST_MODE`` changes two things, both documented in :class:`SampleOptions`.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from humanpose.codecs import Codec, HeatmapCodec, build_codec
from humanpose.data.augment import RTMPoseAugment, half_body_box_rtmpose, photometric, random_box
from humanpose.data.geometry import (
    PIXEL_STD,
    affine_points,
    flip_joints,
    get_affine_transform,
    get_udp_transform,
    warp_crop,
)
from humanpose.data.images import REDUCED_FACTORS, BadImageError, BadImageWarning, read_image
from humanpose.data.keypoints import KeypointSet
from humanpose.data.normalize import IMAGENET_MEAN, IMAGENET_STD, normalize_batch

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Records",
    "SampleOptions",
    "TopDownDataset",
    "half_body_box",
    "normalize_batch",
    "select_data",
]


# ----------------------------------------------------------------------------- records
@dataclass
class Records:
    """The people of a data set as parallel arrays, one row per person (sample).

    Arrays instead of a list of dicts: no per-item deep copy, and no Python objects whose
    reference counts would make forked loader workers copy the whole list.
    """

    image_files: np.ndarray  # (N,) str, full paths
    image_ids: np.ndarray  # (N,) int64
    centers: np.ndarray  # (N, 2) crop centres in pixels (float32 for COCO as in the seed)
    scales: np.ndarray  # (N, 2) crop (w, h) in units of PIXEL_STD
    joints: np.ndarray  # (N, K, 3) float64, x, y, 0
    joints_vis: np.ndarray  # (N, K, 3) float64, v, v, 0 with v in {0, 1}
    scores: np.ndarray  # (N,) float64: 1 for ground truth, the detector's score otherwise
    image_sizes: np.ndarray  # (N, 2) int64 (width, height); 0 where unknown

    def __len__(self) -> int:
        return len(self.image_ids)

    def subset(self, index: np.ndarray) -> Records:
        """The rows chosen by a boolean mask or an index array."""
        return Records(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def from_rows(cls, image_files: Sequence[str], image_ids: Sequence[int],
                  centers: Sequence[np.ndarray], scales: Sequence[np.ndarray],
                  joints: np.ndarray, joints_vis: np.ndarray, scores: Sequence[float],
                  image_sizes: Sequence[Sequence[int]], center_dtype=np.float32) -> Records:
        """Stack per-person values; ``joints``/``joints_vis`` are ``(N, K, 3)`` already."""
        n, k = joints.shape[:2]
        return cls(
            image_files=np.array(list(image_files), dtype=str).reshape(n),
            image_ids=np.array(image_ids, dtype=np.int64).reshape(n),
            centers=np.array(centers, dtype=center_dtype).reshape(n, 2),
            scales=np.array(scales, dtype=center_dtype).reshape(n, 2),
            joints=np.asarray(joints, dtype=np.float64).reshape(n, k, 3),
            joints_vis=np.asarray(joints_vis, dtype=np.float64).reshape(n, k, 3),
            scores=np.array(scores, dtype=np.float64).reshape(n),
            image_sizes=np.array(image_sizes, dtype=np.int64).reshape(n, 2),
        )


def select_data(records: Records) -> Records:
    """The seed's ``DATASET.SELECT_DATA``: keep people whose visible joints are centred in
    their box, more strictly the more joints are visible (an OKS-like test)."""
    vis = records.joints_vis[:, :, 0] > 0
    num_vis = vis.sum(axis=1)
    # The seed adds the visible coordinates one by one; a cumulative sum keeps that order.
    xs = np.cumsum(np.where(vis, records.joints[:, :, 0], 0.0), axis=1)[:, -1]
    ys = np.cumsum(np.where(vis, records.joints[:, :, 1], 0.0), axis=1)[:, -1]
    safe = np.maximum(num_vis, 1)
    joints_center = np.stack([xs / safe, ys / safe], axis=1)
    area = records.scales[:, 0] * records.scales[:, 1] * (PIXEL_STD ** 2)
    dist = np.linalg.norm(joints_center - records.centers, axis=1)
    ks = np.exp(-1.0 * dist ** 2 / ((0.2) ** 2 * 2.0 * area))
    metric = (0.2 / 16) * num_vis + 0.45 - 0.2 / 16
    return records.subset((num_vis > 0) & (ks > metric))


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class SampleOptions:
    """The config values the sample pipeline reads (``MODEL.*``, ``DATASET.*``, ``LOSS.*``).

    ``fast_mode`` (``DATASET.FAST_MODE``) changes two things and nothing else:

    * images come out as uint8 ``(H, W, 3)`` tensors (channels last, in the network's
      channel order); the consumer calls :func:`normalize_batch` on the device, which gives
      bit for bit the float images of the exact mode (4x less data to collate, pin, copy);
    * when the crop shrinks the image by a factor of 2, 4 or 8 or more (``scale * 200 /
      image width``), the JPEG is decoded at that reduced resolution (libjpeg's DCT
      scaling) and the affine map adjusted, so those crops are slightly smoother than
      the exact mode's. Targets, weights and meta are identical in both modes.
    """

    image_size: tuple[int, int]  # (w, h) of the network input
    heatmap_size: tuple[int, int]  # (w, h)
    sigma: float
    scale_factor: float = 0.25
    rotation_factor: float = 30.0
    flip: bool = True
    prob_half_body: float = 0.0
    num_joints_half_body: int = 8
    color_rgb: bool = False
    use_different_joints_weight: bool = False
    udp: bool = False
    skip_bad_images: bool = False
    fast_mode: bool = False
    codec: Codec | None = None  # None: the seed's Gaussian heatmaps of the sizes above
    # DATASET.AUG_STYLE "rtmpose": its two stages, and the epoch of the switch (-1: none)
    rtmpose_aug: tuple[RTMPoseAugment, RTMPoseAugment] | None = None
    stage2_epoch: int = -1

    @classmethod
    def from_cfg(cls, cfg) -> SampleOptions:
        d = cfg.DATASET
        codec = build_codec(cfg)
        if codec.name == "heatmap" and cfg.MODEL.TARGET_TYPE != "gaussian":
            raise ValueError(f"MODEL.TARGET_TYPE {cfg.MODEL.TARGET_TYPE!r} is not supported; "
                             "expected 'gaussian' (as in the seed)")
        return cls(
            image_size=(int(cfg.MODEL.IMAGE_SIZE[0]), int(cfg.MODEL.IMAGE_SIZE[1])),
            heatmap_size=(int(cfg.MODEL.HEATMAP_SIZE[0]), int(cfg.MODEL.HEATMAP_SIZE[1])),
            sigma=cfg.MODEL.SIGMA,
            scale_factor=d.SCALE_FACTOR,
            rotation_factor=d.ROT_FACTOR,
            flip=d.FLIP,
            prob_half_body=d.PROB_HALF_BODY,
            num_joints_half_body=d.NUM_JOINTS_HALF_BODY,
            color_rgb=d.COLOR_RGB,
            use_different_joints_weight=cfg.LOSS.USE_DIFFERENT_JOINTS_WEIGHT,
            udp=d.UDP,
            skip_bad_images=d.SKIP_BAD_IMAGES,
            fast_mode=d.FAST_MODE,
            codec=codec,
            **_augment_options(cfg),
        )

    @property
    def aspect_ratio(self) -> float:
        return self.image_size[0] * 1.0 / self.image_size[1]


def _augment_options(cfg) -> dict:
    """SampleOptions' fields for DATASET.AUG_STYLE (none for the seed's)."""
    style = cfg.DATASET.AUG_STYLE.lower()
    if style == "seed":
        return {}
    if style != "rtmpose":
        raise ValueError(f"DATASET.AUG_STYLE must be 'seed' or 'rtmpose', "
                         f"got {cfg.DATASET.AUG_STYLE!r}")
    stage2 = cfg.TRAIN.STAGE2_EPOCHS
    return {"rtmpose_aug": RTMPoseAugment.stages_from_cfg(cfg),
            "stage2_epoch": cfg.TRAIN.END_EPOCH - stage2 if stage2 > 0 else -1}


# ----------------------------------------------------------------------------- normalise
def _normalization_table() -> np.ndarray:
    """(3, 256) float32: ToTensor + Normalize of every uint8 value, computed by torch's own
    ops so that a look-up equals the seed's transform bit for bit."""
    values = torch.arange(256, dtype=torch.float32).div(255)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None]
    return ((values[None] - mean) / std).numpy()


# ----------------------------------------------------------------------------- augmentation
def half_body_box(joints: np.ndarray, joints_vis: np.ndarray, upper_body: np.ndarray,
                  aspect_ratio: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The seed's half-body crop: centre and scale around the visible upper or lower body.

    Draws one ``np.random.randn()`` (the seed compares it with 0.5, so the upper body is
    chosen about 69% of the time when it has more than two visible joints).
    """
    vis = joints_vis[:, 0] > 0
    upper = joints[vis & upper_body]
    lower = joints[vis & ~upper_body]
    if np.random.randn() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None
    selected = np.asarray(selected, dtype=np.float32)
    center = selected.mean(axis=0)[:2]
    left_top = np.amin(selected, axis=0)
    right_bottom = np.amax(selected, axis=0)
    w = right_bottom[0] - left_top[0]
    h = right_bottom[1] - left_top[1]
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w * 1.0 / PIXEL_STD, h * 1.0 / PIXEL_STD], dtype=np.float32)
    return center, scale * 1.5


# Fast mode decodes at 1/f of the resolution when the crop shrinks the image by at least
# f * FAST_DECODE_RATIO: with 0.5 the reduced image is magnified at most 2x by the warp.
FAST_DECODE_RATIO = 0.5


def _reduce_factor(scale_w: float, crop_w: int) -> int:
    """The JPEG decode reduction (1, 2, 4 or 8) for a crop ``scale_w * 200`` pixels wide."""
    ratio = scale_w * PIXEL_STD / crop_w
    for factor in REDUCED_FACTORS:
        if ratio >= factor * FAST_DECODE_RATIO:
            return factor
    return 1


def _compose(trans: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """``trans ∘ pre`` for two 2x3 affine matrices."""
    out = trans[:, :2].astype(np.float64) @ pre[:, :2]
    return np.concatenate([out, trans[:, :2] @ pre[:, 2:] + trans[:, 2:]], axis=1)


def _warp_region(image: np.ndarray, trans: np.ndarray, size: Sequence[int],
                 mirror: bool) -> np.ndarray:
    """``warp_crop`` of the BGRA version of ``image`` (mirrored when asked) into an
    ``(H, W, 4)`` crop, touching only the part of the image that the crop samples.

    Equal to warping the whole (mirrored) image within one grey level (OpenCV's warp rounds
    the shifted matrix slightly differently): mirroring, adding the alpha plane and the
    warp's memory traffic shrink with the region. The alpha plane is there because
    OpenCV's bilinear warp is vectorised for 4 channels but not for 3 (2.5x faster).
    """
    h, w = image.shape[:2]
    inverse = cv2.invertAffineTransform(trans.astype(np.float64))
    corners = np.array([[0.0, 0.0], [size[0], 0.0], [0.0, size[1]], [size[0], size[1]]])
    src = affine_points(corners, inverse)
    # 2 pixels of margin: bilinear sampling reads the pixel after the sample position.
    (lx, ly), (hx, hy) = np.floor(src.min(axis=0)), np.ceil(src.max(axis=0))
    x0, y0 = max(int(lx) - 2, 0), max(int(ly) - 2, 0)
    x1, y1 = min(int(hx) + 3, w), min(int(hy) + 3, h)
    if x0 >= x1 or y0 >= y1:  # the crop lies wholly outside the image
        return np.zeros((int(size[1]), int(size[0]), 4), dtype=np.uint8)
    if mirror:  # columns [x0, x1) of the mirrored image are [w - x1, w - x0) mirrored
        part = cv2.flip(image[y0:y1, w - x1:w - x0], 1)
    else:
        part = image[y0:y1, x0:x1]
    shifted = trans.astype(np.float64)  # the same map, from the region's pixels
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return warp_crop(cv2.cvtColor(part, cv2.COLOR_BGR2BGRA), shifted, size)


# ----------------------------------------------------------------------------- dataset
class TopDownDataset(Dataset):
    """Samples ``(image, target, target_weight, meta)`` from :class:`Records`.

    * ``image``: float32 ``(3, H, W)``, normalised as the seed's ToTensor + Normalize
      (uint8 ``(H, W, 3)`` in fast mode, see :class:`SampleOptions`);
    * ``target``: float32 ``(K, h, w)`` Gaussian heatmaps; ``target_weight``: ``(K, 1)``;
    * ``meta``: the image path, ``image_id``, ``center``, ``scale``, ``rotation``,
      ``score``, ``area`` (the crop's area in pixels, which the seed's OKS-NMS uses),
      ``joints`` and ``joints_vis`` in crop pixels, ``flipped`` and the record ``index``.
    """

    def __init__(self, records: Records, keypoints: KeypointSet, options: SampleOptions,
                 is_train: bool, image_set: str = "") -> None:
        if records.joints.shape[1] != keypoints.num_joints:
            raise ValueError(f"records have {records.joints.shape[1]} joints but the key-point "
                             f"set has {keypoints.num_joints}")
        self.records = records
        self.keypoints = keypoints
        self.options = options
        self.is_train = is_train
        self.image_set = image_set
        self.flip_pairs = [list(p) for p in keypoints.flip_pairs]
        upper = np.zeros(keypoints.num_joints, dtype=bool)
        upper[list(keypoints.upper_body_ids)] = True
        self.upper_body = upper
        self.joints_weight = keypoints.joints_weight_array()
        self._table = _normalization_table()
        self.codec = options.codec or HeatmapCodec(options.image_size, options.heatmap_size,
                                                   options.sigma, udp=options.udp)
        # Network channel c is image channel _channels[c]: the seed feeds BGR unless COLOR_RGB.
        self._channels = (2, 1, 0) if options.color_rgb else (0, 1, 2)
        self.bad_images: set[str] = set()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The training epoch about to start (it picks the stage of the "rtmpose"
        augmentation). Loader workers get a copy of the dataset when their iterator is made:
        call this before making the epoch's iterator (the engine makes one per epoch; with
        ``persistent_workers`` the workers would keep the epoch they started with)."""
        self.epoch = int(epoch)

    @property
    def augment_stage(self) -> RTMPoseAugment | None:
        """The "rtmpose" augmentation settings of the current epoch (None: the seed's)."""
        o = self.options
        if o.rtmpose_aug is None:
            return None
        return o.rtmpose_aug[1 if 0 <= o.stage2_epoch <= self.epoch else 0]

    @property
    def num_joints(self) -> int:
        return self.keypoints.num_joints

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int):
        if not self.options.skip_bad_images:
            return self._sample(idx)
        if not self.is_train:
            # A test sample keeps its slot (MPII's PCKh matches people by position): a blank
            # image, marked missing, whose prediction the evaluation leaves out.
            try:
                return self._sample(idx)
            except BadImageError as err:
                self._warn_bad(idx, err)
                return self._sample(idx, blank=True)
        for _ in range(len(self)):
            try:
                return self._sample(idx)
            except BadImageError as err:
                self._warn_bad(idx, err)
                idx = (idx + 1) % len(self)
        raise BadImageError(f"no readable image among the {len(self)} samples")

    def _warn_bad(self, idx: int, err: BadImageError) -> None:
        self.bad_images.add(str(self.records.image_files[idx]))
        warnings.warn(f"{err}; skipped ({len(self.bad_images)} unreadable image(s) so far in "
                      "this process, DATASET.SKIP_BAD_IMAGES)", BadImageWarning, stacklevel=3)

    # -- the pipeline
    def _augment(self, center: np.ndarray, scale: np.ndarray, joints: np.ndarray,
                 joints_vis: np.ndarray):
        """The seed's random draws, in its order: half-body, scale, rotation, flip."""
        o = self.options
        if np.sum(joints_vis[:, 0]) > o.num_joints_half_body and \
                np.random.rand() < o.prob_half_body:
            half = half_body_box(joints, joints_vis, self.upper_body, o.aspect_ratio)
            if half is not None:
                center, scale = half
        sf, rf = o.scale_factor, o.rotation_factor
        # np.clip on scalars, written out (it is slow on them); still a np.float64 factor,
        # so that ``scale`` becomes float64 as in the seed under NumPy 2
        scale = scale * np.float64(min(max(np.random.randn() * sf + 1, 1 - sf), 1 + sf))
        rot = min(max(np.random.randn() * rf, -rf * 2), rf * 2) if random.random() <= 0.6 else 0
        flip = bool(o.flip and random.random() <= 0.5)
        return center, scale, float(rot), flip

    def _augment_rtmpose(self, aug: RTMPoseAugment, center: np.ndarray, scale: np.ndarray,
                         joints: np.ndarray, joints_vis: np.ndarray):
        """mmpose's order: flip, half body, box shift/scale/rotation (see data.augment).
        The flip is drawn first but applied to the joints and centre later, as the seed's:
        the half-body box of the mirrored joints is the mirrored box, and the shift draw is
        symmetric."""
        flip = bool(aug.flip and np.random.rand() < 0.5)
        half = half_body_box_rtmpose(joints, joints_vis, self.upper_body, aug,
                                     self.options.aspect_ratio)
        if half is not None:
            center, scale = half
        center, scale, rot = random_box(center, scale, aug)
        return center, scale, rot, flip

    def _transform(self, center, scale, rot: float) -> np.ndarray:
        if self.options.udp:
            return get_udp_transform(center, scale, rot, self.options.image_size)
        return get_affine_transform(center, scale, rot, self.options.image_size)

    def _sample(self, idx: int, blank: bool = False):
        """The sample of record ``idx``; ``blank``: of a black image (an unreadable one's
        stand-in, ``meta["missing"]`` True)."""
        o, rec = self.options, self.records
        path = str(rec.image_files[idx])
        center = rec.centers[idx].copy()
        scale = rec.scales[idx].copy()
        joints = rec.joints[idx].copy()
        joints_vis = rec.joints_vis[idx].copy()
        if blank:
            width, height = (int(v) or 1 for v in rec.image_sizes[idx])
            image = np.zeros((height, width, 3), dtype=np.uint8)
        else:
            image = None if o.fast_mode else read_image(path)  # the seed reads before drawing
        rot, flip = 0.0, False
        stage = self.augment_stage if self.is_train else None
        if stage is not None:
            center, scale, rot, flip = self._augment_rtmpose(stage, center, scale, joints,
                                                             joints_vis)
        elif self.is_train:
            center, scale, rot, flip = self._augment(center, scale, joints, joints_vis)

        reduce = _reduce_factor(float(scale[0]), o.image_size[0]) \
            if o.fast_mode and not blank else 1
        if image is None:
            image = read_image(path, reduce)
        width = image.shape[1]
        if reduce > 1:  # the full width, for flipping coordinates
            known = int(rec.image_sizes[idx, 0])
            width = known if -(-known // reduce) == width else width * reduce
        if flip:
            joints, joints_vis = flip_joints(joints, joints_vis, width, self.flip_pairs)
            center[0] = width - center[0] - 1

        trans = self._transform(center, scale, rot)
        crop = self._crop(image, trans, flip, width, reduce)
        if stage is not None:
            crop = photometric(crop, stage)
        visible = joints_vis[:, 0] > 0.0
        joints[visible, 0:2] = affine_points(joints[visible, 0:2], trans)

        *targets, target_weight = self.codec.encode(joints[:, :2], joints_vis[:, 0])
        if o.use_different_joints_weight:
            target_weight = np.multiply(target_weight,
                                        self.joints_weight.reshape(target_weight.shape))

        meta = {
            "image": path,
            "filename": "",
            "imgnum": 0,
            "index": int(idx),
            "image_id": int(rec.image_ids[idx]),
            "center": center,
            "scale": scale,
            "rotation": rot,
            "score": float(rec.scores[idx]),
            "area": float(np.prod(scale * PIXEL_STD)),
            "joints": joints,
            "joints_vis": joints_vis,
            "flipped": flip,
            "missing": blank,
        }
        return (self._to_tensor(crop), *(torch.from_numpy(t) for t in targets),
                torch.from_numpy(target_weight), meta)

    def _crop(self, image: np.ndarray, trans: np.ndarray, flip: bool, width: int,
              reduce: int) -> np.ndarray:
        """The warped ``(H, W, 4)`` crop (channel 3 is padding) of ``image``, mirrored first
        when ``flip``; ``trans`` maps the (mirrored) full-resolution image to the crop."""
        mirror = flip
        if self.options.fast_mode:  # fold the flip and the decode reduction into the warp
            pre = np.array([[reduce, 0.0, (reduce - 1) / 2], [0.0, reduce, (reduce - 1) / 2]])
            if flip:
                pre[0] = [-reduce, 0.0, width - 1 - (reduce - 1) / 2]
            trans, mirror = _compose(trans, pre), False
        return _warp_region(image, trans, self.options.image_size, mirror)

    def _to_tensor(self, crop: np.ndarray) -> torch.Tensor:
        """The ``(H, W, 4)`` crop as the network input: float ``(3, H, W)`` normalised by
        table look-up, or in fast mode uint8 ``(H, W, 3)``, channels in the network's order."""
        if self.options.fast_mode:
            code = cv2.COLOR_BGRA2RGB if self.options.color_rgb else cv2.COLOR_BGRA2BGR
            return torch.from_numpy(cv2.cvtColor(crop, code))
        planes = cv2.split(crop)
        out = np.empty((3,) + crop.shape[:2], dtype=np.float32)
        for c, src in enumerate(self._channels):
            cv2.LUT(planes[src], self._table[c][None], dst=out[c])
        return torch.from_numpy(out)
