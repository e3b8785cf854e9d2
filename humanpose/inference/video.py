"""Streams of frames: carry people from frame to frame, and run over a whole source.

People move little between frames, so the box around a person's key points in one frame is
a good crop for the next, and the detector (the costly part of top-down inference) needs to
run only now and then: every ``detect_every`` frames, and whenever nobody is being followed.

:func:`run_on_source` is ``humanpose infer``: frames in, COCO results and drawings out, with
the time of each stage. It is three parts: the source's frames, a :class:`FrameStep` that
turns one frame into people, and :class:`RunOutputs`, which writes each frame as it comes
(``results.jsonl``, drawings, the video) and whose ``close()`` (always called, also on
Ctrl-C, SIGTERM or an error) writes the COCO files for every frame done. A run that stops
early loses nothing it finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from humanpose.errors import HumanposeError
from humanpose.evaluation.coco import write_results
from humanpose.inference.detector import (
    Detections,
    DetectionsFile,
    PersonDetector,
    coco_image_ids,
)
from humanpose.inference.estimator import Person, PoseEstimator
from humanpose.inference.sources import Frame, FrameSource
from humanpose.vis import draw_people, style_for

__all__ = ["STAGES", "FrameResult", "FrameStep", "PreviousFrameBoxes", "RunOutputs",
           "RunSummary", "Terminated", "frame_line", "keypoint_boxes", "run_on_source",
           "sigterm_raises"]


def keypoint_boxes(keypoints: np.ndarray, min_confidence: float = 0.2, min_points: int = 3,
                   expand: float = 1.15) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x, y, w, h) around the confident key points of each person ``(N, K, 3)``,
    grown by ``expand`` about their centre (key points lie inside a person, a detector's box
    goes around them); and a mask of the people with at least ``min_points`` such points."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if len(keypoints) == 0:
        return np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=bool)
    confident = keypoints[..., 2] >= min_confidence
    valid = confident.sum(axis=1) >= min_points
    # People without confident points get a 0-size box at 0 (masked out by ``valid``).
    xy = np.where(confident[..., None], keypoints[..., :2], np.nan)
    xy[~confident.any(axis=1)] = 0.0
    x0, y0 = np.nanmin(xy[..., 0], axis=1), np.nanmin(xy[..., 1], axis=1)
    x1, y1 = np.nanmax(xy[..., 0], axis=1), np.nanmax(xy[..., 1], axis=1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = (x1 - x0) * expand, (y1 - y0) * expand
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    boxes[~valid] = 0
    return boxes.astype(np.float32), valid


class PreviousFrameBoxes:
    """Boxes for each frame: the detector's on frames where it runs, otherwise boxes around
    the previous frame's people.

    ``detect_every``: run the detector every that many frames (0: only when nobody is being
    followed). A person is followed while at least ``min_points`` of its key points reach
    ``min_confidence`` and its person score reaches ``min_score``. Call :meth:`boxes` for a
    frame, run the pose model, then :meth:`update` with the people found.
    """

    def __init__(self, detector: PersonDetector, detect_every: int = 0,
                 min_confidence: float = 0.2, min_points: int = 3, min_score: float = 0.0,
                 expand: float = 1.15):
        self.detector = detector
        self.detect_every = detect_every
        self.min_confidence = min_confidence
        self.min_points = min_points
        self.min_score = min_score
        self.expand = expand
        self._tracked: Detections = Detections.empty()
        self._since_detection = 0
        self.detected_last = False

    def boxes(self, image: np.ndarray, image_id: int | None = None,
              file_name: str | None = None) -> Detections:
        """This frame's person boxes."""
        due = self.detect_every > 0 and self._since_detection >= self.detect_every
        self.detected_last = len(self._tracked) == 0 or due
        if self.detected_last:
            self._since_detection = 1  # frames since the last detection, this one included
            return self.detector(image, image_id=image_id, file_name=file_name)
        self._since_detection += 1
        h, w = image.shape[:2]
        boxes = _clip(self._tracked.boxes, w, h)
        keep = (boxes[:, 2] >= 2) & (boxes[:, 3] >= 2)  # people who left the picture
        return Detections(boxes[keep], self._tracked.scores[keep])

    def update(self, people: Sequence[Person]) -> None:
        """Remember this frame's people for the next frame."""
        if not people:
            self._tracked = Detections.empty()
            return
        keypoints = np.stack([p.keypoints for p in people])
        boxes, valid = keypoint_boxes(keypoints, self.min_confidence, self.min_points,
                                      self.expand)
        scores = np.array([p.box_score for p in people], dtype=np.float32)
        valid &= np.array([p.score >= self.min_score for p in people])
        self._tracked = Detections(boxes[valid], scores[valid])

    def reset(self) -> None:
        """Forget the people followed (e.g. at a scene cut)."""
        self._tracked = Detections.empty()


