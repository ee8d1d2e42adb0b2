"""Train several models on identical batches while a hook watches: the runs behind gradients, noise and collapse.

Every model trains with the same seed, hence on the same batches in the same
order, with the seed's protocol (Adam, lr 1e-4, the DenseDepth loss) through
:func:`probe.training.train`.  :func:`train_with_hook` attaches a fresh hook to
each run and keeps only the hooks: the runs themselves go to a temporary folder.
Each run makes exactly ``steps`` optimizer steps, over as many passes over the
training split as they need (a result that records ``steps`` never describes fewer).
With ``checkpoint`` a *copy* of a finished run is continued instead
(:func:`continue_run`), so the user's run folder is never written.

>>> runs = TrainingRuns(models=["packnet_slim_b", "densedepth"], steps=20, width=0.0625,
...                     input_size=(64, 96), out=Path("runs/x"))              # doctest: +SKIP
>>> recorders = train_with_hook(runs, GradientRecorder, "gradients")        # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

import torch
import torch.nn as nn

from probe.device import resolve_device
from probe.errors import ProbeError
from probe.heldout import HeldOutSummary, held_out_dataset, held_out_score, run_mean_map
from probe.io import ensure_dir
from probe.limits import (
    MAX_ANALYSIS_STEPS,
    MAX_BATCH_SIZE,
    MAX_HELD_OUT_IMAGES,
    MAX_STEPS,
    check_count,
    check_input_size,
    check_positive_float,
    check_width,
)
from probe.memory import check_training_fits
from probe.models import list_models
from probe.models.spec import file_safe_name
from probe.options import (
    data_root_option,
    dataset_option,
    device_option,
    input_size_option,
    model_options_option,
    option,
    out_option,
    seed_option,
    seeds_option,
    width_option,
)
from probe.roles import ModelSelection, Roles, assign_roles, baselines_option
from probe.runs import run_folder_lock
from probe.seeding import check_seed, seed_folder, seed_list
from probe.training import TrainConfig, TrainHook, train
from probe.training.checkpoint import (
    build_recorded_model,
    copy_checkpoint,
    read_state,
    resolve_checkpoint,
    run_train_config,
)
from probe.training.loop import changed_fields


@dataclass
class TrainingRuns(ModelSelection):
    """Which models to train and how: the part of the config shared by the analyses that watch training.

    Every model (the ``--model``s, then the ``--baseline``s) trains with the same seed, hence on the
    same batches in the same order, with the seed's protocol (Adam, lr 1e-4 unless ``--lr``, the DenseDepth loss);
    ``--model-option`` reaches every model, ``MODEL:KEY=VALUE`` one of them.  With ``checkpoint`` a
    copy of that run is continued instead (:func:`continue_run`).
    """

    models: list[str] = option(
        default_factory=list,
        flag="--model",
        help="model under study: a zoo name or SPEC (repeat to compare on the same batches)",
    )
    baselines: list[str] = baselines_option()
    model_options: dict[str, Any] = model_options_option(scoped=True)
    checkpoint: Path | None = option(
        None, help="continue a copy of this run (folder or .safetensors) instead of --model"
    )
    steps: int = option(50, help="training steps per model")
    batch_size: int = option(4, help="training batch size (the seed's: 4)")
    lr: float = option(1e-4, help="Adam learning rate (the seed's: 1e-4; the study's CPU budgets: 3e-3)")
    width: float = width_option()
    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    input_size: tuple[int, int] | None = input_size_option()
    device: str = device_option()
    seed: int = seed_option()
    seeds: int | list[int] | None = seeds_option()
    eval_images: int = option(32, help="held-out test images each trained model is scored on (did it learn?)")
    out: Path = out_option(Path("runs"))

    def validate(self) -> None:
        """Raise a ProbeError naming the flag for any impossible value, before any work.

        Counts and sizes are bounded by :mod:`probe.limits`; each zoo model's training memory at
        the largest batch the analysis runs is estimated (:func:`probe.memory.check_training_fits`)
        and a configuration that cannot fit the free memory is refused here, before any allocation.
        """
        check_count("--steps", self.steps, MAX_ANALYSIS_STEPS, "each step's record stays in memory")
        check_count("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        check_positive_float("--lr", self.lr, what="a positive learning rate")
        check_count("--eval-images", self.eval_images, MAX_HELD_OUT_IMAGES)
        check_width(self.width)
        check_input_size(self.input_size)
        check_seed(self.seed)
        seed_list(self.seeds, self.seed)
        if self.checkpoint is not None and self.compared():
            raise ProbeError("--model/--checkpoint: give model names to train or one run to continue, not both")
        if self.checkpoint is None and not self.models:
            raise ProbeError("--model: give at least one model name (or --checkpoint RUN)")
        self.validate_models()
        if self.checkpoint is not None:  # a verified checkpoint and the config.json that rebuilds its model
            if len(seed_list(self.seeds, self.seed)) > 1:
                raise ProbeError("--seeds: a --checkpoint is one run (it continues with its own seed); give --model")
            run_dir = resolve_checkpoint(self.checkpoint).run_dir
            run_config = run_train_config(run_dir)
            if run_config["model"] in list_models():  # its options, checked where the file can be named
                with torch.device("meta"):
                    build_recorded_model(run_config, run_dir / "config.json")
        self.check_memory()

    def largest_batch(self) -> tuple[str, int]:
        """The flag and size of the largest batch a step runs backward on (an analysis that measures on
        bigger batches says so)."""
        return "--batch-size", self.batch_size

    def check_memory(self) -> None:
        """Refuse a zoo model whose training step at :meth:`largest_batch` cannot fit the device's free memory.

        User models (SPECs) are estimated by :func:`probe.training.train` itself, which may import them.
        """
        from probe.data import dataset_info
        from probe.device import resolve_device

        device = resolve_device(self.device)
        height, width = self.input_size or dataset_info(self.dataset).input_size
        flag, batch = self.largest_batch()
        for name in (m for m in self.compared() if m in list_models()):
            check_training_fits(
                name,
                input_size=(height, width),
                batch_size=batch,
                width=self.width,
                precision="bf16" if device.type == "cuda" else "fp32",  # TrainConfig.resolved's default
                device=device,
                flags=f"{flag} {batch} --input-size {height}x{width} --width {self.width:g}",
            )

    def trained_roles(self) -> Roles:
        """The roles of the runs :meth:`train_configs` trains (a continued run: its own model, by the default rules)."""
        if self.checkpoint is None:
            return self.roles()
        saved = TrainConfig.from_json(run_train_config(resolve_checkpoint(self.checkpoint).run_dir))
        return assign_roles([saved.model], options={saved.model: saved.model_options})

    def train_configs(self, workdir: Path) -> list[TrainConfig]:
        """One :class:`~probe.training.TrainConfig` per model, each training into its own folder under ``workdir``."""
        if self.checkpoint is not None:
            return [continue_run(self.checkpoint, workdir / "continued", steps=self.steps, device=self.device)]
        return [
            TrainConfig(
                model=name,
                model_options=self.options_for(name),
                width=self.width,
                dataset=self.dataset,
                data_root=self.data_root,
                input_size=self.input_size,
                epochs=None,  # exactly `steps` steps, over as many passes as they need
                max_steps=self.steps,
                batch_size=self.batch_size,
                lr=self.lr,
                device=self.device,
                seed=self.seed,
                out=workdir / file_safe_name(name),
            )
            for name in self.compared()
        ]


class ScoredHook(Protocol):
    """A hook that keeps the held-out score of the run it watched (every training probe does)."""

    held_out: HeldOutSummary | None


H = TypeVar("H", bound=TrainHook)


def train_with_hook(runs: TrainingRuns, make_hook: Callable[[], H], analysis: str) -> list[H]:
    """Train every run of ``runs`` with a fresh ``make_hook()`` attached; return the hooks, in order.

    After training, each run's model is scored on ``runs.eval_images`` held-out images against the constant
    predictor (:func:`score_model`), stored as ``hook.held_out``: whether the model learned decides whether a
    verdict may be drawn from it.  The training runs go to a temporary folder inside ``runs.out`` (deleted
    afterwards): the analysis keeps only its own JSON and figures.
    """
    runs.validate()
    out = ensure_dir(runs.out, "--out")
    hooks = []
    with run_folder_lock(out, analysis), tempfile.TemporaryDirectory(prefix=f".{analysis}-train-", dir=out) as tmp:
        for train_config in runs.train_configs(Path(tmp)):
            hook = make_hook()
            result = train(train_config, hooks=[hook])
            resumed = result.summary.resumed_from_step if result.summary is not None else None
            ran = result.steps - (resumed or 0)
            if ran != runs.steps:  # the result records runs.steps: never let it claim steps that did not run
                raise ProbeError(f"{analysis}: {train_config.model} trained {ran} steps, not the --steps {runs.steps}")
            if result.model is not None:
                hook.held_out = score_model(result.model, train_config, runs.eval_images)  # type: ignore[attr-defined]
            hooks.append(hook)
    return hooks


def score_model(model: nn.Module, config: TrainConfig, images: int | None) -> HeldOutSummary:
    """The held-out score (:mod:`probe.heldout`) of a model trained by ``config``, on its dataset's test split."""
    dataset = held_out_dataset(config.dataset, config.data_root, config.input_size, images)
    device = next(model.parameters()).device
    layout = run_mean_map(config)
    return held_out_score(model, dataset, batch_size=8, device=device, seed=config.seed, mean_map=layout).summary()


