"""The model zoo: names -> experiment file + weights URL + SHA-256; verified, cached downloads.

Every URL below was read in mmpose's documentation (commit 759b39c of open-mmlab/mmpose):
``projects/rtmpose/README.md`` for RTMPose and the RTMDet person detectors,
``configs/body_2d_keypoint/topdown_heatmap/coco/hrnet_coco.md`` and ``resnet_coco.md`` for
HRNet and SimpleBaseline. The figures (params, GFLOPs, AP) are the ones published there (for
HRNet/ResNet params and GFLOPs: the HRNet paper's table, as the seed's README quotes it).

Digests: OpenMMLab names a published file ``<name>-<first 8 hex digits of its SHA-256>
[_<date>].pth`` (mmpose's ``tools/misc/publish_model.py`` runs ``sha256sum`` and appends
``sha[:8]``), so the 8-hex prefix is known for every OpenMMLab file; a full digest replaces
it where one has been measured. File sizes are estimates (4 bytes per parameter: the files
are fp32 state dicts).

Downloads go to ``$HUMANPOSE_HOME/weights`` (default ``~/.cache/humanpose/weights``), through
a temporary file in that folder that is moved into place only when its digest matches.
``HUMANPOSE_MIRROR=http://host[/prefix]`` replaces the scheme and host of every URL (the
path is kept, after the mirror's own prefix) for sites that mirror the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, replace
from http.client import HTTPException
from pathlib import Path

from humanpose.errors import HumanposeError

__all__ = ["ENTRIES", "ZooEntry", "ZooError", "cache_path", "fetch_weights", "format_table",
           "get_entry", "humanpose_home", "is_zoo_name", "mirror_url", "resolve_detector",
           "resolve_model", "sha256_file", "verify_file"]

OPENMMLAB_LICENCE = "Apache-2.0"
SEED_DOWNLOAD = ("the seed's model zoo: https://drive.google.com/drive/folders/"
                 "1hOTihvbyIxsm5ygDpbUuJ7O_tzv4oXjC (Google Drive) or "
                 "https://1drv.ms/f/s!AhIXJn_J-blW231MH2krnmLq5kkQ (OneDrive)")
_RTMPOSE_DOC = "mmpose projects/rtmpose/README.md"
_MMPOSE_V1 = "https://download.openmmlab.com/mmpose/v1/"
_CHUNK = 1 << 20
TIMEOUT_S = 30.0


class ZooError(HumanposeError, RuntimeError):
    """A zoo name that is unknown, or weights that cannot be fetched or do not verify."""


@dataclass(frozen=True)
class ZooEntry:
    """One named model. ``input_size`` is (width, height) like ``MODEL.IMAGE_SIZE``;
    ``sha256`` is the full digest (64 hex digits) or the hex prefix of the file name;
    ``url`` is empty for files with no stable address (then ``download`` says where to get
    them and ``file_name`` what they are called, "" where no source names them)."""

    name: str
    task: str  # "pose", "pose-one-stage" (RTMO: no detector) or "detection"
    keypoints: str  # "coco17", "halpe26", "wholebody133", "hand21", "face106"; detectors: "person"
    input_size: tuple[int, int]
    params_m: float | None
    gflops: float | None
    ap: float | None  # the published figure, on the data set ``ap_on`` names
    ap_on: str
    config: str  # a shipped experiment name or a path
    licence: str
    url: str = ""
    sha256: str = ""
    file_name: str = ""
    source: str = ""  # where the URL (or the file name) was read
    download: str = ""  # where to get a file that has no URL
    opts: tuple[str, ...] = ()  # config overrides the weights need
    onnx_url: str = ""  # the mmdeploy package (a zip with end2end.onnx) OpenMMLab publishes

    @property
    def size_mb(self) -> float | None:
        """Estimated download size: 4 bytes per parameter."""
        return None if self.params_m is None else round(self.params_m * 4.0, 1)

    @property
    def weights_name(self) -> str:
        return self.file_name or (Path(urllib.parse.urlparse(self.url).path).name
                                  if self.url else "")


def _openmmlab(name: str, task: str, keypoints: str, size: tuple[int, int], params: float | None,
               gflops: float | None, ap: float | None, ap_on: str, config: str, url: str,
               source: str, digest: bool = True) -> ZooEntry:
    """An OpenMMLab entry; the digest prefix is read from the URL's file name (8 hex digits
    as publish_model.py writes them; one file has 7). ``digest=False``: a file published
    without one (``...-256x192-20231122.pth``: a date, not a digest), used unverified."""
    stem = Path(url).stem  # ...-63eb25f7_20230126 or ...-05d8511e
    prefix = stem.rsplit("-", 1)[1].split("_")[0] if digest else ""
    if digest and (len(prefix) not in (7, 8) or any(c not in "0123456789abcdef" for c in prefix)):
        raise ValueError(f"{name}: no 8-hex digest in {url}")
    return ZooEntry(name, task, keypoints, size, params, gflops, ap, ap_on, config,
                    OPENMMLAB_LICENCE, url=url, sha256=prefix, source=source)


def _seed(name: str, size: tuple[int, int], params: float, gflops: float, ap: float | None,
          config: str, file_name: str = "") -> ZooEntry:
    return ZooEntry(name, "pose", "coco17", size, params, gflops, ap, "COCO val (seed README)",
                    config, "unstated", file_name=file_name,
                    source="seed README (model zoo tree)" if file_name else "",
                    download=SEED_DOWNLOAD)


_RP = _MMPOSE_V1 + "projects/rtmposev1/"
_TD = _MMPOSE_V1 + "body_2d_keypoint/topdown_heatmap/coco/"
_COCO = "COCO val"
_BODY8 = "Body8 PCK@0.1"
_WB = "COCO-WholeBody val (whole)"
_LAPA = "LaPa NME (lower is better)"
_RTMW = _MMPOSE_V1 + "projects/rtmw/"
_RTMO = _MMPOSE_V1 + "projects/rtmo/"
_RTMO_DOC = "mmpose configs/body_2d_keypoint/rtmo/{body7,coco}/*.md"
_ENTRIES = (
    # RTMPose trained on AIC + COCO: projects/rtmpose/README.md, "Body 2d (17 Keypoints)".
    _openmmlab("rtmpose-t", "pose", "coco17", (192, 256), 3.34, 0.36, 68.5, _COCO,
               "coco/rtmpose/rtmpose_t_256x192",
               _RP + "rtmpose-tiny_simcc-aic-coco_pt-aic-coco_420e-256x192-cfc8f33d_20230126.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-s", "pose", "coco17", (192, 256), 5.47, 0.68, 72.2, _COCO,
               "coco/rtmpose/rtmpose_s_256x192",
               _RP + "rtmpose-s_simcc-aic-coco_pt-aic-coco_420e-256x192-fcb2599b_20230126.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-m", "pose", "coco17", (192, 256), 13.59, 1.93, 75.8, _COCO,
               "coco/rtmpose/rtmpose_m_256x192",
               _RP + "rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-256x192-63eb25f7_20230126.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-l", "pose", "coco17", (192, 256), 27.66, 4.16, 76.5, _COCO,
               "coco/rtmpose/rtmpose_l_256x192",
               _RP + "rtmpose-l_simcc-aic-coco_pt-aic-coco_420e-256x192-f016ffe0_20230126.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-m-384", "pose", "coco17", (288, 384), 13.72, 4.33, 77.0, _COCO,
               "coco/rtmpose/rtmpose_m_384x288",
               _RP + "rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-384x288-a62a0b32_20230228.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-l-384", "pose", "coco17", (288, 384), 27.79, 9.35, 77.3, _COCO,
               "coco/rtmpose/rtmpose_l_384x288",
               _RP + "rtmpose-l_simcc-aic-coco_pt-aic-coco_420e-384x288-97d6cb0f_20230228.pth",
               _RTMPOSE_DOC),
    # RTMPose trained on Body7 (17 COCO key points): the same architectures and configs.
    _openmmlab("rtmpose-t-body7", "pose", "coco17", (192, 256), 3.34, 0.36, 65.9, _COCO,
               "coco/rtmpose/rtmpose_t_256x192",
               _RP + "rtmpose-t_simcc-body7_pt-body7_420e-256x192-026a1439_20230504.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-s-body7", "pose", "coco17", (192, 256), 5.47, 0.68, 69.7, _COCO,
               "coco/rtmpose/rtmpose_s_256x192",
               _RP + "rtmpose-s_simcc-body7_pt-body7_420e-256x192-acd4a1ef_20230504.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-m-body7", "pose", "coco17", (192, 256), 13.59, 1.93, 74.9, _COCO,
               "coco/rtmpose/rtmpose_m_256x192",
               _RP + "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-l-body7", "pose", "coco17", (192, 256), 27.66, 4.16, 76.7, _COCO,
               "coco/rtmpose/rtmpose_l_256x192",
               _RP + "rtmpose-l_simcc-body7_pt-body7_420e-256x192-4dba18fc_20230504.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-m-body7-384", "pose", "coco17", (288, 384), 13.72, 4.33, 76.6, _COCO,
               "coco/rtmpose/rtmpose_m_384x288",
               _RP + "rtmpose-m_simcc-body7_pt-body7_420e-384x288-65e718c4_20230504.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-l-body7-384", "pose", "coco17", (288, 384), 27.79, 9.35, 78.3, _COCO,
               "coco/rtmpose/rtmpose_l_384x288",
               _RP + "rtmpose-l_simcc-body7_pt-body7_420e-384x288-3f5a1437_20230504.pth",
               _RTMPOSE_DOC),
    # RTMPose on Body8 with Halpe's 26 key points: "26 Keypoints" (no COCO AP published).
    _openmmlab("rtmpose-t-halpe26", "pose", "halpe26", (192, 256), 3.51, 0.37, 91.89, _BODY8,
               "halpe26/rtmpose/rtmpose_t_256x192",
               _RP + "rtmpose-t_simcc-body7_pt-body7-halpe26_700e-256x192-6020f8a6_20230605.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-s-halpe26", "pose", "halpe26", (192, 256), 5.70, 0.70, 93.01, _BODY8,
               "halpe26/rtmpose/rtmpose_s_256x192",
               _RP + "rtmpose-s_simcc-body7_pt-body7-halpe26_700e-256x192-7f134165_20230605.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-m-halpe26", "pose", "halpe26", (192, 256), 13.93, 1.95, 94.75, _BODY8,
               "halpe26/rtmpose/rtmpose_m_256x192",
               _RP + "rtmpose-m_simcc-body7_pt-body7-halpe26_700e-256x192-4d3e73dd_20230605.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-l-halpe26", "pose", "halpe26", (192, 256), 28.11, 4.19, 95.37, _BODY8,
               "halpe26/rtmpose/rtmpose_l_256x192",
               _RP + "rtmpose-l_simcc-body7_pt-body7-halpe26_700e-256x192-2abb7558_20230605.pth",
               _RTMPOSE_DOC),
    # Whole body, COCO-WholeBody's 133 key points: "WholeBody 2d" tables (Whole AP on
    # COCO-WholeBody val). DWPose: RTMPose networks distilled on UBody + COCO-WholeBody.
    _openmmlab("dwpose-t", "pose", "wholebody133", (192, 256), 5.52, 0.5, 48.5, _WB,
               "wholebody/rtmpose/rtmpose_t_256x192",
               _RP + "rtmpose-t_simcc-ucoco_dw-ucoco_270e-256x192-dcf277bf_20230728.pth",
               _RTMPOSE_DOC),
    _openmmlab("dwpose-s", "pose", "wholebody133", (192, 256), 8.38, 0.9, 53.8, _WB,
               "wholebody/rtmpose/rtmpose_s_256x192",
               _RP + "rtmpose-s_simcc-ucoco_dw-ucoco_270e-256x192-3fd922c8_20230728.pth",
               _RTMPOSE_DOC),
    _openmmlab("dwpose-m", "pose", "wholebody133", (192, 256), 17.95, 2.22, 60.6, _WB,
               "wholebody/rtmpose/rtmpose_m_256x192",
               _RP + "rtmpose-m_simcc-ucoco_dw-ucoco_270e-256x192-c8b76419_20230728.pth",
               _RTMPOSE_DOC),
    _openmmlab("dwpose-l", "pose", "wholebody133", (192, 256), 33.48, 4.52, 63.1, _WB,
               "wholebody/rtmpose/rtmpose_l_256x192",
               _RP + "rtmpose-l_simcc-ucoco_dw-ucoco_270e-256x192-4d6dfc62_20230728.pth",
               _RTMPOSE_DOC),
    _openmmlab("dwpose-l-384", "pose", "wholebody133", (288, 384), 33.61, 10.07, 66.5, _WB,
               "wholebody/rtmpose/rtmpose_l_384x288",
               _RP + "rtmpose-l_simcc-ucoco_dw-ucoco_270e-384x288-2438fd99_20230728.pth",
               _RTMPOSE_DOC),
    # RTMW (Cocktail14 table). m and l are distilled (dw-l-m: l into m; dw-x-l: x into l)
    # and were published without a digest in their names.
    _openmmlab("rtmw-m", "pose", "wholebody133", (192, 256), 32.26, 4.3, 58.2, _WB,
               "wholebody/rtmw/rtmw_m_256x192",
               _RTMW + "rtmw-dw-l-m_simcc-cocktail14_270e-256x192-20231122.pth", _RTMPOSE_DOC,
               digest=False),
    _openmmlab("rtmw-l", "pose", "wholebody133", (192, 256), 57.20, 7.9, 66.0, _WB,
               "wholebody/rtmw/rtmw_l_256x192",
               _RTMW + "rtmw-dw-x-l_simcc-cocktail14_270e-256x192-20231122.pth", _RTMPOSE_DOC,
               digest=False),
    _openmmlab("rtmw-x", "pose", "wholebody133", (192, 256), 92.04, 13.1, 67.2, _WB,
               "wholebody/rtmw/rtmw_x_256x192",
               _RTMW + "rtmw-x_simcc-cocktail14_pt-ucoco_270e-256x192-13a2546d_20231208.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmw-l-384", "pose", "wholebody133", (288, 384), 57.35, 17.7, 70.1, _WB,
               "wholebody/rtmw/rtmw_l_384x288",
               _RTMW + "rtmw-dw-x-l_simcc-cocktail14_270e-384x288-20231122.pth", _RTMPOSE_DOC,
               digest=False),
    _openmmlab("rtmw-x-384", "pose", "wholebody133", (288, 384), 92.19, 29.3, 70.2, _WB,
               "wholebody/rtmw/rtmw_x_384x288",
               _RTMW + "rtmw-x_simcc-cocktail14_pt-ucoco_270e-384x288-f840f204_20231122.pth",
               _RTMPOSE_DOC),
    # Hand (21 key points, "Hand 2d": PCK@0.2 on COCO-WholeBody-Hand) and face (LaPa's 106,
    # "Face 2d": NME on LaPa, lower is better). Their crops come from hand / face boxes.
    _openmmlab("rtmpose-m-hand", "pose", "hand21", (256, 256), 13.78, 2.581, 81.5,
               "COCO-WholeBody-Hand PCK@0.2", "hand/rtmpose/rtmpose_m_256x256",
               _RP + "rtmpose-m_simcc-hand5_pt-aic-coco_210e-256x256-74fb594_20230320.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-t-face", "pose", "face106", (256, 256), 5.05, 0.652, 1.67, _LAPA,
               "face/rtmpose/rtmpose_t_256x256",
               _RP + "rtmpose-t_simcc-face6_pt-in1k_120e-256x256-df79d9a5_20230529.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-s-face", "pose", "face106", (256, 256), 7.74, 1.119, 1.59, _LAPA,
               "face/rtmpose/rtmpose_s_256x256",
               _RP + "rtmpose-s_simcc-face6_pt-in1k_120e-256x256-d779fdef_20230529.pth",
               _RTMPOSE_DOC),
    _openmmlab("rtmpose-m-face", "pose", "face106", (256, 256), 16.97, 2.852, 1.44, _LAPA,
               "face/rtmpose/rtmpose_m_256x256",
               _RP + "rtmpose-m_simcc-face6_pt-in1k_120e-256x256-72a37400_20230529.pth",
               _RTMPOSE_DOC),
    # RTMO, one stage (boxes and COCO's 17 key points from the whole 640x640 frame, no
    # person detector): configs/body_2d_keypoint/rtmo, COCO val AP. rtmo-s/m/l: trained on
    # Body7 (the files rtmlib runs); *-coco: on COCO alone.
    _openmmlab("rtmo-s", "pose-one-stage", "coco17", (640, 640), 9.87, None, 68.6, _COCO,
               "coco/rtmo/rtmo_s_640x640",
               _RTMO + "rtmo-s_8xb32-600e_body7-640x640-dac2bf74_20231211.pth", _RTMO_DOC),
    _openmmlab("rtmo-m", "pose-one-stage", "coco17", (640, 640), 22.53, None, 72.6, _COCO,
               "coco/rtmo/rtmo_m_640x640",
               _RTMO + "rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211.pth", _RTMO_DOC),
    _openmmlab("rtmo-l", "pose-one-stage", "coco17", (640, 640), 44.69, None, 74.8, _COCO,
               "coco/rtmo/rtmo_l_640x640",
               _RTMO + "rtmo-l_16xb16-600e_body7-640x640-b37118ce_20231211.pth", _RTMO_DOC),
    _openmmlab("rtmo-s-coco", "pose-one-stage", "coco17", (640, 640), 9.87, None, 67.7, _COCO,
               "coco/rtmo/rtmo_s_640x640",
               _RTMO + "rtmo-s_8xb32-600e_coco-640x640-8db55a59_20231211.pth", _RTMO_DOC),
    _openmmlab("rtmo-m-coco", "pose-one-stage", "coco17", (640, 640), 22.53, None, 70.9, _COCO,
               "coco/rtmo/rtmo_m_640x640",
               _RTMO + "rtmo-m_16xb16-600e_coco-640x640-6f4e0306_20231211.pth", _RTMO_DOC),
    _openmmlab("rtmo-l-coco", "pose-one-stage", "coco17", (640, 640), 44.69, None, 72.4, _COCO,
               "coco/rtmo/rtmo_l_640x640",
               _RTMO + "rtmo-l_16xb16-600e_coco-640x640-516a421f_20231211.pth", _RTMO_DOC),
    # Person detectors. nano and m: "RTMPose + RTMDet" pipeline table (COCO + Objects365
    # person, AP on COCO val person); tiny: the Human-Art table (AP on Human-Art).
    _openmmlab("rtmdet-nano", "detection", "person", (320, 320), 0.99, 0.31, 40.3,
               "COCO val person", "detection/rtmdet_nano_320_person",
               _MMPOSE_V1 + "projects/rtmpose/"
               "rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.pth", _RTMPOSE_DOC),
    _openmmlab("rtmdet-tiny", "detection", "person", (640, 640), None, None, 46.6,
               "Human-Art person", "detection/rtmdet_tiny_640_person",
               _RP + "rtmdet_tiny_8xb32-300e_humanart-7da5554e.pth", _RTMPOSE_DOC),
    _openmmlab("rtmdet-m", "detection", "person", (640, 640), 24.66, 38.95, 62.5,
               "COCO val person", "detection/rtmdet_m_640_person",
               _MMPOSE_V1 + "projects/rtmpose/"
               "rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth", _RTMPOSE_DOC),
    # mmpose's top-down heatmap models (COCO val AP with a 56.4-AP person detector).
    _openmmlab("hrnet-w32", "pose", "coco17", (192, 256), 28.5, 7.1, 74.9, _COCO,
               "coco/hrnet/w32_256x192_adam_lr1e-3",
               _TD + "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth",
               "mmpose configs/body_2d_keypoint/topdown_heatmap/coco/hrnet_coco.md"),
    _openmmlab("hrnet-w48", "pose", "coco17", (192, 256), 63.6, 14.6, 75.6, _COCO,
               "coco/hrnet/w48_256x192_adam_lr1e-3",
               _TD + "td-hm_hrnet-w48_8xb32-210e_coco-256x192-0e67c616_20220913.pth",
               "mmpose configs/body_2d_keypoint/topdown_heatmap/coco/hrnet_coco.md"),
    _openmmlab("resnet-50", "pose", "coco17", (192, 256), 34.0, 8.9, 71.8, _COCO,
               "coco/resnet/res50_256x192_d256x3_adam_lr1e-3",
               _TD + "td-hm_res50_8xb64-210e_coco-256x192-04af38ce_20220923.pth",
               "mmpose configs/body_2d_keypoint/topdown_heatmap/coco/resnet_coco.md"),
    # The seed's own files (Google Drive / OneDrive, no stable URL, no published digest).
    _seed("lpn-18", (192, 256), 0.47, 0.42, 44.5, "coco/lpn/lpn18_256x192_gd256x2_gc"),
    _seed("lpn-18h", (192, 256), 0.50, 0.43, 48.6, "coco/lpn/lpn18h_256x192_gd256x2_gc"),
    _seed("lpn-34", (192, 256), 0.59, 0.43, 49.3, "coco/lpn/lpn34_256x192_gd256x2_gc"),
    _seed("lpn-50", (192, 256), 2.9, 1.0, 68.4, "coco/lpn/lpn50_256x192_gd256x2_gc"),
    _seed("lpn-100", (192, 256), 6.7, 1.8, 72.1, "coco/lpn/lpn100_256x192_gd256x2_gc"),
    _seed("hrnet-w18-small-v1", (192, 256), 1.3, 0.68, 57.2,
          "coco/hrnet/w18_small_v1_256x192_adam_lr1e-3"),
    _seed("hrnet-w18-small-v2", (192, 256), 3.7, 1.8, 71.0,
          "coco/hrnet/w18_small_v2_256x192_adam_lr1e-3"),
    _seed("seed-hrnet-w32", (192, 256), 28.5, 7.1, 76.5, "coco/hrnet/w32_256x192_adam_lr1e-3",
          "pose_hrnet_w32_256x192.pth"),
    _seed("seed-hrnet-w48", (192, 256), 63.6, 14.6, None, "coco/hrnet/w48_256x192_adam_lr1e-3",
          "pose_hrnet_w48_256x192.pth"),
    _seed("seed-resnet-50", (192, 256), 34.0, 8.9, None,
          "coco/resnet/res50_256x192_d256x3_adam_lr1e-3", "pose_resnet_50_256x192.pth"),
)
# The runtime's files: mmpose's READMEs (projects/rtmpose, projects/rtmo) link, beside each
# checkpoint, the mmdeploy package rtmlib runs (onnx_sdk/<checkpoint name>.zip: end2end.onnx
# and the SDK's json files). The 8 hex digits in those names are the checkpoint's digest,
# not the zip's, and no digest of the zips is published: they are used unverified (their
# SHA-256 is recorded at download). Not listed: RTMW-m's package (named rtmw-dw-m-s, not
# the checkpoint's distillation) and RTMW-x's (a cocktail13 model, not this checkpoint).
_SDK = _RP + "onnx_sdk/"
_ONNX_PACKAGES = {
    "rtmpose-t-body7": _SDK + "rtmpose-t_simcc-body7_pt-body7_420e-256x192-026a1439_20230504",
    "rtmpose-s-body7": _SDK + "rtmpose-s_simcc-body7_pt-body7_420e-256x192-acd4a1ef_20230504",
    "rtmpose-m-body7": _SDK + "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504",
    "rtmpose-l-body7": _SDK + "rtmpose-l_simcc-body7_pt-body7_420e-256x192-4dba18fc_20230504",
    "rtmpose-m-body7-384":
        _SDK + "rtmpose-m_simcc-body7_pt-body7_420e-384x288-65e718c4_20230504",
    "rtmpose-l-body7-384":
        _SDK + "rtmpose-l_simcc-body7_pt-body7_420e-384x288-3f5a1437_20230504",
    "rtmpose-t-halpe26":
        _SDK + "rtmpose-t_simcc-body7_pt-body7-halpe26_700e-256x192-6020f8a6_20230605",
    "rtmpose-s-halpe26":
        _SDK + "rtmpose-s_simcc-body7_pt-body7-halpe26_700e-256x192-7f134165_20230605",
    "rtmpose-m-halpe26":
        _SDK + "rtmpose-m_simcc-body7_pt-body7-halpe26_700e-256x192-4d3e73dd_20230605",
    "rtmpose-l-halpe26":
        _SDK + "rtmpose-l_simcc-body7_pt-body7-halpe26_700e-256x192-2abb7558_20230605",
    "dwpose-t": _SDK + "rtmpose-t_simcc-ucoco_dw-ucoco_270e-256x192-dcf277bf_20230728",
    "dwpose-s": _SDK + "rtmpose-s_simcc-ucoco_dw-ucoco_270e-256x192-3fd922c8_20230728",
    "dwpose-m": _SDK + "rtmpose-m_simcc-ucoco_dw-ucoco_270e-256x192-c8b76419_20230728",
    "dwpose-l": _SDK + "rtmpose-l_simcc-ucoco_dw-ucoco_270e-256x192-4d6dfc62_20230728",
    "dwpose-l-384": _SDK + "rtmpose-l_simcc-ucoco_dw-ucoco_270e-384x288-2438fd99_20230728",
    "rtmw-l": _RTMW + "onnx_sdk/rtmw-dw-x-l_simcc-cocktail14_270e-256x192_20231122",
    "rtmw-l-384": _RTMW + "onnx_sdk/rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122",
    "rtmpose-m-hand": _SDK + "rtmpose-m_simcc-hand5_pt-aic-coco_210e-256x256-74fb594_20230320",
    "rtmpose-t-face": _SDK + "rtmpose-t_simcc-face6_pt-in1k_120e-256x256-df79d9a5_20230529",
    "rtmpose-s-face": _SDK + "rtmpose-s_simcc-face6_pt-in1k_120e-256x256-d779fdef_20230529",
    "rtmpose-m-face": _SDK + "rtmpose-m_simcc-face6_pt-in1k_120e-256x256-72a37400_20230529",
    "rtmo-s": _RTMO + "onnx_sdk/rtmo-s_8xb32-600e_body7-640x640-dac2bf74_20231211",
    "rtmo-m": _RTMO + "onnx_sdk/rtmo-m_16xb16-600e_body7-640x640-39e78cc4_20231211",
    "rtmo-l": _RTMO + "onnx_sdk/rtmo-l_16xb16-600e_body7-640x640-b37118ce_20231211",
}
ENTRIES: dict[str, ZooEntry] = {
    e.name: replace(e, onnx_url=_ONNX_PACKAGES[e.name] + ".zip") if e.name in _ONNX_PACKAGES
    else e for e in _ENTRIES}


# ---------------------------------------------------------------------------- look-up
def is_zoo_name(spec: object) -> bool:
    """True when ``spec`` is a zoo name rather than a file (an existing file wins)."""
    return isinstance(spec, str) and spec in ENTRIES and not Path(spec).exists()


def get_entry(name: str) -> ZooEntry:
    try:
        return ENTRIES[name]
    except KeyError:
        raise ZooError(f"unknown model name {name!r}; 'humanpose zoo' lists them: "
                       f"{', '.join(ENTRIES)}") from None


def humanpose_home() -> Path:
    """``$HUMANPOSE_HOME`` or ``~/.cache/humanpose``."""
    return Path(os.environ.get("HUMANPOSE_HOME") or Path.home() / ".cache" / "humanpose"
                ).expanduser()


def cache_path(entry: ZooEntry) -> Path:
    """Where the entry's weights live once fetched (and where to put them by hand)."""
    name = entry.weights_name or f"{entry.name}.pth"
    return humanpose_home() / "weights" / name