def _clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes cut to the image; the crop's padding still reaches outside where needed."""
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


# ----------------------------------------------------------------------------- the run
STAGES = ("reading", "detection", "pose", "drawing", "writing")
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

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def add(self, result: FrameResult) -> None:
        self.frames += 1
        self.people += len(result.people)
        for stage, seconds in result.times.items():
            self.stages[stage] += seconds

    def line(self) -> str:
        """The closing line: frames/s, and where each frame's time went."""
        per = {k: v * 1000 / max(self.frames, 1) for k, v in self.stages.items()}
        parts = ", ".join(f"{k} {per[k]:.1f} ms" for k in STAGES)
        state = "done" if self.stopped is None else f"stopped ({self.stopped})"
        return (f"{state}: {self.frames} frames, {self.people} people, {self.fps:.1f} frames/s "
                f"({parts} per frame) -> {self.output_dir}")

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

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    """One frame's outcome: its image id, the people found and the seconds per stage."""

    frame: Frame
    image_id: int
    people: list[Person]
    times: dict[str, float] = field(default_factory=dict)


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
    """One frame's work: its image id, its person boxes (detector, detections file, or the
    previous frame's people in a video) and the key points of each person.

    Boxes come from ``boxes_file`` (COCO detections) when given, else from the estimator's
    ``detector``, called here (not inside the estimator) so that its time is the
    ``detection`` stage and the estimator's the ``pose`` stage.
    """

    def __init__(self, estimator: PoseEstimator, is_video: bool,
                 boxes_file: str | os.PathLike | None = None,
                 annotations: str | os.PathLike | None = None, detect_every: int = 0,
                 track_confidence: float = 0.2):
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
        self.tracker = (PreviousFrameBoxes(detector, detect_every,
                                           min_confidence=track_confidence)
                        if is_video else None)
        self.image_id_of = _Ids(names, dets, str(annotations) if annotations else None)

    def __call__(self, frame: Frame) -> FrameResult:
        clock = time.perf_counter
        t0 = clock()
        image_id = self.image_id_of(frame, self.is_video)
        if self.tracker is not None:
            found = self.tracker.boxes(frame.image, image_id=image_id, file_name=frame.name)
        else:
            found = self.detector(frame.image, image_id=image_id, file_name=frame.name)
        t1 = clock()
        people = self.estimator(frame.image, found.boxes, found.scores)
        if self.tracker is not None:
            self.tracker.update(people)
        t2 = clock()
        return FrameResult(frame, image_id, list(people),
                           {"detection": t1 - t0, "pose": t2 - t1})


def _video_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise HumanposeError(f"cannot write video {path} (OpenCV has no mp4v encoder here?)")
    return writer


def frame_line(result: FrameResult) -> dict:
    """The JSON Lines record of a frame: where it is in the source, and its people."""
    frame = result.frame
    line: dict = {"frame": frame.index, "image_id": int(result.image_id)}
    if frame.time is not None:
        line["time"] = frame.time
    else:
        line["file_name"] = frame.name
    line["people"] = [{"box": [round(float(v), 2) for v in p.box],
                       "box_score": round(float(p.box_score), 6),
                       "score": round(float(p.score), 6),
                       "keypoints": [[round(float(v), 3) for v in point]
                                     for point in p.keypoints]}
                      for p in result.people]
    return line


