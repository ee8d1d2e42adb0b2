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
                             dataset_length=8, eval_length=2, device="cpu", out=tmp_path / "study")
    result = run_seed_study(config)
    rows = {row.id: row for row in result.experiments}
    assert set(rows) == {"exp1_packnet_b", "exp4_direct"}
    for row in rows.values():
        assert row.steps == 2 and len(row.loss_curve) == 2 and row.params > 0
        assert row.eval is not None and row.eval.n_images == 2 and "abs_rel" in row.eval.metrics
    steps = [[r["step"] for r in map(json.loads, (tmp_path / "study" / i / "metrics.jsonl").read_text().splitlines())]
             for i in rows]
    assert steps[0] == steps[1] == [1, 2]
    saved = json.loads((tmp_path / "study" / "experiments.json").read_text())
    assert [r["id"] for r in saved["experiments"]] == ["exp1_packnet_b", "exp4_direct"]
    assert (tmp_path / "study" / "experiments_loss.png").stat().st_size > 0

    again = run_seed_study(config)  # finished runs are resumed, not retrained from scratch
    assert [r.loss_curve for r in again.experiments] == [r.loss_curve for r in result.experiments]

    res = run_cli("experiment", "seed-study", "--only", "exp9", "--out", tmp_path / "bad")
    assert res.code == 2 and "--only" in res.err


def test_quick_refuses_real_datasets():
    with pytest.raises(ProbeError, match="--quick"):
        SeedStudyConfig(quick=True, dataset="nyu").resolved()
    assert "exp5_no_skips" in EXPERIMENTS
