"""Loaders: batching, shuffling, workers, DistributedSampler."""

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from humanpose.data import build_dataset, build_loader

from .test_data_common import data_cfg, write_small_coco


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_loader")
    write_small_coco(root, num_train=8, num_val=3, seed=9)
    return root


def test_train_and_test_loaders(root):
    cfg = data_cfg(root, "TRAIN.BATCH_SIZE_PER_GPU", "4", "TEST.BATCH_SIZE_PER_GPU", "5")
    train = build_dataset(cfg, is_train=True)
    loader = build_loader(cfg, train, is_train=True)
    batches = list(loader)
    assert loader.drop_last and len(batches) == len(train) // 4
    images, target, weight, meta = batches[0]
    assert images.shape == (4, 3, 64, 48) and images.dtype == torch.float32
    assert target.shape == (4, 17, 16, 12) and weight.shape == (4, 17, 1)
    assert meta["center"].shape == (4, 2) and len(meta["image"]) == 4
    assert meta["image_id"].dtype == torch.int64 and meta["area"].shape == (4,)
    test = build_dataset(cfg, is_train=False)
    loader = build_loader(cfg, test, is_train=False)
    ids = torch.cat([m["index"] for _, _, _, m in loader]).tolist()
    assert ids == list(range(len(test)))  # in order, nothing dropped


def test_fast_mode_batches_are_uint8(root):
    cfg = data_cfg(root, "DATASET.FAST_MODE", "True", "TRAIN.BATCH_SIZE_PER_GPU", "4")
    images, *_ = next(iter(build_loader(cfg, build_dataset(cfg, True), is_train=True)))
    assert images.dtype == torch.uint8 and images.shape == (4, 64, 48, 3)


def test_worker_processes_persist(root):
    cfg = data_cfg(root, "WORKERS", "1", "TRAIN.BATCH_SIZE_PER_GPU", "4")
    loader = build_loader(cfg, build_dataset(cfg, True), is_train=True)
    assert loader.persistent_workers and loader.num_workers == 1
    first = [m["index"].tolist() for *_, m in loader]
    second = [m["index"].tolist() for *_, m in loader]
    assert sorted(sum(first, [])) != [] and first != second  # reshuffled each epoch


def test_distributed_sampler(root):
    cfg = data_cfg(root, "TRAIN.BATCH_SIZE_PER_GPU", "2")
    ds = build_dataset(cfg, True)
    shards = []
    for rank in range(2):
        loader = build_loader(cfg, ds, is_train=True, distributed=True, seed=3, num_replicas=2,
                              rank=rank)
        assert isinstance(loader.sampler, DistributedSampler) and loader.sampler.shuffle
        loader.sampler.set_epoch(1)
        shards.append(list(loader.sampler))
        seen = np.concatenate([m["index"].numpy() for *_, m in loader])
        assert set(seen) <= set(shards[-1]) and len(seen) == len(shards[-1]) // 2 * 2
    assert set(shards[0]) | set(shards[1]) == set(range(len(ds)))  # one permutation, split
    test = build_loader(cfg, ds, is_train=False, distributed=True, num_replicas=2, rank=1)
    assert not test.sampler.shuffle and not test.drop_last


def test_cpu_loader_workers_leave_the_compute_threads_their_cores(monkeypatch):
    import humanpose.data.loader as loader_module
    from humanpose.data.loader import loader_workers

    monkeypatch.setattr(loader_module, "_usable_cores", lambda: 8)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        assert loader_workers(4, "cpu") == 0  # every core computes: load between steps
        torch.set_num_threads(6)
        assert loader_workers(4, "cpu") == 2
        torch.set_num_threads(2)
        assert loader_workers(4, "cpu") == 4 and loader_workers(0, "cpu") == 0
        torch.set_num_threads(8)
        assert loader_workers(4, "cuda") == 4  # a GPU computes: workers as configured
        torch.set_num_threads(2)  # torchrun, 3 processes on this machine: 2 spare cores
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
        assert loader_workers(4, "cpu") == 0
        torch.set_num_threads(1)  # 5 spare cores, one worker each
        assert loader_workers(4, "cpu") == 1
    finally:
        torch.set_num_threads(threads)
