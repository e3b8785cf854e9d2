#!/usr/bin/env python
"""The seed's entry point, kept: `python tools/train.py --cfg FILE [KEY VALUE ...]`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works without installing too
from humanpose.cli import main  # noqa: E402

raise SystemExit(main(["train", *sys.argv[1:]]))
