"""``humanpose <command>``: parse the arguments, then call one function per command.

Every command that takes a config accepts the seed's form ``--cfg FILE KEY VALUE ...``;
options may stand before or after the ``KEY VALUE`` pairs.

Problems with the user's input or machine (bad config values, missing or unwritable files,
a full disk) end in one line naming the key or path and a non-zero exit code, without a
traceback; ``--debug`` anywhere on the command line (or HUMANPOSE_DEBUG=1) shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from humanpose.config import ConfigError, ConfigWarning, get_cfg, tracker_settings
from humanpose.errors import HumanposeError


def add_cfg_args(parser: argparse.ArgumentParser, model: bool = True,
                 weights: bool = False) -> None:
    """``--cfg`` (a path or a shipped name), and where it makes sense ``--model NAME`` (a zoo
    entry: ``--cfg <its config> TEST.MODEL_FILE <its fetched weights>``) and ``--weights``."""
    parser.add_argument("--cfg", default=None,
                        help="experiment YAML file, or the name of a shipped one, e.g. "
                             "coco/lpn/lpn50_256x192_gd256x2_gc")
    if model:
        parser.add_argument("--model", default=None, metavar="NAME",
                            help="a model zoo name ('humanpose zoo' lists them): its config "
                                 "and its weights, downloaded and verified on first use")
    if weights:
        parser.add_argument("--weights", default=None, metavar="FILE",
                            help="weights (TEST.MODEL_FILE); a file humanpose trained carries "
                                 "its config, so --cfg may be left out; with --model, a local "
                                 "copy of the zoo file (verified)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE",
                        help="config overrides, e.g. TEST.MODEL_FILE model.pth")


def cfg_from_args(args: argparse.Namespace, extra: Sequence[str] = (), task: str | None = None,
                  fetch: bool = True):
    """The config that ``--model``, ``--weights``, ``--cfg`` and the overrides describe.

    ``task``: the kind of zoo model the command runs ("pose"; another is refused before any
    download); ``fetch=False``: a zoo model's config without its weights. Sets ``args.cfg``
    to the experiment file (or name) used, which names output folders."""
    opts = [*args.opts, *extra]
    model, weights = getattr(args, "model", None), getattr(args, "weights", None)
    if model:
        if args.cfg:
            raise ConfigError("give --model or --cfg, not both (--model NAME stands for "
                              "--cfg <its config> TEST.MODEL_FILE <its weights>)")
        from humanpose.zoo import resolve_model

        args.cfg, zoo_opts = resolve_model(model, weights, task=task, fetch=fetch)
        return get_cfg(args.cfg, [*zoo_opts, *opts])
    if weights:
        if args.cfg:
            return get_cfg(args.cfg, [*opts, "TEST.MODEL_FILE", weights])
        from humanpose.checkpoint import config_from_weights

        cfg, args.cfg = config_from_weights(weights, opts)
        return cfg
    if not args.cfg:
        alternatives = " or --model NAME" if hasattr(args, "model") else ""
        if hasattr(args, "weights"):
            alternatives += " or --weights FILE (a checkpoint humanpose wrote)"
        raise ConfigError(f"the following arguments are required: --cfg{alternatives}")
    return get_cfg(args.cfg, opts)


# ---------------------------------------------------------------------------- info
def _info_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser, weights=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=20, help="timed forward passes (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for the latency measurement (default: PyTorch's)")


def _info(args: argparse.Namespace) -> int:
    import torch

    from humanpose.summary import count_gflops, count_parameters, measure_latency

    cfg = cfg_from_args(args, fetch=False)  # the figures need the architecture, not weights
    if args.threads:
        torch.set_num_threads(args.threads)
    model = _network(cfg)
    size = tuple(cfg.MODEL.IMAGE_SIZE)
    result = {
        "params": count_parameters(model),
        "gflops": round(count_gflops(model, size), 4),
        "input_size": list(size),
        "latency_ms": round(measure_latency(model, size, runs=args.runs), 3),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"model        {cfg.MODEL.NAME} ({args.cfg})")
        print(f"parameters   {result['params']:,}")
        print(f"GFLOPs       {result['gflops']:.3f}")
        print(f"input size   {size[0]}x{size[1]} (width x height)")
        print(f"latency      {result['latency_ms']:.1f} ms (median of {args.runs}, batch 1, "
              f"{torch.get_num_threads()} threads, CPU eager fp32)")
    return 0


# ---------------------------------------------------------------------------- train / test
def _seed_tool_args(parser: argparse.ArgumentParser) -> None:
    """Flags of the seed's tools/train.py and tools/test.py, accepted for compatibility."""
    parser.add_argument("--modelDir", default="", help="sets OUTPUT_DIR (seed flag)")
    parser.add_argument("--logDir", default="", help="sets LOG_DIR (seed flag)")
    parser.add_argument("--dataDir", default="", help="sets DATA_DIR (seed flag)")
    parser.add_argument("--prevModelDir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--gpu", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--world-size", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rank", default=None, help=argparse.SUPPRESS)


