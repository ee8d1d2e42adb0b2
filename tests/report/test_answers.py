"""Every question's rule on synthetic result objects: a positive and a negative control each, the spread over
seeds that leaves it inconclusive, missing or NaN inputs, and the learned gate (no verdict from a model that did
not learn)."""

from __future__ import annotations

import math

import pytest

from analyses.autoencoder import packing_preserves
from analyses.collapse import prediction_collapses
from analyses.gradients import GradientsResult, gradients_vanish
from analyses.noise import batch_noise
from probe.experiments import capacity_cost
from probe.report.collect import collect_results
from tests import result_examples as ex


def _results(tmp_path, *results):
    for result in results:
        ex.write(result, tmp_path)
    return collect_results([tmp_path])


def _margins(tmp_path, margins_by_model, learned=None):
    """Gradients whose weakest layer sits 10^margin below the others, one margin per seed."""
    learned = learned or {}
    models = [ex.model_gradients(name, [10.0 ** m, 1.0, 1.0, 1.0], seed=s, learned=learned.get(name, 0.4))
              for name, margins in margins_by_model.items() for s, m in enumerate(margins)]
    return gradients_vanish(_results(tmp_path, GradientsResult.of(models, ex.roles(list(margins_by_model)))))


# -- gradients ------------------------------------------------------------------------------------

def test_gradient_answer_is_yes_when_the_weakest_layer_is_below_the_threshold_on_every_seed(tmp_path):
    answer = _margins(tmp_path, {"packnet_b": [-6.0, -6.2, -5.9], "densedepth": [-1.0, -1.1, -1.2]})
    assert answer.verdict == "yes" and "packnet_b" in answer.sentence and "vanishing" in answer.sentence


def test_gradient_answer_is_no_for_healthy_gradients(tmp_path):
    answer = _margins(tmp_path, {"packnet_b": [-1.0, -1.2, -0.9], "densedepth": [-1.0, -1.1, -1.2]})
    assert answer.verdict == "no" and "not vanishing" in answer.sentence


def test_gradient_answer_is_inconclusive_when_the_seeds_straddle_the_threshold(tmp_path):
    answer = _margins(tmp_path, {"packnet_b": [-2.0, -6.0, -4.0], "densedepth": [-1.0, -1.1, -1.2]})
    assert answer.verdict == "inconclusive" and "within the seeds' spread" in answer.sentence


def test_one_seed_gives_no_interval_and_no_gradient_verdict(tmp_path):
    answer = _margins(tmp_path, {"packnet_b": [-7.0], "densedepth": [-1.0]})
    assert answer.verdict == "inconclusive" and "no interval" in answer.sentence


def test_no_gradient_verdict_from_a_packnet_that_did_not_learn(tmp_path):
    answer = _margins(tmp_path / "a", {"packnet_b": [-6.0, -6.2, -5.9], "densedepth": [-1.0] * 3},
                      learned={"packnet_b": 2.0})
    assert answer.verdict == "inconclusive" and "packnet_b did not learn" in answer.sentence
    assert any(row["verdict"].startswith("not judged") for row in answer.evidence)
    unknown = _margins(tmp_path / "b", {"packnet_b": [-6.0, -6.2, -5.9]}, learned={"packnet_b": None})
    assert unknown.verdict == "inconclusive" and "unknown" in unknown.sentence


def test_a_nan_margin_is_inconclusive_never_a_verdict(tmp_path):
    layers = {"packnet_b": [float("nan")] * 4}
    answer = gradients_vanish(_results(tmp_path, ex.gradients(layers)))
    assert answer.verdict == "inconclusive" and "weakest-layer margin, which is missing" in answer.sentence


def test_the_gradient_rule_text_names_its_controls_and_the_learned_gate(tmp_path):
    rule = _margins(tmp_path, {"packnet_b": [-1.0, -1.2, -0.9]}).rule
    assert "sigmoid CNN" in rule and "residual CNN" in rule and "learned" in rule


# -- collapse -------------------------------------------------------------------------------------

def test_collapse_answer_is_yes_for_a_mean_depth_predictor(tmp_path):
    doc = ex.collapse({"packnet_b": [0.0] * 8, "densedepth": [1.0] * 8}, seeds=(0, 1, 2))
    answer = prediction_collapses(_results(tmp_path, doc))
    assert answer.verdict == "yes" and "packnet_b collapsed" in answer.sentence


def test_collapse_answer_is_no_for_the_oracle(tmp_path):
    answer = prediction_collapses(_results(tmp_path, ex.collapse({"packnet_b": [1.0] * 8}, seeds=(0, 1))))
    assert answer.verdict == "no" and "not collapsed" in answer.sentence


def test_right_structure_at_the_wrong_scale_is_scale_not_collapsed(tmp_path):
    doc = ex.collapse({"packnet_b": [1.0] * 8}, seeds=(0, 1), scale={"packnet_b": 2.0})
    answer = prediction_collapses(_results(tmp_path, doc))
    assert answer.verdict == "no" and "wrong scale" in answer.sentence
    assert answer.evidence[0]["verdict"] == "scale"


