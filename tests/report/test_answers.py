"""Each answer follows its stated rule: flip the numbers and the verdict flips."""

from __future__ import annotations

from analyses.autoencoder import packing_preserves
from analyses.collapse import prediction_collapses
from analyses.gradients import gradients_vanish
from analyses.noise import batch_noise
from probe.experiments import capacity_cost
from probe.report.collect import collect_results
from tests import result_examples as ex


def _results(tmp_path, *results):
    for result in results:
        ex.write(result, tmp_path)
    return collect_results([tmp_path])


def test_vanishing_layers_make_the_gradient_answer_yes(tmp_path):
    doc = ex.gradients({"packnet_b": [1e-4, 1e-6, 1e-6, 1.0], "densedepth": [1.0] * 4})
    assert gradients_vanish(_results(tmp_path, doc)).verdict == "yes"


def test_healthy_gradients_make_the_gradient_answer_no(tmp_path):
    answer = gradients_vanish(_results(tmp_path, ex.gradients({"packnet_b": [0.5, 1.0, 1.0, 1.0],
                                                                "densedepth": [1.0] * 4})))
    assert answer.verdict == "no" and "0.5" in answer.sentence


def test_collapse_verdict_follows_the_collapsed_share(tmp_path):
    def verdict(factors, folder):
        return prediction_collapses(_results(tmp_path / folder, ex.collapse({"packnet_b": factors})))

    assert verdict([0.0, 0.0, 0.0, 1.0], "a").verdict == "yes"
    assert verdict([0.0, 1.0, 1.0, 1.0], "b").verdict == "partly"
    answer = verdict([1.0, 1.0, 1.0, 1.0], "c")
    assert answer.verdict == "no" and "0%" in answer.sentence


def test_packing_answer_compares_psnr_at_equal_levels(tmp_path):
    assert packing_preserves(_results(tmp_path / "a", ex.autoencoder([30, 25], [24, 20]))).verdict == "yes"
    assert packing_preserves(_results(tmp_path / "b", ex.autoencoder([20, 19], [24, 20]))).verdict == "no"
    assert packing_preserves(_results(tmp_path / "c", ex.autoencoder([30, 19], [24, 20]))).verdict == "partly"


def test_an_exact_reconstruction_counts_as_infinitely_better(tmp_path):
    answer = packing_preserves(_results(tmp_path, ex.autoencoder([float("inf")], [24.0])))
    assert answer.verdict == "yes" and "inf to inf dB better" in answer.sentence


def test_noise_answer_uses_the_loss_cv_ratio(tmp_path):
    def verdict(packnet_jitter, densedepth_jitter, folder):
        doc = ex.noise({"packnet_b": ex.jittered_losses(0.5, packnet_jitter),
                        "densedepth": ex.jittered_losses(0.5, densedepth_jitter)})
        return batch_noise(_results(tmp_path / folder, doc)).verdict

    assert verdict(0.2, 0.05, "a") == "yes"
    assert verdict(0.05, 0.2, "b") == "no"
    assert verdict(0.055, 0.05, "c") == "partly"


def test_noise_answer_prefers_the_detrended_cv(tmp_path):
    # PackNet's loss falls steeply with little scatter: its plain CV is the larger, its detrended CV the smaller
    packnet, densedepth = ex.jittered_losses(0.5, 0.01, trend=2.0), ex.jittered_losses(0.5, 0.1)
    doc = ex.noise({"packnet_b": packnet, "densedepth": densedepth})
    assert doc.models[0].loss.cv > doc.models[1].loss.cv
    assert batch_noise(_results(tmp_path, doc)).verdict == "no"


def test_cost_answer_states_measured_ratios(tmp_path):
    answer = capacity_cost(_results(tmp_path, ex.complexity(), ex.experiments()))
    assert "2.9x the parameters" in answer.sentence  # 124164580 / 42657689
    assert "4.0x the MACs" in answer.sentence
    assert "2.5x the training-step latency" in answer.sentence
    assert "worse" in answer.sentence  # 0.625 against 0.45


def test_questions_without_results_are_not_answered(tmp_path):
    results = _results(tmp_path, ex.complexity())
    assert gradients_vanish(results) is None
    assert prediction_collapses(results) is None
    assert packing_preserves(results) is None


def test_packing_sentence_states_the_gap_without_double_negatives(tmp_path):
    answer = packing_preserves(_results(tmp_path, ex.autoencoder([20, 19], [24, 20])))
    assert "1 to 4 dB worse than max-pooling" in answer.sentence


def test_collapse_ties_name_the_model_with_the_smallest_std_ratio(tmp_path):
    # no model under study collapses; packnet_c keeps only a fifth of the ground truth's variation
    doc = ex.collapse({"packnet_b": [1.0] * 4, "packnet_c": [0.2] * 4, "densedepth": [1.0] * 4})
    assert "packnet_c" in prediction_collapses(_results(tmp_path, doc)).sentence
