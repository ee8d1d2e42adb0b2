"""The collapse statistics mean what they say."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from analyses.collapse import average_ranks, collapse_statistics
from probe.errors import ShapeError


def _scene(batch: int = 3, h: int = 12, w: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    gt = 1.0 + 9.0 * torch.rand(batch, 1, h, w, generator=gen)
    valid = torch.rand(batch, 1, h, w, generator=gen) > 0.2
    return gt, valid


def test_constant_prediction_is_collapsed() -> None:
    gt, valid = _scene()
    stats = collapse_statistics(torch.full_like(gt, 4.0), gt, valid)
    assert stats.collapsed == [True, True, True]
    assert stats.collapsed_share == 1.0
    assert all(r == 0.0 for r in stats.std_ratio)
    assert all(math.isnan(r) for r in stats.pearson)  # correlation of a constant is undefined


def test_predicting_each_images_mean_has_r2_zero() -> None:
    gt, valid = _scene()
    means = torch.stack([gt[i][valid[i]].mean() for i in range(gt.shape[0])]).view(-1, 1, 1, 1)
    stats = collapse_statistics(means.expand_as(gt).clone(), gt, valid)
    assert stats.r2 == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert not any(stats.scale_flagged)


def test_ground_truth_itself_is_perfect() -> None:
    gt, valid = _scene()
    stats = collapse_statistics(gt.clone(), gt, valid)
    assert stats.std_ratio == pytest.approx([1.0] * 3)
    assert stats.pearson == pytest.approx([1.0] * 3)
    assert stats.spearman == pytest.approx([1.0] * 3)
    assert stats.r2 == pytest.approx([1.0] * 3)
    assert stats.scale_ratio == pytest.approx([1.0] * 3)
    assert not any(stats.collapsed) and not any(stats.scale_flagged)
    assert stats.collapsed_share == 0.0


def test_twice_the_ground_truth_is_not_collapsed_but_scale_is_flagged() -> None:
    gt, valid = _scene()
    stats = collapse_statistics(2.0 * gt, gt, valid)
    assert not any(stats.collapsed)
    assert stats.scale_flagged == [True, True, True]
    assert stats.scale_ratio == pytest.approx([2.0] * 3)
    assert stats.std_ratio == pytest.approx([2.0] * 3)
    assert stats.pearson == pytest.approx([1.0] * 3)
    assert stats.scale_flagged_share == 1.0


def test_independent_noise_is_uncorrelated() -> None:
    gt, valid = _scene(batch=2, h=64, w=64, seed=1)
    noise = 1.0 + 9.0 * torch.rand(gt.shape, generator=torch.Generator().manual_seed(7))
    stats = collapse_statistics(noise, gt, valid)
    assert all(abs(r) < 0.08 for r in stats.pearson)
    assert all(abs(r) < 0.08 for r in stats.spearman)
    assert all(r < 0.0 for r in stats.r2)  # worse than the per-image mean predictor
    assert not any(stats.collapsed)


def test_invalid_pixels_are_ignored() -> None:
    gt, valid = _scene()
    n_bad = int((~valid).sum())
    junk = torch.tensor([1e6, -5.0, float("nan")]).repeat(n_bad // 3 + 1)[:n_bad]
    pred, gt_dirty = 0.5 * gt + 1.0, gt.clone()
    pred_dirty = pred.clone()
    pred_dirty[~valid] = junk
    gt_dirty[~valid] = junk.flip(0)
    clean = collapse_statistics(pred, gt, valid)
    dirty = collapse_statistics(pred_dirty, gt_dirty, valid)
    for key in ("std_ratio", "pearson", "spearman", "r2", "scale_ratio"):
        assert getattr(dirty, key) == pytest.approx(getattr(clean, key))
    assert dirty.n_valid == [int(v.sum()) for v in valid]


def test_flat_ground_truth_is_undefined_not_collapsed() -> None:
    gt = torch.full((1, 1, 4, 4), 3.0)
    stats = collapse_statistics(gt.clone(), gt, torch.ones_like(gt, dtype=torch.bool))
    assert stats.defined == [False] and stats.collapsed == [False]
    assert math.isnan(stats.std_ratio[0]) and math.isnan(stats.collapsed_share)


def test_mismatched_shapes_raise_shape_error() -> None:
    gt, valid = _scene()
    with pytest.raises(ShapeError, match=r"\[B,1,H,W\]"):
        collapse_statistics(gt[:, :, :-1], gt, valid)


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=-5, max_value=5), min_size=2, max_size=30))
def test_average_ranks_match_scipy_rankdata(values: list[int]) -> None:
    x = torch.tensor(values, dtype=torch.float64)
    assert average_ranks(x).tolist() == pytest.approx((sps.rankdata(values) - 1.0).tolist())


@settings(max_examples=30)
@given(st.integers(min_value=0, max_value=10_000))
def test_spearman_matches_scipy_on_random_images(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    gt = torch.randint(1, 6, (1, 1, 5, 6), generator=gen).double()
    pred = torch.randint(1, 6, (1, 1, 5, 6), generator=gen).double()
    valid = torch.ones_like(gt, dtype=torch.bool)
    stats = collapse_statistics(pred, gt, valid)
    expected = sps.spearmanr(pred.flatten().numpy(), gt.flatten().numpy()).statistic
    if math.isnan(expected):
        assert math.isnan(stats.spearman[0])
    else:
        assert stats.spearman[0] == pytest.approx(expected, abs=1e-9)


# -- measuring models ---------------------------------------------------------------------------

def test_measurement_restores_training_mode_and_returns_metres() -> None:
    import torch.nn as nn

    from analyses.collapse import measure
    from probe.data.samples import Samples

    class Flat(nn.Module):
        output_space = "inverse"

        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.tensor(0.25))  # inverse depth 0.25 -> 4 m everywhere

        def forward(self, x):
            return self.bias.expand(x.shape[0], 1, x.shape[2], x.shape[3]) if not self.training else [x]

    gt, valid = _scene(batch=2, h=8, w=12)
    batch = Samples(image=torch.rand(2, 3, 16, 24), depth=gt, valid=valid, names=["a", "b"], max_depth=10.0)
    model = Flat().train()
    result = measure(model, batch, step=7)
    assert model.training
    assert result.pred.shape == gt.shape and torch.allclose(result.pred, torch.full_like(gt, 4.0))
    assert result.stats.collapsed == [True, True] and result.summary().step == 7


def test_cli_tracks_collapse_over_training_and_measures_a_checkpoint(run_cli, tmp_path) -> None:
    import json
    import shutil

    from probe.report.build import build_report, report_contents
    from probe.report.collect import collect_results
    from tests import result_examples as ex

    tiny = ["--width", "0.0625", "--input-size", "32x64", "--device", "cpu"]
    res = run_cli("collapse", "--model", "packnet_slim_b", "--steps", "4", "--every", "2", "--images", "4", *tiny,
                  "--out", tmp_path / "c")
    assert res.code == 0, res
    model = json.loads((tmp_path / "c" / "collapse.json").read_text())["models"][0]
    assert [h["step"] for h in model["history"]] == [0, 2, 4]
    assert len(model["final"]["std_ratio"]) == 4 and len(model["images"]) == 4
    assert model["final"]["collapsed_share"] == model["history"][-1]["collapsed_share"]
    for name in ("collapse_hist.png", "collapse_over_steps.png", "collapse_examples.png", "collapse_image_fade.png"):
        assert (tmp_path / "c" / name).stat().st_size > 0
    # the image dependence at every measurement, the last one's bootstrap, and where the image fades
    assert all(h["image_dependence"]["n_images"] == 4 for h in model["history"])
    last = model["history"][-1]["image_dependence"]
    assert last == model["final"]["image_dependence"] and 0.0 <= last["gt_image_share"] <= 1.0
    assert model["cross_std_ratio"]["mean"] == pytest.approx(last["cross_std_ratio"])
    assert model["cross_std_ratio"]["method"].startswith("bootstrap_95 over 4 images")
    blocks = [layer["name"] for layer in model["fade"]["layers"]]
    assert blocks[0] == "image" and blocks[-1] == "depth" and model["fade"]["step"] == 4
    assert blocks[1:4] == ["pre_calc", "conv1", "pack1"] and "conv2.0" in blocks and "disp2_layer" in blocks
    summary = json.loads((tmp_path / "c" / "collapse.json").read_text())["summaries"][0]
    assert summary["fades_at"] == [model["fade"]["fades_at"]]
    html = build_report([tmp_path / "c"], tmp_path / "report.html").read_text()
    assert "cross-image std / gt&#x27;s" in html and "Where the image fades" in html

    # a result file missing the fade is one line naming the file and the key; the rest of the report renders
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "c", broken)
    doc = json.loads((broken / "collapse.json").read_text())
    del doc["models"][0]["fade"]
    (broken / "collapse.json").write_text(json.dumps(doc))
    ex.write(ex.complexity(), broken)  # another result, so the report has something to show
    results = collect_results([broken])
    lines = [line for line in report_contents(results)[1] if "collapse.json" in line]
    assert len(lines) == 1 and "models[0]" in lines[0] and "fade" in lines[0], lines

    res = run_cli("train", "--model", "packnet_slim_b", *tiny, "--dataset-length", "4", "--max-steps", "1",
                  "--workers", "0", "--out", tmp_path / "run")
    assert res.code == 0, res
    res = run_cli("collapse", "--checkpoint", tmp_path / "run", "--images", "3", "--device", "cpu",
                  "--out", tmp_path / "m")
    assert res.code == 0, res
    model = json.loads((tmp_path / "m" / "collapse.json").read_text())["models"][0]
    assert model["name"] == "packnet_slim_b" and [h["step"] for h in model["history"]] == [1]
    assert "checkpoint" in model["source"]
    assert model["fade"]["step"] == 1 and model["fade"]["layers"][1]["name"] == "pre_calc"


# -- image dependence and where the image fades -----------------------------------------------------

def test_image_dependence_is_zero_for_one_map_one_for_the_truth_and_ignores_scale() -> None:
    from analyses.collapse import image_dependence

    gt, valid = _scene(batch=6, seed=3)
    fixed = gt.log().mean(0, keepdim=True).exp().expand_as(gt).clone()
    assert image_dependence(fixed, gt, valid).cross_std_ratio == pytest.approx(0.0, abs=1e-12)
    truth = image_dependence(gt, gt, valid)
    assert truth.cross_std_ratio == pytest.approx(1.0) and 0.0 < truth.gt_image_share <= 1.0
    assert image_dependence(3.0 * gt, gt, valid).cross_std_ratio == pytest.approx(1.0)  # log: a factor is an offset
    one = image_dependence(gt[:1], gt[:1], valid[:1])
    assert one.n_pixels == 0 and math.isnan(one.cross_std_ratio)  # one image has no variation across images


def test_blocks_read_densedepth_and_a_user_model_in_execution_order_and_leave_no_hook() -> None:
    from analyses.collapse import layer_image_shares
    from probe.models import build_model

    images = torch.rand(3, 3, 32, 64)
    dense = build_model("densedepth", width=0.0625).train()
    blocks = [layer.name for layer in layer_image_shares(dense, images)]
    features = [f"encoder.features.{n}" for n in ("conv0", "norm0", "relu0", "pool0", "denseblock1", "transition1",
                                                  "denseblock2", "transition2", "denseblock3", "transition3",
                                                  "denseblock4", "norm5")]
    assert blocks == [*features, "conv2", "up1", "up2", "up3", "up4", "conv3"]
    assert dense.training and not any(m._forward_hooks for m in dense.modules())
    unet = [layer.name for layer in layer_image_shares(build_model("examples/unet.py:build", width=0.0625), images)]
    assert unet[:3] == ["net.encoder.stem", "net.encoder.pool", "net.encoder.stages.0.0"]
    assert unet[-1] == "net.decoder.heads.0" and len(unet) == 24