def test_one_seed_of_collapse_is_judged_by_a_bootstrap_over_its_images(tmp_path):
    collapsed = prediction_collapses(_results(tmp_path / "a", ex.collapse({"packnet_b": [0.0] * 8})))
    assert collapsed.verdict == "yes" and "bootstrap" in collapsed.sentence
    mixed = prediction_collapses(_results(tmp_path / "b", ex.collapse({"packnet_b": [0.0, 1.0] * 4})))
    assert mixed.verdict == "inconclusive"


def test_no_collapse_verdict_from_a_model_that_did_not_learn(tmp_path):
    doc = ex.collapse({"packnet_b": [0.0] * 8}, seeds=(0, 1), learned={"packnet_b": 1.5})
    answer = prediction_collapses(_results(tmp_path, doc))
    assert answer.verdict == "inconclusive" and "packnet_b did not learn" in answer.sentence


def test_collapse_rule_text_names_its_controls(tmp_path):
    rule = prediction_collapses(_results(tmp_path, ex.collapse({"packnet_b": [1.0] * 4}))).rule
    assert "mean-depth predictor" in rule and "ground truth x 2" in rule


def test_a_model_ignoring_the_image_is_a_yes_worded_plainly_with_the_block_where_the_image_fades(tmp_path):
    doc = ex.collapse({"packnet_b": [1.0] * 8, "densedepth": [1.0] * 8}, seeds=(0, 1), fixed=("packnet_b",),
                      baselines=("densedepth",))
    answer = prediction_collapses(_results(tmp_path, doc))
    assert answer.verdict == "yes"
    assert "packnet_b ignores the image: its prediction does not depend on the image, it is a dataset-wide map" \
        in answer.sentence
    assert "the image fades from its activations at decoder (2 of 2 seeds)" in answer.sentence
    assert answer.sentence.startswith("Yes: across images, packnet_b ignores the image")  # the kind that decided
    rows = {row["model"]: row for row in answer.evidence}
    assert rows["packnet_b"]["image"] == "ignores the image" and rows["densedepth"]["image"] == "depends on the image"
    assert rows["packnet_b"]["image fades at"] == "decoder (2 of 2 seeds)"
    assert rows["densedepth"]["image fades at"] == "nowhere"


def test_a_model_that_did_not_learn_is_still_judged_on_ignoring_the_image(tmp_path):
    doc = ex.collapse({"packnet_b": [1.0] * 8}, seeds=(0, 1), fixed=("packnet_b",), learned={"packnet_b": 1.5})
    answer = prediction_collapses(_results(tmp_path, doc))
    assert answer.verdict == "yes" and "does not depend on the image" in answer.sentence
    assert "no per-image verdict" in answer.sentence and "packnet_b did not learn" in answer.sentence


def test_each_images_mean_depth_is_collapsed_but_not_ignoring_the_image(tmp_path):
    answer = prediction_collapses(_results(tmp_path, ex.collapse({"packnet_b": [0.0] * 8}, seeds=(0, 1, 2))))
    assert answer.verdict == "yes" and answer.evidence[0]["verdict"] == "collapsed"
    assert answer.evidence[0]["image"] == "depends on the image"


def test_no_needs_every_judged_model_to_depend_on_the_image(tmp_path):
    doc = ex.collapse({"packnet_b": [1.0] * 8}, seeds=(0, 1))
    assert prediction_collapses(_results(tmp_path / "a", doc)).verdict == "no"
    for summary in doc.summaries:
        summary.cross_std_ratio = None  # missing in the file: never read as depending on the image
    answer = prediction_collapses(_results(tmp_path / "b", doc))
    assert answer.verdict == "inconclusive"
    assert "packnet_b's cross-image std ratio, which is missing" in answer.sentence


def test_collapse_rule_text_names_the_image_controls(tmp_path):
    rule = prediction_collapses(_results(tmp_path, ex.collapse({"packnet_b": [1.0] * 4}))).rule
    assert "fixed depth map" in rule and "each image's mean depth" in rule and "fades at that block" in rule


# -- packing --------------------------------------------------------------------------------------

def test_packing_answer_is_yes_when_better_at_matched_size_on_every_seed(tmp_path):
    answer = packing_preserves(_results(tmp_path, ex.autoencoder([30, 25], [24, 20])))
    assert answer.verdict == "yes" and "packing better" in answer.sentence


def test_packing_answer_is_no_when_worse_at_matched_size(tmp_path):
    answer = packing_preserves(_results(tmp_path, ex.autoencoder([20, 19], [24, 20])))
    assert answer.verdict == "no" and "packing worse" in answer.sentence


