"""Same weights, same outputs: humanpose's RTMPose/RTMDet against mmpose 1.3.2 / mmdet 3.3.0.

Two processes exchange files in a temporary folder. The reference side runs under the
Python of a venv with mmpose + mmdet (``--mm-python``; see shared/reference/README.md): it
builds each model as the official config describes it, gives every weight and BatchNorm
statistic random values, and saves ``{"meta", "state_dict"}`` (mmpose's checkpoint layout),
one input batch and the network's raw outputs. This side builds the model from humanpose's
experiment file, loads that checkpoint strictly (``humanpose.load_checkpoint``), runs the
same input and prints the largest difference relative to the reference's largest value.

    PYTHONPATH=$PWD python benchmarks/check_mm_equivalence.py \
        --mm-python /work/mmvenv/bin/python --mm-path /work/shared/reference

End to end (``--topdown``, ``--detector``): the reference side builds the model from the
official config file (read from a checkout or bare git clone of mmpose, ``--mmpose-repo``:
projects/rtmpose is not in the installed package), gives it the same random weights, and
runs mmpose's ``inference_topdown`` (flip test on and off) or mmdet's
``inference_detector`` on a drawn 640x480 image and person boxes that this side wrote;
this side runs ``PoseEstimator(yaml, weights, backend="torch")`` or
``build_person_detector(yaml with TEST.MODEL_FILE, backend="torch")`` and prints the largest
key-point / box differences in pixels. ``--detector`` also exports RTMDet-nano with
``humanpose export`` and runs the file as a detector on ONNX Runtime. The detectors are
compared by stage too (network input; humanpose's decoding of mmdet's own raw outputs),
on the 640x480 picture (letterboxed) and a 640x640 one. Random weights make near-ties
(flat SimCC vectors; runs of near-equal box scores along the image border) that float
rounding may break either way: the table counts them (``tied`` joints, ``swapped`` box
ranks) instead of calling them differences; boxes are compared as sets.

    PYTHONPATH=$PWD python benchmarks/check_mm_equivalence.py --topdown --detector \
        --mmpose-repo /path/to/mmpose

The reference side (``--reference-side DIR``) imports only mm* packages, never humanpose.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (humanpose experiment, reference description). The reference description holds the
# official configs' architecture settings (mmpose projects/rtmpose, mmdet configs/rtmdet).
RTMPOSE = {  # deepen, widen, input (w, h), joints
    "rtmpose-t": ("coco/rtmpose/rtmpose_t_256x192", (0.167, 0.375, (192, 256), 17)),
    "rtmpose-s": ("coco/rtmpose/rtmpose_s_256x192", (0.33, 0.5, (192, 256), 17)),
    "rtmpose-m": ("coco/rtmpose/rtmpose_m_256x192", (0.67, 0.75, (192, 256), 17)),
    "rtmpose-l": ("coco/rtmpose/rtmpose_l_256x192", (1.0, 1.0, (192, 256), 17)),
    "rtmpose-m-384": ("coco/rtmpose/rtmpose_m_384x288", (0.67, 0.75, (288, 384), 17)),
    "rtmpose-l-384": ("coco/rtmpose/rtmpose_l_384x288", (1.0, 1.0, (288, 384), 17)),
    "rtmpose-t-halpe26": ("halpe26/rtmpose/rtmpose_t_256x192", (0.167, 0.375, (192, 256), 26)),
    "rtmpose-s-halpe26": ("halpe26/rtmpose/rtmpose_s_256x192", (0.33, 0.5, (192, 256), 26)),
    "rtmpose-m-halpe26": ("halpe26/rtmpose/rtmpose_m_256x192", (0.67, 0.75, (192, 256), 26)),
    "rtmpose-l-halpe26": ("halpe26/rtmpose/rtmpose_l_256x192", (1.0, 1.0, (192, 256), 26)),
    # Whole body (DWPose's networks), hand and face: RTMPose with 133, 21 and 106 outputs.
    "dwpose-t": ("wholebody/rtmpose/rtmpose_t_256x192", (0.167, 0.375, (192, 256), 133)),
    "dwpose-s": ("wholebody/rtmpose/rtmpose_s_256x192", (0.33, 0.5, (192, 256), 133)),
    "dwpose-m": ("wholebody/rtmpose/rtmpose_m_256x192", (0.67, 0.75, (192, 256), 133)),
    "dwpose-l": ("wholebody/rtmpose/rtmpose_l_256x192", (1.0, 1.0, (192, 256), 133)),
    "dwpose-l-384": ("wholebody/rtmpose/rtmpose_l_384x288", (1.0, 1.0, (288, 384), 133)),
    "rtmpose-x-wholebody-384": ("wholebody/rtmpose/rtmpose_x_384x288",
                                (1.33, 1.25, (288, 384), 133)),
    "rtmpose-m-hand": ("hand/rtmpose/rtmpose_m_256x256", (0.67, 0.75, (256, 256), 21)),
    "rtmpose-t-face": ("face/rtmpose/rtmpose_t_256x256", (0.167, 0.375, (256, 256), 106)),
    "rtmpose-s-face": ("face/rtmpose/rtmpose_s_256x256", (0.33, 0.5, (256, 256), 106)),
    "rtmpose-m-face": ("face/rtmpose/rtmpose_m_256x256", (0.67, 0.75, (256, 256), 106)),
}
RTMW = {  # deepen, widen, input (w, h), joints: RTMPose's backbone + mmpose's PAFPN + RTMWHead
    "rtmw-m": ("wholebody/rtmw/rtmw_m_256x192", (0.67, 0.75, (192, 256), 133)),
    "rtmw-l": ("wholebody/rtmw/rtmw_l_256x192", (1.0, 1.0, (192, 256), 133)),
    "rtmw-l-384": ("wholebody/rtmw/rtmw_l_384x288", (1.0, 1.0, (288, 384), 133)),
    "rtmw-x": ("wholebody/rtmw/rtmw_x_256x192", (1.33, 1.25, (192, 256), 133)),
    "rtmw-x-384": ("wholebody/rtmw/rtmw_x_384x288", (1.33, 1.25, (288, 384), 133)),
}
TOPDOWN = {**RTMPOSE, **RTMW}  # the top-down SimCC models, compared the same way
RTMDET = {  # deepen, widen, depthwise, neck channels, neck blocks, share conv, exp, input
    "rtmdet-nano": ("detection/rtmdet_nano_320_person",
                    (0.33, 0.25, True, 64, 1, False, False, 320)),
    "rtmdet-tiny": ("detection/rtmdet_tiny_640_person",
                    (0.167, 0.375, False, 96, 1, True, False, 640)),
    "rtmdet-m": ("detection/rtmdet_m_640_person",
                 (0.67, 0.75, False, 192, 2, True, True, 640)),
}
DEFAULT = ["rtmpose-t", "rtmpose-m", "rtmdet-nano", "rtmdet-m"]
# The detectors' pictures, end to end: 640x480 (letterboxed: padded rows) and 640x640.
PICTURES = ("image", "square")


# ------------------------------------------------------------------ reference side (mm venv)
def _mm_rtmpose(spec):
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    register_all_modules()
    deepen, widen, (w, h), joints = spec
    channels = int(1024 * widen)
    model = MODELS.build(dict(
        type="TopdownPoseEstimator",
        data_preprocessor=dict(type="PoseDataPreprocessor", mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(_scope_="mmdet", type="CSPNeXt", arch="P5", expand_ratio=0.5,
                      deepen_factor=deepen, widen_factor=widen, out_indices=(4,),
                      channel_attention=True, norm_cfg=dict(type="BN"),
                      act_cfg=dict(type="SiLU")),
        head=dict(type="RTMCCHead", in_channels=channels, out_channels=joints,
                  input_size=(w, h), in_featuremap_size=(w // 32, h // 32),
                  simcc_split_ratio=2.0, final_layer_kernel_size=7,
                  gau_cfg=dict(hidden_dims=256, s=128, expansion_factor=2, dropout_rate=0.0,
                               drop_path=0.0, act_fn="SiLU", use_rel_bias=False,
                               pos_enc=False),
                  loss=dict(type="KLDiscretLoss", use_target_weight=True, beta=10.0,
                            label_softmax=True)),
        test_cfg=dict(flip_test=True)))
    return model, (h, w), lambda x: model.head(model.backbone(x))


def _mm_rtmw(spec):
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    register_all_modules()
    deepen, widen, (w, h), joints = spec
    chans = [int(c * widen) for c in (256, 512, 1024)]
    model = MODELS.build(dict(
        type="TopdownPoseEstimator",
        data_preprocessor=dict(type="PoseDataPreprocessor", mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(_scope_="mmdet", type="CSPNeXt", arch="P5", expand_ratio=0.5,
                      deepen_factor=deepen, widen_factor=widen, channel_attention=True,
                      norm_cfg=dict(type="BN"), act_cfg=dict(type="SiLU")),
        neck=dict(type="CSPNeXtPAFPN", in_channels=chans, out_channels=None,
                  out_indices=(1, 2), num_csp_blocks=2, expand_ratio=0.5,
                  norm_cfg=dict(type="SyncBN"), act_cfg=dict(type="SiLU", inplace=True)),
        head=dict(type="RTMWHead", in_channels=chans[-1], out_channels=joints,
                  input_size=(w, h), in_featuremap_size=(w // 32, h // 32),
                  simcc_split_ratio=2.0, final_layer_kernel_size=7,
                  gau_cfg=dict(hidden_dims=256, s=128, expansion_factor=2, dropout_rate=0.0,
                               drop_path=0.0, act_fn="SiLU", use_rel_bias=False,
                               pos_enc=False),
                  loss=dict(type="KLDiscretLoss", use_target_weight=True, beta=1.0,
                            label_softmax=True, label_beta=10.0)),
        test_cfg=dict(flip_test=True)))
    return model, (h, w), lambda x: model.head(model.neck(model.backbone(x)))


def _mm_rtmdet(spec):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    deepen, widen, depthwise, neck, blocks, share, exp_on_reg, size = spec
    bn, act = dict(type="BN"), dict(type="SiLU", inplace=True)
    chans = [int(c * widen) for c in (256, 512, 1024)]
    model = MODELS.build(dict(
        type="RTMDet",
        data_preprocessor=dict(type="DetDataPreprocessor", mean=[103.53, 116.28, 123.675],
                               std=[57.375, 57.12, 58.395], bgr_to_rgb=False),
        backbone=dict(type="CSPNeXt", arch="P5", expand_ratio=0.5, deepen_factor=deepen,
                      widen_factor=widen, channel_attention=True, use_depthwise=depthwise,
                      norm_cfg=bn, act_cfg=act),
        neck=dict(type="CSPNeXtPAFPN", in_channels=chans, out_channels=neck,
                  num_csp_blocks=blocks, expand_ratio=0.5, use_depthwise=depthwise,
                  norm_cfg=bn, act_cfg=act),
        bbox_head=dict(type="RTMDetSepBNHead", num_classes=1, in_channels=neck,
                       stacked_convs=2, feat_channels=neck, use_depthwise=depthwise,
                       anchor_generator=dict(type="MlvlPointGenerator", offset=0,
                                             strides=[8, 16, 32]),
                       bbox_coder=dict(type="DistancePointBBoxCoder"),
                       loss_cls=dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0,
                                     loss_weight=1.0),
                       loss_bbox=dict(type="GIoULoss", loss_weight=2.0),
                       with_objectness=False, exp_on_reg=exp_on_reg, share_conv=share,
                       pred_kernel_size=1, norm_cfg=bn, act_cfg=act),
        train_cfg=None, test_cfg=None))

    def forward(x):
        cls, reg = model._forward(x)
        return list(cls) + list(reg)
    return model, (size, size), forward


def _randomise(model, torch) -> None:
    """Weights that make every path count: conv/linear at unit gain, BN with real statistics."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", ".bias", ".beta")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() >= 2:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) / fan_in ** 0.5)
            else:  # BN weights, ScaleNorm gains, residual scales, GAU gamma
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)


