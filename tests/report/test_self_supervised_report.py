"""The self-supervised study's two verdicts on made-up results (positive and negative controls for each rule), and
its report sections built from a ``self_supervised.json`` written through the study's dataclass."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from probe.errors import ProbeError
from probe.evaluate_consistency import ConsistencyEvaluation
from probe.evaluate_pose import PoseEvaluation
from probe.evaluate_scale import DepthBin, ScaleEvaluation
from probe.observability import Observability
from probe.report.build import build_report, report_contents
from probe.report.collect import Loaded, Results, collect_results
from probe.self_supervised_study import (BEATS_QUESTION, SCALE_QUESTION, Interval, _interval_text, NoiseLevel, SelfSupervisedRun,
                                         SelfSupervisedStudyConfig, SelfSupervisedStudyResult, band_verdict,
                                         consistency_reading, metric_scale_answer, models_section, packnet_vs_densedepth_answer,
                                         range_reading, _depth_profile_table, _pose_runs_table, summarise)
from tests import result_examples as examples

CLEAN, NOISY = NoiseLevel(), NoiseLevel(std=0.2)


def _run(model: str, seed: int, weight: float, noise: NoiseLevel, ratio: float, abs_rel: float,
         constant: float = 0.25, uncropped: float | None = None, slope: float | None = None) -> SelfSupervisedRun:
    scale = ScaleEvaluation(dataset="synthetic_video", split="test", protocol="nyu_eigen", model=model, n_images=8,
                            metrics={"abs_rel": abs_rel + abs(1 - ratio)}, metrics_median_scaled={"abs_rel": abs_rel,
                                                                                                  "delta1": 0.8},
                            constant_median_scaled={"abs_rel": constant},
                            ratio={"median": ratio, "within_10_percent": float(abs(ratio - 1) <= 0.1)},
                            per_image_ratio=[ratio] * 8,
                            ratio_uncropped={"median": uncropped if uncropped is not None else ratio},
                            per_image_ratio_uncropped=[uncropped if uncropped is not None else ratio] * 8,
                            range_slope={"n": 0} if slope is None else {"median": slope, "n": 8},
                            per_image_range_slope=[slope if slope is not None else float("nan")] * 8,
                            ratio_by_depth=[])
    tag = f"velocity_{noise.label}" if weight else "no_velocity"
    return SelfSupervisedRun(id=f"{model}_{tag}_seed{seed}", model=model, seed=seed, velocity_weight=weight,
                             noise=noise, params=1000, steps=10, seconds=1.0, reprojection_first=0.04,
                             reprojection_last=0.02, pose_scale_last=1.0, scale=scale, run_dir=f"runs/{seed}")


def _study(cells: dict[tuple[str, float, NoiseLevel], list[tuple[float, float]]]) -> SelfSupervisedStudyResult:
    """cells: (model, velocity weight, noise) -> per seed (scale factor, median-scaled abs_rel)."""
    runs = [_run(model, seed, weight, noise, ratio, abs_rel)
            for (model, weight, noise), values in cells.items() for seed, (ratio, abs_rel) in enumerate(values)]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    return SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs))


def _scale_study(ratios: list[float], model: str = "packnet_b") -> SelfSupervisedStudyResult:
    return _study({(model, 0.0, CLEAN): [(0.8, 0.2)] * len(ratios),
                   (model, 0.1, CLEAN): [(r, 0.2) for r in ratios],
                   (model, 0.1, NOISY): [(r * 1.3, 0.2) for r in ratios]})


def test_scale_factors_near_one_over_seeds_answer_yes():
    answer = metric_scale_answer(_scale_study([1.0, 0.98, 1.02]))
    assert answer.verdict == "yes" and answer.question == SCALE_QUESTION
    assert answer.sentence.startswith("Yes: ") and "packnet_b 1 [0.95, 1.05]" in answer.sentence
    assert "std0.2" in answer.sentence  # how it degrades under noise is stated too


def test_scale_factors_far_from_one_answer_no():
    answer = metric_scale_answer(_scale_study([0.40, 0.45, 0.35]))
    assert answer.verdict == "no" and answer.sentence.startswith("No: ")


@pytest.mark.parametrize("ratios", [[0.7, 1.0, 1.3], [1.0]])
def test_a_wide_interval_or_a_single_seed_is_inconclusive(ratios):
    assert metric_scale_answer(_scale_study(ratios)).verdict == "inconclusive"


def test_models_that_disagree_make_the_scale_answer_partly():
    result = _study({("packnet_b", 0.1, CLEAN): [(1.0, 0.2), (0.98, 0.2), (1.02, 0.2)],
                     ("densedepth", 0.1, CLEAN): [(0.4, 0.2), (0.45, 0.2), (0.35, 0.2)]})
    assert metric_scale_answer(result).verdict == "partly"


def test_without_a_clean_velocity_run_the_scale_question_is_inconclusive():
    result = _study({("packnet_b", 0.0, CLEAN): [(1.0, 0.2), (1.0, 0.2)],
                     ("packnet_b", 0.1, NOISY): [(1.0, 0.2), (1.0, 0.2)]})
    assert metric_scale_answer(result).verdict == "inconclusive"


def test_the_band_rule_reads_the_interval_not_the_mean():
    assert band_verdict(Interval(1.0, 0.01, 0.95, 1.05, 3)) == "yes"
    assert band_verdict(Interval(1.0, 0.2, 0.5, 1.5, 3)) == "inconclusive"  # mean on 1, interval far wider
    assert band_verdict(Interval(0.4, 0.02, 0.35, 0.45, 3)) == "no"
    assert band_verdict(Interval(1.15, 0.02, 1.12, 1.18, 3)) == "no"
    assert band_verdict(Interval(1.0, float("nan"), float("nan"), float("nan"), 1)) == "inconclusive"


def _model_study(packnet: list[float], densedepth: list[float]) -> SelfSupervisedStudyResult:
    return _study({("packnet_b", 0.0, CLEAN): [(1.0, a) for a in packnet],
                   ("densedepth", 0.0, CLEAN): [(1.0, a) for a in densedepth],
                   ("packnet_b", 0.1, CLEAN): [(1.0, a) for a in packnet],
                   ("densedepth", 0.1, CLEAN): [(1.0, a) for a in densedepth]})


def test_packnet_clearly_lower_abs_rel_on_paired_seeds_answers_yes():
    answer = packnet_vs_densedepth_answer(_model_study([0.10, 0.115, 0.12], [0.15, 0.16, 0.17]))
    assert answer.verdict == "yes" and answer.question == BEATS_QUESTION
    assert len(answer.evidence) == 2 and all(row["verdict"] == "yes" for row in answer.evidence)


def test_packnet_clearly_higher_abs_rel_answers_no():
    assert packnet_vs_densedepth_answer(_model_study([0.15, 0.16, 0.17], [0.10, 0.115, 0.12])).verdict == "no"


def test_overlapping_abs_rel_is_inconclusive():
    assert packnet_vs_densedepth_answer(_model_study([0.10, 0.16, 0.13], [0.12, 0.13, 0.14])).verdict == "inconclusive"


def test_models_that_do_not_beat_the_constant_predictor_are_not_compared():
    # PackNet is clearly lower, but both are above the constant predictor's 0.25: neither learnt depth
    answer = packnet_vs_densedepth_answer(_model_study([0.30, 0.31, 0.32], [0.40, 0.41, 0.42]))
    assert answer.verdict == "inconclusive" and "neither beats the constant predictor" in answer.sentence


def test_a_win_over_a_model_that_learnt_no_depth_names_it():
    # PackNet beats the constant predictor's 0.25, DenseDepth does not: the verdict stands, with the caveat
    answer = packnet_vs_densedepth_answer(_model_study([0.10, 0.115, 0.12], [0.26, 0.27, 0.25]))
    assert answer.verdict == "yes" and "densedepth does not beat the constant predictor" in answer.sentence


def test_a_study_of_one_architecture_cannot_compare():
    assert packnet_vs_densedepth_answer(_scale_study([1.0, 1.0])).verdict == "inconclusive"


def test_the_report_shows_both_sections_with_the_figure_from_the_study_json(tmp_path):
    result = _model_study([0.10, 0.115, 0.12], [0.15, 0.16, 0.17])
    result.save(tmp_path / "ssl")
    assert (tmp_path / "ssl" / "self_supervised_scale.png").read_bytes()[:4] == b"\x89PNG"
    html = build_report([tmp_path / "ssl"], tmp_path / "report.html").read_text()
    assert "<h2>Does the velocity loss recover metric scale?</h2>" in html
    assert "<h2>Does PackNet beat DenseDepth in its own regime?</h2>" in html
    assert html.count("data:image/png;base64,") >= 1 and "Scale factor per velocity-noise level" in html
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "self_supervised.json").write_text(json.dumps({"analysis": "self_supervised", "runs": []}))
    with pytest.raises(ProbeError, match=r"bad/self_supervised.json: schema_version"):  # one line naming file and key
        build_report([bad], tmp_path / "bad.html")


@pytest.mark.parametrize("recipe, schedule, said", [
    ("metric", "cosine", "Budget per run (recipe metric): 10 steps"),
    (None, "constant", "Budget per run: 10 steps"),
])
def test_the_budget_line_names_the_recipe_and_the_learning_rate_schedule(tmp_path, recipe, schedule, said):
    result = _model_study([0.10, 0.115, 0.12], [0.15, 0.16, 0.17])
    result = replace(result, config=replace(result.config, recipe=recipe, lr_schedule=schedule, pose_lr=1e-3))
    result.save(tmp_path / "ssl", figures=False)
    html = build_report([tmp_path / "ssl"], tmp_path / "report.html").read_text()
    assert said in html and f"(pose 0.001, {schedule if schedule == 'constant' else 'cosine schedule'})" in html
    assert ("recipe" in html.split("Budget per run")[1][:20]) == (recipe is not None)


def test_an_unreadable_study_json_is_named_on_one_line_though_two_sections_need_it(tmp_path):
    run = tmp_path / "run"
    examples.write(examples.properties(), run)  # something readable, so the report is built
    stale = {"analysis": "self_supervised", "schema_version": SelfSupervisedStudyResult.schema_version}
    (run / "self_supervised.json").write_text(json.dumps(stale))
    _, not_run = report_contents(collect_results([run]))
    naming = [line for line in not_run if str(run / "self_supervised.json") in line]
    assert len(naming) == 1 and "config: missing key" in naming[0] and SCALE_QUESTION in naming[0]
    assert f"{BEATS_QUESTION} (could not read self_supervised.json: see above)" in not_run


def test_angles_are_shown_in_degrees_with_one_decimal_not_in_exponent_form():
    from probe.self_supervised_study import _interval_text

    interval = Interval.of([120.0, 130.0])  # mean 125, t(1) = 12.706, std 7.07: half-width 63.5
    assert _interval_text(interval, decimals=1) == "125.0 [61.5, 188.5]"
    assert _interval_text(interval, 2) == "1.2e+02 [61, 1.9e+02]"  # what significant digits made of it
    assert _interval_text(Interval.of([7.25]), decimals=1) == "7.2 (n=1, no interval)"


def test_a_scale_near_one_of_a_depth_that_does_not_beat_the_constant_predictor_is_inconclusive():
    """Learned gate: the scale factor of a structureless depth (median-scaled abs_rel at the constant predictor's
    0.25) says nothing about metric scale, however near 1; the same factors with a learnt depth answer yes."""
    unlearnt = _study({("packnet_b", 0.1, CLEAN): [(1.0, 0.26), (0.98, 0.25), (1.02, 0.27)]})
    answer = metric_scale_answer(unlearnt)
    assert answer.verdict == "inconclusive" and "not the scale of a learnt depth" in answer.sentence
    assert "the depth beats the constant predictor in 0 of 3 seeds" in answer.sentence
    learnt = _study({("packnet_b", 0.1, CLEAN): [(1.0, 0.2), (0.98, 0.2), (1.02, 0.2)]})
    assert metric_scale_answer(learnt).verdict == "yes"


def test_the_scale_answer_counts_the_seeds_whose_depth_learnt():
    one_of_three = _study({("packnet_b", 0.1, CLEAN): [(0.81, 0.22), (0.53, 0.26), (1.15, 0.25)]})
    answer = metric_scale_answer(one_of_three)  # mean abs_rel 0.243 < 0.25: learnt on average, 1 seed of 3
    assert "in 1 of 3 seeds" in answer.sentence and "not the scale of a learnt depth" not in answer.sentence
    assert answer.evidence[0]["seeds whose depth beats the constant predictor"] == "1 of 3"


def test_without_a_study_json_its_sections_are_left_out_not_listed_as_not_run(tmp_path):
    """`probe study` does not run this experiment: its report must not list the two questions as not run."""
    examples.write(examples.properties(), tmp_path / "run")
    sections, not_run = report_contents(collect_results([tmp_path / "run"]))
    assert not any(SCALE_QUESTION in line or BEATS_QUESTION in line for line in not_run), not_run
    assert not any(s.key.startswith("self_supervised") for s in sections)


# -- the photometric self-consistency reading of a missed scale (CONSISTENCY_RULE) -----------------------------


def _scanned(ratios: list[float], multipliers: list[float]) -> SelfSupervisedStudyResult:
    """Clean velocity runs with these scale factors whose reprojection loss is lowest at these depth multipliers."""
    result = _study({("packnet_b", 0.1, CLEAN): [(r, 0.2) for r in ratios]})
    for run, m in zip(result.runs, multipliers):
        run.consistency = ConsistencyEvaluation(dataset="synthetic_video_outdoor", n_windows=8,
                                                multipliers=[0.5, 1.0, 2.0], losses=[0.2, 0.1, 0.2],
                                                best_multiplier=m, loss_at_one=0.1, loss_at_best=0.09)
    result.conditions = summarise(result.runs)
    return result


def test_a_missed_scale_whose_own_objective_points_at_metric_depth_reads_as_an_optimisation_lag():
    result = _scanned([0.78, 0.72, 0.80], [0.80, 0.73, 0.79])  # scaling by the multiplier lands near 1
    (clean,) = result.conditions
    assert consistency_reading(clean) == "lag"
    answer = metric_scale_answer(result)
    assert answer.verdict == "no" and "optimisation lag" in answer.sentence
    assert "CONSISTENCY" not in answer.rule and "own PoseNet" in answer.rule


def test_a_missed_scale_that_the_poses_share_reads_as_the_objective():
    result = _scanned([0.78, 0.72, 0.80], [1.0, 0.98, 1.01])  # the depth already sits where its poses want it
    (clean,) = result.conditions
    assert consistency_reading(clean) == "objective"
    assert "the objective itself" in metric_scale_answer(result).sentence


def test_a_metric_scale_needs_no_reading_and_unscanned_runs_get_none():
    assert consistency_reading(_scanned([1.0, 0.98, 1.02], [1.0, 1.0, 1.0]).conditions[0]) == "consistent"
    plain = _study({("packnet_b", 0.1, CLEAN): [(0.78, 0.2), (0.72, 0.2), (0.80, 0.2)]})
    assert consistency_reading(plain.conditions[0]) == "none"
    assert "reprojection loss is lowest" not in metric_scale_answer(plain).sentence


def test_a_multiplier_spread_too_wide_to_decide_gives_no_reading():
    result = _scanned([0.78, 0.72, 0.80], [0.5, 1.0, 1.6])
    assert consistency_reading(result.conditions[0]) == "none"
    assert "optimisation lag" not in metric_scale_answer(result).sentence


def test_the_scale_answer_states_the_uncropped_factor_beside_the_protocols_without_changing_the_verdict():
    runs = [_run("packnet_b", seed, 0.1, CLEAN, r, 0.2, uncropped=u)
            for seed, (r, u) in enumerate([(0.85, 1.01), (0.83, 0.96), (0.84, 0.99)])]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    result = SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs))
    answer = metric_scale_answer(result)
    assert answer.verdict == "no"  # the protocol's crop decides
    assert "Without the protocol's crop (every valid pixel) packnet_b's scale factor is 0.987" in answer.sentence
    assert "(yes by the same band)" in answer.sentence
    same = _study({("packnet_b", 0.1, CLEAN): [(0.85, 0.2), (0.83, 0.2), (0.84, 0.2)]})  # no crop: nothing added
    assert "Without the protocol's crop" not in metric_scale_answer(same).sentence


def test_a_crop_that_misses_while_the_whole_image_is_metric_reads_as_structure_not_scale():
    runs = [_run("packnet_b", seed, 0.1, CLEAN, r, 0.2, uncropped=u)
            for seed, (r, u) in enumerate([(0.85, 1.01), (0.83, 0.96), (0.84, 0.99)])]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    (clean,) = summarise(runs)
    assert consistency_reading(clean) == "structure"
    result = SelfSupervisedStudyResult(config=config, runs=runs, conditions=[clean])
    assert "global scale is metric and the miss is the depth's structure" in metric_scale_answer(result).sentence
    # the negative control: the whole image misses as well, so the reading is not structure
    missed = _scanned([0.78, 0.72, 0.80], [1.0, 0.98, 1.01])
    assert consistency_reading(missed.conditions[0]) != "structure"


@pytest.mark.parametrize(
    ("slopes", "said", "not_said"),
    [
        ([0.72, 0.75, 0.70], "its depth range is compressed (the slope of log depth on log truth is 0.723", "right"),
        ([1.0, 0.98, 1.02], "its range over the image is right", "compressed"),
        ([0.6, 1.0, 1.3], "(the slope of log depth on log truth is 0.967", "compressed"),
    ],
)
def test_a_structural_miss_says_whether_the_depth_range_is_compressed(slopes, said, not_said):
    runs = [_run("packnet_b", seed, 0.1, CLEAN, r, 0.2, uncropped=u, slope=k)
            for seed, (r, u, k) in enumerate(zip([0.85, 0.83, 0.84], [1.01, 0.96, 0.99], slopes))]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    (clean,) = summarise(runs)
    assert clean.range_slope.n == 3 and clean.range_slope.mean == pytest.approx(sum(slopes) / 3)
    sentence = metric_scale_answer(SelfSupervisedStudyResult(config=config, runs=runs, conditions=[clean])).sentence
    assert said in sentence and not_said not in sentence.split("structure inside the crop")[1].split(".")[0]


def _range_scanned(own: list[float], exact: list[float] | None) -> SelfSupervisedStudyResult:
    """A compressed range (slope 0.5, crop missed, whole image metric) whose runs carry range-exponent scans."""
    runs = []
    for seed, (r, u) in enumerate([(0.85, 1.01), (0.83, 0.96), (0.84, 0.99)]):
        scan = replace(examples.consistency(1.0), exponents=[0.5, 1.0, 2.0], range_losses=[0.06, 0.05, 0.07],
                       best_exponent=own[seed], range_losses_exact=None if exact is None else [0.07, 0.05, 0.06],
                       best_exponent_exact=None if exact is None else exact[seed])
        runs.append(replace(_run("packnet_b", seed, 0.1, CLEAN, r, 0.2, uncropped=u, slope=0.5), consistency=scan))
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    return SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs))


@pytest.mark.parametrize(
    ("own", "exact", "reading", "said"),
    [
        # positive controls: the own poses are content with the compressed range, the exact ones would widen it
        # (also when the own poses' interval is wide, as long as the paired gap is clear)
        ([1.0, 0.98, 1.03], [1.35, 1.4, 1.3], "poses", "its own poses hold the range compressed"),
        ([0.85, 1.05, 0.95], [1.25, 1.32, 1.28], "poses", "its own poses hold the range compressed"),
        # the other reading: the own poses already ask for a wider range
        ([1.4, 1.5, 1.45], [1.5, 1.6, 1.4], "lag", "the depth network has not followed it"),
        # negative controls: the exact poses agree with the own ones; no exact poses; a gap the seeds do not share
        ([1.0, 0.98, 1.03], [1.0, 1.02, 0.99], "none", "with the exact poses (paired difference"),
        ([1.0, 0.98, 1.03], None, "none", "with packnet_b's own poses."),
        ([0.7, 1.5, 1.0], [1.35, 1.4, 1.3], "none", "with the exact poses (paired difference"),
    ],
)
def test_a_compressed_range_is_read_by_the_range_exponent_scans(own, exact, reading, said):
    result = _range_scanned(own, exact)
    (clean,) = result.conditions
    assert clean.range_exponent.mean == pytest.approx(sum(own) / 3)
    assert range_reading(clean) == reading
    sentence = metric_scale_answer(result).sentence
    assert "its depth range is compressed" in sentence and said in sentence
    if reading != "poses":
        assert "hold the range compressed" not in sentence


def test_an_exact_pose_control_is_not_read_as_the_velocity_loss_recovering_scale():
    metric = _scale_study([1.0, 0.98, 1.02])
    assert metric_scale_answer(metric).verdict == "yes"  # the same numbers with PoseNet's poses: yes
    control = replace(metric, config=replace(metric.config, pose_source="exact"))
    answer = metric_scale_answer(control)
    assert answer.verdict == "inconclusive"
    assert answer.sentence.startswith("Inconclusive: a control. The warp read the dataset's exact poses")
    assert "packnet_b 1 [0.95, 1.05]" in answer.sentence and "--pose-source exact" in answer.rule


def test_a_structural_miss_states_how_far_the_loss_can_see_and_a_metric_crop_does_not():
    runs = [_run("packnet_b", seed, 0.1, CLEAN, r, 0.2, uncropped=u, slope=0.5)
            for seed, (r, u) in enumerate([(0.85, 1.01), (0.83, 0.96), (0.84, 0.99)])]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    seen = Observability(1.25, 24, (64, 96), [DepthBin(0.0, 10.0, 24, 2.0), DepthBin(10.0, 20.0, 24, 0.4),
                                               DepthBin(20.0, 40.0, 24, 0.1)])
    structural = SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs), observability=seen)
    assert "At 64x96 a 25% depth error beyond 10 m moves the reprojection by under 0.5 px" in (
        metric_scale_answer(structural).sentence)
    metric = [_run("packnet_b", seed, 0.1, CLEAN, r, 0.2) for seed, r in enumerate([1.0, 0.98, 1.02])]
    fine = SelfSupervisedStudyResult(config=config, runs=metric, conditions=summarise(metric), observability=seen)
    assert "moves the reprojection" not in metric_scale_answer(fine).sentence  # nothing to explain
    table = _depth_profile_table(structural)  # the report's depth profile: shift and s*pred/gt per bin
    assert table is not None and [row["ground truth (m)"] for row in table.rows] == ["0-10", "10-20", "20-40"]
    assert [row["shift of a 25% error (px)"] for row in table.rows] == ["2", "0.4", "0.1"]
    assert _depth_profile_table(SelfSupervisedStudyResult(config=config, runs=[], conditions=[])) is None


def _posed(seed: int, angles: tuple[float, float]) -> SelfSupervisedRun:
    """A clean velocity run whose PoseNet translations towards t-1 and t+1 are ``angles`` degrees off the motion."""
    per_source = [{"translation_ratio": 0.95, "translation_angle_deg": a, "rotation_error_deg": 1.0,
                   "rotation_deg": 0.2} for a in angles]
    return replace(_run("packnet_b", seed, 0.1, CLEAN, 0.66, 0.16), pose=PoseEvaluation([-1, 1], 64, per_source))


@pytest.mark.parametrize("angles, reversed_in", [
    ([(2.4, 160.3), (1.9, 175.0), (3.0, 147.2)], "3 of 3"),   # fps 5: t+1 backwards in every seed
    ([(2.4, 160.3), (1.9, 4.0), (3.0, 6.1)], "1 of 3"),       # one seed only
    ([(2.4, 4.5), (1.9, 14.0), (89.0, 6.1)], None),           # forward, however rough, is not reversed
])
def test_the_scale_answer_names_a_source_frame_posenet_reverses_and_in_how_many_seeds(angles, reversed_in):
    runs = [_posed(seed, a) for seed, a in enumerate(angles)]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    sentence = metric_scale_answer(SelfSupervisedStudyResult(config=config, runs=runs,
                                                             conditions=summarise(runs))).sentence
    if reversed_in is None:
        assert "points backwards" not in sentence
        return
    assert f"towards frame t+1 points backwards (more than 90 degrees from the motion; median 160.3) in {reversed_in} " \
           "seeds" in sentence
    assert "frame t-1" not in sentence


def _moving(seed: int, explained: tuple[float, float], pitch: float = 0.0) -> SelfSupervisedRun:
    """A clean velocity run whose PoseNet follows ``explained`` (translation, rotation) of the motion across
    windows for both sources, with a shared pitch error of ``pitch`` degrees towards t+1."""
    per_source = [{"translation_ratio": 0.95, "translation_angle_deg": 3.0, "rotation_error_deg": 0.4,
                   "rotation_deg": 0.1, "translation_explained": explained[0], "rotation_explained": explained[1],
                   "pitch_bias_deg": pitch * (offset > 0), "yaw_bias_deg": 0.0, "roll_bias_deg": 0.0}
                  for offset in (-1, 1)]
    return replace(_run("packnet_b", seed, 0.1, CLEAN, 0.85, 0.16), pose=PoseEvaluation([-1, 1], 64, per_source))


@pytest.mark.parametrize("explained, ignored", [
    # positive controls: one motion for every window (the measured stack PoseNet: no speed, no turns), or a
    # rotation no better than none while the translation is followed
    ([(-0.04, 0.0), (0.02, 0.03), (-0.05, 0.01)], "translation or the rotation"),
    ([(0.6, 0.05), (0.55, 0.02), (0.61, 0.04)], "rotation"),
    # negative controls: a PoseNet following the motion, one that follows half of it, and seeds that disagree
    ([(0.97, 0.95), (0.99, 0.9), (0.98, 0.93)], None),
    ([(0.55, 0.5), (0.6, 0.52), (0.58, 0.49)], None),
    ([(0.1, 0.1), (0.9, 0.9), (0.2, 0.3)], None),
])
def test_the_scale_answer_says_when_posenet_does_not_follow_the_motion(explained, ignored):
    runs = [_moving(seed, e, pitch=-0.44) for seed, e in enumerate(explained)]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    result = SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs))
    sentence = metric_scale_answer(result).sentence
    assert result.conditions[0].rotation_bias.mean == pytest.approx(0.44)
    if ignored is None:
        assert "does not follow" not in sentence
        return
    assert f"packnet_b's PoseNet does not follow the {ignored} from window to window" in sentence
    assert "t-1 pitch +0.00, yaw +0.00, roll +0.00; t+1 pitch -0.44, yaw +0.00, roll +0.00" in sentence


def test_a_study_written_before_the_motion_fields_reads_them_as_not_measured():
    runs = [_posed(seed, (2.0, 3.0)) for seed in range(3)]  # pose evaluations without the motion fields
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    result = SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs))
    assert result.conditions[0].rotation_explained.n == 0 and result.conditions[0].rotation_bias.n == 0
    assert "does not follow" not in metric_scale_answer(result).sentence


def test_the_per_run_pose_table_sets_each_seed_s_motion_against_its_scale():
    runs = [_moving(0, (0.9, 0.1), pitch=-0.07), _moving(1, (0.0, -0.2), pitch=-0.44)]
    config = SelfSupervisedStudyConfig(max_steps=10, width=0.125, input_size=(64, 96))
    table = _pose_runs_table(SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs)))
    assert table is not None and [row["run"] for row in table.rows] == [r.id for r in runs]
    assert table.rows[0]["translation followed"] == "t-1 0.90; t+1 0.90"
    assert table.rows[1]["pitch error (deg)"] == "t-1 0.00; t+1 -0.44" and table.rows[1]["scale factor"] == "0.85"
    old = [_posed(seed, (2.0, 3.0)) for seed in range(2)]  # pose evaluations without the motion fields
    assert _pose_runs_table(SelfSupervisedStudyResult(config=config, runs=old, conditions=summarise(old))) is None


def _with_mean_map(result: SelfSupervisedStudyResult, abs_rel: float) -> SelfSupervisedStudyResult:
    """``result`` with the training split's mean depth map scored at median-scaled ``abs_rel``."""
    blind = examples.scale_evaluation(1.0, abs_rel)
    blind.options["training_images"] = 512
    return replace(result, mean_map=blind)


