"""The package's floors: lower layers never import higher ones (DESIGN.md).

Checked on the source, so an import added inside a function counts too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "humanpose"

# floor -> the humanpose modules it must never import (directly, at any depth).
TASKS_AND_FRONTS = ("humanpose.pose", "humanpose.detection", "humanpose.inference",
                    "humanpose.cli", "humanpose.demo", "humanpose.zoo")
FORBIDDEN = {
    "engine": TASKS_AND_FRONTS,
    "data": ("humanpose.engine", *TASKS_AND_FRONTS, "humanpose.export"),
    "codecs": ("humanpose.engine", *TASKS_AND_FRONTS, "humanpose.export"),
    "models": ("humanpose.engine", *TASKS_AND_FRONTS, "humanpose.export"),
    "evaluation": ("humanpose.engine", *TASKS_AND_FRONTS, "humanpose.export"),
    "inference": ("humanpose.engine", "humanpose.cli", "humanpose.pose"),
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_no_upward_imports(floor):
    bad = []
    for path in sorted((PACKAGE / floor).rglob("*.py")):
        for name in imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[floor]):
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not bad, "\n".join(bad)


def test_nothing_but_the_entry_points_imports_the_cli():
    users = [p for p in PACKAGE.rglob("*.py") if p.name not in ("cli.py", "__main__.py")
             and any(n == "humanpose.cli" or n.startswith("humanpose.cli.")
                     for n in imported_modules(p))]
    assert not users, users


# The runtime layer (NumPy, OpenCV, ONNX Runtime/OpenVINO): never PyTorch. The PyTorch side
# builds on it, never the other way (tests/test_runtime.py imports it with torch blocked).
RUNTIME_FILES = sorted([
    *(PACKAGE / "runtime").glob("*.py"),
    *(PACKAGE / "inference" / f"{name}.py" for name in
      ("association", "detector", "display", "follow", "frame_step", "outputs",
       "recovery", "smoothing", "sources", "track", "tracking", "video")),
    *(PACKAGE / "codecs" / f"{name}.py" for name in ("base", "heatmap", "simcc")),
    *(PACKAGE / "data" / f"{name}.py" for name in ("geometry", "images", "keypoints",
                                                   "normalize")),
    *(PACKAGE / "evaluation" / f"{name}.py" for name in ("coco", "nms", "tracking")),
    PACKAGE / "vis.py", PACKAGE / "measured.py", PACKAGE / "errors.py",
])
TORCH_SIDE = ("humanpose.models", "humanpose.engine", "humanpose.pose", "humanpose.detection",
              "humanpose.export", "humanpose.checkpoint", "humanpose.predict",
              "humanpose.compat", "humanpose.summary", "humanpose.inference.backends",
              "humanpose.inference.estimator", "humanpose.inference.lpn_form",
              "humanpose.inference.compare", "humanpose.inference.fused_conv",
              "humanpose.inference.one_stage",
              "humanpose.data.topdown", "humanpose.data.loader", "humanpose.data.augment",
              "humanpose.data.prefetch", "humanpose.cli", "humanpose.demo")


def top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", RUNTIME_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_runtime_never_imports_the_torch_side(path):
    assert path.is_file()
    bad = sorted(n for n in imported_modules(path)
                 if any(n == f or n.startswith(f + ".") for f in TORCH_SIDE))
    assert not bad, f"{path.name} imports {bad}"
    assert not {n for n in top_level_imports(path) if n == "torch" or n.startswith("torch.")}


def test_backends_and_lpn_form_import_each_other_no_more():
    backends = imported_modules(PACKAGE / "inference" / "backends.py")
    lpn_form = imported_modules(PACKAGE / "inference" / "lpn_form.py")
    assert not ("humanpose.inference.lpn_form" in backends
                and "humanpose.inference.backends" in lpn_form)


@pytest.mark.parametrize("path", sorted([*(PACKAGE / "inference").glob("*.py"),
                                         *(PACKAGE / "runtime").glob("*.py")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inference_and_runtime_modules_stay_small(path):
    """One job per module: issue 22 split inference/ into modules of at most ~400 lines."""
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{path} has {lines} lines; split it by what it does"