def _mmengine_files(model, folder: Path, name: str, torch) -> None:
    """The two file layouts mmpose's users hold, written by mmengine's own code.

    ``published``: ``{"meta", "state_dict"}`` in torch's legacy format, as mmpose's
    tools/misc/publish_model.py leaves a training checkpoint; ``meta`` as mmengine's
    Runner fills it (config text, seed, dataset_meta with numpy arrays).
    ``training-ema``: what Runner.save_checkpoint writes with EMAHook: message_hub
    (HistoryBuffer objects), optimizer, param_schedulers, ``ema_state_dict`` (``module.``
    keys, ``steps``) and, swapped in by the hook, the averaged weights under state_dict.
    """
    import copy

    from mmdet.models.layers import ExpMomentumEMA
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint, weights_to_cpu
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    dataset_meta = parse_pose_metainfo(dict(from_file="configs/_base_/datasets/coco.py"))
    meta = dict(epoch=420, iter=1000, cfg="model = dict(type='TopdownPoseEstimator')",
                seed=21, experiment_name=name, time="20230127_000000",
                mmengine_version="0.10.7", dataset_meta=dataset_meta)
    state = weights_to_cpu(model.state_dict())
    torch.save({"meta": meta, "state_dict": state}, folder / f"{name}.published.pth",
               _use_new_zipfile_serialization=False)

    ema = ExpMomentumEMA(model, momentum=0.0002, update_buffers=True)
    ema.update_parameters(model)  # the first update copies
    with torch.no_grad():  # then the raw weights move away from the average
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ema.update_parameters(model)
    hub = MessageHub.get_instance(f"check-{name}")
    hub.update_scalar("train/loss", 1.5)
    hub.update_scalar("train/lr", 0.004)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.004)
    checkpoint = {"meta": meta, "state_dict": weights_to_cpu(model.state_dict()),
                  "message_hub": hub.state_dict(), "optimizer": optimizer.state_dict(),
                  "param_schedulers": [{"base_lrs": [0.004], "last_step": 1000}]}
    checkpoint["ema_state_dict"] = ema.state_dict()
    model_state, ema_state = checkpoint["state_dict"], checkpoint["ema_state_dict"]
    for k in list(ema_state):  # EMAHook._swap_ema_state_dict
        if k.startswith("module."):
            ema_state[k], model_state[k[7:]] = model_state[k[7:]], ema_state[k]
    averaged = copy.deepcopy(ema.module).eval()
    save_checkpoint(checkpoint, str(folder / f"{name}.training-ema.pth"))
    return averaged