def _cfg_with_seed_flags(args: argparse.Namespace, extra: list[str] | None = None):
    opts = list(args.opts)
    for flag, key in (("modelDir", "OUTPUT_DIR"), ("logDir", "LOG_DIR"), ("dataDir", "DATA_DIR")):
        if getattr(args, flag, ""):
            opts += [key, getattr(args, flag)]
    if args.gpu is not None or args.world_size is not None or args.rank is not None:
        print("humanpose: --gpu/--world-size/--rank are ignored; launch several processes "
              "with torchrun instead", file=sys.stderr)
    return cfg_from_args(args, opts[len(args.opts):] + (extra or []))


def _train_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser, model=False)
    parser.add_argument("--seed", type=int, default=None, help="random seed (TRAIN.SEED)")
    _threads_arg(parser)
    _seed_tool_args(parser)


def _threads_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU compute threads (default: PyTorch's, one per core); on a CPU "
                             "the loader workers get the cores the threads leave free")


def _train(args: argparse.Namespace) -> int:
    from humanpose.engine.train import train

    cfg = _cfg_with_seed_flags(args, ["TRAIN.SEED", str(args.seed)] if args.seed is not None
                               else None)
    _set_threads(args.threads)
    _fetch_init_weights(cfg)
    result = train(cfg, args.cfg)
    if result.last_metrics:
        print(f"{result.metric_name} {result.best_metric:.4f}")
    return 0


def _fetch_init_weights(cfg) -> None:
    """TRAIN.INIT_WEIGHTS given as a zoo name becomes its verified file in the cache. Under
    torchrun every process fetches (each download goes to its own temporary file, moved into
    place once verified); only local rank 0 shows the progress bar."""
    from humanpose.zoo import fetch_weights, is_zoo_name

    spec = cfg.TRAIN.INIT_WEIGHTS
    if not is_zoo_name(spec):
        return
    path = fetch_weights(spec, progress=os.environ.get("LOCAL_RANK", "0") == "0")
    frozen = cfg.is_frozen()
    cfg.defrost()
    cfg.TRAIN.INIT_WEIGHTS = str(path)
    if frozen:
        cfg.freeze()


def _test_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser, weights=True)
    _threads_arg(parser)
    _seed_tool_args(parser)


def _test(args: argparse.Namespace) -> int:
    from humanpose.engine.evaluate import run_test

    _set_threads(args.threads)
    result = run_test(_cfg_with_seed_flags(args), args.cfg)
    if result is not None:
        print(f"{result.metric_name} {result.value:.4f}")
    return 0


# ---------------------------------------------------------------- infer / vis / export / bench
def _backend_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA where present, else the CPU), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every backend (default: PyTorch's)")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None,
                        help="average with mirrored crops (default: TEST.FLIP_TEST)")