def test_packing_is_not_compared_across_unmatched_sizes(tmp_path):
    doc = ex.autoencoder([30, 25], [24, 20], pack_params=400_000, pool_params=50_000)
    answer = packing_preserves(_results(tmp_path, doc))
    assert answer.verdict == "inconclusive" and answer.evidence[0]["verdict"].startswith("unmatched")


def test_unconverged_packing_runs_are_reported_not_compared(tmp_path):
    answer = packing_preserves(_results(tmp_path, ex.autoencoder([30], [24], converged=False)))
    assert answer.verdict == "inconclusive" and "Unconverged (not compared): pack3d@1" in answer.sentence


def test_an_exact_reconstruction_counts_as_the_cap_and_an_undefined_psnr_is_left_out(tmp_path):
    exact = packing_preserves(_results(tmp_path / "a", ex.autoencoder([math.inf], [24.0])))
    assert exact.verdict == "yes"
    undefined = packing_preserves(_results(tmp_path / "b", ex.autoencoder([math.nan, 30], [24.0, 20.0])))
    assert "Undefined PSNR (not compared): pack3d@1" in undefined.sentence
    assert undefined.verdict == "yes"  # level 2 is still compared


def test_packing_rule_text_names_its_control(tmp_path):
    assert "max-pool cannot" in packing_preserves(_results(tmp_path, ex.autoencoder([30], [24]))).rule


# -- noise ----------------------------------------------------------------------------------------

def _noise(tmp_path, packnet_jitter, densedepth_jitter, seeds=(0, 1, 2), learned=None):
    doc = ex.noise({"packnet_b": ex.jittered_losses(0.5, packnet_jitter),
                    "densedepth": ex.jittered_losses(0.5, densedepth_jitter)}, seeds=seeds, learned=learned)
    return batch_noise(_results(tmp_path, doc))


def test_noise_answer_is_yes_when_packnet_scatters_more_on_every_seed(tmp_path):
    assert _noise(tmp_path, 0.2, 0.05).verdict == "yes"


def test_noise_answer_is_no_when_packnet_scatters_less(tmp_path):
    assert _noise(tmp_path, 0.05, 0.2).verdict == "no"


def test_noise_answer_is_comparable_inside_the_band(tmp_path):
    answer = _noise(tmp_path, 0.051, 0.05)
    assert answer.verdict == "partly" and "comparable" in answer.sentence


def test_noise_answer_needs_seeds_and_learned_models(tmp_path):
    assert _noise(tmp_path / "a", 0.2, 0.05, seeds=(0,)).verdict == "inconclusive"
    gated = _noise(tmp_path / "b", 0.2, 0.05, learned={"densedepth": 3.0})
    assert gated.verdict == "inconclusive" and "densedepth did not learn" in gated.sentence


def test_noise_answer_prefers_the_detrended_cv(tmp_path):
    # PackNet's loss falls steeply with little scatter: its plain CV is the larger, its detrended CV the smaller
    packnet, densedepth = ex.jittered_losses(0.5, 0.01, trend=2.0), ex.jittered_losses(0.5, 0.1)
    doc = ex.noise({"packnet_b": packnet, "densedepth": densedepth})
    assert doc.models[0].loss.cv > doc.models[3].loss.cv
    assert batch_noise(_results(tmp_path, doc)).verdict == "no"


# -- cost -----------------------------------------------------------------------------------------

def test_cost_answer_states_measured_ratios_and_the_held_out_difference(tmp_path):
    answer = capacity_cost(_results(tmp_path, ex.complexity(), ex.experiments()))
    assert "2.9x the parameters" in answer.sentence  # 124164580 / 42657689
    assert "4.0x the MACs" in answer.sentence
    assert "2.5x the training-step latency" in answer.sentence
    assert "held-out DenseDepth loss" in answer.sentence and "worse:" in answer.sentence  # 0.1 against 0.08


def test_cost_answer_compares_no_score_of_a_model_that_did_not_learn(tmp_path):
    doc = ex.experiments({"exp1_packnet_b": 2.5})
    answer = capacity_cost(_results(tmp_path, ex.complexity(), doc))
    assert "not compared" in answer.sentence and "no experiment under study learned (exp1_packnet_b not learned)" in answer.sentence
    assert "worse" not in answer.sentence and "better" not in answer.sentence


def test_questions_without_results_are_not_answered(tmp_path):
    results = _results(tmp_path, ex.complexity())
    assert gradients_vanish(results) is None
    assert prediction_collapses(results) is None
    assert packing_preserves(results) is None
    assert batch_noise(results) is None


@pytest.mark.parametrize("ratio, status", [(0.4, "learned"), (2.0, "not learned")])
def test_the_learned_gate_follows_the_held_out_ratio(ratio, status):
    from probe.heldout import learned_of

    learned = learned_of([0, 1, 2], [ex.held_out(ratio, seed=s) for s in range(3)])
    assert learned.status == status and learned.usable == (status == "learned")
