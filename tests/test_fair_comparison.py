"""Fair comparison: one objective for every model, depth clipped to the protocol, heads that cover its range."""

from __future__ import annotations

import json

import pytest
import torch

from probe.data import dataset_info, get_dataset
from probe.depth_space import clip_depth, depth_range, head_min_depth, to_depth
from probe.errors import ProbeError
from probe.heldout import LEARNED_FRACTION, constant_median_prediction, held_out_score, learned_verdict, score_predictions
from probe.losses import LOSS_SCALES, build_loss, dataset_loss_options, list_losses
from probe.models import build_model, dataset_model_options
from probe.training import TrainConfig, train

MAX_DEPTH = 10.0
RAW = {"inverse": lambda d: 1.0 / d, "direct": lambda d: d / MAX_DEPTH, "depthnorm": lambda d: MAX_DEPTH / d}


def _scene(seed: int = 0, shape=(2, 1, 16, 20)):
    g = torch.Generator().manual_seed(seed)
    depth = 0.5 + 9.0 * torch.rand(shape, generator=g)
    return depth, torch.ones(shape, dtype=torch.bool)


# -- one objective --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list_losses())
@pytest.mark.parametrize("space", sorted(RAW))
def test_a_perfect_finest_prediction_scores_zero_whatever_the_coarser_scales_hold(name, space):
    depth, valid = _scene(1)
    g = torch.Generator().manual_seed(2)
    garbage = [RAW[space](0.2 + 20 * torch.rand(2, 1, 16 // s, 20 // s, generator=g)) for s in (2, 4, 8)]
    out = build_loss(name)([RAW[space](depth), *garbage], depth, valid, output_space=space, max_depth=MAX_DEPTH,
                           scales="finest")
    assert out.total.item() == pytest.approx(0.0, abs=1e-5)
    # the negative control: PackNet's multi-scale protocol charges the same perfect prediction for its coarse scales
    charged = build_loss(name)([RAW[space](depth), *garbage], depth, valid, output_space=space, max_depth=MAX_DEPTH,
                               scales="all")
    assert charged.total.item() > 1e-2


def test_finest_is_the_default_and_coarser_scales_get_no_gradient():
    depth, valid = _scene(3)
    fine = (1.0 / depth).requires_grad_(True)
    coarse = torch.rand(2, 1, 8, 10).add(0.1).requires_grad_(True)
    build_loss("densedepth")([fine, coarse], depth, valid, output_space="inverse", max_depth=MAX_DEPTH).total.backward()
    assert coarse.grad is None and fine.grad is not None


def test_unknown_loss_scales_is_a_one_line_error_naming_the_flag():
    depth, valid = _scene()
    with pytest.raises(ProbeError, match="loss scales: expected one of finest, all"):
        build_loss("densedepth")(1.0 / depth, depth, valid, output_space="inverse", max_depth=MAX_DEPTH, scales="some")
    with pytest.raises(ProbeError, match="--loss-scales: expected one of finest, all, got 'coarse'"):
        TrainConfig(loss_scales="coarse").validate()
    assert set(LOSS_SCALES) == {"finest", "all"}


@pytest.mark.slow
def test_train_records_loss_scales_and_the_protocol_head_range_in_config_json(tmp_path):
    cfg = TrainConfig(model="packnet_slim_b", width=0.0625, input_size=(32, 32), dataset_length=4, max_steps=1,
                      batch_size=2, loss_scales="all", device="cpu", out=tmp_path / "run")
    result = train(cfg)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["config"]
    assert recorded["loss_scales"] == "all" and recorded["model_options"]["min_depth"] == 0.1
    assert result.summary is not None and result.summary.loss_scales == "all"
    assert result.model.min_depth == 0.1


# -- the protocol's depth range -------------------------------------------------------------------

def test_protocol_range_is_0_1_to_10_m_on_nyu_and_the_synthetic_rooms():
    assert depth_range(dataset_info("nyu")) == (0.1, 10.0)
    assert depth_range(dataset_info("synthetic")) == (0.1, 10.0)
    assert head_min_depth(dataset_info("synthetic")) == 0.1
    # KITTI's protocol minimum (1e-3 m) only means "positive": the head keeps the published 0.5 m there
    assert head_min_depth(dataset_info("kitti")) == 0.5


def test_clip_depth_bounds_every_value_and_keeps_nan_visible():
    depth = torch.tensor([1e-9, 0.05, 3.0, 11.0, 1e7, float("nan")])
    clipped = clip_depth(depth, (0.1, 10.0))
    assert clipped[:5].tolist() == pytest.approx([0.1, 0.1, 3.0, 10.0, 10.0])
    assert torch.isnan(clipped[5])


def test_packnet_head_follows_the_protocol_and_the_published_range_stays_an_option():
    info = dataset_info("synthetic")
    implied = dataset_model_options("packnet_slim_b", info)
    assert implied == {"min_depth": 0.1} and dataset_model_options("densedepth", info) == {}
    cfg = TrainConfig(model="packnet_b", dataset="synthetic").resolved(torch.device("cpu"))
    assert cfg.model_options["min_depth"] == 0.1
    kept = TrainConfig(model="packnet_b", model_options={"min_depth": 0.5}).resolved(torch.device("cpu"))
    assert kept.model_options["min_depth"] == 0.5


@pytest.mark.parametrize("min_depth,nearest", [(0.1, 0.1), (0.5, 0.5)])
def test_a_saturated_packnet_head_reaches_its_min_depth_and_no_nearer(min_depth, nearest):
    model = build_model("packnet_slim_b", width=0.0625, min_depth=min_depth).eval()
    for name, module in model.named_modules():
        if name.endswith("_layer"):  # depth heads: saturate the sigmoid
            torch.nn.init.zeros_(module.conv1.weight)
            torch.nn.init.constant_(module.conv1.bias, 40.0)
    with torch.no_grad():
        metres = to_depth(model(torch.rand(1, 3, 32, 32)), model.output_space, MAX_DEPTH)
    assert metres.min().item() == pytest.approx(nearest, rel=1e-5)


@pytest.mark.parametrize("depth_m", [0.1, 10.0])
def test_densedepth_output_covers_both_ends_of_the_protocol_range(depth_m):
    model = build_model("densedepth", width=0.0625).eval()
    torch.nn.init.zeros_(model.conv3.weight)
    torch.nn.init.constant_(model.conv3.bias, MAX_DEPTH / depth_m)  # DepthNorm: max_depth / depth
    with torch.no_grad():
        metres = to_depth(model(torch.rand(1, 3, 32, 32)), model.output_space, MAX_DEPTH)
    assert torch.allclose(metres, torch.full_like(metres, depth_m), rtol=1e-5)


def test_ssim_range_spans_the_protocols_depthnorm_targets():
    assert dataset_loss_options("densedepth", dataset_info("synthetic")) == {"min_depth": 0.1}  # 10 / 0.1 = 100
    assert dataset_loss_options("densedepth", dataset_info("synthetic_outdoor")) == {"min_depth": 1.0}  # 80 / 1
    assert dataset_loss_options("silog", dataset_info("nyu")) == {}


# -- the comparable held-out score ----------------------------------------------------------------

def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    depth = 1.0 + 4.0 * torch.rand(3, 1, 12, 16, generator=g)
    return depth, torch.ones_like(depth, dtype=torch.bool)


def test_constant_predictor_fills_each_image_with_its_own_median():
    depth, valid = _batch(0)
    valid[0, 0, :6] = False
    const = constant_median_prediction(depth, valid)
    for i in range(3):
        assert torch.all(const[i] == torch.quantile(depth[i][valid[i]].double(), 0.5).float())


def test_held_out_score_of_the_truth_is_zero_and_of_the_constant_is_its_own_baseline():
    loss = build_loss("densedepth")
    depth, valid = _batch(1)
    model, constant, _ = score_predictions([(depth.clone(), depth, valid)], bounds=(0.1, 10.0), loss_fn=loss,
                                        max_depth=MAX_DEPTH)
    assert model.loss == pytest.approx(0.0, abs=1e-6) and model.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-9)
    assert constant.metrics["abs_rel"] > 0.05
    const_again, _, _ = score_predictions([(constant_median_prediction(depth, valid), depth, valid)], bounds=(0.1, 10.0),
                                       loss_fn=loss, max_depth=MAX_DEPTH)
    assert const_again.loss == pytest.approx(constant.loss) and const_again.metrics == pytest.approx(constant.metrics)


def test_one_exploding_pixel_cannot_dominate_the_score():
    loss = build_loss("densedepth")
    depth, valid = _batch(2)
    pred = depth.clone()
    pred[0, 0, 0, 0] = 1e7  # an untrained DepthNorm head near zero
    model, _, _ = score_predictions([(pred, depth, valid)], bounds=(0.1, 10.0), loss_fn=loss, max_depth=MAX_DEPTH)
    worst = (10.0 - depth[0, 0, 0, 0]) / depth[0, 0, 0, 0] / depth.numel()
    assert model.metrics["abs_rel"] == pytest.approx(float(worst), rel=1e-5)


def test_learned_rule_on_its_controls():
    g = torch.Generator().manual_seed(3)
    constant = (0.2 + 0.05 * torch.rand(48, generator=g)).tolist()
    good = [0.4 * c for c in constant]
    untrained = [2.0 * c for c in constant]
    near = [LEARNED_FRACTION * c * (1 + 0.3 * (-1) ** i) for i, c in enumerate(constant)]
    assert learned_verdict(good, constant)[1].verdict == "learned"
    assert learned_verdict(untrained, constant)[1].verdict == "not learned"
    assert learned_verdict(near, constant)[1].verdict == "inconclusive"


def test_held_out_score_runs_on_a_model_and_round_trips_through_json():
    from probe.heldout import HeldOutScore

    torch.manual_seed(0)
    dataset = get_dataset("synthetic", split="test", input_size=(32, 48), length=4)
    score = held_out_score(build_model("densedepth", width=0.0625), dataset, batch_size=2, resamples=50)
    assert score.n_images == 4 and score.depth_range == (0.1, 10.0)
    assert score.learned.verdict in {"learned", "not learned", "inconclusive"}
    back = HeldOutScore.from_json(json.loads(json.dumps(score.to_json())))
    assert back.to_json() == score.to_json()


def test_scale_matched_score_separates_structure_from_scale():
    loss = build_loss("densedepth")
    depth, valid = _batch(4)
    model, constant, _ = score_predictions([(depth * 1.6, depth, valid)], bounds=(0.1, 10.0), loss_fn=loss,
                                        max_depth=MAX_DEPTH)
    assert model.metrics_image_mean["abs_rel"] == pytest.approx(0.6, rel=1e-5)  # the scale is wrong...
    assert max(model.per_image_abs_rel_median_scaled) < 1e-6  # ...the structure is exact
    assert min(constant.per_image_abs_rel_median_scaled) > 0.05  # a flat map has none


@pytest.mark.parametrize("min_depth,bias", [(0.5, 0.0), (0.1, -2.1972246)])
def test_inverse_heads_start_where_the_published_head_starts(min_depth, bias):
    model = build_model("packnet_slim_b", width=0.0625, min_depth=min_depth)
    heads = [m for name, m in model.named_modules() if name.endswith("_layer")]
    assert all(h.conv1.bias.detach().tolist() == pytest.approx([bias]) for h in heads)  # published 0.5 m: unchanged
    for h in heads:
        torch.nn.init.zeros_(h.conv1.weight)
    with torch.no_grad():
        metres = to_depth(model.eval()(torch.rand(1, 3, 32, 32)), model.output_space, MAX_DEPTH)
    assert torch.allclose(metres, torch.ones_like(metres), rtol=1e-5)  # a zero input predicts 1 m
