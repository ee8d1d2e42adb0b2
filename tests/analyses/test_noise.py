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
    assert stats["all"].n == 6
    assert stats["second_half"].mean == pytest.approx(7.0 / 3.0)
    assert stats["second_half"].cv == pytest.approx(stats["second_half"].std / (7.0 / 3.0))
    assert stats["second_half"].std == pytest.approx(float(torch.tensor([3.0, 1.0, 3.0]).std()))


# -- inside training ------------------------------------------------------------------------------

class _ToyDepthNet(nn.Module):
    """BatchNorm and dropout: the two ways a measurement could leak into the training run."""

    output_space = "inverse"

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                                  nn.Conv2d(4, 1, 3, stride=2, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(x)) / 0.5


def _toy_run(probe: "NoiseProbe | None", steps: int = 3) -> dict:
    from functools import partial

    from probe.data import get_dataset
    from probe.losses import build_loss
    from probe.training import TrainConfig, make_loader, train_step
    from probe.training.loop import StepSetup

    config = TrainConfig(model="toy", dataset="synthetic", input_size=(32, 64), batch_size=4, device="cpu",
                         precision="fp32")
    dataset = get_dataset("synthetic", input_size=(32, 64), length=4 * steps)
    torch.manual_seed(0)
    model = _ToyDepthNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = partial(build_loss("densedepth"), output_space="inverse", max_depth=dataset.info.max_depth)
    setup = StepSetup(module=model, device=torch.device("cpu"))
    if probe is not None:
        probe.on_start(model, config)
    for step, batch in enumerate(make_loader(dataset, 4, seed=0), start=1):
        stats = train_step(model, batch, loss_fn, optimizer, setup, step=step, epoch=0)
        if probe is not None:
            probe.after_step(step, model, stats)
    return model.state_dict()


def test_measuring_noise_leaves_no_trace_on_the_training_run() -> None:
    from analyses.noise import NoiseProbe

    probe = NoiseProbe(small_batch=2, big_batch=4, every=1)
    plain, watched = _toy_run(None), _toy_run(probe)
    for name, value in plain.items():
        assert torch.equal(value, watched[name]), name  # weights, BatchNorm statistics, everything
    result = probe.result()
    assert result.measurements == 3 and len(result.per_step_loss.loss) == 3
    assert all(s > 0 and b > 0 for s, b in zip(result.per_measurement.small_sq, result.per_measurement.big_sq))


def test_cli_writes_noise_json_with_scale_and_loss_spread(run_cli, tmp_path) -> None:
    import json

    res = run_cli("noise", "--model", "packnet_slim_b", "--steps", "3", "--small-batch", "2", "--big-batch", "4",
                  "--width", "0.0625", "--input-size", "32x64", "--device", "cpu", "--out", tmp_path)
    assert res.code == 0, res
    model = json.loads((tmp_path / "noise.json").read_text())["models"][0]
    assert model["name"] == "packnet_slim_b" and model["measurements"] == 3
    assert model["b_small"] == 2 and model["b_big"] == 4 and model["train_batch_size"] == 4
    assert {"b_simple", "trace_sigma", "grad_sq_norm", "loss", "loss_second_half"} <= set(model)
    assert model["loss"]["n"] == 3 and model["loss"]["cv"] > 0
    assert (tmp_path / "noise.png").stat().st_size > 0


def test_cli_rejects_a_big_batch_that_is_not_a_multiple(run_cli, tmp_path) -> None:
    res = run_cli("noise", "--model", "packnet_slim_b", "--small-batch", "3", "--big-batch", "8", "--out", tmp_path)
    assert res.code == 2 and "--big-batch" in res.err


def test_detrended_loss_spread_sees_the_scatter_not_the_trend() -> None:
    gen = torch.Generator().manual_seed(3)
    steps = torch.arange(400, dtype=torch.float64)
    trend_only = (5.0 - 0.01 * steps).tolist()
    noisy = (5.0 - 0.01 * steps + 0.2 * torch.randn(400, generator=gen, dtype=torch.float64)).tolist()
    assert loss_statistics(trend_only)["all"].std_detrended < 1e-9
    assert loss_statistics(trend_only)["all"].std > 1.0  # the plain std is all trend
    assert loss_statistics(noisy)["all"].std_detrended == pytest.approx(0.2, rel=0.1)


def test_the_per_batch_loss_figure_draws_every_runs_own_losses_not_a_mean_over_seeds(monkeypatch, tmp_path) -> None:
    """Averaging seeds would smooth away the batch-to-batch scatter the figure exists to show; each run is drawn
    once and each model named once in the legend."""
    import dataclasses

    import probe.plotting
    from analyses.noise import NoiseProbe, StepLosses, noise_figure

    recorder = NoiseProbe(small_batch=2, big_batch=4, every=1)
    _toy_run(recorder)
    first = recorder.result()
    steps = first.per_step_loss.step
    runs = [dataclasses.replace(first, name="a", seed=seed, per_step_loss=StepLosses(steps, losses))
            for seed, losses in ((0, [1.0, 3.0, 2.0]), (1, [2.0, 1.0, 4.0]))]
    runs.append(dataclasses.replace(first, name="b", seed=0, per_step_loss=StepLosses(steps, [5.0, 6.0, 7.0])))
    drawn = {}
    monkeypatch.setattr(probe.plotting, "save_figure", lambda fig, path: drawn.setdefault("fig", fig) and path)
    noise_figure(runs, tmp_path / "noise.png")
    lines = [line for line in drawn["fig"].axes[0].get_lines() if len(line.get_xdata()) == len(steps)]
    assert sorted(list(line.get_ydata()) for line in lines) == [[1.0, 3.0, 2.0], [2.0, 1.0, 4.0], [5.0, 6.0, 7.0]]
    legend = drawn["fig"].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]  # each model once, however many seeds
    assert drawn["fig"].axes[0].get_yscale() == "log"  # positive losses: the scatter is read on a log axis
