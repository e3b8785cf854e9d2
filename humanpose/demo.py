"""``humanpose demo``: the whole job on built-in synthetic data, on a CPU, in minutes.

Generate the synthetic COCO-format set (if missing), train a small LPN on it, test it,
print its AP and draw its predictions on some validation images.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from humanpose.config import get_cfg

__all__ = ["DEMO_CONFIG", "DemoResult", "run_demo"]

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo_lpn_synthetic.yaml"


@dataclass
class DemoResult:
    ap: float
    output_dir: Path
    drawings: list[Path]
    seconds: float


def run_demo(workdir: str | Path = "humanpose-demo", num_train: int = 600, num_val: int = 100,
             opts: Sequence[str] = (), num_drawings: int = 8, seed: int = 0) -> DemoResult:
    """Run the demo in ``workdir`` (data, outputs and drawings all go there)."""
    from humanpose.data.synthetic import write_coco_set
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
    base = ["DATASET.ROOT", str(data), "OUTPUT_DIR", str(workdir / "output"),
            "LOG_DIR", str(workdir / "log")]
    cfg = get_cfg(DEMO_CONFIG, [*base, *opts])
    result = train(cfg, DEMO_CONFIG)
    best = result.output_dir / "model_best.pth"
    test_cfg = get_cfg(DEMO_CONFIG, [*base, *opts, "TEST.MODEL_FILE", str(best)])
    tested = run_test(test_cfg, DEMO_CONFIG)
    results_file = tested.output_dir / "results" / \
        f"keypoints_{test_cfg.DATASET.TEST_SET}_results_0.json"
    image_ids = [img["id"] for img in json.loads(val_ann.read_text())["images"][:num_drawings]]
    drawings = draw_results(results_file, data / "images" / "val2017", workdir / "predictions",
                            annotations=val_ann, image_ids=image_ids)
    return DemoResult(tested.value, tested.output_dir, drawings, time.perf_counter() - start)
