"""The autoencoder study: shapes, matched budgets, identity capacity, CLI on synthetic and Make3D data."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from analyses import autoencoder as ae
from probe.errors import ProbeError
from probe.report.document import md_text

GENERIC = ["pack3d", "pack2d", "maxpool", "strided"]



def _smooth_images(n: int, seed: int, size: int = 16) -> torch.Tensor:
    """Random 8x8 colour fields upsampled to ``size``: natural-image-like smoothness, known content."""
    coarse = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("arch", GENERIC)
def test_every_generic_architecture_reconstructs_at_input_resolution_for_any_size(arch):
    for levels in (1, 3, 5):
        model = ae.build_autoencoder(arch, levels, 0.0625).eval()
        x = torch.rand(2, 3, 20, 27)
        with torch.no_grad():
            assert model(x).shape == x.shape
        assert model.bottleneck_shape((20, 27)) == (ae.level_channels(levels, 0.0625)[-1],
                                                    -(-20 // 2**levels), -(-27 // 2**levels))


def test_generic_architectures_share_channels_and_bottleneck_at_each_level():
    for levels in (1, 2, 4):
        codes = set()
        for arch in GENERIC:
            model = ae.build_autoencoder(arch, levels, 0.125)
            with torch.no_grad():
                codes.add(tuple(model.encode(torch.rand(1, 3, 32, 32)).shape))
        assert codes == {(1, ae.level_channels(levels, 0.125)[-1], 32 // 2**levels, 32 // 2**levels)}


def test_level_channels_double_per_level_and_cap_at_sixteen_times_the_stem():
    assert ae.level_channels(5, 1.0) == [32, 64, 128, 256, 512, 512]
    assert ae.level_channels(2, 0.0625) == [4, 8, 16]


def test_norm_none_removes_groupnorm_and_group_restores_packnets_layers():
    plain = ae.build_autoencoder("pack3d", 2, 0.25, norm="none")
    grouped = ae.build_autoencoder("pack3d", 2, 0.25, norm="group")
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in plain.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in grouped.modules())
    with pytest.raises(ProbeError, match="normalisation"):
        ae.build_autoencoder("pack3d", 2, 0.25, norm="batch")


def test_batch_schedule_is_identical_for_identical_seeds_and_visits_every_image_each_epoch():
    first = [b.tolist() for b in ae.batch_schedule(10, 5, 4, seed=3)]
    again = [b.tolist() for b in ae.batch_schedule(10, 5, 4, seed=3)]
    other = [b.tolist() for b in ae.batch_schedule(10, 5, 4, seed=4)]
    assert first == again and first != other
    flat = [i for b in first for i in b]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))


def test_parse_levels_accepts_ranges_and_lists_and_rejects_the_rest():
    assert ae.parse_levels("1..5") == [1, 2, 3, 4, 5]
    assert ae.parse_levels("3,1") == [1, 3]
    for bad in ("0..2", "1..6", "a", "", "1;2"):
        with pytest.raises(ProbeError, match="--levels"):
            ae.parse_levels(bad)


def test_pack2d_one_level_learns_near_identity_while_maxpool_three_levels_cannot():
    """Same images, same 900 Adam steps: a lossless resampler with a wide code reaches > 35 dB."""
    train, test = _smooth_images(64, 0), _smooth_images(8, 1)
    config = ae.AutoencoderConfig(steps=900, batch_size=8, lr=3e-3, width=0.5, seed=0)
    cpu = torch.device("cpu")
    packed, recon = ae.fit_autoencoder("pack2d", 1, train, test, config, cpu)
    pooled, _ = ae.fit_autoencoder("maxpool", 3, train, test, config, cpu)
    assert packed.bottleneck_ratio > 1.0
    assert packed.quality.psnr > 35.0 and packed.quality.ssim > 0.98
    assert pooled.quality.psnr < 20.0
    assert recon.shape == test.shape and recon.min() >= 0 and recon.max() <= 1
    assert packed.steps == pooled.steps == 900


def test_zoo_architectures_are_rgb_autoencoders_without_skips():
    for arch in ("zoo_packnet", "zoo_densedepth"):
        model = ae.build_autoencoder(arch, ae.levels_for(arch, [1, 2])[0], 0.0625)
        x = torch.rand(2, 3, 32, 32)
        model.train()
        assert model(x).shape == x.shape
        model.eval()
        with torch.no_grad():
            assert model(x).shape == x.shape
        cost = ae.model_cost(model, (32, 32), torch.device("cpu"))
        assert cost.macs > 0 and cost.params == sum(p.numel() for p in model.parameters())
    assert ae.levels_for("zoo_packnet", [1, 2]) == [5]


def test_cli_writes_json_and_figures_on_synthetic_data(run_cli, tmp_path):
    out = tmp_path / "run"
    res = run_cli("autoencoder", "--arch", "pack2d", "--arch", "maxpool", "--levels", "1,2", "--steps", "2",
                  "--batch-size", "2", "--input-size", "32x32", "--width", "0.0625", "--train-images", "4",
                  "--eval-images", "2", "--device", "cpu", "--out", out)
    assert res.code == 0, res
    doc = json.loads((out / "autoencoder.json").read_text())
    assert [(r["arch"], r["levels"]) for r in doc["runs"]] == [("pack2d", 1), ("pack2d", 2), ("maxpool", 1), ("maxpool", 2)]
    for r in doc["runs"]:
        assert r["params"] > 0 and r["macs"] > 0 and r["steps"] == 2 and r["psnr_infinite"] is False
        assert 0 < r["psnr"] < 100 and -1 <= r["ssim"] <= 1 and r["mse"] > 0
    assert (out / "autoencoder_psnr.png").stat().st_size > 0
    assert (out / "autoencoder_reconstructions.png").stat().st_size > 0
    assert "autoencoder" in json.loads((out / "config.json").read_text())


def test_runs_side_by_side_give_the_sequential_runs_numbers_and_reconstructions(tmp_path):
    """--parallel 2 with one thread per run: every run's scores, losses and reconstructions equal the sequential
    one-thread runs', in the same order, and each side-by-side run has its own folder with job.json."""
    from probe.jobs import Launch

    config = ae.AutoencoderConfig(archs=["pack2d", "maxpool"], levels=[1, 2], steps=3, batch_size=2,
                                  input_size=(32, 32), width=0.0625, train_images=4, eval_images=2, seeds=[0, 1],
                                  device="cpu")
    seq = ae.run(config, out=tmp_path / "seq", launch=Launch(threads=1))
    par = ae.run(config, out=tmp_path / "par", launch=Launch(parallel=2, threads=1))
    key = [(r.arch, r.levels, r.seed) for r in seq.runs]
    assert key == [(a, lv, s) for s in (0, 1) for a in ("pack2d", "maxpool") for lv in (1, 2)]
    assert [(r.arch, r.levels, r.seed) for r in par.runs] == key
    assert [(r.mse, r.psnr, r.ssim, r.final_train_loss, r.loss_curve) for r in par.runs] == [(r.mse, r.psnr, r.ssim, r.final_train_loss, r.loss_curve) for r in seq.runs]
    assert len({r.mse for r in seq.runs}) == len(key)  # eight different runs, not one result repeated
    assert seq.reconstructions is not None and par.reconstructions is not None
    assert par.reconstructions.keys() == seq.reconstructions.keys() == {"pack2d@1", "pack2d@2", "maxpool@1", "maxpool@2"}
    assert all((par.reconstructions[k] == seq.reconstructions[k]).all() for k in seq.reconstructions)
    assert all((tmp_path / "par" / "runs" / f"{a}@{lv}_w0.0625" / f"seed_{s}" / "job.json").is_file() for a, lv, s in key)
    assert not (tmp_path / "seq" / "runs").exists()


