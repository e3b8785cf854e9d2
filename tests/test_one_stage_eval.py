"""``humanpose test`` for one-stage RTMO: whole images of a COCO key-point file, the people
the network finds, COCO key-point AP. A stand-in network that returns the ground truth
(mapped into its input by the pre-processing's geometry) scores AP 1; shifting its joints
lowers it; the command runs the real network end to end; training stops with a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import humanpose
from humanpose.cli import main
from humanpose.data.synthetic import write_coco_set
from humanpose.engine.distributed import Dist
from humanpose.runtime.rtmo import preprocess
from tests.test_rtmo import rtmo_cfg

SIDE = 64


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    write_coco_set(str(root), num_train=2, num_val=4, seed=1)
    return root


def tiny_cfg(root, *opts):
    cfg = rtmo_cfg("s", side=SIDE, topk=20)
    cfg.merge_from_list(["DATASET.ROOT", str(root), *opts])
    return cfg


class TruthNetwork(torch.nn.Module):
    """Returns, call by call, the rows of the data set's images in order (one rank walks
    them in order): what a perfect RTMO would give for each."""

    def __init__(self, rows: list[np.ndarray]):
        super().__init__()
        self.rows, self.calls = rows, 0

    def forward(self, x):
        rows = self.rows[self.calls]
        self.calls += 1
        return torch.from_numpy(rows[None])


def truth_rows(dataset, index, size, shift=0.0) -> np.ndarray:
    image, image_id = dataset[index]
    _, meta = preprocess(image, size)
    center, scale = np.array(meta.center), np.array(meta.scale)

    def to_input(xy):
        return (np.asarray(xy, np.float32) - center + scale / 2) / scale * np.array(size)

    rows = []
    for ann in dataset.coco.imgToAnns[image_id]:
        kpts = np.array(ann["keypoints"], np.float32).reshape(-1, 3)
        if not (kpts[:, 2] > 0).any():
            continue
        x, y, w, h = ann["bbox"]
        box = to_input([[x, y], [x + w, y + h]]).reshape(-1)
        joints = to_input(kpts[:, :2] + shift)
        rows.append(np.concatenate([box, [0.9], joints.reshape(-1), np.ones(len(kpts))]))
    rows += [np.zeros(5 + 3 * 17)] * (20 - len(rows))  # score 0: below the threshold
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize("shift, expect", [(0.0, 1.0), (6.0, None)])
def test_a_perfect_network_scores_ap_1_and_a_shifted_one_less(coco_root, tmp_path, shift,
                                                              expect):
    from humanpose.pose.one_stage import FrameDataset, predict_people, score_people

    cfg = tiny_cfg(coco_root)
    dataset = FrameDataset(cfg)
    assert len(dataset) == 4 and dataset.keypoints.num_joints == 17
    net = TruthNetwork([truth_rows(dataset, i, (SIDE, SIDE), shift)
                        for i in range(len(dataset))])
    records = predict_people(net, dataset, cfg, Dist(), show_progress=False)
    assert net.calls == len(dataset)
    people = sum(1 for ids in dataset.coco.imgToAnns.values() for a in ids
                 if a.get("num_keypoints", 1) > 0)
    assert len(records) == people
    values, ap, name = score_people(cfg, dataset, records, tmp_path, "rtmo")
    assert name == "AP"
    if expect is not None:
        assert ap == pytest.approx(expect, abs=1e-6)
    else:
        assert 0.0 <= ap < 0.9
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["value"] == pytest.approx(ap) and metrics["metric"] == "AP"
    written = json.loads((tmp_path / "results" / "keypoints_val2017_results_0.json").read_text())
    assert len(written) == len(records) and {"keypoints", "score", "bbox"} <= set(written[0])


def test_test_command_runs_rtmo_and_train_refuses(coco_root, tmp_path, capsys):
    cfg = tiny_cfg(coco_root)
    model = humanpose.build_model(cfg)
    weights = tmp_path / "rtmo.pth"
    torch.save({"state_dict": model.state_dict()}, weights)
    opts = ["MODEL.IMAGE_SIZE", f"[{SIDE},{SIDE}]", "MODEL.RTMO.TOPK", "20",
            "DATASET.ROOT", str(coco_root), "OUTPUT_DIR", str(tmp_path / "out"),
            "LOG_DIR", str(tmp_path / "log")]
    rc = main(["test", "--cfg", "experiments/coco/rtmo/rtmo_s_640x640.yaml",
               "--weights", str(weights), *opts])
    out = capsys.readouterr().out
    assert rc == 0 and out.strip().splitlines()[-1].startswith("AP ")
    assert list((tmp_path / "out").rglob("metrics.json"))
    rc = main(["train", "--cfg", "experiments/coco/rtmo/rtmo_s_640x640.yaml", *opts])
    assert rc != 0 and "training one-stage RTMO is not implemented" in capsys.readouterr().err
