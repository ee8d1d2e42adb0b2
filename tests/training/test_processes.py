"""Real processes: runs killed with SIGKILL at random moments and resumed, and two DDP processes on gloo."""

from __future__ import annotations

import json
import random

import torch
from safetensors.torch import load_file

from probe.training import read_metrics, train
from probe.training.checkpoint import resolve_checkpoint
from tests.training.conftest import TINY_FLAGS, run_probe
from tests.training.crash import finish, kill_rounds, temporaries

# 8 samples, batch 4: 2 steps per epoch, 40 steps in all; a checkpoint after every step.
# One thread per process (subprocess_env): CPU kernels are then deterministic without --deterministic,
# whose compiler-stack import would cost every process seconds.
STEPS = 40
KILLS = 5
RUN_FLAGS = [*TINY_FLAGS, "--dataset-length", "8", "--epochs", str(STEPS // 2), "--checkpoint-every", "1"]


def test_runs_sigkilled_at_random_moments_always_resume_and_end_bitwise_identical(tmp_path, tiny):
    """Five seeded random SIGKILLs, each of a run resumed with plain --resume after the previous kill."""
    victim = tmp_path / "victim"
    records = kill_rounds(victim, RUN_FLAGS, KILLS, random.Random(16))
    assert all(r.killed for r in records), "a round ended before it was killed: make the run longer"
    for r in records:
        assert r.resumable and not r.warnings, r  # never a torn checkpoint taken for a complete one
    steps = [r.resume_step or 0 for r in records]
    assert steps == sorted(steps) and steps[-1] > 0, "every round resumed where the last kill left the run"

    reference = train(tiny("reference", epochs=STEPS // 2, checkpoint_every=1))
    done = finish(victim, RUN_FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert temporaries(victim) == [], "temporary files and partial checkpoints are cleaned at the next start"

    expected, got = (load_file(str(resolve_checkpoint(run).weights)) for run in (reference.out, victim))
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    records_now = read_metrics(victim / "metrics.jsonl")
    assert [r["step"] for r in records_now] == list(range(1, STEPS + 1)), "one log line per step after resumes"
    assert [r["loss"] for r in records_now] == [r["loss"] for r in read_metrics(reference.out / "metrics.jsonl")]
    assert json.loads((victim / "train.json").read_text())["resumed_from_step"] == records[-1].resume_step


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
