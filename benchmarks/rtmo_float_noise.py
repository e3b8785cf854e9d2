"""The float32 noise floor of RTMO on check_mm_equivalence.py's random weights: our own
network in float32 against the same network in float64, people decoded as predict_rtmo does
(threshold 0.1, NMS 0.65) on the same drawn picture. No implementation in float32 can agree
with another more closely than this; it decides how the random weights must be tamed.

    PYTHONPATH=$PWD python benchmarks/rtmo_float_noise.py rtmo-s,rtmo-l --bn-gain 1.0
    PYTHONPATH=$PWD python benchmarks/rtmo_float_noise.py rtmo-s,rtmo-m,rtmo-l
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_mm_equivalence import (  # noqa: E402
    ROOT,
    RTMO,
    RTMO_BN_GAIN,
    RTMO_PEOPLE,
    _randomise_rtmo,
)

import humanpose  # noqa: E402
from humanpose.data.synthetic import SynthConfig, draw_scene  # noqa: E402
from humanpose.runtime.rtmo import decode, preprocess  # noqa: E402


def tamed_model(name: str, image: np.ndarray, bn_gain: float):
    """The network with check_mm_equivalence's weights (its BatchNorm gain replaced by
    ``bn_gain``), box and score branches scaled on ``image`` as reference_rtmo scales them."""
    cfg = humanpose.get_cfg(str(ROOT / "experiments" / f"{RTMO[name][0]}.yaml"),
                            ["MODEL.RTMO.TOPK", 2000])
    model = humanpose.build_model(cfg).eval()
    _randomise_rtmo(model, torch)
    head = model.head
    x = torch.from_numpy(preprocess(image, (640, 640))[0])
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith("bn.weight"):
                t.mul_(bn_gain / RTMO_BN_GAIN)

        def outputs():
            return head.head_module(model.neck(model.backbone(x)))

        big = max(float(b[:, 2:].abs().max()) for b in outputs()[1])
        for conv in head.head_module.out_bbox:
            conv.weight.mul_(3.0 / big)
            conv.bias.mul_(3.0 / big)

        def logits():
            return torch.cat([c.flatten(1) for c in outputs()[0]], 1)[0].double()

        spread = 2.0 / float(logits().std())
        for conv in head.head_module.out_cls:
            conv.weight.mul_(spread)
            conv.bias.mul_(spread)
        shift = float(logits().topk(RTMO_PEOPLE).values[-1]) - math.log(0.1 / 0.9) + 1e-3
        for conv in head.head_module.out_cls:
            conv.bias -= shift
    return model, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", help="comma-separated: rtmo-s,rtmo-m,rtmo-l")
    parser.add_argument("--bn-gain", type=float, default=RTMO_BN_GAIN)
    args = parser.parse_args()
    image, _ = draw_scene(np.random.default_rng(5), SynthConfig(
        width=640, height=480, max_people=3, min_height=0.5, occluder_prob=0.0, noise=12.0))
    meta = preprocess(image, (640, 640))[1]
    for name in args.names.split(","):
        model, x = tamed_model(name, image, args.bn_gain)
        with torch.no_grad():
            single = model(x)[0].numpy()
            double = model.double()(x.double())[0].numpy()
        (b32, k32), (b64, k64) = (decode(r, meta, 0.1, 0.65) for r in (single, double))
        n = min(len(b32), len(b64))
        print(f"{name} BN gain {args.bn_gain:g}: people {len(b32)}/{len(b64)} (float32/64), "
              f"key points {np.abs(k32[:n, :, :2] - k64[:n, :, :2]).max():.2g} px, boxes "
              f"{np.abs(b32[:n, :4] - b64[:n, :4]).max():.2g} px apart")


if __name__ == "__main__":
    main()
