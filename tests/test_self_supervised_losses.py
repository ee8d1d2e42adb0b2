"""Self-supervised loss terms on hand-computed cases: SSIM(3x3), 0.85/0.15 photometric error, the per-pixel
minimum, auto-masking, mean-normalised edge-aware smoothness, multi-scale weighting and the velocity loss."""

from __future__ import annotations

import math

import pytest
import torch

from probe.errors import ProbeError, ShapeError
from probe.geometry import inverse_warp
from probe.self_supervised_losses import (C1, C2, DEFAULT_WEIGHTS, SELF_SUPERVISED_TERMS, SelfSupervisedLoss,
                                          ViewSynthesisInputs, combine_sources, min_reprojection,
                                          photometric_error, reprojection_errors, smoothness_loss, ssim_map,
                                          velocity_loss)

K = torch.tensor([[[20.0, 0.0, 7.5], [0.0, 20.0, 5.5], [0.0, 0.0, 1.0]]], dtype=torch.float64)


def test_packnet_sfm_defaults_are_the_published_numbers():
    assert DEFAULT_WEIGHTS == {"reprojection": 1.0, "smoothness": 1e-3, "velocity": 0.1}
    assert set(SELF_SUPERVISED_TERMS.names()) >= {"reprojection", "smoothness", "velocity"}


def test_ssim_of_two_flat_images_is_the_luminance_term():
    a, b = torch.full((1, 1, 5, 5), 0.2, dtype=torch.float64), torch.full((1, 1, 5, 5), 0.6, dtype=torch.float64)
    # no variance anywhere: the contrast-structure factor is C2 / C2 = 1
    expected = (2 * 0.2 * 0.6 + C1) / (0.2 ** 2 + 0.6 ** 2 + C1)
    torch.testing.assert_close(ssim_map(a, b), torch.full_like(a, expected))
    torch.testing.assert_close(ssim_map(a, a), torch.ones_like(a))


def test_ssim_window_is_3x3_with_reflection_padding():
    base = torch.full((1, 1, 7, 7), 0.5, dtype=torch.float64)
    bumped = base.clone()
    bumped[0, 0, 3, 3] = 0.9
    changed = ssim_map(base, bumped) < 1 - 1e-12
    expected = torch.zeros_like(changed)
    expected[..., 2:5, 2:5] = True  # only the windows holding the pixel
    assert torch.equal(changed, expected)
    corner = base.clone()
    corner[0, 0, 0, 0] = 0.9
    # reflection padding: the window of the corner pixel holds it once (replicate padding would hold it 4 times)
    mu = (0.9 + 8 * 0.5) / 9
    var = (0.81 + 8 * 0.25) / 9 - mu * mu
    expected = (2 * 0.5 * mu + C1) * C2 / ((0.25 + mu * mu + C1) * (var + C2))
    assert float(ssim_map(base, corner)[0, 0, 0, 0]) == pytest.approx(expected, rel=1e-9)


def test_photometric_error_is_085_dssim_plus_015_l1_averaged_over_rgb():
    a = torch.full((1, 3, 4, 4), 0.2, dtype=torch.float64)
    b = torch.full((1, 3, 4, 4), 0.6, dtype=torch.float64)
    ssim = (2 * 0.2 * 0.6 + C1) / (0.2 ** 2 + 0.6 ** 2 + C1)
    expected = 0.85 * (1 - ssim) / 2 + 0.15 * 0.4
    torch.testing.assert_close(photometric_error(a, b), torch.full((1, 1, 4, 4), expected, dtype=torch.float64))
    assert float(photometric_error(a, a).abs().max()) == 0.0
    torch.testing.assert_close(photometric_error(a, b, ssim_weight=0.0), torch.full((1, 1, 4, 4), 0.4, dtype=torch.float64))


def test_the_minimum_over_sources_is_taken_per_pixel():
    errors = torch.tensor([[[[0.3, 0.1]], [[0.2, 0.5]]]], dtype=torch.float64)  # [B=1, N=2, 1, 2]
    smallest, index = min_reprojection(errors)
    assert smallest.tolist() == [[[[0.2, 0.1]]]] and index.tolist() == [[[[1, 0]]]]