def _infer_args(parser: argparse.ArgumentParser) -> None:
    from humanpose.runtime.detectors import DEFAULT_MIN_SCORE

    add_cfg_args(parser, weights=True)
    parser.add_argument("--input", required=True,
                        help="an image, a folder of images, a video file, a webcam index or "
                             "a stream URL (rtsp://, http(s)://, udp://)")
    parser.add_argument("--output", default=None,
                        help="folder for results and drawings (default: runs/infer/<input "
                             "name>, numbered 2, 3, ... when it exists)")
    parser.add_argument("--boxes", default=None,
                        help="person detections in COCO results format (default: the whole "
                             "image is one person); the same as --detector with a .json")
    parser.add_argument("--detector", default=None, metavar="SPEC",
                        help="where person boxes come from: a model zoo detector name "
                             "(rtmdet-nano), our detector's .pth (or its "
                             "experiment .yaml with TEST.MODEL_FILE), an .onnx (our exported "
                             "detector or a YOLO-family model, person class only) or a COCO "
                             "detections .json (default: the whole image is one person)")
    parser.add_argument("--detector-backend", default="auto",
                        help="backend of our detector: auto, torch, onnxruntime, openvino or "
                             "openvino-fp32 (YOLO models run in ONNX Runtime)")
    parser.add_argument("--detector-score", type=float, default=None,
                        help=f"drop boxes scoring lower (default {DEFAULT_MIN_SCORE:g} for "
                             "detector networks, 0 for detections files)")
    parser.add_argument("--annotations", default=None,
                        help="COCO annotation file whose image ids name the images")
    parser.add_argument("--backend", default="auto", help="auto, torch, torch-bf16, "
                        "torch-fp16, onnxruntime, openvino or openvino-fp32")
    parser.add_argument("--detect-every", type=int, default=0,
                        help="video: run the detector every N frames and for 5 frames after "
                             "a track is lost; tracked boxes place the crops in between (0: "
                             "only while tracks are lost)")
    parser.add_argument("--track", action="store_true",
                        help="video: give each person a track_id kept while in view "
                             "(results.json, results.jsonl, CSV, a colour per id)")
    parser.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None,
                        help="video: One-Euro smoothing of each track's key points (default: "
                             "on with --track)")
    parser.add_argument("--smooth-min-cutoff", type=float, default=1.0,
                        help="One-Euro cut-off at rest, Hz (lower: smoother, more lag; "
                             "default 1.0)")
    parser.add_argument("--smooth-beta", type=float, default=0.03,
                        help="One-Euro speed coefficient (higher: less lag in fast motion; "
                             "default 0.03)")
    parser.add_argument("--show", action="store_true",
                        help="a live window with the drawing and frames/s (q or Esc stops, "
                             "results kept); needs pip install humanpose[gui]")
    parser.add_argument("--reconnect", type=int, default=3,
                        help="streams: reopen a dropped stream up to N times in a row "
                             "(default 3)")
    parser.add_argument("--max-frames", type=_positive_int, default=None,
                        help="stop after N frames")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds of the source")
    parser.add_argument("--save-csv", default=None, metavar="FILE",
                        help="one row per person and frame: frame, time, track_id, box, "
                             "score, then <joint>_x, <joint>_y, <joint>_score")
    parser.add_argument("--pipeline", choices=("auto", "on", "off"), default="auto",
                        help="reading and writing on threads of their own, beside the "
                             "network (auto: when a core is left free for them)")
    parser.add_argument("--no-pipeline", action="store_true",
                        help="the same as --pipeline off")
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="drop people whose score is lower")
    parser.add_argument("--threshold", type=float, default=0.2,
                        help="draw joints with at least this confidence")
    parser.add_argument("--no-render", action="store_true", help="write results only")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _random_weights_arg(parser)
    _backend_args(parser)


def _runs_in_the_runtime(args: argparse.Namespace) -> bool:
    """An ``.onnx`` model with nothing that needs a model config (``TRACK.*`` overrides
    only): the torch-free runtime runs it."""
    weights = getattr(args, "weights", None) or ""
    return (weights.lower().endswith(".onnx") and not args.cfg and not args.model
            and all(str(key).startswith("TRACK.") for key in args.opts[::2]))


