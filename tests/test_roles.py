"""Roles: which models are under study and which are baselines, and the questions that follow them."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyses.collapse import prediction_collapses
from analyses.gradients import GradientsConfig, gradients_vanish
from analyses.noise import batch_noise
from probe.errors import ProbeError
from probe.experiments import SeedStudyConfig, capacity_cost
from probe.options import check_model_options, options_for
from probe.report.collect import collect_results
from probe.roles import BASELINE, UNDER_STUDY, assign_roles, roles_for
from tests import result_examples as ex

ROOT = Path(__file__).resolve().parents[1]
UNET = "examples/unet.py:build"
DICT = "examples/dict_model.py:build"


def _results(folder, *results):
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        ex.write(result, folder)
    return collect_results([folder])


# -- who plays which role ----------------------------------------------------------------------------


def test_a_user_model_is_under_study_and_zoo_models_are_its_baselines():
    roles = assign_roles([UNET, "densedepth", "packnet_b"])
    assert [m.role for m in roles.models] == [UNDER_STUDY, BASELINE, BASELINE]
    assert roles.display(UNET) == "unet" and not roles.seed_comparison


def test_zoo_models_alone_are_the_seed_comparison_packnet_under_study():
    roles = assign_roles(["packnet_slim_b", "packnet_slim_c", "densedepth"])
    assert [m.role for m in roles.models] == [UNDER_STUDY, UNDER_STUDY, BASELINE]
    assert roles.seed_comparison and roles.phrase(UNDER_STUDY) == "PackNet" and roles.phrase(BASELINE) == "DenseDepth"


def test_explicit_baselines_put_every_other_model_under_study_even_from_the_zoo():
    roles = assign_roles(["densedepth"], ["packnet_b"])
    assert roles.role_of("densedepth") == UNDER_STUDY and roles.role_of("packnet_b") == BASELINE
    assert not roles.seed_comparison and roles.phrase(UNDER_STUDY) == "DenseDepth"


def test_a_lone_baseline_family_model_is_studied_rather_than_left_without_a_subject():
    assert assign_roles(["densedepth"]).role_of("densedepth") == UNDER_STUDY


def test_a_model_named_twice_is_one_line():
    with pytest.raises(ProbeError, match="densedepth is named twice"):
        assign_roles(["densedepth"], ["densedepth"])


def test_several_models_under_study_are_named_together_and_counted_plural():
    roles = assign_roles([UNET, DICT], ["densedepth"])
    assert roles.phrase(UNDER_STUDY) == "unet and dict_model" and roles.plural(UNDER_STUDY)
    assert not assign_roles(["packnet_b", "packnet_c", "densedepth"]).plural(UNDER_STUDY)  # "PackNet" is one name


def test_the_name_option_is_the_display_name():
    assert assign_roles([UNET], options={UNET: {"name": "my_unet"}}).display(UNET) == "my_unet"


def test_result_entries_sharing_a_model_share_its_role():
    roles = roles_for([("densedepth (run a)", "densedepth"), ("unet (run b)", UNET), ("unet (run c)", UNET)])
    assert [m.role for m in roles.models] == [BASELINE, UNDER_STUDY, UNDER_STUDY]


# -- options scoped to one model -----------------------------------------------------------------------


def test_scoped_options_reach_their_model_only_and_unscoped_ones_every_model():
    options = {"skips": False, f"{DICT}:output_key": "disp,*", "densedepth:variant": "keras"}
    assert options_for(DICT, options) == {"skips": False, "output_key": "disp,*"}
    assert options_for("densedepth", options) == {"skips": False, "variant": "keras"}


def test_a_baseline_gets_only_the_options_that_name_it():
    config = GradientsConfig(models=[DICT], baselines=["densedepth"],
                             model_options={"output_key": "disp,*", "densedepth:variant": "keras"})
    assert config.options_for(DICT) == {"output_key": "disp,*"}
    assert config.options_for("densedepth") == {"variant": "keras"}


@pytest.mark.parametrize("options, message", [
    ({"nope:depth": 1}, "'nope' is not one of the compared models"),
    ({"bad key": 1}, "expected KEY=VALUE or MODEL:KEY=VALUE"),
])
def test_a_scope_outside_the_comparison_is_one_line(options, message):
    with pytest.raises(ProbeError, match=message):
        check_model_options(options, [UNET, "densedepth"])


def test_an_option_no_model_takes_is_refused_before_any_training_with_the_scoping_hint(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples are SPECs relative to the repository
    config = GradientsConfig(models=[UNET, "densedepth"], model_options={"max_depth": 20.0}, width=0.0625)
    with pytest.raises(ProbeError, match=r"densedepth: unknown option\(s\) max_depth.*MODEL:KEY=VALUE"):
        config.validate()


# -- the seed study's matrix with a model under study ---------------------------------------------------


def test_a_model_under_study_joins_the_seed_matrix_unless_baselines_are_named():
    with_matrix = SeedStudyConfig(models=[UNET]).experiments()
    assert [e.model for e in with_matrix][-1] == UNET and len(with_matrix) == 7
    roles = SeedStudyConfig(models=[UNET]).experiment_roles(with_matrix)
    assert roles.role_of(UNET) == UNDER_STUDY and roles.role_of("packnet_slim_b") == BASELINE
    only = SeedStudyConfig(models=[UNET], baselines=["densedepth"]).experiments()
    assert [(e.id, e.model) for e in only] == [("densedepth", "densedepth"), ("examples_unet.py_build-b5f4e8f6", UNET)]


# -- the questions follow the roles (positive and negative controls) -------------------------------------


def test_gradients_answer_judges_the_models_under_study_not_the_baselines(tmp_path):
    vanishing, healthy = [1e-9, 1.0, 1.0, 1.0], [1.0] * 4  # the first layer 1e-9 of the median |g|/|w|
    subject_vanishes = gradients_vanish(_results(tmp_path / "a", ex.gradients({UNET: vanishing, "densedepth": healthy})))
    assert subject_vanishes.verdict == "yes" and subject_vanishes.question == "Do unet's gradients vanish?"
    baseline_vanishes = gradients_vanish(_results(tmp_path / "b", ex.gradients({UNET: healthy, "densedepth": vanishing})))
    assert baseline_vanishes.verdict == "no" and "unet not vanishing" in baseline_vanishes.sentence
    assert [row["role"] for row in baseline_vanishes.evidence] == [UNDER_STUDY, BASELINE]


def test_the_seed_comparison_keeps_its_wording(tmp_path):
    results = _results(tmp_path, ex.gradients({"packnet_b": [1.0] * 4, "densedepth": [1.0] * 4}),
                       ex.collapse({"packnet_b": [1.0] * 4, "densedepth": [1.0] * 4}),
                       ex.noise({"packnet_b": ex.jittered_losses(0.5, 0.2), "densedepth": ex.jittered_losses(0.5, 0.05)}),
                       ex.complexity(), ex.experiments())
    assert gradients_vanish(results).question == "Do PackNet's gradients vanish?"
    assert prediction_collapses(results).question == "Does the prediction collapse to the mean?"
    noise = batch_noise(results)
    assert noise.question == "How noisy are the batches?" and noise.sentence.startswith("Yes, PackNet's batches are noisier")
    assert "packnet_b against densedepth" in noise.sentence
    assert capacity_cost(results).question == "What does the extra capacity cost?"


def test_collapse_of_a_baseline_does_not_answer_for_the_model_under_study(tmp_path):
    flat, varied = [0.0] * 4, [1.0] * 4
    answer = prediction_collapses(_results(tmp_path / "a", ex.collapse({UNET: varied, "densedepth": flat})))
    assert answer.verdict == "no" and answer.question == "Does unet's prediction collapse to the mean?"
    assert prediction_collapses(_results(tmp_path / "b", ex.collapse({UNET: flat, "densedepth": varied}))).verdict == "yes"


def test_noise_compares_the_model_under_study_with_the_baseline_by_role(tmp_path):
    def answer(unet_jitter, dd_jitter, folder):
        doc = ex.noise({"densedepth": ex.jittered_losses(0.5, dd_jitter), UNET: ex.jittered_losses(0.5, unet_jitter)})
        return batch_noise(_results(tmp_path / folder, doc))

    noisier = answer(0.2, 0.05, "a")
    assert noisier.verdict == "yes" and noisier.sentence.startswith("Yes, unet's batches are noisier")
    assert noisier.question == "How noisy are unet's batches?"
    assert answer(0.05, 0.2, "b").verdict == "no"


def _encoder_study(encoder_psnr: list[float], pool_psnr: float = 20.0):
    """An encoder at 5 levels (one PSNR per seed) beside max-pool at 5 levels and the same size, seeds 0-2."""
    from dataclasses import replace

    doc = ex.autoencoder([20.0], [pool_psnr])
    runs = [run for seed, psnr in enumerate(encoder_psnr)
            for run in (ex.autoencoder_run("maxpool", 5, pool_psnr, seed=seed), ex.autoencoder_run(UNET, 5, psnr,
                                                                                                    seed=seed))]
    return replace(doc, runs=doc.runs + runs, architectures={**doc.architectures, UNET: "unet's encoder"},
                   roles=assign_roles([UNET]))


@pytest.mark.parametrize("encoder_psnr, verdict", [([22.0, 22.2, 21.9], "yes"), ([20.2, 19.7, 20.1], "inconclusive"),
                                                   ([19.0, 19.1, 18.8], "no")])
def test_encoder_question_compares_the_encoder_with_max_pool_at_its_depth(tmp_path, encoder_psnr, verdict):
    from analyses.autoencoder import encoder_preserves, packing_preserves

    results = _results(tmp_path, _encoder_study(encoder_psnr))
    answer = encoder_preserves(results)
    assert answer.verdict == verdict and answer.question == "Does unet's encoder preserve information?"
    assert answer.evidence[0]["levels"] == 5 and answer.evidence[0]["encoder"] == "unet"
    assert answer.evidence[0]["compared with"].startswith("maxpool with 1,000 parameters")
    assert [row["packing"] for row in packing_preserves(results).evidence] == ["pack3d"]  # not the user's


def test_no_encoder_question_without_a_models_encoder(tmp_path):
    from analyses.autoencoder import encoder_preserves

    assert encoder_preserves(_results(tmp_path, ex.autoencoder([30.0], [24.0]))) is None


def test_a_users_encoder_named_pack_is_no_packing_architecture(tmp_path):
    from dataclasses import replace

    from analyses.autoencoder import packing_preserves

    spec = "packer.py:build"
    doc = ex.autoencoder([20.0], [24.0])
    doc = replace(doc, runs=doc.runs + [ex.autoencoder_run(spec, 1, 99.0)], roles=assign_roles([spec]))
    answer = packing_preserves(_results(tmp_path, doc))
    assert answer.verdict == "no" and [row["packing"] for row in answer.evidence] == ["pack3d"]


def test_cost_is_stated_against_every_baseline(tmp_path):
    from dataclasses import replace

    doc = ex.complexity()
    unet = replace(ex.model_complexity(UNET, 14_329_236, 20_000_000_000, 6.0))
    doc = replace(doc, models=[unet, *doc.models], roles=assign_roles([UNET, "packnet_b", "densedepth"]))
    answer = capacity_cost(_results(tmp_path, doc))
    assert answer.question == "What does unet cost against packnet_b and densedepth?"
    assert f"{UNET} has 0.12x the parameters and 0.1x the MACs, 0.2x the training-step latency of packnet_b" in answer.sentence
    assert f"{UNET} has 0.34x the parameters and 0.4x the MACs, 0.5x the training-step latency of densedepth" in answer.sentence