def test_averaging_sources_takes_their_mean_before_the_minimum_with_the_identity():
    # channels: warped t-1, warped t+1, identity t-1, identity t+1 (one pixel each, two pixels)
    errors = torch.tensor([[[[0.9, 0.1]], [[0.1, 0.3]], [[0.4, 0.6]], [[0.5, 0.05]]]], dtype=torch.float64)
    assert combine_sources(errors, 2, "min").tolist() == [[[[0.1, 0.05]]]]
    assert combine_sources(errors, 2, "mean").tolist() == [[[[0.4, 0.05]]]]  # (0.9+0.1)/2 = 0.5 loses to 0.4
    without_identity = errors[:, :2]
    torch.testing.assert_close(combine_sources(without_identity, 2, "mean"), torch.tensor([[[[0.5, 0.2]]]],
                                                                                          dtype=torch.float64))
    with pytest.raises(ProbeError, match="sources must be one of min, mean"):
        combine_sources(errors, 2, "median")
    with pytest.raises(ProbeError, match="sources must be one of min, mean"):
        SELF_SUPERVISED_TERMS.build("reprojection", sources="max")


def test_averaging_sources_gives_the_source_the_minimum_ignores_a_gradient():
    errors = torch.tensor([[[[0.9, 0.1]], [[0.1, 0.3]]]], dtype=torch.float64, requires_grad=True)
    combine_sources(errors, 2, "min").sum().backward()
    assert errors.grad.tolist() == [[[[0.0, 1.0]], [[1.0, 0.0]]]]  # each pixel reads one source only
    errors.grad = None
    combine_sources(errors, 2, "mean").sum().backward()
    assert errors.grad.tolist() == [[[[0.5, 0.5]], [[0.5, 0.5]]]]


def test_the_reprojection_term_averages_the_warped_sources_when_asked():
    # one well-posed source and one whose translation is turned around: the term is their mean error
    source, target, T = _wall_scene()
    bad = T.clone()
    bad[0, 0, 3] = -0.5
    poses, sources = torch.stack([T, bad], dim=1), torch.stack([source, source], dim=1)
    depth = torch.full((1, 1, 12, 16), 5.0, dtype=torch.float64)
    inputs = ViewSynthesisInputs(target, sources, [depth], poses, K)
    errors = reprojection_errors(target, sources, depth, poses, K, automask=False)
    mean = SELF_SUPERVISED_TERMS.build("reprojection", automask=False, sources="mean")(inputs)
    smallest = SELF_SUPERVISED_TERMS.build("reprojection", automask=False)(inputs)
    assert float(mean) == pytest.approx(float(errors.mean()), rel=1e-9)
    assert float(smallest) == pytest.approx(float(errors.min(dim=1).values.mean()), rel=1e-9)
    assert float(mean) > 2 * float(smallest)