def _infer_detector(args: argparse.Namespace, runtime: bool):
    """The detector ``--detector`` names; detections files and ONNX detectors need no
    PyTorch."""
    if not args.detector:
        return None
    from humanpose.inference.detector import DetectionsFile, coco_image_ids

    file_ids = coco_image_ids(args.annotations) if args.annotations else None
    suffix = Path(args.detector).suffix.lower()
    if runtime and suffix == ".json":
        return DetectionsFile(args.detector, min_score=args.detector_score or 0.0,
                              file_ids=file_ids)
    if runtime and suffix == ".onnx":
        from humanpose.runtime.detectors import DEFAULT_MIN_SCORE, onnx_person_detector

        backend = "onnxruntime" if args.detector_backend == "auto" else args.detector_backend
        return onnx_person_detector(args.detector, threads=args.threads, backend=backend,
                                    min_score=DEFAULT_MIN_SCORE if args.detector_score is None
                                    else args.detector_score)
    _load_torch_side()
    from humanpose.detection import build_person_detector
    from humanpose.zoo import resolve_detector

    spec, detector_cfg = resolve_detector(args.detector, progress=not args.quiet)
    return build_person_detector(spec, cfg=detector_cfg, device=args.device,
                                 backend=args.detector_backend,
                                 min_score=args.detector_score, threads=args.threads,
                                 file_ids=file_ids)