def test_a_depth_behind_the_mean_depth_map_is_said_not_to_be_shown_to_read_the_image():
    """Negative control: seeds at 0.2 against an image-blind map at 0.15 (a street's ground plane); the scale verdict
    stays yes, the answer judges 1.33 of the map's 'no better than the mean map', with 0 of 3 seeds below it, and
    says the structure is not shown to come from the image."""
    study = _with_mean_map(_study({("packnet_b", 0.1, CLEAN): [(1.0, 0.2), (0.98, 0.2), (1.02, 0.2)]}), 0.15)
    answer = metric_scale_answer(study)
    assert answer.verdict == "yes"
    assert "mean depth map, which never reads the image, scores 0.15 median-scaled (from 512 training images)" in (
        answer.sentence)
    assert "packnet_b 1.33 [1.33, 1.33] (no better than the mean map; 0 of 3 seeds below 1)" in answer.sentence
    assert "the depth structure of packnet_b is not shown to come from the image" in answer.sentence
    assert answer.evidence[0]["seeds whose depth beats the mean depth map"] == "0 of 3"
    assert answer.evidence[0]["median-scaled abs_rel / mean depth map's"].endswith("(no better than the mean map)")


def test_a_depth_clearly_ahead_of_the_mean_depth_map_reads_the_image():
    """Positive control: seeds at 0.15, 0.16, 0.155 against a map at 0.22: about 0.7 of it on every seed."""
    study = _with_mean_map(_study({("packnet_b", 0.1, CLEAN): [(1.0, 0.15), (0.98, 0.16), (1.02, 0.155)]}), 0.22)
    answer = metric_scale_answer(study)
    assert "(reads the image; 3 of 3 seeds below 1)" in answer.sentence
    assert "not shown to come from the image" not in answer.sentence
    assert answer.evidence[0]["seeds whose depth beats the mean depth map"] == "3 of 3"


