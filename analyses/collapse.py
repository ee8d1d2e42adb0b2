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

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
import torch.nn as nn

from analyses.base import AnalysisResult
from analyses.gradients import TrainingRuns, train_with_hook
from probe.depth_space import depth_range
from probe.device import resolve_device
from probe.errors import ProbeError, ShapeError
from probe.evaluate import predict_depth
from probe.plotting import save_figure
from probe.seeding import seed_everything
from probe.training import TrainConfig, TrainHook, load_checkpoint
from probe.training.checkpoint import resolve_checkpoint

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


# -- measuring a model ------------------------------------------------------------------------

@dataclass
class HeldOutBatch:
    """A fixed batch measured at every check: ``image [B,3,H,W]``, ``depth``/``valid`` ``[B,1,h,w]``."""

    image: torch.Tensor
    depth: torch.Tensor
    valid: torch.Tensor
    names: list[str]
    max_depth: float
    depth_range: tuple[float, float] | None = None  # the protocol's range predictions are clipped to

    @classmethod
    def from_dataset(cls, dataset: Any, n_images: int, device: torch.device) -> "HeldOutBatch":
        """The first ``n_images`` items of ``dataset`` (a :mod:`probe.data` dataset)."""
        n = min(n_images, len(dataset))
        if n < 1:
            raise ProbeError(f"collapse: the held-out dataset {dataset.info.name!r} is empty")
        items = [dataset[i] for i in range(n)]
        return cls(image=torch.stack([it["image"] for it in items]).to(device),
                   depth=torch.stack([it["depth"] for it in items]).to(device),
                   valid=torch.stack([it["valid"] for it in items]).to(device),
                   names=[str(it["name"]) for it in items], max_depth=float(dataset.info.max_depth),
                   depth_range=depth_range(dataset.info))


@dataclass
class Measurement:
    """Collapse statistics of one model at one step, with the predictions behind them (kept for figures)."""

    step: int
    stats: CollapseStatistics
    pred: torch.Tensor  # [B,1,h,w] metres, on the CPU

    def history_row(self) -> dict[str, Any]:
        return {"step": self.step, **self.stats.summary()}


def measure(model: nn.Module, batch: HeldOutBatch, step: int) -> Measurement:
    """Predict ``batch`` in eval mode (then restore the mode) and compute :func:`collapse_statistics`."""
    was_training = model.training
    model.eval()
    try:
        pred = predict_depth(model, batch.image, max_depth=batch.max_depth, size=tuple(batch.depth.shape[-2:]),
                             clip=batch.depth_range)
    finally:
        model.train(was_training)
    return Measurement(step, collapse_statistics(pred, batch.depth, batch.valid), pred.cpu())


@dataclass
class ModelCollapse:
    """One model's collapse history (one :class:`Measurement` per check) on one held-out batch."""

    name: str
    source: str
    batch: HeldOutBatch
    measurements: list[Measurement]

    @property
    def final(self) -> Measurement:
        return self.measurements[-1]

    def to_json(self) -> dict[str, Any]:
        summary = self.final.stats.summary()
        return {
            "name": self.name, "source": self.source,
            "collapsed_share": summary["collapsed_share"], "median_std_ratio": summary["median_std_ratio"],
            "history": [m.history_row() for m in self.measurements],
            "final": {"step": self.final.step, **summary,
                      "per_image": {"name": self.batch.names, **self.final.stats.to_json()}},
        }


