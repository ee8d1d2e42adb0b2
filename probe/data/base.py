"""The dataset contract shared by the synthetic generator and every real-format reader.

A reader subclasses :class:`DepthDataset` and implements ``__len__`` and
``load_raw(index) -> RawSample`` (image at any resolution, depth in metres at
any resolution, NaN/0 for holes).  The base class turns that into the item
every consumer sees::

    {"image": float32 [3,H,W] in [0,1],      # H,W = input_size
     "depth": float32 [1,h,w] metres,         # h,w = input_size * info.depth_scale; 0 where invalid
     "valid": bool [1,h,w],
     "name": str,                              # stable id
     "skipped": str}                           # "" or the name of a bad item this one replaced

Readers register a factory with :data:`DATASETS`; ``get_dataset(name, ...)``
is the only door in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from probe.data import transforms as T
from probe.errors import DataError, ProbeError
from probe.registry import Registry


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, what resolution its protocol uses, and where to get it.

    ``min_depth``/``max_depth`` are the protocol's depth range in metres: ground truth lies inside it,
    predictions are clipped to it before any statistic (:func:`probe.depth_space.clip_depth`), and it sizes
    PackNet's inverse-depth head (:func:`probe.depth_space.head_min_depth`).
    """

    name: str
    description: str
    min_depth: float
    max_depth: float
    input_size: tuple[int, int]
    depth_scale: float
    eval_protocol: str
    source: str
    expected: tuple[str, ...] = ()
    needs_root: bool = True

    def depth_size(self, input_size: tuple[int, int] | None = None) -> tuple[int, int]:
        h, w = input_size or self.input_size
        return max(1, int(round(h * self.depth_scale))), max(1, int(round(w * self.depth_scale)))

    def missing_root_message(self, root: Path | None) -> str:
        where = f"under {root}" if root is not None else "(no --data-root given)"
        files = ", ".join(self.expected) or "the dataset files"
        return f"dataset {self.name!r}: files not found {where}; expected {files}. Get them from {self.source}"


@dataclass
class RawSample:
    """One sample as read from disk: ``image`` HxWx3 (uint8 or float in [0,1]), ``depth`` hxw metres."""

    image: np.ndarray
    depth: np.ndarray
    name: str


class DepthDataset(Dataset):
    """Base class: lazy loading, resizing, validity mask, seeded augmentation, bad-item policy."""

    def __init__(self, info: DatasetInfo, split: str = "train", input_size: tuple[int, int] | None = None,
                 augment: bool = False, seed: int = 0, skip_bad: bool = False, normalize: str = "none") -> None:
        if split not in ("train", "test"):
            raise ProbeError(f"split: expected 'train' or 'test', got {split!r}")
        self.info = info
        self.split = split
        self.input_size = tuple(input_size) if input_size else tuple(info.input_size)
        self.depth_size = info.depth_size(self.input_size)
        self.augment = augment
        self.seed = seed
        self.skip_bad = skip_bad
        self.epoch = 0
        self._normalize = T.NORMALIZATIONS.get(normalize)

    # -- to implement -------------------------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_raw(self, index: int) -> RawSample:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_name(self, index: int) -> str:
        """Stable id of item ``index`` without loading it (used in error messages)."""
        return f"{self.info.name}/{self.split}/{index}"

    # -- shared pipeline ----------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Vary augmentation per epoch (called by the training loop, like DistributedSampler)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.info.name}: index {index} out of range 0..{len(self) - 1}")
        try:
            return self._finish(self.load_raw(index), index, skipped="")
        except DataError:
            if not self.skip_bad:
                raise
        bad = self.item_name(index)
        for offset in range(1, len(self)):
            other = (index + offset) % len(self)
            try:
                return self._finish(self.load_raw(other), other, skipped=bad)
            except DataError:
                continue
        raise DataError(f"dataset {self.info.name!r} ({self.split}): every item failed to load")

    def _finish(self, raw: RawSample, index: int, skipped: str) -> dict[str, Any]:
        image = T.resize_image(T.image_to_tensor(raw.image), self.input_size)
        depth_np = np.asarray(raw.depth, dtype=np.float32)
        if depth_np.ndim != 2:
            raise DataError(f"{raw.name}: depth must be a 2-D map, got shape {depth_np.shape}")
        depth = T.resize_depth(torch.from_numpy(np.ascontiguousarray(depth_np))[None], self.depth_size)
        valid = T.valid_mask(depth, self.info.max_depth)
        depth = torch.where(valid, depth, torch.zeros_like(depth))
        if self.augment:
            image, depth, valid = T.augment(image, depth, valid, T.sample_rng(self.seed, self.epoch, index))
        return {"image": self._normalize(image).contiguous(), "depth": depth.contiguous(),
                "valid": valid.contiguous(), "name": raw.name, "skipped": skipped}


Factory = Callable[..., DepthDataset]
DATASETS: Registry[Factory] = Registry("dataset")


def register_dataset(info: DatasetInfo, locate: Callable[[Path | None], bool] | None = None) -> Callable[[Factory], Factory]:
    """Register ``factory(root, split, input_size, **options)`` under ``info.name``.

    ``locate(root) -> bool`` says whether the files are present (for ``probe datasets``).
    """
    return DATASETS.register(info.name, description=info.description, info=info,
                             locate=locate or (lambda root: root is not None and Path(root).exists()))


def get_dataset(name: str, root: str | Path | None = None, split: str = "train",
                input_size: tuple[int, int] | None = None, **options: Any) -> DepthDataset:
    """Build dataset ``name`` from ``root`` (None for the built-in synthetic data).

    >>> ds = get_dataset("synthetic", split="test", input_size=(48, 64), length=4)  # doctest: +SKIP
    >>> ds[0]["depth"].shape                                                       # doctest: +SKIP
    torch.Size([1, 24, 32])
    """
    entry = DATASETS.entry(name)
    info: DatasetInfo = entry.meta["info"]
    root_path = Path(root).expanduser() if root is not None else None
    if info.needs_root and (root_path is None or not root_path.exists()):
        raise DataError(info.missing_root_message(root_path))
    return entry.factory(root_path, split=split, input_size=input_size, **options)


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.entry(name).meta["info"]


def dataset_present(name: str, root: str | Path | None) -> bool:
    """Whether ``name``'s files are found under ``root`` (always True for generated data)."""
    entry = DATASETS.entry(name)
    if not entry.meta["info"].needs_root:
        return True
    return bool(entry.meta["locate"](Path(root).expanduser() if root is not None else None))


@dataclass
class BadItemLog:
    """Collects the names of bad items replaced under ``skip_bad`` (from batches' ``skipped`` field)."""

    names: list[str] = field(default_factory=list)

    def update(self, batch: dict[str, Any]) -> None:
        self.names.extend(n for n in batch.get("skipped", []) if n)

    def summary(self) -> str:
        if not self.names:
            return "no bad items"
        shown = ", ".join(sorted(set(self.names))[:10])
        return f"{len(set(self.names))} bad item(s) skipped: {shown}"