def mirror_url(url: str) -> str:
    """``url`` with the scheme and host of ``$HUMANPOSE_MIRROR`` (its path, if any, goes
    before the URL's path); unchanged when the variable is unset."""
    mirror = os.environ.get("HUMANPOSE_MIRROR", "").strip()
    if not mirror:
        return url
    m = urllib.parse.urlparse(mirror)
    if not m.scheme or not m.netloc:
        raise ZooError(f"HUMANPOSE_MIRROR={mirror!r} is not a URL like http://host[:port][/path]")
    u = urllib.parse.urlparse(url)
    return urllib.parse.urlunparse(u._replace(scheme=m.scheme, netloc=m.netloc,
                                              path=m.path.rstrip("/") + u.path))


# ---------------------------------------------------------------------------- digests
def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(actual: str, expected: str) -> bool:
    return bool(expected) and actual.startswith(expected.lower())


def _describe_expected(expected: str) -> str:
    return expected if len(expected) == 64 else f"{expected}... (first {len(expected)} hex digits)"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _cached_digest(path: Path) -> str:
    """The file's SHA-256. In the cache folder it is hashed once and remembered in
    ``<file>.sha256`` with the size and modification time it was computed for: a replaced or
    truncated file is hashed again, an unchanged one costs a stat instead of reading 100+ MB
    at every start. Files elsewhere (the user's own copies) are hashed, and nothing is
    written beside them."""
    if path.resolve().parent != (humanpose_home() / "weights").resolve():
        return sha256_file(path)
    st = path.stat()
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    side = _sidecar(path)
    try:
        record = json.loads(side.read_text())
        if {k: record.get(k) for k in key} == key and len(record.get("sha256", "")) == 64:
            return record["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = sha256_file(path)
    try:
        side.write_text(json.dumps({**key, "sha256": digest}))
    except OSError:  # a read-only folder: hash again next time
        pass
    return digest


def verify_file(entry: ZooEntry, path: str | os.PathLike) -> Path:
    """Check a local copy of ``entry``'s weights: its digest when one is known, and its file
    name against the expected one (a different name is only reported: users rename files)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ZooError(f"{entry.name}: weights file not found: {path}")
    if entry.weights_name and path.name != entry.weights_name:
        print(f"humanpose: note: {path.name} is not named {entry.weights_name} as "
              f"{entry.name}'s weights are", file=sys.stderr)
    if entry.sha256:
        actual = _cached_digest(path)
        if not _matches(actual, entry.sha256):
            raise ZooError(f"{path} is not {entry.name}'s weights: its SHA-256 is {actual}, "
                           f"expected {_describe_expected(entry.sha256)}"
                           + (f" (the file at {entry.url})" if entry.url else ""))
    else:
        print(f"humanpose: note: no digest is known for {entry.name}; {path} is used "
              "unverified", file=sys.stderr)
    return path


# ---------------------------------------------------------------------------- downloads
def _download(url: str, dest: Path, expected: str, progress: bool) -> None:
    """``url`` into ``dest`` through a temporary file in the same folder, renamed only when
    its SHA-256 matches ``expected``; nothing is left behind otherwise."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                    total = int(response.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                              desc=dest.name, file=sys.stderr, disable=not progress) as bar:
                        while chunk := response.read(_CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, HTTPException, TimeoutError, ConnectionError) as err:
                reason = getattr(err, "reason", None) or err
                raise ZooError(
                    f"cannot download {url}: {reason}. Without internet access, download the "
                    f"file elsewhere and put it at {dest} ("
                    + (f"it is checked against SHA-256 {_describe_expected(expected)}"
                       if expected else "no digest is published for it")
                    + "), or set HUMANPOSE_MIRROR to a mirror of the files") from None
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if not expected:  # nothing published to check against: recorded in the sidecar
            print(f"humanpose: note: no digest is published for {url}; it is used "
                  f"unverified (SHA-256 {actual})", file=sys.stderr)
        elif not _matches(actual, expected):
            raise ZooError(f"checksum mismatch for {url}: expected SHA-256 "
                           f"{_describe_expected(expected)}, got {actual}; the download was "
                           "deleted")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    st = dest.stat()
    _sidecar(dest).write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                          "sha256": actual}))


