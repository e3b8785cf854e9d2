"""Runs over a whole source: frames in, people (tracked in video) out, written as they come.

People move little between frames, so in a video the :class:`~humanpose.inference.tracking.
PoseTracker` places the crops of the next frame where each person is heading, and the
detector (the costly part of top-down inference) runs only now and then: every
``detect_every`` frames, and for a few frames after a track is lost. The tracker always
runs on video (it places the crops); its ids are written only when asked (``track=True``,
``--track``).

:func:`run_on_source` is ``humanpose infer``: frames in, COCO results and drawings out, with
the time of each stage. It is three parts: the source's frames, a :class:`FrameStep` that
turns one frame into people, and :class:`RunOutputs`, which writes each frame as it comes
(``results.jsonl``, the CSV, drawings, the video) and whose ``close()`` (always called,
also on Ctrl-C, SIGTERM or an error) writes the COCO files for every frame done. A run that
stops early loses nothing it finished.

Pipelined (the default), reading/decoding runs on a thread of its own and drawing/writing
on another, each behind a small bounded queue, so that the pose network never waits for
the disk or the network; both are daemon threads fed or ended by a sentinel, so that no
error or signal can leave the process hanging on them.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from humanpose.errors import HumanposeError
from humanpose.inference.display import LiveWindow, StopRequested
from humanpose.inference.frame_step import FrameResult, FrameStep
from humanpose.inference.outputs import (
    STAGES,
    RunOutputs,
    RunSummary,
    _signals_held,
    frame_line,
)
from humanpose.inference.smoothing import KeypointSmoother
from humanpose.inference.sources import Frame, FrameSource
from humanpose.inference.tracking import PoseTracker
from humanpose.runtime.results import csv_header
from humanpose.runtime.topdown import TopDown

__all__ = ["STAGES", "FrameResult", "FrameStep", "RunOutputs", "RunSummary", "Terminated",
           "csv_header", "frame_line", "run_on_source", "sigterm_raises"]


class Terminated(BaseException):
    """SIGTERM during a run, raised like ``KeyboardInterrupt`` is for SIGINT (a
    ``BaseException``: ``except Exception`` must not swallow it)."""

    def __init__(self, signal_number: int = signal.SIGTERM):
        super().__init__(f"terminated by signal {signal_number}")
        self.signal_number = signal_number


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the block (the default would kill the
    process without closing its outputs); the previous handler is restored after. Only the
    main thread can install handlers: elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signal_number, _frame):
        raise Terminated(signal_number)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:  # the parent wants it ignored
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:  # a handler installed outside Python reads as None: give back the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _stop_reason(err: BaseException) -> str:
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if isinstance(err, Terminated):
        return "terminated"
    return f"error: {type(err).__name__}"


# ----------------------------------------------------------------------------- the loop
_END = object()  # the sentinel that ends a queue
QUEUE_FRAMES = 4  # frames waiting between two stages: enough to even out, little memory


@dataclass
class _Failed:
    """An exception raised in a worker thread, handed to the main thread to raise."""

    error: BaseException


def _limited(frames: Iterator[Frame], max_frames: int | None, duration: float | None
             ) -> Iterator[Frame]:
    """The frames up to ``max_frames`` and ``duration`` seconds (the frames' own time
    stamps for video, webcams and streams; wall clock since the first frame for images)."""
    start: float | None = None
    for count, frame in enumerate(frames):
        if max_frames is not None and count >= max_frames:
            return
        if duration is not None:
            now = time.monotonic()
            start = now if start is None else start
            elapsed = frame.time if frame.time is not None else now - start
            if elapsed > duration:
                return
        yield frame


def _put(target: queue.Queue, item, stop: threading.Event, alive=None) -> bool:
    """Put ``item`` unless ``stop`` is set (or the consumer ``alive()`` is no more) while
    the queue is full; whether it went in."""
    while not stop.is_set() and (alive is None or alive()):
        try:
            target.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _reader(frames: Iterator[Frame], out: queue.Queue, stop: threading.Event) -> None:
    """The reading thread: (frame, seconds to read it, when it was read) into ``out``."""
    clock = time.perf_counter
    try:
        while not stop.is_set():
            t0 = clock()
            frame = next(frames, None)
            if frame is None:
                break
            done = clock()
            if not _put(out, (frame, done - t0, done), stop):
                return
    except BaseException as err:  # noqa: BLE001 - raised again on the main thread
        _put(out, _Failed(err), stop)
        return
    _put(out, _END, stop)


def _writer(results: queue.Queue, outputs: RunOutputs, summary: RunSummary,
            shown: queue.Queue | None, errors: list[BaseException]) -> None:
    """The writing thread: draws and writes each result until the sentinel."""
    while True:
        result = results.get()
        if result is _END:
            return
        try:
            outputs.add(result)
            summary.add(result)
        except BaseException as err:  # noqa: BLE001 - raised again on the main thread
            errors.append(err)
            return
        if shown is not None:
            with contextlib.suppress(queue.Empty):
                shown.get_nowait()  # only the newest drawing is worth showing
            with contextlib.suppress(queue.Full):
                shown.put_nowait(result.frame.image)


def _next_item(items: queue.Queue, reader: threading.Thread):
    """The reader's next item, waiting in short steps so that Ctrl-C is seen at once."""
    while True:
        try:
            return items.get(timeout=0.1)
        except queue.Empty:
            if not reader.is_alive() and items.empty():
                return _END


