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
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from analyses.probes import TRAIN_PROBES, TrainingProbe, by_name, learned_over_runs
from analyses.training_runs import TrainingRuns, runs_over_seeds, score_model, train_with_hook
from probe.data.samples import Samples, load_first_samples
from probe.device import resolve_device
from probe.errors import ProbeError, ShapeError
from probe.evaluate import predict_depth
from probe.heldout import HeldOutSummary, Learned
from probe.limits import MAX_ANALYSIS_STEPS, MAX_HELD_OUT_IMAGES, check_count
from probe.options import option, out_option
from probe.report.answers import (
    QUESTIONS,
    Answer,
    excluded_sentence,
    gate,
    model_columns,
    shown,
    verdict_cell,
    with_controls,
)
from probe.report.collect import Results
from probe.report.document import Block, Section, figure_from_matplotlib
from probe.report.sections import SECTIONS, answer_section, embedded_figures
from probe.results import Result, register_result
from probe.roles import UNDER_STUDY, Roles, assign_roles
from probe.rules import COLLAPSE_RULE, collapse_call
from probe.schema import encode, transient
from probe.seeding import seed_everything
from probe.stats import Estimate, seeds_or_images
from probe.training import TrainConfig, load_checkpoint
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

    def summary(self, step: int) -> CollapseSummary:
        """Batch-level numbers at ``step``: shares plus median/mean of each statistic over defined images."""
        keep = np.asarray(self.defined, dtype=bool)

        def _agg(values: list[float], how: str) -> float:
            arr = np.asarray(values, dtype=np.float64)[keep]
            arr = arr[np.isfinite(arr)]
            if arr.size == 0:
                return math.nan
            return float(np.median(arr) if how == "median" else arr.mean())

        return CollapseSummary(
            step=step,
            n_images=len(self.std_ratio),
            n_defined=int(keep.sum()),
            collapsed_share=self.collapsed_share,
            scale_flagged_share=self.scale_flagged_share,
            median_std_ratio=_agg(self.std_ratio, "median"),
            mean_std_ratio=_agg(self.std_ratio, "mean"),
            mean_pearson=_agg(self.pearson, "mean"),
            mean_spearman=_agg(self.spearman, "mean"),
            mean_r2=_agg(self.r2, "mean"),
            median_r2=_agg(self.r2, "median"),
            median_scale_ratio=_agg(self.scale_ratio, "median"),
        )


@dataclass
class CollapseSummary:
    """One measurement of one model: shares of collapsed / scale-flagged images and per-image aggregates."""

    step: int
    n_images: int
    n_defined: int
    collapsed_share: float
    scale_flagged_share: float
    median_std_ratio: float
    mean_std_ratio: float
    mean_pearson: float
    mean_spearman: float
    mean_r2: float
    median_r2: float
    median_scale_ratio: float


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


def collapse_statistics(
    pred: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor,
    *,
    collapse_below: float = COLLAPSE_BELOW,
    scale_band: tuple[float, float] = SCALE_BAND,
) -> CollapseStatistics:
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
    out: dict[str, list[Any]] = {
        k: []
        for k in (
            "n_valid",
            "std_ratio",
            "pearson",
            "spearman",
            "r2",
            "scale_ratio",
            "collapsed",
            "scale_flagged",
            "defined",
        )
    }
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

    def share(flags: list[bool]) -> float:
        return sum(flags) / n_defined if n_defined else math.nan

    return CollapseStatistics(
        **out,
        collapsed_share=share(out["collapsed"]),
        scale_flagged_share=share(out["scale_flagged"]),
        collapse_below=collapse_below,
        scale_band=(lo, hi),
    )


# -- measuring a model ------------------------------------------------------------------------


@dataclass
class Measurement:
    """Collapse statistics of one model at one step, with the predictions behind them (kept for figures)."""

    step: int
    stats: CollapseStatistics
    pred: torch.Tensor  # [B,1,h,w] metres, on the CPU

    def summary(self) -> CollapseSummary:
        return self.stats.summary(self.step)