def _infer(args: argparse.Namespace) -> int:
    from humanpose.inference.sources import open_source
    from humanpose.inference.video import RunSummary, Terminated, run_on_source

    if args.boxes and args.detector:
        raise HumanposeError("give --boxes or --detector, not both (--detector takes a "
                             "detections .json as well)")
    if args.show:  # before anything long: a run nobody can watch is not started
        from humanpose.inference.display import check_display

        check_display()
    runtime = _runs_in_the_runtime(args)
    cfg = None
    if runtime:
        from humanpose.config import default_config, merge_opts
        from humanpose.runtime.one_stage import is_one_stage_onnx

        track_cfg = default_config()  # the defaults and the TRACK.* overrides (no torch)
        merge_opts(track_cfg, list(args.opts))

        # A missing file is reported by the model, after the input is checked.
        one_stage = Path(args.weights).is_file() and is_one_stage_onnx(args.weights)
    else:
        _load_torch_side()
        from humanpose.inference.one_stage import is_one_stage_cfg

        cfg = cfg_from_args(args, task=("pose", "pose-one-stage"))
        _require_weights(cfg, args)
        _set_threads(args.threads)
        one_stage = is_one_stage_cfg(cfg)
        track_cfg = cfg
    if one_stage and (args.detector or args.boxes):
        raise HumanposeError("a one-stage model (RTMO) finds the people itself: give no "
                             "--detector or --boxes")
    from humanpose.runtime.sessions import resolve_device

    args.device = resolve_device(args.device)
    if args.output is None:
        args.output = str(_default_output(args.input))
    # A bad input fails before the models load.
    source = open_source(args.input, reconnect=args.reconnect, max_frames=args.max_frames,
                         duration=args.duration)
    detector = _infer_detector(args, runtime)
    if detector is None and not args.boxes and not one_stage:
        print(_whole_image_note(), file=sys.stderr)
    if runtime and one_stage:
        from humanpose.runtime import OneStageModel

        estimator = OneStageModel(args.weights, device=args.device, backend=args.backend,
                                  min_score=args.min_score, threads=args.threads)
    elif runtime:  # NumPy, OpenCV and ONNX Runtime/OpenVINO only
        from humanpose.runtime import PoseModel

        estimator = PoseModel(args.weights, detector, device=args.device,
                              backend=args.backend, flip_test=args.flip_test,
                              min_score=args.min_score, threads=args.threads)
    elif one_stage:
        from humanpose.inference.one_stage import OneStageEstimator

        estimator = OneStageEstimator(cfg, device=args.device, backend=args.backend,
                                      min_score=args.min_score, threads=args.threads,
                                      random_weights=args.random_weights)
    else:
        from humanpose.inference import PoseEstimator

        estimator = PoseEstimator(cfg, device=args.device, backend=args.backend,
                                  flip_test=args.flip_test, min_score=args.min_score,
                                  threads=args.threads, detector=detector,
                                  random_weights=args.random_weights)
    summary = RunSummary(Path(args.output))
    try:
        run_on_source(estimator, source, args.output, boxes_file=args.boxes,
                      annotations=args.annotations, render=not args.no_render,
                      detect_every=args.detect_every, max_frames=args.max_frames,
                      threshold=args.threshold, progress=not args.quiet, summary=summary,
                      track=args.track, smooth=args.smooth,
                      smooth_min_cutoff=args.smooth_min_cutoff, smooth_beta=args.smooth_beta,
                      duration=args.duration, csv_file=args.save_csv, show=args.show,
                      pipeline=_pipelined(args), tracker_settings=tracker_settings(track_cfg))
    except Terminated:
        print("humanpose infer: terminated (SIGTERM); the frames done are saved",
              file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports a process killed by it
    finally:  # also on Ctrl-C and errors: what was saved, and what was skipped
        _infer_closing(args, estimator, summary)
    return 0


def _default_output(source: str) -> Path:
    """``runs/infer/<name of the input>``, or the first of ``<name>2``, ``<name>3``, ... not
    there yet: one run's results never mix with another's."""
    text = source.rstrip("/\\")
    name = Path(text).stem if not text.isdigit() else f"webcam{text}"
    if "://" in text or not name:
        name = "stream"
    base = Path("runs") / "infer" / name
    folder, number = base, 2
    while folder.exists():
        folder, number = base.with_name(f"{name}{number}"), number + 1
    return folder


def _whole_image_note() -> str:
    """What ``infer`` without a detector does, and how to add one (naming a zoo detector
    already in the cache, which then needs no download)."""
    from humanpose.zoo import ENTRIES, cache_path, detector_names

    names = detector_names()
    cached = [n for n in names if cache_path(ENTRIES[n]).is_file()]
    if cached:
        hint = f"--detector {cached[0]} (in the cache)"
    else:
        hint = (f"--detector {names[0]} (a zoo detector), " if names else "--detector ") + \
            "a detector .onnx/.pth"
    return ("humanpose infer: note: no --detector: each image is taken as one person's box; "
            f"for several people add {hint} or --boxes dets.json")


def _infer_closing(args: argparse.Namespace, estimator, summary) -> None:
    detector_note = ""
    if args.detector:
        detector_backend = getattr(estimator.detector, "backend", None)
        detector_note = f"; detector {Path(args.detector).name}" + (
            f" ({detector_backend})" if detector_backend else "")
    if summary.results_file is not None:
        print(f"backend {estimator.backend}{detector_note}; results: {summary.results_file} "
              f"(per frame: {summary.lines_file})")
    for line in summary.skipped_lines():
        print(line)
    print(summary.line())


def _vis_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, help="COCO key-point results JSON")
    parser.add_argument("--images", required=True, help="folder of the images")
    parser.add_argument("--output", required=True, help="folder for the drawings")
    parser.add_argument("--annotations", default=None,
                        help="COCO annotation file naming the images (default: images.json "
                             "beside the results, else COCO's 000000397133.jpg naming)")
    parser.add_argument("--min-score", type=float, default=0.3, help="people shown (seed: 0.3)")
    parser.add_argument("--threshold", type=float, default=0.2, help="joints shown (seed: 0.2)")
    parser.add_argument("--draw-boxes", action="store_true", help="draw the person boxes too")
    parser.add_argument("--cfg", default=None,
                        help="experiment YAML of the model, for its key-point set (default: the "
                             "category of the annotation file / images.json)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE",
                        help="config overrides with --cfg, e.g. TEST.MODEL_FILE model.pth")


def _vis(args: argparse.Namespace) -> int:
    from humanpose.vis import draw_results

    keypoint_set = None
    if args.cfg:
        from humanpose.inference.estimator import keypoint_set_for

        cfg = get_cfg(args.cfg, args.opts)
        keypoint_set = keypoint_set_for(cfg, cfg.TEST.MODEL_FILE or None)
    written = draw_results(args.results, args.images, args.output, args.annotations,
                           min_score=args.min_score, threshold=args.threshold,
                           draw_boxes=args.draw_boxes, keypoint_set=keypoint_set)
    print(f"done: {len(written)} images -> {args.output}")
    return 0