def _wall_scene(shift: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A textured fronto-parallel wall at 5 m seen from a target camera and a source 0.5 m to the left (2 px)."""
    torch.manual_seed(0)
    source = torch.rand(1, 3, 12, 16, dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)[None].clone()
    T[0, 0, 3] = shift
    target, _ = inverse_warp(source, torch.full((1, 1, 12, 16), 5.0, dtype=torch.float64), T, K)
    return source, target, T


def test_reprojection_with_the_true_depth_beats_a_wrong_depth():
    source, target, T = _wall_scene()
    inner = (..., slice(2, 10), slice(2, 12))  # away from the zero-padded border
    right = reprojection_errors(target, source[:, None], torch.full((1, 1, 12, 16), 5.0, dtype=torch.float64),
                                T[:, None], K, automask=False)
    wrong = reprojection_errors(target, source[:, None], torch.full((1, 1, 12, 16), 2.5, dtype=torch.float64),
                                T[:, None], K, automask=False)
    assert float(right[inner].max()) < 1e-9 and float(wrong[inner].mean()) > 0.05


def test_automasking_lets_static_pixels_ignore_the_depth():
    # the source equals the target (nothing moved on screen): the identity candidate explains every pixel
    image = torch.rand(1, 3, 12, 16, dtype=torch.float64)
    depth = torch.full((1, 1, 12, 16), 3.0, dtype=torch.float64, requires_grad=True)
    _, _, T = _wall_scene()
    errors = reprojection_errors(image, image[:, None], depth, T[:, None], K, automask=True)
    assert errors.shape == (1, 2, 12, 16)
    loss = min_reprojection(errors)[0].mean()
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(depth.grad.abs().max()) == 0.0
    unmasked = min_reprojection(reprojection_errors(image, image[:, None], depth, T[:, None], K, automask=False))[0]
    assert float(unmasked.detach().mean()) > 0.05


def test_smoothness_of_a_ramp_is_its_normalised_slope_times_the_edge_weight():
    inv = torch.tensor([[[[1.0, 2.0, 3.0]]]], dtype=torch.float64)  # mean 2: normalised 0.5, 1, 1.5
    flat = torch.zeros(1, 3, 1, 3, dtype=torch.float64)
    assert float(smoothness_loss(inv, flat)) == pytest.approx(0.5)
    edge = flat.clone()
    edge[..., 2] = 0.3  # an image edge between columns 1 and 2 (the same in every channel)
    assert float(smoothness_loss(inv, edge)) == pytest.approx(0.5 * (1 + math.exp(-0.3)) / 2)
    assert float(smoothness_loss(torch.ones(1, 1, 4, 4, dtype=torch.float64), torch.rand(1, 3, 4, 4))) == 0.0


def test_smoothness_cannot_be_lowered_by_scaling_the_scene():
    inv, image = torch.rand(2, 1, 8, 8) + 0.1, torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(smoothness_loss(7.0 * inv, image), smoothness_loss(inv, image))


def test_velocity_loss_is_the_distance_error_over_present_readings():
    translation = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    travelled = torch.tensor([[4.0, 2.0], [9.0, 9.0]])
    assert float(velocity_loss(translation, travelled, torch.tensor([True, False]))) == pytest.approx(0.5)
    assert float(velocity_loss(translation, travelled, torch.tensor([True, True]))) == pytest.approx((1 + 0 + 8 + 8) / 4)
    assert float(velocity_loss(translation, travelled, torch.tensor([False, False]))) == 0.0


def _inputs(depths: list[torch.Tensor], speed_scale: float = 1.0) -> ViewSynthesisInputs:
    source, target, T = _wall_scene()
    travelled = torch.tensor([[0.5 * speed_scale]], dtype=torch.float64)
    return ViewSynthesisInputs(target, source[:, None], depths, T[:, None], K, travelled, torch.tensor([True]))


def test_the_total_weighs_the_terms_and_multi_scale_averages_them():
    depths = [torch.full((1, 1, 12, 16), 5.0, dtype=torch.float64),
              torch.rand(1, 1, 12, 16, dtype=torch.float64) + 2.0]
    out = SelfSupervisedLoss({"reprojection": 1.0, "smoothness": 0.5, "velocity": 2.0})(_inputs(depths, 1.2))
    assert set(out.terms) == {"reprojection", "smoothness", "velocity", "pose_scale"}
    expected = out.terms["reprojection"] + 0.5 * out.terms["smoothness"] + 2.0 * out.terms["velocity"]
    assert float(out.total) == pytest.approx(float(expected), rel=1e-6)
    assert float(out.terms["velocity"]) == pytest.approx(0.1, abs=1e-6)  # |0.5 - 0.6|
    assert float(out.terms["pose_scale"]) == pytest.approx(0.5 / 0.6, rel=1e-6)
    image = _inputs(depths).target.float()
    by_scale = [smoothness_loss(1.0 / d.float(), image) / 2 ** i for i, d in enumerate(depths)]
    assert float(out.terms["smoothness"]) == pytest.approx(float(sum(by_scale) / 2), rel=1e-5)


def test_unknown_terms_and_negative_weights_are_errors():
    with pytest.raises(ProbeError, match="unknown self-supervised loss term"):
        SelfSupervisedLoss({"photometricc": 1.0})
    with pytest.raises(ProbeError, match=">= 0"):
        SelfSupervisedLoss({"velocity": -1.0})
    with pytest.raises(ShapeError, match=r"\[B,S,3,H,W\]"):
        reprojection_errors(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), torch.rand(1, 1, 4, 4),
                            torch.eye(4)[None, None], K.float())