def measure(model: nn.Module, batch: Samples, step: int) -> Measurement:
    """Predict ``batch`` in eval mode (then restore the mode) and compute :func:`collapse_statistics`."""
    was_training = model.training
    model.eval()
    try:
        pred = predict_depth(
            model,
            batch.image,
            max_depth=batch.max_depth,
            size=(int(batch.depth.shape[-2]), int(batch.depth.shape[-1])),
            clip=batch.depth_range,
        )
    finally:
        model.train(was_training)
    return measure_prediction(pred, batch, step)


def measure_prediction(pred: torch.Tensor, batch: Samples, step: int) -> Measurement:
    """Collapse statistics of a prediction ``[B,1,h,w]`` (metres) of ``batch`` at ``step``."""
    return Measurement(step, collapse_statistics(pred, batch.depth, batch.valid), pred.cpu())


@dataclass
class ModelCollapse:
    """One model's collapse history on one held-out batch and one seed; ``final`` holds the per-image statistics of
    the last measurement, ``held_out`` the run's score against the constant predictor (did it learn?)."""

    name: str
    seed: int
    source: str
    images: list[str]  # the held-out images, in the order of every per-image list
    history: list[CollapseSummary]  # one per measurement, in step order
    final: CollapseStatistics
    held_out: HeldOutSummary | None  # None: not measured
    batch: Samples | None = transient()  # for the example figure only
    final_pred: torch.Tensor | None = transient()  # [B,1,h,w] metres at the last measurement

    @classmethod
    def of(
        cls,
        name: str,
        source: str,
        batch: Samples,
        measurements: list[Measurement],
        seed: int = 0,
        held_out: HeldOutSummary | None = None,
    ) -> ModelCollapse:
        earlier = [m.summary() for m in measurements[:-1]]
        return cls.of_history(name, source, batch, earlier, measurements[-1], seed, held_out)

    @classmethod
    def of_history(
        cls,
        name: str,
        source: str,
        batch: Samples,
        earlier: list[CollapseSummary],
        last: Measurement,
        seed: int = 0,
        held_out: HeldOutSummary | None = None,
    ) -> ModelCollapse:
        """From the summaries of the earlier measurements and the last measurement (its predictions kept)."""
        history = [*earlier, last.summary()]
        return cls(name, seed, source, list(batch.names), history, last.stats, held_out, batch, last.pred)

    @property
    def last(self) -> CollapseSummary:
        return self.history[-1]

    def defined(self, values: list[Any]) -> list[float]:
        """The final per-image ``values`` of the images whose ground truth varies (as floats)."""
        return [float(v) for v, ok in zip(values, self.final.defined) if ok]


@dataclass
class CollapseOverSeeds:
    """One model over its seeds: shares of collapsed and scale-flagged images and the median std ratio, each with
    its interval (Student t over seeds; one seed: a bootstrap over its images), and whether it learned."""

    name: str
    seeds: list[int]
    collapsed_share: Estimate | None  # None: undefined (no image with varying ground truth) on a seed
    scale_flagged_share: Estimate | None
    median_std_ratio: Estimate | None
    learned: Learned | None

    @classmethod
    def of(cls, name: str, runs: list[ModelCollapse]) -> CollapseOverSeeds:
        one = runs[0]
        return cls(
            name=name,
            seeds=[r.seed for r in runs],
            collapsed_share=seeds_or_images(
                [r.final.collapsed_share for r in runs], one.defined(one.final.collapsed) or None
            ),
            scale_flagged_share=seeds_or_images(
                [r.final.scale_flagged_share for r in runs], one.defined(one.final.scale_flagged) or None
            ),
            median_std_ratio=seeds_or_images(
                [r.last.median_std_ratio for r in runs], one.defined(one.final.std_ratio) or None, np.median
            ),
            learned=learned_over_runs(runs),
        )


