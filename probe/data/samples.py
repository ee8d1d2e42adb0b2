"""The first items of a dataset split, stacked into one batch: what analyses measure on (held-out images).

>>> samples = load_first_samples("synthetic", split="test", input_size=(32, 48), count=4)   # doctest: +SKIP
>>> samples.image.shape, samples.names[0]                                                  # doctest: +SKIP
(torch.Size([4, 3, 32, 48]), ...)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from probe.depth_space import depth_range
from probe.errors import DataError


@dataclass
class Samples:
    """``image [N,3,H,W]`` in [0,1], ``depth [N,1,h,w]`` metres, ``valid [N,1,h,w]`` bool, item names, depth cap.

    ``depth_range``: the dataset protocol's ``(min, max)`` metres, to which predictions are clipped before any
    statistic (:func:`probe.depth_space.clip_depth`); None leaves them unclipped.
    """

    image: torch.Tensor
    depth: torch.Tensor
    valid: torch.Tensor
    names: list[str]
    max_depth: float
    depth_range: tuple[float, float] | None = None

    def to(self, device: torch.device | str) -> Samples:
        return replace(self, image=self.image.to(device), depth=self.depth.to(device), valid=self.valid.to(device))


def first_samples(dataset: Any, count: int) -> Samples:
    """The first ``count`` items of ``dataset`` (a :mod:`probe.data` dataset), or all of a shorter one."""
    n = min(count, len(dataset))
    if n < 1:
        info = dataset.info
        raise DataError(f"dataset {info.name!r} ({getattr(dataset, 'split', '?')} split): no images found")
    items = [dataset[i] for i in range(n)]
    return Samples(
        image=torch.stack([it["image"] for it in items]),
        depth=torch.stack([it["depth"] for it in items]),
        valid=torch.stack([it["valid"] for it in items]),
        names=[str(it["name"]) for it in items],
        max_depth=float(dataset.info.max_depth),
        depth_range=depth_range(dataset.info),
    )


def load_first_samples(
    name: str,
    root: str | Path | None = None,
    *,
    split: str = "test",
    input_size: tuple[int, int] | None = None,
    count: int,
) -> Samples:
    """The first ``count`` items of split ``split`` of dataset ``name`` at ``input_size``, without augmentation."""
    from probe.data import get_dataset

    return first_samples(get_dataset(name, root, split=split, input_size=input_size), count)