def reference_side(folder: Path, names: list[str]) -> None:
    import mm_stub  # noqa: F401  mmcv-lite without compiled ops; see shared/reference
    import torch

    report = {}
    for name in names:
        if name in RTMPOSE:
            model, (h, w), forward = _mm_rtmpose(RTMPOSE[name][1])
        elif name in RTMW:
            model, (h, w), forward = _mm_rtmw(RTMW[name][1])
        else:
            model, (h, w), forward = _mm_rtmdet(RTMDET[name][1])
        model.eval()
        _randomise(model, torch)
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            outputs = forward(x)
        state = model.state_dict()
        torch.save({"meta": {"mmpose_version": "1.3.2", "mmdet_version": "3.3.0",
                             "epoch": 1, "iter": 1}, "state_dict": state},
                   folder / f"{name}.pth")
        torch.save({"input": x, "outputs": [o.contiguous() for o in outputs]},
                   folder / f"{name}.io.pt")
        if name == names[0] and name in RTMPOSE:
            averaged = _mmengine_files(model, folder, name, torch)
            with torch.no_grad():
                out = averaged.head(averaged.backbone(x))
            torch.save([o.contiguous() for o in out], folder / f"{name}.ema-out.pt")
        keys = "\n".join(f"{k}:{list(v.shape)}" for k, v in state.items())
        report[name] = {"params": sum(p.numel() for p in model.parameters()),
                        "keys": len(state),
                        "key_digest": hashlib.sha1(keys.encode()).hexdigest()[:12]}
    (folder / "reference.json").write_text(json.dumps(report, indent=1))



# ----------------------------------------------------- end to end, reference side (mm venv)
def _calibrate_rtmdet_head(model, image, torch) -> None:
    """Random weights give logits far from 0 and distances of either sign: no box, or
    nothing but degenerate ones. Measured on the image's own features, each level's class
    conv is scaled to logits of standard deviation 1.5 of which the best 3 % score above the
    0.05 threshold, its box conv to distances of about 2 strides."""
    from mmdet.apis import inference_detector

    head = model.bbox_head
    seen = {}

    def keep(key):
        return lambda module, args, out: seen.__setitem__(key, out)
    hooks = [conv.register_forward_hook(keep(f"{kind}{j}"))
             for kind in ("rtm_cls", "rtm_reg") for j, conv in enumerate(getattr(head, kind))]
    inference_detector(model, image)
    for h in hooks:
        h.remove()
    exp = bool(getattr(head, "exp_on_reg", False))
    with torch.no_grad():
        for j, conv in enumerate(head.rtm_cls):
            out = (seen[f"rtm_cls{j}"] - conv.bias.view(1, -1, 1, 1)).flatten()
            k = 1.5 / float(out.std())
            conv.weight.mul_(k)
            conv.bias.fill_(-3.0 - k * float(out.quantile(0.97)))
        for j, conv in enumerate(head.rtm_reg):
            out = seen[f"rtm_reg{j}"] - conv.bias.view(1, -1, 1, 1)
            conv.weight.mul_((0.25 if exp else 0.5) / out.std())
            conv.bias.fill_(0.7 if exp else 2.0)


def _mmdet_run(model, image, picture: str) -> dict:
    """``inference_detector``'s boxes, and the network's input and raw outputs."""
    from mmdet.apis import inference_detector

    seen = {}
    hooks = [model.backbone.register_forward_pre_hook(
                 lambda m, args: seen.__setitem__("input", args[0])),
             model.bbox_head.register_forward_hook(
                 lambda m, args, out: seen.__setitem__("raw", out))]
    pred = inference_detector(model, image).pred_instances
    for h in hooks:
        h.remove()
    cls_scores, bbox_preds = seen["raw"]
    out = {"boxes": pred.bboxes.numpy(), "scores": pred.scores.numpy(),
           "input": seen["input"].numpy(),
           **{f"cls{j}": c.numpy() for j, c in enumerate(cls_scores)},
           **{f"reg{j}": r.numpy() for j, r in enumerate(bbox_preds)}}
    return {f"{key}_{picture}": value for key, value in out.items()}


def _recording(decode, seen: list):
    def record(outputs):
        seen.append(outputs)
        return decode(outputs)
    return record