def fetch_weights(name: str, path: str | os.PathLike | None = None,
                  progress: bool = True) -> Path:
    """The verified weights file of zoo entry ``name``.

    ``path``: a copy the user already has (checked, then used where it is). Otherwise the
    cached file in ``$HUMANPOSE_HOME/weights`` (re-verified), else a download of the entry's
    URL (through ``$HUMANPOSE_MIRROR`` when set). Entries without a URL are looked for in the
    cache folder; the error says where to download them and where to put them.
    """
    entry = get_entry(name)
    if path is not None:
        return verify_file(entry, path)
    dest = cache_path(entry)
    if dest.is_file():
        try:
            return verify_file(entry, dest)
        except ZooError as err:
            if not entry.url:
                raise
            print(f"humanpose: {err}; downloading it again", file=sys.stderr)
    if not entry.url:
        expected = entry.weights_name or "(any name)"
        raise ZooError(f"{entry.name} has no download URL: get {expected} from "
                       f"{entry.download or 'its authors'}, then put it at {dest} or pass "
                       "its path (--weights FILE)")
    url = mirror_url(entry.url)
    if progress:
        print(f"humanpose: downloading {entry.name} from {url}", file=sys.stderr)
    _download(url, dest, entry.sha256, progress)
    return dest


def fetch_onnx(name: str, progress: bool = True) -> Path:
    """The ONNX file the runtime (``PoseModel``, ``OneStageModel``) runs for zoo entry
    ``name``: the mmdeploy package OpenMMLab publishes (downloaded once into
    ``$HUMANPOSE_HOME/onnx``, its ``end2end.onnx`` taken out), else, with PyTorch installed
    (``humanpose[train]``), the entry's checkpoint exported there as ``humanpose export``
    exports it (self-describing metadata)."""
    entry = get_entry(name)
    folder = humanpose_home() / "onnx"
    if entry.onnx_url:
        package = folder / Path(urllib.parse.urlparse(entry.onnx_url).path).name
        dest = package.with_suffix(".onnx")
        if dest.is_file():
            return dest
        if not package.is_file():
            url = mirror_url(entry.onnx_url)
            if progress:
                print(f"humanpose: downloading {entry.name} (ONNX) from {url}", file=sys.stderr)
            _download(url, package, "", progress)
        _extract_end2end(package, dest)
        return dest
    import importlib.util

    published = [n for n, e in ENTRIES.items() if e.onnx_url]
    if importlib.util.find_spec("torch") is None:
        raise ZooError(f"{entry.name}: no ONNX file is published for it (published: "
                       f"{', '.join(published)}); with humanpose[train] installed, "
                       f"humanpose export --model {entry.name} writes one")
    dest = folder / f"{entry.name}.onnx"
    if not dest.is_file():
        _export_entry(entry, dest, progress)
    return dest


