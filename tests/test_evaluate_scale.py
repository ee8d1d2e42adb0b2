"""Scale evaluation: the ratio median(gt)/median(pred) recovers a known scale error; median scaling removes it;
the median-scaled constant predictor is the floor a depth map must beat."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from probe.data.base import DatasetInfo
from probe.errors import ProbeError
from probe.evaluate_scale import ScaleEvaluation, depth_bins, evaluate_scale, ratio_summary, slope_summary
from probe.metrics import range_slopes

INFO = DatasetInfo("oracle", "depth written into the image", 0.1, 10.0, (8, 8), 1.0, "none", "test")


class Oracle(Dataset):
    """Items whose red channel is depth / 10 m: a model can read the exact depth off the image."""

    info = INFO
    split = "test"

    def __init__(self, n: int = 6) -> None:
        g = torch.Generator().manual_seed(0)
        self.depth = torch.rand(n, 1, 8, 8, generator=g) * 8 + 1.0

    def __len__(self) -> int:
        return len(self.depth)

    def __getitem__(self, i: int) -> dict:
        image = torch.cat([self.depth[i] / 10.0, torch.zeros(2, 8, 8)])
        return {"image": image, "depth": self.depth[i], "valid": torch.ones(1, 8, 8, dtype=torch.bool), "name": str(i)}


class ScaledReader(nn.Module):
    """Predicts ``scale`` times the true depth (``direct`` output: depth / max_depth)."""

    output_space = "direct"

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x[:, :1] + 0 * self.dummy


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.3])
def test_the_ratio_recovers_the_scale_and_median_scaling_removes_it(scale):
    result = evaluate_scale(ScaledReader(scale), Oracle(), batch_size=4)
    assert result.n_images == 6 and len(result.per_image_ratio) == 6
    assert result.ratio["median"] == pytest.approx(1 / scale, rel=1e-5)
    assert result.ratio["std"] == pytest.approx(0.0, abs=1e-5)
    assert result.metrics_median_scaled["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert result.metrics["abs_rel"] == pytest.approx(abs(scale - 1), rel=1e-4, abs=1e-6)
    assert result.scale_error == pytest.approx(abs(1 / scale - 1), rel=1e-5)
    assert result.ratio["within_10_percent"] == (1.0 if scale == 1.0 else 0.0)
    assert result.beats_constant  # an exact map up to scale beats every constant


def test_a_constant_prediction_does_not_beat_the_constant_predictor():
    class Flat(ScaledReader):
        def forward(self, x):
            return torch.full_like(x[:, :1], 0.4) + 0 * self.dummy

    result = evaluate_scale(Flat(1.0), Oracle())
    assert not result.beats_constant
    assert result.metrics_median_scaled["abs_rel"] == pytest.approx(result.constant_median_scaled["abs_rel"])


def test_result_round_trips_through_its_json(tmp_path):
    result = evaluate_scale(ScaledReader(2.0), Oracle(3))
    (path,) = result.save(tmp_path)
    data = json.loads(path.read_text())
    assert data["analysis"] == "scale" and data["schema_version"] == ScaleEvaluation.schema_version
    again = ScaleEvaluation.from_json(data)
    assert again.to_json() == result.to_json() and again.scale_error == pytest.approx(0.5)  # NaN bins: None both


def test_ratio_summary_quartiles_and_tolerance():
    summary = ratio_summary([0.5, 0.95, 1.0, 1.05, 2.0, float("nan")])
    assert summary["n"] == 5 and summary["median"] == 1.0 and summary["q25"] == 0.95 and summary["q75"] == 1.05
    assert summary["within_10_percent"] == pytest.approx(0.6)
    with pytest.raises(ProbeError, match="no image"):
        ratio_summary([float("nan")])


class FarBelow(ScaledReader):
    """Exact depth in the top three rows, 1.25 x too far below them (a depth range stretched at the bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :1].clone()
        out[..., 3:, :] *= 1.25
        return out + 0 * self.dummy


