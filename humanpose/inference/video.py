"""Streams of frames: carry people from frame to frame, and run over a whole source.

People move little between frames, so the box around a person's key points in one frame is
a good crop for the next, and the detector (the costly part of top-down inference) needs to
run only now and then: every ``detect_every`` frames, and whenever nobody is being followed.
:func:`run_on_source` is ``humanpose infer``: frames in, COCO results and drawings out, with
the time of each stage.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
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

__all__ = ["STAGES", "PreviousFrameBoxes", "RunSummary", "keypoint_boxes", "run_on_source"]


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
@dataclass
class RunSummary:
    """What a run over a source did, with its time per stage (seconds, summed)."""

    output_dir: Path
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    results_file: Path | None = None
    rendered: list[Path] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The closing line: frames/s, and where each frame's time went."""
        per = {k: v * 1000 / max(self.frames, 1) for k, v in self.stages.items()}
        parts = ", ".join(f"{k} {per[k]:.1f} ms" for k in STAGES)
        return (f"done: {self.frames} frames, {self.people} people, {self.fps:.1f} frames/s "
                f"({parts} per frame) -> {self.output_dir}")


STAGES = ("reading", "detection", "pose", "drawing", "writing")


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


def _video_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise HumanposeError(f"cannot write video {path} (OpenCV has no mp4v encoder here?)")
    return writer


def run_on_source(estimator: PoseEstimator, source: FrameSource, output_dir: str | os.PathLike,
                  boxes_file: str | os.PathLike | None = None,
                  annotations: str | os.PathLike | None = None, render: bool = True,
                  detect_every: int = 0, max_frames: int | None = None,
                  threshold: float = 0.2, track_confidence: float = 0.2,
                  progress: bool = True) -> RunSummary:
    """Run ``estimator`` on every frame of ``source``; write ``results.json`` (COCO results
    format), ``images.json`` (a COCO file listing the images, so that ``results.json`` loads
    against it) and, with ``render``, the frames with skeletons drawn (``rendered/`` for
    images, ``<name>_pose.mp4`` for a video or webcam).

    Boxes come from ``boxes_file`` (COCO detections) when given, else from the estimator's
    ``detector``, called here (not inside the estimator) so that its time is the
    ``detection`` stage of the closing line and the estimator's the ``pose`` stage. For
    video, the previous frame's people place the crops between detections (every
    ``detect_every`` frames, or when nobody is followed); a person is followed while three
    of its key points reach ``track_confidence``.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = coco_image_ids(annotations) if annotations else None
    if boxes_file:
        dets: DetectionsFile | None = DetectionsFile(boxes_file, file_ids=names)
        detector: PersonDetector = dets
    else:
        detector = estimator.detector
        # A detections file given as the estimator's detector also names the images.
        dets = detector if isinstance(detector, DetectionsFile) else None
    is_video = source.kind in ("video", "webcam")
    tracker = (PreviousFrameBoxes(detector, detect_every, min_confidence=track_confidence)
               if is_video else None)
    image_id_of = _Ids(names, dets, str(annotations) if annotations else None)
    summary = RunSummary(out)
    results: list[dict] = []
    images: list[dict] = []
    writer = None
    style = style_for(estimator.keypoint_set)
    clock = time.perf_counter
    total = len(source) or None
    if max_frames and total:
        total = min(total, max_frames)
    bar = tqdm(total=total, unit="frame", desc="infer", disable=not progress,
               dynamic_ncols=True)
    start = clock()
    frames = iter(source)
    try:
        while max_frames is None or summary.frames < max_frames:
            t0 = clock()
            frame = next(frames, None)
            if frame is None:
                break
            t1 = clock()
            image_id = image_id_of(frame, is_video)
            if tracker is not None:
                found = tracker.boxes(frame.image, image_id=image_id, file_name=frame.name)
            else:
                found = detector(frame.image, image_id=image_id, file_name=frame.name)
            t2 = clock()
            people = estimator(frame.image, found.boxes, found.scores)
            if tracker is not None:
                tracker.update(people)
            t3 = clock()
            if render:
                draw_people(frame.image, people, threshold=threshold, style=style)
            t4 = clock()
            if render and is_video:
                if writer is None:
                    path = out / f"{getattr(source, 'stem', 'video')}_pose.mp4"
                    h, w = frame.image.shape[:2]
                    writer = _video_writer(path, source.fps, (w, h))
                    summary.rendered.append(path)
                writer.write(frame.image)
            elif render:
                path = out / "rendered" / f"{Path(frame.name).stem}.jpg"
                path.parent.mkdir(exist_ok=True)
                if not cv2.imwrite(str(path), frame.image):
                    raise HumanposeError(f"cannot write {path}")
                summary.rendered.append(path)
            t5 = clock()
            h, w = frame.image.shape[:2]
            images.append({"id": image_id, "file_name": frame.name, "width": w, "height": h})
            results += [p.to_coco(image_id) for p in people]
            for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                summary.stages[stage] += dt
            summary.frames += 1
            summary.people += len(people)
            bar.update(1)
    finally:
        bar.close()
        if writer is not None:
            writer.release()
        source.close()
    summary.seconds = clock() - start
    summary.results_file = out / "results.json"
    write_results(results, summary.results_file)
    category = {"id": 1, "name": "person", "supercategory": "person",
                "keypoints": list(estimator.keypoint_set.names),
                "skeleton": [list(s) for s in estimator.keypoint_set.skeleton]}
    with open(out / "images.json", "w") as f:
        json.dump({"images": images, "annotations": [], "categories": [category]}, f)
    return summary
