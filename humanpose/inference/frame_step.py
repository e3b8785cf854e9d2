"""One frame's work in a run over a source: its image id, its person boxes (the detector,
a detections file, or the tracker's boxes in between) and the key points of each person."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from humanpose.errors import HumanposeError
from humanpose.evaluation.nms import oks_sigmas
from humanpose.inference.detector import (
    DetectionsFile,
    PersonDetector,
    coco_image_ids,
)
from humanpose.inference.follow import follow_one_stage
from humanpose.inference.smoothing import KeypointSmoother
from humanpose.inference.sources import Frame
from humanpose.inference.tracking import PoseTracker, follow_people, smooth_people
from humanpose.runtime.results import Person
from humanpose.runtime.topdown import TopDown

__all__ = ["FrameResult", "FrameStep"]


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
    :class:`KeypointSmoother` for the followed people's key points; ``tracker_settings``:
    :class:`PoseTracker` keyword arguments (``TRACK.*``, :func:`humanpose.config.tracker_settings`).
    """

    def __init__(self, estimator: TopDown, is_video: bool,
                 boxes_file: str | os.PathLike | None = None,
                 annotations: str | os.PathLike | None = None, detect_every: int = 0,
                 track_confidence: float = 0.2, track: bool = False,
                 smoother: KeypointSmoother | None = None,
                 tracker: PoseTracker | None = None, fps: float = 25.0,
                 tracker_settings: dict | None = None):
        names = coco_image_ids(annotations) if annotations else None
        self.one_stage = bool(getattr(estimator, "one_stage", False))
        if self.one_stage and boxes_file:
            raise HumanposeError(f"{type(estimator).__name__} is a one-stage model: it finds "
                                 f"the people itself and takes no boxes file ({boxes_file})")
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
            settings = {"keypoint_threshold": track_confidence, **(tracker_settings or {})}
            self.tracker = tracker or PoseTracker(oks_sigmas(estimator.keypoint_set),
                                                  detect_every=detect_every, fps=fps,
                                                  **settings)
        self.frames_file = dets if is_video else None
        self.image_id_of = _Ids(names, dets, str(annotations) if annotations else None)

    def __call__(self, frame: Frame) -> FrameResult:
        clock = time.perf_counter
        t0 = clock()
        image_id = self.image_id_of(frame, self.is_video)

        def detect():
            return self.detector(frame.image, image_id=image_id, file_name=frame.name)

        if self.one_stage:
            return self._one_stage(frame, image_id, t0)
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
        self._finish(people, frame, times)
        return FrameResult(frame, image_id, people, times)

    def _one_stage(self, frame: Frame, image_id: int, t0: float) -> FrameResult:
        """A one-stage model's frame: the people of the whole image, every frame (its boxes
        are detections), then the tracker."""
        people = self.estimator.people(frame.image)
        t1 = time.perf_counter()
        times = {"detection": 0.0, "pose": t1 - t0, "tracking": 0.0}
        if self.tracker is not None:
            follow_one_stage(self.tracker, people, frame.image, frame.index)
            times["tracking"] = time.perf_counter() - t1
            self._finish(people, frame, times)
        return FrameResult(frame, image_id, people, times)

    def _finish(self, people: list[Person], frame: Frame, times: dict[str, float]) -> None:
        """Smoothing, and the ids dropped when not asked for, counted as tracking time."""
        clock = time.perf_counter
        t2 = clock()
        if self.smoother is not None:
            smooth_people(self.smoother, people, frame.time)
        if not self.track:
            for person in people:
                person.track_id = None
        times["tracking"] += clock() - t2
