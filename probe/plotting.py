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
