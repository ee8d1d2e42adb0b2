"""Evaluation loop, prediction writer and the `probe eval` / `probe predict` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from probe.data import DatasetInfo, DepthDataset, RawSample, get_dataset
from probe.errors import DataError, ProbeError, ShapeError
from probe.evaluate import depth_to_rgb, evaluate, predict_depth, predict_images

MAX_DEPTH = 8.0



SCENE_DEPTHS = (1.0, 2.0, 4.0, 6.0)  # each /8 is exact in binary, so the oracle below is exact

UNIFORM_INFO = DatasetInfo(name="uniform", description="one depth per image, encoded in the red channel",
                           min_depth=0.1, max_depth=MAX_DEPTH, input_size=(16, 16), depth_scale=0.5,
                           eval_protocol="none", source="tests", needs_root=False)


class UniformScenes(DepthDataset):
    """Image i is a flat colour whose red channel is depth_i / 8; its depth map is depth_i everywhere."""

    def __init__(self, split: str = "test") -> None:
        super().__init__(UNIFORM_INFO, split=split)

    def __len__(self) -> int:
        return len(SCENE_DEPTHS)

    def load_raw(self, index: int) -> RawSample:
        depth = SCENE_DEPTHS[index]
        image = np.zeros((16, 16, 3), dtype=np.float32)
        image[..., 0] = depth / MAX_DEPTH
        return RawSample(image=image, depth=np.full((8, 8), depth, dtype=np.float32), name=f"scene{index}")


class RedChannelDepth(nn.Module):
    """A 'direct' model that reads depth / max_depth off the red channel, times ``gain``, with an optional tilt.

    ``pool`` shrinks the output (exercising the upsampling to ground truth); ``tilt`` multiplies the
    output by a left-to-right ramp 1 - tilt .. 1 + tilt, which flip averaging cancels exactly.
    """

    output_space = "direct"
    model_name = "red_channel"

    def __init__(self, gain: float = 1.0, pool: int = 1, tilt: float = 0.0) -> None:
        super().__init__()
        self.gain, self.pool, self.tilt = gain, pool, tilt
        self.anchor = nn.Parameter(torch.zeros(()))  # gives .to(device) something to move

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :1] * self.gain
        if self.tilt:
            ramp = torch.linspace(-1.0, 1.0, x.shape[-1], dtype=x.dtype)
            out = out * (1.0 + self.tilt * ramp)
        return F.avg_pool2d(out, self.pool) if self.pool > 1 else out


@pytest.mark.parametrize("pool", [1, 4])  # output 16x16 (resized down to 8x8) and 4x4 (up to 8x8)
def test_an_oracle_model_scores_zero_error_at_any_output_resolution(pool):
    result = evaluate(RedChannelDepth(pool=pool), UniformScenes(), batch_size=3)
    assert result.protocol == "none" and result.dataset == "uniform" and result.split == "test"
    assert result.n_images == 4 and result.n_pixels == 4 * 64 and result.n_images_without_pixels == 0
    assert result.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert result.metrics["delta1"] == 1.0
    assert [row["name"] for row in result.per_image] == ["scene0", "scene1", "scene2", "scene3"]


def test_a_model_twice_too_far_has_abs_rel_one_and_median_scaling_recovers_it():
    plain = evaluate(RedChannelDepth(gain=2.0), UniformScenes(), batch_size=4)
    assert plain.metrics["abs_rel"] == pytest.approx(1.0, rel=1e-6)
    assert plain.metrics["delta1"] == 0.0 and plain.median_ratio is None
    scaled = evaluate(RedChannelDepth(gain=2.0), UniformScenes(), batch_size=4, median_scaling=True)
    assert scaled.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert scaled.median_ratio["mean"] == pytest.approx(0.5) and scaled.median_ratio["std"] == pytest.approx(0.0)
    assert all(row["median_ratio"] == pytest.approx(0.5) for row in scaled.per_image)


def test_flip_tta_averages_the_mirrored_prediction_of_the_mirrored_image():
    tilted = RedChannelDepth(tilt=0.2)
    without = evaluate(tilted, UniformScenes(), batch_size=2)
    with_tta = evaluate(tilted, UniformScenes(), batch_size=2, flip_tta=True)
    assert without.metrics["abs_rel"] > 0.05
    assert with_tta.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert with_tta.options["flip_tta"] is True


def test_protocol_choice_sets_crop_and_clamping():
    nyu = evaluate(RedChannelDepth(gain=2.0), UniformScenes(), protocol="nyu", batch_size=4)
    assert nyu.protocol == "nyu_eigen" and nyu.n_pixels == 4 * 7 * 7  # Eigen crop of 8x8 keeps rows/cols 0..6
    # gain 2 predicts 12 m for the 6 m scene; NYU clamps to 10 m, so that image's abs_rel is 4/6 not 1
    assert nyu.per_image[3]["abs_rel"] == pytest.approx(4 / 6, rel=1e-6)
    unclamped = evaluate(RedChannelDepth(gain=2.0), UniformScenes(), protocol="nyu", batch_size=4, clamp=False)
    assert unclamped.per_image[3]["abs_rel"] == pytest.approx(1.0, rel=1e-6)


def test_pooled_and_image_mean_metrics_are_both_reported_and_differ_for_rmse():
    result = evaluate(RedChannelDepth(gain=2.0), UniformScenes(), batch_size=4)
    # per-image RMSE = depth_i (prediction 2 d_i): mean 3.25; pooled = sqrt(mean d_i^2)
    assert result.metrics_image_mean["rmse"] == pytest.approx(sum(SCENE_DEPTHS) / 4, rel=1e-6)
    assert result.metrics["rmse"] == pytest.approx(float(np.sqrt(np.mean(np.square(SCENE_DEPTHS)))), rel=1e-6)


def test_eval_json_holds_metrics_protocol_dataset_and_options(tmp_path):
    from probe.models import build_model

    dataset = get_dataset("synthetic", split="test", input_size=(48, 64), length=2)
    result = evaluate(build_model("densedepth", width=0.0625), dataset, batch_size=2, flip_tta=True)
    assert all(np.isfinite(v) for v in result.metrics.values())
    assert result.model == "densedepth" and result.output_space == "depthnorm"
    result.save(tmp_path)
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["analysis"] == "eval" and data["protocol"] == "nyu_eigen" and data["dataset"] == "synthetic"
    choices = data["protocol_choices"]
    assert choices["crop"]["pixels_exclusive_end"] == [2, 23, 2, 30]  # Eigen fractions of the 24x32 ground truth
    assert choices["gt_range_m"] == [1e-3, 10.0] and choices["clamp_m"] == [1e-3, 10.0]
    assert choices["flip_tta"] is True and choices["median_scaling"] is False
    assert choices["ground_truth_sizes"] == [[24, 32]]
    assert data["n_images"] == 2 and set(data["metrics"]) == {
        "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3"}
    assert data["options"]["flip_tta"] is True


def test_predict_depth_rejects_multi_channel_outputs_and_models_without_output_space():
    class TwoChannels(nn.Module):
        output_space = "inverse"

        def forward(self, x):
            return x[:, :2]

    with pytest.raises(ShapeError, match=r"\[B,1,h,w\]"):
        predict_depth(TwoChannels(), torch.rand(1, 3, 8, 8), max_depth=10.0)
    with pytest.raises(ProbeError, match="output_space"):
        predict_depth(nn.Identity(), torch.rand(1, 3, 8, 8), max_depth=10.0)


def _write_uniform_png(path, red: float, size=(20, 30)):
    rgb = np.zeros((*size, 3), dtype=np.uint8)
    rgb[..., 0] = int(round(red * 255))
    Image.fromarray(rgb).save(path)


def test_predict_images_writes_metres_npy_and_colour_mapped_png_at_the_image_resolution(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "b").mkdir()
    _write_uniform_png(src / "room.png", red=0.6)  # red 153/255 -> 0.6 * 8 m = 4.8 m
    _write_uniform_png(src / "b" / "room.png", red=0.2)
    records = predict_images(RedChannelDepth(), [src / "room.png", src / "b" / "room.png"], tmp_path / "out",
                             max_depth=MAX_DEPTH, input_size=(16, 16), depth_range=(0.0, 8.0))
    assert [r.npy for r in records] == [str(tmp_path / "out" / "room_depth.npy"), str(tmp_path / "out" / "room_2_depth.npy")]
    metres = np.load(records[0].npy)
    assert metres.shape == (20, 30) and metres.dtype == np.float32
    np.testing.assert_allclose(metres, 153 / 255 * MAX_DEPTH, rtol=1e-6)
    png = np.asarray(Image.open(records[0].png))
    assert png.shape == (20, 30, 3)
    np.testing.assert_array_equal(png[0, 0], depth_to_rgb(np.array([[153 / 255 * MAX_DEPTH]]), (0.0, 8.0))[0, 0])
    assert records[0].median_depth == pytest.approx(4.8, rel=1e-6)
    assert not np.array_equal(np.asarray(Image.open(records[1].png))[0, 0], png[0, 0])


def test_output_stems_are_distinct_per_image_and_skip_names_another_input_owns(tmp_path):
    from probe.evaluate import output_stems

    paths = [tmp_path / "a.png", tmp_path / "x" / "a.png", tmp_path / "a_2.png", tmp_path / "y" / "a.jpg"]
    assert output_stems(paths) == ["a", "a_3", "a_2", "a_4"]
    assert output_stems([tmp_path / "room.jpg", tmp_path / "hall.jpg"]) == ["room", "hall"]
    with pytest.raises(ProbeError, match="a.png: given twice"):
        output_stems([tmp_path / "a.png", tmp_path / "." / "a.png"])


def test_predict_never_overwrites_a_file_it_did_not_write_unless_forced(tmp_path):
    _write_uniform_png(tmp_path / "room.png", red=0.6)
    _write_uniform_png(tmp_path / "hall.png", red=0.2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "hall_depth.npy").write_bytes(b"someone else's file")
    with pytest.raises(ProbeError, match=r"hall_depth.npy: already exists; .*--force"):
        predict_images(RedChannelDepth(), [tmp_path / "room.png", tmp_path / "hall.png"], out, max_depth=MAX_DEPTH,
                       input_size=(16, 16))
    assert sorted(p.name for p in out.iterdir()) == ["hall_depth.npy"], "refused before writing anything"
    records = predict_images(RedChannelDepth(), [tmp_path / "room.png", tmp_path / "hall.png"], out,
                             max_depth=MAX_DEPTH, input_size=(16, 16), force=True)
    np.testing.assert_allclose(np.load(records[1].npy), 51 / 255 * MAX_DEPTH, rtol=1e-6)


def test_depth_to_rgb_saturates_outside_the_range_and_rejects_bad_settings():
    rgb = depth_to_rgb(np.array([[-1.0, 0.0, 10.0, 99.0]]), (0.0, 10.0), "viridis")
    assert (rgb[0, 0] == rgb[0, 1]).all() and (rgb[0, 2] == rgb[0, 3]).all() and not (rgb[0, 0] == rgb[0, 2]).all()
    with pytest.raises(ProbeError, match="--range"):
        depth_to_rgb(np.zeros((1, 1)), (5.0, 5.0))
    with pytest.raises(ProbeError, match="--colormap"):
        depth_to_rgb(np.zeros((1, 1)), (0.0, 5.0), "no_such_map")


def test_predict_images_names_the_missing_or_corrupt_file(tmp_path):
    with pytest.raises(ProbeError, match="nowhere.png: image file not found"):
        predict_images(RedChannelDepth(), [tmp_path / "nowhere.png"], tmp_path / "out", max_depth=8.0,
                       input_size=(16, 16))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="broken.png"):
        predict_images(RedChannelDepth(), [bad], tmp_path / "out", max_depth=8.0, input_size=(16, 16))


# ---------------------------------------------------------------------------------------------------------
# CLI, end to end on a checkpoint written by `probe train`


# (the `trained_run` fixture lives in tests/conftest.py)


def test_cli_eval_writes_eval_json_and_prints_a_table(run_cli, trained_run, tmp_path):
    res = run_cli("eval", "--checkpoint", trained_run, "--dataset-length", "3", "--batch-size", "2",
                  "--median-scaling", "--device", "cpu", "--out", tmp_path)
    assert res.code == 0, res
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["dataset"] == "synthetic" and data["protocol"] == "nyu_eigen" and data["n_images"] == 3
    assert data["checkpoint"] == str(trained_run) and data["options"]["median_scaling"] is True
    assert data["median_ratio"] is not None
    assert "abs_rel" in res.out and "delta1" in res.out
    assert "eval" in json.loads((tmp_path / "config.json").read_text())


def test_cli_predict_writes_png_and_npy_per_image(run_cli, trained_run, tmp_path):
    _write_uniform_png(tmp_path / "a.png", red=0.5)
    _write_uniform_png(tmp_path / "b.png", red=0.1)
    res = run_cli("predict", "--checkpoint", trained_run, tmp_path / "a.png", tmp_path / "b.png",
                  "--device", "cpu", "--out", tmp_path / "pred")
    assert res.code == 0, res
    for stem in ("a", "b"):
        assert np.load(tmp_path / "pred" / f"{stem}_depth.npy").shape == (20, 30)
        assert Image.open(tmp_path / "pred" / f"{stem}_depth.png").size == (30, 20)


def test_cli_bad_checkpoint_or_image_is_a_one_line_error(run_cli, trained_run, tmp_path):
    res = run_cli("eval", "--checkpoint", tmp_path / "missing_run", "--out", tmp_path / "e")
    assert res.code == 2 and res.err.count("\n") == 1 and "--checkpoint" in res.err
    res = run_cli("predict", "--checkpoint", tmp_path / "missing_run", tmp_path / "x.png", "--out", tmp_path / "p")
    assert res.code == 2 and "--checkpoint" in res.err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    res = run_cli("predict", "--checkpoint", trained_run, bad, "--device", "cpu", "--out", tmp_path / "p")
    assert res.code == 2 and res.err.count("\n") == 1 and "bad.jpg" in res.err


# ---------------------------------------------------------------------------------------------------------
# full-resolution scoring and the published protocols


FINE_INFO = DatasetInfo(name="fine", description="ground truth finer than the training target",
                        min_depth=0.1, max_depth=MAX_DEPTH, input_size=(16, 16), depth_scale=0.25,
                        eval_protocol="none", source="tests", needs_root=False)


class FineGroundTruth(DepthDataset):
    """A 16x16 checkerboard of 1 m and 4 m; the training target would be a 4x4 nearest resize of it."""

    def __init__(self, sizes=((16, 16),)) -> None:
        super().__init__(FINE_INFO, split="test")
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def load_raw(self, index: int) -> RawSample:
        h, w = self.sizes[index]
        board = np.where((np.add.outer(np.arange(h), np.arange(w)) % 2) == 0, 1.0, 4.0).astype(np.float32)
        # the image shares its ground truth's aspect ratio, as every reader's pairs must (check_raw_sample)
        return RawSample(image=np.zeros((h, w, 3), np.float32), depth=board, name=f"board{index}")


class Constant(nn.Module):
    output_space = "direct"
    model_name = "constant"

    def __init__(self, metres: float) -> None:
        super().__init__()
        self.value = metres / MAX_DEPTH
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1, 4, 4), self.value)


def test_scoring_happens_at_the_ground_truths_own_resolution_never_a_resized_one():
    ds = FineGroundTruth()
    assert ds[0]["depth"].shape == (1, 4, 4)          # what training sees
    result = evaluate(Constant(2.0), ds, batch_size=1)
    assert result.n_pixels == 256                      # the 16x16 ground truth
    # half the pixels are 1 m (error 1), half 4 m (error 0.5): abs_rel 0.75 on the checkerboard, whereas the
    # nearest 4x4 resize keeps only the 1 m squares (abs_rel 1.0)
    assert result.metrics["abs_rel"] == pytest.approx(0.75)
    assert result.protocol_choices["ground_truth_sizes"] == [[16, 16]]
    assert ds.depth_resolution == "target"             # the caller's dataset is left as it was


def test_images_with_different_ground_truth_sizes_are_each_scored_at_their_own():
    result = evaluate(Constant(2.0), FineGroundTruth(sizes=((16, 16), (10, 12), (16, 16))), batch_size=3)
    assert result.n_pixels == 256 + 120 + 256
    assert [row["n_pixels"] for row in result.per_image] == [256, 120, 256]
    assert sorted(result.protocol_choices["ground_truth_sizes"]) == [[10, 12], [16, 16]]


class Ramp(nn.Module):
    """Predicts, in every row, the same left-to-right ramp of metres whatever the image (a 'direct' head)."""

    output_space = "direct"
    model_name = "ramp"

    def __init__(self, metres: list[float]) -> None:
        super().__init__()
        self.register_buffer("ramp", torch.tensor(metres) / 10.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ramp.view(1, 1, 1, -1).expand(x.shape[0], 1, x.shape[2], -1).clone()


def test_nyu_densedepth_recipe_on_a_hand_computed_example(tmp_path):
    from tests.data.nyu_test_fixture import make_nyu_test_zip

    # One 2x4 image.  The model says [2, 6, 10, 14] m on every row; the mirrored pass, mirrored back, says
    # [14, 10, 6, 2].  Each pass is clipped to [0.1, 10] first: [2, 6, 10, 10] and [10, 10, 6, 2] -> mean
    # [6, 8, 8, 6].  (Averaging first and clipping after would give 8 everywhere.)
    gt = np.array([[[3.0, 8.0, 5.0, 4.0], [6.0, 4.0, 10.0, 3.0]]], dtype=np.float32)
    path = make_nyu_test_zip(tmp_path / "nyu_test.zip", np.zeros((1, 2, 4, 3), np.uint8), gt,
                             crop=np.array([0, 1, 1, 3]))  # inclusive: both rows, columns 1..3
    ds = get_dataset("nyu_test", path, split="test", input_size=(2, 4))
    result = evaluate(Ramp([2.0, 6.0, 10.0, 14.0]), ds, protocol="nyu_densedepth", batch_size=1)
    # evaluated: p = [8, 8, 6, 8, 8, 6] against g = [8, 5, 4, 4, 10, 3]
    assert result.n_pixels == 6 and result.options["flip_tta"] is True
    m = result.metrics
    assert m["abs_rel"] == pytest.approx((0 + 3 / 5 + 2 / 4 + 4 / 4 + 2 / 10 + 3 / 3) / 6)          # 0.55
    assert m["abs_rel_as_published"] == pytest.approx((0 + 3 / 8 + 2 / 6 + 4 / 8 + 2 / 8 + 3 / 6) / 6)  # 0.326
    assert m["rmse"] == pytest.approx(np.sqrt((0 + 9 + 4 + 16 + 4 + 9) / 6))
    assert m["delta1"] == pytest.approx(1 / 6)   # only the exact pixel; 10/8 = 1.25 is not < 1.25
    choices = result.protocol_choices
    assert choices["crop"]["pixels_exclusive_end"] == [0, 2, 1, 4] and "eigen_test_crop.npy" in choices["crop"]["from"]
    assert choices["clip_each_pass_m"] == [0.1, 10.0] and choices["gt_range_m"] is None


@pytest.mark.parametrize("protocol, fixture", [
    ("nyu_densedepth", "nyu_test"), ("nyu_eigen", "nyu"), ("kitti_eigen", "kitti"),
    ("kitti_eigen_median", "kitti"), ("make3d_c1", "make3d"),
])
def test_cli_eval_runs_every_protocol_on_its_format_fixture(run_cli, trained_run, tmp_path, protocol, fixture):
    from tests.data import fixtures
    from tests.data.nyu_test_fixture import random_nyu_test

    roots = {
        "nyu_test": lambda: random_nyu_test(tmp_path / "nyu_test.zip", n=2, size=(24, 32))[0],
        "nyu": lambda: fixtures.make_nyu_zip(tmp_path, n_test=2).root,
        "kitti": lambda: fixtures.make_kitti(tmp_path, size=(20, 64), test_frames=2).root,
        "make3d": lambda: fixtures.make_make3d(tmp_path).root,
    }
    res = run_cli("eval", "--checkpoint", trained_run, "--dataset", fixture, "--data-root", roots[fixture](),
                  "--protocol", protocol, "--input-size", "32x48", "--device", "cpu", "--out", tmp_path / "e")
    assert res.code == 0, res
    data = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert data["protocol"] == protocol and data["protocol_choices"]["name"] == protocol
    assert data["n_pixels"] > 0 and all(np.isfinite(v) for v in data["metrics"].values())
    assert data["protocol_choices"]["median_scaling"] is (protocol == "kitti_eigen_median")


def test_cli_a_protocol_that_does_not_fit_the_data_fails_before_writing(run_cli, trained_run, tmp_path):
    res = run_cli("eval", "--checkpoint", trained_run, "--protocol", "nyu_densedepth", "--dataset-length", "2",
                  "--device", "cpu", "--out", tmp_path / "e")
    assert res.code == 2 and res.err.count("\n") == 1 and "480x640" in res.err and "nyu_densedepth" in res.err, res
    assert not (tmp_path / "e").exists()