def _extract_end2end(package: Path, dest: Path) -> None:
    """The package's ``end2end.onnx`` to ``dest`` (through a temporary file)."""
    try:
        with zipfile.ZipFile(package) as archive:
            inside = [n for n in archive.namelist() if n.endswith("end2end.onnx")]
            if not inside:
                raise ZooError(f"{package}: no end2end.onnx in it (it holds "
                               f"{', '.join(archive.namelist()[:10])})")
            tmp = dest.with_name(dest.name + ".part")
            tmp.write_bytes(archive.read(inside[0]))
            os.replace(tmp, dest)
    except zipfile.BadZipFile as err:
        raise ZooError(f"{package}: not a zip file ({err}); delete it to download it again"
                       ) from None


def _export_entry(entry: ZooEntry, dest: Path, progress: bool) -> None:
    """``humanpose export --model NAME`` into ``dest``."""
    from humanpose import load_torch_side

    load_torch_side()
    from humanpose.checkpoint import load_checkpoint
    from humanpose.config import get_cfg
    from humanpose.export import export_model
    from humanpose.models import build_model

    if entry.task == "detection":
        weights, config = resolve_detector(entry.name, progress=progress)
        cfg = get_cfg(config, ["TEST.MODEL_FILE", str(weights)])
    else:
        config, opts = resolve_model(entry.name, progress=progress)
        cfg = get_cfg(config, opts)
    model = build_model(cfg).eval()
    load_checkpoint(model, cfg.TEST.MODEL_FILE)
    if progress:
        print(f"humanpose: exporting {entry.name} to {dest}", file=sys.stderr)
    export_model(model, cfg, dest, check=False)