class RunOutputs:
    """Everything a run writes, owned in one place.

    Each frame is written when it is done: a line of ``results.jsonl`` (flushed), its drawing
    (``rendered/<stem>.jpg``) or a frame of ``<stem>_pose.mp4``. :meth:`close` releases the
    video (so that the file is playable) and writes ``results.json`` (COCO results format)
    and ``images.json`` (a COCO file listing the images, so that ``results.json`` loads
    against it) for every frame written; call it however the run ends.
    """

    def __init__(self, output_dir: Path, estimator: PoseEstimator, render: bool = True,
                 threshold: float = 0.2, video: tuple[str, float] | None = None):
        self.output_dir = output_dir
        self.render = render
        self.threshold = threshold
        self.video = video  # (stem, fps) of a video or webcam source
        self.keypoint_set = estimator.keypoint_set
        self.style = style_for(estimator.keypoint_set)
        self.results_file = output_dir / RESULTS_FILE
        self.lines_file = output_dir / LINES_FILE
        self.rendered: list[Path] = []
        self._results: list[dict] = []
        self._images: list[dict] = []
        self._writer: cv2.VideoWriter | None = None
        self._closing = contextlib.ExitStack()  # undone last in, first out
        self._closing.callback(self._write_coco_files)
        self._lines = open(self.lines_file, "w")  # noqa: SIM115 - closed by close()
        self._closing.callback(self._lines.close)

    def add(self, result: FrameResult) -> None:
        """Write one frame: its drawing, then (together, never one without the other) its
        JSON line and its COCO records."""
        clock = time.perf_counter
        t0 = clock()
        image = result.frame.image
        if self.render:
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
            self._images.append({"id": result.image_id, "file_name": result.frame.name,
                                 "width": w, "height": h})
            self._results += records
        result.times.update(drawing=t1 - t0, writing=clock() - t1)

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
        """Close the video and the JSON Lines file, write the COCO files (once)."""
        self._closing.close()


def _stop_reason(err: BaseException) -> str:
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if isinstance(err, Terminated):
        return "terminated"
    return f"error: {type(err).__name__}"


def run_on_source(estimator: PoseEstimator, source: FrameSource, output_dir: str | os.PathLike,
                  boxes_file: str | os.PathLike | None = None,
                  annotations: str | os.PathLike | None = None, render: bool = True,
                  detect_every: int = 0, max_frames: int | None = None,
                  threshold: float = 0.2, track_confidence: float = 0.2,
                  progress: bool = True, summary: RunSummary | None = None) -> RunSummary:
    """Run ``estimator`` on every frame of ``source``, writing what :class:`RunOutputs`
    describes. On Ctrl-C, SIGTERM (raised as :class:`Terminated` for the run) or an error,
    the outputs still hold every frame done, ``summary`` says what was done (pass one in to
    read it after such a stop), and the exception goes on.

    For video, the previous frame's people place the crops between detections (every
    ``detect_every`` frames, or when nobody is followed); a person is followed while three
    of its key points reach ``track_confidence``. Unreadable files of a folder are skipped
    and listed in ``summary.skipped``.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summary if summary is not None else RunSummary(out)
    is_video = source.kind in ("video", "webcam")
    step = FrameStep(estimator, is_video, boxes_file, annotations, detect_every,
                     track_confidence)
    video = (getattr(source, "stem", "video"), source.fps) if is_video else None
    total = len(source) or None
    if max_frames and total:
        total = min(total, max_frames)
    clock = time.perf_counter
    bar = tqdm(total=total, unit="frame", desc="infer", disable=not progress,
               dynamic_ncols=True)
    with sigterm_raises():
        outputs = RunOutputs(out, estimator, render, threshold, video)
        summary.results_file, summary.lines_file = outputs.results_file, outputs.lines_file
        summary.rendered = outputs.rendered
        start = clock()
        frames = iter(source)
        try:
            while max_frames is None or summary.frames < max_frames:
                t0 = clock()
                frame = next(frames, None)
                if frame is None:
                    break
                reading = clock() - t0
                result = step(frame)
                result.times["reading"] = reading
                outputs.add(result)
                summary.add(result)
                bar.update(1)
        except BaseException as err:
            summary.stopped = _stop_reason(err)
            raise
        finally:
            bar.close()
            summary.seconds = clock() - start
            summary.skipped = list(source.skipped)
            try:
                with _signals_held():  # a second Ctrl-C must not cut results.json short
                    outputs.close()
            finally:
                source.close()
    return summary