def run_on_source(estimator: TopDown, source: FrameSource, output_dir: str | os.PathLike,
                  boxes_file: str | os.PathLike | None = None,
                  annotations: str | os.PathLike | None = None, render: bool = True,
                  detect_every: int = 0, max_frames: int | None = None,
                  threshold: float = 0.2, track_confidence: float = 0.2,
                  progress: bool = True, summary: RunSummary | None = None, *,
                  track: bool = False, smooth: bool | None = None,
                  smooth_min_cutoff: float = 1.0, smooth_beta: float = 0.03,
                  duration: float | None = None, csv_file: str | os.PathLike | None = None,
                  show: bool = False, pipeline: bool = True,
                  tracker: PoseTracker | None = None,
                  tracker_settings: dict | None = None) -> RunSummary:
    """Run ``estimator`` on every frame of ``source``, writing what :class:`RunOutputs`
    describes. On Ctrl-C, SIGTERM (raised as :class:`Terminated` for the run) or an error,
    the outputs still hold every frame done, ``summary`` says what was done (pass one in to
    read it after such a stop), and the exception goes on. ``q``/Esc in the ``show`` window
    ends the run the same way, without an exception.

    For video, webcams and streams a :class:`PoseTracker` (``tracker``, else one made with
    ``detect_every``, ``track_confidence`` (the key-point confidence it counts) and
    ``tracker_settings`` (its other keyword arguments, e.g. from ``TRACK.*``)) places
    the crops between detections; ``track`` writes its ids, ``smooth`` (default: ``track``)
    runs a One-Euro filter per track and key point. ``max_frames`` and ``duration`` (seconds
    of the source) stop any source. ``pipeline``: reading and writing on threads of their
    own (see the module docstring); False runs every stage in turn on this thread.
    Unreadable files of a folder are skipped and listed in ``summary.skipped``.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summary if summary is not None else RunSummary(out)
    summary.pipelined = pipeline
    is_video = source.kind in ("video", "webcam", "stream")
    smooth = track if smooth is None else smooth
    smoother = (KeypointSmoother(smooth_min_cutoff, smooth_beta, fps=source.fps)
                if smooth and is_video else None)
    step = FrameStep(estimator, is_video, boxes_file, annotations, detect_every,
                     track_confidence, track=track, smoother=smoother, tracker=tracker,
                     fps=source.fps if is_video else 25.0, tracker_settings=tracker_settings)
    window = LiveWindow() if show else None
    video = (getattr(source, "stem", "video"), source.fps) if is_video else None
    total = len(source) or None
    if max_frames and total:
        total = min(total, max_frames)
    clock = time.perf_counter
    bar = tqdm(total=total, unit="frame", desc="infer", disable=not progress,
               dynamic_ncols=True)
    stop = threading.Event()
    reader = writer = None
    errors: list[BaseException] = []
    with sigterm_raises():
        outputs = RunOutputs(out, estimator, render, threshold, video, csv_file,
                             draw=render or show)
        summary.results_file, summary.lines_file = outputs.results_file, outputs.lines_file
        summary.rendered = outputs.rendered
        start = clock()
        frames = _limited(iter(source), max_frames, duration)
        if pipeline:
            items: queue.Queue = queue.Queue(QUEUE_FRAMES)
            results: queue.Queue = queue.Queue(QUEUE_FRAMES)
            shown: queue.Queue | None = queue.Queue(1) if window else None
            reader = threading.Thread(target=_reader, args=(frames, items, stop),
                                      name="humanpose-reader", daemon=True)
            writer = threading.Thread(target=_writer,
                                      args=(results, outputs, summary, shown, errors),
                                      name="humanpose-writer", daemon=True)
            reader.start()
            writer.start()
        try:
            done = 0
            while True:
                if reader is not None:
                    item = _next_item(items, reader)
                    if item is _END:
                        break
                    if isinstance(item, _Failed):
                        raise item.error
                    frame, reading, read_at = item
                else:
                    t0 = clock()
                    frame = next(frames, None)
                    if frame is None:
                        break
                    read_at = clock()
                    reading = read_at - t0
                result = step(frame)
                result.times["reading"] = reading
                result.read_at = read_at
                done += 1
                if writer is None:
                    outputs.add(result)
                    summary.add(result)
                    image = result.frame.image
                else:
                    if errors:
                        raise errors[0]
                    if not _put(results, result, stop, writer.is_alive):
                        raise errors[0] if errors else HumanposeError("the writer stopped")
                    image = None
                    if shown is not None:
                        with contextlib.suppress(queue.Empty):
                            image = shown.get_nowait()
                if done == 1:
                    summary.first_frame_seconds = clock() - start
                bar.update(1)
                if window is not None and image is not None:
                    window.show(image, done / max(clock() - start, 1e-9))
            if writer is not None:
                _finish_writer(results, writer, stop)
                if errors:
                    raise errors[0]
        except StopRequested:
            summary.stopped = "stopped from the window"
        except BaseException as err:
            summary.stopped = _stop_reason(err)
            raise
        finally:
            stop.set()
            bar.close()
            try:
                with _signals_held():  # a second Ctrl-C must not cut results.json short
                    if writer is not None and writer.is_alive():
                        _finish_writer(results, writer, stop)
                    summary.seconds = clock() - start
                    outputs.close()
            finally:
                if reader is not None:
                    reader.join(timeout=2.0)
                summary.skipped = list(source.skipped)
                if window is not None:
                    window.close()
                if reader is None or not reader.is_alive():
                    source.close()  # never under a read still running on the reader
    return summary


def _finish_writer(results: queue.Queue, writer: threading.Thread, stop: threading.Event
                   ) -> None:
    """Let the writer write what is queued, then end it (the sentinel)."""
    while writer.is_alive():
        try:
            results.put(_END, timeout=0.1)
            break
        except queue.Full:
            continue
    writer.join(timeout=120)
