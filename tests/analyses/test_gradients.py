"""The gradient recorder measures what it claims, in execution order, and the verdict follows its rule."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn as nn

from analyses.gradients import GradientRecorder, GradientsResult, LayerGradients, ModelGradients
from probe.roles import Roles


class _OutOfOrder(nn.Module):
    """Registers ``head`` first but executes it last; ``unused`` never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(4, 1, 3, padding=1)
        self.unused = nn.Linear(2, 2)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.stem(x))))


def _drive(recorder: GradientRecorder, model: nn.Module, steps: int, manual: list | None = None) -> None:
    """Call the hook exactly where probe.training calls it, around a plain Adam step."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    recorder.on_start(model, config=None)
    for step in range(steps):
        x = torch.rand(2, 3, 8, 8)
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        recorder.after_backward(step, model)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        opt.step()
        recorder.after_step(step, model, stats=None)
        if manual is not None:
            manual.append((before, grads, {n: p.detach().clone() for n, p in model.named_parameters()}))
    recorder.on_end(model)


def _module_norm(tensors: dict, prefix: str) -> float:
    return math.sqrt(sum(float(t.square().sum()) for n, t in tensors.items() if n.startswith(prefix + ".")))


def test_layers_are_ordered_by_execution_not_registration() -> None:
    model = _OutOfOrder()
    recorder = GradientRecorder()
    _drive(recorder, model, steps=2)
    result = recorder.result()
    assert [layer.name for layer in result.layers] == ["stem", "norm", "head"]
    assert [layer.depth for layer in result.layers] == [0, 1, 2]
    assert result.not_executed == ["unused"]
    assert [layer.params for layer in result.layers] == [3 * 4 * 9 + 4, 8, 4 * 9 + 1]


def test_recorded_norms_equal_per_module_norms_computed_by_hand() -> None:
    model, manual = _OutOfOrder(), []
    recorder = GradientRecorder()
    _drive(recorder, model, steps=3, manual=manual)
    result = recorder.result()
    assert result.steps == [0, 1, 2]
    for layer in result.layers:
        for step, (before, grads, after) in enumerate(manual):
            delta = {n: after[n] - before[n] for n in before}
            weight = _module_norm(before, layer.name)
            assert layer.grad_norm.per_step[step] == pytest.approx(_module_norm(grads, layer.name), rel=1e-5)
            assert layer.weight_norm.per_step[step] == pytest.approx(weight, rel=1e-5)
            assert layer.update_ratio.per_step[step] == pytest.approx(_module_norm(delta, layer.name) / weight,
                                                                      rel=1e-4)


def test_every_k_records_only_multiples_of_k() -> None:
    recorder = GradientRecorder(every=2)
    _drive(recorder, _OutOfOrder(), steps=5)
    result = recorder.result()
    assert result.steps == [0, 2, 4]
    assert all(len(layer.grad_norm.per_step) == 3 for layer in result.layers)


def _layer(name: str, depth: int, grad: float, params: int = 100) -> LayerGradients:
    return LayerGradients.of(name, "Conv2d", depth, params, [grad] * 3, [1.0] * 3, [1e-4] * 3)


def test_verdict_flags_a_layer_far_below_the_median_ratio_as_vanishing() -> None:
    model = ModelGradients.of("toy", [0, 1, 2], [_layer("a", 0, 1e-6), _layer("b", 1, 0.5), _layer("c", 2, 1.0)])
    verdict = model.verdict
    assert verdict.vanishing == ["a"] and verdict.exploding == []
    assert verdict.median_ratio == pytest.approx(0.5)
    assert model.margin == pytest.approx(math.log10(1e-6 / 0.5))  # what the verdict over seeds reads
    assert "1e-4" in verdict.rule.replace("0.0001", "1e-4")


def test_verdict_is_relative_to_each_layers_own_weight() -> None:
    # the bias's gradient is 1e5 times smaller, but so is its weight: |g|/|w| is the same as the conv's
    small = LayerGradients.of("bias", "Conv2d", 0, 1, [1e-5] * 3, [1e-5] * 3, [0.0] * 3)
    large = _layer("conv", 1, 1.0, params=1_000_000)
    assert small.grad_weight_ratio == pytest.approx(large.grad_weight_ratio)
    assert ModelGradients.of("toy", [0, 1, 2], [small, large]).verdict.vanishing == []


def test_verdict_flags_non_finite_layers_and_growth_toward_the_input_as_exploding() -> None:
    nan_layer = LayerGradients.of("n", "Conv2d", 1, 100, [1.0, float("nan"), 1.0], [1.0] * 3, [0.0] * 3)
    layers = [_layer("huge", 0, 1e5), nan_layer, _layer("a", 2, 1.0), _layer("b", 3, 1e-2)]
    verdict = ModelGradients.of("toy", [0, 1, 2], layers).verdict
    assert verdict.exploding == ["huge", "n"]
    assert verdict.vanishing == []  # judged against the largest non-exploding layer


def test_a_starved_input_side_vanishes_and_a_large_output_layer_does_not_explode() -> None:
    layers = [_layer(f"enc{i}", i, 1e-9) for i in range(3)] + [_layer(f"dec{i}", 3 + i, 1.0) for i in range(6)]
    verdict = ModelGradients.of("toy", [0, 1, 2], layers + [_layer("out", 9, 50.0)]).verdict
    assert verdict.exploding == []
    assert verdict.vanishing == ["enc0", "enc1", "enc2"]


def test_save_writes_json_with_the_documented_fields_and_figures(tmp_path) -> None:
    recorder = GradientRecorder(out_dir=tmp_path, name="toy")
    _drive(recorder, _OutOfOrder(), steps=3)
    written = recorder.save()
    doc = json.loads((tmp_path / "gradients.json").read_text())
    model = doc["models"][0]
    assert model["name"] == "toy" and "rule" in model["verdict"]
    layer = model["layers"][0]
    assert {"name", "depth", "params", "grad_norm", "weight_norm", "update_ratio"} <= set(layer)
    assert {"per_step", "mean", "median", "min", "max"} <= set(layer["grad_norm"])
    assert len(layer["grad_norm"]["per_step"]) == 3
    ratios = [layer["grad_weight_ratio"] for layer in model["layers"]]
    assert model["verdict"]["ratios"] == pytest.approx(ratios)
    assert model["margin"] == pytest.approx(math.log10(min(ratios) / model["verdict"]["median_ratio"]))
    assert doc["summaries"][0]["name"] == "toy" and doc["summaries"][0]["margin"]["n"] == 1
    assert (tmp_path / "gradients_heatmap_toy.png").stat().st_size > 0
    assert (tmp_path / "gradients_depth.png").stat().st_size > 0
    assert len(written) == 3


def test_result_without_recorded_steps_is_an_error() -> None:
    from probe.errors import ProbeError

    recorder = GradientRecorder(every=10)
    _drive(recorder, _OutOfOrder(), steps=0)
    with pytest.raises(ProbeError, match="no step was recorded"):
        recorder.result()
    assert GradientsResult.of([], Roles()).to_json()["models"] == []


# -- inside real training runs ------------------------------------------------------------------

TINY = ["--width", "0.0625", "--input-size", "32x64", "--device", "cpu"]


def _tiny_config(out, **overrides):
    from probe.training import TrainConfig

    base = dict(model="packnet_slim_c", width=0.0625, input_size=(32, 64), dataset_length=8, max_steps=2,
                device="cpu", out=out)
    return TrainConfig(**{**base, **overrides})


def test_recording_does_not_change_the_training_run(tmp_path) -> None:
    from probe.training import train

    plain = train(_tiny_config(tmp_path / "plain")).model
    recorder = GradientRecorder()
    watched = train(_tiny_config(tmp_path / "watched"), hooks=[recorder]).model
    for (name, a), b in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.equal(a, b), name
    assert recorder.result().steps == [1, 2]


def test_cli_compares_models_on_the_same_steps_and_writes_json_and_figures(run_cli, tmp_path) -> None:
    res = run_cli("gradients", "--model", "packnet_slim_c", "--model", "packnet_slim_b", "--steps", "2", *TINY,
                  "--out", tmp_path)
    assert res.code == 0, res
    doc = json.loads((tmp_path / "gradients.json").read_text())
    assert [m["name"] for m in doc["models"]] == ["packnet_slim_c", "packnet_slim_b"]
    assert all(m["steps"] == [1, 2] for m in doc["models"])
    assert all(m["layers"][0]["depth"] == 0 and m["layers"][0]["grad_norm"]["median"] > 0 for m in doc["models"])
    for name in ("gradients_heatmap_packnet_slim_c.png", "gradients_heatmap_packnet_slim_b.png", "gradients_depth.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "gradients" in json.loads((tmp_path / "config.json").read_text())
    assert not list(tmp_path.glob(".gradients-train-*"))  # the training runs were temporary


def test_checkpoint_continues_a_copy_of_the_run_without_touching_it(run_cli, tmp_path) -> None:
    from probe.training import train

    run_dir = train(_tiny_config(tmp_path / "run")).out
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    res = run_cli("gradients", "--checkpoint", run_dir, "--steps", "2", "--device", "cpu", "--out", tmp_path / "g")
    assert res.code == 0, res
    doc = json.loads((tmp_path / "g" / "gradients.json").read_text())
    assert doc["models"][0]["name"] == "packnet_slim_c" and doc["models"][0]["steps"] == [3, 4]
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == before


def test_cli_without_a_model_exits_2_with_one_line(run_cli, tmp_path) -> None:
    res = run_cli("gradients", "--steps", "2", *TINY, "--out", tmp_path)
    assert res.code == 2 and "--model" in res.err and "Traceback" not in res.err


def test_train_probe_writes_gradients_json_into_the_run_folder(run_cli, tmp_path) -> None:
    res = run_cli("train", "--model", "packnet_slim_b", *TINY, "--dataset-length", "16", "--max-steps", "4",
                  "--workers", "0", "--probe", "gradients,collapse", "--probe-every", "2", "--out", tmp_path)
    assert res.code == 0, res
    grads = json.loads((tmp_path / "gradients.json").read_text())
    assert grads["models"][0]["steps"] == [2, 4]
    collapse = json.loads((tmp_path / "collapse.json").read_text())
    assert [h["step"] for h in collapse["models"][0]["history"]] == [0, 2, 4]
