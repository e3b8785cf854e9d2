"""Eager fp32 forward latency: humanpose's models against the seed's, side by side.

The seed's model code is imported at run time from a checkout of ``humanpose.pytorch``
(``--seed-root``); nothing of it is part of this project. Both models get the same weights,
their outputs are checked to be equal, then their forward passes are timed interleaved
(A, B, A, B, ...) so that machine noise hits both alike. Reported: median milliseconds and
the ratio seed / ours (> 1 means humanpose is faster).

    python benchmarks/bench_models.py --seed-root /path/to/humanpose.pytorch --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import humanpose

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_compat import COMPARED_MODELS, seed_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = COMPARED_MODELS



def time_pair(models: dict[str, torch.nn.Module], x: torch.Tensor, runs: int,
              warmup: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for i in range(warmup + runs):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-root", type=Path, required=True,
                        help="checkout of the seed (cavalleria/humanpose.pytorch)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"torch {torch.__version__}, {args.threads} threads, eager fp32, "
          f"median of {args.runs} interleaved runs")
    print("| model | batch | seed ms | humanpose ms | seed / humanpose |")
    print("|---|---|---|---|---|")
    for label, rel in MODELS.items():
        cfg_path = REPO / rel
        cfg = humanpose.get_cfg(cfg_path)
        ours = humanpose.build_model(cfg).eval()
        seed = seed_model(args.seed_root, cfg_path).eval()
        seed.load_state_dict(ours.state_dict())
        w, h = cfg.MODEL.IMAGE_SIZE
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, 3, h, w)
            with torch.inference_mode():
                diff = (seed(x) - ours(x)).abs().max().item()
            assert diff < 1e-5, f"{label}: outputs differ by {diff}"
            result = time_pair({"seed": seed, "ours": ours}, x, args.runs, args.warmup)
            print(f"| {label} | {batch} | {result['seed']:.1f} | {result['ours']:.1f} | "
                  f"{result['seed'] / result['ours']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
