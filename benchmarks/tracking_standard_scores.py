"""IDF1, MOTA and ID switches by motmetrics, HOTA by trackeval: the field's own scoring of
the tracks bench_tracking.py made (ours and the peers'), run in the peers' venv (see
tracking_peers.py; neither package is a dependency of humanpose).

    /tmp/peers/bin/python benchmarks/tracking_standard_scores.py --input tracks.json \\
        --output scores.json

Input ``.json``: ``{"truth": [[ids, boxes] per frame], "trackers": {name: [[ids, boxes] per
frame]}}``, boxes [x, y, w, h] in pixels. A hypothesis matches a truth box at IoU >= 0.5
(motmetrics' distance 1 - IoU, pairs above 0.5 unmatchable; trackeval's HOTA averages its
own IoU thresholds 0.05-0.95). motmetrics 1.4.0's ``iou_matrix`` calls NumPy's removed
``asfarray``, so the IoU matrices come from trackeval's box IoU for both.
Output ``.json``: ``{name: {"idf1", "mota", "switches", "hota"}}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MATCH_IOU = 0.5


def _ious(truth: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    from trackeval.datasets._base_dataset import _BaseDataset

    if not len(truth) or not len(hyp):
        return np.zeros((len(truth), len(hyp)))
    return _BaseDataset._calculate_box_ious(truth, hyp, box_format="xywh")


def _frames(entries: list) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(ids, np.int64).reshape(-1), np.asarray(boxes, np.float64).reshape(-1, 4))
            for ids, boxes in entries]


def motmetrics_scores(truth: list, hyp: list) -> dict[str, float]:
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for (t_ids, t_boxes), (h_ids, h_boxes) in zip(truth, hyp, strict=True):
        distance = 1.0 - _ious(t_boxes, h_boxes)
        distance[distance > 1.0 - MATCH_IOU] = np.nan
        acc.update(t_ids.tolist(), h_ids.tolist(), distance)
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "mota", "num_switches"],
                                          name="run")
    return {"idf1": float(summary["idf1"].iloc[0]), "mota": float(summary["mota"].iloc[0]),
            "switches": int(summary["num_switches"].iloc[0])}


def hota(truth: list, hyp: list) -> float:
    from trackeval.metrics import HOTA

    def dense(ids_per_frame):
        index = {i: n for n, i in enumerate(sorted({int(i) for ids in ids_per_frame
                                                    for i in ids}))}
        return [np.array([index[int(i)] for i in ids], np.int64) for ids in ids_per_frame], \
            len(index)

    gt_ids, num_gt = dense([t[0] for t in truth])
    tr_ids, num_tr = dense([h[0] for h in hyp])
    data = {"num_timesteps": len(truth), "num_gt_ids": num_gt, "num_tracker_ids": num_tr,
            "num_gt_dets": sum(len(i) for i in gt_ids),
            "num_tracker_dets": sum(len(i) for i in tr_ids),
            "gt_ids": gt_ids, "tracker_ids": tr_ids,
            "similarity_scores": [_ious(t[1], h[1]) for t, h in zip(truth, hyp)]}
    return float(np.mean(HOTA().eval_sequence(data)["HOTA"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    data = json.loads(Path(args.input).read_text())
    truth = _frames(data["truth"])
    out = {}
    for name, entries in data["trackers"].items():
        hyp = _frames(entries)
        out[name] = {**motmetrics_scores(truth, hyp), "hota": hota(truth, hyp)}
    Path(args.output).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
