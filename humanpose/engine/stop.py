"""Stopping a run cleanly: SIGTERM behaves like Ctrl-C, and neither splits an update.

``torchrun``, Slurm and Kubernetes stop a job with SIGTERM, whose default action kills the
process before it can write anything. Inside :func:`stop_signals` both signals raise a
:class:`KeyboardInterrupt` (SIGTERM a :class:`StopRequested`), so the code that saves a
resumable checkpoint on Ctrl-C also runs on SIGTERM. A signal that arrives inside
:func:`critical_section` (an optimizer step) is held until the section ends, so the saved
weights, optimizer and step count always describe the same whole step.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StopRequested", "critical_section", "stop_signals"]


class StopRequested(KeyboardInterrupt):
    """SIGTERM (or another stop signal) asked the process to end."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class _Handler:
    """Signal handlers are process-wide: one active handler, depth of critical sections."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None

    def __call__(self, signum: int, frame) -> None:
        if self.depth > 0 and self.pending is None:
            self.pending = signum  # a second signal while held stops at once
            return
        raise _exception(signum)


_active: _Handler | None = None


def _exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else StopRequested(signum)


@contextmanager
def stop_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into exceptions for the duration (main thread only; a signal
    the parent set to be ignored stays ignored)."""
    global _active
    if threading.current_thread() is not threading.main_thread() or _active is not None:
        yield
        return
    handler = _Handler()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            old = signal.signal(signum, handler)
            previous[signum] = signal.SIG_DFL if old is None else old
    _active = handler
    try:
        yield
    finally:
        _active = None
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def critical_section() -> Iterator[None]:
    """Hold stop signals until the block ends, then raise the one that came."""
    handler = _active
    if handler is None:
        yield
        return
    handler.depth += 1
    try:
        yield
    finally:
        handler.depth -= 1
    if handler.depth == 0 and handler.pending is not None:
        signum, handler.pending = handler.pending, None
        raise _exception(signum)
