"""The seed-study matrix: definitions match the seed's section 5; a tiny run writes the comparison."""

from __future__ import annotations

import json
import os

import pytest

from probe.errors import ProbeError
from probe.experiments import (EXPERIMENTS, SeedStudyConfig, moving_average, run_seed_study, seed_study_experiments,
                               study_differences)
from probe.models import list_models


def test_matrix_is_the_seeds_five_experiments_plus_the_densedepth_baseline():
    slim = {e.id: e for e in seed_study_experiments(slim=True)}
    assert [e.seed_number for e in slim.values()] == [None, 1, 2, 3, 4, 5]
    assert slim["densedepth"].model == "densedepth" and slim["densedepth"].options == {}
    assert (slim["exp1_packnet_b"].model, slim["exp2_packnet_a"].model, slim["exp5_no_skips"].model) == (
        "packnet_slim_b", "packnet_slim_a", "packnet_slim_c")
    assert slim["exp3_leaky_relu"].options["activation"] == "leaky_relu"
    assert slim["exp4_direct"].options["target"] == "direct"
    assert all(e.options["output_scale"] == "half" for e in slim.values() if e.model.startswith("packnet"))
    full = seed_study_experiments(slim=False)
    assert [e.model for e in full][1:3] == ["packnet_b", "packnet_a"]
    assert all(e.model in list_models() for e in [*slim.values(), *full])


def test_moving_average_is_the_trailing_mean():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def test_quick_study_writes_the_comparison_and_resumes_finished_runs(tmp_path, run_cli):
    config = SeedStudyConfig(quick=True, only=["exp1_packnet_b", "exp4_direct"], max_steps=2, input_size=(32, 64),
                             dataset_length=8, eval_images=2, device="cpu", out=tmp_path / "study")
    result = run_seed_study(config)
    rows = {row.id: row for row in result.experiments}
    assert set(rows) == {"exp1_packnet_b", "exp4_direct"}
    for row in rows.values():
        (run,) = row.runs
        assert run.steps == 2 and len(run.loss_curve) == 2 and row.params > 0 and run.seed == 0
        assert run.held_out is not None and run.held_out.n_images == 2 and len(run.held_out.per_image_abs_rel) == 2
        assert row.objective == "supervised densedepth loss on the finest output"
        # one seed: the held-out score's interval is a bootstrap over its images, the learned verdict that run's
        assert row.held_out_abs_rel.spread_of == "images" and row.learned.learned == run.held_out.learned
        # the image-blind baseline: the mean depth map of the run's 8 training images, scored on the same 2
        assert run.held_out.mean_map_abs_rel is not None and run.held_out.image_ratio is not None
        assert row.learned.reads_image == run.held_out.reads_image and row.learned.image_ratio.n == 2
    steps = [[r["step"] for r in map(json.loads, (tmp_path / "study" / i / "metrics.jsonl").read_text().splitlines())]
             for i in rows]
    assert steps[0] == steps[1] == [1, 2]
    saved = json.loads((tmp_path / "study" / "experiments.json").read_text())
    assert [r["id"] for r in saved["experiments"]] == ["exp1_packnet_b", "exp4_direct"]
    assert (tmp_path / "study" / "experiments_loss.png").stat().st_size > 0

    again = run_seed_study(config)  # finished runs are resumed, not retrained from scratch
    assert [r.runs[0].loss_curve for r in again.experiments] == [r.runs[0].loss_curve for r in result.experiments]

    res = run_cli("experiment", "seed-study", "--only", "exp9", "--out", tmp_path / "bad")
    assert res.code == 2 and "--only" in res.err