def test_a_depth_a_hair_ahead_of_the_mean_depth_map_is_not_said_to_read_the_image():
    """Near the threshold: 0.98 of the map on every seed beats it on every seed but not by the 5 % margin that other
    image-blind maps stay within, so the answer does not say it reads the image."""
    study = _with_mean_map(_study({("packnet_b", 0.1, CLEAN): [(1.0, 0.196), (0.98, 0.197), (1.02, 0.195)]}), 0.2)
    answer = metric_scale_answer(study)
    assert "3 of 3 seeds below 1" in answer.sentence and "(reads the image" not in answer.sentence
    assert "not shown to come from the image" in answer.sentence


def test_without_a_mean_depth_map_the_answers_do_not_mention_one():
    study = _study({("packnet_b", 0.1, CLEAN): [(1.0, 0.2), (0.98, 0.2), (1.02, 0.2)]})
    answer = metric_scale_answer(study)
    assert "mean depth map" not in answer.sentence
    assert answer.evidence[0]["seeds whose depth beats the mean depth map"] == "n/a"


def test_the_model_comparison_names_the_models_behind_the_mean_depth_map_and_lists_it_as_a_row():
    study = _with_mean_map(_model_study([0.12, 0.125, 0.13], [0.21, 0.2, 0.22]), 0.18)
    answer = packnet_vs_densedepth_answer(study)
    assert answer.verdict == "yes"
    assert "packnet_b 0.694" in answer.sentence and "(reads the image; 3 of 3 seeds below 1)" in answer.sentence
    assert "densedepth 1.17" in answer.sentence and "(no better than the mean map; 0 of 3 seeds below 1)" in (
        answer.sentence)
    results = Results(run_dirs=[], found={"self_supervised": [Loaded(Path("self_supervised.json"), study)]})
    rows = models_section(results).blocks[-1].rows
    assert rows[-1]["run"].startswith("mean depth map of 512 training images") and rows[-1]["params"] == 0
    assert rows[-1]["abs_rel, median-scaled"] == 0.18


