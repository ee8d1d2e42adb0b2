"""Every verdict rule on controls whose answer is known (probe.controls): a positive and a negative case each."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from analyses.collapse import collapse_statistics, cross_std_ratio_interval, image_fade, image_dependence
from analyses.gradients import GradientRecorder
from analyses.noise import loss_statistics
from probe.controls import (CONTROLS, FadingNet, collapse_predictions, fit_predictions, fit_regression,
                            image_predictions,
                            injected_scatter_run, pack_autoencoder, packing_control_images, plain_sigmoid_cnn,
                            pool_autoencoder, regression_task, residual_norm_cnn)
from probe.data.samples import load_first_samples
from probe.image_quality import psnr
from probe.rules import (FIT_BELOW, IGNORES_IMAGE_BELOW, NEAR_LOSSLESS_MSE, RATIO_FLOOR, PackingRun, collapse_call,
                         fit_call, image_call, largest_fitted, packing_comparison, plateaued, vanishing_gradients)
from probe.stats import bootstrap_interval, geometric_seed_estimate, seed_estimate
from probe.training import TrainConfig, train


def _recorded(model: torch.nn.Module, name: str, steps: int = 20):
    """Train a control on the regression task with analyses.gradients' recorder attached: -> its layers."""
    x, y = regression_task(size=12)
    recorder = GradientRecorder()
    recorder.on_start(model, SimpleNamespace(model=name))
    fit_regression(model, x, y, steps=steps, after_backward=recorder.after_backward,
                   after_step=lambda step, m: recorder.after_step(step, m, None))
    return recorder.result().layers


# -- gradients ------------------------------------------------------------------------------------

def test_gradient_rule_flags_the_deep_sigmoid_cnn_as_vanishing():
    torch.manual_seed(0)
    layers = _recorded(plain_sigmoid_cnn(), "sigmoid")
    verdict = vanishing_gradients(layers)
    assert verdict.verdict == "vanishing" and verdict.spread_decades > 10
    # the layers flagged are the ones nearest the input: the gradient dies on its way back
    assert layers[0].name in verdict.vanishing and layers[-1].name not in verdict.vanishing


def test_gradient_rule_does_not_flag_the_residual_cnn_of_the_same_depth():
    torch.manual_seed(0)
    verdict = vanishing_gradients(_recorded(residual_norm_cnn(), "residual"))
    assert verdict.verdict == "healthy" and verdict.spread_decades < 5


@pytest.mark.parametrize("model,options", [("densedepth", {}), ("packnet_slim_b", {"output_scale": "half"}),
                                           ("packnet_slim_c", {"output_scale": "half"})])
def test_gradient_rule_does_not_flag_densedepth_or_packnet_for_being_deep(tmp_path, model, options):
    recorder = GradientRecorder()
    train(TrainConfig(model=model, model_options=options, width=0.0625, input_size=(32, 64), dataset_length=24,
                      max_steps=6, batch_size=4, lr=1e-3, device="cpu", out=tmp_path / model), hooks=[recorder])
    verdict = vanishing_gradients(recorder.result().layers)
    assert verdict.vanishing == [] and verdict.exploding == []


# -- collapse -------------------------------------------------------------------------------------

def test_collapse_rule_on_mean_oracle_and_wrong_scale_controls():
    g = torch.Generator().manual_seed(0)
    depth = 1.0 + 4.0 * torch.rand(4, 1, 16, 20, generator=g)
    valid = torch.rand(4, 1, 16, 20, generator=g) > 0.1
    preds = collapse_predictions(depth, valid)
    mean, oracle, scaled = (collapse_statistics(preds[k], depth, valid) for k in ("mean", "oracle", "scaled"))
    assert mean.collapsed_share == 1.0
    assert oracle.collapsed_share == 0.0 and oracle.scale_flagged_share == 0.0
    assert scaled.collapsed_share == 0.0 and scaled.scale_flagged_share == 1.0