class CollapseTracker(TrainHook):
    """Measures collapse on a fixed held-out batch before training and every ``every`` steps.

    The held-out batch is the first ``n_images`` items of the run's dataset, test
    split, at the run's input size.  Use inside
    ``train(cfg, hooks=[tracker])``; ``tracker.result()`` -> :class:`ModelCollapse`.
    """

    def __init__(self, every: int = 5, out_dir: str | Path | None = None, n_images: int = 8,
                 batch: HeldOutBatch | None = None) -> None:
        if every < 1:
            raise ProbeError(f"--every: expected a positive integer, got {every}")
        self.every = every
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.n_images = n_images
        self.batch = batch
        self.name = ""
        self.measurements: list[Measurement] = []
        self._last_step: int | None = None

    def on_start(self, model: nn.Module, config: Any) -> None:
        self.name = str(getattr(config, "model", None) or getattr(model, "model_name", type(model).__name__))
        if self.batch is None:
            self.batch = HeldOutBatch.from_dataset(held_out_dataset(config), self.n_images,
                                                   next(model.parameters()).device)
        self.measurements.append(measure(model, self.batch, step=0))

    def after_step(self, step: int, model: nn.Module, stats: Any) -> None:
        self._last_step = step
        if step % self.every == 0:
            assert self.batch is not None
            self.measurements.append(measure(model, self.batch, step))

    def on_end(self, model: nn.Module) -> None:
        if self._last_step is not None and self.measurements[-1].step != self._last_step:
            assert self.batch is not None
            self.measurements.append(measure(model, self.batch, self._last_step))

    def result(self, source: str = "") -> ModelCollapse:
        if self.batch is None or not self.measurements:
            raise ProbeError("collapse: the tracker never ran (was it passed to train()?)")
        return ModelCollapse(self.name, source or f"trained {self._last_step or 0} steps",
                             self.batch, list(self.measurements))

    def save(self, out_dir: str | Path | None = None) -> list[Path]:
        """Write ``collapse.json`` and figures for this run into ``out_dir`` (or the probe's folder)."""
        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise ProbeError("collapse: no output folder given to save the measurements")
        return CollapseResult(models=[self.result()], config={"every": self.every}).save(target)


def held_out_dataset(config: Any) -> Any:
    """The run's dataset (test split) at the run's input size, without augmentation."""
    from probe.data import get_dataset

    return get_dataset(config.dataset, root=config.data_root, split="test", input_size=config.input_size)


# -- the analysis -------------------------------------------------------------------------------

@dataclass
class CollapseConfig(TrainingRuns):
    """``probe collapse``: train ``models`` for ``steps`` (measuring every ``every``) or measure ``checkpoint``."""

    steps: int = 20
    every: int = 5
    n_images: int = 8
    out: Path = Path("runs/collapse")


@dataclass
class CollapseResult(AnalysisResult):
    """Collapse histories of one or more models; ``save(DIR)`` writes ``collapse.json`` and figures."""

    name = "collapse"
    models: list[ModelCollapse]
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"rule": (f"an image is collapsed when std(pred)/std(gt) over valid pixels < {COLLAPSE_BELOW}; "
                         f"its scale is flagged when mean(pred)/mean(gt) is outside [{SCALE_BAND[0]}, {SCALE_BAND[1]}]"),
                "config": self.config, "models": [m.to_json() for m in self.models]}

    def figures(self, out_dir: Path) -> list[Path]:
        return [histogram_figure(self.models, out_dir / "collapse_hist.png"),
                over_steps_figure(self.models, out_dir / "collapse_over_steps.png"),
                examples_figure(self.models, out_dir / "collapse_examples.png")]


def run(config: CollapseConfig) -> CollapseResult:
    """Measure a checkpoint, or train each model (same batches, same seed) and measure every K steps.

    >>> result = run(CollapseConfig(models=["packnet_b"], steps=20, every=5, width=0.125,
    ...                             input_size=(64, 96), device="cpu"))          # doctest: +SKIP
    >>> result.save("runs/collapse")                                            # doctest: +SKIP
    """
    if config.checkpoint is None and not config.models:
        raise ProbeError("collapse: give --model NAME (to train and track) or --checkpoint RUN")
    if config.checkpoint is not None and config.models:
        raise ProbeError("--model/--checkpoint: give model names to train or one run to measure, not both")
    if config.n_images < 1:
        raise ProbeError(f"--images: expected a positive number of held-out images, got {config.n_images}")
    device = resolve_device(config.device)
    seed_everything(config.seed)
    if config.checkpoint is not None:
        found = resolve_checkpoint(config.checkpoint)
        model, run_config = load_checkpoint(found, device)
        run_cfg = TrainConfig.from_json(run_config)
        batch = HeldOutBatch.from_dataset(held_out_dataset(run_cfg), config.n_images, device)
        step = found.step
        return CollapseResult(
            models=[ModelCollapse(str(run_cfg.model), f"checkpoint {config.checkpoint} (step {step})", batch,
                                  [measure(model, batch, step=step)])],
            config=asdict(config))
    trackers = train_with_hook(config, lambda: CollapseTracker(every=config.every, n_images=config.n_images),
                               "collapse")
    return CollapseResult(models=[t.result(f"trained {config.steps} steps from initialisation") for t in trackers],
                          config=asdict(config))


