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
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

from probe.errors import ProbeError


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
    """Mean, std and coefficient of variation of per-batch losses, whole run and second half."""
    arr = np.asarray([x for x in losses if math.isfinite(x)], dtype=np.float64)

    def _stats(a: np.ndarray) -> dict[str, float]:
        if a.size == 0:
            return {"n": 0, "mean": math.nan, "std": math.nan, "cv": math.nan}
        mean = float(a.mean())
        std = float(a.std(ddof=1)) if a.size > 1 else 0.0
        return {"n": int(a.size), "mean": mean, "std": std, "cv": std / mean if mean else math.nan}

    return {"all": _stats(arr), "second_half": _stats(arr[arr.size // 2:])}
