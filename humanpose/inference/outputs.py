"""What a run over a source writes, and its summary: ``results.jsonl`` and the CSV frame by
frame, drawings or a ``_pose.mp4`` video, and at the end ``results.json`` (COCO results) and
``images.json``; :class:`RunSummary` counts frames, people and each stage's time."""

from __future__ import annotations

import contextlib
import csv
import json
import os
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

from humanpose.errors import HumanposeError
from humanpose.evaluation.coco import write_results
from humanpose.inference.frame_step import FrameResult
from humanpose.inference.sources import Frame
from humanpose.runtime.results import csv_header, csv_row
from humanpose.runtime.topdown import TopDown
from humanpose.vis import draw_people, style_for

__all__ = ["LINES_FILE", "RESULTS_FILE", "STAGES", "RunOutputs", "RunSummary", "frame_line"]


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
    first_frame_seconds: float = 0.0  # from the start to the first frame done (warm-up)
    first_stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @property
    def fps(self) -> float:
        """Frames per second after the first frame, whose time is mostly warm-up (the first
        call of a backend allocates and compiles); over every frame when there is one."""
        if self.frames > 1 and 0 < self.first_frame_seconds < self.seconds:
            return (self.frames - 1) / (self.seconds - self.first_frame_seconds)
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        self.people += len(result.people)
        # The first frame's stages (warm-up) are kept apart, as its time is in fps.
        stages = self.first_stages if self.frames == 1 else self.stages
        for stage, seconds in result.times.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
        self.latency += result.latency

    def per_frame_ms(self) -> dict[str, float]:
        """Milliseconds per frame in each stage, after the first frame when there are more."""
        stages, counted = ((self.stages, self.frames - 1) if self.frames > 1 else
                           (self.first_stages, self.frames))
        return {k: stages.get(k, 0.0) * 1000 / max(counted, 1) for k in STAGES}

    def line(self) -> str:
        """The closing line: frames/s and where each frame's time went (stages overlap when
        pipelined), both after the first frame when there are more, and the mean latency
        from a frame's reading to its writing."""
        per = self.per_frame_ms()
        parts = ", ".join(f"{k} {per[k]:.1f} ms" for k in STAGES)
        latency = self.latency * 1000 / max(self.frames, 1)
        state = "done" if self.stopped is None else f"stopped ({self.stopped})"
        mode = "pipelined" if self.pipelined else "serial"
        warmup = (f" after the first frame ({self.first_frame_seconds * 1000:.0f} ms, warm-up)"
                  if self.frames > 1 and self.first_frame_seconds else "")
        return (f"{state}: {self.frames} frames, {self.people} people, {self.fps:.1f} frames/s"
                f"{warmup} ({mode}; {parts} per frame; latency {latency:.1f} ms read to "
                f"written) -> {self.output_dir}")

    def skipped_lines(self) -> list[str]:
        """The unreadable files, for the closing output (empty when there were none)."""
        if not self.skipped:
            return []
        return [f"skipped {len(self.skipped)} unreadable file(s):",
                *(f"  {entry}" for entry in self.skipped)]


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
