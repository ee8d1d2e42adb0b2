"""Batch order: a function of (seed, epoch) only; resuming skips exactly the consumed batches."""

from __future__ import annotations

import torch

from probe.data import get_dataset
from probe.training import make_loader
from probe.training.loader import ResumableSampler


def _names(loader, epoch: int, start_batch: int = 0) -> list[list[str]]:
    loader.set_epoch(epoch, start_batch)
    return [list(batch["name"]) for batch in loader]


def _dataset(**options):
    return get_dataset("synthetic", split="train", input_size=(16, 32), length=10, **options)


def test_identical_seeds_give_identical_batches_and_different_seeds_do_not():
    a, b, c = (make_loader(_dataset(), 4, seed=s) for s in (3, 3, 4))
    assert _names(a, 0) == _names(b, 0)
    assert _names(a, 0) != _names(c, 0)
    assert _names(a, 0) != _names(a, 1), "each epoch reshuffles"


def test_resuming_mid_epoch_yields_exactly_the_remaining_batches():
    loader = make_loader(_dataset(), 4, seed=0)
    full = _names(loader, 2)
    assert _names(loader, 2, start_batch=1) == full[1:]
    assert _names(loader, 2, start_batch=len(full)) == []
    assert len(full) == loader.batches_per_epoch() == 3


def test_every_sample_appears_once_per_epoch():
    loader = make_loader(_dataset(), 3, seed=5)
    names = [n for batch in _names(loader, 1) for n in batch]
    assert sorted(names) == sorted(_dataset()[i]["name"] for i in range(10))


def test_distributed_shards_cover_the_epoch_and_match_in_length():
    shards = [list(ResumableSampler(10, 2, seed=0, shuffle=True, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1])  # DistributedSampler pads so every rank takes the same steps
    assert {i for shard in shards for _, i in shard} == set(range(10))


def test_augmentation_follows_the_epoch_inside_persistent_workers():
    """A worker process never sees set_epoch calls made in the main process; the loader must carry the epoch."""
    in_process = make_loader(_dataset(augment=True), 5, seed=0, workers=0, shuffle=False)
    in_worker = make_loader(_dataset(augment=True), 5, seed=0, workers=1, shuffle=False)
    for epoch in (0, 1, 2):
        for loader_batches in zip(*(_batches(loader, epoch) for loader in (in_process, in_worker))):
            assert torch.equal(loader_batches[0]["image"], loader_batches[1]["image"])
    assert not torch.equal(_batches(in_process, 0)[0]["image"], _batches(in_process, 1)[0]["image"])


def _batches(loader, epoch: int) -> list[dict]:
    loader.set_epoch(epoch)
    return list(loader)
