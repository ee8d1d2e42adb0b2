"""The held-out score's image-blind baseline: the training split's mean depth map and the reads-the-image rule."""

from __future__ import annotations

import pytest
import torch

from probe.data import get_dataset
from probe.heldout import (SCORE_LOSS, Learned, held_out_dataset, held_out_score, image_verdict, learned_of,
                           score_predictions, training_mean_map)
from probe.losses import build_loss, dataset_loss_options
from probe.mean_map import MeanDepthMap, MeanMapModel
from probe.stats import seed_interval
from tests import result_examples as examples


def _street(size=(32, 48)):
    return held_out_dataset("synthetic_outdoor", None, size, 16)


def test_a_flat_image_blind_map_is_no_better_than_the_mean_map_on_streets():
    """Negative control: a map that never reads the image and ignores the ground plane (flat) against the streets'
    mean depth map: its median-scaled abs_rel is far above the map's, so it does not read the image."""
    test = _street()
    layout = training_mean_map("synthetic_outdoor", None, (32, 48), images=64)
    flat = MeanMapModel(MeanDepthMap("flat", 1, torch.zeros_like(layout.log_depth), torch.ones_like(layout.log_depth)))
    score = held_out_score(flat, test, resamples=200, mean_map=layout)
    assert score.mean_map is not None and score.mean_map_images == 64
    assert score.image_ratio is not None and score.image_ratio.low > 1.5
    assert score.reads_image is not None and score.reads_image.verdict == "no better than the mean map"
    assert score.summary().mean_map_abs_rel == pytest.approx(
        sum(score.mean_map.per_image_abs_rel_median_scaled) / score.n_images)


@pytest.mark.parametrize("variant", ["itself", "more images", "other images", "blurred"])
def test_no_image_blind_map_is_said_to_read_the_image(variant):
    """Negative controls near the threshold: the map itself (resized to the image and back by a model's output
    path), maps from more or other training images, and a blurred map all score within a few percent of the
    mean map, and none is said to read the image."""
    test = _street()
    layout = training_mean_map("synthetic_outdoor", None, (32, 48), images=64)
    blind = {
        "itself": layout,
        "more images": training_mean_map("synthetic_outdoor", None, (32, 48), images=256),
        "other images": training_mean_map("synthetic_outdoor", None, (32, 48), options={"seed": 1}, images=64),
        "blurred": MeanDepthMap("blurred", 1, torch.nn.functional.avg_pool2d(
            layout.log_depth[None, None], 3, 1, 1, count_include_pad=False)[0, 0], layout.coverage),
    }[variant]
    score = held_out_score(MeanMapModel(blind), test, resamples=200, mean_map=layout)
    assert score.image_ratio.mean == pytest.approx(1.0, abs=0.04)
    assert score.reads_image.verdict != "reads the image"


def test_a_depth_with_the_images_structure_at_the_wrong_scale_reads_the_image():
    """Positive control: the ground truth times 1.6 (every image's structure, a wrong scale) beats the mean map
    after median scaling on every image."""
    test = _street()
    layout = training_mean_map("synthetic_outdoor", None, (32, 48), images=64)
    batches = [(test[i]["depth"][None] * 1.6, test[i]["depth"][None], test[i]["valid"][None]) for i in range(8)]
    info = test.info
    loss = build_loss(SCORE_LOSS, **dataset_loss_options(SCORE_LOSS, info))
    model, constant, blind = score_predictions(batches, bounds=(info.min_depth, info.max_depth), loss_fn=loss,
                                               max_depth=info.max_depth, mean_map=layout)
    assert blind is not None and max(model.per_image_abs_rel_median_scaled) < 0.02  # clipped at 80 m, then scaled
    assert min(blind.per_image_abs_rel_median_scaled) > 0.0
    from probe.stats import paired_bootstrap_ratio
    ratio = paired_bootstrap_ratio(model.per_image_abs_rel_median_scaled, blind.per_image_abs_rel_median_scaled,
                                   resamples=200)
    assert image_verdict(ratio).verdict == "reads the image"


def test_without_a_mean_map_nothing_is_scored_or_judged():
    test = _street()
    layout = training_mean_map("synthetic_outdoor", None, (32, 48), images=8)
    score = held_out_score(MeanMapModel(layout), test, resamples=50)
    assert score.mean_map is None and score.image_ratio is None and score.reads_image is None
    summary = score.summary()
    assert summary.mean_map_abs_rel is None and summary.image_ratio is None


def test_the_training_mean_map_renders_only_the_images_averaged_and_follows_the_runs_seed():
    short = training_mean_map("synthetic", None, (32, 48), length=5, images=512)
    assert short.images == 5  # a 5-image training split: its 5 images, not 512
    same = training_mean_map("synthetic", None, (32, 48), options={"seed": 0}, length=5)
    other = training_mean_map("synthetic", None, (32, 48), options={"seed": 1}, length=5)
    assert torch.equal(short.log_depth, same.log_depth) and not torch.equal(short.log_depth, other.log_depth)


def test_over_seeds_the_image_ratio_gets_a_t_interval_and_a_missing_one_gives_none():
    runs = [examples.held_out(0.5, seed=s) for s in (0, 1, 2)]
    learned = learned_of([0, 1, 2], runs)
    assert learned.image_ratio == seed_interval([r.image_ratio.mean for r in runs])
    assert learned.reads_image == image_verdict(learned.image_ratio)
    assert "x the mean depth map's (reads the image)" in learned.describe()
    runs[1].image_ratio = None  # a seed scored without a mean map: no verdict over seeds
    partial = learned_of([0, 1, 2], runs)
    assert partial.image_ratio is None and partial.reads_image is None and "mean depth map" not in partial.describe()
    assert isinstance(partial, Learned)
