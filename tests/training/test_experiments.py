"""The seed-study matrix: definitions match the seed's section 5; a tiny run writes the comparison."""

from __future__ import annotations

import json

import pytest

from probe.errors import ProbeError
from probe.experiments import EXPERIMENTS, SeedStudyConfig, moving_average, run_seed_study, seed_study_experiments
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
