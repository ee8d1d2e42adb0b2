"""Seaborn styling, the one figure writer (atomic PNG), and images as pixels for figures."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import torch

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


def to_uint8_rgb(images: torch.Tensor) -> np.ndarray:
    """Images ``[N,3,H,W]`` in [0, 1] (clamped) -> ``uint8 [N,H,W,3]`` on the CPU, for ``imshow``."""
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
