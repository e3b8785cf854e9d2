"""LPN's batch-1 forward pass: the seed's eager model against humanpose's ways to run it.

Side by side, interleaved round by round (so machine noise hits all alike), medians:

* **seed eager**: the seed's own model code (from ``--seed-root``; nothing of it is part of
  this project) with the same weights, fp32, as its demo runs it;
* **humanpose eager**: the model as built, ``model(x)``;
* **torch (as built)**: the torch backend without the inference form (BN folded,
  channels-last), i.e. what the torch backend ran before;
* **torch (form)**: the torch backend with :func:`lpn_inference_form` (what it runs now);
* **onnxruntime / openvino-fp32 (as built | form)**: the ONNX export of each, in the runners
  PoseEstimator uses; **openvino (default)**: OpenVINO at its default precision (bf16 where
  the CPU has it, so not an fp32-exact result).

Every candidate's largest |difference| from humanpose eager is printed too. The weights are
random but not trivial (batch-norm statistics and scales drawn away from 0/1), so the
comparison is meaningful. Denormals are flushed on every side.

    python benchmarks/bench_lpn_forward.py --seed-root /path/to/humanpose.pytorch --runs 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_inference import machine  # noqa: E402

from humanpose.config import get_cfg  # noqa: E402
from humanpose.export import export_pose_onnx  # noqa: E402
from humanpose.inference.backends import (  # noqa: E402
    TorchRunner,
    available_backends,
    make_runner,
)
from humanpose.inference.lpn_form import lpn_inference_form  # noqa: E402
from humanpose.models import build_model  # noqa: E402
from tests.test_lpn_form import nontrivial  # noqa: E402  (weights every layer matters to)

DEFAULT_CONFIG = "experiments/coco/lpn/lpn50_256x192_gd256x2_gc.yaml"


def candidates(model: nn.Module, cfg, seed_root: Path | None, config: Path, onnx: bool,
               workdir: Path) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    runners: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    if seed_root is not None:
        from seed_compat import seed_model

        seed = seed_model(seed_root, config).eval()
        missing = seed.load_state_dict(model.state_dict(), strict=False)
        if missing.missing_keys or missing.unexpected_keys:
            print(f"seed model: weights not all shared ({missing}); timing only")
        runners["seed eager"] = seed
    runners["humanpose eager"] = model
    runners["torch (as built)"] = TorchRunner(model, inference_form=False)
    runners["torch (form)"] = TorchRunner(model)
    if not onnx:
        return runners
    have = available_backends("cpu")
    paths = {"as built": workdir / "as_built.onnx", "form": workdir / "form.onnx"}
    export_pose_onnx(model, cfg, paths["as built"], check=False)
    export_pose_onnx(lpn_inference_form(model), cfg, paths["form"], check=False)
    for backend in ("onnxruntime", "openvino-fp32"):
        if backend in have:
            for form, path in paths.items():
                runners[f"{backend} ({form})"] = make_runner(backend, onnx_path=path)
    if "openvino" in have:
        runners["openvino (default precision, form)"] = make_runner("openvino",
                                                                    onnx_path=paths["form"])
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="LPN experiment file")
    parser.add_argument("--seed-root", type=Path, default=None,
                        help="a checkout of the seed (humanpose.pytorch); without it the seed "
                             "is left out")
    parser.add_argument("--runs", type=int, default=20, help="timed rounds (median reported)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-onnx", action="store_true", help="torch candidates only")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    warnings.simplefilter("ignore")
    config = Path(args.config)
    if not config.is_absolute() and not config.exists():
        config = REPO / config
    cfg = get_cfg(str(config))
    model = nontrivial(build_model(cfg).eval())
    width, height = (int(v) for v in cfg.MODEL.IMAGE_SIZE)
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(1))

    print(machine())
    print(f"{config.name}, batch 1, {args.threads} threads, {args.runs} interleaved runs")
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        runners = candidates(model, cfg, args.seed_root, config, not args.no_onnx, Path(tmp))
        reference = model(x)
        errors = {}
        for name, run in runners.items():
            out = run(x)
            errors[name] = float((out - reference).abs().max())
            run(x)
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.runs):
            for name, run in runners.items():
                start = time.perf_counter()
                run(x)
                times[name].append((time.perf_counter() - start) * 1000)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians.get("seed eager", medians["humanpose eager"])
    base_name = "seed eager" if "seed eager" in medians else "humanpose eager"
    print(f"\n| candidate | median ms | min ms | x {base_name} | max abs diff |")
    print("|---|---:|---:|---:|---:|")
    for name, median in medians.items():
        print(f"| {name} | {median:.2f} | {min(times[name]):.2f} | {base / median:.2f}x | "
              f"{errors[name]:.1e} |")


if __name__ == "__main__":
    main()
