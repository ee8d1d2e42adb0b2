"""The main job end to end on a tiny budget over two seeds: every step runs, the probes ride along inside the
experiment runs, every seed is a run folder, and the report begins with the regime and shows the learned column."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from probe.budgets import BUDGETS, QUICK, STANDARD
from probe.errors import ProbeError
from probe.study import STEPS, StudyConfig, run_study

TINY = replace(QUICK, name="tiny", input_size=(32, 48), batch_size=4, seeds=2, experiment_steps=2,
               experiment_length=8, eval_images=4, complexity_input=(64, 64),
               complexity_models=("packnet_slim_b", "densedepth"), gradient_every=1, noise_every=1,
               noise_batches=(2, 4), collapse_every=1, collapse_images=2, autoencoder_steps=3,
               autoencoder_levels=(1,), autoencoder_runs=(("pack2d", 0.0625), ("maxpool", 0.0625)),
               autoencoder_train_images=8, autoencoder_eval_images=2, attribution_images=1, property_examples=5,
               analysed_models=("packnet_slim_b", "densedepth"), fit_images=(4,), fit_steps=2, fit_test_images=2)


@pytest.fixture
def tiny_budget(monkeypatch):
    monkeypatch.setitem(BUDGETS, "tiny", TINY)
    return "tiny"


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """One tiny study over seeds 0 and 1, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("study") / "study"
    BUDGETS["tiny"] = TINY
    try:
        records = run_study(StudyConfig(budget_name="tiny", device="cpu", out=out))
    finally:
        del BUDGETS["tiny"]
    return out, records


def test_study_runs_every_step_and_fills_every_report_section(tiny_study):
    out, records = tiny_study
    assert [r.name for r in records] == STEPS.names()
    assert all(r.status == "ran" for r in records)
    for name in STEPS.names():
        assert (out / STEPS.entry(name).meta["produces"]).is_file(), name
    html = (out / "report.html").read_text()
    assert 'id="not-run"' not in html
    for title in ("Do PackNet&#x27;s gradients vanish?", "Does the prediction collapse to the mean?",
                  "Does packing preserve information?", "How noisy are the batches?",
                  "What does the extra capacity cost?", "The experiment matrix", "The models",
                  "Attribution and receptive fields", "pack/unpack properties", "Run provenance",
                  "Can the model fit its own training images?"):
        assert f"<h2>{title}</h2>" in html
    study = json.loads((out / "study.json").read_text())
    assert [s["name"] for s in study["steps"]] == STEPS.names()


def test_every_seed_is_a_run_folder_and_the_probes_ride_along_in_the_analysed_models_runs(tiny_study):
    out, _ = tiny_study
    experiments = json.loads((out / "experiments.json").read_text())["experiments"]
    assert all([r["seed"] for r in e["runs"]] == [0, 1] for e in experiments)
    for e in experiments:
        for run in e["runs"]:
            assert (out / e["id"] / f"seed_{run['seed']}" / "train.json").is_file()
            assert run["held_out"]["ratio"]["method"].startswith("paired bootstrap_95")
        assert e["learned"]["ratio"]["method"] == "student_t_95 over 2 seeds"
        carrier = e["id"] in ("densedepth", "exp1_packnet_b")  # each analysed model's first experiment
        assert sorted(e["runs"][0]["probes"]) == (["collapse", "gradients", "noise"] if carrier else [])
    gradients = json.loads((out / "gradients.json").read_text())
    assert [(m["name"], m["seed"]) for m in gradients["models"]] == [
        ("densedepth", 0), ("densedepth", 1), ("packnet_slim_b", 0), ("packnet_slim_b", 1)]
    assert all(m["held_out"] is not None for m in gradients["models"])
    assert [s["seeds"] for s in gradients["summaries"]] == [[0, 1], [0, 1]]
    assert gradients["summaries"][0]["margin"]["method"] == "student_t_95 over 2 seeds"
    noise = json.loads((out / "noise.json").read_text())
    assert [s["name"] for s in noise["summaries"]] == ["densedepth", "packnet_slim_b"]
    for seed in (0, 1):
        assert (out / "autoencoder_seeds" / f"seed_{seed}" / "autoencoder.json").is_file()
    fit = json.loads((out / "fit.json").read_text())
    assert [(r["model"], r["images"], r["seed"], r["steps"]) for r in fit["runs"]] == [
        (m, 4, s, 2) for m in ("packnet_slim_b", "densedepth") for s in (0, 1)]
    for r in fit["runs"]:  # each fit is its own run folder under fit_runs/, trained the fit's steps
        train = json.loads((out / "fit_runs" / r["model"] / "images_4" / f"seed_{r['seed']}" / "train.json").read_text())
        assert train["steps"] == 2
    assert [c["seeds"] for c in fit["cells"]] == [[0, 1], [0, 1]]
    autoencoder = json.loads((out / "autoencoder.json").read_text())
    assert {(r["arch"], r["seed"]) for r in autoencoder["runs"]} == {(a, s) for a in ("pack2d", "maxpool")
                                                                     for s in (0, 1)}
    # with more than one core the study trains the autoencoders side by side, each run in its own folder
    side_by_side = StudyConfig(budget_name="quick", device="cpu").runs_launch().parallel
    jobs = sorted(p.parent.parent.name + "/" + p.parent.name
                  for p in (out / "autoencoder_seeds" / "runs").glob("*/seed_*/job.json"))
    assert jobs == (sorted(f"{r['arch']}@{r['levels']}_w{r['width']:g}/seed_{r['seed']}" for r in autoencoder["runs"])
                    if side_by_side else [])