def reference_end_to_end(folder: Path, names: list[str]) -> None:
    """mmpose's ``inference_topdown`` / mmdet's ``inference_detector`` on ``image.npy`` with
    the official configs ``{name}.py`` and random weights saved as ``{name}.pth``."""
    import mm_stub  # noqa: F401  mmcv-lite without compiled ops; see shared/reference
    import numpy as np
    import torch

    image = np.load(folder / "image.npy")
    boxes = np.load(folder / "boxes.npy")
    for name in names:
        config = str(folder / f"{name}.py")
        if name in TOPDOWN:
            from mmpose.apis import inference_topdown, init_model

            model = init_model(config, None, device="cpu").eval()
            _randomise(model, torch)
            out = {}
            vectors = []  # the SimCC vectors the head decodes (after the flip test)
            model.head.decode = _recording(model.head.decode, vectors)
            for flip in (True, False):
                model.test_cfg["flip_test"] = flip
                vectors.clear()
                results = inference_topdown(model, image, boxes, bbox_format="xyxy")
                out[f"simcc_x_{flip}"] = vectors[0][0].numpy()
                out[f"simcc_y_{flip}"] = vectors[0][1].numpy()
                out[f"keypoints_{flip}"] = np.concatenate(
                    [r.pred_instances.keypoints for r in results])
                out[f"scores_{flip}"] = np.concatenate(
                    [r.pred_instances.keypoint_scores for r in results])
        else:
            from mmdet.apis import init_detector
            from mmdet.utils import register_all_modules

            register_all_modules()
            model = init_detector(config, None, device="cpu").eval()
            _randomise(model, torch)
            _calibrate_rtmdet_head(model, image, torch)
            out = {}
            for picture in PICTURES:
                out.update(_mmdet_run(model, np.load(folder / f"{picture}.npy"), picture))
        torch.save({"meta": {"mmpose_version": "1.3.2", "mmdet_version": "3.3.0"},
                    "state_dict": model.state_dict()}, folder / f"{name}.pth")
        np.savez(folder / f"{name}.e2e.npz", **out)


# ------------------------------------------------------------------------ humanpose side
def key_digest(state) -> str:
    """The digest the tests store: sha1 of ``name:[shape]`` lines, in state-dict order."""
    keys = "\n".join(f"{k}:{list(v.shape)}" for k, v in state.items())
    return hashlib.sha1(keys.encode()).hexdigest()[:12]


def compare(folder: Path, names: list[str]) -> list[dict]:
    import torch

    import humanpose
    from humanpose.detection import build_detector
    from humanpose.summary import count_gflops, count_parameters

    reference = json.loads((folder / "reference.json").read_text())
    rows = []
    for name in names:
        experiment = (TOPDOWN.get(name) or RTMDET[name])[0]
        cfg = humanpose.get_cfg(ROOT / "experiments" / f"{experiment}.yaml")
        if name in RTMDET:
            model = build_detector(cfg, channels_last=False).eval()
        else:
            model = humanpose.build_model(cfg, channels_last=False).eval()
        humanpose.load_checkpoint(model, folder / f"{name}.pth")  # strict
        io = torch.load(folder / f"{name}.io.pt", weights_only=True)
        with torch.no_grad():
            out = model(io["input"])
        ours = list(out[0]) + list(out[1]) if isinstance(out[0], list) else list(out)
        errors = [((a - b).abs().max() / b.abs().max()).item()
                  for a, b in zip(ours, io["outputs"], strict=True)]
        for kind in ("published", "training-ema"):
            path = folder / f"{name}.{kind}.pth"
            if not path.is_file():
                continue
            humanpose.load_checkpoint(model, path)  # strict, weights_only
            expected = (io["outputs"] if kind == "published"
                        else torch.load(folder / f"{name}.ema-out.pt", weights_only=True))
            with torch.no_grad():
                got = model(io["input"])
            errors += [((a - b).abs().max() / b.abs().max()).item()
                       for a, b in zip(got, expected, strict=True)]
            print(f"{name}: mmengine's {kind} file loads strictly (weights_only=True)")
        rows.append({"model": name, "experiment": experiment,
                     "params": count_parameters(model), "mm_params": reference[name]["params"],
                     "keys": len(model.state_dict()), "mm_keys": reference[name]["keys"],
                     "key_digest": key_digest(model.state_dict()),
                     "mm_key_digest": reference[name]["key_digest"],
                     "gflops": round(count_gflops(model, tuple(cfg.MODEL.IMAGE_SIZE)), 4),
                     "max_rel_diff": max(errors),
                     "ref_max_abs": max(b.abs().max().item() for b in io["outputs"])})
    return rows


# ------------------------------------------------------------ end to end, humanpose side
# The official configs, in mmpose's repository (projects/ is not installed with mmpose).
MM_CONFIGS = {
    "rtmpose-t": "projects/rtmpose/rtmpose/body_2d_keypoint/"
                 "rtmpose-t_8xb256-420e_coco-256x192.py",
    "rtmpose-s": "projects/rtmpose/rtmpose/body_2d_keypoint/"
                 "rtmpose-s_8xb256-420e_coco-256x192.py",
    "rtmpose-m": "projects/rtmpose/rtmpose/body_2d_keypoint/"
                 "rtmpose-m_8xb256-420e_coco-256x192.py",
    "rtmpose-l": "projects/rtmpose/rtmpose/body_2d_keypoint/"
                 "rtmpose-l_8xb256-420e_coco-256x192.py",
    "dwpose-m": "projects/rtmpose/rtmpose/wholebody_2d_keypoint/"
                "rtmpose-m_8xb64-270e_coco-wholebody-256x192.py",
    "rtmw-l": "projects/rtmpose/rtmpose/wholebody_2d_keypoint/"
              "rtmw-l_8xb1024-270e_cocktail14-256x192.py",
    "rtmpose-m-hand": "projects/rtmpose/rtmpose/hand_2d_keypoint/"
                      "rtmpose-m_8xb32-210e_coco-wholebody-hand-256x256.py",
    "rtmpose-m-face": "projects/rtmpose/rtmpose/face_2d_keypoint/"
                      "rtmpose-m_8xb256-120e_lapa-256x256.py",
    "rtmdet-nano": "projects/rtmpose/rtmdet/person/rtmdet_nano_320-8xb32_coco-person.py",
    "rtmdet-m": "projects/rtmpose/rtmdet/person/rtmdet_m_640-8xb32_coco-person.py",
}
E2E_TOPDOWN = ["rtmpose-t", "rtmpose-m"]
E2E_DETECTOR = ["rtmdet-nano", "rtmdet-m"]


def read_mm_config(repo: Path, relative: str) -> str:
    """A file of mmpose's repository: a checkout, or a bare clone (read with git show)."""
    if (repo / relative).is_file():
        return (repo / relative).read_text()
    result = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{relative}"],
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"cannot read {relative} from {repo}: {result.stderr.strip()}")
    return result.stdout