# -- fit ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def training_rooms():
    """The first twelve synthetic training images (32x48), as `probe fit` trains on them."""
    from probe.data import get_dataset

    return get_dataset("synthetic", split="train", input_size=(32, 48), length=12, augment=False)


def _fit_calls(dataset):
    """FIT_RULE on each control prediction, scored as held_out_score scores a model (score_predictions)."""
    from torch.utils.data import DataLoader

    from probe.depth_space import depth_range
    from probe.heldout import SCORE_LOSS, score_predictions
    from probe.losses import build_loss, dataset_loss_options
    from probe.stats import paired_bootstrap_ratio

    info, batch = dataset.info, next(iter(DataLoader(dataset, batch_size=len(dataset))))
    bounds = depth_range(info)
    loss_fn = build_loss(SCORE_LOSS, **dataset_loss_options(SCORE_LOSS, info))
    gt, valid = batch["depth"].float(), batch["valid"].bool()
    scored = valid & (gt >= bounds[0]) & (gt <= bounds[1])
    calls = {}
    for name, pred in fit_predictions(gt, scored).items():
        model, constant, _ = score_predictions([(pred, gt, valid)], bounds=bounds, loss_fn=loss_fn,
                                            max_depth=info.max_depth)
        ratio = paired_bootstrap_ratio(model.per_image_abs_rel_median_scaled, constant.per_image_abs_rel,
                                       resamples=500)
        calls[name] = fit_call(ratio)
    return calls


def test_fit_rule_calls_the_oracle_fitted_and_the_constant_and_a_fixed_map_not(training_rooms):
    calls = _fit_calls(training_rooms)
    assert calls["oracle"].verdict == "fits", calls["oracle"].sentence
    assert calls["oracle"].decision.estimate.high < FIT_BELOW
    for name in ("constant", "fixed_map"):
        assert calls[name].verdict == "does not fit", (name, calls[name].sentence)
        assert calls[name].decision.estimate.low > FIT_BELOW
    assert calls["constant"].decision.estimate.mean == pytest.approx(1.0)  # the reference predictor itself


def test_fit_rule_is_inconclusive_across_the_threshold_and_without_an_interval():
    assert fit_call(seed_estimate([0.3, 0.7, 0.5])).verdict == "inconclusive"
    assert fit_call(seed_estimate([0.2])).verdict == "inconclusive"  # one value: no interval, no verdict
    assert fit_call(None).verdict == "inconclusive"
    assert largest_fitted({2: "fits", 4: "fits", 8: "does not fit"}) == 4
    assert largest_fitted({2: "inconclusive", 4: "does not fit"}) is None

# -- image dependence -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rooms():
    """Twelve held-out synthetic rooms (32x48): scenes of different sizes, as real data has."""
    return load_first_samples("synthetic", None, split="test", input_size=(32, 48), count=12)


def test_image_rule_flags_a_fixed_map_and_not_the_oracle_the_per_image_mean_or_the_wrong_scale(rooms):
    preds = image_predictions(rooms.depth, rooms.valid)
    calls = {name: image_call(cross_std_ratio_interval(pred, rooms.depth, rooms.valid, resamples=500))
             for name, pred in preds.items()}
    assert calls["fixed_map"].verdict == "ignores the image"
    assert "does not depend on the image" in calls["fixed_map"].sentence
    assert calls["fixed_map"].decision.estimate.high < IGNORES_IMAGE_BELOW
    for name in ("oracle", "mean", "scaled"):
        assert calls[name].verdict == "depends on the image", (name, calls[name].sentence)
    assert calls["oracle"].decision.estimate.mean == pytest.approx(1.0)
    assert calls["scaled"].decision.estimate.mean == pytest.approx(1.0)  # log(2 gt): the same variation


