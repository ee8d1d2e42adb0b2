"""The main job: every analysis on one dataset, then the report (``probe study``).

A study is a list of registered steps run in order into one run folder::

    DIR/complexity.json      DIR/properties.json   DIR/experiments.json + DIR/<experiment>/...
    DIR/gradients.json       DIR/noise.json        DIR/collapse.json
    DIR/autoencoder.json     DIR/attribution.json  DIR/report.html

Two budgets exist: ``quick`` (tiny widths, small images, the synthetic data; a
2-core CPU finishes in minutes) and ``full`` (published widths and the dataset
protocol's resolution, meant for a GPU).  A step that finished in an earlier call
is not re-run unless ``force`` is given, so an interrupted study resumes.

``models`` (``--model SPEC``, repeatable) puts the user's own models under study: every step
compares them with ``baselines`` (``--baseline NAME``; default: the budget's zoo comparison, i.e.
the seed's matrix and its analysed models), on the same batches, and the report's questions
name them.  ``encoder_module`` also trains each model's encoder in the autoencoder step.

>>> from probe.study import StudyConfig, run_study
>>> run_study(StudyConfig(quick=True, out="runs/study"))   # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from probe.data import dataset_info, dataset_present
from probe.device import resolve_device
from probe.errors import DataError, ProbeError
from probe.io import ensure_dir
from probe.jobs import Launch
from probe.models import list_models
from probe.options import (
    data_root_option,
    dataset_option,
    device_option,
    model_options_option,
    option,
    out_option,
    seed_option,
    split_scoped_key,
)
from probe.progress import progress_bar
from probe.registry import Registry
from probe.results import Result
from probe.roles import BASELINE, ModelSelection
from probe.runs import prepare_run_dir, read_run_records, run_folder_lock
from probe.schema import encode
from probe.seeding import check_seed


@dataclass(frozen=True)
class Budget:
    """How big each step is. ``quick`` and ``full`` are the two registered budgets."""

    width: float
    input_size: tuple[int, int] | None  # None: the dataset protocol's size
    complexity_input: tuple[int, int]
    complexity_models: tuple[str, ...] | None  # None: every registered model
    complexity_repeats: int
    train_steps: int  # gradients / noise / collapse
    collapse_every: int
    noise_batches: tuple[int, int]
    experiment_length: int | None  # synthetic samples per seed-study epoch (None: dataset default)
    experiment_max_steps: int | None
    autoencoder_steps: int
    autoencoder_levels: tuple[int, ...]
    autoencoder_archs: tuple[str, ...] | None  # None: every registered architecture
    autoencoder_input: tuple[int, int]
    attribution_images: int
    property_examples: int
    analysed_models: tuple[str, ...] = ("packnet_b", "packnet_c", "densedepth")
    slim: bool = True


BUDGETS: dict[str, Budget] = {
    "quick": Budget(
        width=0.0625,
        input_size=(64, 96),
        complexity_input=(96, 320),
        complexity_models=("packnet_b", "packnet_slim_b", "densedepth"),
        complexity_repeats=1,
        train_steps=40,
        collapse_every=10,
        noise_batches=(2, 8),
        experiment_length=320,
        experiment_max_steps=None,
        autoencoder_steps=150,
        autoencoder_levels=(1, 2, 3),
        autoencoder_archs=("pack3d", "pack2d", "maxpool", "strided"),
        autoencoder_input=(64, 64),
        attribution_images=2,
        property_examples=200,
        analysed_models=("packnet_slim_b", "packnet_slim_c", "densedepth"),
    ),
    "full": Budget(
        width=1.0,
        input_size=None,
        complexity_input=(192, 640),
        complexity_models=None,
        complexity_repeats=10,
        train_steps=200,
        collapse_every=25,
        noise_batches=(4, 16),
        experiment_length=None,
        experiment_max_steps=None,
        autoencoder_steps=2000,
        autoencoder_levels=(1, 2, 3, 4, 5),
        autoencoder_archs=None,
        autoencoder_input=(128, 128),
        attribution_images=8,
        property_examples=2000,
        analysed_models=("packnet_slim_b", "packnet_slim_c", "densedepth"),
    ),
}


@dataclass
class StudyConfig(ModelSelection):
    """``probe study``: which data, which budget, which models, which steps, where."""

    quick: bool = option(False, flag="--quick", help="tiny widths and images: minutes on a 2-core CPU")
    budget_name: str | None = None  # overrides quick: any key of BUDGETS
    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    device: str = device_option()
    seed: int = seed_option()
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
    launch: Launch = field(default_factory=Launch)  # how the experiment step's runs run (probe.jobs; CLI: Launch)

    def validate(self) -> None:
        """Everything a study can check before hours of work: steps, budget, seed, models and the dataset's files."""
        for name in self.steps or []:
            STEPS.entry(name)
        if self.small and self.dataset != "synthetic":
            raise ProbeError(f"--quick: runs on the built-in synthetic data; got --dataset {self.dataset}")
        _ = self.budget  # an unknown budget name fails here
        check_seed(self.seed)
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
        keys = ("dataset", "budget_name", "quick", "models", "baselines", "model_options", "encoder_module")
        return {k: encode(getattr(self, k)) for k in keys}

    @property
    def budget(self) -> Budget:
        name = self.budget_name or ("quick" if self.quick else "full")
        if name not in BUDGETS:
            raise ProbeError(f"study budget: expected one of {', '.join(BUDGETS)}, got {name!r}")
        return BUDGETS[name]

    @property
    def small(self) -> bool:
        """Budgets other than ``full`` run on the synthetic data with few threads of work."""
        return (self.budget_name or ("quick" if self.quick else "full")) != "full"