def write_inputs(folder: Path, names: list[str], repo: Path) -> None:
    """The picture (drawn people, 640x480, BGR), person boxes (x1, y1, x2, y2: those of the
    drawn people and one that leaves the image) and the official configs."""
    import numpy as np

    from humanpose.data.synthetic import SynthConfig, draw_scene

    draw = dict(max_people=3, min_height=0.5, occluder_prob=0.0, noise=12.0)
    image, people = draw_scene(np.random.default_rng(3),
                               SynthConfig(width=640, height=480, **draw))
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (p.bbox for p in people)]
    boxes.append([520.3, 150.7, 700.0, 470.2])
    np.save(folder / "image.npy", image)
    square, _ = draw_scene(np.random.default_rng(4), SynthConfig(width=640, height=640, **draw))
    np.save(folder / "square.npy", square)
    np.save(folder / "boxes.npy", np.asarray(boxes, dtype=np.float32))
    for name in names:
        (folder / f"{name}.py").write_text(read_mm_config(repo, MM_CONFIGS[name]))


def _near_ties(ours, ref, tol: float):
    """(N, K) True where the reference vector's value at our argmax is within ``tol`` of
    its maximum: a tie that float rounding may break either way."""
    import numpy as np

    bins = ours.argmax(axis=2)[..., None]
    return (ref.max(axis=2) - np.take_along_axis(ref, bins, axis=2)[..., 0]) <= tol


def compare_topdown(folder: Path, name: str) -> list[dict]:
    """PoseEstimator (torch backend) on the reference's image, boxes and weights: the
    SimCC vectors the codec decodes, then the key points and scores in image pixels. A
    joint whose argmax differs is counted apart when the reference's vector has a near-tie
    there (within twice the largest vector difference): random weights make flat vectors."""
    import warnings

    import numpy as np

    from humanpose.inference.estimator import PoseEstimator

    image = np.load(folder / "image.npy")
    xyxy = np.load(folder / "boxes.npy")
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    ref = np.load(folder / f"{name}.e2e.npz")
    cfg = ROOT / "experiments" / f"{TOPDOWN[name][0]}.yaml"
    rows = []
    for flip in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = PoseEstimator(str(cfg), folder / f"{name}.pth", backend="torch",
                                flip_test=flip)
        people = est(image, xywh)
        ours = np.stack([p.keypoints for p in people])
        vx, vy = (o.numpy() for o in est.outputs(est.crop(image, xywh)[0]))
        rx, ry = ref[f"simcc_x_{flip}"], ref[f"simcc_y_{flip}"]
        vec = max(float(np.abs(vx - rx).max()), float(np.abs(vy - ry).max()))
        scale = max(float(np.abs(rx).max()), float(np.abs(ry).max()))
        ties = _near_ties(vx, rx, 2 * vec) | _near_ties(vy, ry, 2 * vec)
        px = np.abs(ours[..., :2] - ref[f"keypoints_{flip}"]).max(axis=2)
        tied = (px > 1e-3) & ties
        score = np.abs(ours[..., 2] - ref[f"scores_{flip}"]).max()
        # Random weights put many joints on the same bins: say how many places differ.
        distinct = len(np.unique(ours[..., :2].reshape(-1, 2).round(2), axis=0))
        items = f"{len(xywh)}x{ours.shape[1]} kp, {distinct} places"
        if tied.any():
            items += f", {int(tied.sum())} tied"
        rows.append({"model": name, "case": f"flip {'on' if flip else 'off'}",
                     "items": items, "px": float(px[~tied].max()), "score": float(score),
                     "vectors": vec / scale})
    return rows


def _box_row(name: str, case: str, ours, ref) -> dict:
    """Boxes and scores against the reference's, as sets: each box is paired with the
    reference box nearest to it (largest coordinate difference), and the row gives the
    worst pair in pixels and its score difference. Random weights give long runs of near-
    equal scores (a column of priors at the image border, a padded row: 114 everywhere),
    whose order float rounding may swap; the count of positions where the sorted lists
    differ is shown, as ``swapped``."""
    import numpy as np

    (boxes, scores), (ref_boxes, ref_scores) = ours, ref
    row = {"model": name, "case": case, "items": f"{len(boxes)}/{len(ref_boxes)} boxes",
           "px": float("inf"), "score": float("inf")}
    if len(boxes) != len(ref_boxes):
        return row
    if not len(boxes):
        return {**row, "px": 0.0, "score": 0.0}
    gaps = np.abs(boxes[:, None, :] - ref_boxes[None, :, :]).max(axis=2)
    nearest = gaps.argmin(axis=1)
    row["px"] = float(gaps[np.arange(len(boxes)), nearest].max())
    row["score"] = float(np.abs(scores - ref_scores[nearest]).max())
    if len(set(nearest.tolist())) != len(boxes):  # two boxes on one: not the same set
        row["px"] = float("inf")
    swapped = int((nearest != np.arange(len(boxes))).sum())
    if swapped:
        row["items"] += f", {swapped} swapped"
    return row


def compare_detector(folder: Path, name: str) -> list[dict]:
    """build_person_detector (torch) against mmdet, by stage (network input, decoding of
    mmdet's own raw outputs, end to end) on each picture; for RTMDet-nano also the file
    ``humanpose export`` writes, run as a detector on ONNX Runtime."""
    import numpy as np
    import torch

    import humanpose
    from humanpose.detection import build_person_detector
    from humanpose.detection.rtmdet import decode, preprocess

    ref = np.load(folder / f"{name}.e2e.npz")
    cfg = humanpose.get_cfg(ROOT / "experiments" / f"{RTMDET[name][0]}.yaml",
                            ["TEST.MODEL_FILE", str(folder / f"{name}.pth")])
    yaml_path = folder / f"{name}.yaml"
    yaml_path.write_text(cfg.dump())
    torch_det = build_person_detector(yaml_path, backend="torch")
    ort_det = None
    if name == "rtmdet-nano":
        onnx_path = folder / f"{name}.onnx"
        result = subprocess.run(
            [sys.executable, "-m", "humanpose", "export", "--cfg",
             str(ROOT / "experiments" / f"{RTMDET[name][0]}.yaml"), "--weights",
             str(folder / f"{name}.pth"), "--output", str(onnx_path)],
            capture_output=True, text=True, cwd=folder)
        print(result.stdout.strip() or result.stderr.strip())
        onnx_diff = float(result.stdout.rsplit(":", 1)[-1]) if result.returncode == 0 \
            else float("inf")
        ort_det = build_person_detector(onnx_path, backend="onnxruntime")
    rows = []
    for picture in PICTURES:
        image = np.load(folder / f"{picture}.npy")
        size = f"{image.shape[1]}x{image.shape[0]}"
        expected = (ref[f"boxes_{picture}"], ref[f"scores_{picture}"])
        x, meta = preprocess(image, torch_det.params)
        diff = float(np.abs(x - ref[f"input_{picture}"]).max())
        rows.append({"model": name, "case": f"{size} network input", "items": "tensor (abs diff)",
                     "px": diff, "score": 0.0})
        raw = [[torch.from_numpy(ref[f"{kind}{j}_{picture}"]) for j in range(3)]
               for kind in ("cls", "reg")]
        rows.append(_box_row(name, f"{size} decode(mm raw)", decode(*raw, meta)[:2],
                             expected))
        boxes, scores, _ = torch_det.detect(image)
        rows.append(_box_row(name, f"{size} torch vs mmdet", (boxes, scores), expected))
        if ort_det is not None:
            row = _box_row(name, f"{size} onnxruntime vs torch", ort_det.detect(image)[:2],
                           (boxes, scores))
            row["onnx"] = onnx_diff
            rows.append(row)
    return rows