# -- figures ------------------------------------------------------------------------------------

def histogram_figure(models: list[ModelCollapse], path: Path) -> Path:
    """Histogram of the final per-image std ratios, one colour per model; dashed line at the threshold."""
    rows = [{"model": m.name, "std(pred) / std(gt)": r}
            for m in models for r, ok in zip(m.final.stats.std_ratio, m.final.stats.defined) if ok]
    fig, ax = plt.subplots(figsize=(7, 4))
    if rows:
        frame = pd.DataFrame(rows)
        frame["log10 std ratio"] = np.log10(frame["std(pred) / std(gt)"].clip(lower=1e-6))
        sns.histplot(frame, x="log10 std ratio", hue="model", bins=20, element="step", ax=ax)
    ax.axvline(math.log10(COLLAPSE_BELOW), ls="--", c="grey")
    ax.set(xlabel="log10 of std(prediction) / std(ground truth) per image (dashed: collapse threshold)",
           ylabel="images", title="How much of each image's depth variation the prediction keeps")
    return save_figure(fig, path)


def over_steps_figure(models: list[ModelCollapse], path: Path) -> Path:
    """Median std ratio, collapsed share, mean Pearson r and mean R^2 against the training step."""
    frame = pd.DataFrame([{"model": m.name, **row} for m in models for row in (x.history_row() for x in m.measurements)])
    panels = [("median_std_ratio", "median std(pred) / std(gt)"), ("collapsed_share", "share of collapsed images"),
              ("mean_pearson", "mean Pearson r (pred, gt)"), ("median_r2", "median R² vs per-image mean")]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4))
    for ax, (column, title) in zip(axes, panels):
        sns.lineplot(frame, x="step", y=column, hue="model", marker="o", ax=ax, legend=ax is axes[0])
        ax.set(xlabel="training step", ylabel="", title=title)
    axes[0].axhline(COLLAPSE_BELOW, ls="--", c="grey")
    axes[1].set_ylim(-0.05, 1.05)
    axes[2].set_ylim(-1.05, 1.05)
    axes[3].axhline(0.0, ls="--", c="grey")
    fig.subplots_adjust(wspace=0.25)
    return save_figure(fig, path)


def examples_figure(models: list[ModelCollapse], path: Path, per_model: int = 3) -> Path:
    """Image, ground truth and prediction (shared colour scale) for each model's most collapsed images."""
    rows = []
    for m in models:
        ratios = np.asarray(m.final.stats.std_ratio, dtype=np.float64)
        order = [i for i in np.argsort(np.where(np.isfinite(ratios), ratios, np.inf)) if np.isfinite(ratios[i])]
        rows += [(m, int(i)) for i in order[:per_model]]
    fig, axes = plt.subplots(max(1, len(rows)), 3, figsize=(10, 2.6 * max(1, len(rows))), squeeze=False)
    for (m, i), row in zip(rows, axes):
        valid = m.batch.valid[i, 0].cpu().numpy()
        gt = np.where(valid, m.batch.depth[i, 0].cpu().numpy(), np.nan)
        pred = m.final.pred[i, 0].numpy()
        lo, hi = np.nanmin(gt), np.nanmax(gt)
        row[0].imshow(m.batch.image[i, :3].permute(1, 2, 0).cpu().clamp(0, 1).numpy())
        row[1].imshow(gt, cmap="magma_r", vmin=lo, vmax=hi)
        shown = row[2].imshow(pred, cmap="magma_r", vmin=lo, vmax=hi)
        row[0].set_title(f"{m.name}: {m.batch.names[i]}", fontsize=8)
        row[1].set_title("ground truth (m)", fontsize=8)
        row[2].set_title(f"prediction: std ratio {m.final.stats.std_ratio[i]:.3f}, "
                         f"r {m.final.stats.pearson[i]:.2f}", fontsize=8)
        fig.colorbar(shown, ax=row[2], fraction=0.046)
    for ax in axes.flat:
        ax.axis("off")
    return save_figure(fig, path)
