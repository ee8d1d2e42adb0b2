"""A user's own model through the CLI: check-model, train, eval, predict and the analyses, as for a zoo name.

The examples are file SPECs relative to the repository root (the README's commands), so the
tests run from there.  Sizes are tiny: width 1/16, 32x48 or 64x96 images, a few steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from probe.models.spec import file_safe_name
from probe.report.document import md_text

ROOT = Path(__file__).resolve().parents[1]
UNET = "examples/unet.py:build"
DICT = "examples/dict_model.py:build"
BROKEN = "tests/models/user_models.py:broken"
SMALL = ("--width", "0.0625", "--device", "cpu", "--seed", "0")


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_check_model_passes_on_the_example_unet_at_its_published_width(run_cli):
    res = run_cli("check-model", UNET, "--device", "cpu")
    assert res.code == 0, res
    assert res.err == ""
    lines = res.out.strip().splitlines()
    assert len(lines) == 10 and all(line.startswith("passed ") for line in lines), res
    assert "14,329,236 parameters" in res.out and "GMACs" in res.out


def test_check_model_on_a_broken_model_exits_2_with_one_line_per_failed_clause(run_cli):
    res = run_cli("check-model", BROKEN, "--device", "cpu")
    assert res.code == 2, res
    failed = res.err.strip().splitlines()
    clauses = [line.removeprefix(f"FAILED {BROKEN}: ").split(":")[0] for line in failed]
    assert clauses == ["odd input size", "output range", "eval determinism", "gradients"], res
    assert all(line.startswith(f"FAILED {BROKEN}: ") and "; fix: " in line for line in failed)
    assert "passed eval output" in res.out and "FAILED" not in res.out


def test_check_model_names_the_key_a_dict_model_needs(run_cli):
    res = run_cli("check-model", DICT, *SMALL)
    assert res.code == 2, res
    assert [line.split(": ")[1] for line in res.err.strip().splitlines()] == ["eval output", "train output"]
    assert "--model-option output_key=KEY" in res.err and "skipped MACs: needs a passing eval output" in res.out
    res = run_cli("check-model", DICT, *SMALL, "--model-option", "output_key=disp,*")
    assert res.code == 0, res


@pytest.mark.parametrize("spec, expected", [
    ("examples/missing.py:build", "file examples/missing.py not found"),
    ("examples/unet.py:nope", "examples/unet.py has no attribute 'nope'"),
    ("tests/models/user_models.py:not_a_module", "the factory returned a str, not an nn.Module"),
])
def test_check_model_on_a_spec_that_does_not_build_is_one_line(run_cli, spec, expected):
    res = run_cli("check-model", spec, "--device", "cpu")
    assert res.code == 2 and res.out == "", res
    [line] = res.err.strip().splitlines()
    assert line.startswith(f"FAILED {spec}: build: ") and expected in line


@pytest.mark.parametrize("args, expected", [
    (("train", "--model", "examples/missing.py:build"), "--model examples/missing.py:build: file examples/missing.py not found"),
    (("train", "--model", UNET, "--model-option", "depth_head=big"), "unknown option(s) depth_head"),
    (("train", "--model", UNET, "--model-option", "output_space=furlongs"), "declaration: output_space='furlongs'"),
    (("gradients", "--model", "examples/unet.py:nope"), "examples/unet.py has no attribute 'nope'"),
    (("check-model", UNET, "--input-size", "8x8"), "--input-size"),
    (("check-model", UNET, "--batch-size", "1"), "--batch-size"),
    (("check-model", UNET, "--model-option", "nokey"), "--model-option"),
])
def test_bad_user_model_input_is_one_line_and_writes_nothing(run_cli, tmp_path, args, expected):
    out = tmp_path / "out"
    out.mkdir()
    res = run_cli(*args, *(("--out", out) if args[0] != "check-model" else ()))
    assert res.code == 2, res
    assert res.err.strip().splitlines() == [res.err.strip()] and expected in res.err
    assert "Traceback" not in res.err and not any(out.iterdir())


def test_train_eval_and_predict_a_user_model(run_cli, tmp_path):
    run = tmp_path / "run"
    res = run_cli("train", "--model", UNET, *SMALL, "--input-size", "32x48", "--max-steps", "2",
                  "--dataset-length", "4", "--batch-size", "2", "--workers", "0", "--out", run)
    assert res.code == 0, res
    summary = json.loads((run / "train.json").read_text())
    assert summary["steps"] == 2 and summary["model"] == UNET and summary["params"] == 57_844

    res = run_cli("eval", "--checkpoint", run, "--device", "cpu", "--out", tmp_path / "eval")
    assert res.code == 0, res
    result = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert result["model"] == "unet" and result["output_space"] == "inverse" and result["n_images"] > 0

    image = tmp_path / "room.png"
    Image.fromarray((np.random.default_rng(0).random((30, 41, 3)) * 255).astype("uint8")).save(image)
    res = run_cli("predict", "--checkpoint", run, image, "--device", "cpu", "--out", tmp_path / "pred")
    assert res.code == 0, res
    depth = np.load(tmp_path / "pred" / "room_depth.npy")
    assert depth.shape[-2:] == (30, 41) and (depth >= 0.1 - 1e-4).all() and (depth <= 10.0 + 1e-3).all()


def test_train_a_dict_model_on_every_scale(run_cli, tmp_path):
    res = run_cli("train", "--model", DICT, "--model-option", "output_key=disp,*", *SMALL, "--input-size", "36x52",
                  "--max-steps", "2", "--dataset-length", "4", "--batch-size", "2", "--workers", "0",
                  "--out", tmp_path / "run")
    assert res.code == 0, res
    config = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["config"]
    assert config["model_options"] == {"output_key": "disp,*"}


ANALYSES = {
    "gradients": ("--model", UNET, "--model", "densedepth", "--steps", "2", "--input-size", "32x48"),
    "collapse": ("--model", UNET, "--steps", "2", "--every", "2", "--images", "2", "--input-size", "32x48"),
    "noise": ("--model", UNET, "--steps", "2", "--small-batch", "2", "--big-batch", "4", "--input-size", "32x48"),
    "attribution": ("--model", UNET, "--steps", "2", "--images", "1", "--input-size", "32x32"),
    "complexity": ("--model", UNET, "--baseline", "densedepth", "--input-size", "32x48", "--repeats", "1"),
}


@pytest.mark.parametrize("command", sorted(ANALYSES))
def test_analyses_take_a_user_model_record_its_role_and_write_file_safe_names(run_cli, tmp_path, command):
    res = run_cli(command, *ANALYSES[command], *SMALL, "--out", tmp_path)
    assert res.code == 0, res
    result = json.loads((tmp_path / f"{command}.json").read_text())
    assert [m["name"] for m in result["models"]][0] == UNET  # the SPEC as given
    roles = {m["name"]: (m["role"], m["display"]) for m in result["roles"]["models"]}
    assert roles[UNET] == ("under study", "unet") and roles.get("densedepth", ("baseline",))[0] == "baseline"
    written = [p for p in tmp_path.rglob("*") if p.name != ".lock"]
    assert all(p.parent == tmp_path and ":" not in p.name for p in written), written


def test_gradients_report_names_the_user_model_like_a_zoo_model(run_cli, tmp_path):
    """The issue's done-when: ``probe gradients --model examples/unet.py:build --model densedepth`` -> report."""
    res = run_cli("gradients", "--model", UNET, "--model", "densedepth", "--steps", "2", "--input-size", "32x48",
                  *SMALL, "--out", tmp_path / "grad")
    assert res.code == 0, res
    assert (tmp_path / "grad" / f"gradients_heatmap_{file_safe_name(UNET)}.png").is_file()
    res = run_cli("report", tmp_path / "grad", "-o", tmp_path / "report.md", "--format", "md")
    assert res.code == 0, res
    report = (tmp_path / "report.md").read_text()
    assert report.startswith(f"# {md_text('probe report: unet against DenseDepth')}")
    assert "## Do unet's gradients vanish?" in report and "| Do unet's gradients vanish? |" in report
    assert f"| {md_text(UNET)} | under study |" in report  # the SPEC as text (its colon escaped)
    assert "| densedepth | baseline |" in report
    # the rule's controls name the zoo networks the rule was calibrated on; nothing else speaks of PackNet
    body = "\n".join(line for line in report.split("## Run provenance")[0].splitlines() if "Controls" not in line)
    assert "PackNet" not in body