class CollapseTracker(TrainingProbe):
    """Measures collapse on a fixed held-out batch before training and every ``every`` steps.

    The held-out batch is the first ``n_images`` items of the run's dataset, test
    split, at the run's input size.  Use inside
    ``train(cfg, hooks=[tracker])``; ``tracker.result()`` -> :class:`ModelCollapse`.
    """

    analysis = "collapse"

    def __init__(
        self,
        every: int = 5,
        out_dir: str | Path | None = None,
        n_images: int = 8,
        batch: Samples | None = None,
        *,
        flag: str = "--every",
    ) -> None:
        super().__init__(every, out_dir, flag=flag)
        self.n_images = n_images
        self.batch = batch
        # summaries of the earlier measurements and the newest in full: memory does not grow with
        # the steps by a prediction per measurement
        self.history: list[CollapseSummary] = []
        self.latest: Measurement | None = None
        self._last_step: int | None = None

    def on_start(self, model: nn.Module, config: Any) -> None:
        super().on_start(model, config)
        if self.batch is None:
            self.batch = held_out_samples(config, self.n_images).to(next(model.parameters()).device)
        self._record(model, 0)

    def _record(self, model: nn.Module, step: int) -> None:
        assert self.batch is not None
        if self.latest is not None:
            self.history.append(self.latest.summary())
        self.latest = measure(model, self.batch, step)

    def after_step(self, step: int, model: nn.Module, stats: Any) -> None:
        self._last_step = step
        if self.due(step):
            self._record(model, step)

    def on_end(self, model: nn.Module) -> None:
        if self._last_step is not None and self.latest is not None and self.latest.step != self._last_step:
            self._record(model, self._last_step)

    @property
    def steps_trained(self) -> int:
        """Training steps this tracker saw (0 before the first)."""
        return self._last_step or 0

    def result(self, source: str = "") -> ModelCollapse:
        if self.batch is None or self.latest is None:
            raise ProbeError("collapse: the tracker never ran (was it passed to train()?)")
        return ModelCollapse.of_history(
            str(self.name),
            source or f"trained {self.steps_trained} steps",
            self.batch,
            list(self.history),
            self.latest,
            self.seed,
            self.held_out,
        )

    def to_result(self) -> CollapseResult:
        return CollapseResult.of([self.result()], self.roles(), config={"every": self.every})


@TRAIN_PROBES.register("collapse", description="collapse statistics on a fixed held-out batch -> collapse.json")
def collapse_probe(every: int, out_dir: Path) -> CollapseTracker:
    return CollapseTracker(every=every, out_dir=out_dir, flag="--probe-every")


def held_out_samples(config: Any, count: int) -> Samples:
    """The first ``count`` test items of the run's dataset at the run's input size, without augmentation."""
    return load_first_samples(config.dataset, config.data_root, split="test", input_size=config.input_size, count=count)


# -- the analysis -------------------------------------------------------------------------------


@dataclass
class CollapseConfig(TrainingRuns):
    """``probe collapse``: train ``models`` for ``steps`` (measuring every ``every``) or measure ``checkpoint``."""

    checkpoint: Path | None = option(None, help="measure this trained run (folder or .safetensors) instead of training")
    steps: int = option(20, help="training steps per model")
    every: int = option(5, help="measure every K steps")
    n_images: int = option(8, flag="--images", help="held-out images measured (first N of the test split)")
    out: Path = out_option(Path("runs/collapse"))

    def validate(self) -> None:
        check_count("--every", self.every, MAX_ANALYSIS_STEPS)
        check_count("--images", self.n_images, MAX_HELD_OUT_IMAGES, "predicted together as one batch")
        super().validate()


RULE = (
    f"an image is collapsed when std(pred)/std(gt) over valid pixels < {COLLAPSE_BELOW}; "
    f"its scale is flagged when mean(pred)/mean(gt) is outside [{SCALE_BAND[0]}, {SCALE_BAND[1]}]"
)


