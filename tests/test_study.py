"""The main job end to end on a tiny budget: every step runs and the report has every section."""

from __future__ import annotations

import json

import pytest

from probe.errors import ProbeError
from probe.study import BUDGETS, STEPS, Budget, StudyConfig, run_study

TINY = Budget(width=0.0625, input_size=(32, 48), complexity_input=(64, 64),
              complexity_models=("packnet_slim_b", "densedepth"), complexity_repeats=1, train_steps=4,
              collapse_every=2, noise_batches=(2, 4), experiment_length=8, experiment_max_steps=None,
              autoencoder_steps=3, autoencoder_levels=(1, 2), autoencoder_archs=("pack2d", "maxpool"),
              autoencoder_input=(32, 32), attribution_images=1, property_examples=5,
              analysed_models=("packnet_slim_b", "densedepth"))


@pytest.fixture
def tiny_budget(monkeypatch):
    monkeypatch.setitem(BUDGETS, "tiny", TINY)
    return "tiny"


def test_study_runs_every_step_and_fills_every_report_section(tmp_path, tiny_budget):
    out = tmp_path / "study"
    records = run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=out))
    assert [r.name for r in records] == STEPS.names()
    assert all(r.status == "ran" for r in records)
    for name in STEPS.names():
        assert (out / STEPS.entry(name).meta["produces"]).is_file(), name
    html = (out / "report.html").read_text()
    assert 'id="not-run"' not in html
    for title in ("Do PackNet&#x27;s gradients vanish?", "Does the prediction collapse to the mean?",
                  "Does packing preserve information?", "How noisy are the batches?",
                  "What does the extra capacity cost?", "The experiment matrix", "The models",
                  "Attribution and receptive fields", "pack/unpack properties", "Run provenance"):
        assert f"<h2>{title}</h2>" in html
    study = json.loads((out / "study.json").read_text())
    assert [s["name"] for s in study["steps"]] == STEPS.names()


def test_a_second_call_reuses_finished_steps_and_force_reruns_them(tmp_path, tiny_budget):
    out = tmp_path / "study"
    run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=out, steps=["properties", "complexity"]))
    before = (out / "complexity.json").stat().st_mtime_ns
    again = run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=out, steps=["properties", "complexity"]))
    assert [r.status for r in again] == ["reused", "reused"]
    assert (out / "complexity.json").stat().st_mtime_ns == before
    forced = run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=out, steps=["properties"], force=True))
    assert forced[0].status == "ran"


def test_bad_study_requests_fail_before_any_work(tmp_path, run_cli):
    with pytest.raises(ProbeError, match="unknown study step 'nope'"):
        run_study(StudyConfig(quick=True, out=tmp_path / "a", steps=["nope"]))
    assert not (tmp_path / "a").exists()
    res = run_cli("study", "--quick", "--dataset", "nyu", "--out", tmp_path / "b")
    assert res.code == 2 and "--quick" in res.err and res.err.count("\n") == 1
