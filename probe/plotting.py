"""Seaborn styling and the one figure writer (atomic PNG)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless everywhere: CI, GPU boxes, workers

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from probe.io import atomic_path  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def save_figure(fig: "plt.Figure", path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG) atomically and close it."""
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=target.suffix.lstrip(".") or "png")
    plt.close(fig)
    return target
