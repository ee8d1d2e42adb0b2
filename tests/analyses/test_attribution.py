"""Attribution and effective receptive fields: analytic extents, single-pixel models, CLI contracts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from analyses import attribution as at
from probe.errors import ProbeError



def _images(n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


class OnePixel(nn.Module):
    """Every output pixel is a nonlinear function of input pixel (5, 7) alone: ``[B,3,H,W] -> [B,1,H,W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, :, 5, 7]
        value = 2.0 * p[:, 0] + p[:, 1] ** 2 + torch.sin(p[:, 2]) + 0.5
        return value[:, None, None, None].expand(-1, 1, *x.shape[-2:])


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_single_kxk_conv_of_ones_has_erf_radius_equal_to_its_analytic_extent(k):
    conv = nn.Conv2d(3, 1, k, padding=k // 2, bias=False)
    nn.init.ones_(conv.weight)
    grad_map, radii = at.effective_receptive_field(conv, _images())
    assert radii.centre_yx == (16.0, 16.0)
    assert radii.radius_95 == radii.support == (k - 1) / 2
    # uniform mass: the square of radius r holds (2r+1)^2 / k^2 of it
    assert radii.radius_50 == min(r for r in range(k) if (2 * r + 1) ** 2 >= 0.5 * k * k)
    assert int((grad_map > 0).sum()) == k * k


def test_random_kxk_conv_support_is_exactly_the_kernel_extent():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 1, 5, padding=2)
    _, radii = at.effective_receptive_field(conv, _images())
    assert radii.support == 2.0 and radii.radius_50 <= radii.radius_95 <= 2.0


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_stack_of_n_3x3_convs_has_erf_radius_at_most_n(n):
    torch.manual_seed(n)
    layers: list[nn.Module] = [nn.Conv2d(3, 4, 3, padding=1)]
    for _ in range(n - 1):
        layers += [nn.ELU(), nn.Conv2d(4, 4, 3, padding=1)]
    _, radii = at.effective_receptive_field(nn.Sequential(*layers), _images())
    assert radii.radius_50 <= radii.radius_95 <= n
    assert radii.support == n


def test_half_resolution_output_maps_its_centre_between_input_pixels():
    model = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1), nn.AvgPool2d(2))
    _, radii = at.effective_receptive_field(model, _images())
    assert radii.centre_yx == (16.5, 16.5)  # output pixel (8, 8) covers input rows/cols 16..17
    assert radii.support == 1.5  # the 3x3 conv widens rows 16..17 to 15..18


@pytest.mark.parametrize("method", at.METHODS.names())
def test_attribution_of_a_single_pixel_model_concentrates_on_that_pixel(method):
    images = _images()
    attr = at.attribute(OnePixel(), images, at.Target(3, 3, 9, 12), method, steps=16)
    assert attr.shape == images.shape
    mass = attr.abs().sum(dim=1)
    share = mass[:, 5, 7] / mass.sum(dim=(1, 2))
    assert (share > 0.999).all(), share


def test_integrated_gradients_is_complete_on_a_single_pixel_model():
    images = _images()
    target = at.Target.pixel(0, 0)
    attr = at.attribute(OnePixel(), images, target, "integrated_gradients", steps=64)
    module = at.TargetOutput(OnePixel(), target)
    gap = module(images) - module(torch.zeros_like(images))
    assert torch.allclose(attr.sum(dim=(1, 2, 3)), gap, atol=1e-3)


def test_mass_radii_of_a_point_mass_is_zero_and_of_no_mass_is_an_error():
    mass = torch.zeros(9, 9)
    mass[4, 4] = 1.0
    radii = at.mass_radii(mass, (4.0, 4.0))
    assert (radii.radius_50, radii.radius_95, radii.support) == (0.0, 0.0, 0.0)
    assert radii.curve[0] == (0.0, 1.0)
    with pytest.raises(ProbeError, match="does not depend on the input"):
        at.mass_radii(torch.zeros(4, 4), (2.0, 2.0))


def test_targets_parse_and_are_checked_against_the_output_grid():
    assert at.parse_pixel("3,4") == at.Target.pixel(3, 4)
    assert at.parse_region("1,2,5,9") == at.Target(1, 2, 5, 9, "region")
    for text in ("3", "a,b", "-1,2", "1,2,3"):
        with pytest.raises(ProbeError, match="--pixel"):
            at.parse_pixel(text)
    with pytest.raises(ProbeError, match="--region"):
        at.parse_region("5,5,5,9")
    with pytest.raises(ProbeError, match="outside the 8x8 output"):
        at.Target.pixel(8, 0).check((8, 8), "--pixel")
    assert at.Target(0, 0, 8, 8).check((8, 8), "--region").centre() == (3.5, 3.5)


