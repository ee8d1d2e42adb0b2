"""Each answer follows its stated rule: flip the numbers and the verdict flips."""

from __future__ import annotations

from probe.report.answers import (
    batch_noise,
    capacity_cost,
    gradients_vanish,
    packing_preserves,
    prediction_collapses,
)
from probe.report.collect import collect_results
from tests.report import fixtures as fx


def _results(tmp_path, name, doc):
    fx.write(tmp_path / f"{name}.json", doc)
    return collect_results([tmp_path])


def test_vanishing_layers_make_the_gradient_answer_yes(tmp_path):
    assert gradients_vanish(_results(tmp_path, "gradients", fx.gradients_doc(3, 1e-4))).verdict == "yes"


def test_healthy_gradients_make_the_gradient_answer_no(tmp_path):
    answer = gradients_vanish(_results(tmp_path, "gradients", fx.gradients_doc(0, 0.5)))
    assert answer.verdict == "no" and "0.5" in answer.sentence


def test_collapse_verdict_follows_the_collapsed_share(tmp_path):
    assert prediction_collapses(_results(tmp_path, "collapse", fx.collapse_doc({"packnet_b": 0.75}))).verdict == "yes"
    assert prediction_collapses(_results(tmp_path, "collapse", fx.collapse_doc({"packnet_b": 0.25}))).verdict == "partly"
    answer = prediction_collapses(_results(tmp_path, "collapse", fx.collapse_doc({"packnet_b": 0.0})))
    assert answer.verdict == "no" and "0%" in answer.sentence


def test_packing_answer_compares_psnr_at_equal_levels(tmp_path):
    assert packing_preserves(_results(tmp_path, "autoencoder", fx.autoencoder_doc([30, 25], [24, 20]))).verdict == "yes"
    assert packing_preserves(_results(tmp_path, "autoencoder", fx.autoencoder_doc([20, 19], [24, 20]))).verdict == "no"
    assert packing_preserves(_results(tmp_path, "autoencoder", fx.autoencoder_doc([30, 19], [24, 20]))).verdict == "partly"


def test_noise_answer_uses_the_loss_cv_ratio(tmp_path):
    assert batch_noise(_results(tmp_path, "noise", fx.noise_doc(0.4, 0.1))).verdict == "yes"
    assert batch_noise(_results(tmp_path, "noise", fx.noise_doc(0.1, 0.4))).verdict == "no"
    assert batch_noise(_results(tmp_path, "noise", fx.noise_doc(0.11, 0.1))).verdict == "partly"


def test_noise_answer_prefers_the_detrended_cv(tmp_path):
    doc = fx.noise_doc(0.4, 0.1)  # plain CVs say PackNet is noisier; its detrended CV says calmer
    doc["models"][0]["loss"]["cv_detrended"] = 0.05
    doc["models"][1]["loss"]["cv_detrended"] = 0.1
    assert batch_noise(_results(tmp_path, "noise", doc)).verdict == "no"


def test_cost_answer_states_measured_ratios(tmp_path):
    fx.write(tmp_path / "experiments.json", fx.experiments_doc())
    answer = capacity_cost(_results(tmp_path, "complexity", fx.complexity_doc()))
    assert "2.9x the parameters" in answer.sentence  # 124164580 / 42657689
    assert "4.0x the MACs" in answer.sentence
    assert "2.5x the training-step latency" in answer.sentence
    assert "worse" in answer.sentence  # 0.61 against 0.40


def test_questions_without_results_are_not_answered(tmp_path):
    results = _results(tmp_path, "complexity", fx.complexity_doc())
    assert gradients_vanish(results) is None
    assert prediction_collapses(results) is None
    assert packing_preserves(results) is None


def test_packing_sentence_states_the_gap_without_double_negatives(tmp_path):
    answer = packing_preserves(_results(tmp_path, "autoencoder", fx.autoencoder_doc([20, 19], [24, 20])))
    assert "1 to 4 dB worse than max-pooling" in answer.sentence


def test_collapse_ties_name_the_model_with_the_smallest_std_ratio(tmp_path):
    doc = fx.collapse_doc({"packnet_b": 0.0, "densedepth": 0.0})
    doc["models"][1]["history"][-1]["median_std_ratio"] = 0.2
    assert "densedepth" in prediction_collapses(_results(tmp_path, "collapse", doc)).sentence
