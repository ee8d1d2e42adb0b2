"""probe fit trains on exactly its first N training images, scores them and held-out ones, and says what fits."""

from __future__ import annotations

import json

import pytest

from analyses.collapse import CollapseResult
from analyses.fit import FitConfig, FitResult, fit_answer, parse_image_counts, training_images
from probe.errors import ProbeError
from probe.report.build import build_report
from tests import result_examples as ex

TINY = ("--width", "0.0625", "--input-size", "32x48", "--device", "cpu")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One tiny `probe fit` run from the command line: one model, N in (2, 4), 3 steps, one seed."""
    import cli

    out = tmp_path_factory.mktemp("fit") / "run"
    with pytest.raises(SystemExit) as done:
        cli.main(["fit", "--model", "packnet_slim_b", "--images", "4,2", "--steps", "3", "--test-images", "4",
                  *TINY, "--out", str(out)])
    assert done.value.code in (0, None)
    return out


def test_fit_writes_a_result_the_dataclass_reads_back(fitted):
    result = FitResult.read(fitted / "fit.json")
    assert result.to_json() == json.loads((fitted / "fit.json").read_text())
    assert [(r.model, r.images, r.seed, r.steps) for r in result.runs] == [("packnet_slim_b", 2, 0, 3),
                                                                          ("packnet_slim_b", 4, 0, 3)]
    for r in result.runs:
        assert r.train.n_images == r.images and len(r.train.per_image_abs_rel) == r.images  # its own N images
        assert r.test.n_images == 4
        assert r.train.constant_abs_rel != r.test.constant_abs_rel  # training and test images differ
        # the fit set's own mean depth map, scored on the fit set and on the test images
        assert r.train.image_ratio is not None and r.test.image_ratio is not None
        assert r.train.mean_map_abs_rel != r.test.mean_map_abs_rel
        run_dir = fitted / "packnet_slim_b" / f"images_{r.images}" / "seed_0"
        assert r.run_dir == str(run_dir) and (run_dir / "train.json").is_file()  # an ordinary run folder
        assert json.loads((run_dir / "train.json").read_text())["steps"] == 3
    assert [c.images for c in result.cells] == [2, 4]
    for c in result.cells:  # one seed: the run's own bootstrap over its images
        run = next(r for r in result.runs if r.images == c.images)
        assert c.train_scale_matched_ratio == run.train.scale_matched_ratio
        assert c.verdict in ("fits", "does not fit", "inconclusive")
    assert (fitted / "fit.png").stat().st_size > 0
    assert "fit" in json.loads((fitted / "config.json").read_text())


def test_the_scored_training_images_are_the_ones_the_run_trained_on():
    config = FitConfig(models=["packnet_slim_b"], images=[3], input_size=(32, 48), seed=5)
    train_config = config.train_config("packnet_slim_b", 3, 5)
    images = training_images(train_config)
    assert len(images) == 3 and train_config.dataset_length == 3 and not train_config.augment
    names = [images[i]["name"] for i in range(3)]
    assert all("/train/seed5/" in name for name in names)  # a generated item depends on the run's seed
    assert train_config.batch_size == 3  # capped at N


def test_report_renders_the_fit_section_and_answers_from_fit_json(fitted, tmp_path):
    html = build_report([fitted], tmp_path / "report.html").read_text()
    assert "<h2>Can the model fit its own training images?</h2>" in html
    assert "packnet_slim_b" in html and "fit.json: every run" in html
    assert "fit its own training images" not in html.split('id="not-run"')[1]  # built, not listed as not run
    assert "Controls (tests/test_controls.py)" in html


def test_answer_names_the_largest_n_each_model_fits():
    answer = fit_answer(ex.fit({"packnet_slim_b": {8: 0.2, 16: 0.75, 64: 1.0}, "packnet_b": {8: 0.1, 64: 0.2}},
                               seeds=(0, 1, 2)))
    assert answer.verdict == "partly"
    assert "packnet_slim_b fits up to 8 images" in answer.sentence
    assert "packnet_b fits up to 64 images" in answer.sentence
    assert fit_answer(ex.fit({"packnet_b": {8: 1.0, 16: 0.98}}, seeds=(0, 1, 2))).verdict == "no"
    assert fit_answer(ex.fit({"packnet_b": {8: 0.1, 16: 0.2}}, seeds=(0, 1, 2))).verdict == "yes"


def test_a_malformed_fit_json_is_one_line_and_the_other_sections_render(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir(), bad.mkdir()
    ex.write(ex.EXAMPLES[CollapseResult](), good)
    doc = ex.fit({"packnet_b": {8: 0.2}}).to_json()
    doc["cells"][0]["images"] = "eight"
    (bad / "fit.json").write_text(json.dumps(doc))
    html = build_report([good, bad], tmp_path / "r.html").read_text()
    not_run = html.split('id="not-run"')[1]
    assert f"{bad / 'fit.json'}: cells[0].images: expected" in not_run
    assert "<h2>Can the model fit its own training images?</h2>" not in html
    assert "collapse to the mean?</h2>" in html


@pytest.mark.parametrize("args, flag", [
    (("--images", "8,x"), "--images"),
    (("--images", "0"), "--images"),
    (("--images", "8,8"), "--images"),
    (("--steps", "0"), "--steps"),
    (("--images", str(2**70)), "--images"),
    (("--steps", str(2**70)), "--steps"),
    (("--lr", "-1"), "--lr"),
    (("--loss", "nope"), "--loss"),
    (("--loss-scales", "coarse"), "--loss-scales"),
    (("--test-images", "0"), "--test-images"),
    (("--dataset", "nyu"), "--dataset"),
])
def test_bad_flags_are_one_line_errors_and_exit_2(run_cli, tmp_path, args, flag):
    res = run_cli("fit", "--model", "packnet_slim_b", *TINY, *args, "--out", tmp_path / "f")
    assert res.code == 2, res
    assert res.err.count("\n") == 1 and flag in res.err and "Traceback" not in res.err
    assert not (tmp_path / "f").exists()  # refused before any folder or training


def test_no_model_is_a_one_line_error():
    with pytest.raises(ProbeError, match="--model"):
        FitConfig().validate()
    with pytest.raises(ProbeError, match="--images"):
        parse_image_counts("8,-1")


def test_the_answer_compares_with_the_baseline_paired_by_seed_in_both_directions_and_not_when_equal():
    from analyses.fit import paired_with_baseline

    worse = ex.fit({"packnet_slim_b": {8: 0.2, 64: 0.95}, "densedepth": {8: 0.1, 64: 0.5}}, seeds=(0, 1, 2))
    assert [(n, v.verdict) for n, v in paired_with_baseline(worse, "packnet_slim_b", "densedepth")] == [
        (8, "fits worse"), (64, "fits worse")]
    assert "against densedepth, paired by seed" in fit_answer(worse).sentence
    better = ex.fit({"packnet_slim_b": {8: 0.1}, "densedepth": {8: 0.6}}, seeds=(0, 1, 2))
    assert [v.verdict for _, v in paired_with_baseline(better, "packnet_slim_b", "densedepth")] == ["fits better"]
    same = ex.fit({"packnet_slim_b": {8: 0.4}, "densedepth": {8: 0.4}}, seeds=(0, 1, 2))
    assert [v.verdict for _, v in paired_with_baseline(same, "packnet_slim_b", "densedepth")] == ["inconclusive"]
    one_seed = ex.fit({"packnet_slim_b": {8: 0.2}, "densedepth": {8: 0.9}}, seeds=(0,))
    assert paired_with_baseline(one_seed, "packnet_slim_b", "densedepth") == []  # no interval from one pair
    assert "paired by seed" not in fit_answer(one_seed).sentence


def test_runs_side_by_side_give_the_sequential_runs_numbers(tmp_path):
    """--parallel 2 with one thread per run: every run's scores equal the sequential one-thread runs', in order."""
    from analyses.fit import run
    from probe.jobs import Launch

    def fit(out, launch):
        config = FitConfig(models=["packnet_slim_b"], baselines=["densedepth"], images=[4], steps=3, width=0.0625,
                           input_size=(32, 48), test_images=2, device="cpu", seeds=[0, 1], out=out)
        return run(config, launch=launch)

    sequential = fit(tmp_path / "seq", Launch(threads=1))
    parallel = fit(tmp_path / "par", Launch(parallel=2, threads=1))
    key = [(r.model, r.images, r.seed) for r in sequential.runs]
    assert key == [(m, 4, s) for m in ("packnet_slim_b", "densedepth") for s in (0, 1)]
    assert [(r.model, r.images, r.seed) for r in parallel.runs] == key
    assert [(r.train, r.test) for r in parallel.runs] == [(r.train, r.test) for r in sequential.runs]
    assert len({r.train.abs_rel for r in sequential.runs}) == 4  # four different runs, not one result repeated
    assert all((tmp_path / "par" / m / "images_4" / f"seed_{s}" / "job.json").is_file() for m, _, s in key)
