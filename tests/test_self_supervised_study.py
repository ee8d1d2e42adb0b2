"""The self-supervised experiment matrix: its cells, their training configs, summaries over seeds, one schema."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from probe.errors import ProbeError
from probe.evaluate_pose import evaluate_pose
from probe.io import to_plain
from probe.self_supervised_study import (METRIC, QUICK, Interval, NoiseLevel, SelfSupervisedStudyConfig,
                                         SelfSupervisedStudyResult, parse_noise_levels, run_self_supervised_study,
                                         _test_split, study_runs)
from probe.models.posenet import PoseNet
from probe.training.checkpoint import latest_checkpoint, read_state


def _config(out: Path, **overrides) -> SelfSupervisedStudyConfig:
    base = dict(models=("densedepth",), seeds=(0,), noise_levels=(NoiseLevel(), NoiseLevel(std=0.2)),
                width=0.0625, pose_width=0.25, input_size=(32, 48), dataset_length=4, eval_length=4, max_steps=2,
                batch_size=2, lr=1e-3, device="cpu", out=out)
    return SelfSupervisedStudyConfig(**{**base, **overrides})


def test_the_matrix_has_a_run_without_velocity_and_one_per_noise_level_per_model_and_seed(tmp_path):
    config = _config(tmp_path, models=("packnet_b", "densedepth"), seeds=(0, 1))
    runs = study_runs(config)
    assert len(runs) == 2 * 2 * 3
    first = runs[:3]
    assert [(r.velocity_weight, r.noise.label) for r in first] == [(0.0, "clean"), (0.1, "clean"), (0.1, "std0.2")]
    assert first[0].train.dataset_options == {} and first[2].train.dataset_options["velocity_noise"] == 0.2
    assert all(r.train.objective == "self_supervised" and r.train.seed == r.seed for r in runs)
    assert len({r.id for r in runs}) == len(runs)
    assert all(r.train.checkpoint_every is None for r in runs)
    assert {r.train.checkpoint_every for r in study_runs(_config(tmp_path, checkpoint_every=50))} == {50}
    assert {r.train.source_average_steps for r in runs} == {0}
    assert {r.train.source_average_steps for r in study_runs(_config(tmp_path, source_average_steps=7))} == {7}
    assert {r.train.pose_inputs for r in runs} == {"stack"}
    assert {r.train.pose_inputs for r in study_runs(_config(tmp_path, pose_inputs="pairs"))} == {"pairs"}
    assert {r.train.automask_after for r in runs} == {0}
    assert {r.train.automask_after for r in study_runs(_config(tmp_path, automask_after=9))} == {9}
    assert {r.train.pose_source for r in runs} == {"posenet"}
    assert {r.train.pose_source for r in study_runs(_config(tmp_path, pose_source="exact"))} == {"exact"}
    only_velocity = study_runs(_config(tmp_path, include_no_velocity=False))
    assert [r.velocity_weight for r in only_velocity] == [0.1, 0.1]


def test_intervals_are_t_intervals_over_seeds():
    interval = Interval.of([1.0, 2.0, 3.0])
    assert interval.mean == 2.0 and interval.std == pytest.approx(1.0) and interval.n == 3
    assert interval.high - interval.mean == pytest.approx(4.303 / math.sqrt(3))
    single = Interval.of([0.5, float("nan")])
    assert single.n == 1 and math.isnan(single.std)


@pytest.mark.parametrize("overrides,match", [({"models": ("posenet",)}, "not a depth model"),
                                             ({"velocity_weight": 0.0}, "velocity-weight"),
                                             ({"seeds": (0, 0)}, "distinct"),
                                             ({"noise_levels": (), "include_no_velocity": False}, "no run left")])
def test_a_matrix_that_cannot_run_fails_before_training(tmp_path, overrides, match):
    with pytest.raises(ProbeError, match=match):
        run_self_supervised_study(_config(tmp_path / "never", **overrides))
    assert not (tmp_path / "never").exists()


def test_a_tiny_matrix_runs_scores_and_round_trips_through_its_json(tmp_path):
    seen = []
    result = run_self_supervised_study(_config(tmp_path), on_run=seen.append)
    assert [r.id for r in seen] == [r.id for r in result.runs] and len(result.runs) == 3
    for run in result.runs:
        assert run.steps == 2 and run.scale.n_images == 4
        assert (Path(run.run_dir) / "eval" / "scale.json").is_file()
        assert run.pose is not None and run.pose.offsets == [-1, 1]  # PoseNet scored against the exact poses
        assert run.consistency is not None and run.consistency.n_windows == 4  # the depth-multiplier scan
        assert (Path(run.run_dir) / "eval" / "consistency.json").is_file()
        assert 0.5 <= run.consistency.best_multiplier <= 2.0
    clean = result.condition("densedepth", 0.1)
    assert clean.seeds == [0] and clean.scale_ratio.n == 1 and clean.photometric_multiplier.n == 1
    # the image-blind baseline: the 4-window training split's mean depth map, scored on the same 4 test windows
    blind = result.mean_map
    assert blind is not None and blind.model == "mean depth map" and blind.n_images == 4
    assert blind.options["training_images"] == 4 and blind.constant_median_scaled == run.scale.constant_median_scaled
    # the exact speed of each of the 4 test windows, for what a speed bias predicts
    assert result.test_speeds is not None and len(result.test_speeds) == 4 and min(result.test_speeds) > 0
    data = json.loads((tmp_path / "self_supervised.json").read_text())
    assert data["analysis"] == "self_supervised"
    again = SelfSupervisedStudyResult.from_json(data)
    assert to_plain(again.to_json()) == to_plain(result.to_json())
    ratio = again.conditions[0].scale_ratio  # one seed: a mean, no spread (null in JSON, NaN again here)
    assert ratio.mean == result.conditions[0].scale_ratio.mean and math.isnan(ratio.std) and ratio.n == 1
    with pytest.raises(ProbeError, match="no condition"):
        result.condition("packnet_b", 0.1)


def test_a_run_with_paired_pose_inputs_scores_its_pair_network(tmp_path):
    result = run_self_supervised_study(_config(tmp_path, include_no_velocity=False, noise_levels=(NoiseLevel(),),
                                               pose_inputs="pairs", source_average_steps=1))
    (run,) = result.runs
    assert run.pose is not None and run.pose.offsets == [-1, 1] and run.pose.n_windows == 4
    recorded = json.loads((Path(run.run_dir) / "config.json").read_text())["train"]["config"]
    assert (recorded["pose_inputs"], recorded["source_average_steps"]) == ("pairs", 1)


def test_a_run_with_a_larger_translation_scale_is_trained_and_scored_with_it(tmp_path):
    config = _config(tmp_path, include_no_velocity=False, noise_levels=(NoiseLevel(),), pose_translation_scale=1.0)
    result = run_self_supervised_study(config)
    (run,) = result.runs
    recorded = json.loads((Path(run.run_dir) / "config.json").read_text())["train"]["config"]
    assert recorded["pose_translation_scale"] == 1.0
    # the same weights read with the published 0.01 give translations 100x shorter: the score used the run's scale
    state = read_state(latest_checkpoint(Path(run.run_dir), with_state=True))["objective"]["pose_net"]
    published = PoseNet(width=0.25, offsets=(-1, 1))
    published.load_state_dict(state)
    published_ratios = [s["translation_ratio"] for s in evaluate_pose(published, _test_split(config)).per_source]
    assert [s["translation_ratio"] for s in run.pose.per_source] == pytest.approx(
        [100 * r for r in published_ratios], rel=1e-4)
    assert SelfSupervisedStudyResult.from_json(json.loads((tmp_path / "self_supervised.json").read_text())
                                               ).config.pose_translation_scale == 1.0


def test_an_exact_pose_control_trains_the_depth_alone_and_scores_no_posenet(tmp_path):
    result = run_self_supervised_study(_config(tmp_path, include_no_velocity=False, noise_levels=(NoiseLevel(),),
                                               pose_source="exact"))
    (run,) = result.runs
    recorded = json.loads((Path(run.run_dir) / "config.json").read_text())["train"]["config"]
    assert recorded["pose_source"] == "exact"
    assert run.pose is None  # no learnt pose to score
    assert run.consistency is not None and run.consistency.options["own_poses"] == "exact"
    assert run.consistency.range_losses == pytest.approx(run.consistency.range_losses_exact, rel=1e-9)
    assert SelfSupervisedStudyResult.from_json(json.loads((tmp_path / "self_supervised.json").read_text())
                                               ).config.pose_source == "exact"


def test_noise_levels_parse_std_bias_and_dropout_and_refuse_the_rest():
    assert parse_noise_levels("0, 0.2,b-0.1,d0.5") == (NoiseLevel(), NoiseLevel(std=0.2), NoiseLevel(bias=-0.1),
                                                       NoiseLevel(dropout=0.5))
    assert parse_noise_levels("") == ()
    for bad in ("x", "-0.1", "d1.5", "bnan"):
        with pytest.raises(ProbeError, match="--velocity-noise"):
            parse_noise_levels(bad)


def test_quick_fills_the_settings_left_at_their_defaults_and_sizes_the_split_for_the_steps(tmp_path):
    plain = SelfSupervisedStudyConfig(out=tmp_path)
    assert plain.resolved() == plain  # nothing to apply
    quick = SelfSupervisedStudyConfig(quick=True, seeds=(3, 4), input_size=(32, 48), out=tmp_path).resolved()
    assert (quick.width, quick.max_steps, quick.pose_lr, quick.smoothness_weight, quick.automask_after) == (
        QUICK["width"], QUICK["max_steps"], QUICK["pose_lr"], QUICK["smoothness_weight"], QUICK["automask_after"])
    assert 0 < QUICK["automask_after"] < QUICK["max_steps"]  # PoseNet's direction first, then auto-masking
    assert study_runs(quick)[0].train.automask_after == QUICK["automask_after"]
    assert quick.seeds == (3, 4) and quick.input_size == (32, 48)  # given settings win
    assert quick.dataset_length == QUICK["max_steps"] * QUICK["batch_size"]  # one epoch holds every step


def test_quick_leaves_the_settings_given_explicitly_even_at_their_default_value(tmp_path):
    published = SelfSupervisedStudyConfig(quick=True, automask_after=0, smoothness_weight=1e-3, out=tmp_path)
    assert published.resolved().automask_after == QUICK["automask_after"]  # not named as given: QUICK fills it
    kept = published.resolved(given={"automask_after", "smoothness_weight"})
    assert (kept.automask_after, kept.smoothness_weight) == (0, 1e-3)
    assert kept.max_steps == QUICK["max_steps"] and kept.pose_lr == QUICK["pose_lr"]  # the rest still QUICK's


def test_the_metric_recipe_trains_longer_with_posenet_on_pairs_at_translation_scale_one(tmp_path):
    metric = SelfSupervisedStudyConfig(recipe="metric", lr=5e-4, seeds=(1,), out=tmp_path).resolved(given={"lr"})
    assert metric.recipe == "metric" and metric.lr == 5e-4  # given: kept
    assert (metric.max_steps, metric.lr_schedule, metric.pose_lr, metric.pose_inputs,
            metric.pose_translation_scale) == (9600, "cosine", 1e-3, "pairs", 1.0)
    assert (metric.width, metric.smoothness_weight, metric.automask_after) == (
        QUICK["width"], QUICK["smoothness_weight"], QUICK["automask_after"])  # the rest as the CPU recipe
    assert metric.dataset_length == 9600 * QUICK["batch_size"]
    train = study_runs(metric)[0].train
    assert (train.max_steps, train.lr_schedule, train.pose_inputs, train.pose_translation_scale, train.lr,
            train.pose_lr) == (9600, "cosine", "pairs", 1.0, 5e-4, METRIC["pose_lr"])
    assert SelfSupervisedStudyConfig(quick=True, out=tmp_path).resolved().recipe == "quick"


@pytest.mark.parametrize("fields, message", [
    ({"recipe": "long"}, "--recipe long: expected one of quick, metric"),
    ({"recipe": "metric", "quick": True}, "--quick and --recipe metric"),
])
def test_an_unknown_or_contradictory_recipe_is_refused_in_one_line(tmp_path, fields, message):
    with pytest.raises(ProbeError, match=message) as caught:
        SelfSupervisedStudyConfig(out=tmp_path, **fields).resolved()
    assert "\n" not in str(caught.value)


def test_cli_refuses_an_unknown_recipe_without_training(run_cli, tmp_path):
    res = run_cli("experiment", "self-supervised", "--recipe", "long", "--out", tmp_path / "ssl")
    assert res.code == 2 and "--recipe long: expected one of quick, metric" in res.out + res.err
    assert not (tmp_path / "ssl").exists()


def test_cli_quick_keeps_a_flag_given_with_its_default_value(run_cli, tmp_path):
    out = tmp_path / "ssl"
    res = run_cli("experiment", "self-supervised", "--quick", "--automask-after", "0", "--models", "densedepth",
                  "--seeds", "0", "--steps", "1", "--velocity-noise", "0", "--skip-no-velocity-run", "--width",
                  "0.0625", "--pose-width", "0.25", "--input-size", "32x48", "--batch-size", "2", "--eval-length",
                  "2", "--device", "cpu", "--out", out)
    assert res.code == 0, res
    config = SelfSupervisedStudyResult.from_json(json.loads((out / "self_supervised.json").read_text())).config
    assert config.automask_after == 0  # given on the command line, although 0 is the default
    assert config.smoothness_weight == QUICK["smoothness_weight"]  # not given: the recipe's
    assert config.max_steps == 1 and config.input_size == (32, 48)


def test_cli_runs_the_study_prints_both_answers_and_writes_one_schema(run_cli, tmp_path):
    out = tmp_path / "ssl"
    res = run_cli("experiment", "self-supervised", "--models", "densedepth", "--seeds", "0", "--steps", "1",
                  "--velocity-noise", "0", "--skip-no-velocity-run", "--width", "0.0625", "--pose-width", "0.25",
                  "--input-size", "32x48", "--batch-size", "2", "--eval-length", "2", "--mean-map-images", "0",
                  "--device", "cpu", "--out", out)
    assert res.code == 0, res
    assert "Does the velocity loss recover metric scale? Inconclusive" in res.out  # one seed: no interval
    assert "Does PackNet beat DenseDepth in its own regime? Inconclusive" in res.out  # no PackNet run
    result = SelfSupervisedStudyResult.from_json(json.loads((out / "self_supervised.json").read_text()))
    assert [r.id for r in result.runs] == ["densedepth_velocity_clean_seed0"] and result.runs[0].steps == 1
    assert result.mean_map is None and result.config.mean_map_images == 0  # --mean-map-images 0: not scored
    assert (out / "self_supervised_scale.png").is_file()


@pytest.mark.parametrize("flags,match", [(["--velocity-noise", "fast"], "--velocity-noise"),
                                         (["--seeds", "a,b"], "--seeds"),
                                         (["--models", "posenet"], "--models"),
                                         (["--input-size", "big"], "--input-size"),
                                         (["--mean-map-images", "-1"], "--mean-map-images")])
def test_cli_refuses_bad_flags_in_one_line_before_writing(run_cli, tmp_path, flags, match):
    res = run_cli("experiment", "self-supervised", *flags, "--out", tmp_path / "never")
    assert res.code == 2 and match in res.err and len(res.err.strip().splitlines()) == 1, res
    assert not (tmp_path / "never").exists()


def test_parallel_2_gives_the_sequential_matrix_numbers(tmp_path):
    """Each cell seeds itself: two worker processes (one thread each, as these runs) write the same numbers."""
    from probe.jobs import Launch, json_differences

    config = dict(noise_levels=(NoiseLevel(std=0.2),), max_steps=2)  # two cells: without and with velocity
    sequential = run_self_supervised_study(_config(tmp_path / "sequential", **config), launch=Launch(threads=1))
    parallel = run_self_supervised_study(_config(tmp_path / "parallel", **config), launch=Launch(parallel=2, threads=1))
    sequential, parallel = sequential.to_json(), parallel.to_json()

    def numbers(study: dict) -> dict:  # without the wall times and the folders
        runs = [{k: v for k, v in run.items() if k not in ("seconds", "run_dir")} for run in study["runs"]]
        return to_plain({**study, "config": {**study["config"], "out": None}, "runs": runs})

    assert len(parallel["runs"]) == 2 and json_differences(numbers(sequential), numbers(parallel)) == []
    pids = {json.loads((Path(r["run_dir"]) / "job.json").read_text())["attempts"][0]["pid"] for r in parallel["runs"]}
    assert len(pids) == 2
