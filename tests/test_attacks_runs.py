"""Hostile run folders: a malformed config.json, manifest or pointer is one line naming the file and the key.

Every command that reads a trained run (``eval``, ``predict``, ``train --resume`` and the analyses'
``--checkpoint``) reads its ``config.json`` through one door
(:func:`probe.training.checkpoint.run_train_config`, checked by ``check_recorded_config``) and its
checkpoint through the verified step folders.  Hypothesis replaces one value of the recorded train
config by what a damaged or hostile file holds (``tests/report/mutations.py``'s pool plus model
options and weight paths); each reader must either work or raise one ProbeError line that names
``config.json`` and the key, never another exception.  ``bench/reliability.py runfiles`` runs the
same attacks through the command line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analyses.training_runs import TrainingRuns
from probe.errors import ProbeError
from probe.training.checkpoint import load_checkpoint
from probe.training.config import TrainConfig
from tests.report.mutations import BIG_INT, DEEP, POOL

FIELDS = sorted(TrainConfig.__dataclass_fields__)
MODEL_OPTIONS = st.dictionaries(
    st.sampled_from(["variant", "align_corners", "out_channels", "weights", "pretrained", "bogus"]),
    st.sampled_from([v for v in POOL if not isinstance(v, str) or not v.startswith("\u0000")] + ["keras", "<dir>"]),
    max_size=2,
)


def _copy(run: Path, to: Path) -> Path:
    """A copy of the trained run's files a reader opens (config.json and the checkpoints)."""
    to.mkdir(parents=True)
    shutil.copy(run / "config.json", to / "config.json")
    shutil.copytree(run / "checkpoints", to / "checkpoints")
    return to


def _write_config(run: Path, key: str, value: object) -> None:
    config = json.loads((run / "config.json").read_text())
    if value == "<delete>":
        config["train"]["config"].pop(key, None)
    else:
        config["train"]["config"][key] = value
    text = json.dumps(config).replace(json.dumps("\u0000big-int\u0000"), BIG_INT)
    (run / "config.json").write_text(text.replace(json.dumps("\u0000deep\u0000"), DEEP))


def _readers(run: Path) -> dict[str, object]:
    return {
        "load_checkpoint (eval, predict, collapse/attribution --checkpoint)": lambda: load_checkpoint(run),
        "TrainingRuns.validate (gradients/noise/collapse --checkpoint)": lambda: TrainingRuns(
            checkpoint=run, steps=1, device="cpu", out=run.parent / "out"
        ).validate(),
    }


def _assert_named(exc: ProbeError, key: str) -> None:
    message = str(exc)
    assert "\n" not in message and "config.json" in message, message
    assert key in message or "not valid JSON" in message, (key, message)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(FIELDS), value=st.sampled_from(POOL) | st.text(max_size=8), data=st.data())
@example(key="width", value=3.5, data=None)  # a width that builds a model, but not the saved one (CI stop 21)
def test_a_malformed_train_config_value_is_one_line_naming_config_json_and_the_key(
    trained_run, tmp_path_factory, key, value, data
) -> None:
    run = _copy(trained_run, tmp_path_factory.mktemp("attack") / "run")
    if key == "model_options":
        options = data.draw(MODEL_OPTIONS)
        value = {k: str(run) if v == "<dir>" else v for k, v in options.items()}  # "<dir>": a folder as a file
    _write_config(run, key, value)
    for name, read in _readers(run).items():
        try:
            read()  # type: ignore[operator]
        except ProbeError as exc:
            named = [key, *(value if key == "model_options" and isinstance(value, dict) else [])]
            assert any(k in str(exc) for k in named) or "not valid JSON" in str(exc), (name, str(exc))
            _assert_named(exc, next((k for k in named if k in str(exc)), key))


WHOLE_FILES = {
    "a list": "[]",
    "null": "null",
    "not JSON": "{garbage",
    "nested 100,000 deep": DEEP,
    "a 5001-digit width": '{"train": {"config": {"model": "densedepth", "width": ' + BIG_INT + ', "model_options": {}}}}',
    "train is a list": '{"train": []}',
    "config is null": '{"train": {"config": null}}',
}