R = TypeVar("R")


def over_seeds(seeds: list[int], out: Path, device: str, run_one: Callable[[int, Path], R]) -> list[R]:
    """``run_one(seed, folder)`` for every seed: one seed writes into ``out`` (the caller saves), several into
    ``out/seed_<s>``, each saved there as an ordinary run folder (its result file, figures and config.json)."""
    results = []
    for seed in seeds:
        folder = seed_folder(out, seed, seeds)
        result = run_one(seed, folder)
        if len(seeds) > 1:
            result.save_run(folder, device=resolve_device(device), seed=seed)  # type: ignore[attr-defined]
        results.append(result)
    return results


C = TypeVar("C", bound=TrainingRuns)


def runs_over_seeds(config: C, run_one: Callable[[C], R]) -> list[R]:
    """:func:`over_seeds` for an analysis that trains: ``run_one`` gets the config of one seed (its own folder)."""
    seeds = seed_list(config.seeds, config.seed)

    def one(seed: int, folder: Path) -> Any:
        return run_one(replace(config, seed=seed, seeds=None, out=folder))

    return over_seeds(seeds, config.out, config.device, one)


def continue_run(checkpoint: Path, workdir: Path, *, steps: int, device: str) -> TrainConfig:
    """A config that resumes a *copy* of the run at ``checkpoint`` for ``steps`` more steps.

    The copy (config.json plus the verified checkpoint folder) goes to ``workdir``, so the
    user's run folder is never written; the optimiser state, RNG and batch order
    continue exactly where the run stopped.  ``checkpoint`` is anything
    :func:`~probe.training.checkpoint.resolve_checkpoint` accepts (a run folder, a
    ``checkpoints/step_N`` folder or its weights file).
    """
    found = resolve_checkpoint(checkpoint, with_state=True)
    saved = TrainConfig.from_json(run_train_config(found.run_dir))
    edited = changed_fields(read_state(found)["config"], saved)  # the checkpoint's own record must agree
    if edited:
        raise ProbeError(
            f"{found.run_dir / 'config.json'} (train section): {', '.join(edited)} differ from what the checkpoint "
            f"records ({found.state}); the run folder was edited or mixed with another run"
        )
    done = found.step or 0
    if done + steps > MAX_STEPS:
        raise ProbeError(
            f"--steps {steps}: the run at {checkpoint} has made {done:,} steps; continuing it would pass "
            f"{MAX_STEPS:,} steps in all"
        )
    copy_checkpoint(found, workdir)
    return replace(
        saved,
        out=workdir,
        resume=True,
        max_steps=done + steps,
        epochs=None,  # exactly `steps` more steps, over as many passes as they need
        device=device,
        precision=None,
        channels_last=None,
        checkpoint_every=None,
        tensorboard=False,
    )
