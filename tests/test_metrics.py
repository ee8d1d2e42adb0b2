"""Laws of the depth metrics and the evaluation protocols, and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from probe.errors import ProbeError, ShapeError
from probe.metrics import METRIC_NAMES, MetricAccumulator, compute_depth_metrics, get_protocol, list_protocols


def ones_mask(t: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(t, dtype=torch.bool)


depth_maps = st.integers(0, 2**31 - 1).map(
    lambda seed: 0.2 + 20 * torch.rand(2, 1, 5, 6, generator=torch.Generator().manual_seed(seed)))


def test_metrics_match_hand_computed_values():
    gt = torch.tensor([1.0, 2.0, 4.0, 5.0])
    pred = torch.tensor([2.0, 2.0, 3.0, 5.5])
    m = compute_depth_metrics(pred, gt, ones_mask(gt))
    # |p-g|/g = [1, 0, 0.25, 0.1]; (p-g)^2 = [1, 0, 1, 0.25]; ratios = [2, 1, 4/3, 1.1]
    assert m["abs_rel"] == pytest.approx((1 + 0 + 0.25 + 0.1) / 4)
    assert m["sq_rel"] == pytest.approx((1 / 1 + 0 + 1 / 4 + 0.25 / 5) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 1 + 0.25) / 4))
    logs = [math.log(2), 0.0, math.log(3 / 4), math.log(1.1)]
    assert m["rmse_log"] == pytest.approx(math.sqrt(sum(x * x for x in logs) / 4))
    assert m["log10"] == pytest.approx(sum(abs(x) / math.log(10) for x in logs) / 4)
    assert m["delta1"] == pytest.approx(2 / 4)   # 1 and 1.1
    assert m["delta2"] == pytest.approx(3 / 4)   # + 4/3 < 1.5625
    assert m["delta3"] == pytest.approx(3 / 4)   # 2 >= 1.953125


def test_swapping_prediction_and_ground_truth_changes_abs_rel():
    gt = torch.tensor([1.0, 2.0])
    pred = torch.tensor([2.0, 4.0])
    assert compute_depth_metrics(pred, gt, ones_mask(gt))["abs_rel"] == pytest.approx(1.0)
    assert compute_depth_metrics(gt, pred, ones_mask(gt))["abs_rel"] == pytest.approx(0.5)


@given(gt=depth_maps, pred=depth_maps)
def test_deltas_rmse_and_log10_are_symmetric_but_abs_rel_is_relative_to_ground_truth(gt, pred):
    a = compute_depth_metrics(pred, gt, ones_mask(gt))
    b = compute_depth_metrics(gt, pred, ones_mask(gt))
    for name in ("rmse", "rmse_log", "log10", "delta1", "delta2", "delta3"):
        assert a[name] == pytest.approx(b[name], rel=1e-9, abs=1e-12)
    manual = ((pred.double() - gt.double()).abs() / gt.double()).mean().item()
    assert a["abs_rel"] == pytest.approx(manual, rel=1e-9)


@given(gt=depth_maps, seed=st.integers(0, 1000), junk=st.sampled_from([0.0, -3.0, float("nan"), float("inf"), 1e9]))
def test_pixels_outside_the_valid_mask_are_never_read(gt, seed, junk):
    g = torch.Generator().manual_seed(seed)
    valid = torch.rand(gt.shape, generator=g) > 0.4
    valid[0, 0, 0, 0] = True
    pred = gt * (0.5 + torch.rand(gt.shape, generator=g))
    reference = compute_depth_metrics(pred, gt, valid)
    corrupted = compute_depth_metrics(torch.where(valid, pred, torch.full_like(pred, junk)),
                                      torch.where(valid, gt, torch.full_like(gt, junk)), valid)
    assert corrupted == reference
    assert reference == pytest.approx(compute_depth_metrics(pred[valid], gt[valid], valid[valid]), rel=1e-12)


@given(gt=depth_maps)
def test_perfect_prediction_has_zero_error_and_all_deltas_one(gt):
    m = compute_depth_metrics(gt.clone(), gt, ones_mask(gt))
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10"):
        assert m[name] == 0.0
    assert m["delta1"] == m["delta2"] == m["delta3"] == 1.0


@given(gt=depth_maps, k=st.floats(0.1, 10.0))
def test_a_uniformly_scaled_prediction_has_abs_rel_k_minus_one_and_rmse_log_log_k(gt, k):
    m = compute_depth_metrics(gt.double() * k, gt.double(), ones_mask(gt))
    assert m["abs_rel"] == pytest.approx(abs(k - 1), rel=1e-9, abs=1e-12)
    assert m["rmse_log"] == pytest.approx(abs(math.log(k)), rel=1e-9, abs=1e-12)
    assert m["log10"] == pytest.approx(abs(math.log10(k)), rel=1e-9, abs=1e-12)


def test_prediction_exactly_1_25_times_truth_is_outside_delta1():
    small, large = torch.tensor([4.0, 8.0, 2.0]), torch.tensor([5.0, 10.0, 2.5])  # exactly 1.25x in binary
    for pred, gt in ((large, small), (small, large)):
        m = compute_depth_metrics(pred, gt, ones_mask(gt))
        assert m["delta1"] == 0.0 and m["delta2"] == 1.0 and m["delta3"] == 1.0
    just_inside = compute_depth_metrics(small * 1.2499, small, ones_mask(small))
    assert just_inside["delta1"] == 1.0


def test_pooled_and_per_image_reductions_differ_when_images_have_different_pixel_counts():
    gt = torch.ones(2, 1, 1, 4)
    pred = torch.tensor([[2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0]]).view(2, 1, 1, 4)
    valid = torch.tensor([[True, False, False, False], [True, True, True, True]]).view(2, 1, 1, 4)
    pooled = compute_depth_metrics(pred, gt, valid)
    images = compute_depth_metrics(pred, gt, valid, reduction="images")
    assert pooled["abs_rel"] == pytest.approx(1 / 5)
    assert images["abs_rel"] == pytest.approx(0.5)
    with pytest.raises(ProbeError, match="reduction"):
        compute_depth_metrics(pred, gt, valid, reduction="median")


def test_accumulator_over_batches_equals_one_call_on_the_concatenation():
    g = torch.Generator().manual_seed(0)
    gt = 0.5 + 5 * torch.rand(5, 1, 4, 4, generator=g)
    pred = 0.5 + 5 * torch.rand(5, 1, 4, 4, generator=g)
    valid = torch.rand(5, 1, 4, 4, generator=g) > 0.3
    valid[3] = False
    acc = MetricAccumulator()
    per_image = acc.update(pred[:2], gt[:2], valid[:2]) + acc.update(pred[2:], gt[2:], valid[2:])
    assert per_image[3] is None and acc.n_empty == 1 and acc.n_images == 4
    whole = compute_depth_metrics(pred, gt, valid)
    assert acc.pooled() == pytest.approx(whole, rel=1e-12)
    assert acc.n_pixels == int(valid.sum())


def test_no_valid_pixel_bad_values_and_shape_mismatch_raise():
    gt = torch.ones(1, 1, 2, 2)
    with pytest.raises(ProbeError, match="no valid ground-truth pixel"):
        compute_depth_metrics(gt, gt, torch.zeros_like(gt, dtype=torch.bool))
    with pytest.raises(ProbeError, match="prediction has 1 non-positive or non-finite"):
        compute_depth_metrics(torch.tensor([[[[1.0, float("nan")], [1.0, 1.0]]]]), gt, ones_mask(gt))
    with pytest.raises(ProbeError, match="ground truth has 1"):
        compute_depth_metrics(gt, torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]]), ones_mask(gt))
    with pytest.raises(ShapeError, match="same shape"):
        compute_depth_metrics(gt, gt[..., :1], ones_mask(gt))


def test_protocol_registry_has_the_published_protocols():
    assert list_protocols() == ["nyu", "make3d", "kitti", "none"]
    with pytest.raises(ProbeError, match="unknown evaluation protocol"):
        get_protocol("eigen")


def test_nyu_eigen_crop_is_exact_at_480x640_and_proportional_at_half_resolution():
    nyu = get_protocol("nyu")
    assert nyu.crop_box(480, 640) == (45, 471, 41, 601)
    assert nyu.crop_box(240, 320) == (22, 235, 20, 300)
    gt = torch.full((1, 1, 480, 640), 3.0)
    mask = nyu.mask(gt, ones_mask(gt))
    rows = mask[0, 0].any(dim=1).nonzero().flatten()
    cols = mask[0, 0].any(dim=0).nonzero().flatten()
    assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == (45, 470, 41, 600)
    assert int(mask.sum()) == 426 * 560


def test_kitti_garg_crop_matches_the_usual_integer_bounds():
    assert get_protocol("kitti").crop_box(375, 1242) == (153, 371, 44, 1197)
    assert get_protocol("none").crop_box(7, 9) == (0, 7, 0, 9)


def test_depth_caps_exclude_ground_truth_at_or_beyond_the_cap_and_below_the_minimum():
    gt = torch.tensor([0.0005, 0.5, 69.9, 70.0, 79.9, 80.0, 100.0]).view(1, 1, 1, 7)
    valid = ones_mask(gt)
    assert get_protocol("make3d").mask(gt, valid).flatten().tolist() == [False, True, True, False, False, False, False]
    assert get_protocol("none").mask(gt, valid).flatten().tolist() == [False, True, True, True, True, True, True]
    wide = gt.repeat(1, 1, 100, 20)  # 100 x 140: every test value lies well inside the Garg crop at columns 7..13
    kitti_row = get_protocol("kitti").mask(wide, ones_mask(wide))[0, 0, 50, 7:14].tolist()
    assert kitti_row == [False, True, True, True, True, False, False]
    assert not get_protocol("nyu").mask(wide, ones_mask(wide))[..., 9].any()  # column 9 holds 69.9 m, is beyond NYU's 10 m
    assert not get_protocol("kitti").mask(wide, ones_mask(wide))[0, 0, :40].any()  # rows above 0.408 H


def test_median_scaling_recovers_a_globally_scaled_prediction_and_reports_the_ratio():
    g = torch.Generator().manual_seed(1)
    gt = 1 + 8 * torch.rand(2, 1, 24, 32, generator=g)
    pred = gt * torch.tensor([0.5, 3.0]).view(2, 1, 1, 1)
    out = get_protocol("nyu").apply(pred, gt, ones_mask(gt), median_scaling=True, clamp=False)
    torch.testing.assert_close(out.ratios, torch.tensor([2.0, 1 / 3], dtype=torch.float64))
    m = compute_depth_metrics(out.pred, gt, out.mask)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-6) and m["delta1"] == 1.0
    unscaled = get_protocol("nyu").apply(pred, gt, ones_mask(gt))
    assert unscaled.ratios is None


def test_median_uses_the_mean_of_the_middle_two_values():
    gt = torch.tensor([1.0, 2.0, 3.0, 10.0]).view(1, 1, 1, 4)
    pred = torch.ones_like(gt)
    out = get_protocol("none").apply(pred, gt, ones_mask(gt), median_scaling=True)
    assert out.ratios.tolist() == [2.5]


def test_clamping_bounds_the_prediction_to_the_protocol_range():
    gt = torch.full((1, 1, 2, 2), 5.0)
    pred = torch.tensor([1e-6, 0.5, 9.0, 50.0]).view(1, 1, 2, 2)
    out = get_protocol("nyu").apply(pred, gt, ones_mask(gt))
    assert out.pred.flatten().tolist() == pytest.approx([1e-3, 0.5, 9.0, 10.0])
    kept = get_protocol("nyu").apply(pred, gt, ones_mask(gt), clamp=False)
    assert kept.pred.flatten().tolist() == pytest.approx(pred.flatten().tolist())
    with pytest.raises(ShapeError):
        get_protocol("nyu").apply(pred[0], gt[0], ones_mask(gt)[0])


def test_metric_names_are_the_literature_set():
    assert METRIC_NAMES == ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")
