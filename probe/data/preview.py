"""Looking at datasets: the table behind ``probe datasets`` and the picture behind ``probe data preview``.

The preview puts RGB next to colour-mapped depth for a few items, to check at a
glance that images and depth line up, that the depth range is plausible and
where the holes are::

    >>> from probe.data.preview import write_preview
    >>> write_preview("synthetic", out="preview.png", count=4)     # doctest: +SKIP
    PosixPath('preview.png')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from probe.data.base import DepthDataset, dataset_info, dataset_present, get_dataset, list_datasets
from probe.errors import ProbeError
from probe.limits import MAX_PREVIEW_COUNT, check_count
from probe.plotting import plt, save_figure
from probe.seeding import check_seed

INVALID_COLOUR = "#d0d0d0"
"""Shown where ``valid`` is False; absent from the depth colour map (magma)."""

DEPTH_CMAP = "magma_r"


@dataclass(frozen=True)
class DatasetRow:
    """One line of ``probe datasets``."""

    name: str
    description: str
    found: bool
    input_size: tuple[int, int]
    max_depth: float
    source: str


def dataset_rows(root: str | Path | None = None) -> list[DatasetRow]:
    """Every registered dataset, with whether its files are found under ``root``."""
    if root is not None and not Path(root).expanduser().exists():
        raise ProbeError(f"--data-root {root}: not found (expected a folder or archive holding datasets)")
    rows = []
    for name in list_datasets():
        info = dataset_info(name)
        rows.append(
            DatasetRow(
                name, info.description, dataset_present(name, root), info.input_size, float(info.max_depth), info.source
            )
        )
    return rows


def dataset_table(root: str | Path | None = None) -> Table:
    """A rich table of :func:`dataset_rows`."""
    where = f"under {root}" if root is not None else "(no --data-root)"
    table = Table(title=f"datasets, files looked for {where}")
    for column in ("name", "description", "found", "input HxW", "depth cap", "where to get it"):
        table.add_column(column, overflow="fold", no_wrap=column in ("name", "found", "input HxW", "depth cap"))
    for row in dataset_rows(root):
        table.add_row(
            row.name,
            row.description,
            "[green]yes[/]" if row.found else "[red]no[/]",
            f"{row.input_size[0]}x{row.input_size[1]}",
            f"{row.max_depth:g} m",
            row.source,
        )
    return table


@dataclass(frozen=True)
class PreviewSample:
    """One item as arrays: ``image`` HxWx3 in [0,1], ``depth`` hxw metres with NaN where invalid."""

    name: str
    image: np.ndarray
    depth: np.ndarray


def preview_samples(dataset: DepthDataset, count: int, seed: int = 0) -> list[PreviewSample]:
    """``count`` distinct items drawn with ``seed`` (all of them if the dataset is smaller), in index order."""
    check_count("--count", count, MAX_PREVIEW_COUNT)
    check_seed(seed)
    n = len(dataset)
    if n == 0:
        raise ProbeError(f"dataset {dataset.info.name!r} ({dataset.split}) has no items")
    indices = np.sort(np.random.default_rng(seed).choice(n, size=min(count, n), replace=False))
    samples = []
    for i in indices:
        item = dataset[int(i)]
        depth = item["depth"][0].numpy().astype(np.float32)
        depth[~item["valid"][0].numpy()] = np.nan
        samples.append(PreviewSample(item["name"], item["image"].permute(1, 2, 0).numpy(), depth))
    return samples


def preview_figure(samples: list[PreviewSample], title: str = "") -> "plt.Figure":
    """A ``len(samples) x 2`` grid: RGB left, depth right (one shared colour bar in metres, holes in grey)."""
    rows = len(samples)
    fig, axes = plt.subplots(rows, 2, figsize=(7.5, 2.6 * rows + 0.4), squeeze=False, constrained_layout=True)
    finite = [s.depth[np.isfinite(s.depth)] for s in samples]
    values = np.concatenate(finite) if finite else np.array([])
    vmax = float(values.max()) if values.size else 1.0
    cmap = plt.get_cmap(DEPTH_CMAP).with_extremes(bad=INVALID_COLOUR)
    mappable = None
    for row, sample in enumerate(samples):
        ax_rgb, ax_depth = axes[row]
        ax_rgb.imshow(np.clip(sample.image, 0.0, 1.0))
        ax_rgb.set_title(sample.name, fontsize=8)
        mappable = ax_depth.imshow(
            np.ma.masked_invalid(sample.depth), cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest"
        )
        invalid = float(np.mean(~np.isfinite(sample.depth)))
        ax_depth.set_title(
            f"depth {sample.depth.shape[0]}x{sample.depth.shape[1]}, {invalid:.0%} invalid (grey)", fontsize=8
        )
        for ax in (ax_rgb, ax_depth):
            ax.set_axis_off()
    if mappable is not None:
        fig.colorbar(mappable, ax=axes[:, 1].tolist(), label="depth (m)", shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def write_preview(
    name: str,
    out: str | Path,
    root: str | Path | None = None,
    split: str = "train",
    count: int = 4,
    seed: int = 0,
    input_size: tuple[int, int] | None = None,
    **options: Any,
) -> Path:
    """Render ``count`` items of dataset ``name`` (drawn with ``seed``) to the PNG ``out``, written atomically."""
    check_count("--count", count, MAX_PREVIEW_COUNT)
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ProbeError(f"--out: expected a .png file name, got {str(out)!r}")
    dataset = get_dataset(name, root=root, split=split, input_size=input_size, seed=seed, **options)
    samples = preview_samples(dataset, count, seed=seed)
    fig = preview_figure(samples, title=f"{name} ({split}), {len(samples)} of {len(dataset)} items")
    return save_figure(fig, out)
