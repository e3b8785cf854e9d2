"""RTMO-s latency at batch 1, 640x640, on this CPU: humanpose's network exported to ONNX and
run by OpenVINO (``OpenVinoSession``), beside mmpose 1.3.2's eager PyTorch forward of the
same architecture, in one run. Random weights (latency does not depend on their values).

    PYTHONPATH=$PWD python benchmarks/bench_rtmo.py --mm-python /tmp/mmvenv/bin/python

The mmpose side runs in a subprocess under ``--mm-python`` (mm_stub on its path) and times
``model._forward`` (backbone, neck, head branches: no DCC, no NMS) and ``model.predict``
(those plus decoding, NMS and the DCC on the survivors). humanpose's figure is the exported
graph (boxes, scores and the DCC for the 300 best anchors) plus the NumPy decode and NMS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import median_ms  # the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/body_2d_keypoint/rtmo/coco/rtmo-s_8xb32-600e_coco-640x640.py"


def mm_side(folder: Path, runs: int) -> None:
    import mm_stub  # noqa: F401
    import numpy as np
    import torch
    from mmpose.apis import init_model
    from mmpose.structures import PoseDataSample

    torch.set_num_threads(os.cpu_count() or 1)
    model = init_model(str(folder / "rtmo-s.py"), None, device="cpu").eval()
    x = torch.rand(1, 3, 640, 640) * 255
    sample = PoseDataSample(metainfo=dict(input_size=np.array([640, 640]),
                                          input_center=np.array([320.0, 320.0]),
                                          input_scale=np.array([640.0, 640.0])))
    with torch.no_grad():
        forward = median_ms(lambda: model._forward(x), runs)
        predict = median_ms(lambda: model.predict(x, [sample]), runs)
    (folder / "mm.json").write_text(json.dumps({"forward": forward, "predict": predict}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mm-python", default="/tmp/mmvenv/bin/python")
    parser.add_argument("--mm-path", default="/work/shared/reference")
    parser.add_argument("--mmpose-repo", default="/work/.mirror/open-mmlab+mmpose/repo")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--mm-side", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mm_side:
        mm_side(Path(args.mm_side), args.runs)
        return 0
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from check_mm_equivalence import write_rtmo_inputs
    from machine import cpu_flags

    import humanpose
    from humanpose.export import export_onnx
    from humanpose.runtime.rtmo import decode, preprocess
    from humanpose.runtime.sessions import OpenVinoSession

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_rtmo_inputs(folder, ["rtmo-s"], Path(args.mmpose_repo))
        meta_file = subprocess.run(
            [args.mm_python, "-c", "import mmpose, pathlib; print(pathlib.Path(mmpose.__file__)"
             ".parent / '.mim/configs/_base_/datasets/coco.py')"],
            capture_output=True, text=True, check=True).stdout.strip()
        cfg_file = folder / "rtmo-s.py"
        cfg_file.write_text(cfg_file.read_text().replace("'configs/_base_/datasets/coco.py'",
                                                         repr(meta_file)))
        env = {**os.environ, "PYTHONPATH": args.mm_path}
        subprocess.run([args.mm_python, __file__, "--mm-side", tmp, "--runs", str(args.runs)],
                       check=True, env=env)
        mm = json.loads((folder / "mm.json").read_text())

        cfg = humanpose.get_cfg(str(ROOT / "experiments/coco/rtmo/rtmo_s_640x640.yaml"), [])
        model = humanpose.build_model(cfg).eval()
        export_onnx(model, cfg, folder / "rtmo-s.onnx", output_names=("detections",),
                    dynamic_batch=False, check=False)
        session = OpenVinoSession(folder / "rtmo-s.onnx")
        image = np.load(folder / "rtmo_image.npy")
        batch, meta = preprocess(image)
        graph = median_ms(lambda: session(batch), args.runs)
        whole = median_ms(lambda: decode(session(batch)[0][0], meta), args.runs)
    print(f"CPU: {os.cpu_count()} cores, {cpu_flags()}; precision "
          f"{session.inference_precision}; median of {args.runs} runs, batch 1, 640x640")
    print(f"{'mmpose eager _forward (no DCC/NMS)':44} {mm['forward']:8.1f} ms")
    print(f"{'mmpose eager predict (+decode, NMS, DCC)':44} {mm['predict']:8.1f} ms")
    print(f"{'humanpose OpenVINO graph':44} {graph:8.1f} ms  "
          f"{mm['forward'] / graph:.2f}x vs _forward")
    print(f"{'humanpose OpenVINO graph + NumPy decode/NMS':44} {whole:8.1f} ms  "
          f"{mm['predict'] / whole:.2f}x vs predict")
    return 0


if __name__ == "__main__":
    sys.exit(main())
