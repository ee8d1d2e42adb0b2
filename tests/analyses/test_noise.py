"""The gradient noise scale estimator recovers tr(Sigma)/|G|^2 on problems where it is known."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from analyses.noise import (
    NoiseScaleEstimator,
    loss_statistics,
    measure_gradient_norms,
    noise_scale_from_norms,
)
from probe.errors import ProbeError


def test_estimators_invert_the_expected_batch_norm_law() -> None:
    grad_sq, trace = 2.5, 40.0
    small_sq, big_sq = grad_sq + trace / 2, grad_sq + trace / 16  # E|G_B|^2 = |G|^2 + tr(Sigma)/B
    est = noise_scale_from_norms(small_sq, big_sq, b_small=2, b_big=16)
    assert est.grad_sq == pytest.approx(grad_sq)
    assert est.trace_sigma == pytest.approx(trace)
    assert est.noise_scale == pytest.approx(trace / grad_sq)


def test_estimator_recovers_noise_scale_from_constructed_per_sample_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    dim, b_small, b_big, measurements = 6, 2, 8, 20_000
    mean_grad = torch.tensor([1.0, -0.5, 0.0, 0.25, 0.0, 0.5], dtype=torch.float64)
    factor = torch.randn(dim, dim, generator=gen, dtype=torch.float64) * 0.7
    sigma = factor @ factor.T
    per_sample = mean_grad + torch.randn(measurements, b_big, dim, generator=gen, dtype=torch.float64) @ factor.T
    small = per_sample[:, :b_small].mean(1).square().sum(-1)
    big = per_sample.mean(1).square().sum(-1)
    est = NoiseScaleEstimator(b_small, b_big)
    for s, b in zip(small.tolist(), big.tolist()):
        est.update(s, b)
    truth = float(torch.trace(sigma) / mean_grad.square().sum())
    assert est.estimate().trace_sigma == pytest.approx(float(torch.trace(sigma)), rel=0.03)
    assert est.noise_scale == pytest.approx(truth, rel=0.05)
    assert est.ema_history[-1] == pytest.approx(truth, rel=0.6)  # EMA is a short-memory running view


def _linear_regression(dim: int, noise: float, seed: int):
    torch.manual_seed(seed)
    w_star = torch.randn(dim)
    offset = torch.randn(dim)
    offset = offset / offset.norm()  # |w - w*| = 1
    model = nn.Linear(dim, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_((w_star + offset)[None])

    def batch_loss(m: nn.Module, batch: dict) -> torch.Tensor:
        return 0.5 * (m(batch["image"]).squeeze(1) - batch["y"]).square().mean()

    def draw(b: int) -> dict:
        x = torch.randn(b, dim)
        return {"image": x, "y": x @ w_star + noise * torch.randn(b), "name": [str(i) for i in range(b)]}

    return model, batch_loss, draw


def test_measured_norms_equal_those_of_hand_computed_per_sample_gradients() -> None:
    model, batch_loss, draw = _linear_regression(dim=5, noise=0.3, seed=1)
    batch = draw(8)
    residual = (model(batch["image"]).squeeze(1) - batch["y"]).detach()
    per_sample = batch["image"] * residual[:, None]  # d/dw of 0.5 (x.w - y)^2
    small_expected = torch.stack([per_sample[i:i + 2].mean(0).square().sum() for i in range(0, 8, 2)]).mean()
    small, big = measure_gradient_norms(model, batch_loss, batch, b_small=2)
    assert small == pytest.approx(float(small_expected), rel=1e-5)
    assert big == pytest.approx(float(per_sample.mean(0).square().sum()), rel=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_measured_noise_scale_matches_linear_regression_theory() -> None:
    # x ~ N(0, I), y = x.w* + s*eps, d = w - w*: G = d, Sigma = (|d|^2 + s^2) I + d d^T (Isserlis).
    dim, noise = 8, 1.0
    model, batch_loss, draw = _linear_regression(dim=dim, noise=noise, seed=2)
    est = NoiseScaleEstimator(b_small=4, b_big=16)
    for _ in range(400):
        est.update(*measure_gradient_norms(model, batch_loss, draw(16), b_small=4))
    truth = dim * (1.0 + noise**2) + 1.0
    assert est.noise_scale == pytest.approx(truth, rel=0.15)


def test_big_batch_must_be_a_multiple_of_the_small_one() -> None:
    model, batch_loss, draw = _linear_regression(dim=3, noise=0.1, seed=0)
    with pytest.raises(ProbeError, match="--big-batch"):
        measure_gradient_norms(model, batch_loss, draw(6), b_small=4)
    with pytest.raises(ProbeError, match="--small-batch"):
        noise_scale_from_norms(1.0, 1.0, b_small=8, b_big=8)


def test_unresolved_true_gradient_gives_nan_not_a_negative_scale() -> None:
    assert math.isnan(noise_scale_from_norms(small_sq=1.0, big_sq=0.1, b_small=2, b_big=8).noise_scale)


def test_loss_statistics_report_coefficient_of_variation_per_half() -> None:
    losses = [10.0, 8.0, 1.0, 3.0, 1.0, 3.0]
    stats = loss_statistics(losses)
    assert stats["all"]["n"] == 6
    assert stats["second_half"]["mean"] == pytest.approx(7.0 / 3.0)
    assert stats["second_half"]["cv"] == pytest.approx(stats["second_half"]["std"] / (7.0 / 3.0))
    assert stats["second_half"]["std"] == pytest.approx(float(torch.tensor([3.0, 1.0, 3.0]).std()))