@register_result
@dataclass
class CollapseResult(Result):
    """Collapse histories per model and seed, and each model over its seeds.

    ``save(DIR)`` writes ``collapse.json`` and figures."""

    name: ClassVar[str] = "collapse"
    schema_version: ClassVar[int] = 2
    models: list[ModelCollapse]  # every (model, seed) run
    summaries: list[CollapseOverSeeds]
    roles: Roles  # which models are under study and which are baselines
    config: dict[str, Any] = field(default_factory=dict)  # the analysis config, or {"every": K} from a probe
    rule: str = RULE

    @classmethod
    def of(cls, models: list[ModelCollapse], roles: Roles, config: dict[str, Any] | None = None) -> CollapseResult:
        summaries = [CollapseOverSeeds.of(name, runs) for name, runs in by_name(models).items()]
        return cls(models=models, summaries=summaries, roles=roles, config=config or {})

    def figures(self, out_dir: Path) -> list[Path]:
        return [
            histogram_figure(self.models, out_dir / "collapse_hist.png"),
            over_steps_figure(self.models, out_dir / "collapse_over_steps.png"),
            examples_figure(self.models, out_dir / "collapse_examples.png"),
        ]


def run(config: CollapseConfig) -> CollapseResult:
    """Measure a checkpoint, or train each model (same batches, same seed) and measure every K steps.

    >>> result = run(CollapseConfig(models=["packnet_b"], steps=20, every=5, width=0.125,
    ...                             input_size=(64, 96), device="cpu"))          # doctest: +SKIP
    >>> result.save("runs/collapse")                                            # doctest: +SKIP
    """
    config.validate()
    if config.checkpoint is not None:
        return measure_checkpoint(config)

    def one(cfg: CollapseConfig) -> CollapseResult:
        seed_everything(cfg.seed)
        trackers = train_with_hook(cfg, lambda: CollapseTracker(every=cfg.every, n_images=cfg.n_images), "collapse")
        models = [t.result(f"trained {t.steps_trained} steps from initialisation") for t in trackers]
        return CollapseResult.of(models, cfg.trained_roles(), encode(cfg))

    per_seed = runs_over_seeds(config, one)
    return CollapseResult.of([m for r in per_seed for m in r.models], config.trained_roles(), encode(config))


def measure_checkpoint(config: CollapseConfig) -> CollapseResult:
    """Measure the trained run ``config.checkpoint`` once (at its step) and score it on held-out images."""
    device = resolve_device(config.device)
    seed_everything(config.seed)
    assert config.checkpoint is not None
    found = resolve_checkpoint(config.checkpoint)
    model, run_config = load_checkpoint(found, device)
    run_cfg = TrainConfig.from_json(run_config)
    batch = held_out_samples(run_cfg, config.n_images).to(device)
    step = found.step
    if step is None:  # a .safetensors file not written by `probe train`: the history needs a step
        raise ProbeError(f"--checkpoint {config.checkpoint}: its weights record no training step (metadata 'step')")
    measured = ModelCollapse.of(
        str(run_cfg.model),
        f"checkpoint {config.checkpoint} (step {step})",
        batch,
        [measure(model, batch, step=step)],
        run_cfg.seed,
        score_model(model, run_cfg, config.eval_images),
    )
    roles = assign_roles([str(run_cfg.model)], options={str(run_cfg.model): run_cfg.model_options})
    return CollapseResult.of([measured], roles, encode(config))


# -- figures ------------------------------------------------------------------------------------


def histogram_figure(models: list[ModelCollapse], path: Path) -> Path:
    """Histogram of the final per-image std ratios, one colour per model; dashed line at the threshold."""
    import pandas as pd

    from probe.plotting import plt, save_figure, sns

    rows = [
        {"model": m.name, "std(pred) / std(gt)": r}
        for m in models
        for r, ok in zip(m.final.std_ratio, m.final.defined)
        if ok
    ]
    fig, ax = plt.subplots(figsize=(7, 4))
    if rows:
        frame = pd.DataFrame(rows)
        frame["log10 std ratio"] = np.log10(frame["std(pred) / std(gt)"].clip(lower=1e-6))
        sns.histplot(frame, x="log10 std ratio", hue="model", bins=20, element="step", ax=ax)
    ax.axvline(math.log10(COLLAPSE_BELOW), ls="--", c="grey")
    ax.set(
        xlabel="log10 of std(prediction) / std(ground truth) per image (dashed: collapse threshold)",
        ylabel="images",
        title="How much of each image's depth variation the prediction keeps",
    )
    return save_figure(fig, path)


