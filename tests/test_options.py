"""Each default is declared once: a command given no flags builds exactly its config's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

import analyses.attribution
import analyses.autoencoder
import analyses.collapse
import analyses.complexity
import analyses.fit
import analyses.gradients
import analyses.model_check
import analyses.noise
import probe.evaluate
import probe.experiments
import probe.laws
import probe.models.check
import probe.study
import probe.training
from probe.limits import check_width
from probe.options import parse_size


class _Stop(Exception):
    """Raised by the stand-in for a command's work, carrying the config it received."""


def _capture(monkeypatch, module, name):
    def stand_in(config, *args, **kwargs):
        raise _Stop(config)

    monkeypatch.setattr(module, name, stand_in)


# command line (with what a required flag needs) -> (module, function doing the work, the expected config)
CASES = [
    (["train"], probe.training, "train", probe.training.TrainConfig()),
    (["experiment", "seed-study"], probe.experiments, "run_seed_study", probe.experiments.SeedStudyConfig()),
    (["eval", "--checkpoint", "x"], probe.evaluate, "evaluate_checkpoint",
     probe.evaluate.EvalOptions(checkpoint=Path("x"))),
    (["predict", "a.png", "--checkpoint", "x"], probe.evaluate, "predict_checkpoint",
     probe.evaluate.PredictOptions(images=[Path("a.png")], checkpoint=Path("x"))),
    (["gradients", "--model", "packnet_b"], analyses.gradients, "run", analyses.gradients.GradientsConfig(models=["packnet_b"])),
    (["noise", "--model", "packnet_b"], analyses.noise, "run", analyses.noise.NoiseConfig(models=["packnet_b"])),
    (["collapse", "--model", "packnet_b"], analyses.collapse, "run", analyses.collapse.CollapseConfig(models=["packnet_b"])),
    (["fit", "--model", "packnet_b"], analyses.fit, "run", analyses.fit.FitConfig(models=["packnet_b"])),
    (["autoencoder", "--out", "o"], analyses.autoencoder, "run", analyses.autoencoder.AutoencoderConfig()),
    (["attribution", "--model", "packnet_b", "--out", "o"], analyses.attribution, "run",
     analyses.attribution.AttributionConfig(models=["packnet_b"])),
    (["complexity", "--out", "o"], analyses.complexity, "run", analyses.complexity.ComplexityConfig()),
    (["properties", "--out", "o"], probe.laws, "run_properties", probe.laws.PropertiesConfig()),
    (["study"], probe.study, "run_study", probe.study.StudyConfig()),
    (["check-model", "packnet_b"], analyses.model_check, "run", probe.models.check.CheckConfig("packnet_b")),
]


@pytest.mark.parametrize("argv, module, name, expected", CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_a_command_without_flags_builds_its_configs_defaults(monkeypatch, argv, module, name, expected) -> None:
    import cli

    _capture(monkeypatch, module, name)
    with pytest.raises(_Stop) as stop:
        cli.app(args=argv, prog_name="probe", standalone_mode=False)
    assert stop.value.args[0] == expected


def test_flags_reach_the_config_through_each_fields_parser(monkeypatch) -> None:
    import cli

    _capture(monkeypatch, probe.training, "train")
    with pytest.raises(_Stop) as stop:
        cli.app(args=["train", "--input-size", "32x64", "--model-option", "activation=leaky_relu",
                      "--model-option", "skips=false", "--data-option", "split_file=a.txt", "--no-augment",
                      "--channels-last", "--workers", "0"], prog_name="probe", standalone_mode=False)
    config = stop.value.args[0]
    assert config.input_size == (32, 64) and config.model_options == {"activation": "leaky_relu", "skips": False}
    assert config.dataset_options == {"split_file": "a.txt"} and config.augment is False
    assert config.channels_last is True and config.workers == 0


def test_the_train_commands_workers_default_is_the_configs() -> None:
    assert probe.training.TrainConfig().workers == probe.experiments.SeedStudyConfig().workers == 2


@pytest.mark.parametrize("command", [["models"], ["train"], ["gradients", "--model", "packnet_b"],
                                     ["autoencoder"], ["attribution", "--model", "packnet_b"], ["complexity"],
                                     ["experiment", "seed-study"]])
def test_width_is_checked_in_one_place_with_one_message(run_cli, tmp_path, command) -> None:
    res = run_cli(*command, "--width", "0", "--out", tmp_path) if command != ["models"] else run_cli(
        "models", "--width", "0")
    with pytest.raises(Exception) as expected:
        check_width(0.0)
    assert res.code == 2 and res.err.strip() == f"probe: error: {expected.value}"


def test_input_size_has_one_parser() -> None:
    assert parse_size("64x96") == (64, 96)
    for bad in ("64", "0x64", "ax3"):
        with pytest.raises(Exception, match="--input-size"):
            parse_size(bad)
