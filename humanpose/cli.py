"""``humanpose <command>``: parse the arguments, then call one function per command.

Every command that takes a config accepts the seed's form ``--cfg FILE KEY VALUE ...``;
options may stand before or after the ``KEY VALUE`` pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from humanpose.config import ConfigError, get_cfg
from humanpose.errors import HumanposeError


def add_cfg_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cfg", required=True, help="experiment YAML file")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE",
                        help="config overrides, e.g. TEST.MODEL_FILE model.pth")


def cfg_from_args(args: argparse.Namespace):
    return get_cfg(args.cfg, args.opts)


# ---------------------------------------------------------------------------- info
def _info_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=20, help="timed forward passes (median)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for the latency measurement (default: PyTorch's)")


def _info(args: argparse.Namespace) -> int:
    import torch

    from humanpose.models import build_model
    from humanpose.summary import count_gflops, count_parameters, measure_latency

    cfg = cfg_from_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(cfg)
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
    return get_cfg(args.cfg, opts + (extra or []))


def _train_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser)
    parser.add_argument("--seed", type=int, default=None, help="random seed (TRAIN.SEED)")
    _seed_tool_args(parser)


def _train(args: argparse.Namespace) -> int:
    from humanpose.engine.train import train

    cfg = _cfg_with_seed_flags(args, ["TRAIN.SEED", str(args.seed)] if args.seed is not None
                               else None)
    result = train(cfg, args.cfg)
    if result.last_metrics:
        print(f"{result.metric_name} {result.best_metric:.4f}")
    return 0


def _test_args(parser: argparse.ArgumentParser) -> None:
    add_cfg_args(parser)
    _seed_tool_args(parser)


def _test(args: argparse.Namespace) -> int:
    from humanpose.engine.evaluate import run_test

    result = run_test(_cfg_with_seed_flags(args), args.cfg)
    if result is not None:
        print(f"{result.metric_name} {result.value:.4f}")
    return 0


@dataclass(frozen=True)
class Command:
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "info": Command("parameters, GFLOPs, input size and CPU latency of a model", _info_args, _info),
    "train": Command("train a model (one process, or DDP under torchrun)", _train_args, _train),
    "test": Command("evaluate a model: COCO AP or MPII PCKh", _test_args, _test),
}


def _usage() -> str:
    lines = ["usage: humanpose <command> [options]", "", "commands:"]
    lines += [f"  {name:10s} {cmd.help}" for name, cmd in COMMANDS.items()]
    lines.append("\nrun 'humanpose <command> --help' for a command's options")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"humanpose: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    command = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"humanpose {name}", description=command.help)
    command.add_args(parser)
    # Intermixed parsing lets options follow the seed-style KEY VALUE pairs.
    args = parser.parse_intermixed_args(rest)
    try:
        return command.run(args)
    except ConfigError as err:
        print(f"humanpose {name}: config error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"humanpose {name}: interrupted", file=sys.stderr)
        return 130
    except (HumanposeError, FileNotFoundError) as err:
        print(f"humanpose {name}: error: {err}", file=sys.stderr)
        return 1
