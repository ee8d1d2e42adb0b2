"""The main job: every analysis on one dataset, then the report (``probe study``).

A study is a list of registered steps run in order into one run folder::

    DIR/complexity.json      DIR/properties.json   DIR/experiments.json + DIR/<experiment>/...
    DIR/gradients.json       DIR/noise.json        DIR/collapse.json
    DIR/fit.json + DIR/fit_runs/...                DIR/autoencoder.json
    DIR/attribution.json     DIR/report.html

Three budgets exist (:mod:`probe.budgets`): ``quick`` (a smoke test: every step
runs in minutes on a CPU, on networks too small to learn), ``standard`` (small
networks on small synthetic images trained until they learn, 3 seeds) and
``full`` (published widths and the dataset protocol's resolution, meant for a
GPU).  Every seed of the experiment matrix is an ordinary run folder; the
gradient, noise and collapse probes ride along inside the runs of the analysed
models, and their steps combine those files over seeds.  The fit step trains the
budget's pair (PackNetSlim B, DenseDepth) on their first N training images, so the
report can tell a model that cannot optimise from one that does not generalise; it
applies to generated datasets only and is recorded as skipped on the others.  A step
that finished in an earlier call is not re-run unless ``force`` is given, so an
interrupted study resumes.

``models`` (``--model SPEC``, repeatable) puts the user's own models under study: every step
compares them with ``baselines`` (``--baseline NAME``; default: the budget's zoo comparison, i.e.
the seed's matrix and its analysed models), on the same batches, and the report's questions
name them.  ``encoder_module`` also trains each model's encoder in the autoencoder step.

>>> from probe.study import StudyConfig, run_study
>>> run_study(StudyConfig(quick=True, out="runs/study"))   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch

from probe.budgets import BUDGETS, Budget, get_budget
from probe.data import dataset_info, dataset_present
from probe.device import resolve_device
from probe.errors import DataError, ProbeError
from probe.io import ensure_dir
from probe.jobs import Launch, available_cores
from probe.limits import MAX_EPOCHS
from probe.models import list_models
from probe.options import (
    data_root_option,
    dataset_option,
    device_option,
    model_options_option,
    option,
    out_option,
    seed_option,
    seeds_option,
    split_scoped_key,
)
from probe.progress import progress_bar
from probe.registry import Registry
from probe.results import Result
from probe.roles import BASELINE, ModelSelection
from probe.runs import prepare_run_dir, read_run_records, run_folder_lock
from probe.schema import encode
from probe.seeding import check_seed, seed_list

__all__ = ["BUDGETS", "STEPS", "Budget", "StepRecord", "StudyConfig", "StudyLog", "quick_config", "run_study"]


@dataclass
class StudyConfig(ModelSelection):
    """``probe study``: which data, which budget, which models, which steps, where."""

    quick: bool = option(False, flag="--quick", help="the quick budget (same as --budget quick)")
    budget_name: str | None = option(
        None,
        flag="--budget",
        help="quick (smoke test, minutes) | standard (every model learns; 45 min on 2 CPU cores) | full (GPU); "
        "default: full, or quick with --quick",
    )
    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    device: str = device_option()
    seed: int = seed_option()
    seeds: int | list[int] | None = seeds_option()  # None: the budget's number of seeds, from --seed on
    out: Path = out_option(Path("runs/study"))
    steps: list[str] | None = option(None, flag="--step", help="run only these steps (repeatable)")  # None: all
    force: bool = option(False, flag="--force", help="re-run steps whose results already exist")
    models: list[str] = option(
        default_factory=list,
        flag="--model",
        help="your model under study: a zoo name or SPEC (repeat); every step compares it with the baselines",
    )
    baselines: list[str] = option(
        default_factory=list,
        flag="--baseline",
        help="baseline the --model is compared with (repeat; default: the zoo comparison of the budget)",
    )
    model_options: dict[str, Any] = model_options_option(scoped=True)
    encoder_module: str | None = option(
        None, help="the --model's encoder (a submodule path such as encoder): the autoencoder step trains it too"
    )
    launch: Launch = field(default_factory=Launch)  # how the experiment, fit and autoencoder runs run (probe.jobs)

    def validate(self) -> None:
        """Everything a study can check before hours of work: steps, budget, seed, models and the dataset's files."""
        for name in self.steps or []:
            STEPS.entry(name)
        if self.quick and self.budget_name not in (None, "quick"):
            raise ProbeError(f"--quick: is the quick budget; got --budget {self.budget_name} too")
        _ = self.budget  # an unknown budget name fails here
        if self.small and self.dataset != "synthetic":
            flag = "--quick" if self.quick else f"--budget {self.budget.name}"
            raise ProbeError(f"{flag}: runs on the built-in synthetic data; got --dataset {self.dataset}")
        check_seed(self.seed)
        self.seed_list()
        if (self.baselines or self.model_options or self.encoder_module) and not self.models:
            raise ProbeError("--baseline/--model-option/--encoder-module: they apply to --model SPEC; give it too")
        if self.models:
            self.validate_models(width=self.budget.width)
        self.launch.validate()
        if not dataset_present(self.dataset, self.data_root):
            raise DataError(dataset_info(self.dataset).missing_root_message(self.data_root))

    def comparison(self, zoo: Sequence[str]) -> tuple[list[str], list[str]]:
        """(models, baselines) of a step whose zoo comparison is ``zoo``: the --model(s) against the baselines.

        Without --model the step compares ``zoo`` by the default roles (PackNet under study); without
        --baseline the --model(s) are compared with ``zoo``.
        """
        if not self.models:
            return list(zoo), []
        return list(self.models), list(self.baselines) or [m for m in zoo if m not in self.models]

    def study_record(self) -> dict[str, Any]:
        """What decides which results a study folder holds: the dataset, budget and models compared."""
        keys = ("dataset", "budget_name", "quick", "seeds", "models", "baselines", "model_options", "encoder_module")
        return {k: encode(getattr(self, k)) for k in keys}

    @property
    def budget(self) -> Budget:
        return get_budget(self.budget_name or ("quick" if self.quick else "full"))

    @property
    def small(self) -> bool:
        """Budgets other than ``full`` run on the synthetic data with few threads of work."""
        return self.budget.name != "full"

    def runs_launch(self) -> Launch:
        """How the experiment, fit and autoencoder steps' runs run: the launch flags as given; without them a
        CPU budget below ``full`` runs as many runs side by side as there are cores (up to 4, one thread each)."""
        launch = self.launch
        if launch.parallel is None and launch.launcher == "local" and self.small:
            if resolve_device(self.device).type == "cpu":
                cores = min(4, available_cores())
                return replace(launch, parallel=cores, threads=launch.threads or 1) if cores > 1 else launch
        return launch

    def seed_list(self) -> list[int]:
        """``--seeds`` where given, else the budget's number of seeds from ``--seed`` on."""
        return seed_list(self.seeds if self.seeds is not None else self.budget.seeds, self.seed)


