"""How noisy are the batches?  Gradient noise scale and per-batch loss variance.

The seed saw that "the variance between individual batches remains high" for
PackNet.  Two numbers make that comparable across models and batch sizes:

**Gradient noise scale** ``B_simple = tr(Sigma) / |G|^2`` (McCandlish et al. 2018,
"An Empirical Model of Large-Batch Training", appendix A).  ``G`` is the true
gradient and ``Sigma`` the per-example gradient covariance; a mini-batch of size
``B`` has ``E|G_B|^2 = |G|^2 + tr(Sigma) / B``.  Measuring ``|G_B|^2`` at two batch
sizes gives unbiased estimates of both terms::

    |G|^2     ~ (B_big |G_big|^2 - B_small |G_small|^2) / (B_big - B_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1/B_small - 1/B_big)

Both are averaged over many measurements *before* dividing (the ratio of
averages is far less biased than the average of per-step ratios).  When
``B_simple`` is much larger than the training batch (4 in the seed), each step's
gradient is dominated by noise.

**Per-batch loss variance**: mean, std and coefficient of variation of the
training loss per batch, over the whole run and over its second half (after
the first rapid drop the seed describes).

>>> est = NoiseScaleEstimator(b_small=2, b_big=8)
>>> est.update(small_sq=3.0, big_sq=1.5)
>>> round(est.noise_scale, 3)   # tr(Sigma)=4.0, |G|^2=1.0
4.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from analyses.probes import TRAIN_PROBES, TrainingProbe, by_name, learned_over_runs
from analyses.training_runs import TrainingRuns, runs_over_seeds, train_with_hook
from probe.data import get_dataset
from probe.errors import ProbeError
from probe.heldout import HeldOutSummary, Learned
from probe.limits import MAX_BATCH_SIZE, check_count
from probe.options import option, out_option
from probe.report.answers import QUESTIONS, Answer, excluded_sentence, finite, gate, model_columns, shown, with_controls
from probe.report.collect import Results
from probe.report.document import Block, Section, figure_from_matplotlib
from probe.report.sections import SECTIONS, answer_section, embedded_figures
from probe.results import Result, register_result
from probe.roles import BASELINE, UNDER_STUDY, Roles
from probe.rules import SCATTER_RULE, scatter_comparison
from probe.schema import encode
from probe.stats import Estimate, seed_estimate
from probe.training import StepStats, TrainConfig, make_loader
from probe.training.config import PRECISIONS
from probe.training.objective import supervised_loss


@dataclass
class NoiseEstimate:
    """Unbiased estimates from averaged squared gradient norms at two batch sizes."""

    b_small: int
    b_big: int
    small_sq: float
    big_sq: float
    grad_sq: float
    trace_sigma: float
    noise_scale: float


def check_batch_sizes(b_small: int, b_big: int) -> None:
    """The two batch sizes of the estimator: ``0 < b_small < b_big``, ``b_big`` a multiple of ``b_small``."""
    if not 0 < b_small < b_big:
        raise ProbeError(f"--small-batch/--big-batch: expected 0 < small < big, got {b_small} and {b_big}")
    if b_big % b_small:
        raise ProbeError(f"--big-batch {b_big}: expected a multiple of --small-batch {b_small}")


def noise_scale_from_norms(small_sq: float, big_sq: float, b_small: int, b_big: int) -> NoiseEstimate:
    """``|G_small|^2, |G_big|^2`` (averaged) -> estimates of ``|G|^2``, ``tr(Sigma)`` and ``B_simple``.

    ``noise_scale`` is NaN when the ``|G|^2`` estimate is not positive (too few
    measurements for the noise level: the true gradient is not resolved yet).
    """
    if not 0 < b_small < b_big:
        raise ProbeError(f"--small-batch/--big-batch: expected 0 < small < big, got {b_small} and {b_big}")
    grad_sq = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace_sigma = (small_sq - big_sq) / (1.0 / b_small - 1.0 / b_big)
    noise_scale = trace_sigma / grad_sq if grad_sq > 0 else math.nan
    return NoiseEstimate(b_small, b_big, small_sq, big_sq, grad_sq, trace_sigma, noise_scale)


@dataclass
class NoiseScaleEstimator:
    """Accumulates ``|G_small|^2`` / ``|G_big|^2`` measurements; mean and EMA before dividing."""

    b_small: int
    b_big: int
    ema_decay: float = 0.9
    small: list[float] = field(default_factory=list)
    big: list[float] = field(default_factory=list)
    _ema_small: float = math.nan
    _ema_big: float = math.nan
    ema_history: list[float] = field(default_factory=list)

    def update(self, small_sq: float, big_sq: float) -> None:
        self.small.append(float(small_sq))
        self.big.append(float(big_sq))
        if math.isnan(self._ema_small):
            self._ema_small, self._ema_big = float(small_sq), float(big_sq)
        else:
            d = self.ema_decay
            self._ema_small = d * self._ema_small + (1 - d) * float(small_sq)
            self._ema_big = d * self._ema_big + (1 - d) * float(big_sq)
        self.ema_history.append(
            noise_scale_from_norms(self._ema_small, self._ema_big, self.b_small, self.b_big).noise_scale
        )

    def estimate(self, start: int = 0) -> NoiseEstimate:
        """Estimate from the mean of measurements ``start:`` (all by default)."""
        small, big = self.small[start:], self.big[start:]
        if not small:
            raise ProbeError("gradient noise: no measurements were taken (increase --steps)")
        return noise_scale_from_norms(float(np.mean(small)), float(np.mean(big)), self.b_small, self.b_big)

    @property
    def noise_scale(self) -> float:
        return self.estimate().noise_scale


def gradient_sq_norm(params: Sequence[nn.Parameter]) -> torch.Tensor:
    """Squared L2 norm of all populated ``.grad`` tensors, as a 0-d tensor (no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        raise ProbeError("gradient noise: the loss produced no gradients for any parameter")
    return torch.stack(torch._foreach_norm(grads)).square().sum()


BatchLoss = Callable[[nn.Module, dict], torch.Tensor]


def _slice_batch(batch: dict, start: int, stop: int) -> dict:
    return {k: (v[start:stop] if isinstance(v, (torch.Tensor, list, tuple)) else v) for k, v in batch.items()}


def measure_gradient_norms(model: nn.Module, batch_loss: BatchLoss, batch: dict, b_small: int) -> tuple[float, float]:
    """One measurement: mean ``|G_small|^2`` over the ``B/b_small`` chunks of ``batch``, and ``|G_big|^2``.

    ``batch`` holds ``B`` items (``B`` a multiple of ``b_small``); ``batch_loss(model, batch)``
    returns the scalar mean loss of a batch.  Gradients are left cleared (``None``).
    """
    b_big = len(batch["image"])
    if b_big % b_small or b_big <= b_small:
        raise ProbeError(f"--big-batch {b_big}: expected a multiple of --small-batch {b_small} larger than it")
    params = [p for p in model.parameters() if p.requires_grad]
    small: list[torch.Tensor] = []
    for start in range(0, b_big, b_small):
        model.zero_grad(set_to_none=True)
        batch_loss(model, _slice_batch(batch, start, start + b_small)).backward()
        small.append(gradient_sq_norm(params))
    model.zero_grad(set_to_none=True)
    batch_loss(model, batch).backward()
    big = gradient_sq_norm(params)
    model.zero_grad(set_to_none=True)
    values = torch.stack([torch.stack(small).mean(), big]).tolist()  # the one host sync
    return values[0], values[1]


@dataclass
class LossSpread:
    """Spread of per-batch losses: ``std``/``cv`` include the loss's trend, the detrended ones do not."""

    n: int
    mean: float
    std: float
    cv: float
    std_detrended: float
    cv_detrended: float

    @classmethod
    def of(cls, a: np.ndarray) -> LossSpread:
        if a.size == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        mean = float(a.mean())
        std = float(a.std(ddof=1)) if a.size > 1 else 0.0
        jitter = float(np.diff(a).std(ddof=1) / math.sqrt(2.0)) if a.size > 2 else math.nan
        return cls(
            int(a.size), mean, std, std / mean if mean else math.nan, jitter, jitter / mean if mean else math.nan
        )


def loss_statistics(losses: Iterable[float]) -> dict[str, LossSpread]:
    """Spread of per-batch losses, over the whole run (``all``) and its second half.

    ``std``/``cv`` include the downward trend of the loss; ``std_detrended`` is
    ``std(x[t] - x[t-1]) / sqrt(2)``, the batch-to-batch scatter alone (for a slow
    trend plus independent noise of std s it estimates s), and ``cv_detrended``
    divides it by the mean.
    """
    arr = np.asarray([x for x in losses if math.isfinite(x)], dtype=np.float64)
    return {"all": LossSpread.of(arr), "second_half": LossSpread.of(arr[arr.size // 2 :])}


# -- measuring during training -----------------------------------------------------------------


class NoiseProbe(TrainingProbe):
    """Records every step's loss and, every ``every`` steps, one gradient-norm measurement.

    Measurements use their own batches (a second loader over the run's training
    split, seeded ``seed + 1``) at the current weights, in training mode, right
    after the optimiser step.  They leave no trace on the run: gradients are
    cleared, buffers (BatchNorm statistics) restored and the RNG forked.
    """

    analysis = "noise"

    def __init__(
        self,
        small_batch: int = 2,
        big_batch: int = 8,
        every: int = 1,
        out_dir: str | Path | None = None,
        *,
        flag: str = "--every",
    ) -> None:
        super().__init__(every, out_dir, flag=flag)
        check_batch_sizes(small_batch, big_batch)
        self.small_batch, self.big_batch = small_batch, big_batch
        self.estimator = NoiseScaleEstimator(small_batch, big_batch)
        self.train_batch = 0
        self.loss_steps: list[int] = []
        self.losses: list[float] = []
        self.measured_steps: list[int] = []

    def on_start(self, model: nn.Module, config: TrainConfig) -> None:
        super().on_start(model, config)
        self.train_batch = int(config.batch_size)
        dataset = get_dataset(
            config.dataset,
            config.data_root,
            split=config.split,
            input_size=config.input_size,
            augment=config.augment,
            seed=config.seed + 1,
        )
        if len(dataset) < self.big_batch:
            raise ProbeError(
                f"--big-batch {self.big_batch}: the {config.dataset!r} {config.split} split has only "
                f"{len(dataset)} items"
            )
        self._loader = make_loader(dataset, self.big_batch, seed=config.seed + 1, shuffle=True)
        self._epoch = 0
        self._batches = iter(self._loader)
        self._device = next(model.parameters()).device
        self._autocast = PRECISIONS[config.precision or "fp32"]
        self._loss = supervised_loss(config, model, dataset)

    def _next_batch(self) -> dict:
        batch = next(self._batches, None)
        while batch is None or len(batch["image"]) < self.big_batch:
            self._epoch += 1
            self._loader.set_epoch(self._epoch)
            self._batches = iter(self._loader)
            batch = next(self._batches, None)
        return batch

    def _batch_loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        dev = self._device
        with torch.autocast(dev.type, dtype=self._autocast, enabled=self._autocast is not None):
            outputs = model(batch["image"].to(dev))
        return self._loss(outputs, batch["depth"].to(dev), batch["valid"].to(dev)).total

    def after_step(self, step: int, model: nn.Module, stats: StepStats) -> None:
        self.loss_steps.append(step)
        self.losses.append(float(stats.loss))
        if not self.due(step):
            return
        buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        devices = [self._device] if self._device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            small, big = measure_gradient_norms(model, self._batch_loss, self._next_batch(), self.small_batch)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        self.estimator.update(small, big)
        self.measured_steps.append(step)

    def result(self) -> ModelNoise:
        if not self.losses:
            raise ProbeError("noise: the probe saw no training step (was it passed to train()?)")
        return ModelNoise.of(
            str(self.name),
            self.train_batch,
            self.estimator,
            list(self.measured_steps),
            list(self.loss_steps),
            list(self.losses),
            self.seed,
            self.held_out,
        )

    def to_result(self) -> NoiseResult:
        return NoiseResult.of(
            [self.result()],
            self.roles(),
            config={"every": self.every, "small_batch": self.small_batch, "big_batch": self.big_batch},
        )


@TRAIN_PROBES.register("noise", description="gradient noise scale (batch sizes 2 and 8) and loss spread -> noise.json")
def noise_probe(every: int, out_dir: Path) -> NoiseProbe:
    return NoiseProbe(every=every, out_dir=out_dir, flag="--probe-every")


@dataclass
class NoiseMeasurements:
    """Every gradient-norm measurement: its step, ``|G_small|^2``, ``|G_big|^2`` and the running B_simple."""

    step: list[int]
    small_sq: list[float]
    big_sq: list[float]
    b_simple_ema: list[float]


@dataclass
class StepLosses:
    """The training loss of every step."""

    step: list[int]
    loss: list[float]


@dataclass
class ModelNoise:
    """One model's noise scale (whole run and second half) and per-batch loss spread on one seed, with the raw
    series, and the run's held-out score (did it learn?)."""

    name: str
    seed: int
    b_small: int
    b_big: int
    train_batch_size: int
    measurements: int
    b_simple: float
    b_simple_second_half: float
    b_simple_over_train_batch: float
    grad_sq_norm: float
    trace_sigma: float
    loss: LossSpread
    loss_second_half: LossSpread
    per_measurement: NoiseMeasurements
    per_step_loss: StepLosses
    held_out: HeldOutSummary | None  # None: not measured

    @classmethod
    def of(
        cls,
        name: str,
        train_batch: int,
        est: NoiseScaleEstimator,
        measured_steps: list[int],
        loss_steps: list[int],
        losses: list[float],
        seed: int = 0,
        held_out: HeldOutSummary | None = None,
    ) -> ModelNoise:
        """Estimate from the measurements: means before dividing, over all of them and their second half."""
        overall = est.estimate()
        late = est.estimate(start=len(est.small) // 2)
        spread = loss_statistics(losses)
        return cls(
            name,
            seed,
            est.b_small,
            est.b_big,
            train_batch,
            len(est.small),
            overall.noise_scale,
            late.noise_scale,
            overall.noise_scale / train_batch,
            overall.grad_sq,
            overall.trace_sigma,
            spread["all"],
            spread["second_half"],
            NoiseMeasurements(measured_steps, list(est.small), list(est.big), list(est.ema_history)),
            StepLosses(loss_steps, losses),
            held_out,
        )


@dataclass
class NoiseOverSeeds:
    """One model over its seeds: the detrended per-batch loss CV and B_simple with Student t intervals."""

    name: str
    seeds: list[int]
    loss_cv: Estimate | None  # detrended (plain where a run was too short); None: missing on a seed
    b_simple: Estimate | None
    learned: Learned | None

    @classmethod
    def of(cls, name: str, runs: list[ModelNoise]) -> NoiseOverSeeds:
        return cls(
            name,
            [r.seed for r in runs],
            seed_estimate([loss_cv(r) for r in runs]),
            seed_estimate([r.b_simple for r in runs]),
            learned_over_runs(runs),
        )


@dataclass
class NoiseConfig(TrainingRuns):
    """``probe noise``: train each model ``steps`` steps, measuring gradient noise every ``every`` steps."""

    small_batch: int = option(2, help="B_small of the noise-scale estimator")
    big_batch: int = option(8, help="B_big (a multiple of B_small)")
    every: int = option(1, help="measure the gradient noise every K steps")
    out: Path = out_option(Path("runs/noise"))

    def validate(self) -> None:
        check_count("--big-batch", self.big_batch, MAX_BATCH_SIZE)
        check_batch_sizes(self.small_batch, self.big_batch)
        super().validate()
        check_count("--every", self.every, self.steps, "at least one measurement within --steps")

    def largest_batch(self) -> tuple[str, int]:
        """Each measurement runs forward and backward on a --big-batch batch."""
        return ("--big-batch", self.big_batch) if self.big_batch > self.batch_size else super().largest_batch()


METHOD = (
    "B_simple = tr(Sigma)/|G|^2 from squared gradient norms at two batch sizes, each estimator averaged "
    "over all measurements before dividing (McCandlish et al. 2018, appendix A); loss spread = std / mean "
    "of the per-batch training loss"
)


@register_result
@dataclass
class NoiseResult(Result):
    """Noise scale and loss spread per model and seed, and each model over its seeds.

    ``save(DIR)`` writes ``noise.json`` and ``noise.png``."""

    name: ClassVar[str] = "noise"
    schema_version: ClassVar[int] = 3  # 3: held-out scores and learned verdicts with the mean depth map's fields
    models: list[ModelNoise]  # every (model, seed) run
    summaries: list[NoiseOverSeeds]
    roles: Roles  # which models are under study and which are baselines
    config: dict[str, Any] = field(default_factory=dict)  # the analysis config, or the probe's settings
    method: str = METHOD

    @classmethod
    def of(cls, models: list[ModelNoise], roles: Roles, config: dict[str, Any] | None = None) -> NoiseResult:
        summaries = [NoiseOverSeeds.of(name, runs) for name, runs in by_name(models).items()]
        return cls(models=models, summaries=summaries, roles=roles, config=config or {})

    def figures(self, out_dir: Path) -> list[Path]:
        return [noise_figure(self.models, out_dir / "noise.png")]


def run(config: NoiseConfig) -> NoiseResult:
    """Train each model (same seed, same batches) with a :class:`NoiseProbe` attached.

    >>> result = run(NoiseConfig(models=["packnet_b", "densedepth"], width=0.125, input_size=(64, 96),
    ...                          steps=20, device="cpu"))                         # doctest: +SKIP
    >>> result.save("runs/noise")                                                # doctest: +SKIP
    """
    config.validate()

    def one(cfg: NoiseConfig) -> NoiseResult:
        probes = train_with_hook(cfg, lambda: NoiseProbe(cfg.small_batch, cfg.big_batch, cfg.every), "noise")
        return NoiseResult.of([p.result() for p in probes], cfg.trained_roles(), encode(cfg))

    per_seed = runs_over_seeds(config, one)
    return NoiseResult.of([m for r in per_seed for m in r.models], config.trained_roles(), encode(config))


def noise_figure(models: Sequence[ModelNoise], path: Path) -> Path:
    """Per-batch loss against step and running B_simple (EMA) against step, one line per (model, seed) run, and
    the headline numbers."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from probe.plotting import log_axis, save_figure

    fig, axes = plt.subplots(1, 4, figsize=(22, 4.2))
    order = {"hue_order": list(dict.fromkeys(m.name for m in models))}  # each model once, however many seeds
    # One line per run (model, seed), never a mean over seeds: the batch-to-batch scatter is what this figure
    # shows, and averaging seeds would smooth it away (seaborn's default interval would also bootstrap every step).
    per_run = {"units": "seed", "estimator": None}
    losses = pd.DataFrame(
        [
            {"model": m.name, "seed": m.seed, "step": s, "loss": v}
            for m in models
            for s, v in zip(m.per_step_loss.step, m.per_step_loss.loss)
        ]
    )
    sns.lineplot(losses, x="step", y="loss", hue="model", ax=axes[0], alpha=0.6, lw=0.8, **per_run, **order)
    positive = not losses.empty and bool((losses["loss"] > 0).all())
    if positive:  # the first steps' loss is tens of times the rest: on a linear axis the scatter would be flat
        log_axis(axes[0])
    axes[0].set(
        xlabel="training step",
        ylabel="per-batch training loss" + (" (log)" if positive else ""),
        title="per-batch loss",
    )
    ema = pd.DataFrame(
        [
            {"model": m.name, "seed": m.seed, "step": s, "B_simple (EMA)": v}
            for m in models
            for s, v in zip(m.per_measurement.step, m.per_measurement.b_simple_ema)
            if math.isfinite(v) and v > 0
        ]
    )
    if not ema.empty:
        sns.lineplot(ema, x="step", y="B_simple (EMA)", hue="model", ax=axes[1], legend=False, **per_run, **order)
        log_axis(axes[1])
    axes[1].set(xlabel="training step", ylabel="running B_simple (log)", title="gradient noise scale, running (EMA)")
    scale = pd.DataFrame([{"model": m.name, "B_simple": m.b_simple} for m in models]).dropna()
    scale = scale[scale["B_simple"] > 0]
    if not scale.empty:
        sns.barplot(scale, x="model", y="B_simple", hue="model", ax=axes[2], legend=False, **order)
        log_axis(axes[2])
    for batch in sorted({m.train_batch_size for m in models}):
        axes[2].axhline(batch, ls="--", c="grey")
    axes[2].set(xlabel="", ylabel="B_simple (log)", title="noise scale (dashed: training batch size)")
    axes[2].tick_params(axis="x", labelrotation=20)  # model names side by side would overlap
    spread = pd.DataFrame(
        [
            {"model": m.name, "part": part, "loss CV (detrended)": loss.cv_detrended}
            for m in models
            for part, loss in (("whole run", m.loss), ("second half", m.loss_second_half))
        ]
    ).dropna()
    if not spread.empty:
        sns.barplot(spread, x="part", y="loss CV (detrended)", hue="model", ax=axes[3], **order)
    axes[3].set(xlabel="", ylabel="batch-to-batch std / mean", title="per-batch loss scatter")
    fig.subplots_adjust(wspace=0.3)
    return save_figure(fig, path)


# -- the report: the question this analysis answers, and its section --------------------------------------

NOISE_QUESTION = "How noisy are the batches?"
NOISE_RULE = (
    f"{SCATTER_RULE} Each model under study is compared with the first judged baseline (in the seed's comparison: "
    "each PackNet model with DenseDepth). Yes (noisier) when a judged model under study is noisier; no when every "
    "one is calmer (partly: some comparable, none noisier); inconclusive otherwise. B_simple is shown as evidence."
)


def noise_question(roles: Roles) -> str:
    """The seed's wording for its own comparison; else the question names the models under study."""
    return NOISE_QUESTION if roles.seed_comparison else f"How noisy are {roles.phrase(UNDER_STUDY)}'s batches?"


def loss_cv(m: ModelNoise) -> float | None:
    """The detrended per-batch loss CV, or the plain one where the run was too short for it (None: neither)."""
    return finite(m.loss.cv_detrended) if finite(m.loss.cv_detrended) is not None else finite(m.loss.cv)


def _cv_by_seed(doc: NoiseResult, name: str) -> dict[int, float | None]:
    return {m.seed: loss_cv(m) for m in doc.models if m.name == name}


@QUESTIONS.register("noise", description=NOISE_QUESTION, order=40)
def batch_noise(results: Results) -> Answer | None:
    doc = results.first(NoiseResult)
    if doc is None or not doc.summaries:
        return None
    roles, question = doc.roles, noise_question(doc.roles)
    rule = with_controls(NOISE_RULE, "noise")
    judged, excluded = gate(doc.summaries)
    evidence = [
        {**model_columns(s, roles), "loss CV (detrended)": shown(s.loss_cv), "B_simple": shown(s.b_simple)}
        for s in doc.summaries
    ]
    left_out = excluded_sentence(excluded)
    reference = next((s for s in judged if roles.role_of(s.name) == BASELINE), None)
    studied = [s for s in judged if roles.under_study(s.name)]
    if reference is None or not studied:
        sentence = "No verdict: a model under study and a baseline that both learned are needed to compare." + left_out
        return Answer(question, "inconclusive", sentence, rule, evidence)
    ref = _cv_by_seed(doc, reference.name)
    calls = {}
    for s in studied:
        own = _cv_by_seed(doc, s.name)
        seeds = [seed for seed in own if seed in ref]
        calls[s.name] = scatter_comparison([own[k] for k in seeds], [ref[k] for k in seeds])
    found = {c.verdict for c in calls.values()}
    parts = "; ".join(
        f"{roles.display(name)} against {roles.display(reference.name)}: {c.sentence}" for name, c in calls.items()
    )
    who = roles.phrase(UNDER_STUDY)
    if "noisier" in found:
        verdict, lead = "yes", f"Yes, {who}'s batches are noisier"
    elif found <= {"calmer"}:
        verdict, lead = "no", f"No, {who}'s batches are calmer"
    elif found <= {"calmer", "comparable"}:
        verdict, lead = "partly", "Comparable"
    else:
        verdict, lead = "inconclusive", "Inconclusive"
    return Answer(question, verdict, f"{lead}: {parts}.{left_out}", rule, evidence)


@SECTIONS.register("noise", description=NOISE_QUESTION, needs=(NoiseResult,), order=60)
def noise_section(results: Results) -> Section | None:
    from probe.plotting import IntervalPanel, interval_figure

    doc = results.first(NoiseResult)
    extra: list[Block] = []
    if doc is not None and doc.summaries:
        fig = interval_figure(
            [
                IntervalPanel([(s.name, s.name, s.loss_cv) for s in doc.summaries], "per-batch loss CV, detrended"),
                IntervalPanel([(s.name, s.name, s.b_simple) for s in doc.summaries], "B_simple", log=True),
            ]
        )
        extra.append(
            figure_from_matplotlib(
                fig,
                "Batch scatter and gradient noise scale: mean and 95% interval over seeds (x: each seed)",
                "intervals",
            )
        )
    extra += embedded_figures(results, NoiseResult, "noise*.png", "Gradient noise scale and per-batch loss")
    return answer_section("noise", NOISE_QUESTION, results, extra)
