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
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from analyses.base import AnalysisResult
from analyses.gradients import TrainingRuns, train_with_hook
from probe.data import get_dataset
from probe.errors import ProbeError
from probe.losses import build_loss, dataset_loss_options
from probe.training import StepStats, TrainConfig, TrainHook, make_loader
from probe.training.config import PRECISIONS


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
            noise_scale_from_norms(self._ema_small, self._ema_big, self.b_small, self.b_big).noise_scale)

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


def loss_statistics(losses: Iterable[float]) -> dict[str, float]:
    """Spread of per-batch losses, over the whole run (``all``) and its second half.

    ``std``/``cv`` include the downward trend of the loss; ``std_detrended`` is
    ``std(x[t] - x[t-1]) / sqrt(2)``, the batch-to-batch scatter alone (for a slow
    trend plus independent noise of std s it estimates s), and ``cv_detrended``
    divides it by the mean.
    """
    arr = np.asarray([x for x in losses if math.isfinite(x)], dtype=np.float64)

    def _stats(a: np.ndarray) -> dict[str, float]:
        if a.size == 0:
            return {"n": 0, "mean": math.nan, "std": math.nan, "cv": math.nan, "std_detrended": math.nan,
                    "cv_detrended": math.nan}
        mean = float(a.mean())
        std = float(a.std(ddof=1)) if a.size > 1 else 0.0
        jitter = float(np.diff(a).std(ddof=1) / math.sqrt(2.0)) if a.size > 2 else math.nan
        return {"n": int(a.size), "mean": mean, "std": std, "cv": std / mean if mean else math.nan,
                "std_detrended": jitter, "cv_detrended": jitter / mean if mean else math.nan}

    return {"all": _stats(arr), "second_half": _stats(arr[arr.size // 2:])}


# -- measuring during training -----------------------------------------------------------------

class NoiseProbe(TrainHook):
    """Records every step's loss and, every ``every`` steps, one gradient-norm measurement.

    Measurements use their own batches (a second loader over the run's training
    split, seeded ``seed + 1``) at the current weights, in training mode, right
    after the optimiser step.  They leave no trace on the run: gradients are
    cleared, buffers (BatchNorm statistics) restored and the RNG forked.
    """

    def __init__(self, small_batch: int = 2, big_batch: int = 8, every: int = 1,
                 out_dir: str | Path | None = None) -> None:
        if every < 1:
            raise ProbeError(f"--every: expected a positive integer, got {every}")
        noise_scale_from_norms(1.0, 0.0, small_batch, big_batch)  # validates the pair
        if big_batch % small_batch:
            raise ProbeError(f"--big-batch {big_batch}: expected a multiple of --small-batch {small_batch}")
        self.small_batch, self.big_batch, self.every = small_batch, big_batch, every
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.estimator = NoiseScaleEstimator(small_batch, big_batch)
        self.name = ""
        self.train_batch = 0
        self.loss_steps: list[int] = []
        self.losses: list[float] = []
        self.measured_steps: list[int] = []

    def on_start(self, model: nn.Module, config: TrainConfig) -> None:
        self.name, self.train_batch = str(config.model), int(config.batch_size)
        dataset = get_dataset(config.dataset, config.data_root, split=config.split, input_size=config.input_size,
                              augment=config.augment, seed=config.seed + 1)
        if len(dataset) < self.big_batch:
            raise ProbeError(f"--big-batch {self.big_batch}: the {config.dataset!r} {config.split} split has only "
                             f"{len(dataset)} items")
        self._loader = make_loader(dataset, self.big_batch, seed=config.seed + 1, shuffle=True)
        self._epoch = 0
        self._batches = iter(self._loader)
        self._device = next(model.parameters()).device
        self._autocast = PRECISIONS[config.precision or "fp32"]
        self._loss = partial(build_loss(config.loss, **dataset_loss_options(config.loss, dataset.info)),
                             output_space=model.output_space, max_depth=dataset.info.max_depth,
                             scales=config.loss_scales)

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
        if step % self.every:
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

    def result(self) -> "ModelNoise":
        if not self.losses:
            raise ProbeError("noise: the probe saw no training step (was it passed to train()?)")
        return ModelNoise(name=self.name, train_batch=self.train_batch, estimator=self.estimator,
                          measured_steps=list(self.measured_steps), loss_steps=list(self.loss_steps),
                          losses=list(self.losses))

    def save(self, out_dir: str | Path | None = None) -> list[Path]:
        """Write ``noise.json`` and ``noise.png`` for this run into ``out_dir`` (or the probe's folder)."""
        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise ProbeError("noise: no output folder given to save the measurements")
        return NoiseResult(models=[self.result()], config={"every": self.every, "small_batch": self.small_batch,
                                                           "big_batch": self.big_batch}).save(target)


@dataclass
class ModelNoise:
    """One model's measurements: squared gradient norms at two batch sizes, and per-batch losses."""

    name: str
    train_batch: int
    estimator: NoiseScaleEstimator
    measured_steps: list[int]
    loss_steps: list[int]
    losses: list[float]

    def to_json(self) -> dict[str, Any]:
        est = self.estimator
        overall = est.estimate()
        late = est.estimate(start=len(est.small) // 2)
        loss = loss_statistics(self.losses)
        return {
            "name": self.name, "b_small": est.b_small, "b_big": est.b_big, "train_batch_size": self.train_batch,
            "measurements": len(est.small),
            "b_simple": overall.noise_scale, "b_simple_second_half": late.noise_scale,
            "b_simple_over_train_batch": overall.noise_scale / self.train_batch,
            "grad_sq_norm": overall.grad_sq, "trace_sigma": overall.trace_sigma,
            "loss": loss["all"], "loss_second_half": loss["second_half"],
            "per_measurement": {"step": self.measured_steps, "small_sq": est.small, "big_sq": est.big,
                                "b_simple_ema": est.ema_history},
            "per_step_loss": {"step": self.loss_steps, "loss": self.losses},
        }


@dataclass
class NoiseConfig(TrainingRuns):
    """``probe noise``: train each model ``steps`` steps, measuring gradient noise every ``every`` steps."""

    small_batch: int = 2
    big_batch: int = 8
    every: int = 1
    out: Path = Path("runs/noise")


@dataclass
class NoiseResult(AnalysisResult):
    """Per-model noise scale and loss spread; ``save(DIR)`` writes ``noise.json`` and ``noise.png``."""

    name = "noise"
    models: list[ModelNoise]
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"method": ("B_simple = tr(Sigma)/|G|^2 from squared gradient norms at two batch sizes, each "
                           "estimator averaged over all measurements before dividing (McCandlish et al. 2018, "
                           "appendix A); loss spread = std / mean of the per-batch training loss"),
                "config": self.config, "models": [m.to_json() for m in self.models]}

    def figures(self, out_dir: Path) -> list[Path]:
        return [noise_figure(self.models, out_dir / "noise.png")]


def run(config: NoiseConfig) -> NoiseResult:
    """Train each model (same seed, same batches) with a :class:`NoiseProbe` attached.

    >>> result = run(NoiseConfig(models=["packnet_b", "densedepth"], width=0.125, input_size=(64, 96),
    ...                          steps=20, device="cpu"))                         # doctest: +SKIP
    >>> result.save("runs/noise")                                                # doctest: +SKIP
    """
    NoiseProbe(config.small_batch, config.big_batch, config.every)  # bad flags fail before any training
    probes = train_with_hook(config, lambda: NoiseProbe(config.small_batch, config.big_batch, config.every), "noise")
    return NoiseResult(models=[p.result() for p in probes], config=asdict(config))


def noise_figure(models: Sequence[ModelNoise], path: Path) -> Path:
    """Per-batch loss against step, running B_simple (EMA) against step, and the headline numbers."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from probe.plotting import save_figure

    fig, axes = plt.subplots(1, 4, figsize=(22, 4.2))
    order = {"hue_order": [m.name for m in models]}
    losses = pd.DataFrame([{"model": m.name, "step": s, "loss": v} for m in models
                           for s, v in zip(m.loss_steps, m.losses)])
    sns.lineplot(losses, x="step", y="loss", hue="model", ax=axes[0], alpha=0.8, **order)
    axes[0].set(xlabel="training step", ylabel="per-batch training loss", title="per-batch loss")
    ema = pd.DataFrame([{"model": m.name, "step": s, "B_simple (EMA)": v} for m in models
                        for s, v in zip(m.measured_steps, m.estimator.ema_history) if math.isfinite(v) and v > 0])
    if not ema.empty:
        sns.lineplot(ema, x="step", y="B_simple (EMA)", hue="model", ax=axes[1], legend=False, **order)
        axes[1].set_yscale("log")
    axes[1].set(xlabel="training step", ylabel="running B_simple (log)", title="gradient noise scale, running (EMA)")
    docs = [(m.name, m.to_json()) for m in models]
    scale = pd.DataFrame([{"model": name, "B_simple": d["b_simple"]} for name, d in docs]).dropna()
    scale = scale[scale["B_simple"] > 0]
    if not scale.empty:
        sns.barplot(scale, x="model", y="B_simple", hue="model", ax=axes[2], legend=False, **order)
        axes[2].set_yscale("log")
    for batch in sorted({m.train_batch for m in models}):
        axes[2].axhline(batch, ls="--", c="grey")
    axes[2].set(xlabel="", ylabel="B_simple (log)", title="noise scale (dashed: training batch size)")
    spread = pd.DataFrame([{"model": name, "part": part, "loss CV (detrended)": d[key]["cv_detrended"]}
                           for name, d in docs for part, key in (("whole run", "loss"),
                                                                  ("second half", "loss_second_half"))]).dropna()
    if not spread.empty:
        sns.barplot(spread, x="part", y="loss CV (detrended)", hue="model", ax=axes[3], **order)
    axes[3].set(xlabel="", ylabel="batch-to-batch std / mean", title="per-batch loss scatter")
    fig.subplots_adjust(wspace=0.3)
    return save_figure(fig, path)
