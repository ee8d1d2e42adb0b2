"""Laws of the supervised depth losses: masks, scales, output spaces, hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from probe.errors import ProbeError, ShapeError
from probe.image_quality import ssim
from probe.depth_space import OUTPUT_SPACES
from probe.losses import LOSSES, build_loss, list_losses, masked_ssim_map

MAX_DEPTH = 10.0



SPACES = tuple(OUTPUT_SPACES)


def raw_output_for(depth: torch.Tensor, space: str, max_depth: float = MAX_DEPTH) -> torch.Tensor:
    """The raw output a perfect model in ``space`` would emit for ``depth`` (metres)."""
    return {"inverse": 1.0 / depth, "direct": depth / max_depth, "depthnorm": max_depth / depth, "metric": depth,
            "log_depth": torch.log(depth)}[space]


def scene(seed: int, shape=(2, 1, 16, 20), hole_fraction: float = 0.3):
    g = torch.Generator().manual_seed(seed)
    depth = 0.5 + 9.0 * torch.rand(shape, generator=g)
    valid = torch.rand(shape, generator=g) > hole_fraction
    depth = torch.where(valid, depth, torch.zeros_like(depth))
    return depth, valid


def test_registry_lists_the_four_losses():
    assert list_losses() == ["densedepth", "l1_inverse", "silog", "berhu"]
    with pytest.raises(ProbeError, match="unknown loss 'huber'"):
        build_loss("huber")
    with pytest.raises(ProbeError, match="bad option"):
        build_loss("silog", lam=0.5)


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize("space", SPACES)
def test_perfect_prediction_has_zero_loss_in_every_output_space(name, space):
    depth, valid = scene(0)
    safe = torch.where(valid, depth, torch.ones_like(depth))
    out = raw_output_for(safe, space).requires_grad_(True)
    result = build_loss(name)(out, depth, valid, output_space=space, max_depth=MAX_DEPTH)
    assert result.total.item() == pytest.approx(0.0, abs=1e-5)
    for term in result.terms.values():
        assert term.item() == pytest.approx(0.0, abs=1e-5)
    result.total.backward()
    assert torch.isfinite(out.grad).all()


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize("space", SPACES)
def test_predictions_at_invalid_pixels_change_neither_loss_nor_gradient(name, space):
    depth, valid = scene(1)
    g = torch.Generator().manual_seed(2)
    base = raw_output_for(0.5 + 9.0 * torch.rand(depth.shape, generator=g), space)
    garbage = torch.where(valid, base, base * 7.0 + 3.0)
    loss = build_loss(name)
    grads = []
    totals = []
    for out in (base, garbage):
        out = out.clone().requires_grad_(True)
        res = loss(out, depth, valid, output_space=space, max_depth=MAX_DEPTH)
        res.total.backward()
        totals.append(res.total.item())
        grads.append(out.grad)
    assert totals[0] == pytest.approx(totals[1], rel=1e-5, abs=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)
    assert (grads[0][~valid] == 0).all()


@given(seed=st.integers(0, 2**31 - 1), fill=st.floats(-5.0, 50.0))
def test_densedepth_loss_ignores_whatever_the_target_holds_at_invalid_pixels(seed, fill):
    depth, valid = scene(seed, shape=(1, 1, 12, 14))
    out = raw_output_for(0.5 + 9.0 * torch.rand(depth.shape, generator=torch.Generator().manual_seed(seed)), "inverse")
    loss = build_loss("densedepth")
    a = loss(out, depth, valid, output_space="inverse", max_depth=MAX_DEPTH).total
    b = loss(out, torch.where(valid, depth, torch.full_like(depth, fill)), valid,
             output_space="inverse", max_depth=MAX_DEPTH).total
    assert a.item() == pytest.approx(b.item(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", list_losses())
def test_batch_without_valid_pixels_gives_zero_loss_and_zero_gradients(name):
    depth = torch.zeros(2, 1, 8, 8)
    valid = torch.zeros_like(depth, dtype=torch.bool)
    out = torch.rand(2, 1, 8, 8).add(0.1).requires_grad_(True)
    res = build_loss(name)(out, depth, valid, output_space="inverse", max_depth=MAX_DEPTH)
    assert res.total.item() == 0.0
    assert all(t.item() == 0.0 for t in res.terms.values())
    res.total.backward()
    assert (out.grad == 0).all()


@pytest.mark.parametrize("name", list_losses())
def test_loss_of_several_scales_is_the_mean_of_each_scale_resized_to_the_target(name):
    depth, valid = scene(3, shape=(2, 1, 16, 20))
    g = torch.Generator().manual_seed(4)
    fine = 0.1 + torch.rand(2, 1, 16, 20, generator=g)
    coarse = 0.1 + torch.rand(2, 1, 8, 10, generator=g)
    loss = build_loss(name)
    kw = dict(output_space="inverse", max_depth=MAX_DEPTH)
    both = loss([fine, coarse], depth, valid, scales="all", **kw)
    alone_fine = loss(fine, depth, valid, **kw)
    alone_coarse = loss(coarse, depth, valid, **kw)
    upsampled = loss(F.interpolate(coarse, size=(16, 20), mode="bilinear", align_corners=False), depth, valid, **kw)
    assert both.total.item() == pytest.approx((alone_fine.total.item() + alone_coarse.total.item()) / 2, rel=1e-6)
    assert alone_coarse.total.item() == pytest.approx(upsampled.total.item(), rel=1e-6)
    for key in both.terms:
        expected = (alone_fine.terms[key] + alone_coarse.terms[key]) / 2
        assert both.terms[key].item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize("space", SPACES)
def test_gradient_reaches_every_scale(name, space):
    depth, valid = scene(5)
    g = torch.Generator().manual_seed(6)
    scales = [raw_output_for(0.5 + 9.0 * torch.rand(2, 1, 16 // s, 20 // s, generator=g), space).requires_grad_(True)
              for s in (1, 2, 4)]
    build_loss(name)(scales, depth, valid, output_space=space, max_depth=MAX_DEPTH, scales="all").total.backward()
    for out in scales:
        assert torch.isfinite(out.grad).all()
        assert out.grad.abs().sum() > 0


def test_densedepth_terms_match_hand_computed_values_on_a_row():
    # 1x3 image: the SSIM window shrinks to 1x1, so SSIM per pixel is (2xy + C1) / (x^2 + y^2 + C1);
    # val_range = 10 / 0.1 = 100 -> C1 = 1.  Target y = 10 / depth = [10, 5, 2]; prediction [10, 4, 2].
    depth = torch.tensor([1.0, 2.0, 5.0]).view(1, 1, 1, 3)
    valid = torch.ones_like(depth, dtype=torch.bool)
    pred = torch.tensor([10.0, 4.0, 2.0]).view(1, 1, 1, 3)
    res = build_loss("densedepth")(pred, depth, valid, output_space="depthnorm", max_depth=10.0)
    ssim_mid = (2 * 4 * 5 + 1) / (16 + 25 + 1)
    assert res.terms["ssim"].item() == pytest.approx((1 - ssim_mid) / 2 / 3, rel=1e-5)
    # dx pred [-6,-2] vs target [-5,-3]: |1| + |1| over H x W = 3 pixels (TF pads the last column with 0)
    assert res.terms["edges"].item() == pytest.approx(2 / 3, rel=1e-6)
    assert res.terms["l1"].item() == pytest.approx(1 / 3, rel=1e-6)
    assert res.total.item() == pytest.approx((1 - ssim_mid) / 6 + 2 / 3 + 0.1 / 3, rel=1e-5)

    valid[..., 2] = False  # last pixel gone: its SSIM window, the (1,2) pair and its L1 drop out
    res = build_loss("densedepth")(pred, depth, valid, output_space="depthnorm", max_depth=10.0)
    assert res.terms["ssim"].item() == pytest.approx((1 - ssim_mid) / 2 / 2, rel=1e-5)
    assert res.terms["edges"].item() == pytest.approx(1 / 2, rel=1e-6)  # the (0,1) pair over 2 valid pixels
    assert res.terms["l1"].item() == pytest.approx(1 / 2, rel=1e-6)


def test_densedepth_weights_follow_the_paper_and_edge_weight_zero_is_the_pytorch_port():
    depth, valid = scene(7)
    out = torch.rand(depth.shape, generator=torch.Generator().manual_seed(8)) + 0.1
    kw = dict(output_space="inverse", max_depth=MAX_DEPTH)
    full = build_loss("densedepth")(out, depth, valid, **kw)
    t = full.terms
    assert full.total.item() == pytest.approx((t["ssim"] + t["edges"] + 0.1 * t["l1"]).item(), rel=1e-6)
    port = build_loss("densedepth", edge_weight=0.0)(out, depth, valid, **kw)
    assert port.total.item() == pytest.approx((t["ssim"] + 0.1 * t["l1"]).item(), rel=1e-6)


def test_masked_ssim_with_all_pixels_valid_is_the_textbook_ssim():
    g = torch.Generator().manual_seed(9)
    x = 1 + 99 * torch.rand(2, 1, 20, 24, generator=g)
    y = x + 10 * torch.randn(2, 1, 20, 24, generator=g)
    ours, centre = masked_ssim_map(x, y, torch.ones_like(x, dtype=torch.bool), val_range=100.0)
    reference = ssim(x, y, data_range=100.0)  # probe.image_quality: unmasked, float64, written separately
    torch.testing.assert_close(ours.flatten(1).mean(dim=1).double(), reference, rtol=1e-4, atol=1e-5)
    assert centre.shape == ours.shape == (2, 1, 10, 14) and centre.all()


def test_silog_matches_hand_computation_and_is_scale_invariant_only_with_lambda_one():
    depth = torch.ones(1, 1, 1, 2)
    valid = torch.ones_like(depth, dtype=torch.bool)
    pred_metres = torch.tensor([math.e, 1.0]).view(1, 1, 1, 2)  # d = [1, 0]
    kw = dict(output_space="direct", max_depth=MAX_DEPTH)
    res = build_loss("silog")(pred_metres / MAX_DEPTH, depth, valid, **kw)
    assert res.total.item() == pytest.approx(10 * math.sqrt(0.5 - 0.85 * 0.25), rel=1e-5)

    depth, valid = scene(10)
    out = torch.rand(depth.shape, generator=torch.Generator().manual_seed(11)) * 0.9 + 0.05
    invariant = build_loss("silog", variance_focus=1.0)
    a = invariant(out, depth, valid, **kw).total.item()
    b = invariant(out * 0.37, depth, valid, **kw).total.item()
    assert a == pytest.approx(b, rel=1e-4)
    default = build_loss("silog")
    assert default(out, depth, valid, **kw).total.item() != pytest.approx(
        default(out * 0.37, depth, valid, **kw).total.item(), rel=1e-2)


def test_berhu_matches_hand_computation():
    depth = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3)
    pred = torch.tensor([1.0, 3.0, 8.0]).view(1, 1, 1, 3)  # residuals 0, 1, 5 -> c = 1
    res = build_loss("berhu")(pred / MAX_DEPTH, depth, torch.ones_like(depth, dtype=torch.bool),
                              output_space="direct", max_depth=MAX_DEPTH)
    assert res.total.item() == pytest.approx((0 + 1 + (25 + 1) / 2) / 3, rel=1e-5)


def test_l1_inverse_matches_hand_computation():
    depth = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2)
    out = torch.tensor([0.5, 0.25]).view(1, 1, 1, 2)  # inverse depth; truth [1, 0.5]
    res = build_loss("l1_inverse")(out, depth, torch.ones_like(depth, dtype=torch.bool),
                                   output_space="inverse", max_depth=MAX_DEPTH)
    assert res.total.item() == pytest.approx(0.375, rel=1e-6)


def test_loss_runs_in_float32_under_bf16_autocast():
    depth, valid = scene(12)
    out = torch.rand(depth.shape, generator=torch.Generator().manual_seed(13)) + 0.1
    loss = build_loss("densedepth")
    plain = loss(out, depth, valid, output_space="inverse", max_depth=MAX_DEPTH).total
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(out.bfloat16(), depth, valid, output_space="inverse", max_depth=MAX_DEPTH).total
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(plain.item(), rel=2e-2)


def test_shape_mismatches_raise_shape_errors():
    depth, valid = scene(14)
    loss = build_loss("l1_inverse")
    with pytest.raises(ShapeError, match="output scale 0"):
        loss(torch.rand(3, 1, 16, 20), depth, valid, output_space="inverse", max_depth=MAX_DEPTH)
    with pytest.raises(ShapeError, match="valid"):
        loss(torch.rand(2, 1, 16, 20), depth, valid[..., :10], output_space="inverse", max_depth=MAX_DEPTH)
    with pytest.raises(ShapeError, match="empty list"):
        loss([], depth, valid, output_space="inverse", max_depth=MAX_DEPTH)
    assert "densedepth" in LOSSES


def test_edge_term_equals_tf_image_gradients_mean_on_a_hand_computed_4x4():
    # Keras: dy, dx = tf.image.image_gradients(y) (forward differences, last row / column 0);
    # l_edges = mean(|dy_pred - dy_true| + |dx_pred - dx_true|) over the 4 x 4 pixels.
    target = torch.tensor([[1.0, 2.0, 4.0, 7.0],
                           [2.0, 2.0, 2.0, 2.0],
                           [0.5, 1.0, 1.5, 2.0],
                           [3.0, 3.0, 3.0, 3.0]]).view(1, 1, 4, 4)
    pred = torch.zeros(1, 1, 4, 4)  # every gradient of the prediction is 0
    # |dx target| rows: [1,2,3] [0,0,0] [.5,.5,.5] [0,0,0] -> 7.5;  |dy target| cols:
    # [1,1.5,2.5,4.5]... per column: |2-1|+|.5-2|+|3-.5| = 5, |0|+1+2 = 3, 2+.5+1.5 = 4, 5+0+1 = 6 -> 18
    depth = 10.0 / target  # the loss target is max_depth / depth = target
    valid = torch.ones_like(depth, dtype=torch.bool)
    res = build_loss("densedepth")(pred, depth, valid, output_space="depthnorm", max_depth=10.0)
    assert res.terms["edges"].item() == pytest.approx((7.5 + 18) / 16, rel=1e-6)
    # the pair-count normalisation (12 x-pairs, 12 y-pairs) this replaces would give 7.5/12 + 18/12
    assert res.terms["edges"].item() != pytest.approx(7.5 / 12 + 18 / 12, rel=1e-3)


def test_edge_term_drops_pairs_touching_an_invalid_pixel_and_averages_over_valid_pixels():
    target = torch.tensor([[1.0, 2.0], [4.0, 8.0]]).view(1, 1, 2, 2)
    depth = 10.0 / target
    valid = torch.tensor([[True, True], [True, False]]).view(1, 1, 2, 2)
    pred = torch.zeros(1, 1, 2, 2)
    res = build_loss("densedepth")(pred, depth, valid, output_space="depthnorm", max_depth=10.0)
    # kept pairs: x (0,0)-(0,1): |2-1| = 1; y (0,0)-(1,0): |4-1| = 3; 3 valid pixels
    assert res.terms["edges"].item() == pytest.approx(4 / 3, rel=1e-6)
    changed = pred.clone()
    changed[..., 1, 1] = 100.0  # the invalid pixel: nothing it touches may change the term
    again = build_loss("densedepth")(changed, depth, valid, output_space="depthnorm", max_depth=10.0)
    assert again.terms["edges"].item() == pytest.approx(4 / 3, rel=1e-6)