@pytest.mark.parametrize("contents", list(WHOLE_FILES.values()), ids=list(WHOLE_FILES))
def test_a_malformed_config_json_file_is_one_line_naming_it(trained_run, tmp_path, contents) -> None:
    run = _copy(trained_run, tmp_path / "run")
    (run / "config.json").write_text(contents)
    for read in _readers(run).values():
        with pytest.raises(ProbeError) as caught:
            read()  # type: ignore[operator]
        assert "\n" not in str(caught.value) and "config.json" in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "contents",
    ["[]", '{"format": 1, "step": "x", "files": {}}', '{"format": 1, "step": 1, "files": []}', DEEP, BIG_INT],
    ids=["a list", "a string step", "files a list", "nested 100,000 deep", "a 5001-digit number"],
)
def test_a_malformed_manifest_is_one_line_naming_it(trained_run, tmp_path, contents) -> None:
    run = _copy(trained_run, tmp_path / "run")
    (next((run / "checkpoints").glob("step_*")) / "manifest.json").write_text(contents)
    with pytest.raises(ProbeError) as caught:
        load_checkpoint(run)
    assert "\n" not in str(caught.value) and "manifest.json" in str(caught.value), str(caught.value)


@pytest.mark.parametrize("pointer", ["../../etc\n", "step_999\n", "/dev/zero\n", ""])
def test_the_last_pointer_is_never_trusted(trained_run, tmp_path, pointer) -> None:
    run = _copy(trained_run, tmp_path / "run")
    (run / "checkpoints" / "last").write_text(pointer)
    model, _ = load_checkpoint(run)  # the newest verified step folder, whatever the pointer says
    assert model is not None


CLI_ATTACKS = {
    "model_options a list": ("model_options", []),
    "width a string": ("width", "big"),
    "input_size 0x0": ("input_size", [0, 0]),
    "a folder as weights": ("model_options", {"weights": "<dir>"}),
    "dataset_length -5": ("dataset_length", -5),
    "a 5001-digit width": ("width", "\u0000big-int\u0000"),
}


def _cli(run: Path, tmp: Path) -> dict[str, list[str]]:
    from PIL import Image

    image = tmp / "room.png"
    Image.new("RGB", (24, 16), (120, 30, 200)).save(image)
    return {
        "eval": ["eval", "--checkpoint", str(run), "--dataset-length", "2", "--device", "cpu", "--out", str(tmp / "o")],
        "predict": ["predict", str(image), "--checkpoint", str(run), "--device", "cpu", "--out", str(tmp / "o")],
        "gradients --checkpoint": ["gradients", "--checkpoint", str(run), "--steps", "1", "--device", "cpu",
                                   "--out", str(tmp / "o")],
        "collapse --checkpoint": ["collapse", "--checkpoint", str(run), "--device", "cpu", "--out", str(tmp / "o")],
        "attribution --checkpoint": ["attribution", "--checkpoint", str(run), "--images", "1", "--steps", "1",
                                     "--device", "cpu", "--out", str(tmp / "o")],
    }


@pytest.mark.parametrize("attack", list(CLI_ATTACKS))
def test_every_command_names_config_json_and_the_key(run_cli, trained_run, tmp_path, attack) -> None:
    key, value = CLI_ATTACKS[attack]
    run = _copy(trained_run, tmp_path / "run")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    value = {"weights": str(folder)} if value == {"weights": "<dir>"} else value
    _write_config(run, key, value)
    for command, argv in _cli(run, tmp_path).items():
        res = run_cli(*argv)
        lines = res.err.strip().splitlines()
        if attack == "a folder as weights" and command != "gradients --checkpoint":
            assert res.code == 0, (command, res)  # the checkpoint holds every weight: the start file is not read
            continue
        assert res.code == 2 and len(lines) == 1, (command, res)
        assert "internal error" not in res.err and "config.json" in lines[0], (command, lines)
        assert key in lines[0] or "not valid JSON" in lines[0] or "weights" in lines[0], (command, lines)


def test_resume_does_not_reread_the_weights_file_the_run_started_from(tmp_path) -> None:
    """The checkpoint holds every weight: a run started from weights=FILE resumes after FILE is gone."""
    from safetensors.torch import save_model

    from probe.models import build_model
    from probe.training import train

    start = tmp_path / "start.safetensors"
    save_model(build_model("densedepth", width=0.0625), str(start))
    config = TrainConfig(model="densedepth", width=0.0625, model_options={"weights": str(start)}, input_size=(32, 48),
                         dataset_length=4, batch_size=2, max_steps=1, device="cpu", workers=0, out=tmp_path / "run")
    train(config)
    start.unlink()
    resumed = train(TrainConfig(**{**config.__dict__, "max_steps": 2, "resume": True}))
    assert resumed.steps == 2 and resumed.summary is not None and resumed.summary.resumed_from_step == 1
