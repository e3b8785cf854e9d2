"""The runtime install, checked for real: a fresh venv with ``pip install .`` only (no torch),
an ONNX model run through ``PoseModel`` and ``humanpose infer --track --save-csv`` in it, and
the install sizes of the runtime venv and of the full (``[test]``) environment.

    python benchmarks/check_runtime_install.py [--venv /tmp/humanpose-runtime] [--keep]

The ONNX file and the video are written by this (full) environment first; the fresh venv
then gets the package from this checkout, pinned by constraints.txt. Prints one JSON object
(figures for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2 ** 20


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                          "['purelib'])"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """An RTMPose-t ONNX export (random weights) and an 8-frame walking video."""
    import torch

    import humanpose
    from humanpose.data.synthetic_video import make_walking_video, write_video
    from humanpose.export import export_pose_onnx

    cfg = humanpose.get_cfg(ROOT / "experiments" / "coco" / "rtmpose" /
                            "rtmpose_t_256x192.yaml")
    torch.manual_seed(0)
    onnx = folder / "rtmpose_t.onnx"
    export_pose_onnx(humanpose.build_model(cfg).eval(), cfg, onnx)
    video = folder / "walk.avi"
    write_video(make_walking_video(8, width=320, height=240), video, fourcc="MJPG")
    return onnx, video


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=None, help="where to make the venv (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the venv afterwards")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="humanpose-runtime-"))
    venv = Path(args.venv) if args.venv else work / "venv"
    onnx, video = write_inputs(work)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT), "-c",
                    str(ROOT / "constraints.txt")], check=True)
    install_s = time.perf_counter() - start
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True, check=True)
    script = f"""
import json, sys
import numpy as np
from humanpose.runtime import PoseModel
from humanpose.cli import main
results = PoseModel({str(onnx)!r})(np.full((240, 320, 3), 127, np.uint8))
code = main(["infer", "--weights", {str(onnx)!r}, "--input", {str(video)!r}, "--output",
             {str(work / 'out')!r}, "--track", "--save-csv", {str(work / 'people.csv')!r},
             "--quiet"])
print(json.dumps({{"people": len(results), "infer_exit": code,
                  "torch_loaded": "torch" in sys.modules}}))
"""
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True,
                         cwd=work)
    report = {
        "torch_absent": probe.stdout.strip() == "True",
        "run": json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0
        else run.stderr[-2000:],
        "rows_in_csv": sum(1 for _ in open(work / "people.csv")) - 1
        if (work / "people.csv").is_file() else None,
        "install_s": round(install_s, 1),
        "runtime_site_packages_mb": round(folder_mb(site_packages(python)), 1),
        "full_site_packages_mb": round(folder_mb(Path(sysconfig.get_paths()["purelib"])), 1),
    }
    print(json.dumps(report, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    ok = report["torch_absent"] and isinstance(report["run"], dict) and \
        report["run"]["infer_exit"] == 0 and not report["run"]["torch_loaded"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
