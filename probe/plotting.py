"""Seaborn styling and the one figure writer (atomic PNG)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless everywhere: CI, GPU boxes, workers

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from probe.io import atomic_path  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")

# Names reach figures as plain text: a model, layer or run folder called "$x" or "a_b$" must neither be
# typeset nor crash the figure (mathtext parses "$...$" by default; a user's matplotlibrc could turn on
# LaTeX, which fails on "_" and "%").  probe's own labels use no math.
matplotlib.rcParams["text.parse_math"] = False
matplotlib.rcParams["text.usetex"] = False


def save_figure(fig: "plt.Figure", path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG) atomically and close it."""
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=target.suffix.lstrip(".") or "png")
    plt.close(fig)
    return target


def log_axis(ax: "plt.Axes", axis: str = "y") -> None:
    """A log scale on ``axis`` ("x" or "y") whose tick labels are plain numbers (1, 0.01, 1e-05).

    Matplotlib labels log ticks with math text (``$\\mathdefault{10^{-2}}$``), which is shown raw because
    names are drawn as plain text here (``text.parse_math`` is off).
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(NullFormatter())


def interval_plot(
    ax: "plt.Axes", rows: list[tuple[str, str, Any]], *, xlabel: str, threshold: float | None = None, log: bool = False
) -> None:
    """Means with their 95% intervals: ``rows`` of ``(label, group, estimate)`` (a :class:`probe.stats.Estimate`
    or None), one horizontal line per row, coloured by group, with each seed's (or image's) value as a dot.

    Rows without an estimate are left out; an estimate without an interval shows its mean alone.  ``threshold``
    draws the rule's line.
    """
    import numpy as np

    shown = [(label, group, e) for label, group, e in rows if e is not None and np.isfinite(e.mean)]
    palette = dict(zip(dict.fromkeys(g for _, g, _ in shown), sns.color_palette()))
    for y, (_, group, e) in enumerate(shown):
        colour = palette[group]
        if e.has_interval:
            ax.errorbar(e.mean, y, xerr=[[e.mean - e.low], [e.high - e.mean]], fmt="o", color=colour, capsize=4)
        else:
            ax.plot(e.mean, y, "o", color=colour)
        if e.spread_of == "seeds":
            ax.plot(e.values, [y] * len(e.values), "x", color=colour, alpha=0.6)
    ax.set_yticks(range(len(shown)), [label for label, _, _ in shown])
    if not ax.yaxis_inverted():  # first row on top (axes sharing y are inverted once)
        ax.invert_yaxis()
    if threshold is not None:
        ax.axvline(threshold, ls="--", c="grey")
    if log and shown and all(e.mean > 0 and (e.low is None or e.low > 0) for _, _, e in shown):
        log_axis(ax, "x")
    ax.set(xlabel=xlabel)


@dataclass
class IntervalPanel:
    """One panel of :func:`interval_figure`: ``rows`` as :func:`interval_plot` takes them."""

    rows: list[tuple[str, str, Any]]
    xlabel: str
    threshold: float | None = None
    log: bool = False


def interval_figure(panels: list[IntervalPanel]) -> "plt.Figure":
    """Panels of :func:`interval_plot` side by side, sharing the row labels (one row per model)."""
    rows = max((len(p.rows) for p in panels), default=1)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 0.6 * rows + 1.8), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        interval_plot(ax, panel.rows, xlabel=panel.xlabel, threshold=panel.threshold, log=panel.log)
    fig.tight_layout()
    return fig