# ---------------------------------------------------------------------------- resolution
def resolve_model(name: str, weights: str | os.PathLike | None = None,
                  progress: bool = True, task: str | tuple[str, ...] | None = None,
                  fetch: bool = True) -> tuple[str, list[str]]:
    """(experiment file, config overrides) of zoo entry ``name`` with its weights fetched:
    the same as ``--cfg <config> TEST.MODEL_FILE <weights>``.

    ``task``: the kind (or kinds) of model the caller runs ("pose"); another kind is
    refused before any download. ``fetch=False``: the config only (``info`` needs no
    weights), with the weights file named only when given."""
    entry = get_entry(name)
    tasks = (task,) if isinstance(task, str) else task
    if tasks is not None and entry.task not in tasks:
        listed = "; ".join(f"{t} models: " + ", ".join(n for n, e in ENTRIES.items()
                                                       if e.task == t) for t in tasks)
        raise ZooError(f"{entry.name} is a {entry.task} model, not a {tasks[0]} model; "
                       f"{listed}"
                       + (" (a person detector goes to --detector)"
                          if entry.task == "detection" else "")
                       + (" (one-stage RTMO runs in humanpose infer, "
                          "humanpose.runtime.OneStageModel and "
                          "humanpose.inference.OneStageEstimator)"
                          if entry.task == "pose-one-stage" else ""))
    from humanpose.shipped import find_config

    config = str(find_config(entry.config))
    if not fetch:
        return config, [*entry.opts, *(["TEST.MODEL_FILE", str(weights)] if weights else [])]
    file = fetch_weights(name, weights, progress=progress)
    return config, [*entry.opts, "TEST.MODEL_FILE", str(file)]