def test_cli_compares_zoo_models_and_writes_json_and_figures(run_cli, tmp_path):
    out = tmp_path / "attr"
    res = run_cli("attribution", "--model", "packnet_slim_b", "--model", "densedepth", "--width", "0.0625",
                  "--input-size", "32x32", "--images", "2", "--method", "saliency", "--region", "4,4,8,10",
                  "--device", "cpu", "--out", out)
    assert res.code == 0, res
    doc = json.loads((out / "attribution.json").read_text())
    assert doc["method"] == "saliency" and doc["target"] == "--region 4,4,8,10"
    assert [m["name"] for m in doc["models"]] == ["packnet_slim_b", "densedepth"]
    for m in doc["models"]:
        assert 0 <= m["erf"]["radius_50"] <= m["erf"]["radius_95"] <= m["erf"]["support"]
        assert m["attribution"]["abs_sum"] > 0
    assert doc["models"][1]["output_scale"] == [0.5, 0.5]
    assert (out / "attribution_overlay.png").stat().st_size > 0 and (out / "attribution_erf.png").stat().st_size > 0


def test_cli_reads_one_image_file(run_cli, tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)).save(path)
    res = run_cli("attribution", "--model", "packnet_slim_b", "--width", "0.0625", "--image", path,
                  "--input-size", "32x32", "--pixel", "3,30", "--method", "integrated_gradients", "--steps", "4",
                  "--device", "cpu", "--out", tmp_path / "a")
    assert res.code == 0, res
    doc = json.loads((tmp_path / "a" / "attribution.json").read_text())
    assert doc["images"] == ["photo.png"] and doc["input_size"] == [32, 32]
    assert "completeness_error" in doc["models"][0]["attribution"]


def test_cli_runs_on_a_make3d_format_fixture(run_cli, tmp_path):
    from tests.data.fixtures import make_make3d

    root = make_make3d(tmp_path / "make3d").root
    res = run_cli("attribution", "--model", "packnet_slim_b", "--width", "0.0625", "--dataset", "make3d",
                  "--data-root", root, "--input-size", "32x64", "--method", "saliency", "--device", "cpu",
                  "--out", tmp_path / "a")
    assert res.code == 0, res
    assert json.loads((tmp_path / "a" / "attribution.json").read_text())["input_size"] == [32, 64]


@pytest.mark.parametrize("flag, value, needle", [
    ("--pixel", "40,2", "--pixel: pixel (40,2) lies outside the 32x32 output"),
    ("--pixel", "4;2", "--pixel: expected 2 comma-separated"),
    ("--region", "0,0,33,5", "--region: region"),
    ("--region", "1,2,3", "--region: expected 4 comma-separated"),
    ("--method", "occlusion", "unknown attribution method 'occlusion'"),
])
def test_cli_bad_target_or_method_is_a_one_line_error(run_cli, tmp_path, flag, value, needle):
    res = run_cli("attribution", "--model", "packnet_slim_b", "--width", "0.0625", "--input-size", "32x32",
                  "--images", "1", flag, value, "--device", "cpu", "--out", tmp_path / "a")
    assert res.code == 2, res
    assert len(res.err.strip().splitlines()) == 1 and needle in res.err
    assert not (tmp_path / "a" / "attribution.json").exists()


def test_cli_needs_a_model(run_cli, tmp_path):
    res = run_cli("attribution", "--out", tmp_path / "a", "--device", "cpu")
    assert res.code == 2 and "--model or --checkpoint" in res.err


def test_cli_reads_a_trained_checkpoint_and_its_input_size(run_cli, tmp_path):
    from probe.training import TrainConfig, train

    run_dir = tmp_path / "tiny"
    train(TrainConfig(model="packnet_slim_b", width=0.0625, dataset="synthetic", input_size=(32, 48),
                      dataset_length=4, batch_size=2, max_steps=1, device="cpu", workers=0, out=run_dir))
    res = run_cli("attribution", "--checkpoint", run_dir, "--method", "saliency", "--images", "1",
                  "--device", "cpu", "--out", tmp_path / "a")
    assert res.code == 0, res
    doc = json.loads((tmp_path / "a" / "attribution.json").read_text())
    assert doc["models"][0]["name"] == "packnet_slim_b (tiny)" and doc["input_size"] == [32, 48]
    assert doc["models"][0]["source"].startswith("checkpoint")