def over_steps_figure(models: list[ModelCollapse], path: Path) -> Path:
    """Median std ratio, collapsed share, mean Pearson r and mean R^2 against the training step."""
    import pandas as pd

    from probe.plotting import plt, save_figure, sns

    frame = pd.DataFrame([{"model": m.name, **asdict(row)} for m in models for row in m.history])
    panels = [
        ("median_std_ratio", "median std(pred) / std(gt)"),
        ("collapsed_share", "share of collapsed images"),
        ("mean_pearson", "mean Pearson r (pred, gt)"),
        ("median_r2", "median R² vs per-image mean"),
    ]
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
    """Image, ground truth and prediction (shared colour scale) for each model's most collapsed images.

    Models read back from JSON carry no images or predictions and are left out.
    """

    from probe.plotting import plt, save_figure

    rows, named = [], set()
    for m in models:
        if m.batch is None or m.final_pred is None or m.name in named:  # each model's first seed
            continue
        named.add(m.name)
        ratios = np.asarray(m.final.std_ratio, dtype=np.float64)
        order = [i for i in np.argsort(np.where(np.isfinite(ratios), ratios, np.inf)) if np.isfinite(ratios[i])]
        rows += [(m, m.batch, m.final_pred, int(i)) for i in order[:per_model]]
    fig, axes = plt.subplots(max(1, len(rows)), 3, figsize=(10, 2.6 * max(1, len(rows))), squeeze=False)
    for (m, batch, final_pred, i), row in zip(rows, axes):
        valid = batch.valid[i, 0].cpu().numpy()
        gt = np.where(valid, batch.depth[i, 0].cpu().numpy(), np.nan)
        pred = final_pred[i, 0].numpy()
        lo, hi = np.nanmin(gt), np.nanmax(gt)
        row[0].imshow(batch.image[i, :3].permute(1, 2, 0).cpu().clamp(0, 1).numpy())
        row[1].imshow(gt, cmap="magma_r", vmin=lo, vmax=hi)
        shown = row[2].imshow(pred, cmap="magma_r", vmin=lo, vmax=hi)
        row[0].set_title(f"{m.name}: {m.images[i]}", fontsize=8)
        row[1].set_title("ground truth (m)", fontsize=8)
        row[2].set_title(f"prediction: std ratio {m.final.std_ratio[i]:.3f}, r {m.final.pearson[i]:.2f}", fontsize=8)
        fig.colorbar(shown, ax=row[2], fraction=0.046)
    for ax in axes.flat:
        ax.axis("off")
    return save_figure(fig, path)


# -- the report: the question this analysis answers, and its section --------------------------------------

COLLAPSE_QUESTION = "Does the prediction collapse to the mean?"
COLLAPSE_ANSWER_RULE = (
    f"{COLLAPSE_RULE} Yes when a judged model under study is 'collapsed'; no when every judged model under study "
    "is 'not collapsed' or 'scale'; inconclusive otherwise. The baselines are shown for reference."
)


def collapse_question(roles: Roles) -> str:
    """The seed's wording for its own comparison; else the question names the models under study."""
    if roles.seed_comparison:
        return COLLAPSE_QUESTION
    if roles.plural(UNDER_STUDY):
        return f"Do {roles.phrase(UNDER_STUDY)}'s predictions collapse to the mean?"
    return f"Does {roles.phrase(UNDER_STUDY)}'s prediction collapse to the mean?"