def detector_names() -> list[str]:
    """The zoo's person detectors (names for ``--detector``)."""
    return [n for n, e in ENTRIES.items() if e.task == "detection"]


def resolve_detector(spec: str | os.PathLike, progress: bool = True
                     ) -> tuple[str | os.PathLike, str | None]:
    """(weights, experiment file) for a detector spec: a zoo name becomes its fetched
    weights and its config; an existing file is returned unchanged with no config. Neither
    (a misspelt name, a missing file) is an error listing the zoo's detectors."""
    if not is_zoo_name(spec):
        if not Path(spec).exists():
            raise ZooError(f"--detector {spec}: file not found, and not a zoo detector; zoo "
                           f"detectors: {', '.join(detector_names())} (or a .pth, .yaml, "
                           ".onnx or detections .json file)")
        return spec, None
    entry = get_entry(str(spec))
    if entry.task != "detection":
        raise ZooError(f"{entry.name} is a {entry.task} model, not a person detector; "
                       f"detectors: {', '.join(detector_names())}")
    from humanpose.shipped import find_config

    config = str(find_config(entry.config))
    return fetch_weights(entry.name, progress=progress), config


# ---------------------------------------------------------------------------- listing
def entry_record(entry: ZooEntry) -> dict:
    """An entry as plain JSON-ready values, with the estimated size."""
    record = asdict(entry)
    record["input_size"] = list(entry.input_size)
    record["opts"] = list(entry.opts)
    record["size_mb"] = entry.size_mb
    record["file_name"] = entry.weights_name
    return record


def format_table(entries: list[ZooEntry] | None = None) -> str:
    """The zoo as an aligned text table (``humanpose zoo``)."""
    entries = list(ENTRIES.values()) if entries is None else entries

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    header = ("name", "task", "keypoints", "input (wxh)", "params (M)", "GFLOPs",
              "published AP", "size (MB)", "licence")
    rows = [header]
    for e in entries:
        ap = "-" if e.ap is None else f"{e.ap} {e.ap_on}"
        size = "-" if e.size_mb is None else f"~{e.size_mb:g}"
        rows.append((e.name, e.task, e.keypoints, f"{e.input_size[0]}x{e.input_size[1]}",
                     num(e.params_m, "g"), num(e.gflops, "g"), ap, size, e.licence))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
