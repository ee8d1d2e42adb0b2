"""The analyses that watch training run exactly the steps they record, over as many epochs as needed, or refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyses import collapse, gradients, noise
from analyses.training_runs import TrainingRuns, continue_run, train_with_hook
from probe.data import synthetic
from probe.errors import ProbeError
from probe.limits import MAX_STEPS
from probe.training import TrainConfig, TrainResult, train

TINY = dict(models=["packnet_slim_b"], width=0.0625, input_size=(16, 16), batch_size=2, device="cpu")


@pytest.fixture
def four_items(monkeypatch):
    """The synthetic splits shrunk to 4 items: 2 steps per epoch at batch 2."""
    monkeypatch.setitem(synthetic.DEFAULT_LENGTH, "train", 4)
    monkeypatch.setitem(synthetic.DEFAULT_LENGTH, "test", 4)


def test_gradients_records_every_step_asked_across_epochs(four_items, tmp_path) -> None:
    result = gradients.run(gradients.GradientsConfig(**TINY, steps=5, out=tmp_path))
    assert result.models[0].steps == [1, 2, 3, 4, 5]  # three epochs; one epoch (2 steps) before the fix


def test_collapse_measures_up_to_the_last_step_asked(four_items, tmp_path) -> None:
    result = collapse.run(collapse.CollapseConfig(**TINY, steps=5, every=2, n_images=2, out=tmp_path))
    model = result.models[0]
    assert [h.step for h in model.history] == [0, 2, 4, 5] and model.source == "trained 5 steps from initialisation"


def test_noise_sees_every_step_asked(four_items, tmp_path) -> None:
    config = noise.NoiseConfig(**TINY, steps=5, small_batch=1, big_batch=2, every=2, out=tmp_path)
    assert noise.run(config).models[0].per_step_loss.step == [1, 2, 3, 4, 5]


def test_a_training_run_with_epochs_none_makes_exactly_max_steps(tmp_path) -> None:
    config = TrainConfig(model="packnet_slim_b", width=0.0625, input_size=(16, 16), dataset_length=3, batch_size=2,
                         epochs=None, max_steps=7, device="cpu", workers=0, out=tmp_path)
    summary = train(config).summary
    assert summary is not None and summary.steps == 7 and len(summary.epochs) == 4  # 2 steps an epoch, 3 items
    with pytest.raises(ProbeError, match="--epochs"):
        TrainConfig(epochs=None).validate()


def test_a_batch_larger_than_the_split_is_refused_before_training(tmp_path) -> None:
    config = TrainConfig(model="packnet_slim_b", width=0.0625, input_size=(16, 16), dataset_length=3, batch_size=4,
                         max_steps=1, device="cpu", workers=0, out=tmp_path / "run")
    with pytest.raises(ProbeError, match=r"--batch-size 4: the 'synthetic' train split has only 3 items"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_a_run_that_made_fewer_steps_than_asked_is_never_recorded(monkeypatch, tmp_path) -> None:
    import analyses.training_runs as training_runs

    monkeypatch.setattr(training_runs, "train", lambda config, hooks: TrainResult(tmp_path, 2, None, tmp_path))
    with pytest.raises(ProbeError, match="trained 2 steps, not the --steps 5"):
        train_with_hook(TrainingRuns(**TINY, steps=5, out=tmp_path), lambda: None, "gradients")  # type: ignore


def test_continuing_a_run_asks_for_exactly_the_steps_more(trained_run, tmp_path) -> None:
    config = continue_run(trained_run, tmp_path / "copy", steps=3, device="cpu")
    assert config.epochs is None and config.max_steps == 1 + 3 and config.resume
    with pytest.raises(ProbeError, match="--steps"):
        continue_run(trained_run, tmp_path / "copy2", steps=MAX_STEPS, device="cpu")


@pytest.mark.parametrize("field, value, flag", [
    ("steps", 2**70, "--steps"), ("steps", 10**6, "--steps"), ("batch_size", 2**70, "--batch-size"),
    ("input_size", (100_000, 100_000), "--input-size"), ("width", 1e6, "--width"),
])
def test_flags_are_bounded_before_any_work(tmp_path: Path, field, value, flag) -> None:
    with pytest.raises(ProbeError, match=flag):
        TrainingRuns(**{**TINY, field: value, "out": tmp_path}).validate()


def test_a_model_that_cannot_fit_is_refused_by_the_memory_estimate(tmp_path) -> None:
    runs = TrainingRuns(models=["packnet_b"], input_size=(16_000, 16_000), device="cpu", out=tmp_path)
    with pytest.raises(ProbeError, match=r"--batch-size 4 --input-size 16000x16000 --width 1: training packnet_b needs"):
        runs.validate()
    big_batch = noise.NoiseConfig(models=["packnet_slim_b"], width=0.0625, input_size=(2048, 2048), batch_size=1,
                                  small_batch=1, big_batch=65_536, device="cpu", out=tmp_path)
    with pytest.raises(ProbeError, match="--big-batch 65536 --input-size 2048x2048"):  # the measurements' batch
        big_batch.validate()
