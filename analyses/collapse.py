"""Does the prediction collapse to one value per image?

The seed study noticed that PackNet's predicted depths "all hovered around one
singular value - for the entire image".  :func:`collapse_statistics` turns that
impression into numbers per image, all computed over valid ground-truth pixels:

- ``std_ratio``: spatial std of the prediction / spatial std of the ground truth.
  A network that predicts the image mean has ``std_ratio`` near 0; ``collapsed``
  is ``std_ratio < 0.1``.
- ``pearson`` / ``spearman``: does the prediction at least *order* the pixels
  like the ground truth?  (Undefined, NaN, for a constant prediction.)
- ``r2``: ``1 - SSE(pred) / SSE(per-image mean of gt)``.  0 means "no better
  than an oracle that knows each image's mean depth"; below 0 is worse than it.
- ``scale_ratio``: mean prediction / mean ground truth, flagged outside
  [0.8, 1.25] (the delta-1 band), so a right shape at a wrong scale is not
  mistaken for collapse.

:func:`run` measures a trained checkpoint, or trains a model through
:func:`probe.training.train` and measures it every K steps on a fixed held-out
batch (:class:`CollapseTracker`, also available as ``probe train --probe collapse``).

>>> import torch
>>> gt = torch.rand(2, 1, 8, 8) + 1.0
>>> stats = collapse_statistics(torch.full_like(gt, 1.5), gt, torch.ones_like(gt, dtype=torch.bool))
>>> stats.collapsed, stats.collapsed_share
([True, True], 1.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from analyses.base import AnalysisResult
from probe.errors import ShapeError

COLLAPSE_BELOW = 0.1
SCALE_BAND = (0.8, 1.25)


@dataclass
class CollapseStatistics:
    """Per-image collapse statistics of one batch (lists have one entry per image).

    NaN marks an undefined value: fewer than two valid pixels, a flat ground
    truth (``std_ratio``, ``r2``), or a constant prediction (correlations).
    ``collapsed_share`` and ``scale_flagged_share`` count only images whose
    ground truth varies (``defined``).
    """

    n_valid: list[int]
    std_ratio: list[float]
    pearson: list[float]
    spearman: list[float]
    r2: list[float]
    scale_ratio: list[float]
    collapsed: list[bool]
    scale_flagged: list[bool]
    defined: list[bool]
    collapsed_share: float
    scale_flagged_share: float
    collapse_below: float = COLLAPSE_BELOW
    scale_band: tuple[float, float] = SCALE_BAND

    def summary(self) -> dict[str, float]:
        """Batch-level numbers: shares plus median/mean of each statistic over defined images."""
        keep = np.asarray(self.defined, dtype=bool)

        def _agg(values: list[float], how: str) -> float:
            arr = np.asarray(values, dtype=np.float64)[keep]
            arr = arr[np.isfinite(arr)]
            if arr.size == 0:
                return math.nan
            return float(np.median(arr) if how == "median" else arr.mean())

        return {
            "n_images": len(self.std_ratio),
            "n_defined": int(keep.sum()),
            "collapsed_share": self.collapsed_share,
            "scale_flagged_share": self.scale_flagged_share,
            "median_std_ratio": _agg(self.std_ratio, "median"),
            "mean_std_ratio": _agg(self.std_ratio, "mean"),
            "mean_pearson": _agg(self.pearson, "mean"),
            "mean_spearman": _agg(self.spearman, "mean"),
            "mean_r2": _agg(self.r2, "mean"),
            "median_r2": _agg(self.r2, "median"),
            "median_scale_ratio": _agg(self.scale_ratio, "median"),
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check_shapes(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> None:
    if pred.ndim != 4 or pred.shape[1] != 1:
        raise ShapeError(f"collapse_statistics: pred must be [B,1,H,W], got {tuple(pred.shape)}")
    if gt.shape != pred.shape or valid.shape != pred.shape:
        raise ShapeError(
            "collapse_statistics: pred, gt and valid must share one [B,1,H,W] shape, got "
            f"{tuple(pred.shape)}, {tuple(gt.shape)}, {tuple(valid.shape)}"
        )


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks of a 1-D tensor, ties sharing their average rank (0-based): ``[N] -> [N]`` float64."""
    sorted_vals, order = torch.sort(x)
    _, inverse, counts = torch.unique_consecutive(sorted_vals, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0)
    starts = ends - counts
    group_rank = (starts + ends - 1).to(torch.float64) / 2.0
    ranks = torch.empty(x.shape, dtype=torch.float64, device=x.device)
    ranks[order] = group_rank[inverse]
    return ranks


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    if denom == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float((da * db).sum()) / denom))


def collapse_statistics(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, *,
                        collapse_below: float = COLLAPSE_BELOW,
                        scale_band: tuple[float, float] = SCALE_BAND) -> CollapseStatistics:
    """Per-image collapse statistics of depth predictions (metres) against the ground truth.

    ``pred``, ``gt``: ``[B,1,H,W]`` float; ``valid``: ``[B,1,H,W]`` bool.  Only valid
    pixels where both tensors are finite count.  Example::

        stats = collapse_statistics(pred_m, batch["depth"], batch["valid"])
        stats.collapsed_share, stats.summary()["mean_r2"]
    """
    _check_shapes(pred, gt, valid)
    p_all = pred.detach().to(torch.float64).flatten(1).cpu()
    g_all = gt.detach().to(torch.float64).flatten(1).cpu()
    m_all = valid.detach().to(torch.bool).flatten(1).cpu() & torch.isfinite(p_all) & torch.isfinite(g_all)
    lo, hi = scale_band
    out: dict[str, list[Any]] = {k: [] for k in ("n_valid", "std_ratio", "pearson", "spearman", "r2",
                                                   "scale_ratio", "collapsed", "scale_flagged", "defined")}
    for p_row, g_row, m_row in zip(p_all, g_all, m_all):
        p, g = p_row[m_row], g_row[m_row]
        n = int(p.numel())
        std_p = float(p.std(unbiased=False)) if n >= 2 else math.nan
        std_g = float(g.std(unbiased=False)) if n >= 2 else math.nan
        defined = n >= 2 and std_g > 0.0
        std_ratio = std_p / std_g if defined else math.nan
        sse_mean = float(((g - g.mean()) ** 2).sum()) if n else math.nan
        r2 = 1.0 - float(((p - g) ** 2).sum()) / sse_mean if defined else math.nan
        mean_g = float(g.mean()) if n else math.nan
        scale_ratio = float(p.mean()) / mean_g if n and mean_g != 0.0 else math.nan
        out["n_valid"].append(n)
        out["std_ratio"].append(std_ratio)
        out["pearson"].append(_pearson(p, g) if n >= 2 else math.nan)
        out["spearman"].append(_pearson(average_ranks(p), average_ranks(g)) if n >= 2 else math.nan)
        out["r2"].append(r2)
        out["scale_ratio"].append(scale_ratio)
        out["collapsed"].append(bool(defined and std_ratio < collapse_below))
        out["scale_flagged"].append(bool(defined and not lo <= scale_ratio <= hi))
        out["defined"].append(bool(defined))
    n_defined = sum(out["defined"])
    share = (lambda flags: sum(flags) / n_defined if n_defined else math.nan)
    return CollapseStatistics(**out, collapsed_share=share(out["collapsed"]),
                              scale_flagged_share=share(out["scale_flagged"]),
                              collapse_below=collapse_below, scale_band=(lo, hi))
