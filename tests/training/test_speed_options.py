"""The speed and memory switches of a training run: each one independent, none changing the result it must not."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from safetensors.torch import load_file

from probe.training import TrainConfig, read_metrics, train
from probe.training.checkpoint import resolve_checkpoint
from tests.training.conftest import TINY_FLAGS


def test_activation_checkpointing_run_matches_the_plain_run_bitwise(run_cli, tiny, tmp_path):
    out = tmp_path / "recomputed"
    res = run_cli("train", *TINY_FLAGS, "--dataset-length", "8", "--max-steps", "3", "--deterministic",
                  "--activation-checkpointing", "--out", out)
    assert res.code == 0, res
    plain = train(tiny("plain", max_steps=3, deterministic=True))

    assert json.loads((out / "config.json").read_text())["train"]["config"]["activation_checkpointing"] is True
    assert [r["loss"] for r in read_metrics(out / "metrics.jsonl")] == [
        r["loss"] for r in read_metrics(plain.out / "metrics.jsonl")]
    expected = load_file(str(plain.checkpoint))
    got = load_file(str(resolve_checkpoint(out).weights))
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_precision_channels_last_compile_and_checkpointing_switch_independently(device):
    """Resolving the device defaults never overrides an explicit choice of another switch."""
    dev = torch.device(device)  # resolving only looks at the device type: no GPU needed
    defaults = TrainConfig().resolved(dev)
    assert (defaults.precision, defaults.channels_last) == (("bf16", True) if device == "cuda" else ("fp32", False))
    assert (defaults.compile, defaults.activation_checkpointing) == (False, False)
    for precision, channels_last, compile_, recompute in itertools.product(
            ("fp32", "bf16"), (False, True), (False, True), (False, True)):
        got = TrainConfig(precision=precision, channels_last=channels_last, compile=compile_,
                          activation_checkpointing=recompute).resolved(dev)
        assert (got.precision, got.channels_last, got.compile, got.activation_checkpointing) == (
            precision, channels_last, compile_, recompute)


def test_bf16_channels_last_checkpointed_cpu_step_stays_close_to_fp32(tiny):
    """All switches at once on a CPU (bf16 autocast exists there too): a working step, near the fp32 loss."""
    fast = train(tiny("fast", max_steps=2, precision="bf16", channels_last=True, activation_checkpointing=True))
    plain = train(tiny("plain", max_steps=2))
    fast_losses = [r["loss"] for r in read_metrics(fast.out / "metrics.jsonl")]
    plain_losses = [r["loss"] for r in read_metrics(plain.out / "metrics.jsonl")]
    assert all(abs(a - b) <= 0.01 * abs(b) for a, b in zip(fast_losses, plain_losses)), (fast_losses, plain_losses)


def test_ddp_with_activation_checkpointing_keeps_the_replicas_identical(tmp_path):
    from tests.training.conftest import run_probe

    out = tmp_path / "ddp"
    res = run_probe("train", *TINY_FLAGS, "--dataset-length", "8", "--batch-size", "2", "--max-steps", "2",
                    "--nproc-per-node", "2", "--activation-checkpointing", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "train.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_identical"] and summary["steps"] == 2
