"""--seeds on every analysis that trains: one ordinary run folder per seed, and one result over the seeds whose
statistics name their method; every trained model is scored on held-out images (did it learn?)."""

from __future__ import annotations

import json

import pytest

from probe.errors import ProbeError
from probe.options import parse_seeds
from probe.seeding import seed_folder, seed_list

TINY = ["--width", "0.0625", "--input-size", "32x64", "--device", "cpu", "--eval-images", "2"]


def _seed_folders(out, seeds, name):
    for seed in seeds:
        folder = out / f"seed_{seed}"
        doc = json.loads((folder / f"{name}.json").read_text())
        assert {m["seed"] for m in doc["models"]} == {seed}
        assert name in json.loads((folder / "config.json").read_text())  # an ordinary run folder
    return json.loads((out / f"{name}.json").read_text())


def test_gradients_over_two_seeds(run_cli, tmp_path):
    res = run_cli("gradients", "--model", "packnet_slim_c", "--steps", "2", "--seeds", "2", *TINY, "--out", tmp_path)
    assert res.code == 0, res
    doc = _seed_folders(tmp_path, (0, 1), "gradients")
    assert [(m["name"], m["seed"]) for m in doc["models"]] == [("packnet_slim_c", 0), ("packnet_slim_c", 1)]
    (summary,) = doc["summaries"]
    assert summary["seeds"] == [0, 1] and summary["margin"]["method"] == "student_t_95 over 2 seeds"
    assert summary["learned"]["ratio"]["n"] == 2 and all(m["held_out"]["n_images"] == 2 for m in doc["models"])
    assert "2 seed(s)" in res.out


def test_noise_over_a_list_of_seeds(run_cli, tmp_path):
    res = run_cli("noise", "--model", "densedepth", "--steps", "3", "--every", "1", "--small-batch", "2",
                  "--big-batch", "4", "--seeds", "0,3", *TINY, "--out", tmp_path)
    assert res.code == 0, res
    doc = _seed_folders(tmp_path, (0, 3), "noise")
    (summary,) = doc["summaries"]
    assert summary["seeds"] == [0, 3] and summary["loss_cv"]["n"] == 2


def test_collapse_over_two_seeds_and_one_seed_bootstraps_its_images(run_cli, tmp_path):
    res = run_cli("collapse", "--model", "packnet_slim_b", "--steps", "2", "--every", "1", "--images", "4",
                  "--seeds", "2", *TINY, "--out", tmp_path / "two")
    assert res.code == 0, res
    (summary,) = _seed_folders(tmp_path / "two", (0, 1), "collapse")["summaries"]
    assert summary["collapsed_share"]["method"] == "student_t_95 over 2 seeds"
    res = run_cli("collapse", "--model", "packnet_slim_b", "--steps", "2", "--every", "1", "--images", "4", *TINY,
                  "--out", tmp_path / "one")
    assert res.code == 0, res
    (summary,) = json.loads((tmp_path / "one" / "collapse.json").read_text())["summaries"]
    assert summary["collapsed_share"]["spread_of"] == "images"  # a per-image statistic: bootstrap over images
    assert not (tmp_path / "one" / "seed_0").exists()


def test_autoencoder_over_two_seeds_with_a_matched_size_sweep(run_cli, tmp_path):
    res = run_cli("autoencoder", "--arch", "pack2d", "--arch", "maxpool", "--arch-width", "maxpool=0.0625,0.25",
                  "--levels", "1", "--steps", "3", "--input-size", "16x16", "--width", "0.0625", "--train-images", "8",
                  "--eval-images", "2", "--seeds", "2", "--device", "cpu", "--out", tmp_path)
    assert res.code == 0, res
    for seed in (0, 1):
        assert (tmp_path / f"seed_{seed}" / "autoencoder.json").is_file()
    doc = json.loads((tmp_path / "autoencoder.json").read_text())
    assert {(r["arch"], r["width"], r["seed"]) for r in doc["runs"]} == {
        (a, w, s) for a, w in (("pack2d", 0.0625), ("maxpool", 0.0625), ("maxpool", 0.25)) for s in (0, 1)}
    assert all(len(r["loss_curve"]) == 3 for r in doc["runs"])
    assert [s["psnr"]["n"] for s in doc["summaries"]] == [2, 2, 2]


@pytest.mark.parametrize("command", [["gradients", "--model", "densedepth"], ["noise", "--model", "densedepth"],
                                     ["collapse", "--model", "densedepth"], ["autoencoder"],
                                     ["experiment", "seed-study"], ["study"]])
def test_bad_seeds_are_one_line_naming_the_flag(run_cli, tmp_path, command):
    for bad in ("0", "a", "1,1", "-2"):
        res = run_cli(*command, "--seeds", bad, "--out", tmp_path / "x")
        assert res.code == 2 and "--seeds" in res.err and res.err.count("\n") == 1, (bad, res.err)
    assert not (tmp_path / "x").exists()


def test_seeds_are_counted_from_seed_or_listed():
    assert parse_seeds("3") == 3 and parse_seeds("4,1") == [4, 1]
    assert seed_list(None, 5) == [5] and seed_list(3, 5) == [5, 6, 7] and seed_list([4, 1], 5) == [4, 1]
    with pytest.raises(ProbeError, match="repeated"):
        seed_list([1, 1], 0)
    assert seed_folder(tmp := __import__("pathlib").Path("runs"), 3, [3]) == tmp
    assert seed_folder(tmp, 3, [3, 4]) == tmp / "seed_3"


def test_a_checkpoint_is_one_run_so_seeds_are_refused(run_cli, tmp_path):
    res = run_cli("gradients", "--checkpoint", tmp_path / "nowhere", "--seeds", "2", "--out", tmp_path / "g")
    assert res.code == 2 and "--seeds" in res.err
