"""Complexity analysis: MAC counts against hand counts, block sums, JSON/figure output, CLI errors."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from analyses.complexity import (
    TOP_LEVEL,
    ComplexityConfig,
    TrainingMemory,
    block_costs,
    count_macs,
    count_torch_flops,
    model_summaries,
    report_blocks,
    run,
)
from probe.errors import ProbeError
from probe.memory import estimate_training_memory
from probe.models import list_models

TINY = 0.03125


def test_macs_of_a_tiny_conv_net_equal_the_hand_count():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1))
    h, w = 8, 10
    assert count_macs(net, torch.rand(1, 3, h, w)).total == 3 * 4 * 9 * h * w + 4 * 2 * h * w
    assert count_macs(net, torch.rand(2, 3, h, w)).total == 2 * (3 * 4 * 9 * h * w + 4 * 2 * h * w)


def test_conv3d_macs_count_every_kernel_tap():
    net = nn.Conv3d(1, 2, kernel_size=3, padding=1, bias=False)
    assert count_macs(net, torch.rand(1, 1, 4, 6, 6)).total == 27 * 2 * 4 * 6 * 6


def test_average_pooling_costs_one_mac_per_input_element():
    net = nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), nn.AvgPool2d(2))
    macs = count_macs(net, torch.rand(1, 2, 4, 4))
    assert macs.by_operator == {"conv": 2 * 2 * 16, "avg_pool2d": 2 * 16}
    assert macs.unsupported_ops == {}


def test_torch_flops_are_twice_the_macs_for_a_conv_only_net():
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1, bias=False), nn.Conv2d(5, 4, 3, stride=2, bias=False))
    x = torch.rand(2, 3, 16, 12)
    assert count_torch_flops(net, x) == 2 * count_macs(net, x).total > 0


def test_operators_without_a_handler_are_recorded_with_counts():
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ELU(), nn.Conv2d(1, 1, 1), nn.ELU(), nn.Sigmoid())
    assert count_macs(net, torch.rand(1, 1, 4, 4)).unsupported_ops == {"aten::elu": 2, "aten::sigmoid": 1}


class _Wrapped(nn.Module):
    """A model whose first child only wraps a Sequential, plus work in its own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.ModuleDict({"inner": nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 1))})
        self.head = nn.Conv2d(2, 1, 1)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.encoder["inner"](x))
        return nn.functional.interpolate(y, scale_factor=2.0, mode="bilinear") * self.scale


def test_report_blocks_replace_a_single_child_wrapper_by_its_children():
    assert [name for name, _ in report_blocks(_Wrapped())] == ["encoder.inner.0", "encoder.inner.1", "head"]


def test_by_module_sums_to_the_totals_with_top_level_work_kept_apart():
    model = _Wrapped()
    x = torch.rand(1, 1, 6, 6)
    macs = count_macs(model, x)
    blocks = {b.name: b for b in block_costs(model, macs)}
    assert sum(b.macs for b in blocks.values()) == macs.total
    assert sum(b.params for b in blocks.values()) == sum(p.numel() for p in model.parameters())
    assert blocks["encoder.inner.0"].macs == 1 * 2 * 9 * 36
    assert blocks[TOP_LEVEL].params == 1
    assert blocks[TOP_LEVEL].macs == 4 * 12 * 12  # bilinear upsampling: four weights per output pixel


def test_densedepth_blocks_sum_to_the_totals():
    result = run(ComplexityConfig(models=["densedepth"], input_size=(32, 64), width=TINY, device="cpu",
                                  repeats=1, warmup=0))
    m = result.models[0]
    assert sum(b.macs for b in m.by_module) == m.macs > 0
    assert sum(b.params for b in m.by_module) == m.params == m.trainable_params
    names = [b.name for b in m.by_module]
    assert names[:2] == ["encoder.features.conv0", "encoder.features.norm0"] and "up4" in names
    assert m.flops_torch >= 2 * m.macs_by_operator["conv"]
    assert m.activation_count > 0
    assert m.latency.forward_ms > 0 and m.latency.forward_backward_ms > 0
    assert m.peak_memory_bytes is None and "cpu" in m.peak_memory_reason


def test_bad_configs_are_probe_errors():
    with pytest.raises(ProbeError, match="--model: unknown"):
        run(ComplexityConfig(models=["nonet"], device="cpu"))
    with pytest.raises(ProbeError, match="--repeats"):
        run(ComplexityConfig(models=["densedepth"], device="cpu", repeats=0))


def test_model_summaries_cover_the_registry_with_published_counts():
    summaries = {s.name: s for s in model_summaries(1.0)}
    assert list(summaries) == list_models(task=None)  # pose models too
    assert summaries["densedepth"].params == 42_657_689
    assert summaries["densedepth"].family == "densedepth"


def test_models_command_prints_every_model_with_separators(run_cli):
    res = run_cli("models")
    assert res.code == 0, res
    for name in list_models():
        assert name in res.out
    assert "42,657,689" in res.out


