"""``humanpose demo``: the whole job on built-in synthetic data, on a CPU, in minutes.

Generate the synthetic COCO-format set (if missing), train a small LPN on it, test it,
print its AP and draw its predictions on some validation images. Then the top-down
pipeline with a real detector, as COCO results are reported: train the person detector on
a bigger training split of its own (``detector_train2017``), test it on the same validation
images (box AP; its results file is a ``TEST.COCO_BBOX_FILE``) and test the pose model
again on the detected boxes (``TEST.USE_GT_BBOX False``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from humanpose.config import get_cfg

__all__ = ["DEMO_CONFIG", "DETECTED_BOX_MIN_SCORE", "DETECTOR_CONFIG", "DETECTOR_DEMO_OPTS",
           "DETECTOR_PREFIX", "DETECTOR_SCHEDULE", "DETECTOR_TRAIN_SET", "DemoResult",
           "run_demo", "split_opts"]

CONFIGS = Path(__file__).resolve().parent / "configs"
DEMO_CONFIG = CONFIGS / "demo_lpn_synthetic.yaml"
DETECTOR_CONFIG = CONFIGS / "demo_detector_synthetic.yaml"
# Overrides whose key starts with this go to the detector's config (prefix removed).
DETECTOR_PREFIX = "DETECTOR."
# TEST.IMAGE_THRE of the pose test on detected boxes: the detector keeps up to 100 boxes
# per image down to a score of 0.01 for box AP; a pose for each would cost minutes and
# hardly change the AP (low-scored people rank last).
DETECTED_BOX_MIN_SCORE = 0.1
# The detector learns from its own, bigger training split (drawn from another seed) in the
# demo's data root: boxes need more varied scenes than joints do. 4000 images for 10 epochs
# gave box AP 0.80, the 600 pose images for 60 epochs (as long) 0.77, for the demo's former
# 20 epochs 0.67 (benchmarks/RESULTS.md).
DETECTOR_TRAIN_SET = "detector_train2017"
DETECTOR_TRAIN_SEED_OFFSET = 1
# Its schedule (the detector benchmark's too): 320x256 is the 320x240 images letterboxed
# with 16 rows of padding (a fifth less compute than the config's 320x320 canvas, the same
# box AP at either input).
DETECTOR_SCHEDULE = ["TRAIN.END_EPOCH", "10", "MODEL.IMAGE_SIZE", "[320, 256]",
                     "MODEL.HEATMAP_SIZE", "[80, 64]"]
# In the demo, before the user's DETECTOR.* overrides.
DETECTOR_DEMO_OPTS = ["DATASET.TRAIN_SET", DETECTOR_TRAIN_SET, *DETECTOR_SCHEDULE]


@dataclass
class DemoResult:
    """``ap``: pose AP with ground-truth boxes; ``box_ap`` and ``detected_ap`` (pose AP
    with the detector's boxes) are None when the detector was skipped."""

    ap: float
    output_dir: Path
    drawings: list[Path]
    seconds: float
    box_ap: float | None = None
    detected_ap: float | None = None
    detector_dir: Path | None = None
    detected_dir: Path | None = None


def split_opts(opts: Sequence[str]) -> tuple[list[str], list[str]]:
    """``KEY VALUE`` overrides for the pose config, and those for the detector's config
    (keys written ``DETECTOR.KEY``)."""
    items = list(opts)
    pose: list[str] = []
    detector: list[str] = []
    for key, value in zip(items[0::2], items[1::2]):
        if key.startswith(DETECTOR_PREFIX):
            detector += [key[len(DETECTOR_PREFIX):], value]
        else:
            pose += [key, value]
    if len(items) % 2:
        pose.append(items[-1])  # a key without a value: the config names it
    return pose, detector


def _weights(output_dir: Path) -> Path:
    """The best validated weights of a run, else its last (validation switched off)."""
    best = output_dir / "model_best.pth"
    return best if best.is_file() else output_dir / "final_state.pth"


def _boxes_kept(path: Path, min_score: float) -> int:
    return sum(1 for r in json.loads(path.read_text())
               if r.get("category_id", 1) == 1 and r.get("score", 0.0) >= min_score)


def run_demo(workdir: str | Path = "humanpose-demo", num_train: int = 600, num_val: int = 100,
             opts: Sequence[str] = (), num_drawings: int = 8, seed: int = 0,
             detector: bool = True, num_detector_train: int = 4000) -> DemoResult:
    """Run the demo in ``workdir`` (data, outputs and drawings all go there).

    ``opts`` override the pose config; those written ``DETECTOR.KEY VALUE`` override the
    detector's. ``detector=False`` skips the detector and the test on its boxes; the detector
    trains on ``num_detector_train`` images of its own (validated on the pose model's).
    """
    from humanpose.data.synthetic import write_coco_set, write_coco_split
    from humanpose.engine.evaluate import run_test
    from humanpose.engine.train import train
    from humanpose.vis import draw_results

    start = time.perf_counter()
    workdir = Path(workdir)
    data = workdir / "data"
    val_ann = data / "annotations" / "person_keypoints_val2017.json"
    if not val_ann.is_file():
        print(f"=> generating the synthetic set in {data} ({num_train} train, {num_val} val "
              "images)")
        write_coco_set(str(data), num_train=num_train, num_val=num_val, seed=seed)
    pose_opts, detector_opts = split_opts(opts)
    detector_opts = [*DETECTOR_DEMO_OPTS, *detector_opts]
    base = ["DATASET.ROOT", str(data), "OUTPUT_DIR", str(workdir / "output"),
            "LOG_DIR", str(workdir / "log")]
    cfg = get_cfg(DEMO_CONFIG, [*base, *pose_opts])
    det_cfg = get_cfg(DETECTOR_CONFIG, [*base, *detector_opts]) if detector else None
    if det_cfg is not None:
        train_set = det_cfg.DATASET.TRAIN_SET
        if not (data / "annotations" / f"person_keypoints_{train_set}.json").is_file():
            print(f"=> generating the detector's training split {train_set} in {data} "
                  f"({num_detector_train} images)")
            write_coco_split(str(data), train_set, num_detector_train,
                             seed=seed + DETECTOR_TRAIN_SEED_OFFSET)
    result = train(cfg, DEMO_CONFIG)
    pose_weights = _weights(result.output_dir)
    test_cfg = get_cfg(DEMO_CONFIG, [*base, *pose_opts, "TEST.MODEL_FILE", str(pose_weights)])
    tested = run_test(test_cfg, DEMO_CONFIG)
    results_file = tested.output_dir / "results" / \
        f"keypoints_{test_cfg.DATASET.TEST_SET}_results_0.json"
    image_ids = [img["id"] for img in json.loads(val_ann.read_text())["images"][:num_drawings]]
    drawings = draw_results(results_file, data / "images" / "val2017", workdir / "predictions",
                            annotations=val_ann, image_ids=image_ids)
    demo = DemoResult(tested.value, tested.output_dir, drawings, 0.0)
    if det_cfg is not None:
        _detector_part(demo, det_cfg, base, detector_opts, pose_opts, pose_weights,
                       Path(cfg.OUTPUT_DIR))
    demo.seconds = time.perf_counter() - start
    return demo


def _detector_part(demo: DemoResult, det_cfg, base: list[str], detector_opts: list[str],
                   pose_opts: list[str], pose_weights: Path, output_root: Path) -> None:
    """Train and test the detector, then test the pose model on its boxes."""
    from humanpose.detection.evaluate import results_path
    from humanpose.engine.evaluate import run_test
    from humanpose.engine.train import train

    print(f"=> training the person detector ({DETECTOR_CONFIG.name})")
    trained = train(det_cfg, DETECTOR_CONFIG)
    det_test_cfg = get_cfg(DETECTOR_CONFIG, [*base, *detector_opts, "TEST.MODEL_FILE",
                                             str(_weights(trained.output_dir))])
    det_tested = run_test(det_test_cfg, DETECTOR_CONFIG)
    demo.box_ap, demo.detector_dir = det_tested.value, det_tested.output_dir
    boxes = results_path(det_test_cfg, det_tested.output_dir)
    # Its own OUTPUT_DIR: the results of the test on ground-truth boxes stay as they are.
    detected_cfg = get_cfg(DEMO_CONFIG, [
        *base, "TEST.IMAGE_THRE", str(DETECTED_BOX_MIN_SCORE), *pose_opts,
        "TEST.MODEL_FILE", str(pose_weights), "TEST.USE_GT_BBOX", "False",
        "TEST.COCO_BBOX_FILE", str(boxes), "OUTPUT_DIR", str(output_root / "detected_boxes")])
    if _boxes_kept(boxes, detected_cfg.TEST.IMAGE_THRE) == 0:
        print(f"=> no detected box scores {detected_cfg.TEST.IMAGE_THRE} or more "
              f"(TEST.IMAGE_THRE) in {boxes}: pose AP with detected boxes is 0")
        demo.detected_ap = 0.0
        return
    print(f"=> testing the pose model on the detected boxes ({boxes})")
    detected = run_test(detected_cfg, DEMO_CONFIG)
    demo.detected_ap, demo.detected_dir = detected.value, detected.output_dir