def test_the_two_kinds_of_collapse_are_told_apart(rooms):
    """The per-image mean is collapsed but follows the image; the fixed map keeps structure but ignores it."""
    preds = image_predictions(rooms.depth, rooms.valid)
    per_image = {name: collapse_statistics(preds[name], rooms.depth, rooms.valid) for name in ("mean", "fixed_map")}
    shares = {name: (bootstrap_interval([float(c) for c in s.collapsed], resamples=500),
                     bootstrap_interval([float(c) for c in s.scale_flagged], resamples=500))
              for name, s in per_image.items()}
    assert collapse_call(*shares["mean"]).verdict == "collapsed"
    assert collapse_call(*shares["fixed_map"]).verdict != "collapsed"  # the per-image rule misses it
    dependence = image_dependence(preds["fixed_map"], rooms.depth, rooms.valid)
    assert dependence.pred_cross_std < 1e-9 and dependence.pred_within_std > 0.1


def test_image_rule_over_seeds_judges_the_ratio_in_decades_and_is_inconclusive_across_the_threshold():
    ignores = geometric_seed_estimate([0.004, 0.006], RATIO_FLOOR)
    assert image_call(ignores).verdict == "ignores the image"
    assert image_call(geometric_seed_estimate([0.02, 0.6], RATIO_FLOOR)).verdict == "inconclusive"
    # DenseDepth's three seeds at 300 steps: arithmetically 0.63 +- 0.81 crosses 0; in decades it stays above 0.1
    depends = geometric_seed_estimate([1.0, 0.40, 0.48], RATIO_FLOOR)
    assert image_call(depends).verdict == "depends on the image" and depends.low > 0.1
    assert image_call(seed_estimate([1.0, 0.40, 0.48])).verdict == "inconclusive"
    # one fixed map per seed has ratio 0: on the log scale it counts as the floor, far below the threshold
    assert image_call(geometric_seed_estimate([0.0, 0.0, 1e-9], RATIO_FLOOR)).verdict == "ignores the image"


def test_image_fades_at_the_block_that_drops_it_and_nowhere_in_the_same_net_without_it(rooms):
    for fades, expected in ((True, "fade"), (False, None)):
        torch.manual_seed(0)
        net = FadingNet(32, 48, fade=fades)
        with torch.no_grad():
            depth = torch.nn.functional.interpolate(net(rooms.image), size=rooms.depth.shape[-2:], mode="bilinear")
        share = image_dependence(depth, rooms.depth, rooms.valid).pred_image_share
        fade = image_fade(net, rooms.image, share, step=0)
        assert [layer.name for layer in fade.layers] == ["image", "stem", "body", "fade", "head", "depth"]
        assert fade.fades_at == expected, [(layer.name, layer.image_share) for layer in fade.layers]
    assert fade.layers[1].image_share > fade.threshold  # the image passes the convolutions before the fade


# -- packing --------------------------------------------------------------------------------------

def _fit_autoencoder(build, seed: int) -> tuple[float, list[float], int]:
    train_images, test_images = packing_control_images(64, 8, seed=0), packing_control_images(16, 8, seed=1)
    torch.manual_seed(seed)
    model = build()
    losses = fit_regression(model, train_images, train_images, steps=800, lr=1e-2, batch_size=16, seed=seed)
    with torch.no_grad():
        quality = float(psnr(model(test_images).clamp(0, 1), test_images).mean())
    return quality, losses, sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_one_level_packing_is_near_lossless_where_max_pool_is_not_and_the_rule_says_so():
    runs = []
    for arch, build in (("pack_control", pack_autoencoder), ("maxpool", pool_autoencoder)):
        fits = [_fit_autoencoder(build, seed) for seed in range(3)]
        runs.append(PackingRun(arch, 1, fits[0][2], 0, [f[0] for f in fits], [f[1] for f in fits]))
    pack, pool = runs
    assert min(pack.psnr) >= 35.0 and max(pool.psnr) < 30.0
    result = packing_comparison(runs)
    assert result.verdict == "yes" and result.unconverged == []
    assert result.levels[0].verdict.verdict == "packing better"


