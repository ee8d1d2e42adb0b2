"""Seeded, resumable batch order shared by every model in a comparison.

The order of samples in epoch ``e`` depends only on ``(seed, e)`` (it is
``torch.utils.data.DistributedSampler``'s permutation, also in a single
process), so two runs with the same seed see identical batches whatever model
they train.  The sampler yields ``(epoch, index)`` pairs and the dataset
wrapper calls ``dataset.set_epoch(epoch)`` inside whichever process loads the
item: seeded augmentation stays correct with persistent worker processes, which
never see a ``set_epoch`` made in the main process.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


class _EpochIndexed(Dataset):
    """``dataset[(epoch, i)]`` -> ``dataset.set_epoch(epoch); dataset[i]``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None and getattr(self.dataset, "epoch", None) != epoch:
            set_epoch(epoch)
        return self.dataset[index]


class ResumableSampler(Sampler):
    """Per-epoch permutation (or identity) of this process's shard, optionally starting mid-epoch.

    ``set_epoch(e, start_batch=k)`` makes the next iteration yield epoch ``e``
    without its first ``k`` batches: that is how ``--resume`` continues at the
    exact step.
    """

    def __init__(
        self, length: int, batch_size: int, *, seed: int, shuffle: bool, num_replicas: int = 1, rank: int = 0
    ) -> None:
        self._dataset_length = length
        self.batch_size = batch_size
        self.epoch = 0
        self.start_batch = 0
        # the sampler only needs len(); a range of indices stands in for the dataset
        self._inner: DistributedSampler[int] = DistributedSampler(
            range(length),  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch
        self._inner.set_epoch(epoch)

    def batches_per_epoch(self) -> int:
        return -(-len(self._inner) // self.batch_size)

    def shard_length(self) -> int:
        """Items this process sees in one epoch (the whole dataset in a single process)."""
        return len(self._inner)

    def __len__(self) -> int:
        return max(0, len(self._inner) - self.start_batch * self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(self._inner)[self.start_batch * self.batch_size :]
        return iter([(self.epoch, i) for i in indices])


class EpochLoader(DataLoader):
    """A DataLoader whose ``set_epoch(e, start_batch=0)`` selects the epoch (and resume point)."""

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_batch)  # type: ignore[attr-defined]
        set_epoch = getattr(self.dataset.dataset, "set_epoch", None)  # type: ignore[attr-defined]
        if set_epoch is not None:
            set_epoch(epoch)

    def batches_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch()  # type: ignore[attr-defined]

    def shard_length(self) -> int:
        return self.sampler.shard_length()  # type: ignore[attr-defined]


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    seed: int,
    workers: int = 0,
    shuffle: bool = True,
    distributed: bool = False,
    pin_memory: bool | None = None,
) -> EpochLoader:
    """Batches in an order fixed by ``(seed, epoch)``; call ``loader.set_epoch(e)`` before each epoch.

    With ``distributed=True`` each process of the initialised process group gets
    its DistributedSampler shard.  Workers are persistent and prefetch two
    batches each; memory is pinned when CUDA is available.  Shapes are the
    dataset's with a leading batch dimension (``image [B,3,H,W]``, ...).

    >>> loader = make_loader(get_dataset("synthetic", length=8), 4, seed=0)  # doctest: +SKIP
    >>> loader.set_epoch(0); [b["name"] for b in loader]                      # doctest: +SKIP
    """
    num_replicas, rank = 1, 0
    if distributed:
        num_replicas, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    sampler = ResumableSampler(
        len(dataset),  # type: ignore[arg-type]
        batch_size,
        seed=seed,
        shuffle=shuffle,
        num_replicas=num_replicas,
        rank=rank,
    )
    extra: dict[str, Any] = {}
    if workers > 0:
        extra = {"persistent_workers": True, "prefetch_factor": 2}
    loader = EpochLoader(
        _EpochIndexed(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=False,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        # a private generator: creating an iterator must not consume the global torch RNG,
        # or a resumed run would diverge from an uninterrupted one
        generator=torch.Generator().manual_seed(seed),
        **extra,
    )
    loader.set_epoch(0)
    return loader