def test_model_options_reach_the_factory_and_scoped_ones_one_model_only(run_cli, tmp_path):
    res = run_cli("collapse", "--model", DICT, "--model", UNET, "--model-option", f"{DICT}:output_key=disp,*",
                  "--model-option", "max_depth=20", "--steps", "2", "--every", "2", "--images", "2",
                  "--input-size", "32x48", *SMALL, "--out", tmp_path)
    assert res.code == 0, res
    config = json.loads((tmp_path / "collapse.json").read_text())["config"]
    assert config["model_options"] == {f"{DICT}:output_key": "disp,*", "max_depth": 20}
    res = run_cli("collapse", "--model", DICT, "--model", "densedepth", "--model-option", "output_key=disp,*",
                  "--steps", "2", *SMALL, "--out", tmp_path / "bad")
    assert res.code == 2 and "densedepth: unknown option(s) output_key" in res.err and "MODEL:KEY=VALUE" in res.err
    assert not (tmp_path / "bad").exists()


def test_a_short_study_compares_the_user_model_with_its_baseline_by_role(run_cli, tmp_path, monkeypatch):
    """``probe study --quick --model examples/unet.py:build --baseline densedepth`` on a tiny budget, through the CLI."""
    from probe.study import BUDGETS, STEPS
    from tests.test_study import TINY

    monkeypatch.setitem(BUDGETS, "quick", TINY)
    out = tmp_path / "study"
    res = run_cli("study", "--quick", "--model", UNET, "--baseline", "densedepth", "--encoder-module", "encoder",
                  "--device", "cpu", "--out", out)
    assert res.code == 0, res
    for name in ("complexity", "experiments", "gradients", "noise", "collapse", "autoencoder", "attribution"):
        doc = json.loads((out / STEPS.entry(name).meta["produces"]).read_text())
        roles = {m["name"].split(" (")[0]: m["role"] for m in doc["roles"]["models"]}
        assert roles == {UNET: "under study", **({} if name == "autoencoder" else {"densedepth": "baseline"})}, name
    assert not any(":" in p.name for p in out.rglob("*")), "a file or folder named after the SPEC"

    res = run_cli("report", out, "-o", tmp_path / "report.md", "--format", "md")
    assert res.code == 0, res
    report = (tmp_path / "report.md").read_text()
    assert report.startswith(f"# {md_text('probe report: unet against DenseDepth')}") and "## Not run" not in report
    for question in ("Do unet's gradients vanish?", "Does unet's prediction collapse to the mean?",
                     "Does unet's encoder preserve information?", "How noisy are unet's batches?",
                     "What does unet cost against DenseDepth?"):
        assert f"| {question} |" in report, question
    for section in ("## Do unet's gradients vanish?", "## Does unet's prediction collapse to the mean?",
                    "## How noisy are unet's batches?", "## What does unet cost against DenseDepth?",
                    "## The experiment matrix", "## The models", "## Attribution and receptive fields"):
        assert section in report, section
    assert f"| {md_text(UNET)} | under study |" in report  # the SPEC as text (its colon escaped) and "| densedepth | baseline |" in report

    res = run_cli("study", "--quick", "--model", DICT, "--model-option", "output_key=disp,*", "--device", "cpu",
                  "--out", out)
    assert res.code == 2 and "holds a study with models=" in res.err and "--force" in res.err, res
