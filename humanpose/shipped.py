"""The experiment files that ship with humanpose, found by name.

In a source checkout (and an editable install) they are the repository's ``experiments/``
folder beside the package; a built wheel carries the same files as
``humanpose/experiments/`` (``setup.py`` maps the folder into the package). Looking in both
places, in that order, means ``--cfg coco/rtmpose/rtmpose_m_256x192`` works after
``pip install humanpose`` and in a checkout alike, while ``tools/`` and the tests keep
their ``experiments/...`` paths.
"""

from __future__ import annotations

import os
from pathlib import Path

from humanpose.errors import HumanposeError

__all__ = ["experiments_dir", "find_config", "shipped_configs"]

_PACKAGE = Path(__file__).resolve().parent


def experiments_dir() -> Path | None:
    """The folder of the shipped experiment files, or None when neither place has one."""
    for folder in (_PACKAGE / "experiments", _PACKAGE.parent / "experiments"):
        if folder.is_dir() and any(folder.glob("*/**/*.yaml")):
            return folder
    return None


def shipped_configs() -> list[str]:
    """The names of the shipped experiment files, e.g. ``coco/lpn/lpn50_256x192_gd256x2_gc``."""
    root = experiments_dir()
    if root is None:
        return []
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def find_config(spec: str | os.PathLike) -> Path:
    """The experiment file ``spec`` names: an existing path, else a shipped name (with or
    without ``.yaml``, relative to ``experiments/``; a leading ``experiments/`` is allowed).

    An existing file always wins, so a user's own file is never shadowed by a shipped one.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    root = experiments_dir()
    name = Path(spec).as_posix()
    if name.startswith("experiments/"):
        name = name[len("experiments/"):]
    if root is not None and not Path(name).is_absolute() and ".." not in Path(name).parts:
        for candidate in (root / name, root / (name + ".yaml")):
            if candidate.is_file():
                return candidate
    hint = ""
    if root is not None:
        stem = Path(name).name.removesuffix(".yaml")
        close = [n for n in shipped_configs() if stem and stem in n][:5]
        hint = (f"; shipped experiment files with a similar name: {', '.join(close)}" if close
                else f"; the shipped experiment files are under {root}")
    raise HumanposeError(f"config file not found: {spec} (neither a file nor the name of a "
                         f"shipped experiment file{hint})")