@dataclass
class StepRecord:
    """One step of a study: whether it ran or reused an earlier result, how long it took, what it wrote."""

    name: str
    status: str  # "ran" | "reused"
    seconds: float
    files: list[str] = field(default_factory=list)


@dataclass
class StudyLog(Result):
    """``study.json``: the steps of the last ``probe study`` call, in order (its own log, not a report input)."""

    name: ClassVar[str] = "study"
    schema_version: ClassVar[int] = 1
    steps: list[StepRecord]


Step = Callable[[StudyConfig, Any], list[Path]]
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
    "experiments", description="the seed's five experiments against DenseDepth", produces="experiments.json"
)
def _experiments(config: StudyConfig, progress: Any) -> list[Path]:
    from probe.experiments import SeedStudyConfig, run_seed_study

    b = config.budget
    cfg = SeedStudyConfig(
        dataset=config.dataset,
        data_root=config.data_root,
        slim=b.slim,
        width=b.width,
        input_size=b.input_size,
        dataset_length=b.experiment_length if config.dataset == "synthetic" else None,
        max_steps=b.experiment_max_steps,
        device=config.device,
        seed=config.seed,
        workers=0 if config.small else 4,
        models=list(config.models),
        baselines=list(config.baselines),
        model_options=dict(config.model_options),
        out=config.out,
    )
    prepare_run_dir(config.out, "experiments", asdict(cfg), device=resolve_device(config.device), seed=config.seed)
    run_seed_study(cfg, config.launch)
    return [config.out / "experiments.json"]


def _training_runs(config: StudyConfig, analysis: str) -> dict[str, Any]:
    """The settings shared by the analyses that train the analysed models on identical batches."""
    b = config.budget
    models, baselines = config.comparison(b.analysed_models)
    return dict(
        models=models,
        baselines=baselines,
        model_options=dict(config.model_options),
        steps=b.train_steps,
        width=b.width,
        dataset=config.dataset,
        data_root=config.data_root,
        input_size=b.input_size,
        device=config.device,
        seed=config.seed,
        out=config.out / f"{analysis}_runs",
    )


@STEPS.register("gradients", description="per-layer gradient norms while training", produces="gradients.json")
def _gradients(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses import gradients

    return _save(gradients.run(gradients.GradientsConfig(**_training_runs(config, "gradients"))), config)


@STEPS.register("noise", description="gradient noise scale and per-batch loss spread", produces="noise.json")
def _noise(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses import noise

    small, big = config.budget.noise_batches
    cfg = noise.NoiseConfig(**_training_runs(config, "noise"), small_batch=small, big_batch=big)
    return _save(noise.run(cfg), config)


@STEPS.register("collapse", description="collapse of the prediction to the image mean", produces="collapse.json")
def _collapse(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses import collapse

    cfg = collapse.CollapseConfig(**_training_runs(config, "collapse"), every=config.budget.collapse_every)
    return _save(collapse.run(cfg), config)


@STEPS.register(
    "autoencoder", description="reconstruction through a bottleneck: packing vs pooling", produces="autoencoder.json"
)
def _autoencoder(config: StudyConfig, progress: Any) -> list[Path]:
    from analyses import autoencoder

    b = config.budget
    cfg = autoencoder.AutoencoderConfig(
        dataset=config.dataset,
        data_root=config.data_root,
        levels=list(b.autoencoder_levels),
        steps=b.autoencoder_steps,
        input_size=b.autoencoder_input,
        models=list(config.models) if config.encoder_module else [],
        encoder_module=config.encoder_module,
        model_options=_scoped_to(config, config.models) if config.encoder_module else {},
        device=config.device,
        seed=config.seed,
    )
    if b.autoencoder_archs:  # None: the config's default, every registered architecture
        cfg = replace(cfg, archs=list(b.autoencoder_archs))
    if config.small:
        cfg = replace(cfg, train_images=128, eval_images=16)
    return _save(autoencoder.run(cfg, progress), config)


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
        {**asdict(config), "budget": asdict(config.budget)},
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
                files = STEPS.get(name)(config, progress)
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
