"""The tracking field's peers (SORT, ByteTrack, OC-SORT, BoT-SORT) run on our detections.

Benchmark only: the peers are Roboflow's ``trackers`` package (2.6.1, on
``supervision.Detections``; supervision 0.31.2 was what it pulled in). It must never be a
dependency of humanpose: it requires opencv-python, which would replace the package's
opencv-python-headless, so it lives in its own venv that sees the main site-packages:

    python -m venv --system-site-packages /tmp/peers && \\
        /tmp/peers/bin/pip install trackers==2.6.1 motmetrics trackeval

(motmetrics 1.4.0 and trackeval 1.3.0 come along for scoring; torch is not touched.)
The main benchmark, in the main Python, writes its detections with :func:`write_input`
(NumPy and humanpose's box helpers, which the venv sees too) and runs this file as a subprocess:

    /tmp/peers/bin/python benchmarks/tracking_peers.py --input dets.npz --output peers.json

Each peer runs with ITS OWN defaults (only ``frame_rate`` is set to the video's fps), so the
comparison is against the package as its users get it. Of the four, only BoT-SORT uses
the image (camera-motion compensation by sparse optical flow; no appearance model); it gets
the rendered frame when one is given, else a black image of the frame size (CMC then finds
no features and leaves the tracks where they are).

Input ``.npz`` (written by :func:`write_input`):
    ``boxes_<i>``  (N_i, 4) float, x, y, w, h in pixels, for frame i = 0 .. num_frames-1
    ``scores_<i>`` (N_i,) float, detection confidences
    ``frame_<i>``  optional (H, W, 3) uint8 BGR image for BoT-SORT's CMC
    ``fps``, ``num_frames``, ``width``, ``height``  scalars
Output ``.json``: ``{peer: [[ids, boxes] for each frame]}`` with ids a list of ints and
boxes a list of [x, y, w, h], one entry per confirmed track the peer reports in that frame.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from humanpose.runtime.boxes import xywh_to_xyxy, xyxy_to_xywh

PEERS = ("sort", "bytetrack", "ocsort", "botsort")
TRACKERS_VERSION = "2.6.1"

# name -> class in ``trackers`` 2.6.1 (imported lazily: the main env has no ``trackers``).
_CLASSES = {
    "sort": "SORTTracker",
    "bytetrack": "ByteTrackTracker",
    "ocsort": "OCSORTTracker",
    "botsort": "BoTSORTTracker",
}
_NEEDS_FRAME = {"botsort"}


def run_peer(
    name: str,
    boxes: list[np.ndarray],
    scores: list[np.ndarray],
    fps: float,
    frames: list[np.ndarray] | None = None,
    size: tuple[int, int] = (640, 480),
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run one peer with its defaults; per frame, (track ids (M,) int64, boxes (M, 4) xywh).

    Only tracks with a valid id (``tracker_id >= 0``) are kept: the peers report immature
    tracks and unmatched detections as -1, which are not tracks yet. ``size`` is
    (width, height), used for the black stand-in frame when ``frames`` is None.
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown peer {name!r}; choose from {PEERS}")
    import supervision as sv
    import trackers

    tracker = getattr(trackers, _CLASSES[name])(frame_rate=float(fps))
    black = np.zeros((int(size[1]), int(size[0]), 3), np.uint8) if name in _NEEDS_FRAME else None
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for i, (frame_boxes, frame_scores) in enumerate(zip(boxes, scores, strict=True)):
        dets = sv.Detections(
            xyxy=xywh_to_xyxy(frame_boxes),
            confidence=np.asarray(frame_scores, dtype=np.float32).reshape(-1),
        )
        if name in _NEEDS_FRAME:
            image = frames[i] if frames is not None and frames[i] is not None else black
            result = tracker.update(dets, frame=image)
        else:
            result = tracker.update(dets)  # a frame here only draws a "frame unused" warning
        ids = np.asarray(result.tracker_id if result.tracker_id is not None else [], np.int64)
        keep = ids >= 0
        order = np.argsort(ids[keep], kind="stable")
        out.append((ids[keep][order], xyxy_to_xywh(result.xyxy[keep])[order]))
    return out


def write_input(
    path: str | Path,
    boxes: list[np.ndarray],
    scores: list[np.ndarray],
    fps: float,
    width: int,
    height: int,
    frames: list[np.ndarray] | None = None,
) -> None:
    """Write detections in the ``.npz`` format :func:`read_input` and ``main`` read."""
    if len(boxes) != len(scores):
        raise ValueError("boxes and scores need one entry per frame")
    arrays: dict[str, np.ndarray] = {
        "fps": np.float64(fps),
        "num_frames": np.int64(len(boxes)),
        "width": np.int64(width),
        "height": np.int64(height),
    }
    for i, (b, s) in enumerate(zip(boxes, scores)):
        arrays[f"boxes_{i}"] = np.asarray(b, np.float64).reshape(-1, 4)
        arrays[f"scores_{i}"] = np.asarray(s, np.float64).reshape(-1)
        if frames is not None:
            arrays[f"frame_{i}"] = np.asarray(frames[i], np.uint8)
    np.savez_compressed(path, **arrays)


def read_input(path: str | Path) -> dict:
    """Read :func:`write_input`'s file: boxes, scores, fps, size=(w, h), frames or None."""
    with np.load(path) as data:
        n = int(data["num_frames"])
        frames = [data[f"frame_{i}"] for i in range(n)] if n and "frame_0" in data else None
        return {
            "boxes": [data[f"boxes_{i}"].reshape(-1, 4) for i in range(n)],
            "scores": [data[f"scores_{i}"].reshape(-1) for i in range(n)],
            "fps": float(data["fps"]),
            "size": (int(data["width"]), int(data["height"])),
            "frames": frames,
        }


def run_all(inputs: dict) -> dict[str, list]:
    """Every peer over one input; the JSON-ready ``{peer: [[ids, boxes] per frame]}``."""
    results: dict[str, list] = {}
    for name in PEERS:
        tracks = run_peer(
            name, inputs["boxes"], inputs["scores"], inputs["fps"], inputs["frames"], inputs["size"]
        )
        results[name] = [[ids.tolist(), boxes.tolist()] for ids, boxes in tracks]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="detections .npz (see module docstring)")
    parser.add_argument("--output", required=True, help="tracks .json, one key per peer")
    args = parser.parse_args(argv)
    results = run_all(read_input(args.input))
    Path(args.output).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