def end_to_end(args, names: list[str]) -> bool:
    """Write the inputs, run the reference, compare; print the table; True when equal."""
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            tmp = args.keep
            Path(tmp).mkdir(parents=True, exist_ok=True)
        folder = Path(tmp)
        write_inputs(folder, names, Path(args.mmpose_repo))
        env = {**os.environ, "PYTHONPATH": args.mm_path}
        subprocess.run([args.mm_python, __file__, "--reference-side", tmp, "--end-to-end",
                        "--models", *names], check=True, env=env)
        rows = []
        for name in names:
            rows += (compare_topdown if name in TOPDOWN else compare_detector)(folder, name)
    ok = True
    print(f"{'model':12} {'case':22} {'compared':>20} {'max px diff':>12} "
          f"{'max score diff':>15}")
    for r in rows:
        same = r["px"] <= 1e-3 and r["score"] <= 1e-4 and r.get("onnx", 0.0) <= 1e-4
        ok &= same
        extra = f"  (ONNX round trip {r['onnx']:.2e})" if "onnx" in r else ""
        if "vectors" in r:
            extra = f"  (SimCC vectors: max rel diff {r['vectors']:.2e})"
            same &= r["vectors"] <= 1e-4
        print(f"{r['model']:12} {r['case']:22} {r['items']:>20} {r['px']:>12.2e} "
              f"{r['score']:>15.2e}{extra}{'' if same else '  MISMATCH'}")
    return ok


# ------------------------------------------------------------------------------- RTMO
# name: (humanpose experiment, official config in mmpose's repository).
RTMO = {
    "rtmo-s": ("coco/rtmo/rtmo_s_640x640", "configs/body_2d_keypoint/rtmo/coco/"
               "rtmo-s_8xb32-600e_coco-640x640.py"),
    "rtmo-m": ("coco/rtmo/rtmo_m_640x640", "configs/body_2d_keypoint/rtmo/coco/"
               "rtmo-m_16xb16-600e_coco-640x640.py"),
    "rtmo-l": ("coco/rtmo/rtmo_l_640x640", "configs/body_2d_keypoint/rtmo/coco/"
               "rtmo-l_16xb16-600e_coco-640x640.py"),
}
RTMO_PEOPLE = 40  # anchors above the score threshold once the score bias is calibrated
RTMO_BN_GAIN = 0.8  # BatchNorm scales, see _randomise_rtmo
RTMO_KEEP = ("dim_t", "x_bins", "y_bins", "sigmas")  # buffers that are constants, not weights


def write_rtmo_inputs(folder: Path, names: list[str], repo: Path) -> None:
    """A drawn 640x480 picture and the official configs, made loadable outside mmpose's
    tree (their ``_base_`` and dataset-meta paths are relative to the repository)."""
    import numpy as np

    from humanpose.data.synthetic import SynthConfig, draw_scene

    image, _ = draw_scene(np.random.default_rng(5), SynthConfig(
        width=640, height=480, max_people=3, min_height=0.5, occluder_prob=0.0, noise=12.0))
    np.save(folder / "rtmo_image.npy", image)
    (folder / "default_runtime.py").write_text(
        read_mm_config(repo, "configs/_base_/default_runtime.py"))
    for name in names:
        text = read_mm_config(repo, RTMO[name][1])
        text = text.replace("'../../../_base_/default_runtime.py'",
                            repr(str(folder / "default_runtime.py")))
        (folder / f"{name}.py").write_text(text)