def test_the_report_begins_with_the_regime_and_a_smoke_banner_and_shows_the_learned_column(tiny_study):
    out, _ = tiny_study
    html = (out / "report.html").read_text()
    body = html.split("</nav>", 1)[1]
    assert body.index("Regime: where these numbers come from") < body.index("The seed&#x27;s questions at a glance")
    assert "Smoke scale: verdicts describe untrained networks." in body
    regime = body.split("<h2>Regime", 1)[1].split("</section>", 1)[0]
    for fact in ("tiny", "0.0625", "32x48", "2 steps per experiment", "fit: 2 on the first 4 training images",
                 "synthetic", "0, 1", "CPU"):
        assert fact in regime, fact
    matrix = body.split("<h2>The experiment matrix</h2>", 1)[1].split("</section>", 1)[0]
    for column in ("held-out loss", "abs_rel / constant", "scale-matched / constant", "learned"):
        assert f"<th>{column}</th>" in matrix
    assert "are not compared with these runs" in matrix  # the seed's NYU numbers: another protocol


def test_a_second_call_reuses_finished_steps_and_force_reruns_them(tmp_path, tiny_budget):
    out = tmp_path / "study"
    run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=out, steps=["properties", "complexity"]))
    before = (out / "complexity.json").stat().st_mtime_ns
    again = run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=out, steps=["properties", "complexity"]))
    assert [r.status for r in again] == ["reused", "reused"]
    assert (out / "complexity.json").stat().st_mtime_ns == before
    forced = run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=out, steps=["properties"], force=True))
    assert forced[0].status == "ran"


def test_the_probe_steps_need_the_experiment_runs_they_ride_in(tmp_path, tiny_budget):
    with pytest.raises(ProbeError, match="run the experiments step first"):
        run_study(StudyConfig(budget_name=tiny_budget, device="cpu", out=tmp_path / "s", steps=["gradients"]))


def test_budgets_are_registered_once_and_the_bench_reads_the_same_standard_budget():
    import bench.standard_budget as bench

    assert set(BUDGETS) >= {"quick", "standard", "full"}
    assert bench.STANDARD is STANDARD is BUDGETS["standard"]
    assert (STANDARD.width, STANDARD.input_size, STANDARD.batch_size, STANDARD.lr) == (0.0625, (64, 96), 8, 3e-3)
    assert (STANDARD.experiment_steps, STANDARD.seeds, STANDARD.autoencoder_input) == (1500, 3, (32, 32))
    assert QUICK.smoke and not STANDARD.smoke and not BUDGETS["full"].smoke
    assert (STANDARD.fit_models, STANDARD.fit_images, STANDARD.fit_steps) == (("packnet_slim_b", "densedepth"), (64,), 600)


def test_seeds_override_the_budgets_and_quick_is_the_quick_budget():
    assert StudyConfig(budget_name="standard").seed_list() == [0, 1, 2]
    assert StudyConfig(budget_name="standard", seed=5, seeds=2).seed_list() == [5, 6]
    assert StudyConfig(quick=True, seeds=[3, 9]).seed_list() == [3, 9]
    assert StudyConfig(quick=True).budget is QUICK


def test_bad_study_requests_fail_before_any_work(tmp_path, run_cli):
    with pytest.raises(ProbeError, match="unknown study step 'nope'"):
        run_study(StudyConfig(quick=True, out=tmp_path / "a", steps=["nope"]))
    assert not (tmp_path / "a").exists()
    res = run_cli("study", "--quick", "--dataset", "nyu", "--out", tmp_path / "b")
    assert res.code == 2 and "--quick" in res.err and res.err.count("\n") == 1
    for flags, named in ((("--budget", "huge"), "--budget"), (("--seeds", "0"), "--seeds"),
                         (("--seeds", "1,1"), "--seeds"), (("--quick", "--budget", "full"), "--quick")):
        res = run_cli("study", *flags, "--out", tmp_path / "c")
        assert res.code == 2 and named in res.err and res.err.count("\n") == 1, (flags, res.err)
    assert not (tmp_path / "c").exists()


def test_the_fit_step_is_skipped_with_its_reason_on_a_dataset_read_from_files(tmp_path, monkeypatch):
    """The fit check cuts a generated training split; on NYU the study records it as skipped, and goes on."""
    from tests.data.fixtures import make_nyu_zip

    nyu = make_nyu_zip(tmp_path / "nyu", n_test=2)
    monkeypatch.setitem(BUDGETS, "full", replace(TINY, name="full"))
    records = run_study(StudyConfig(budget_name="full", dataset="nyu", data_root=nyu.root, device="cpu",
                                    out=tmp_path / "s", steps=["fit", "properties"]))
    assert [(r.name, r.status) for r in records] == [("fit", "skipped"), ("properties", "ran")]
    assert "--dataset nyu" in records[0].reason and not (tmp_path / "s" / "fit.json").exists()
    study = json.loads((tmp_path / "s" / "study.json").read_text())
    assert study["steps"][0]["status"] == "skipped" and study["steps"][0]["reason"] == records[0].reason