def test_the_uncropped_ratio_sees_the_whole_image_where_the_crop_sees_its_lower_part():
    cropped = evaluate_scale(FarBelow(1.0), Oracle(), protocol="kitti_eigen")  # Garg crop: rows 3..6 of 8
    assert cropped.ratio["median"] == pytest.approx(0.8, rel=1e-5)  # inside the crop: all 1.25 x too far
    assert 0.82 < cropped.ratio_uncropped["median"] < 0.99  # over the image: partly exact
    assert len(cropped.per_image_ratio_uncropped) == 6
    plain = evaluate_scale(ScaledReader(1.3), Oracle())  # no crop: the two agree
    assert plain.per_image_ratio_uncropped == pytest.approx(plain.per_image_ratio)


class Compressed(ScaledReader):
    """``scale * gt ** power`` in metres: the right structure for power 1, a compressed range below it."""

    def __init__(self, scale: float, power: float) -> None:
        super().__init__(scale)
        self.power = power

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        metres = 10.0 * x[:, :1]
        return self.scale * metres**self.power / 10.0 + 0 * self.dummy


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.7])
@pytest.mark.parametrize("power", [1.0, 0.6, 0.0])
def test_the_range_slope_is_the_power_whatever_the_scale(scale, power):
    result = evaluate_scale(Compressed(scale, power), Oracle(), batch_size=4)
    assert result.range_slope["n"] == 6 and len(result.per_image_range_slope) == 6
    assert result.range_slope["median"] == pytest.approx(power, abs=1e-4)
    assert result.range_slope["within_10_percent"] == (1.0 if power == 1.0 else 0.0)
    if power == 0.6:  # a compressed range: the per-image factor moves with the image's depth, the slope does not
        assert result.ratio["std"] > 0.01 and result.range_slope["std"] < 1e-4


class FlatAbove(ScaledReader):
    """Exact depth from row 3 down (the Garg crop of an 8-row image), a flat 5 m above it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :1].clone()
        out[..., :3, :] = 0.5
        return out + 0 * self.dummy


def test_the_range_slope_reads_the_whole_image_not_the_crop():
    result = evaluate_scale(FlatAbove(1.0), Oracle(), protocol="kitti_eigen")
    assert result.ratio["median"] == pytest.approx(1.0, rel=1e-5)  # the crop sees only exact rows
    assert 0.3 < result.range_slope["median"] < 0.9  # the flat rows above the crop compress the whole range


def test_range_slopes_are_nan_where_they_cannot_be_measured():
    gt = torch.full((3, 1, 2, 2), 4.0)
    gt[1] = torch.tensor([[1.0, 2.0], [4.0, 8.0]])
    pred = gt.clone()
    pred[1, 0, 0, 0] = 0.0  # a non-positive prediction has no logarithm
    mask = torch.ones_like(gt, dtype=torch.bool)
    mask[2] = False
    mask[2, 0, 0, 0] = True  # one pixel: no slope
    assert torch.isnan(range_slopes(pred, gt, mask)).all()  # flat gt, a zero prediction, a single pixel
    assert slope_summary([float("nan")] * 3) == {"n": 0}


def test_ratio_by_depth_is_flat_for_the_right_shape_and_falls_with_depth_for_a_compressed_range():
    right = evaluate_scale(Compressed(1.7, 1.0), Oracle(), batch_size=4)
    squeezed = evaluate_scale(Compressed(1.0, 0.5), Oracle(), batch_size=4)
    assert [b.high for b in right.ratio_by_depth] == depth_bins(10.0)[1:]
    filled = [b for b in right.ratio_by_depth if b.n_images]
    assert len(filled) >= 3 and all(b.median == pytest.approx(1.0, abs=1e-4) for b in filled)
    medians = [b.median for b in squeezed.ratio_by_depth if b.n_images]
    assert medians == sorted(medians, reverse=True) and medians[0] > 1.2 and medians[-1] < 0.9
    empty = [b for b in right.ratio_by_depth if not b.n_images]  # the Oracle's depth starts at 1 m
    assert empty and all(b.median != b.median for b in empty)  # NaN where no image has pixels
    again = ScaleEvaluation.from_json(json.loads(json.dumps(right.to_json())))
    assert [b.n_images for b in again.ratio_by_depth] == [b.n_images for b in right.ratio_by_depth]
