"""Every Python and shell example of README.md, run as written on small files this test
writes, so that the README cannot drift from the code.

A command runs with its placeholders filled in (``--cfg ...``: the block's previous
experiment file; ``[--opt]``: with the option; ``SPEC``, ``DIR``, ``KEY VALUE``: see
:data:`PLACEHOLDERS`) and with overrides that only shrink the work (:func:`shrunk`: a small
input size, one short epoch, fewer timing runs), appended after the README's own arguments.
Skipped are only the lines that download (``--model NAME`` except ``info``, which needs no
weights), the set-up itself (``pip install``) and the test command (this suite)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import humanpose
from humanpose.cli import main
from humanpose.engine.state import weights_with_config
from tests.test_demo import DETECTOR_SMALL, POSE_SMALL
from tests.test_detection import E2E_META, constant_yolo, end2end_rows
from tests.test_inference import stick_figure

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# Why a README line is not run here; any other line runs.
SKIPPED = {
    "pip install": "the set-up itself, which CI runs before the tests (it needs the index)",
    "python -m pytest": "the test command: this suite",
    "--model": "downloads the zoo's weights (tests/test_zoo.py runs --model against a "
               "local server)",
}

SMALL_INPUT = ["MODEL.IMAGE_SIZE", "[96,128]", "MODEL.HEATMAP_SIZE", "[24,32]"]
SHORT_TRAINING = ["TRAIN.END_EPOCH", "1", "TRAIN.BATCH_SIZE_PER_GPU", "4",
                  "TEST.BATCH_SIZE_PER_GPU", "4", "WORKERS", "0", "TRAIN.AMP", "none"]


@dataclass
class Block:
    language: str
    line: int  # README line of the block's first code line
    code: list[str]


def readme_blocks() -> list[Block]:
    blocks, current = [], None
    for number, text in enumerate(README.read_text().splitlines(), 1):
        if text.startswith("```"):
            if current is None:
                current = Block(text[3:].strip(), number + 1, [])
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.code.append(text)
    assert current is None, "README.md: a code fence is not closed"
    return [b for b in blocks if b.language in ("python", "bash")]


BLOCKS = readme_blocks()


def test_the_readme_has_examples_of_both_kinds():
    assert {b.language for b in BLOCKS} == {"python", "bash"}
    assert len(BLOCKS) >= 8


# ---------------------------------------------------------------------------- files
@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder with what the examples name: images, a video, weights, ONNX files and a
    small COCO-format data set at ``data/coco`` (the configs' default root)."""
    root = tmp_path_factory.mktemp("readme")
    for name in ("photo.jpg", "img.jpg"):
        cv2.imwrite(str(root / name), stick_figure())
    (root / "DIR").mkdir()
    for i in range(2):
        cv2.imwrite(str(root / "DIR" / f"person{i}.jpg"), stick_figure(x=140 + 20 * i))
    writer = cv2.VideoWriter(str(root / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25,
                             (320, 240))
    for i in range(4):
        writer.write(stick_figure(x=140 + 5 * i))
    writer.release()

    from humanpose.data.synthetic import write_coco_set

    paths = write_coco_set(root / "data" / "coco", 4, 2, 0)
    # the seed's detections file, where the configs look for it
    seed_boxes = Path(humanpose.get_cfg("experiments/coco/lpn/lpn50_256x192_gd256x2_gc.yaml"
                                        ).TEST.COCO_BBOX_FILE)
    (root / seed_boxes).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths["val2017_detections"], root / seed_boxes)

    def state_of(cfg_name: str, *opts: str) -> dict:
        torch.manual_seed(0)
        return humanpose.build_model(humanpose.get_cfg(cfg_name, list(opts))).state_dict()

    lpn50 = state_of("coco/lpn/lpn50_256x192_gd256x2_gc")
    torch.save(lpn50, root / "lpn50.pth")
    torch.save(lpn50, root / "lpn_50_256x192.pth")  # the seed's zoo file: a bare state dict
    w32 = state_of("coco/hrnet/w32_256x192_adam_lr1e-3")
    torch.save(w32, root / "pose_hrnet_w32_256x192.pth")
    torch.save(w32, root / "w.pth")
    # the ImageNet backbone the HRNet config starts from (MODEL.PRETRAINED), as the seed's
    # set-up puts it under models/
    imagenet = root / humanpose.get_cfg("coco/hrnet/w32_256x192_adam_lr1e-3").MODEL.PRETRAINED
    imagenet.parent.mkdir(parents=True)
    torch.save({k: v for k, v in w32.items() if not k.startswith("final_layer")}, imagenet)
    small = humanpose.get_cfg("coco/lpn/lpn50_256x192_gd256x2_gc", SMALL_INPUT)
    trained = root / "output" / "coco" / "lpn" / "my_run" / "model_best.pth"
    trained.parent.mkdir(parents=True)
    torch.save(weights_with_config(state_of("coco/lpn/lpn50_256x192_gd256x2_gc",
                                            *SMALL_INPUT), small, "my_run.yaml"), trained)
    # A person detector that finds one person whatever the image (an end-to-end YOLO file).
    constant_yolo(root / "person_detector.onnx", end2end_rows()[None], E2E_META)
    for cfg_name, file in (("coco/rtmpose/rtmpose_t_256x192", "rtmpose_t.onnx"),
                           ("detection/rtmdet_nano_320_person", "rtmdet_nano.onnx")):
        assert main(["export", "--cfg", cfg_name, "--random-weights", "--output",
                     str(root / file)]) == 0
    # RTMO's examples: a small one-stage export (64x64 input, its 20 anchors all kept)
    assert main(["export", "--cfg", "coco/rtmo/rtmo_s_640x640", "--random-weights", "--output",
                 str(root / "rtmo-s.onnx"), "MODEL.IMAGE_SIZE", "[64,64]",
                 "MODEL.RTMO.TOPK", "20"]) == 0
    # `humanpose vis` draws a results file over the images it names
    assert main(["infer", "--weights", str(trained), "--input", str(root / "DIR"),
                 "--output", str(root / "inferred"), "--quiet", "--backend", "torch"]) == 0
    shutil.copy(root / "inferred" / "results.json", root / "results.json")
    return root