def _export_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser, weights=True)
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="only onnx")
    parser.add_argument("--output", default=None,
                        help="file to write (default: TEST.MODEL_FILE with .onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    parser.add_argument("--static-batch", action="store_true", help="fix the batch size to 1")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="fail when ONNX and PyTorch differ by more")
    _random_weights_arg(parser)


def _network(cfg):
    """The network ``cfg.MODEL`` describes: a pose model or a person detector."""
    from humanpose.models import build_model

    return build_model(cfg, channels_last=True)


def _export(args: argparse.Namespace) -> int:
    from humanpose.checkpoint import load_checkpoint
    from humanpose.export import export_model
    from humanpose.inference.one_stage import is_one_stage_cfg

    cfg = cfg_from_args(args)
    model = _network(cfg).eval()
    if cfg.TEST.MODEL_FILE:
        load_checkpoint(model, cfg.TEST.MODEL_FILE)
        # A zoo file lives in the cache: its export goes to the working folder.
        default = Path(args.model + ".onnx") if args.model else \
            Path(cfg.TEST.MODEL_FILE).with_suffix(".onnx")
    else:
        _require_weights(cfg, args)
        print("humanpose export: note: --random-weights: exporting untrained weights",
              file=sys.stderr)
        default = Path(Path(args.cfg).stem + ".onnx")
    output = Path(args.output) if args.output else default
    diff = export_model(model, cfg, output, opset=args.opset,
                        dynamic_batch=not args.static_batch)
    print(f"wrote {output} ({cfg.MODEL.NAME}, opset {args.opset}, "
          f"{'batch 1' if args.static_batch else 'dynamic batch'})")
    relative = " (relative above 1, rows matched)" if is_one_stage_cfg(cfg) else ""
    print(f"max |ONNX - PyTorch| on a random batch: {diff:.3g}{relative}")
    if not diff <= args.tolerance:
        print(f"humanpose export: error: difference above the tolerance {args.tolerance:g}",
              file=sys.stderr)
        return 1
    return 0


def _bench_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser, weights=True)
    parser.add_argument("--backends", default=None,
                        help="comma-separated (default: auto and every available backend)")
    parser.add_argument("--batch", default="1,16", help="persons per image, comma-separated")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row (median)")
    parser.add_argument("--image", default=None,
                        help="image to run on (default: a synthetic 640x480 image)")
    _random_weights_arg(parser)
    _backend_args(parser)


def _bench(args: argparse.Namespace) -> int:
    import numpy as np

    from humanpose.data.images import read_image
    from humanpose.inference.backends import BACKENDS, available_backends
    from humanpose.inference.compare import compare_backends, format_bench_table
    from humanpose.runtime.sessions import resolve_device

    cfg = cfg_from_args(args, task="pose")
    _require_weights(cfg, args)
    _set_threads(args.threads)
    args.device = resolve_device(args.device)
    if args.backends:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    else:
        backends = ["auto", *[b for b in BACKENDS if b in available_backends(args.device)]]
    batches = [int(b) for b in args.batch.split(",")]
    if args.image:
        image = read_image(args.image)
    else:
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    if not cfg.TEST.MODEL_FILE:
        print("humanpose bench: note: --random-weights: untrained weights give flat heatmaps "
              "or SimCC vectors (the deviation column means little) and denormal numbers "
              "(which slow PyTorch on x86 CPUs)", file=sys.stderr)
    rows = compare_backends(cfg, cfg.TEST.MODEL_FILE or None, backends, batches, image,
                            runs=args.runs, device=args.device, flip_test=args.flip_test,
                            threads=args.threads, random_weights=args.random_weights)
    import torch

    print(f"{cfg.MODEL.NAME} {cfg.MODEL.IMAGE_SIZE[0]}x{cfg.MODEL.IMAGE_SIZE[1]}, "
          f"{args.device}, {torch.get_num_threads()} threads, median of {args.runs} "
          "interleaved runs of crop + model + decode")
    print(format_bench_table(rows))
    return 0


def _random_weights_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--random-weights", action="store_true",
                        help="run an untrained network when no weights are given (timing "
                             "only: its key points are noise); without it, no weights is an "
                             "error")


