"""The photometric self-consistency scan: exact depth and poses put the minimum at 1, scaled depth moves it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from probe.data import get_dataset
from probe.errors import ProbeError
from probe.evaluate_consistency import (
    DEFAULT_EXPONENTS,
    DEFAULT_MULTIPLIERS,
    ConsistencyEvaluation,
    best_exponent,
    best_multiplier,
    evaluate_consistency,
    loss_curve,
    with_range_exponent,
)


@pytest.fixture(scope="module")
def video():
    return get_dataset("synthetic_video_outdoor", split="test", input_size=(64, 96), length=8)


def _exact_depth(item: dict) -> torch.Tensor:
    """The item's exact depth, the sky (no ground truth) at the dataset's cap: far, as it is."""
    return torch.where(item["valid"] > 0, item["depth"], torch.full_like(item["depth"], 80.0))


class _Replay(nn.Module):
    """An oracle depth model: returns, batch after batch, the exact depth of the windows in order (x ``factor``)."""

    output_space = "metric"

    def __init__(self, dataset, factor: float, exponent: float = 1.0) -> None:
        super().__init__()
        exact = [_exact_depth(dataset[i])[None] for i in range(len(dataset))]
        self.depths = [with_range_exponent(d, exponent)[0] * factor for d in exact]
        self.cursor = 0

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = torch.stack(self.depths[self.cursor : self.cursor + image.shape[0]])
        self.cursor += image.shape[0]
        return out


class _ExactPoses(nn.Module):
    """An oracle pose network: the windows' exact ``T_target_to_source`` in order."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.all = [dataset[i]["poses"] for i in range(len(dataset))]
        self.cursor = 0

    def poses(self, target: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        out = torch.stack(self.all[self.cursor : self.cursor + target.shape[0]])
        self.cursor += target.shape[0]
        return out


class _Still(nn.Module):
    """A pose network that says the camera never moved (identity poses): the warp then ignores the depth."""

    def poses(self, target: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        return torch.eye(4).expand(target.shape[0], sources.shape[1], 4, 4).clone()


@pytest.mark.parametrize("factor", [1.0, 1.25, 0.8])
def test_the_scan_minimum_undoes_a_depth_scale_error_with_exact_poses(video, factor):
    result = evaluate_consistency(_Replay(video, factor), _ExactPoses(video), video, batch_size=4)
    assert isinstance(result, ConsistencyEvaluation)
    assert result.n_windows == len(video)
    # exact depth (factor 1) is best as it is; depth x 1.25 is best shrunk by 0.8, and so on
    assert result.best_multiplier == pytest.approx(1.0 / factor, rel=0.06)
    assert result.loss_at_best <= result.loss_at_one
    if factor != 1.0:
        assert result.loss_at_one > result.loss_at_best * 1.05


def test_the_curve_is_a_sum_that_batches_add_up(video):
    items = [video[i] for i in range(4)]
    stack = {k: torch.stack([it[k] for it in items]) for k in ("image", "context", "poses", "K")}
    depth = torch.stack([_exact_depth(it) for it in items])
    grid = (0.5, 1.0, 2.0)
    whole = loss_curve(stack["image"], stack["context"], depth, stack["poses"], stack["K"], grid)
    halves = sum(
        loss_curve(stack["image"][s], stack["context"][s], depth[s], stack["poses"][s], stack["K"][s], grid)
        for s in (slice(0, 2), slice(2, 4))
    )
    assert torch.allclose(whole, halves, rtol=1e-9)
    assert whole[1] < whole[0] and whole[1] < whole[2]


def test_best_multiplier_refines_between_grid_points():
    grid = list(DEFAULT_MULTIPLIERS)
    losses = [(math.log(s) - math.log(1.1)) ** 2 for s in grid]
    assert best_multiplier(grid, losses) == pytest.approx(1.1, rel=1e-6)


def test_best_multiplier_at_the_grid_end_is_the_end():
    grid = [0.5, 1.0, 2.0]
    assert best_multiplier(grid, [3.0, 2.0, 1.0]) == 2.0
    assert best_multiplier(grid, [1.0, 2.0, 3.0]) == 0.5


def test_best_multiplier_needs_three_points():
    with pytest.raises(ProbeError, match="at least 3"):
        best_multiplier([1.0, 2.0], [1.0, 2.0])


def test_a_still_image_dataset_is_refused():
    still = get_dataset("synthetic", split="test", input_size=(32, 32), length=2)
    with pytest.raises(ProbeError, match="video dataset"):
        evaluate_consistency(nn.Identity(), _ExactPoses(get_dataset("synthetic_video", split="test", length=1)), still)


def test_the_result_round_trips(video, tmp_path):
    result = evaluate_consistency(_Replay(video, 1.0), _ExactPoses(video), video, batch_size=8)
    result.save(tmp_path)
    back = ConsistencyEvaluation.read(tmp_path / "consistency.json")
    assert back == result


@pytest.mark.parametrize("exponent", [1.0, 0.5, 1.5])
def test_the_exponent_scan_undoes_a_range_error_with_exact_poses(video, exponent):
    # exact depth compressed to exponent 0.5 about each image's median is best stretched by 2, and so on
    result = evaluate_consistency(_Replay(video, 1.0, exponent), _ExactPoses(video), video, batch_size=4)
    assert result.best_exponent == pytest.approx(1.0 / exponent, abs=0.1)
    assert result.best_exponent_exact == pytest.approx(result.best_exponent, abs=1e-9)
    assert result.range_losses_exact == pytest.approx(result.range_losses, rel=1e-9)
    one = result.exponents.index(1.0)
    if exponent != 1.0:
        assert result.range_losses[one] > min(result.range_losses) * 1.05


def test_the_own_scan_reads_the_networks_poses_and_the_exact_scan_the_datasets(video):
    # with identity poses the warp ignores the depth, so every exponent explains the target equally badly;
    # the exact poses still put the minimum at the exact range
    result = evaluate_consistency(_Replay(video, 1.0), _Still(), video, batch_size=4)
    assert max(result.range_losses) == pytest.approx(min(result.range_losses), rel=1e-6)
    assert result.best_exponent_exact == pytest.approx(1.0, abs=0.1)
    assert min(result.range_losses_exact) < min(result.range_losses) * 0.9


def test_range_exponents_compose_and_keep_the_median():
    depth = torch.rand(3, 1, 8, 12) * 40 + 1
    twice = with_range_exponent(with_range_exponent(depth, 0.5), 3.0)
    assert torch.allclose(twice, with_range_exponent(depth, 1.5), rtol=1e-5)
    assert torch.equal(with_range_exponent(depth, 1.0), depth)
    medians = depth.flatten(1).median(dim=1).values
    assert torch.allclose(with_range_exponent(depth, 0.3).flatten(1).median(dim=1).values, medians, rtol=1e-6)


def test_best_exponent_refines_between_grid_points():
    grid = list(DEFAULT_EXPONENTS)
    assert best_exponent(grid, [(a - 1.23) ** 2 for a in grid]) == pytest.approx(1.23, abs=1e-9)
    assert best_exponent(grid, [-a for a in grid]) == grid[-1]


def test_a_scan_without_an_exponent_of_one_is_refused(video):
    with pytest.raises(ProbeError, match="exponents must include 1.0"):
        evaluate_consistency(_Replay(video, 1.0), _ExactPoses(video), video, exponents=(0.5, 2.0, 3.0))


def test_without_a_pose_network_the_exact_poses_are_the_runs_own(video):
    exact = evaluate_consistency(_Replay(video, 1.25), _ExactPoses(video), video, batch_size=4)
    own = evaluate_consistency(_Replay(video, 1.25), None, video, batch_size=4)
    assert own.losses == pytest.approx(exact.losses, rel=1e-9) and own.best_multiplier == exact.best_multiplier
    assert own.options["own_poses"] == "exact" and exact.options["own_poses"] == "posenet"
    kitti_like = get_dataset("synthetic", split="test", input_size=(32, 32), length=1)
    with pytest.raises(ProbeError):
        evaluate_consistency(nn.Identity(), None, kitti_like)
