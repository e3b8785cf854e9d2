"""RTMPose-t against LPN-50 on the demo's synthetic set (issue 11): AP after the same epochs,
and the wall time each takes, trained and tested by the real engine on this machine.

Both use the demo's data (``--train``/``--val`` generated images, seed 0), input size
(128x96), batch, epochs and flip test: LPN-50 with ``humanpose/configs/demo_lpn_synthetic.yaml``
(the seed's recipe), RTMPose-t with ``humanpose/configs/demo_rtmpose_t_synthetic.yaml``
(SimCC, KL loss, AdamW, rtmpose augmentation). The models train one after the other, never
at the same time, and the script prints the CPU flags that matter (AMX, AVX-512).

    python benchmarks/bench_rtmpose_learning.py --workdir /tmp/bench_rtmpose --epochs 12
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from humanpose.config import get_cfg
from humanpose.data.synthetic import write_coco_set
from humanpose.engine.evaluate import run_test
from humanpose.engine.train import train
from humanpose.models import build_model
from humanpose.summary import count_gflops, count_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_flags  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "humanpose" / "configs"
MODELS = {"LPN-50": CONFIGS / "demo_lpn_synthetic.yaml",
          "RTMPose-t": CONFIGS / "demo_rtmpose_t_synthetic.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_rtmpose"))
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    data = args.workdir / "data"
    if not (data / "annotations" / "person_keypoints_val2017.json").is_file():
        write_coco_set(str(data), num_train=args.train, num_val=args.val, seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CPU flags: "
          f"{cpu_flags()}")
    print("| model | params | GFLOPs | epochs | training s (validation included) | AP |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        path = MODELS[name]
        opts = ["DATASET.ROOT", str(data), "OUTPUT_DIR", str(args.workdir / "output"),
                "LOG_DIR", str(args.workdir / "log"), "TRAIN.END_EPOCH", str(args.epochs)]
        cfg = get_cfg(path, opts)
        model = build_model(cfg)
        size = tuple(cfg.MODEL.IMAGE_SIZE)
        start = time.perf_counter()
        result = train(cfg, path)
        seconds = time.perf_counter() - start
        weights = result.output_dir / "model_best.pth"
        tested = run_test(get_cfg(path, [*opts, "TEST.MODEL_FILE", str(weights)]), path)
        print(f"| {name} | {count_parameters(model):,} | {count_gflops(model, size):.3f} | "
              f"{args.epochs} | {seconds:.0f} | {tested.value:.4f} |", flush=True)


if __name__ == "__main__":
    main()
