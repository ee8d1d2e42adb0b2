"""Real processes: a run killed with SIGKILL and resumed, and two DDP processes on gloo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import torch
from safetensors.torch import load_file

from probe.training import read_metrics, train
from tests.training.conftest import ROOT, TINY_FLAGS, probe_command, run_probe, subprocess_env

# 8 samples, batch 4: 2 steps per epoch, 30 steps in all; a checkpoint pair every 2 steps
STEPS = 30
RUN_FLAGS = [*TINY_FLAGS, "--dataset-length", "8", "--epochs", str(STEPS // 2), "--checkpoint-every", "2",
             "--deterministic"]


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last.safetensors"))


def test_sigkilled_run_resumed_ends_bitwise_identical_to_an_uninterrupted_run(tmp_path, tiny):
    victim_dir = tmp_path / "victim"
    victim = subprocess.Popen(probe_command("train", *RUN_FLAGS, "--out", str(victim_dir)), cwd=ROOT,
                              env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_state = victim_dir / "checkpoints" / "step_2.state.pt"
    deadline = time.monotonic() + 90
    while not first_state.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert not (victim_dir / "train.json").exists(), "the run finished before it could be killed"
    killed_at = torch.load(victim_dir / "checkpoints" / "last.state.pt", weights_only=True)["position"]["step"]
    assert 2 <= killed_at < STEPS

    resumed = subprocess.Popen(probe_command("train", *RUN_FLAGS, "--resume", "--out", str(victim_dir)), cwd=ROOT,
                               env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # meanwhile the uninterrupted twin runs in this process, single-threaded like the subprocesses
    reference = train(tiny("reference", epochs=STEPS // 2, checkpoint_every=2, deterministic=True))
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()

    expected, got = _weights(reference.out), _weights(victim_dir)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    steps = [r["step"] for r in read_metrics(victim_dir / "metrics.jsonl")]
    assert steps == list(range(1, STEPS + 1)), "the log keeps exactly one line per step after the resume"
    assert [r["loss"] for r in read_metrics(victim_dir / "metrics.jsonl")] == [
        r["loss"] for r in read_metrics(reference.out / "metrics.jsonl")]
    assert json.loads((victim_dir / "train.json").read_text())["resumed_from_step"] == killed_at


def test_two_gloo_ddp_processes_end_with_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    res = run_probe("train", *TINY_FLAGS, "--dataset-length", "8", "--batch-size", "2", "--epochs", "2",
                    "--nproc-per-node", "2", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "train.json").read_text())
    assert summary["world_size"] == 2
    digests = summary["replica_weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1] and summary["replicas_identical"]
    # each process takes half of every epoch: 8 samples / (2 processes x 2 per batch) = 2 steps per epoch
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert json.loads((out / "config.json").read_text())["train"]["config"]["batch_size"] == 2
