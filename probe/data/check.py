"""Validate a dataset on disk: every item decodes, with counts, resolutions, depth range and bad files.

``check_dataset(name, root, split)`` reads every item's raw image and depth
(the reader's ``load_raw``, at the files' own resolution, before any resize)
and collects one :class:`ItemCheck` per item.  An item is *bad* when reading
it raises a DataError (corrupt image or ``.mat``, missing partner, a list
entry pointing at a missing file) or fails the checks of
:meth:`~probe.data.base.DepthDataset.load_checked` (shapes, real-valued depth,
image/depth aspect ratio).  A split that cannot even be opened (missing list file) is reported
as bad too.  Items whose depth has no valid pixel are listed separately: they
load, but train nothing.

    >>> report = check_dataset("nyu", Path("/data/nyu_data.zip"), split="test")   # doctest: +SKIP
    >>> print(report.format()); report.raise_if_bad()                            # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from probe.data.base import DepthDataset, get_dataset
from probe.errors import DataError, ProbeError
from probe.limits import check_workers
from probe.progress import progress_bar

SPLITS = {"train": ("train",), "test": ("test",), "all": ("train", "test")}


@dataclass
class ItemCheck:
    """What one item looks like on disk, or why it failed (``error``)."""

    index: int
    name: str
    image_size: tuple[int, int] | None = None
    depth_size: tuple[int, int] | None = None
    depth_min: float | None = None
    depth_max: float | None = None
    valid_fraction: float | None = None
    error: str = ""


def inspect_item(dataset: DepthDataset, index: int) -> ItemCheck:
    """Read item ``index`` raw and summarise it; a DataError becomes ``error``, never an exception."""
    name = dataset.item_name(index)
    try:
        raw = dataset.load_checked(index)
    except DataError as exc:
        return ItemCheck(index, name, error=str(exc))
    image, depth = np.asarray(raw.image), np.asarray(raw.depth)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0) & (depth <= dataset.info.max_depth)
    values = depth[valid]
    return ItemCheck(
        index,
        name,
        image_size=(int(image.shape[0]), int(image.shape[1])),
        depth_size=(int(depth.shape[0]), int(depth.shape[1])),
        depth_min=float(values.min()) if values.size else None,
        depth_max=float(values.max()) if values.size else None,
        valid_fraction=float(valid.mean()),
    )


class _Inspector(Dataset):
    """Wraps a dataset so that DataLoader workers can inspect items in parallel."""

    def __init__(self, dataset: DepthDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> ItemCheck:
        return inspect_item(self.dataset, index)


def _single(batch: list[ItemCheck]) -> ItemCheck:
    return batch[0]


def _size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


@dataclass
class SplitCheck:
    """Summary of one split: counts, resolutions (``"HxW" -> items``), depth range and the bad items."""

    split: str
    count: int = 0
    image_sizes: dict[str, int] = field(default_factory=dict)
    depth_sizes: dict[str, int] = field(default_factory=dict)
    depth_min: float | None = None
    depth_max: float | None = None
    mean_valid_fraction: float | None = None
    no_valid_depth: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    @classmethod
    def from_items(cls, split: str, items: list[ItemCheck]) -> "SplitCheck":
        good = [i for i in items if not i.error]
        mins = [i.depth_min for i in good if i.depth_min is not None]
        maxs = [i.depth_max for i in good if i.depth_max is not None]
        return cls(
            split=split,
            count=len(items),
            image_sizes=dict(Counter(_size_text(i.image_size) for i in good if i.image_size)),
            depth_sizes=dict(Counter(_size_text(i.depth_size) for i in good if i.depth_size)),
            depth_min=min(mins) if mins else None,
            depth_max=max(maxs) if maxs else None,
            mean_valid_fraction=float(np.mean([i.valid_fraction for i in good])) if good else None,
            no_valid_depth=[i.name for i in good if i.depth_min is None],
            bad=[i.error for i in items if i.error],
        )


@dataclass
class CheckReport:
    """The result of ``check_dataset``; ``ok`` is False when any item or split is bad."""

    dataset: str
    root: str
    max_depth: float | None
    splits: list[SplitCheck]

    @property
    def bad(self) -> list[str]:
        return [b for s in self.splits for b in s.bad]

    @property
    def ok(self) -> bool:
        return not self.bad

    def format(self) -> str:
        lines = [f"{self.dataset} under {self.root}"]
        for s in self.splits:
            lines.append(f"{s.split}: {s.count} items, {len(s.bad)} bad")
            if s.image_sizes:
                lines.append("  image sizes: " + ", ".join(f"{k} ({v})" for k, v in sorted(s.image_sizes.items())))
                lines.append("  depth sizes: " + ", ".join(f"{k} ({v})" for k, v in sorted(s.depth_sizes.items())))
            if s.depth_min is not None:
                cap = f" (cap {self.max_depth:g} m)" if self.max_depth is not None else ""
                lines.append(
                    f"  valid depth: {s.depth_min:.3f} .. {s.depth_max:.3f} m{cap}, "
                    f"{100 * (s.mean_valid_fraction or 0):.1f}% of pixels valid on average"
                )
            if s.no_valid_depth:
                lines.append(
                    f"  {len(s.no_valid_depth)} item(s) without any valid depth: "
                    + ", ".join(s.no_valid_depth[:20])
                    + (" ..." if len(s.no_valid_depth) > 20 else "")
                )
            lines.extend(f"  bad: {b}" for b in s.bad)
        lines.append("ok" if self.ok else f"{len(self.bad)} bad file(s)")
        return "\n".join(lines)

    def raise_if_bad(self) -> None:
        """ProbeError (CLI exit 2) when any file is bad; the list itself is in :meth:`format`."""
        if not self.ok:
            raise ProbeError(f"dataset {self.dataset!r} under {self.root}: {len(self.bad)} bad file(s), listed above")


def check_split(dataset: DepthDataset, workers: int = 0, progress: bool | None = None) -> SplitCheck:
    """Inspect every item of ``dataset`` (in ``workers`` DataLoader processes when > 0)."""
    items: list[ItemCheck] = []
    disable = None if progress is None else not progress
    source: Any = range(len(dataset))
    if workers > 0:
        source = DataLoader(_Inspector(dataset), batch_size=1, shuffle=False, num_workers=workers, collate_fn=_single)
    with progress_bar(disable=disable) as bar:
        task = bar.add_task(f"check {dataset.info.name} {dataset.split}", total=len(dataset))
        for entry in source:
            items.append(entry if isinstance(entry, ItemCheck) else inspect_item(dataset, entry))
            bar.advance(task)
    return SplitCheck.from_items(dataset.split, items)


def check_dataset(
    name: str,
    root: str | Path | None,
    split: str = "all",
    workers: int = 0,
    progress: bool | None = None,
    **options: Any,
) -> CheckReport:
    """Validate ``name`` under ``root`` for ``split`` (``train``, ``test`` or ``all``).

    When no requested split can be opened (missing root, missing files) the
    DataError is raised at once; with ``all``, a split that cannot be opened
    is recorded as bad and the other split is still checked.
    """
    if split not in SPLITS:
        raise ProbeError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    check_workers(workers)
    opened: dict[str, DepthDataset] = {}
    failures: dict[str, DataError] = {}
    for one in SPLITS[split]:
        try:
            opened[one] = get_dataset(name, root, split=one, **options)
        except DataError as exc:
            failures[one] = exc
    if not opened:
        raise next(iter(failures.values()))
    results = [
        check_split(opened[s], workers=workers, progress=progress)
        if s in opened
        else SplitCheck(split=s, bad=[str(failures[s])])
        for s in SPLITS[split]
    ]
    max_depth = next(iter(opened.values())).info.max_depth
    return CheckReport(name, str(root), max_depth, results)