def _require_weights(cfg, args: argparse.Namespace) -> None:
    """No weights and no --random-weights: the error, before anything runs."""
    if not cfg.TEST.MODEL_FILE and not getattr(args, "random_weights", False):
        from humanpose.inference.estimator import NO_WEIGHTS

        raise HumanposeError(NO_WEIGHTS)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _pipelined(args: argparse.Namespace) -> bool:
    """Reader and writer threads pay where a core is free for them: measured on 2 cores with
    the network on both, they slowed a video run by 16 % (benchmarks/RESULTS.md)."""
    if args.no_pipeline or args.pipeline == "off":
        return False
    if args.pipeline == "on":
        return True
    if sys.modules.get("torch") is not None:  # the PyTorch side runs: its thread count
        import torch

        threads = torch.get_num_threads()
    else:
        from humanpose.runtime.sessions import default_threads

        threads = args.threads or default_threads()
    return (os.cpu_count() or 1) > threads


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- synth
def _image_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError(f"images must be at least 64x64, got {text!r}")
    return w, h


def _synth_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="folder to write the data set into")
    parser.add_argument("--train", type=int, default=64, help="training images (default 64)")
    parser.add_argument("--val", type=int, default=16, help="validation images (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", choices=["coco", "mpii"], default="coco",
                        help="COCO layout (default) or HRNet's MPII json layout")
    parser.add_argument("--size", type=_image_size, default=(320, 240),
                        help="image WIDTHxHEIGHT (default 320x240)")


def _synth(args: argparse.Namespace) -> int:
    from humanpose.data.synthetic import SynthConfig, write_coco_set, write_mpii_set

    write = write_coco_set if args.format == "coco" else write_mpii_set
    synth_cfg = SynthConfig(width=args.size[0], height=args.size[1])
    paths = write(args.root, args.train, args.val, args.seed, synth_cfg)
    print(f"wrote a synthetic {args.format.upper()} key-point set to {args.root} "
          f"({args.train} training and {args.val} validation images, seed {args.seed}):")
    for name, path in paths.items():
        print(f"  {name:26s} {path}")
    return 0


# ---------------------------------------------------------------------------- demo
def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", default="humanpose-demo",
                        help="folder for the data, the outputs and the drawings")
    parser.add_argument("--train", type=int, default=600, help="synthetic training images")
    parser.add_argument("--val", type=int, default=100, help="synthetic validation images")
    parser.add_argument("--detector-train", type=int, default=4000,
                        help="synthetic training images of the person detector (a split of "
                             "its own, detector_train2017)")
    parser.add_argument("--no-detector", action="store_true",
                        help="skip the person detector (its training, box AP and the pose AP "
                             "with detected boxes)")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE",
                        help="overrides of the pose model's demo config, e.g. TRAIN.END_EPOCH "
                             "2; keys starting DETECTOR. override the detector's, e.g. "
                             "DETECTOR.TRAIN.END_EPOCH 2")


def _demo(args: argparse.Namespace) -> int:
    from humanpose.demo import run_demo

    result = run_demo(args.workdir, args.train, args.val, args.opts,
                      detector=not args.no_detector, num_detector_train=args.detector_train)
    print(f"pose AP (ground-truth boxes) {result.ap:.4f}")
    if result.box_ap is not None:
        print(f"box AP (detector) {result.box_ap:.4f}")
        print(f"pose AP (detected boxes) {result.detected_ap:.4f}")
    print(f"=> demo finished in {result.seconds / 60:.1f} min; outputs in {result.output_dir}"
          + (f" and {result.detector_dir}" if result.detector_dir else "")
          + f"; {len(result.drawings)} drawn predictions in "
          f"{Path(args.workdir) / 'predictions'}")
    print(f"AP {result.ap:.4f}")  # the last line: pose AP with ground-truth boxes, as before
    return 0


# ---------------------------------------------------------------------------- zoo
def _zoo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list with every field (URL, SHA-256, config)")


def _zoo(args: argparse.Namespace) -> int:
    from humanpose.zoo import ENTRIES, entry_record, format_table, humanpose_home

    if args.json:
        print(json.dumps([entry_record(e) for e in ENTRIES.values()], indent=1))
        return 0
    print(format_table())
    print(f"\nweights are downloaded on first use into {humanpose_home() / 'weights'} "
          "($HUMANPOSE_HOME) and checked against their SHA-256; sizes are estimates. "
          "Published AP: mmpose's (OpenMMLab entries) or the seed README's figures.")
    return 0