@QUESTIONS.register("collapse", description=COLLAPSE_QUESTION, order=20)
def prediction_collapses(results: Results) -> Answer | None:
    doc = results.first(CollapseResult)
    if doc is None or not doc.summaries:
        return None
    roles, question = doc.roles, collapse_question(doc.roles)
    rule = with_controls(COLLAPSE_ANSWER_RULE, "collapse")
    judged, excluded = gate(doc.summaries, roles)
    calls = {s.name: collapse_call(s.collapsed_share, s.scale_flagged_share) for s in judged}
    evidence = [
        {
            **model_columns(s, roles),
            "collapsed share": shown(s.collapsed_share),
            "scale-flagged share": shown(s.scale_flagged_share),
            "median std ratio": shown(s.median_std_ratio),
            "verdict": verdict_cell(s, collapse_call(s.collapsed_share, s.scale_flagged_share).verdict),
        }
        for s in doc.summaries
    ]
    left_out = excluded_sentence(excluded)
    if not any(roles.under_study(s.name) for s in doc.summaries):
        sentence = "No model under study was measured, so the question cannot be answered from these runs."
        return Answer(question, "inconclusive", sentence, rule, evidence)
    if not calls:
        sentence = (
            "No verdict: no model under study was shown to learn, and an untrained prediction says nothing about a "
            f"trained one.{left_out}"
        )
        return Answer(question, "inconclusive", sentence, rule, evidence)
    found = {c.verdict for c in calls.values()}
    parts = "; ".join(f"{roles.display(name)} {c.sentence}" for name, c in calls.items())
    if "collapsed" in found:
        verdict, lead = "yes", "Yes"
    elif found <= {"not collapsed", "scale"}:
        verdict, lead = "no", "No"
    else:
        verdict, lead = "inconclusive", "Inconclusive"
    return Answer(question, verdict, f"{lead}: {parts}.{left_out}", rule, evidence)


@SECTIONS.register("collapse", description=COLLAPSE_QUESTION, needs=(CollapseResult,), order=40)
def collapse_section(results: Results) -> Section | None:
    import pandas as pd

    from probe.plotting import IntervalPanel, interval_figure, plt, sns

    doc = results.first(CollapseResult)
    rows = [
        {
            "model": m.name,
            "seed": m.seed,
            "step": h.step,
            "median std ratio": h.median_std_ratio,
            "collapsed share": h.collapsed_share,
        }
        for m in (doc.models if doc else [])
        for h in m.history
    ]
    extra: list[Block] = []
    if doc is not None and doc.summaries:
        fig = interval_figure(
            [
                IntervalPanel(
                    [(s.name, s.name, s.collapsed_share) for s in doc.summaries],
                    "share of collapsed images (dashed: the rule's 0.5)",
                    0.5,
                ),
                IntervalPanel(
                    [(s.name, s.name, s.median_std_ratio) for s in doc.summaries],
                    "median std(pred) / std(gt) (dashed: collapse threshold)",
                    COLLAPSE_BELOW,
                    log=True,
                ),
            ]
        )
        extra.append(
            figure_from_matplotlib(
                fig, "Collapse at the last measurement: mean and 95% interval per model (x: each seed)", "intervals"
            )
        )
    if rows:
        df = pd.DataFrame(rows)
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        sns.lineplot(df, x="step", y="median std ratio", hue="model", marker="o", errorbar=("pi", 100), ax=axes[0])
        axes[0].axhline(COLLAPSE_BELOW, ls="--", c="grey")
        axes[0].set(xlabel="training step", ylabel="prediction std / ground-truth std")
        sns.lineplot(df, x="step", y="collapsed share", hue="model", marker="o", errorbar=("pi", 100), ax=axes[1])
        axes[1].set(xlabel="training step", ylabel="share of collapsed images", ylim=(-0.05, 1.05))
        extra.append(
            figure_from_matplotlib(
                fig, "Collapse statistics over training: mean over seeds, band = range over seeds", "steps"
            )
        )
    extra += embedded_figures(results, CollapseResult, "collapse_*.png", "Collapse analysis figure")
    return answer_section("collapse", COLLAPSE_QUESTION, results, extra)