def _randomise_rtmo(model, torch) -> None:
    """As :func:`_randomise`, but the constant buffers (sine frequencies, DCC bins, OKS
    sigmas) keep their values: random bins would make the DCC meaningless."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or name.endswith(RTMO_KEEP):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", ".bias", ".beta")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() >= 2:
                t.copy_(torch.randn(t.shape, generator=gen) / t[0].numel() ** 0.5)
            else:
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
        # Unit-gain weights make the DCC's bin logits reach the hundreds: a softmax that is
        # an argmax over near-tied bins, which float rounding flips either way. Scaled down,
        # the 1-D heatmaps are soft, as a trained model's are.
        for fc in (model.head.dcc.x_fc, model.head.dcc.y_fc):
            fc.weight.mul_(0.02)
            fc.bias.mul_(0.02)
        # BatchNorm scales drawn around 1 let RTMO-l's 4 deep stages grow activations to
        # ~1e4, where float32 itself moves its key points by 0.43 px (our own model in
        # float32 against float64, same weights). At 0.8x they stay tame: 1.8e-4 px.
        for name, t in model.state_dict().items():
            if name.endswith("bn.weight"):
                t.mul_(RTMO_BN_GAIN)
    # Likewise the box sizes are exp() of a prediction: at unit gain RTMO-l's overflow.
    # Scaled (on the picture, in reference_rtmo) so that the largest log-size is 3.


def reference_rtmo(folder: Path, names: list[str]) -> None:
    """mm venv: build each official config, random weights, the score bias shifted so that
    about RTMO_PEOPLE anchors pass the threshold on the picture; save the checkpoint, the
    network input of mmpose's pipeline, every anchor's decoded outputs (mmpose's own
    decode_bbox and DCC) and inference_bottomup's people."""
    import math

    import mm_stub  # noqa: F401
    import numpy as np
    import torch
    from mmengine.dataset import Compose, pseudo_collate
    from mmpose.apis import inference_bottomup, init_model
    from mmpose.structures.bbox import bbox_xyxy2cs

    image = np.load(folder / "rtmo_image.npy")
    meta_file = Path(__import__("mmpose").__file__).parent / ".mim/configs/_base_/datasets/coco.py"
    report = {}
    for name in names:
        cfg = folder / f"{name}.py"
        cfg.write_text(cfg.read_text().replace("'configs/_base_/datasets/coco.py'",
                                               repr(str(meta_file))))
        model = init_model(str(cfg), None, device="cpu")
        _randomise_rtmo(model, torch)
        model.eval()
        pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
        sample = pipeline(dict(img=image, img_path="picture"))
        data = model.data_preprocessor(pseudo_collate([sample]), False)
        x = data["inputs"]
        head = model.head

        def anchors(x, model=model, head=head):
            cls, box, _, vis, pose = head.forward(model.extract_feat(x))
            sizes = [c.shape[2:] for c in cls]
            priors = torch.cat(head.prior_generator.grid_priors(sizes, dtype=x.dtype,
                                                                device=x.device))
            stride = torch.cat([priors.new_full((s.numel(),), st)
                                for s, st in zip(sizes, head.featmap_strides)])
            logits = head._flatten_predictions(cls)[0, :, 0]
            boxes = head.decode_bbox(head._flatten_predictions(box), priors, stride)[0]
            pose = head._flatten_predictions(pose)[0]
            kpts = head.dcc.forward_test(pose, torch.cat(bbox_xyxy2cs(boxes, 1.25), dim=1),
                                         priors)
            return (logits, boxes, kpts,
                    head._flatten_predictions(vis)[0].sigmoid(), pose, priors)

        with torch.no_grad():
            raw = head.head_module(model.extract_feat(x))[1]
            big = max(float(b[:, 2:].abs().max()) for b in raw)
            for conv in head.head_module.out_bbox:
                conv.weight.mul_(3.0 / big)
                conv.bias.mul_(3.0 / big)
            logits = anchors(x)[0]
            # Logits spread to a standard deviation of 2: RTMO-l's reach sigmoid 1.0, and
            # tied scores make the ranking (top-k, NMS order) arbitrary.
            spread = 2.0 / float(logits.std())
            for conv in head.head_module.out_cls:
                conv.weight.mul_(spread)
                conv.bias.mul_(spread)
            logits = anchors(x)[0]
            shift = float(logits.topk(RTMO_PEOPLE).values[-1]) - math.log(0.1 / 0.9) + 1e-3
            for conv in head.head_module.out_cls:
                conv.bias -= shift
            logits, boxes, kpts, vis, pose, priors = anchors(x)
        torch.save({"meta": {"note": "random weights"}, "state_dict": model.state_dict()},
                   folder / f"{name}.pth")
        result = inference_bottomup(model, image)[0].pred_instances
        np.savez(folder / f"{name}.ref.npz", input=x.numpy(), scores=logits.sigmoid().numpy(),
                 boxes=boxes.numpy(), keypoints=kpts.numpy(), visibility=vis.numpy(),
                 pose=pose.numpy(), priors=priors.numpy(),
                 people_keypoints=result.keypoints, people_scores=result.keypoint_scores,
                 people_boxes=result.bboxes, people_box_scores=result.bbox_scores,
                 center=sample["data_samples"].metainfo["input_center"],
                 scale=sample["data_samples"].metainfo["input_scale"])
        report[name] = {"params": sum(p.numel() for p in model.parameters()),
                        "keys": len(model.state_dict())}
    (folder / "rtmo_report.json").write_text(json.dumps(report))


def compare_rtmo(folder: Path, names: list[str]) -> list[dict]:
    """This side: the same checkpoint loaded strictly; the network's rows against the
    reference's anchors they are (matched by box and score); predict_rtmo's people against
    inference_bottomup's; and the DCC alone on mmpose's own pose vectors and boxes of every
    anchor (``DCC px``), which separates the decoder from the float noise of the layers
    before it.

    With random weights the boxes' ``exp`` makes boxes of thousands of pixels, over which
    the DCC spreads its bins: float32 noise of ~1e-5 relative in the features moves such
    key points by pixels (see RESULTS.md, RTMO)."""
    import numpy as np
    import torch

    import humanpose
    from humanpose.runtime.rtmo import predict_rtmo, preprocess

    image = np.load(folder / "rtmo_image.npy")
    report = json.loads((folder / "rtmo_report.json").read_text())
    rows = []
    for name in names:
        ref = np.load(folder / f"{name}.ref.npz")
        cfg = humanpose.get_cfg(str(ROOT / "experiments" / f"{RTMO[name][0]}.yaml"), [])
        model = humanpose.build_model(cfg).eval()
        humanpose.load_checkpoint(model, str(folder / f"{name}.pth"))
        batch, meta = preprocess(image, tuple(cfg.MODEL.IMAGE_SIZE))
        with torch.no_grad():
            out = model(torch.from_numpy(ref["input"]))[0].numpy()
            alone = model.head.dcc(*(torch.from_numpy(ref[key])
                                     for key in ("pose", "boxes", "priors"))).numpy()
        k = cfg.MODEL.NUM_JOINTS
        every = np.concatenate([ref["boxes"], ref["scores"][:, None],
                                ref["keypoints"].reshape(len(ref["boxes"]), -1),
                                ref["visibility"]], axis=1)
        # Each of our rows against the reference anchor it is (nearest box and score, of
        # all 2000): near-tied scores may order the top 300 differently on the two sides.
        gap = np.abs(out[:, None, :5] - every[None, :, :5]).max(-1)
        expect = every[gap.argmin(1)]

        def rel(cols, out=out, expect=expect):
            return float(np.abs(out[:, cols] - expect[:, cols]).max()
                         / np.abs(expect[:, cols]).max())

        px = slice(5, 5 + 2 * k)
        boxes, people = predict_rtmo(lambda b, m=model: m(torch.from_numpy(b)), image,
                                     tuple(cfg.MODEL.IMAGE_SIZE), cfg.MODEL.RTMO.SCORE_THR,
                                     cfg.MODEL.RTMO.NMS_THR)
        same_count = len(boxes) == len(ref["people_boxes"])
        n = min(len(boxes), len(ref["people_boxes"]))
        rows.append({
            "model": name, "params": sum(p.numel() for p in model.parameters()),
            "mm_params": report[name]["params"], "keys": len(model.state_dict()),
            "mm_keys": report[name]["keys"],
            "input": float(np.abs(batch - ref["input"]).max()),
            "geometry": float(max(np.abs(np.subtract(meta.center, ref["center"])).max(),
                                  np.abs(np.subtract(meta.scale, ref["scale"])).max())),
            "boxes_rel": rel(slice(0, 4)), "kpts_rel": rel(px),
            "dcc_px": float(np.abs(alone - ref["keypoints"]).max()),
            "scores_abs": float(np.abs(out[:, 4] - expect[:, 4]).max()),
            "vis_abs": float(np.abs(out[:, 5 + 2 * k:] - expect[:, 5 + 2 * k:]).max()),
            "people": f"{len(boxes)}/{len(ref['people_boxes'])}", "same_count": same_count,
            "kpt_px": float(np.abs(people[:n, :, :2] - ref["people_keypoints"][:n]).max())
            if n else 0.0,
            "box_px": float(np.abs(boxes[:n, :4] - ref["people_boxes"][:n]).max()) if n else 0.0,
            "score": float(max(np.abs(people[:n, :, 2] - ref["people_scores"][:n]).max(),
                               np.abs(boxes[:n, 4] - ref["people_box_scores"][:n]).max()))
            if n else 0.0})
    return rows


