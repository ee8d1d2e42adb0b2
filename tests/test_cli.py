"""Bad input on every command: one line on stderr naming the flag or file, non-zero exit, no traceback.

Every case fails before any training or measuring starts, so the whole table runs in seconds.
Paths in the arguments are placeholders filled from the ``paths`` fixture:
``{out}`` a fresh empty folder (still empty afterwards: nothing is written before the error), ``{file}`` an existing regular file, ``{missing}`` a path that does not
exist, ``{good_run}`` a tiny loadable run folder, ``{corrupt_run}`` a run folder whose checkpoint
files are random bytes, ``{bad_json_run}`` / ``{list_json_run}`` run folders with a broken result,
``{fifo}`` a named pipe (reading it would block forever).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import typer

import cli

TINY = ("--width", "0.0625", "--input-size", "32x32")

CASES: list[tuple[tuple[str, ...], str]] = [
    # models, properties, complexity
    (("models", "--width", "0"), "--width"),
    (("properties", "--examples", "0", "--out", "{out}"), "--examples"),
    (("properties", "--examples", "1", "--out", "{file}"), "not a directory"),
    (("properties", "--examples", "1", "--seed", "-1", "--out", "{out}"), "--seed"),
    (("complexity", "--model", "nope", "--out", "{out}"), "nope"),
    (("complexity", "--model", "packnet_b", "--input-size", "0x64", "--out", "{out}"), "--input-size"),
    (("complexity", "--model", "packnet_b", "--batch-size", "0", "--out", "{out}"), "--batch-size"),
    (("complexity", "--model", "packnet_b", "--repeats", "0", "--out", "{out}"), "--repeats"),
    (("complexity", "--model", "packnet_b", "--device", "tpu", "--out", "{out}"), "--device"),
    # datasets and data
    (("datasets", "--data-root", "{missing}"), "--data-root"),
    (("data", "check", "nope"), "unknown dataset 'nope'"),
    (("data", "check", "nyu", "--data-root", "{missing}"), "nyu_data.zip"),
    (("data", "check", "synthetic", "--split", "bogus"), "--split"),
    (("data", "check", "synthetic", "--workers", "-1", "--option", "length=2"), "--workers"),
    (("data", "check", "synthetic", "--option", "noequals"), "--option"),
    (("data", "check", "synthetic", "--option", "length=-3"), "length"),
    (("data", "preview", "synthetic", "--count", "0", "--out", "{out}/p.png"), "--count"),
    (("data", "preview", "synthetic", "--count", str(2**70), "--out", "{out}/p.png"), "--count"),
    (("data", "check", "synthetic", "--workers", "1000000", "--option", "length=2"), "--workers"),
    (("data", "preview", "synthetic", "--count", "1", "--input-size", "32x32", "--out", "{file}/p.png"),
     "not a directory"),
    (("data", "preview", "synthetic", "--seed", "-1", "--count", "1", *TINY[2:], "--out", "{out}/p.png"), "--seed"),
    (("data", "download", "nope", "--data-root", "{out}"), "unknown dataset"),
    (("data", "download", "make3d", "--data-root", "{file}"), "--data-root"),
    (("data", "download", "make3d", "--data-root", "{out}", "--url", "notaurl"), "--url"),
    # train
    (("train", "--model", "nope", "--out", "{out}"), "unknown model 'nope'"),
    (("train", "--dataset", "nope", "--out", "{out}"), "unknown dataset 'nope'"),
    (("train", "--loss", "nope", *TINY, "--out", "{out}"), "unknown loss 'nope'"),
    (("train", "--max-steps", "0", "--out", "{out}"), "--max-steps"),
    (("train", "--batch-size", "0", "--out", "{out}"), "--batch-size"),
    (("train", "--lr", "-1", "--out", "{out}"), "--lr"),
    (("train", "--lr", "inf", "--out", "{out}"), "--lr"),
    (("train", "--lr", "nan", "--out", "{out}"), "--lr"),
    (("train", "--grad-clip", "inf", "--out", "{out}"), "--grad-clip"),
    (("train", "--max-steps", str(2**70), "--out", "{out}"), "--max-steps"),
    (("train", "--epochs", str(10**12), "--out", "{out}"), "--epochs"),
    (("train", "--workers", "1000000", "--out", "{out}"), "--workers"),
    (("train", "--nproc-per-node", "100000", "--out", "{out}"), "--nproc-per-node"),
    (("train", "--width", "1e6", "--out", "{out}"), "--width"),
    (("train", "--input-size", "100000x100000", "--out", "{out}"), "--input-size"),
    (("train", "--dataset-length", "2", "--input-size", "16000x16000", "--out", "{out}"), "needs about"),
    (("train", "--width", "0", "--out", "{out}"), "--width"),
    (("train", "--input-size", "32", "--out", "{out}"), "--input-size"),
    (("train", "--workers", "-1", "--out", "{out}"), "--workers"),
    (("train", "--precision", "fp8", "--out", "{out}"), "--precision"),
    (("train", "--model-option", "bogus", "--out", "{out}"), "--model-option"),
    (("train", "--model-option", "bogus=1", "--out", "{out}"), "unknown option(s) bogus"),
    (("train", "--model-option", "skips=maybe", "--out", "{out}"), "skips"),
    (("train", "--model-option", "min_depth=abc", "--out", "{out}"), "min_depth"),
    (("train", "--model-option", "width=0.5", "--out", "{out}"), "--model-option width"),
    (("train", "--model", "densedepth", "--model-option", "bogus=1", "--out", "{out}"), "densedepth: unknown option"),
    (("train", "--nproc-per-node", "0", "--out", "{out}"), "--nproc-per-node"),
    (("train", "--nnodes", "0", "--out", "{out}"), "--nnodes"),
    (("train", "--nnodes", "2", "--out", "{out}"), "needs --rdzv-endpoint"),
    (("train", "--nnodes", "2", "--rdzv-endpoint", "node001", "--out", "{out}"), "--rdzv-endpoint"),
    (("train", "--nnodes", "2", "--rdzv-endpoint", "node001:29500", "--node-rank", "2", "--out", "{out}"), "--node-rank"),
    (("train", "--nnodes", "2", "--rdzv-endpoint", "node001:29500", "--rdzv-backend", "etcd", "--out", "{out}"), "--rdzv-backend"),
    (("train", "--model-option", "depth_conv=fft", "--out", "{out}"), "depth_conv"),
    (("train", "--probe", "collapse", "--probe-every", "0", "--out", "{out}"), "--probe-every"),
    (("train", "--probe", "noise", "--probe-every", "0", "--out", "{out}"), "--probe-every"),
    (("train", "--probe", "nope", "--out", "{out}"), "--probe"),
    (("train", "--seed", "-1", "--out", "{out}"), "--seed"),
    (("train", "--seed", str(2**64), "--out", "{out}"), "--seed"),
    (("train", "--out", "{file}"), "not a directory"),
    (("train", "--resume", "--max-steps", "2", *TINY, "--out", "{corrupt_run}"), "no complete checkpoint"),
    # eval, predict
    (("eval", "--checkpoint", "{missing}", "--out", "{out}"), "--checkpoint"),
    (("eval", "--checkpoint", "{corrupt_run}", "--out", "{out}"), "no complete checkpoint"),
    (("eval", "--checkpoint", "{good_run}", "--workers", "-1", "--out", "{out}"), "--workers"),
    (("eval", "--checkpoint", "{good_run}", "--batch-size", "0", "--out", "{out}"), "--batch-size"),
    (("eval", "--checkpoint", "{good_run}", "--protocol", "nope", "--out", "{out}"), "protocol 'nope'"),
    (("eval", "--checkpoint", "{good_run}", "--split", "bogus", "--out", "{out}"), "split"),
    (("predict", "{file}", "--checkpoint", "{missing}", "--out", "{out}"), "--checkpoint"),
    (("predict", "{missing}", "--checkpoint", "{good_run}", "--out", "{out}"), "image file not found"),
    (("predict", "{file}", "--checkpoint", "{good_run}", "--out", "{out}"), "cannot decode image"),
    (("predict", "{file}", "--checkpoint", "{good_run}", "--range", "5,1", "--out", "{out}"), "--range"),
    (("predict", "{file}", "--checkpoint", "{good_run}", "--colormap", "nope", "--out", "{out}"), "--colormap"),
    (("predict", "{fifo}", "--checkpoint", "{good_run}", "--out", "{out}"), "image file not found"),
    # experiment seed-study
    (("experiment", "seed-study", "--only", "nope", "--out", "{out}"), "--only"),
    (("experiment", "seed-study", "--epochs", "0", "--out", "{out}"), "--epochs"),
    (("experiment", "seed-study", "--quick", "--dataset", "nyu", "--out", "{out}"), "--quick"),
    (("experiment", "seed-study", "--eval-images", "0", "--out", "{out}"), "--eval-images"),
    (("experiment", "seed-study", "--loss-scales", "some", "--out", "{out}"), "loss"),
    (("experiment", "seed-study", "--quick", "--parallel", "0", "--out", "{out}"), "--parallel"),
    (("experiment", "seed-study", "--quick", "--launcher", "pbs", "--out", "{out}"), "--launcher"),
    (("experiment", "seed-study", "--quick", "--launcher", "slurm", "--out", "{out}"), "--partition"),
    (("experiment", "seed-study", "--quick", "--partition", "gpu", "--out", "{out}"), "--partition"),
    (("experiment", "seed-study", "--quick", "--launcher", "submitit-local", "--time-min", "0", "--out", "{out}"),
     "--time-min"),
    *([(("experiment", "seed-study", "--quick", "--launcher", "slurm", "--partition", "gpu", "--out", "{out}"),
        "srun")] if shutil.which("srun") is None else []),
    (("study", "--quick", "--parallel", "0", "--out", "{out}"), "--parallel"),
    # gradients, noise, collapse
    (("gradients", "--out", "{out}"), "--model"),
    (("gradients", "--model", "nope", "--out", "{out}"), "unknown model 'nope'"),
    (("gradients", "--model", "packnet_b", "--steps", "0", "--out", "{out}"), "--steps"),
    (("gradients", "--model", "packnet_b", "--checkpoint", "{good_run}", "--out", "{out}"), "--model/--checkpoint"),
    (("gradients", "--checkpoint", "{missing}", "--out", "{out}"), "--checkpoint"),
    (("gradients", "--model", "packnet_b", "--out", "{file}"), "not a directory"),
    (("noise", "--model", "packnet_b", "--small-batch", "4", "--big-batch", "2", "--out", "{out}"), "--small-batch"),
    (("noise", "--model", "packnet_b", "--small-batch", "3", "--big-batch", "8", "--out", "{out}"), "--big-batch"),
    (("noise", "--model", "packnet_b", "--every", "0", "--out", "{out}"), "--every"),
    (("noise", "--model", "packnet_b", "--eval-images", "0", "--out", "{out}"), "--eval-images"),
    (("collapse", "--out", "{out}"), "--model"),
    (("collapse", "--model", "packnet_b", "--images", "0", "--out", "{out}"), "--images"),
    (("collapse", "--model", "packnet_b", "--every", "0", "--out", "{out}"), "--every"),
    (("collapse", "--checkpoint", "{corrupt_run}", "--out", "{out}"), "no complete checkpoint"),
    # autoencoder, attribution
    (("autoencoder", "--arch", "nope", "--out", "{out}"), "'nope'"),
    (("autoencoder", "--levels", "0", "--out", "{out}"), "--levels"),
    (("autoencoder", "--levels", "3..1", "--out", "{out}"), "--levels"),
    (("autoencoder", "--norm", "batch", "--out", "{out}"), "normalisation 'batch'"),
    (("autoencoder", "--input-size", "8x8", "--out", "{out}"), "--input-size"),
    (("autoencoder", "--levels", "1..3", "--figure-level", "5", "--out", "{out}"), "--figure-level"),
    (("autoencoder", "--lr", "0", "--out", "{out}"), "--lr"),
    (("collapse", "--model", "packnet_b", "--lr", "0", "--out", "{out}"), "--lr"),
    (("gradients", "--model", "densedepth", "--lr", "nan", "--out", "{out}"), "--lr"),
    (("autoencoder", "--arch-width", "maxpool", "--out", "{out}"), "--arch-width"),
    (("autoencoder", "--arch", "pack2d", "--arch-width", "maxpool=0.5", "--out", "{out}"), "--arch-width maxpool"),
    (("autoencoder", "--arch-width", "maxpool=0", "--out", "{out}"), "--width"),
    # study
    (("study", "--budget", "medium", "--out", "{out}"), "--budget"),
    (("attribution", "--out", "{out}"), "--model or --checkpoint"),
    (("attribution", "--model", "packnet_b", "--method", "nope", "--out", "{out}"), "attribution method 'nope'"),
    (("attribution", "--model", "packnet_b", "--pixel", "5", "--out", "{out}"), "--pixel"),
    (("attribution", "--model", "packnet_b", "--region", "5,5,2,2", "--out", "{out}"), "--region"),
    (("attribution", "--model", "packnet_b", "--pixel", "1,1", "--region", "0,0,2,2", "--out", "{out}"),
     "--pixel and --region"),
    (("attribution", "--model", "packnet_b", "--pixel", "1000,1000", *TINY, "--out", "{out}"), "outside"),
    (("attribution", "--model", "packnet_b", "--image", "{missing}", "--out", "{out}"), "file not found"),
    (("attribution", "--checkpoint", "{corrupt_run}", "--out", "{out}"), "no complete checkpoint"),
    (("attribution", "--model", "packnet_slim_b", *TINY, "--image", "{fifo}", "--out", "{out}"), "--image"),
    # issue 16: every count and size of the analyses bounded before any work (probe/limits.py, probe/memory.py)
    (("gradients", "--model", "packnet_slim_b", *TINY, "--steps", str(2**70), "--out", "{out}"), "--steps"),
    (("gradients", "--model", "packnet_slim_b", *TINY, "--steps", str(10**12), "--out", "{out}"), "--steps"),
    (("gradients", "--model", "packnet_b", "--input-size", "16000x16000", "--out", "{out}"), "needs about"),
    (("noise", "--model", "packnet_slim_b", *TINY, "--big-batch", str(2**70), "--out", "{out}"), "--big-batch"),
    (("noise", "--model", "packnet_slim_b", *TINY, "--steps", "4", "--every", "5", "--out", "{out}"), "--every"),
    (("collapse", "--model", "packnet_slim_b", *TINY, "--images", str(2**70), "--out", "{out}"), "--images"),
    (("collapse", "--model", "packnet_slim_b", *TINY, "--every", str(2**70), "--out", "{out}"), "--every"),
    (("complexity", "--model", "packnet_slim_b", *TINY, "--repeats", str(2**70), "--out", "{out}"), "--repeats"),
    (("complexity", "--model", "packnet_slim_b", *TINY, "--warmup", str(2**70), "--out", "{out}"), "--warmup"),
    (("complexity", "--model", "packnet_slim_b", *TINY, "--batch-size", str(2**70), "--out", "{out}"), "--batch-size"),
    (("complexity", "--model", "packnet_slim_b", "--input-size", "100000x100000", "--out", "{out}"), "--input-size"),
    (("complexity", "--model", "packnet_b", "--input-size", "16000x16000", "--batch-size", "64", "--out", "{out}"),
     "needs about"),
    (("autoencoder", "--steps", str(2**70), "--out", "{out}"), "--steps"),
    (("autoencoder", "--train-images", "8", "--batch-size", "9", "--out", "{out}"), "--batch-size"),
    (("autoencoder", "--train-images", str(2**70), "--out", "{out}"), "--train-images"),
    (("autoencoder", "--eval-images", str(2**70), "--out", "{out}"), "--eval-images"),
    (("autoencoder", "--input-size", "100000x100000", "--out", "{out}"), "--input-size"),
    (("autoencoder", "--train-images", "1000000", "--input-size", "16384x16384", "--out", "{out}"), "caching the images"),
    (("autoencoder", "--lr", "inf", "--out", "{out}"), "--lr"),
    (("attribution", "--model", "packnet_slim_b", *TINY, "--steps", str(2**70), "--out", "{out}"), "--steps"),
    (("attribution", "--model", "packnet_slim_b", *TINY, "--images", str(2**70), "--out", "{out}"), "--images"),
    (("attribution", "--model", "packnet_slim_b", "--input-size", "100000x100000", "--out", "{out}"), "--input-size"),
    (("attribution", "--model", "packnet_slim_b", *TINY, "--image", "/dev/zero", "--out", "{out}"), "--image"),
    (("properties", "--examples", str(2**70), "--out", "{out}"), "--examples"),
    (("experiment", "seed-study", "--workers", "1000000", "--out", "{out}"), "--workers"),
    (("experiment", "seed-study", "--lr", "inf", "--out", "{out}"), "--lr"),
    (("eval", "--checkpoint", "{good_run}", "--dataset-length", str(2**70), "--out", "{out}"), "--dataset-length"),
    (("predict", "{file}", "--checkpoint", "{good_run}", "--input-size", "100000x100000", "--out", "{out}"),
     "--input-size"),
    # report, study
    (("report", "{missing}", "-o", "{out}/r.html"), "not a directory"),
    (("report", "{out}", "-o", "{out}/r.html"), "no result files"),
    (("report", "{bad_json_run}", "-o", "{out}/r.html"), "not valid JSON"),
    (("report", "{list_json_run}", "-o", "{out}/r.html"), "expected a JSON object"),
    (("report", "{bad_json_run}", "--format", "pdf", "-o", "{out}/r.html"), "--format"),
    (("study", "--step", "nope", "--out", "{out}"), "unknown study step 'nope'"),
    (("study", "--quick", "--dataset", "nyu", "--out", "{out}"), "--quick"),
    (("study", "--dataset", "nyu", "--data-root", "{missing}", "--out", "{out}"), "nyu_data.zip"),
    (("study", "--out", "{file}"), "not a directory"),
    (("study", "--quick", "--seed", "-1", "--out", "{out}"), "--seed"),
]

CUDA_CASES: list[tuple[str, ...]] = [
    ("complexity", "--model", "packnet_b", "--device", "cuda", "--out", "{out}"),
    ("train", "--device", "cuda", "--out", "{out}"),
    ("eval", "--checkpoint", "{good_run}", "--device", "cuda", "--out", "{out}"),
    ("gradients", "--model", "packnet_b", "--device", "cuda", "--out", "{out}"),
    ("attribution", "--model", "packnet_b", "--device", "cuda", "--out", "{out}"),
]


def _write_run(folder: Path) -> None:
    """A run folder as `probe train` leaves it: config.json (train section) and checkpoints/step_1/."""
    from probe.models import build_model
    from probe.training import save_checkpoint

    config = {"model": "packnet_slim_b", "width": 0.0625, "model_options": {}, "dataset": "synthetic",
              "input_size": [32, 32]}
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"train": {"config": config}}))
    save_checkpoint(folder, build_model("packnet_slim_b", width=0.0625), {"position": {"step": 1}})


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    file = root / "not_a_folder.jpg"
    file.write_text("this is neither a folder nor an image")
    good_run, corrupt_run = root / "good_run", root / "corrupt_run"
    _write_run(good_run)
    _write_run(corrupt_run)
    for name in ("weights.safetensors", "state.pt"):
        (corrupt_run / "checkpoints" / "step_1" / name).write_bytes(bytes(range(256)) * 4)
    fifo = root / "pipe.png"
    os.mkfifo(fifo)
    bad_json_run, list_json_run = root / "bad_json_run", root / "list_json_run"
    bad_json_run.mkdir()
    (bad_json_run / "gradients.json").write_text('{"models": [')
    list_json_run.mkdir()
    (list_json_run / "noise.json").write_text("[]")
    return {"file": file, "missing": root / "missing", "good_run": good_run, "corrupt_run": corrupt_run,
            "bad_json_run": bad_json_run, "list_json_run": list_json_run, "fifo": fifo}


def _fill(args: tuple[str, ...], paths: dict[str, Path], out: Path) -> list[str]:
    return [a.format(out=out, **paths) for a in args]


def _assert_one_line_error(res, expected: str) -> None:
    assert res.code != 0, res
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res
    assert expected in lines[0], res
    assert "Traceback" not in res.err and "internal error" not in res.err, res


@pytest.mark.parametrize("args, expected", CASES, ids=[" ".join(a[:3]) + f" [{i}]" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_one_line_naming_the_flag_or_file(run_cli, paths, tmp_path, args, expected) -> None:
    out = tmp_path / "out"
    out.mkdir()
    res = run_cli(*_fill(args, paths, out))
    _assert_one_line_error(res, expected)
    assert not any(out.iterdir()), f"{args[0]} wrote {sorted(out.iterdir())} before failing"


@pytest.mark.skipif(torch.cuda.is_available(), reason="--device cuda is valid input on a machine with CUDA")
@pytest.mark.parametrize("args", CUDA_CASES, ids=[a[0] for a in CUDA_CASES])
def test_device_cuda_without_cuda_is_one_line(run_cli, paths, tmp_path, args) -> None:
    _assert_one_line_error(run_cli(*_fill(args, paths, tmp_path / "out")), "--device cuda")


def test_a_failed_command_leaves_existing_results_untouched(run_cli, paths, tmp_path) -> None:
    report = tmp_path / "report.html"
    report.write_text("an earlier report")
    res = run_cli("report", paths["bad_json_run"], "-o", report)
    _assert_one_line_error(res, "not valid JSON")
    assert report.read_text() == "an earlier report"
    weights = paths["good_run"] / "checkpoints" / "step_1" / "weights.safetensors"
    before = weights.read_bytes()
    res = run_cli("train", *TINY, "--max-steps", "1", "--out", paths["good_run"])
    _assert_one_line_error(res, "--resume")
    assert weights.read_bytes() == before


def test_the_ddp_worker_entry_takes_only_a_config_file(capsys) -> None:
    from probe.training.launch import main as launch

    with pytest.raises(SystemExit) as exit_:
        launch(["--model", "packnet_b"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "-m probe train" in err


def _command_paths(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        found.extend(_command_paths(sub, (*path, name)))
    return found


COMMANDS = _command_paths(typer.main.get_command(cli.app))


def test_every_command_is_registered() -> None:
    expected = {("models",), ("properties",), ("complexity",), ("datasets",), ("data", "check"),
                ("data", "preview"), ("data", "download"), ("train",), ("eval",), ("predict",),
                ("experiment", "seed-study"), ("gradients",), ("noise",), ("collapse",), ("fit",), ("autoencoder",),
                ("attribution",), ("report",), ("study",)}
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "probe")
def test_help_of_every_command_shows_an_example(run_cli, command) -> None:
    res = run_cli(*command, "--help")
    assert res.code == 0, res
    assert "Example" in res.out, res