@dataclass(frozen=True)
class Command:
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    # The PyTorch side (and its task packages) loaded before the command runs; ``infer``
    # loads it itself unless the model is an ONNX file, which the runtime runs.
    needs_torch: bool = True


COMMANDS: dict[str, Command] = {
    "info": Command("parameters, GFLOPs, input size and CPU latency of a model", _info_args, _info),
    "train": Command("train a model (one process, or DDP under torchrun)", _train_args, _train),
    "test": Command("evaluate a model: COCO AP or MPII PCKh", _test_args, _test),
    "infer": Command("pose of the people in images, a video or a webcam", _infer_args, _infer,
                     needs_torch=False),
    "vis": Command("draw a COCO key-point results file over its images", _vis_args, _vis,
                   needs_torch=False),
    "export": Command("export a model (pose or person detector) to ONNX, checked against "
                      "PyTorch", _export_args, _export),
    "bench": Command("latency and throughput of each inference backend", _bench_args, _bench),
    "zoo": Command("the model zoo: names for --model and --detector, with their figures",
                   _zoo_args, _zoo, needs_torch=False),
    "synth": Command("write a synthetic key-point data set of drawn people", _synth_args,
                     _synth),
    "demo": Command("the whole job on built-in synthetic data: synth, train, test, draw; "
                    "then the person detector and the pose AP with its boxes",
                    _demo_args, _demo),
}


class _DefaultsShown(argparse.HelpFormatter):
    """Help lines end with the option's default unless they name it already or it is
    unset (None, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False
        if ("default" in text or unset or action.default == argparse.SUPPRESS
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def _usage() -> str:
    lines = ["usage: humanpose <command> [options]   (humanpose --version: the installed one)",
             "", "commands:"]
    lines += [f"  {name:10s} {cmd.help}" for name, cmd in COMMANDS.items()]
    lines.append("\nrun 'humanpose <command> --help' for a command's options")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HUMANPOSE_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from humanpose import __version__

        print(f"humanpose {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"humanpose: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    command = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"humanpose {name}", description=command.help,
                                     epilog="--debug (or HUMANPOSE_DEBUG=1): show the "
                                            "traceback of an error",
                                     formatter_class=_DefaultsShown)
    command.add_args(parser)
    # Intermixed parsing lets options follow the seed-style KEY VALUE pairs.
    args = parser.parse_intermixed_args(rest)
    with warnings.catch_warnings():
        warnings.showwarning = _show_config_warning(name, warnings.showwarning)
        return _run_command(name, command, args, debug)


def _run_command(name: str, command: Command, args: argparse.Namespace, debug: bool) -> int:
    try:
        if command.needs_torch:
            _load_torch_side()
        return command.run(args)
    except TorchMissing as err:
        _report(name, f"error: {err}", debug)
        return 1
    except ConfigError as err:
        _report(name, f"config error: {err}", debug)
        return 2
    except KeyboardInterrupt as err:
        signum = getattr(err, "signum", None)  # a StopRequested (SIGTERM)
        print(f"humanpose {name}: {str(err) or 'interrupted (Ctrl-C)'}", file=sys.stderr)
        return 128 + signum if signum else 130
    except HumanposeError as err:
        _report(name, f"error: {err}", debug)
        return 1
    except OSError as err:
        _report(name, f"error: {_os_error_line(err)}", debug)
        return 1


class TorchMissing(Exception):
    """PyTorch is not installed and the command needs it."""


def _load_torch_side() -> None:
    from humanpose import load_torch_side

    try:
        load_torch_side()
    except ImportError as err:
        raise TorchMissing(str(err)) from err


def _os_error_line(err: OSError) -> str:
    """'<what went wrong>: <path>' from an OSError (full disk, no permission, ...)."""
    reason = err.strerror or str(err)
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


def _report(name: str, line: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(f"humanpose {name}: {line}", file=sys.stderr)


def _show_config_warning(name: str, fallback):
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ConfigWarning):
            print(f"humanpose {name}: warning: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)
    return show
