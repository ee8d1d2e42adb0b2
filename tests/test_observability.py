"""Observability: the reprojection shift a depth error causes, from exact poses, per depth bin."""

from __future__ import annotations

import math

import pytest
import torch

from probe.data import get_dataset
from probe.errors import ProbeError
from probe.evaluate_scale import DepthBin
from probe.observability import Observability, reprojection_parallax


def _street(size: tuple[int, int], windows: int = 6):
    return get_dataset("synthetic_video_outdoor", split="test", input_size=size, length=windows)


def test_the_shift_falls_with_depth_and_doubles_with_the_image_width():
    small, large = reprojection_parallax(_street((64, 96))), reprojection_parallax(_street((128, 192)))
    shifts = [b.median for b in small.bins if b.n_images >= 3]
    assert len(shifts) >= 4 and shifts == sorted(shifts, reverse=True)  # far points move less
    for a, b in zip(small.bins, large.bins):
        if a.n_images >= 3 and b.n_images >= 3:
            assert b.median / a.median == pytest.approx(2.0, rel=0.15)  # pixels scale with the focal length
    edge_small, edge_large = small.unobservable_beyond(), large.unobservable_beyond()
    assert edge_small is not None and edge_large is not None and edge_large > edge_small


def test_a_smaller_error_moves_the_reprojection_less():
    street = _street((64, 96), windows=3)
    coarse, fine = reprojection_parallax(street, 1.25, windows=3), reprojection_parallax(street, 1.05, windows=3)
    for a, b in zip(coarse.bins, fine.bins):
        if a.n_images:
            assert 0 < b.median < a.median


def test_a_still_image_dataset_or_no_error_is_refused():
    with pytest.raises(ProbeError, match="no exact poses"):
        reprojection_parallax(get_dataset("synthetic", split="test", input_size=(32, 48), length=2))
    with pytest.raises(ProbeError, match="multiplier"):
        reprojection_parallax(_street((64, 96), windows=1), multiplier=1.0)


def test_unobservable_beyond_needs_every_farther_bin_below_the_threshold():
    bins = [DepthBin(0, 5, 3, 2.0), DepthBin(5, 10, 3, 0.4), DepthBin(10, 20, 3, 0.6), DepthBin(20, 40, 3, 0.2)]
    assert Observability(1.25, 3, (64, 96), bins).unobservable_beyond() == 20  # 10-20 m is still seen
    assert Observability(1.25, 3, (64, 96), bins[:1]).unobservable_beyond() is None
    empty_far = bins[:2] + [DepthBin(10, 20, 0, math.nan)]
    assert Observability(1.25, 3, (64, 96), empty_far).unobservable_beyond() == 5  # empty bins do not count
    assert "beyond 5 m" in Observability(1.25, 3, (64, 96), empty_far).sentence()
    assert Observability(1.25, 3, (64, 96), bins[:1]).sentence() == ""


def test_exact_depth_reprojects_with_no_shift_at_the_true_depth():
    street = _street((64, 96), windows=1)
    obs = reprojection_parallax(street, multiplier=1.0 + 1e-9, windows=1)
    assert all(b.median < 1e-5 for b in obs.bins if b.n_images)
    assert torch.isfinite(torch.tensor([b.median for b in obs.bins if b.n_images])).all()
