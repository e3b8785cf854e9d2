"""Stopping a `humanpose` subprocess mid-run, as a user's Ctrl-C or a scheduler's SIGTERM
would: the tests of results that survive a stop share it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def signal_after_lines(command: Sequence[str], env: Mapping[str, str], lines_file: Path,
                       lines: int, signal_number: int, timeout: float = 120
                       ) -> tuple[int, str, str]:
    """Run ``command``, send ``signal_number`` once ``lines_file`` holds ``lines`` lines, and
    return (exit code, stdout, stderr). SIGINT is reset to its default in the child, so that
    Python raises KeyboardInterrupt for it even where the test runs with SIGINT ignored (a
    background job)."""
    process = subprocess.Popen(list(command), env=dict(env), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + timeout
    try:
        while not (lines_file.is_file() and lines_file.read_text().count("\n") >= lines):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"no frame written in {timeout:.0f} s"
            time.sleep(0.01)
        process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, stdout, stderr