def test_the_printed_table_is_followed_by_the_mean_depth_maps_score_only_when_it_was_scored():
    from io import StringIO

    from rich.console import Console

    from probe.self_supervised_study import print_self_supervised_study

    def printed(study: SelfSupervisedStudyResult) -> str:
        out = StringIO()
        print_self_supervised_study(study, Console(file=out, width=200))
        return out.getvalue()

    with_map = printed(examples.self_supervised())
    assert "mean depth map (512 training images, never reads the image) scores abs_rel 0.120" in with_map
    assert "mean depth map" not in printed(replace(examples.self_supervised(), mean_map=None))


def test_a_speed_bias_predicts_the_median_over_windows_of_v_over_v_plus_b():
    study = replace(_study({("packnet_b", 0.1, CLEAN): [(1.0, 0.2)]}), test_speeds=[5.0, 10.0, 15.0])
    assert study.bias_factor(2.0) == pytest.approx(10 / 12)  # the median window's v / (v + b)
    assert study.bias_factor(-2.0) == pytest.approx(10 / 8)
    assert study.bias_factor(-6.0) is None  # a window whose reported speed would not be positive
    assert replace(study, test_speeds=None).bias_factor(2.0) is None


def test_the_scale_answer_sets_a_biased_factor_beside_what_the_bias_alone_predicts():
    """Positive control: clean factors 0.95, 0.92, 0.96 and +2 m/s runs at 0.833 of them: the answer states the
    prediction, each seed's clean factor x 0.833; a Gaussian noise level gets no prediction (negative control)."""
    bias2, gauss = NoiseLevel(bias=2.0), NoiseLevel(std=1.0)
    clean = [0.95, 0.92, 0.96]
    study = replace(_study({("packnet_b", 0.1, CLEAN): [(f, 0.2) for f in clean],
                            ("packnet_b", 0.1, bias2): [(f * 10 / 12, 0.2) for f in clean],
                            ("packnet_b", 0.1, gauss): [(f, 0.2) for f in clean]}), test_speeds=[5.0, 10.0, 15.0])
    answer = metric_scale_answer(study)
    predicted = Interval.of([f * 10 / 12 for f in clean])
    assert (f"packnet_b bias+2 {_interval_text(predicted)} (the bias alone predicts {_interval_text(predicted)}: "
            "each seed's clean factor x 0.833, the median over test windows of v / (v +2))") in answer.sentence
    assert "packnet_b std1 0.943" in answer.sentence and answer.sentence.count("the bias alone predicts") == 1
    assert "the bias alone predicts" not in metric_scale_answer(replace(study, test_speeds=None)).sentence