def _run(arch: str, params: int, psnr_db: list[float], converged: bool = True, levels: int = 2) -> PackingRun:
    curve = [0.01] * 50 if converged else [1.0 / (1 + t) for t in range(50)]
    return PackingRun(arch, levels, params, 0, psnr_db, [curve] * len(psnr_db))


def test_packing_rule_compares_only_matched_sizes():
    big_pack, small_pool = _run("pack3d", 400_000, [24.0, 24.2, 23.9]), _run("maxpool", 50_000, [20.0, 20.1, 19.9])
    unmatched = packing_comparison([big_pack, small_pool])
    assert unmatched.verdict.startswith("inconclusive") and unmatched.levels[0].note.startswith("unmatched")
    matched = packing_comparison([big_pack, small_pool, _run("maxpool", 420_000, [25.0, 25.1, 25.2])])
    assert matched.verdict == "no" and matched.levels[0].verdict.verdict == "packing worse"


def test_packing_rule_does_not_pair_runs_with_different_seed_counts():
    result = packing_comparison([_run("pack3d", 400_000, [24.0, 24.2, 23.9]), _run("maxpool", 420_000, [25.0, 25.1])])
    assert result.verdict.startswith("inconclusive") and result.levels[0].note.startswith("unpaired: 3 seeds against 2 of maxpool with 420,000")


def test_packing_rule_interpolates_on_the_max_pool_frontier():
    pools = [_run("maxpool", 100_000, [20.0, 20.0, 20.0]), _run("maxpool", 1_000_000, [24.0, 24.0, 24.0])]
    # halfway in log(parameters): max-pool's frontier gives 22 dB; packing at 22.5-22.7 dB is better
    result = packing_comparison([_run("pack2d", 316_228, [22.5, 22.6, 22.7]), *pools])
    assert result.levels[0].difference.mean == pytest.approx(0.6, abs=1e-3)
    assert "interpolated" in result.levels[0].reference and result.verdict == "yes"


def test_packing_rule_reports_unconverged_runs_instead_of_comparing_them():
    result = packing_comparison([_run("pack2d", 100_000, [30.0] * 3, converged=False),
                                 _run("maxpool", 100_000, [20.0] * 3)])
    assert result.unconverged == ["pack2d@2 (100,000 parameters)"]
    assert result.levels[0].note.startswith("unconverged") and result.verdict.startswith("inconclusive")


def test_packing_rule_is_inconclusive_within_the_seeds_spread():
    result = packing_comparison([_run("pack2d", 100_000, [21.0, 19.0, 20.5]), _run("maxpool", 100_000, [20.0, 20.4, 19.8])])
    assert result.levels[0].verdict.verdict == "inconclusive" and result.verdict.startswith("inconclusive")


def test_plateau_rule_on_falling_flat_and_near_lossless_curves():
    assert not plateaued([1.0 / (1 + 0.1 * t) for t in range(200)]).converged
    assert plateaued([0.5 + 0.01 * (-1) ** t for t in range(200)]).converged
    halving = [1e-5 * 0.99 ** t for t in range(200)]
    assert not plateaued(halving).converged and plateaued(halving, floor=NEAR_LOSSLESS_MSE).converged


# -- noise ----------------------------------------------------------------------------------------

def test_noise_estimator_recovers_a_known_injected_scatter_within_ten_percent():
    for seed in range(3):
        control = injected_scatter_run(seed=seed)
        measured = loss_statistics(control.losses)["all"]
        assert measured.cv_detrended == pytest.approx(control.true_cv_detrended, rel=0.10)
        # the trend is real: the plain CV would misreport the scatter by far more than 10%
        assert measured.cv > 1.5 * control.true_cv_detrended
        # and the clean run underneath has next to no scatter of its own
        assert loss_statistics(control.clean_losses)["all"].cv_detrended < 0.1 * control.true_cv_detrended


def test_every_rule_names_its_controls():
    assert set(CONTROLS) >= {"gradients", "collapse", "image", "packing", "noise", "learned", "fit"}