@dataclass
class StepRecord:
    """One step of a study: whether it ran or reused an earlier result, how long it took, what it wrote."""

    name: str
    status: str  # "ran" | "reused" | "skipped" (the step does not apply to this study: ``reason`` says why)
    seconds: float
    files: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class StudyLog(Result):
    """``study.json``: the steps of the last ``probe study`` call, in order (its own log, not a report input)."""

    name: ClassVar[str] = "study"
    schema_version: ClassVar[int] = 2  # 2: a step may be skipped, with its reason
    steps: list[StepRecord]


Step = Callable[[StudyConfig, Any], list[Path]]


class StepSkipped(Exception):
    """Raised by a step that does not apply to this study (e.g. a check only generated datasets allow); the study
    records it as skipped with the message as its reason, and goes on with the next step."""


STEPS: Registry[Step] = Registry("study step")


def _save(result: Any, config: StudyConfig) -> list[Path]:
    return result.save_run(config.out, device=resolve_device(config.device), seed=config.seed)


@STEPS.register(
    "complexity", description="parameters, MACs, latency and memory of every model", produces="complexity.json"
)
def _complexity(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses import complexity

    b = config.budget
    models, baselines = config.comparison(b.complexity_models or list_models())  # None: every zoo depth model
    cfg = complexity.ComplexityConfig(
        models=models,
        baselines=baselines,
        model_options=dict(config.model_options),
        input_size=b.complexity_input,
        width=1.0,
        device=config.device,
        repeats=b.complexity_repeats,
        warmup=0 if config.small else None,
        seed=config.seed,
    )
    return _save(complexity.run(cfg, progress), config)


@STEPS.register("properties", description="pack/unpack laws under Hypothesis", produces="properties.json")
def _properties(config: StudyConfig, progress: Any) -> list[Path]:
    from probe import laws

    result = laws.run_properties(laws.PropertiesConfig(examples=config.budget.property_examples, seed=config.seed))
    return result.save_run(config.out, seed=config.seed)


@STEPS.register(
    "experiments",
    description="the seed's five experiments against DenseDepth, every seed; the probes ride along",
    produces="experiments.json",
)
def _experiments(config: StudyConfig, progress: Any) -> list[Path]:
    from probe.experiments import RideAlong, SeedStudyConfig, run_seed_study

    b = config.budget
    cfg = SeedStudyConfig(
        dataset=config.dataset,
        data_root=config.data_root,
        slim=b.slim,
        width=b.width,
        input_size=b.input_size,
        batch_size=b.batch_size,
        lr=b.lr,
        loss_scales=b.loss_scales,
        dataset_length=b.experiment_length if config.dataset == "synthetic" else None,
        epochs=_epochs(b, config.dataset),
        max_steps=b.experiment_steps,
        eval_images=b.eval_images,
        device=config.device,
        seed=config.seed,
        seeds=config.seed_list(),
        workers=b.workers,
        models=list(config.models),
        baselines=list(config.baselines),
        model_options=dict(config.model_options),
        ride_along=RideAlong(
            models=[m for part in config.comparison(b.analysed_models) for m in part],
            gradient_every=b.gradient_every,
            noise_every=b.noise_every,
            noise_batches=b.noise_batches,
            collapse_every=b.collapse_every,
            collapse_images=b.collapse_images,
        ),
        out=config.out,
    )
    prepare_run_dir(config.out, "experiments", asdict(cfg), device=resolve_device(config.device), seed=config.seed)
    run_seed_study(cfg, config.runs_launch())
    return [config.out / "experiments.json"]


def _epochs(b: Budget, dataset: str) -> int:
    """One epoch (the seed's protocol), or as many as a step budget needs over the synthetic epoch length."""
    if b.experiment_steps is None:
        return 1
    if b.experiment_length is None or dataset != "synthetic":
        return MAX_EPOCHS  # the step cap ends the run
    return max(1, math.ceil(b.experiment_steps * b.batch_size / b.experiment_length))


def _ride_along(config: StudyConfig, cls: Any) -> list[Path]:
    """Combine the ``cls`` files the probes wrote into the experiment runs (every analysed model, every seed)."""
    from probe.experiments import SeedStudyResult

    experiments = config.out / "experiments.json"
    if not experiments.is_file():
        raise ProbeError(
            f"study step {cls.name}: its probes ride along inside the experiment runs; run the "
            "experiments step first (--step experiments)"
        )
    matrix = SeedStudyResult.read(experiments)
    models = [
        model
        for row in matrix.experiments
        for run in row.runs
        if cls.name in run.probes
        for model in cls.read(Path(run.run_dir) / f"{cls.name}.json").models
    ]
    if not models:
        raise ProbeError(
            f"study step {cls.name}: no experiment run carries its probe; re-run the experiments "
            "step of this budget (--step experiments --force)"
        )
    b = config.budget
    settings = {
        "ride_along": "inside the experiment runs of the analysed models",
        "models": list(dict.fromkeys(m.name for m in models)),
        "seeds": config.seed_list(),
        "gradient_every": b.gradient_every,
        "noise_every": b.noise_every,
        "noise_batches": list(b.noise_batches),
        "collapse_every": b.collapse_every,
        "collapse_images": b.collapse_images,
    }
    return _save(cls.of(models, matrix.roles, settings), config)


@STEPS.register(
    "gradients", description="per-layer gradient norms, recorded inside the experiment runs", produces="gradients.json"
)
def _gradients(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses.gradients import GradientsResult

    return _ride_along(config, GradientsResult)


@STEPS.register(
    "noise", description="gradient noise scale and per-batch loss spread, inside the runs", produces="noise.json"
)
def _noise(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses.noise import NoiseResult

    return _ride_along(config, NoiseResult)


@STEPS.register(
    "collapse", description="collapse of the prediction to the image mean, inside the runs", produces="collapse.json"
)
def _collapse(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses.collapse import CollapseResult

    return _ride_along(config, CollapseResult)


@STEPS.register(
    "fit",
    description="can each model fit its own first N training images: optimisation apart from generalisation",
    produces="fit.json",
)
def _fit(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses import fit

    if dataset_info(config.dataset).needs_root:
        raise StepSkipped(
            f"fit trains on the first N items of a generated training split; --dataset {config.dataset} is read "
            "from files (run `probe fit` on the synthetic data)"
        )
    b = config.budget
    models, baselines = config.comparison(b.fit_models)
    cfg = fit.FitConfig(
        models=models,
        baselines=baselines,
        model_options=dict(config.model_options),
        images=list(b.fit_images),
        steps=b.fit_steps,
        batch_size=b.batch_size,
        lr=b.lr,
        loss_scales=b.loss_scales,
        width=b.width,
        dataset=config.dataset,
        data_root=config.data_root,
        input_size=b.input_size,
        test_images=b.fit_test_images,
        device=config.device,
        seed=config.seed,
        seeds=config.seed_list(),
        out=config.out / "fit_runs",
    )
    return _save(fit.run(cfg, progress, config.runs_launch()), config)


@STEPS.register(
    "autoencoder", description="reconstruction through a bottleneck: packing vs pooling", produces="autoencoder.json"
)
def _autoencoder(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses import autoencoder

    b = config.budget
    widths: dict[str, list[float]] = {}
    for arch, width in b.autoencoder_runs:
        widths.setdefault(arch, []).append(width)
    cfg = autoencoder.AutoencoderConfig(
        dataset=config.dataset,
        data_root=config.data_root,
        archs=list(widths),
        arch_widths=widths,
        levels=list(b.autoencoder_levels),
        steps=b.autoencoder_steps,
        batch_size=b.autoencoder_batch,
        lr=b.autoencoder_lr,
        input_size=b.autoencoder_input,
        train_images=b.autoencoder_train_images,
        eval_images=b.autoencoder_eval_images,
        models=list(config.models) if config.encoder_module else [],
        encoder_module=config.encoder_module,
        model_options=_scoped_to(config, config.models) if config.encoder_module else {},
        device=config.device,
        seed=config.seed,
        seeds=config.seed_list(),
    )
    return _save(autoencoder.run(cfg, progress, config.out / "autoencoder_seeds", config.runs_launch()), config)


@STEPS.register(
    "attribution", description="captum attribution and effective receptive fields", produces="attribution.json"
)
def _attribution(config: StudyConfig, progress: Any) -> list[Path]:
    """Attributes the models trained by the experiment step when it ran (else freshly built ones)."""
    from analyses import attribution
    from probe.experiments import SeedStudyResult

    b = config.budget
    experiments = config.out / "experiments.json"
    matrix = SeedStudyResult.read(experiments) if experiments.is_file() else None
    runs = [Path(e.run_dir) for e in matrix.experiments] if matrix is not None else []
    models, baselines = ([], []) if runs else config.comparison(b.analysed_models)
    cfg = attribution.AttributionConfig(
        models=models,
        baselines=baselines,
        model_options=dict(config.model_options),
        checkpoints=runs,
        checkpoint_baselines=[m.name for m in matrix.roles.of(BASELINE)] if matrix is not None else [],
        width=b.width,
        dataset=config.dataset,
        data_root=config.data_root,
        input_size=b.input_size,
        images=b.attribution_images,
        device=config.device,
        seed=config.seed,
    )
    return _save(attribution.run(cfg), config)


def _scoped_to(config: StudyConfig, models: list[str]) -> dict[str, Any]:
    """The study's --model-options that reach one of ``models`` (unscoped ones reach every --model)."""
    return {k: v for k, v in config.model_options.items() if split_scoped_key(k)[0] in (None, *models)}


def _produced(name: str, out: Path) -> Path:
    return out / STEPS.entry(name).meta["produces"]


def run_study(config: StudyConfig) -> list[StepRecord]:
    """Run the selected steps in order (skipping finished ones unless ``force``), then write the report."""
    config.validate()
    names = config.steps or STEPS.names()
    config.out = ensure_dir(config.out, "--out")
    with run_folder_lock(config.out, "study"):  # the whole study: a second one on this folder fails at once
        return _run_steps(config, names)


def _check_same_study(config: StudyConfig) -> None:
    """A folder's finished steps are reused only for the same dataset, budget and models (else --force)."""
    path = config.out / "config.json"
    record = read_run_records(path).get("study") if path.is_file() else None
    if record is None or config.force:
        return
    before, now = {k: record.config.get(k) for k in config.study_record()}, config.study_record()
    changed = [k for k in now if k in record.config and before[k] != now[k]]
    if changed:
        key = changed[0]
        raise ProbeError(
            f"--out {config.out}: holds a study with {key}={before[key]!r}, not {now[key]!r}; its results would be "
            "reused for the wrong models: choose another --out, or --force to run every step again"
        )


def _run_steps(config: StudyConfig, names: list[str]) -> list[StepRecord]:
    _check_same_study(config)
    prepare_run_dir(
        config.out,
        "study",
        {
            **asdict(config),
            "budget": asdict(config.budget),
            "seed_list": config.seed_list(),
            "parallel_runs": config.runs_launch().parallel or 1,
            "host": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        },
        device=resolve_device(config.device),
        seed=config.seed,
    )
    records: list[StepRecord] = []
    with progress_bar() as progress:
        task = progress.add_task("study", total=len(names) + 1)
        for name in names:
            progress.update(task, description=f"study: {name}")
            start = time.perf_counter()
            if _produced(name, config.out).is_file() and not config.force:
                records.append(StepRecord(name, "reused", 0.0, [str(_produced(name, config.out))]))
            else:
                try:
                    files = STEPS.get(name)(config, progress)
                except StepSkipped as skipped:
                    records.append(StepRecord(name, "skipped", time.perf_counter() - start, reason=str(skipped)))
                else:
                    records.append(StepRecord(name, "ran", time.perf_counter() - start, [str(p) for p in files]))
            StudyLog(records).save(config.out)
            progress.advance(task)
        progress.update(task, description="study: report")
        from probe.report.build import build_report

        build_report([config.out], config.out / "report.html")
        progress.advance(task)
    return records


def quick_config(**overrides: Any) -> StudyConfig:
    """The README's main job: the quick budget on the built-in data."""
    return replace(StudyConfig(quick=True), **overrides)
