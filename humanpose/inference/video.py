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
import csv
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from humanpose.errors import HumanposeError
from humanpose.evaluation.coco import write_results
from humanpose.evaluation.nms import oks_sigmas
from humanpose.inference.detector import (
    DetectionsFile,
    PersonDetector,
    coco_image_ids,
)
from humanpose.inference.display import LiveWindow, StopRequested
from humanpose.inference.smoothing import KeypointSmoother
from humanpose.inference.sources import Frame, FrameSource
from humanpose.inference.tracking import PoseTracker, follow_people, smooth_people
from humanpose.runtime.results import Person, csv_header, csv_row
from humanpose.runtime.topdown import TopDown
from humanpose.vis import draw_people, style_for

__all__ = ["STAGES", "FrameResult", "FrameStep", "RunOutputs", "RunSummary", "Terminated",
           "csv_header", "frame_line", "run_on_source", "sigterm_raises"]


# ----------------------------------------------------------------------------- the run
STAGES = ("reading", "detection", "pose", "tracking", "drawing", "writing")
RESULTS_FILE = "results.json"
LINES_FILE = "results.jsonl"
PERSON_CATEGORY = {"id": 1, "name": "person", "supercategory": "person"}


@dataclass
class RunSummary:
    """What a run over a source did, with its time per stage (seconds, summed). Filled in
    as the run goes, so that a caller holding it still knows what was done when the run
    stops with an exception."""

    output_dir: Path
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    results_file: Path | None = None
    lines_file: Path | None = None
    rendered: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: reason" of unreadable files
    stopped: str | None = None  # why the run ended early (None: it ran to the end)
    latency: float = 0.0  # seconds from frame read to frame written, summed
    pipelined: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        self.people += len(result.people)
        for stage, seconds in result.times.items():
            self.stages[stage] = self.stages.get(stage, 0.0) + seconds
        self.latency += result.latency

    def line(self) -> str:
        """The closing line: frames/s, where each frame's time went (stages overlap when
        pipelined) and the mean latency from a frame's reading to its writing."""
        per = {k: v * 1000 / max(self.frames, 1) for k, v in self.stages.items()}
        parts = ", ".join(f"{k} {per[k]:.1f} ms" for k in STAGES)
        latency = self.latency * 1000 / max(self.frames, 1)
        state = "done" if self.stopped is None else f"stopped ({self.stopped})"
        mode = "pipelined" if self.pipelined else "serial"
        return (f"{state}: {self.frames} frames, {self.people} people, {self.fps:.1f} frames/s "
                f"({mode}; {parts} per frame; latency {latency:.1f} ms read to written) "
                f"-> {self.output_dir}")

    def skipped_lines(self) -> list[str]:
        """The unreadable files, for the closing output (empty when there were none)."""
        if not self.skipped:
            return []
        return [f"skipped {len(self.skipped)} unreadable file(s):",
                *(f"  {entry}" for entry in self.skipped)]


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


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back for the block (delivered at its end), so that a frame is
    recorded in the JSON Lines file and in the COCO results together or not at all."""
    if not hasattr(signal, "pthread_sigmask") or (
            threading.current_thread() is not threading.main_thread()):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@dataclass
class FrameResult:
    """One frame's outcome: its image id, the people found and the seconds per stage;
    ``read_at`` (``time.perf_counter``) when the frame was read, ``latency`` the seconds
    from then until it was written."""

    frame: Frame
    image_id: int
    people: list[Person]
    times: dict[str, float] = field(default_factory=dict)
    read_at: float = 0.0
    latency: float = 0.0


class _Ids:
    """Image ids: from an annotation file's names, a detections file's, or sequential."""

    def __init__(self, annotations: dict[str, int] | None, detections: DetectionsFile | None,
                 annotation_path: str | None):
        self.names = annotations
        self.detections = detections
        self.annotation_path = annotation_path

    def __call__(self, frame: Frame, is_video: bool) -> int:
        if is_video:
            return frame.index + 1
        if self.names is not None:
            if frame.name not in self.names:
                raise HumanposeError(f"image {frame.name} is not in the annotation file "
                                     f"{self.annotation_path}")
            return self.names[frame.name]
        if self.detections is not None:
            image_id = self.detections.image_id_for(frame.name)
            if image_id is None:
                raise HumanposeError(
                    f"{self.detections.path}: cannot tell the image id of {frame.name}; pass "
                    "the COCO annotation file that names the images with --annotations")
            return image_id
        return frame.index + 1


class FrameStep:
    """One frame's work: its image id, its person boxes and the key points of each person.

    Boxes come from ``boxes_file`` (COCO detections) when given, else from the estimator's
    ``detector``, called here (not inside the estimator) so that its time is the
    ``detection`` stage and the estimator's the ``pose`` stage. In a video the ``tracker``
    (a :class:`PoseTracker` by default) decides when the detector runs and places the crops
    in between; a detections file gives each frame's boxes by frame (see
    :meth:`DetectionsFile.for_frame`) and frames it lacks are tracked on. ``track``: keep
    the track ids on the people (else they are None); ``smoother``: a
    :class:`KeypointSmoother` for the followed people's key points.
    """

    def __init__(self, estimator: TopDown, is_video: bool,
                 boxes_file: str | os.PathLike | None = None,
                 annotations: str | os.PathLike | None = None, detect_every: int = 0,
                 track_confidence: float = 0.2, track: bool = False,
                 smoother: KeypointSmoother | None = None,
                 tracker: PoseTracker | None = None):
        names = coco_image_ids(annotations) if annotations else None
        if boxes_file:
            dets: DetectionsFile | None = DetectionsFile(boxes_file, file_ids=names)
            detector: PersonDetector = dets
        else:
            detector = estimator.detector
            # A detections file given as the estimator's detector also names the images.
            dets = detector if isinstance(detector, DetectionsFile) else None
        self.estimator = estimator
        self.detector = detector
        self.is_video = is_video
        self.track = track
        self.smoother = smoother if is_video else None
        self.tracker = None
        if is_video:
            self.tracker = tracker or PoseTracker(oks_sigmas(estimator.keypoint_set),
                                                  detect_every=detect_every,
                                                  keypoint_threshold=track_confidence)
        self.frames_file = dets if is_video else None
        self.image_id_of = _Ids(names, dets, str(annotations) if annotations else None)

    def __call__(self, frame: Frame) -> FrameResult:
        clock = time.perf_counter
        t0 = clock()
        image_id = self.image_id_of(frame, self.is_video)

        def detect():
            return self.detector(frame.image, image_id=image_id, file_name=frame.name)

        if self.tracker is None:
            found = detect()
            t1 = clock()
            people = self.estimator(frame.image, found.boxes, found.scores)
            return FrameResult(frame, image_id, list(people),
                               {"detection": t1 - t0, "pose": clock() - t1})
        times: dict[str, float] = {}
        given = self.frames_file.for_frame(frame.index) if self.frames_file else None
        people = follow_people(self.tracker, self.estimator, frame.image, detect, given,
                               frame.index, times)
        t2 = clock()
        if self.smoother is not None:
            smooth_people(self.smoother, people, frame.time)
        if not self.track:
            for person in people:
                person.track_id = None
        times["tracking"] += clock() - t2
        return FrameResult(frame, image_id, people, times)


_AVC1: bool | None = None


def _avc1_works() -> bool:
    """Whether this OpenCV can write H.264 (``avc1``: what browsers play), found once by
    writing a tiny file with the encoder's complaints kept off the terminal."""
    global _AVC1
    if _AVC1 is None:
        with tempfile.TemporaryDirectory() as tmp, _quiet_stderr():
            path = os.path.join(tmp, "probe.mp4")
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"avc1"), 25, (64, 48))
            _AVC1 = writer.isOpened()
            if _AVC1:
                writer.write(np.zeros((48, 64, 3), np.uint8))
            writer.release()
    return _AVC1


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block (FFmpeg logs there, not to sys.stderr)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _video_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An H.264 (``avc1``) writer where OpenCV has the encoder, else MPEG-4 (``mp4v``) with
    a one-line note."""
    if _avc1_works():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"avc1"), fps, size)
        if writer.isOpened():
            return writer
    print(f"note: this OpenCV has no H.264 (avc1) encoder; {path.name} is written as mp4v, "
          "which some browsers do not play", file=sys.stderr)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise HumanposeError(f"cannot write video {path} (OpenCV has no mp4v encoder here?)")
    return writer


def frame_line(result: FrameResult) -> dict:
    """The JSON Lines record of a frame: where it is in the source, and its people (with
    their ``track_id`` when tracked)."""
    frame = result.frame
    line: dict = {"frame": frame.index, "image_id": int(result.image_id)}
    if frame.time is not None:
        line["time"] = frame.time
    else:
        line["file_name"] = frame.name
    people = []
    for p in result.people:
        person: dict = {}
        if p.track_id is not None:
            person["track_id"] = int(p.track_id)
        person.update(box=[round(float(v), 2) for v in p.box],
                      box_score=round(float(p.box_score), 6),
                      score=round(float(p.score), 6),
                      keypoints=[[round(float(v), 3) for v in point] for point in p.keypoints])
        people.append(person)
    line["people"] = people
    return line


def _csv_rows(result: FrameResult) -> list[list]:
    return [csv_row(p, result.frame.index, result.frame.time) for p in result.people]


class RunOutputs:
    """Everything a run writes, owned in one place.

    Each frame is written when it is done: a line of ``results.jsonl`` (flushed), rows of
    the CSV file when asked (one per person, flushed), its drawing (``rendered/<stem>.jpg``)
    or a frame of ``<stem>_pose.mp4``. :meth:`close` releases the video (so that the file
    is playable) and writes ``results.json`` (COCO results format) and ``images.json`` (a
    COCO file listing the images, so that ``results.json`` loads against it) for every
    frame written; call it however the run ends.
    """

    def __init__(self, output_dir: Path, estimator: TopDown, render: bool = True,
                 threshold: float = 0.2, video: tuple[str, float] | None = None,
                 csv_file: str | os.PathLike | None = None, draw: bool | None = None):
        self.output_dir = output_dir
        self.render = render
        self.draw = render if draw is None else draw  # drawn (for a window) though not saved
        self.threshold = threshold
        self.video = video  # (stem, fps) of a video, webcam or stream source
        self.keypoint_set = estimator.keypoint_set
        self.style = style_for(estimator.keypoint_set)
        self.results_file = output_dir / RESULTS_FILE
        self.lines_file = output_dir / LINES_FILE
        self.rendered: list[Path] = []
        self._results: list[dict] = []
        self._images: list[dict] = []
        self._writer: cv2.VideoWriter | None = None
        if render and video is not None:
            _avc1_works()  # probed here, on the main thread, not mid-run
        self._closing = contextlib.ExitStack()  # undone last in, first out
        self._closing.callback(self._write_coco_files)
        self._lines = open(self.lines_file, "w")  # noqa: SIM115 - closed by close()
        self._closing.callback(self._lines.close)
        self._csv = None
        if csv_file:
            Path(csv_file).parent.mkdir(parents=True, exist_ok=True)
            handle = open(csv_file, "w", newline="")  # noqa: SIM115 - closed by close()
            self._closing.callback(handle.close)
            self._csv = (handle, csv.writer(handle))
            self._csv[1].writerow(csv_header(self.keypoint_set.names))

    def add(self, result: FrameResult) -> None:
        """Write one frame: its drawing, then (together, never one without the other) its
        JSON line, CSV rows and COCO records."""
        clock = time.perf_counter
        t0 = clock()
        image = result.frame.image
        if self.draw:
            draw_people(image, result.people, threshold=self.threshold, style=self.style)
        t1 = clock()
        if self.render:
            self._write_drawing(result.frame)
        line = json.dumps(frame_line(result)) + "\n"
        h, w = image.shape[:2]
        records = [p.to_coco(result.image_id) for p in result.people]
        with _signals_held():
            self._lines.write(line)
            self._lines.flush()
            if self._csv is not None:
                self._csv[1].writerows(_csv_rows(result))
                self._csv[0].flush()
            self._images.append({"id": result.image_id, "file_name": result.frame.name,
                                 "width": w, "height": h})
            self._results += records
        done = clock()
        result.times.update(drawing=t1 - t0, writing=done - t1)
        result.latency = done - result.read_at if result.read_at else 0.0

    def _write_drawing(self, frame: Frame) -> None:
        if self.video is not None:
            if self._writer is None:
                stem, fps = self.video
                path = self.output_dir / f"{stem}_pose.mp4"
                h, w = frame.image.shape[:2]
                self._writer = _video_writer(path, fps, (w, h))
                self._closing.callback(self._writer.release)
                self.rendered.append(path)
            self._writer.write(frame.image)
            return
        path = self.output_dir / "rendered" / f"{Path(frame.name).stem}.jpg"
        path.parent.mkdir(exist_ok=True)
        if not cv2.imwrite(str(path), frame.image):
            raise HumanposeError(f"cannot write {path}")
        self.rendered.append(path)

    def _write_coco_files(self) -> None:
        write_results(self._results, self.results_file)
        category = {**PERSON_CATEGORY, "keypoints": list(self.keypoint_set.names),
                    "skeleton": [list(s) for s in self.keypoint_set.skeleton]}
        with open(self.output_dir / "images.json", "w") as f:
            json.dump({"images": self._images, "annotations": [], "categories": [category]},
                      f)

    def close(self) -> None:
        """Close the video, the CSV and the JSON Lines file, write the COCO files (once)."""
        self._closing.close()


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
                  tracker: PoseTracker | None = None) -> RunSummary:
    """Run ``estimator`` on every frame of ``source``, writing what :class:`RunOutputs`
    describes. On Ctrl-C, SIGTERM (raised as :class:`Terminated` for the run) or an error,
    the outputs still hold every frame done, ``summary`` says what was done (pass one in to
    read it after such a stop), and the exception goes on. ``q``/Esc in the ``show`` window
    ends the run the same way, without an exception.

    For video, webcams and streams a :class:`PoseTracker` (``tracker``, else one made with
    ``detect_every`` and ``track_confidence``: the key-point confidence it counts) places
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
                     track_confidence, track=track, smoother=smoother, tracker=tracker)
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
