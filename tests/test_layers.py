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