def test_seeds_make_one_run_folder_each_and_an_interval_over_them(tmp_path, run_cli):
    res = run_cli("experiment", "seed-study", "--quick", "--only", "densedepth", "--max-steps", "2",
                  "--input-size", "32x64", "--eval-images", "2", "--seeds", "0,3", "--device", "cpu",
                  "--out", tmp_path)
    assert res.code == 0, res
    (row,) = json.loads((tmp_path / "experiments.json").read_text())["experiments"]
    assert [r["seed"] for r in row["runs"]] == [0, 3]
    for seed in (0, 3):
        assert (tmp_path / "densedepth" / f"seed_{seed}" / "train.json").is_file()
    assert row["held_out_loss"]["method"] == "student_t_95 over 2 seeds" and row["held_out_loss"]["n"] == 2
    assert row["learned"]["learned"]["estimate"]["method"] == "student_t_95 over 2 seeds"
    assert row["learned"]["image_ratio"]["method"] == "student_t_95 over 2 seeds"
    curves = [r["loss_curve"] for r in row["runs"]]
    assert curves[0] != curves[1]  # different seeds, different batches and initialisations
    assert "held-out DenseDepth loss" in res.out and "do not compare" in res.out


def test_the_seed_numbers_compare_only_under_the_seeds_protocol():
    assert SeedStudyConfig(dataset="nyu").seed_comparable() is None
    reason = SeedStudyConfig(quick=True).seed_comparable()
    assert "dataset synthetic" in reason
    assert "lr 0.003" in SeedStudyConfig(dataset="nyu", lr=3e-3).seed_comparable()


def test_quick_refuses_real_datasets():
    with pytest.raises(ProbeError, match="--quick"):
        SeedStudyConfig(quick=True, dataset="nyu").resolved()
    assert "exp5_no_skips" in EXPERIMENTS


# -- the matrix side by side: --parallel and submitit give the sequential run's numbers ------------------------

# Two experiments of 6 steps (batch 2, 32x64), a checkpoint after every step, scored on --quick's 32 test images:
# the config the CLI test below gives with flags.
SIDE_BY_SIDE = dict(quick=True, only=["densedepth", "exp1_packnet_b"], max_steps=6, batch_size=2, input_size=(32, 64),
                    checkpoint_every=1, device="cpu")
