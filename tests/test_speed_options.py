"""Speed options that must not change results: the test loop's prefetch thread, and the
validation settings during training (TRAIN.VAL_FLIP_TEST)."""

import threading
import time

import numpy as np
import pytest
import torch

import humanpose
import humanpose.pose.evaluate as pose_evaluate
from humanpose.data.prefetch import prefetch
from humanpose.data.synthetic import write_coco_set
from humanpose.engine.distributed import Dist
from humanpose.engine.train import train, validation_cfg

from .conftest import REPO

DEMO_CFG = REPO / "humanpose" / "configs" / "demo_lpn_synthetic.yaml"
SMALL = ["MODEL.EXTRA.NUM_LAYERS", "18", "MODEL.EXTRA.BLOCK_GROUPS", "depthwise",
         "MODEL.IMAGE_SIZE", "[48, 64]", "MODEL.HEATMAP_SIZE", "[12, 16]",
         "TRAIN.BATCH_SIZE_PER_GPU", "4", "TEST.BATCH_SIZE_PER_GPU", "2", "WORKERS", "0",
         "TRAIN.AMP", "none"]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_coco_set(str(root), num_train=4, num_val=4, seed=9)
    return root


def make_cfg(root, out, *opts):
    return humanpose.get_cfg(DEMO_CFG, [*SMALL, "DATASET.ROOT", str(root), "OUTPUT_DIR",
                                        str(out / "output"), "LOG_DIR", str(out / "log"), *opts])


def test_prefetch_keeps_the_order_and_runs_ahead_in_a_thread():
    producers = []

    def slow():
        for i in range(6):
            producers.append(threading.current_thread().name)
            time.sleep(0.01)
            yield i

    assert list(prefetch(slow(), depth=2)) == list(range(6))
    assert set(producers) == {"humanpose-prefetch"}


def test_prefetch_raises_the_loaders_error_at_its_place():
    def failing():
        yield 1
        raise OSError("bad image")

    got = []
    with pytest.raises(OSError, match="bad image"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    made = []

    def endless():
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    stream = prefetch(endless(), depth=2)
    assert next(stream) == 0
    stream.close()
    count = len(made)
    time.sleep(0.3)
    assert len(made) == count <= 4  # at most the queue's depth (and one in hand) ahead
    assert not any(t.name == "humanpose-prefetch" for t in threading.enumerate())


def test_prefetched_test_predictions_are_identical(synthetic_root, tmp_path):
    cfg = make_cfg(synthetic_root, tmp_path, "TEST.FLIP_TEST", "True")
    torch.manual_seed(0)
    model = humanpose.build_model(cfg)
    dataset = humanpose.build_dataset(cfg, is_train=False)
    dist = Dist(0, 1, 0, torch.device("cpu"))
    plain = pose_evaluate.predict_dataset(
        model, dataset, make_cfg(synthetic_root, tmp_path, "TEST.FLIP_TEST", "True",
                                 "PREFETCH_BATCHES", "0"), dist, show_progress=False)
    ahead = pose_evaluate.predict_dataset(model, dataset, cfg, dist, show_progress=False)
    assert len(plain.indices) > 2  # several batches
    for field in ("keypoints", "centers", "scales", "scores", "image_ids", "indices"):
        np.testing.assert_array_equal(getattr(ahead, field), getattr(plain, field), field)


@pytest.mark.parametrize("val_flip,expected", [(False, [False, True]), (True, [True, True])])
def test_val_flip_test_applies_to_intermediate_epochs_only(synthetic_root, tmp_path,
                                                           monkeypatch, val_flip, expected):
    seen = []
    real = pose_evaluate.predict_dataset

    def recording(model, dataset, cfg, dist, *args, **kwargs):
        seen.append((cfg.TEST.FLIP_TEST, cfg.TEST.BACKEND))
        return real(model, dataset, cfg, dist, *args, **kwargs)

    monkeypatch.setattr(pose_evaluate, "predict_dataset", recording)
    cfg = make_cfg(synthetic_root, tmp_path, "TRAIN.END_EPOCH", "2", "TRAIN.VAL_INTERVAL", "1",
                   "TRAIN.MAX_STEPS_PER_EPOCH", "1", "TEST.FLIP_TEST", "True",
                   "TEST.BACKEND", "onnxruntime", "TRAIN.VAL_FLIP_TEST", str(val_flip))
    train(cfg, DEMO_CFG)
    # The last epoch validates as `humanpose test` would; validation never exports.
    assert seen == [(flip, "torch") for flip in expected]


def test_validation_cfg_keeps_a_config_without_flip_test(tmp_path):
    cfg = make_cfg(tmp_path, tmp_path, "TEST.FLIP_TEST", "False")
    assert validation_cfg(cfg, last=False) is cfg and validation_cfg(cfg, last=True) is cfg
    seed_like = make_cfg(tmp_path, tmp_path, "TEST.FLIP_TEST", "True")  # the default: True
    assert validation_cfg(seed_like, last=False) is seed_like
    flip = make_cfg(tmp_path, tmp_path, "TEST.FLIP_TEST", "True", "TRAIN.VAL_FLIP_TEST", "False")
    assert validation_cfg(flip, last=True) is flip
    assert validation_cfg(flip, last=False).TEST.FLIP_TEST is False
    assert flip.TEST.FLIP_TEST is True  # the run's config is left alone


def test_training_with_the_prefetch_thread_trains_the_same_weights(synthetic_root, tmp_path,
                                                                   monkeypatch):
    import humanpose.engine.train as engine

    depths = []
    real = engine.prefetch
    monkeypatch.setattr(engine, "prefetch", lambda batches, depth: depths.append(depth) or
                        real(batches, depth))
    runs = {}
    for depth in (0, 2):
        cfg = make_cfg(synthetic_root, tmp_path / str(depth), "TRAIN.END_EPOCH", "2",
                       "TRAIN.VAL_INTERVAL", "0", "TRAIN.BATCH_SIZE_PER_GPU", "2",
                       "TRAIN.MAX_STEPS_PER_EPOCH", "3", "PREFETCH_BATCHES", str(depth))
        out = train(cfg, DEMO_CFG).output_dir
        runs[depth] = torch.load(out / "checkpoint.pth", weights_only=True)
    assert runs[0]["epoch"] == runs[2]["epoch"] == 2
    assert depths == [2, 2]  # one thread per epoch, none with PREFETCH_BATCHES 0
    a, b = runs[0]["state_dict"], runs[2]["state_dict"]
    assert a.keys() == b.keys()
    for k in a:  # augmentations (random flips, rotations) drawn in the same order
        assert torch.equal(a[k], b[k]), k


def test_backend_auto_times_each_candidate_after_a_call_of_its_own():
    """A backend whose thread pool slows the next call of another (ONNX Runtime's spinning
    workers made OpenVINO 2x slower right after it) must not make `auto` pick wrongly: the
    timed call of each candidate follows an untimed call of the same candidate."""
    from humanpose.inference.backends import select_fastest

    last = {"name": None}

    def runner(name: str, own_ms: float, after_other_ms: float):
        def call(x):
            ms = own_ms if last["name"] in (name, None) else after_other_ms
            time.sleep(ms / 1000)
            last["name"] = name
            return x
        return lambda: call

    sample = torch.zeros(1)
    chosen, medians = select_fastest({"spinner": runner("spinner", 6.0, 6.0),
                                      "fast": runner("fast", 2.0, 15.0)}, sample, runs=5)
    assert chosen == "fast", medians
    assert medians["fast"] < medians["spinner"]
