"""Load the next batches in a background thread while the main thread computes.

On a CPU without free cores for loader processes (:func:`humanpose.data.loader.loader_workers`
gives 0 workers) the batches were loaded between forward passes, one after the other. JPEG
decoding, OpenCV's warps and PyTorch's kernels release the GIL, so a thread that loads batch
``i + 1`` while the model runs on batch ``i`` overlaps the two without another process (no
dataset copy, no start-up). The order of the batches is the loader's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(batches: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of ``batches``, produced by a daemon thread that runs at most ``depth``
    items ahead (a bounded queue keeps memory flat). An exception in the thread is raised
    here, at the item where it happened; closing the generator early stops the thread."""
    if depth < 1:
        raise ValueError(f"prefetch depth must be at least 1, got {depth}")
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in batches:
                if not put(item):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            put(_Failure(err))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="humanpose-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