def test_complexity_command_writes_json_config_and_figure(run_cli, tmp_path: Path):
    out = tmp_path / "run"
    res = run_cli("complexity", "--model", "densedepth", "--input-size", "32x64", "--width", str(TINY),
                  "--repeats", "1", "--warmup", "0", "--device", "cpu", "--out", out)
    assert res.code == 0, res
    doc = json.loads((out / "complexity.json").read_text())
    assert doc["analysis"] == "complexity"
    (entry,) = doc["models"]
    assert entry["name"] == "densedepth" and entry["input_size"] == [32, 64]
    assert entry["options"] == {"width": TINY}
    for key in ("params", "trainable_params", "macs", "flops_torch", "by_module", "activation_count",
                "unsupported_ops", "latency", "peak_memory_bytes", "peak_memory_reason"):
        assert key in entry
    assert "complexity" in json.loads((out / "config.json").read_text())
    assert (out / "complexity_blocks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "densedepth" in res.out


@pytest.mark.parametrize("size", ["192", "0x64", "axb"])
def test_bad_input_size_is_a_one_line_error_with_exit_2(run_cli, tmp_path: Path, size: str):
    res = run_cli("complexity", "--model", "densedepth", "--input-size", size, "--out", tmp_path / "run")
    assert res.code == 2
    assert res.err.strip().count("\n") == 0 and "--input-size" in res.err
    assert "Traceback" not in res.err


def _training_memory(model: str, batch: int, checkpointing: bool = False, precision: str = "fp32") -> TrainingMemory:
    """What ``probe complexity`` stores, for a 32x64 input on the CPU (the estimate runs on the meta device)."""
    estimate = estimate_training_memory(model, input_size=(32, 64), batch_size=batch, width=TINY, precision=precision,
                                        activation_checkpointing=checkpointing, device="cpu")
    return TrainingMemory.of(estimate, checkpointing, peak=None)


@pytest.mark.parametrize("model", ["packnet_slim_b", "densedepth"])
def test_training_memory_estimate_grows_linearly_with_the_batch_and_drops_with_checkpointing(model):
    estimates = {b: _training_memory(model, b) for b in (1, 2, 4)}
    one = estimates[1]
    assert one.optimizer_bytes == 2 * one.weight_bytes == 2 * one.gradient_bytes == 8 * one.parameters
    per_image = estimates[2].total_bytes - one.total_bytes
    assert per_image > 0 and estimates[4].total_bytes == one.total_bytes + 3 * per_image  # exactly affine
    state = one.weight_bytes + one.gradient_bytes + one.optimizer_bytes
    # what does not grow with the batch: the weights' states, and BatchNorm's saved per-channel statistics
    assert 0 <= one.total_bytes - per_image - state < 0.15 * per_image
    if model.startswith("packnet"):  # GroupNorm: every saved tensor is per image
        assert estimates[4].activation_bytes == 4 * one.activation_bytes
    for batch, plain in estimates.items():
        checkpointed = _training_memory(model, batch, checkpointing=True)
        assert checkpointed.activation_bytes < 0.3 * plain.activation_bytes
        assert checkpointed.total_bytes - checkpointed.activation_bytes == plain.total_bytes - plain.activation_bytes
        assert checkpointed.activation_checkpointing and not plain.activation_checkpointing
    half = _training_memory(model, 2, precision="bf16")
    assert half.activation_bytes == estimates[2].activation_bytes // 2 and half.weight_bytes == one.weight_bytes


def test_complexity_command_shows_and_stores_the_training_memory_estimate(run_cli, tmp_path: Path):
    out = tmp_path / "run"
    res = run_cli("complexity", "--model", "packnet_slim_b", "--input-size", "32x64", "--width", str(TINY),
                  "--batch-size", "3", "--activation-checkpointing", "--repeats", "1", "--warmup", "0",
                  "--device", "cpu", "--out", out)
    assert res.code == 0, res
    assert "one Adam step at batch 3, fp32, activation checkpointing" in " ".join(res.out.split())
    (entry,) = json.loads((out / "complexity.json").read_text())["models"]
    memory = entry["training_memory"]
    assert (memory["batch_size"], memory["precision"], memory["activation_checkpointing"]) == (3, "fp32", True)
    assert memory["total_bytes"] == sum(memory[k] for k in ("weight_bytes", "gradient_bytes", "optimizer_bytes",
                                                            "activation_bytes", "input_bytes"))
    assert memory["total_gb"] == memory["total_bytes"] / 2**30 and memory["peak_over_estimate"] is None
    assert memory == asdict(_training_memory("packnet_slim_b", 3, checkpointing=True))
    res = run_cli("complexity", "--model", "densedepth", "--precision", "fp64", "--out", tmp_path / "bad")
    assert res.code == 2 and "--precision" in res.err and not (tmp_path / "bad" / "complexity.json").exists()
