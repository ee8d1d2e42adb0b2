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


def test_protocol_registry_has_the_published_protocols_and_keeps_the_old_names():
    assert list_protocols() == ["nyu_densedepth", "nyu_eigen", "kitti_eigen", "kitti_eigen_median", "make3d_c1", "none"]
    assert {old: get_protocol(old).name for old in ("nyu", "kitti", "make3d")} == {
        "nyu": "nyu_eigen", "kitti": "kitti_eigen", "make3d": "make3d_c1"}
    with pytest.raises(ProbeError, match="unknown evaluation protocol"):
        get_protocol("eigen")
    for name in list_protocols():
        protocol = get_protocol(name)
        assert protocol.source and protocol.description
        choices = protocol.choices(height=480, width=640)
        assert choices["name"] == name and choices["resolution"].startswith("ground truth's own")


def test_nyu_eigen_crop_is_exact_at_480x640_and_proportional_at_half_resolution():
    nyu = get_protocol("nyu_eigen")
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
    # Make3D C1 keeps gt <= 70 m (70.0 itself counts); the others exclude their cap
    assert get_protocol("make3d_c1").mask(gt, valid).flatten().tolist() == [False, True, True, True, False, False, False]
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


# -- each published protocol on a small hand-computed example -------------------------------------------


def _scores(name: str, pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None = None, **kwargs):
    protocol = get_protocol(name)
    out = protocol.apply(pred, gt, ones_mask(gt) if valid is None else valid, **kwargs)
    return out, compute_depth_metrics(out.pred, gt, out.mask, reduction=protocol.reduction)


def test_nyu_densedepth_crop_is_inclusive_on_480x640_and_pools_every_pixel_without_a_range_test():
    protocol = get_protocol("nyu_densedepth")
    assert protocol.crop_box(480, 640) == (20, 460, 24, 616)  # rows 20..459, cols 24..615 inclusive
    assert protocol.reduction == "pixels" and protocol.flip_tta and protocol.clip == (0.1, 10.0)
    gt = torch.full((1, 1, 480, 640), 12.0)  # beyond 10 m: DenseDepth keeps it (no depth-range mask)
    mask = protocol.mask(gt, ones_mask(gt))
    assert int(mask.sum()) == 440 * 592 and mask[0, 0, 20, 24] and mask[0, 0, 459, 615] and not mask[0, 0, 460, 615]
    with pytest.raises(ShapeError, match="480x640"):
        protocol.mask(gt[..., :240, :320], ones_mask(gt[..., :240, :320]))
    with pytest.raises(ProbeError, match="outside"):
        protocol.with_pixel_crop((0, 480, 0, 10), (480, 640))


def test_nyu_eigen_on_a_hand_computed_full_resolution_map():
    gt = torch.full((1, 1, 480, 640), 2.0)
    gt[0, 0, 100, 100] = 12.0     # beyond 10 m: not evaluated
    gt[0, 0, 10, 10] = 5.0        # outside the crop: not evaluated
    pred = torch.full_like(gt, 3.0)
    pred[0, 0, 200, 200] = 15.0   # clamped to 10 m: |10 - 2| / 2 = 4
    out, m = _scores("nyu_eigen", pred, gt)
    n = 426 * 560 - 1
    assert int(out.mask.sum()) == n
    assert m["abs_rel"] == pytest.approx((0.5 * (n - 1) + 4.0) / n, rel=1e-12)
    assert m["rmse"] == pytest.approx(math.sqrt((1.0 * (n - 1) + 64.0) / n), rel=1e-12)


def _kitti_map() -> torch.Tensor:
    gt = torch.zeros(1, 1, 375, 1242)        # sparse LiDAR: 0 = no return
    gt[0, 0, 200, 100] = 10.0                 # inside the Garg crop (rows 153..370, cols 44..1196)
    gt[0, 0, 300, 600] = 20.0                 # inside
    gt[0, 0, 100, 100] = 10.0                 # above row 153: outside
    gt[0, 0, 200, 1210] = 10.0                # right of col 1196: outside
    gt[0, 0, 250, 500] = 85.0                 # beyond 80 m: not evaluated
    return gt


def test_kitti_eigen_on_a_hand_computed_sparse_map():
    gt = _kitti_map()
    pred = torch.full_like(gt, 12.0)
    out, m = _scores("kitti_eigen", pred, gt, gt > 0)
    assert int(out.mask.sum()) == 2
    assert m["abs_rel"] == pytest.approx((2 / 10 + 8 / 20) / 2)
    assert m["delta1"] == pytest.approx(0.5)  # 12/10 = 1.2 < 1.25; 20/12 = 1.67
    assert out.ratios is None


def test_kitti_eigen_median_scales_each_image_by_the_median_ratio_before_clamping():
    gt = _kitti_map()
    pred = torch.full_like(gt, 200.0)
    pred[0, 0, 200, 100], pred[0, 0, 300, 600] = 25.0, 40.0
    out, m = _scores("kitti_eigen_median", pred, gt, gt > 0)
    ratio = 15.0 / 32.5                        # median(10, 20) / median(25, 40)
    assert out.ratios.tolist() == pytest.approx([ratio])
    assert m["abs_rel"] == pytest.approx((abs(25 * ratio - 10) / 10 + abs(40 * ratio - 20) / 20) / 2)
    # scaled first (200 x 0.46 = 92.3), then clamped to 80; clamping first would give 80 x 0.46 = 36.9
    assert out.pred[0, 0, 0, 0].item() == pytest.approx(80.0)
    plain, _ = _scores("kitti_eigen", pred, gt, gt > 0)
    assert plain.ratios is None


def test_make3d_c1_keeps_ground_truth_up_to_and_including_70_m():
    gt = torch.tensor([[10.0, 70.0], [70.5, 35.0]]).view(1, 1, 2, 2)
    pred = torch.tensor([[12.0, 60.0], [1.0, 90.0]]).view(1, 1, 2, 2)
    out, m = _scores("make3d_c1", pred, gt)
    assert out.mask.flatten().tolist() == [True, True, False, True]
    # 90 is clamped to 70: |70 - 35| / 35 = 1
    assert m["abs_rel"] == pytest.approx((2 / 10 + 10 / 70 + 1.0) / 3)