# ---------------------------------------------------------------------------- shell lines
PLACEHOLDERS = {"SPEC": "person_detector.onnx", "DIR": "DIR"}


def commands(block: Block) -> list[tuple[int, str]]:
    """(README line, command) of a shell block, comments and blank lines left out."""
    found = []
    for offset, text in enumerate(block.code):
        text = text.split(" #", 1)[0].strip()
        if text and not text.startswith("#"):
            found.append((block.line + offset, text))
    return found


def filled(command: str, last_cfg: str | None) -> list[str]:
    command = re.sub(r"\[([^\]]+)\]", r"\1", command)  # [--opt]: run with it
    words = shlex.split(command)
    out: list[str] = []
    for i, word in enumerate(words):
        if word == "..." and i and words[i - 1] == "--cfg":
            assert last_cfg, f"{command}: '--cfg ...' with no earlier --cfg in its block"
            out.append(last_cfg)
        elif word in ("KEY", "VALUE"):
            continue
        else:
            out.append(PLACEHOLDERS.get(word, word))
    return out


def shrunk(argv: list[str]) -> list[str]:
    """What makes a command small enough for a test, appended after the README's words."""
    if "humanpose" in argv:
        args = argv[argv.index("humanpose") + 1:]
        command = args[0] if args else ""
    else:  # python tools/train.py, tools/test.py
        command = Path(argv[1]).stem
    cfg = argv[argv.index("--cfg") + 1] if "--cfg" in argv else ""
    if command == "demo":
        return ["--train", "4", "--val", "2", *POSE_SMALL, "TEST.IMAGE_THRE", "0.0",
                *DETECTOR_SMALL]
    extra = []
    if "detection/" not in cfg and command in ("train", "test", "infer", "export", "bench") \
            and cfg:
        extra += SMALL_INPUT
    if command == "train":
        extra += SHORT_TRAINING
    if command == "bench":
        extra += ["--runs", "2"]
    if command == "infer":
        extra += ["--quiet"]
    return extra


def run_line(argv: list[str], root: Path) -> int:
    if argv[0] == "humanpose":
        return main(argv[1:])
    if argv[0] == "python" and argv[1].startswith("tools/"):
        done = subprocess.run([sys.executable, str(REPO / argv[1]), *argv[2:]], cwd=root,
                              timeout=600)
        return done.returncode
    if argv[0] == "torchrun":
        # 8 processes on 2 cores would only be slow: 2 show the same DDP path
        argv = [a if a != "8" else "2" for a in argv]
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", *argv[1:]],
                              cwd=root, timeout=600)
        return done.returncode
    raise AssertionError(f"README.md: no way to run {' '.join(argv)!r}; teach tests/"
                         "test_readme.py, or skip it with a reason in SKIPPED")


def after_line(argv: list[str], root: Path) -> None:
    """What a user does between two lines: take the trained file for the next one."""
    if argv[:2] == ["humanpose", "train"] and "detection/" in argv[argv.index("--cfg") + 1]:
        best = sorted(root.glob("output/**/person_detector_320/model_best.pth"))
        assert best, "training the detector wrote no model_best.pth"
        shutil.copy(best[-1], root / "model_best.pth")


def skip_reason(command: str) -> str | None:
    for start, reason in SKIPPED.items():
        if command.startswith(start) or (start == "--model" and start + " " in command
                                         and not command.startswith("humanpose info")):
            return reason
    return None


SHELL = [b for b in BLOCKS if b.language == "bash"]


@pytest.mark.parametrize("block", SHELL, ids=[f"line{b.line}" for b in SHELL])
def test_shell_block_runs(block, workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    last_cfg, ran = None, 0
    for line, command in commands(block):
        if skip_reason(command):
            continue
        argv = filled(command, last_cfg)
        if "--cfg" in argv:
            last_cfg = argv[argv.index("--cfg") + 1]
        code = run_line([*argv, *shrunk(argv)], workspace)
        assert code == 0, f"README.md line {line}: {command!r} exited with {code}"
        after_line(argv, workspace)
        ran += 1
    kinds = {skip_reason(c) for _, c in commands(block)}
    assert ran or kinds - {None}, f"README.md line {block.line}: nothing run or skipped"


def test_commands_of_the_readme_print_what_it_says(workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    assert main(["info", "--cfg", "experiments/coco/lpn/lpn50_256x192_gd256x2_gc.yaml",
                 "--json", "--runs", "1"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info) == {"params", "gflops", "input_size", "latency_ms"}


# ---------------------------------------------------------------------------- Python blocks
PYTHON = [b for b in BLOCKS if b.language == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=[f"line{b.line}" for b in PYTHON])
def test_python_block_runs(block, workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    namespace: dict = {"__name__": "readme"}
    code = compile("\n".join(block.code), f"README.md:{block.line}", "exec")
    exec(code, namespace)  # noqa: S102 - the README's own example
    # what each example promises about its results
    if "people" in namespace:
        keypoints = namespace["people"][0].keypoints
        assert np.asarray(keypoints).shape == (17, 3)
    if "results" in namespace:
        results = namespace["results"]
        assert results.keypoints.shape[1:] == (17, 2) and (workspace / "drawn.jpg").is_file()