def check_rtmo(args, names: list[str]) -> bool:
    """Run both sides for RTMO and print the table; True when everything matches."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        write_rtmo_inputs(folder, names, Path(args.mmpose_repo))
        env = {**os.environ, "PYTHONPATH": args.mm_path}
        subprocess.run([args.mm_python, __file__, "--reference-side", str(folder), "--rtmo",
                        "--models", *names], check=True, env=env)
        rows = compare_rtmo(folder, names)
    ok = True
    print(f"{'model':8} {'params':>11} {'mm params':>11} {'keys':>9} {'input':>8} "
          f"{'box rel':>9} {'kpt rel':>9} {'score':>9} {'vis':>9} {'people':>7} "
          f"{'kpt px':>9} {'box px':>9} {'score':>9} {'DCC px':>9}")
    for r in rows:
        same = (r["params"] == r["mm_params"] and r["keys"] == r["mm_keys"]
                and r["input"] == 0 and r["geometry"] == 0 and r["same_count"]
                and max(r["boxes_rel"], r["kpts_rel"], r["scores_abs"], r["vis_abs"]) < 1e-4
                and max(r["kpt_px"], r["box_px"]) <= 1e-3 and r["score"] <= 1e-4
                and r["dcc_px"] <= 1e-3)
        ok &= same
        print(f"{r['model']:8} {r['params']:>11,} {r['mm_params']:>11,} "
              f"{r['keys']:>4}/{r['mm_keys']:<4} {r['input']:>8.1e} {r['boxes_rel']:>9.2e} "
              f"{r['kpts_rel']:>9.2e} {r['scores_abs']:>9.2e} {r['vis_abs']:>9.2e} "
              f"{r['people']:>7} {r['kpt_px']:>9.2e} {r['box_px']:>9.2e} "
              f"{r['score']:>9.2e} {r['dcc_px']:>9.2e}{'' if same else '  MISMATCH'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None,
                        choices=sorted(TOPDOWN) + sorted(RTMDET) + sorted(RTMO))
    parser.add_argument("--topdown", action="store_true",
                        help="end to end: PoseEstimator vs mmpose's inference_topdown")
    parser.add_argument("--detector", action="store_true",
                        help="end to end: RTMDet detector vs mmdet's inference_detector, and "
                             "RTMDet-nano exported to ONNX")
    parser.add_argument("--mm-python", default="/work/mmvenv/bin/python",
                        help="python of a venv with mmpose 1.3.2 and mmdet 3.3.0")
    parser.add_argument("--mm-path", default="/work/shared/reference",
                        help="folder holding mm_stub.py (added to the reference's PYTHONPATH)")
    parser.add_argument("--mmpose-repo", default="/work/.mirror/open-mmlab+mmpose/repo",
                        help="mmpose's repository (checkout or bare clone): the official "
                             "configs under projects/rtmpose")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="end to end: write the exchanged files (weights, image, "
                             "results) to DIR and keep them")
    parser.add_argument("--rtmo", action="store_true",
                        help="RTMO-s/m/l: parameters, keys, raw outputs and people (end to "
                             "end) vs mmpose's inference_bottomup")
    parser.add_argument("--reference-side", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--end-to-end", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rtmo:
        names = [n for n in (args.models or RTMO) if n in RTMO]
        if args.reference_side:
            reference_rtmo(Path(args.reference_side), names)
            return 0
        return 0 if check_rtmo(args, names) else 1
    if args.reference_side:
        (reference_end_to_end if args.end_to_end else reference_side)(
            Path(args.reference_side), args.models)
        return 0
    if args.topdown or args.detector:
        names = args.models or ((E2E_TOPDOWN if args.topdown else [])
                                + (E2E_DETECTOR if args.detector else []))
        unknown = [n for n in names if n not in MM_CONFIGS]
        if unknown:
            parser.error(f"no official config known for {unknown}; end to end: "
                         f"{sorted(MM_CONFIGS)}")
        return 0 if end_to_end(args, names) else 1
    names = args.models or DEFAULT
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": args.mm_path}
        subprocess.run([args.mm_python, __file__, "--reference-side", tmp, "--models",
                        *names], check=True, env=env)
        rows = compare(Path(tmp), names)
    ok = True
    print(f"{'model':20} {'params':>11} {'mm params':>11} {'keys':>9} {'digest':>14} "
          f"{'GFLOPs':>7} {'max |ref|':>9} {'max rel diff':>12}")
    for r in rows:
        same = (r["params"] == r["mm_params"] and r["keys"] == r["mm_keys"]
                and r["key_digest"] == r["mm_key_digest"] and r["max_rel_diff"] < 1e-4)
        ok &= same
        print(f"{r['model']:20} {r['params']:>11,} {r['mm_params']:>11,} "
              f"{r['keys']:>4}/{r['mm_keys']:<4} {r['key_digest']:>14} {r['gflops']:>7.3f} "
              f"{r['ref_max_abs']:>9.3g} "
              f"{r['max_rel_diff']:>12.2e}{'' if same else '  MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
