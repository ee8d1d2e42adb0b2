"""The training set's mean depth map: the image-blind baseline, and the model that wraps it."""

from __future__ import annotations

import math

import pytest
import torch

from probe.data import get_dataset
from probe.errors import ProbeError
from probe.evaluate_scale import evaluate_scale
from probe.mean_map import MeanMapModel, mean_depth_map


class Items(torch.utils.data.Dataset):
    """A dataset of given depth maps (``[H,W]`` each) with random images; ``valid`` where depth > 0."""

    def __init__(self, depths: list[torch.Tensor]) -> None:
        self.depths = depths

    def __len__(self) -> int:
        return len(self.depths)

    def __getitem__(self, i: int) -> dict:
        depth = self.depths[i][None].float()
        return {"image": torch.rand(3, *depth.shape[-2:], generator=torch.Generator().manual_seed(i)),
                "depth": depth, "valid": depth > 0, "name": str(i)}


def test_the_map_is_the_per_pixel_geometric_mean_over_the_valid_pixels():
    near, far = torch.full((4, 6), 1.0), torch.full((4, 6), 4.0)
    far[0, 0] = 0.0  # invalid in the second image: the pixel's mean is the first image's alone
    m = mean_depth_map(Items([near, far]))
    assert m.images == 2 and m.log_depth.shape == (4, 6)
    assert torch.allclose(m.log_depth.exp()[1:, 1:], torch.full((3, 5), 2.0))  # sqrt(1 * 4), not (1 + 4) / 2
    assert m.log_depth.exp()[0, 0] == pytest.approx(1.0) and m.coverage[0, 0] == pytest.approx(0.5)


def test_a_pixel_no_training_image_covers_takes_the_maps_median_and_zero_coverage():
    a, b = torch.full((3, 3), 2.0), torch.full((3, 3), 8.0)
    a[1, 1] = b[1, 1] = 0.0
    m = mean_depth_map(Items([a, b]))
    assert m.coverage[1, 1] == 0 and m.log_depth.exp()[1, 1] == pytest.approx(4.0)


def test_only_the_first_images_are_averaged():
    m = mean_depth_map(Items([torch.full((2, 2), 3.0), torch.full((2, 2), 300.0)]), images=1)
    assert m.images == 1 and torch.allclose(m.log_depth.exp(), torch.full((2, 2), 3.0))


@pytest.mark.parametrize("depths,images,match", [
    ([torch.ones(2, 2), torch.ones(3, 2)], 2, "item 1 is"),
    ([torch.ones(2, 2)], 0, "positive number"),
    ([], 4, "is empty"),
    ([torch.zeros(2, 2)], 1, "no valid depth pixel"),
])
def test_unusable_training_data_is_refused_in_one_line(depths, images, match):
    with pytest.raises(ProbeError, match=match) as caught:
        mean_depth_map(Items(depths), images=images)
    assert "\n" not in str(caught.value)


def test_the_model_returns_the_map_whatever_the_image_at_the_images_size():
    ramp = torch.linspace(1.0, 8.0, 6).expand(4, 6).clone()
    model = MeanMapModel(mean_depth_map(Items([ramp, ramp])))
    images = torch.rand(2, 3, 4, 6)
    out = model(images)
    assert out.shape == (2, 1, 4, 6) and torch.equal(out[0], out[1])
    assert torch.allclose(out[0, 0].exp(), ramp, rtol=1e-5)
    assert torch.equal(model(torch.zeros(1, 3, 4, 6))[0], out[0])  # never reads the image
    assert model(torch.rand(1, 3, 8, 12)).shape == (1, 1, 8, 12)
    assert sum(p.numel() for p in model.parameters()) == 0


def test_on_data_with_one_fixed_layout_the_map_is_exact_and_the_constant_is_not():
    """Positive control: every image shares one ramp of depth, so the map scores 0 and the constant does not."""
    ramp = torch.linspace(1.0, 8.0, 12).expand(8, 12).clone()
    data = Items([ramp * s for s in (1.0, 2.0, 0.5, 3.0)])
    data.info = get_dataset("synthetic", split="test", length=1).info  # the NYU protocol's range, 0.1-10 m
    score = evaluate_scale(MeanMapModel(mean_depth_map(data)), data, protocol="none")
    assert score.metrics_median_scaled["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert score.constant_median_scaled["abs_rel"] > 0.3


def test_on_rooms_the_map_is_barely_better_than_the_constant_and_on_streets_far_better():
    """The generated scenes: rooms have no fixed layout (the map is nearly the constant), streets have a ground plane
    (the map carries most of the structure, so beating the constant proves little there)."""
    ratios = {}
    for name in ("synthetic", "synthetic_outdoor"):
        train = get_dataset(name, split="train", input_size=(32, 48), length=96)
        test = get_dataset(name, split="test", input_size=(32, 48), length=24)
        score = evaluate_scale(MeanMapModel(mean_depth_map(train)), test)
        ratios[name] = score.metrics_median_scaled["abs_rel"] / score.constant_median_scaled["abs_rel"]
    assert 0.85 < ratios["synthetic"] < 1.05 and ratios["synthetic_outdoor"] < 0.6 and math.isfinite(ratios["synthetic"])