SIDE_BY_SIDE_FLAGS = ("--quick", "--only", "densedepth,exp1_packnet_b", "--max-steps", "6", "--batch-size", "2",
                      "--input-size", "32x64", "--checkpoint-every", "1", "--device", "cpu")


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The reference: the two experiments one after another in this process, on one thread each.

    On a CPU a run's numbers depend on its thread count (kernels split their sums by thread), so the runs
    side by side below get one thread each too (--threads-per-run 1), whatever the machine's cores.
    """
    from probe.jobs import Launch

    out = tmp_path_factory.mktemp("sequential") / "study"
    run_seed_study(SeedStudyConfig(**SIDE_BY_SIDE, out=out), Launch(threads=1))
    return out


def _study(out):
    return json.loads((out / "experiments.json").read_text())


def _final_weights(run_dir):
    from safetensors.torch import load_file

    from probe.training.checkpoint import resolve_checkpoint

    return load_file(str(resolve_checkpoint(run_dir).weights))


def test_study_differences_sees_one_ulp_and_ignores_only_timings_and_places(sequential):
    import math

    study = _study(sequential)
    moved = json.loads(json.dumps(study))
    moved["config"]["out"] = "/elsewhere/study"
    for row in moved["experiments"]:
        for run in row["runs"]:
            run["run_dir"] = f"/elsewhere/study/{row['id']}"
            run["seconds_per_epoch"], run["images_per_s"] = 1e9, 1e-9
    moved["launch"] = {"parallel": 2, "launcher": "submitit-local"}
    assert study_differences(study, moved) == []
    nudged = json.loads(json.dumps(study))
    curve = nudged["experiments"][1]["runs"][0]["loss_curve"]
    curve[3] = math.nextafter(curve[3], math.inf)
    before = study["experiments"][1]["runs"][0]["loss_curve"][3]
    assert study_differences(study, nudged) == [f".experiments[1].runs[0].loss_curve[3]: {before!r} != {curve[3]!r}"]
    renamed = json.loads(json.dumps(study))
    renamed["experiments"][0]["runs"][0]["run_dir"] = str(sequential / "other")
    assert study_differences(study, renamed) == [".experiments[0].runs[0].run_dir: 'densedepth' != 'other'"]


def test_parallel_2_writes_the_sequential_runs_experiments_json(sequential, tmp_path, run_cli):
    """Two worker processes with one thread each (as the reference), through the CLI."""
    out = tmp_path / "parallel"
    res = run_cli("experiment", "seed-study", *SIDE_BY_SIDE_FLAGS, "--parallel", "2", "--threads-per-run", "1",
                  "--out", out)
    assert res.code == 0, res
    parallel = _study(out)
    assert (parallel["launch"]["parallel"], parallel["launch"]["threads"]) == (2, 1)
    pids = {json.loads((out / i / "job.json").read_text())["attempts"][0]["pid"] for i in ("densedepth", "exp1_packnet_b")}
    assert len(pids) == 2 and os.getpid() not in pids, "each experiment ran in a worker process of its own"
    for i in ("densedepth", "exp1_packnet_b"):
        attempt = json.loads((out / i / "job.json").read_text())["attempts"][0]
        assert attempt["threads"] == 1 and attempt["status"] == "finished" and attempt["checkpoint_step"] is None
    assert study_differences(_study(sequential), parallel) == []


def test_submitit_local_job_interrupted_mid_run_is_requeued_resumes_and_ends_as_the_sequential_run(sequential, tmp_path):
    """submitit's LocalExecutor, two jobs at once; exp1_packnet_b gets submitit's preemption signal (USR2) after its
    first checkpoint: checkpoint() requeues it with resume=True and the new start continues from that checkpoint."""
    import signal
    import threading
    import time

    import torch

    from probe.jobs import Launch
    from probe.training import read_metrics
    from probe.training.checkpoint import latest_checkpoint

    out = tmp_path / "submitit"
    victim = out / "exp1_packnet_b"
    outcome: dict = {}

    def study() -> None:
        try:
            outcome["result"] = run_seed_study(SeedStudyConfig(**SIDE_BY_SIDE, out=out),
                                               Launch(parallel=2, threads=1, launcher="submitit-local"))
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=study)
    thread.start()
    signalled_at = None
    deadline = time.monotonic() + 240
    while thread.is_alive() and signalled_at is None and time.monotonic() < deadline:
        newest = latest_checkpoint(victim) if (victim / "job.json").is_file() else None
        if newest is not None and newest.step >= 1:
            pid = json.loads((victim / "job.json").read_text())["attempts"][0]["pid"]
            os.kill(pid, signal.SIGUSR2)  # what SLURM sends before preempting a submitit job
            signalled_at = newest.step
        time.sleep(0.01)
    thread.join(timeout=240)
    assert "error" not in outcome, outcome
    assert signalled_at is not None and signalled_at < 6, "the run ended before it could be interrupted"

    first, second = json.loads((victim / "job.json").read_text())["attempts"]
    assert (first["status"], first["resume"], first["launcher"]) == ("interrupted", False, "submitit-local")
    assert (second["status"], second["resume"]) == ("finished", True)
    assert signalled_at <= second["checkpoint_step"] < 6, "the requeued job started from the interrupted run's checkpoint"
    assert first["job_id"] == second["job_id"], "requeued as the same submitit job"
    assert json.loads((victim / "train.json").read_text())["resumed_from_step"] == second["checkpoint_step"]
    assert [r["step"] for r in read_metrics(victim / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    expected, got = _final_weights(sequential / "exp1_packnet_b"), _final_weights(victim)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert study_differences(_study(sequential), _study(out)) == []
    assert _study(out)["launch"]["launcher"] == "submitit-local"