def test_cli_runs_side_by_side_each_run_in_its_own_folder(run_cli, tmp_path):
    out = tmp_path / "run"
    res = run_cli("autoencoder", "--arch", "maxpool", "--levels", "1,2", "--steps", "2", "--batch-size", "2",
                  "--input-size", "32x32", "--width", "0.0625", "--train-images", "4", "--eval-images", "2",
                  "--device", "cpu", "--parallel", "2", "--threads-per-run", "1", "--out", out)
    assert res.code == 0, res
    assert [(r["arch"], r["levels"]) for r in json.loads((out / "autoencoder.json").read_text())["runs"]] == [
        ("maxpool", 1), ("maxpool", 2)]
    assert all((out / "runs" / f"maxpool@{lv}_w0.0625" / "seed_0" / "job.json").is_file() for lv in (1, 2))
    assert (out / "autoencoder_reconstructions.png").stat().st_size > 0


def test_side_by_side_runs_need_an_output_folder():
    from probe.jobs import Launch

    config = ae.AutoencoderConfig(archs=["maxpool"], levels=[1], steps=1, input_size=(32, 32), device="cpu")
    with pytest.raises(ProbeError, match="side by side .* need an output folder"):
        ae.run(config, launch=Launch(parallel=2))


def test_cli_missing_make3d_files_exit_2_with_one_line_naming_the_expected_files(run_cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_cli("autoencoder", "--dataset", "make3d", "--data-root", empty, "--arch", "maxpool",
                  "--levels", "1", "--steps", "1", "--device", "cpu", "--out", tmp_path / "run")
    assert res.code == 2, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "Train400Img" in lines[0] and str(empty) in lines[0]
    assert not (tmp_path / "run" / "autoencoder.json").exists()


def test_cli_runs_on_a_make3d_format_fixture(run_cli, tmp_path):
    from tests.data.fixtures import make_make3d

    root = make_make3d(tmp_path / "make3d").root
    out = tmp_path / "run"
    res = run_cli("autoencoder", "--dataset", "make3d", "--data-root", root, "--arch", "pack3d", "--levels", "2",
                  "--steps", "2", "--batch-size", "2", "--input-size", "32x64", "--width", "0.0625",
                  "--device", "cpu", "--out", out)
    assert res.code == 0, res
    doc = json.loads((out / "autoencoder.json").read_text())
    assert doc["config"]["dataset"] == "make3d" and doc["input_size"] == [32, 64]
    assert doc["runs"][0]["arch"] == "pack3d" and doc["runs"][0]["ssim"] is not None


def test_bad_flags_are_one_line_errors(run_cli, tmp_path):
    res = run_cli("autoencoder", "--arch", "nope", "--out", tmp_path / "r")
    assert res.code == 2 and "autoencoder architecture 'nope'" in res.err
    res = run_cli("autoencoder", "--levels", "0..9", "--out", tmp_path / "r")
    assert res.code == 2 and "--levels" in res.err
    res = run_cli("autoencoder", "--steps", "0", "--out", tmp_path / "r")
    assert res.code == 2 and "--steps" in res.err


# -- a model's own encoder -----------------------------------------------------------------------------

UNET = "examples/unet.py:build"


def test_deepest_feature_is_the_one_with_fewest_pixels_last_on_ties():
    a, b, c = torch.zeros(1, 4, 8, 8), torch.zeros(1, 8, 2, 2), torch.zeros(1, 16, 2, 2)
    assert ae.deepest_feature([a, b, c]) is c and ae.deepest_feature({"x": b, "y": a}) is b
    assert ae.deepest_feature(a) is a
    with pytest.raises(ProbeError, match=r"expected the encoder to return \[B,C,h,w\] features, got str"):
        ae.deepest_feature(["no"])


def test_a_models_encoder_becomes_an_autoencoder_at_its_own_stride(monkeypatch):
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    config = ae.AutoencoderConfig(models=[UNET], encoder_module="encoder", width=0.0625)
    model = ae.encoder_autoencoder(UNET, config)
    assert model.levels == 5 and model.input_multiple == 32 and model.code == (32, 2, 2)
    x = torch.rand(2, 3, 40, 52)  # not a multiple of the stride: padded, then cropped back
    assert model(x).shape == x.shape and model.bottleneck_shape((40, 52)) == (32, 2, 2)
    assert model.decoder[0][1][0].in_channels == 32  # the decoder takes the whole code


def test_cli_trains_the_encoder_and_compares_it_with_max_pool_at_its_depth(run_cli, tmp_path, monkeypatch):
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    res = run_cli("autoencoder", "--model", UNET, "--encoder-module", "encoder", "--arch", "maxpool", "--levels", "1",
                  "--steps", "2", "--batch-size", "2", "--input-size", "32x32", "--width", "0.0625",
                  "--train-images", "4", "--eval-images", "2", "--device", "cpu", "--out", out)
    assert res.code == 0, res
    assert "also training the architectures at 5 level(s)" in res.err
    doc = json.loads((out / "autoencoder.json").read_text())
    assert [(r["arch"], r["levels"]) for r in doc["runs"]] == [("maxpool", 1), ("maxpool", 5), (UNET, 5)]
    assert doc["runs"][-1]["bottleneck"] == [32, 1, 1] and doc["roles"]["models"][0]["role"] == "under study"
    res = run_cli("report", out, "-o", tmp_path / "r.md", "--format", "md")
    assert res.code == 0, res
    report = (tmp_path / "r.md").read_text()
    assert "| Does unet's encoder preserve information? |" in report
    assert "| 5 | unet |" in report  # the encoder row of the evidence: levels, then the model


@pytest.mark.parametrize("args, message", [
    (("--model", UNET), "name it with --encoder-module PATH"),
    (("--encoder-module", "encoder"), "give the model it belongs to with --model SPEC"),
    (("--model", UNET, "--encoder-module", "nope"), "has no submodule 'nope'; its top-level modules: encoder, decoder"),
    (("--model", UNET, "--encoder-module", "decoder"), "encoder failed on a [1, 3, 64, 64] image"),
])
def test_bad_encoder_flags_are_one_line_and_write_nothing(run_cli, tmp_path, monkeypatch, args, message):
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    res = run_cli("autoencoder", *args, "--arch", "maxpool", "--levels", "1", "--steps", "1", "--width", "0.0625",
                  "--device", "cpu", "--out", tmp_path / "r")
    assert res.code == 2 and res.err.count("\n") == 1 and message in res.err, res
    assert not (tmp_path / "r").exists()
