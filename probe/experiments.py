"""The seed study's experiment matrix as one command: ``probe experiment seed-study``.

The seed trained each model for one epoch on NYU Depth v2 with Adam, lr 1e-4
and batch size 4, comparing the mean loss over the epoch:

==================  ===========================================  ==============================
id                  what                                         model (slim | full)
==================  ===========================================  ==============================
``densedepth``      DenseDepth, no pretraining (the baseline)    densedepth
``exp1_packnet_b``  PackNet version B (skips added)              packnet_slim_b | packnet_b
``exp2_packnet_a``  PackNet version A (skips concatenated)       packnet_slim_a | packnet_a
``exp3_leaky_relu`` leaky-ReLU depth heads instead of sigmoid    ... _b, activation=leaky_relu
``exp4_direct``     direct depth instead of inverse depth        ... _b, target=direct
``exp5_no_skips``   no skips (version C)                         packnet_slim_c | packnet_c
==================  ===========================================  ==============================

Every PackNet variant stops at half resolution (``output_scale="half"``) as in
the seed, whose ground truth came at half the input resolution.  On one seed,
every experiment sees the same batches in the same order with the same
augmentation; ``--seeds`` repeats the matrix per seed.  Each (experiment, seed)
is an ordinary training run in ``DIR/<id>/`` (one seed) or ``DIR/<id>/seed_<s>/``
(resumable, reportable), trained on one objective (the DenseDepth loss on the
finest output) and scored on held-out images against the per-image-median
constant predictor (:mod:`probe.heldout`); ``DIR/experiments.json`` records
each run and, per experiment, the held-out score over seeds and whether the
model learned, and ``DIR/experiments_loss.png`` draws the training losses.

The experiments are independent runs, each seeded by its own config, so they can
run side by side (:mod:`probe.jobs`: ``--parallel N`` worker processes, one per GPU
on CUDA, or one submitit job each with ``--launcher slurm``) with the numbers of
one after another (on a CPU: with equal threads per run, ``--threads-per-run``).
:func:`study_differences` is that comparison: every number but the timings
(:data:`TIMING_FIELDS`) and where and how the runs ran.

>>> result = run_seed_study(SeedStudyConfig(quick=True, seeds=2, out=Path("runs/seed")))  # doctest: +SKIP
>>> [row.learned.status for row in result.experiments]                                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from probe.errors import ProbeError
from probe.heldout import IMAGE_RULE, LEARNED_FRACTION, LEARNED_RULE, HeldOutSummary, Learned, learned_of
from probe.jobs import Job, Launch, check_preemptible, json_differences, run_jobs
from probe.limits import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_ITEMS,
    MAX_STEPS,
    check_count,
    check_input_size,
    check_optional_count,
    check_positive_float,
    check_width,
    check_workers,
)
from probe.losses import DEFAULT_LOSS_SCALES, check_loss_scales
from probe.models.spec import display_name, file_safe_name
from probe.options import (
    data_root_option,
    dataset_option,
    device_option,
    input_size_option,
    model_options_option,
    option,
    out_option,
    parse_name_list,
    seed_option,
    seeds_option,
    width_option,
)
from probe.registry import Registry
from probe.report.answers import QUESTIONS, Answer, finite, fmt, not_learned, shown, with_controls
from probe.report.collect import Results
from probe.report.document import Block, Paragraph, Section, Table, figure_from_matplotlib
from probe.report.sections import SECTIONS, answer_section
from probe.results import Result, register_result
from probe.roles import BASELINE, UNDER_STUDY, ModelSelection, Roles, assign_roles, baselines_option
from probe.runs import run_folder_lock
from probe.seeding import check_seed, seed_folder, seed_list
from probe.stats import Estimate, decide, paired_estimate, seed_estimate, seeds_or_images
from probe.training import TrainConfig, train
from probe.training.checkpoint import has_checkpoint


@dataclass(frozen=True)
class Experiment:
    """One row of the matrix: which model, with which options, and what the seed reported."""

    id: str
    title: str
    seed_number: int | None
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    seed_mean_loss: float | None = None
    seed_note: str = ""


ExperimentFactory = Callable[[bool], Experiment]
EXPERIMENTS: Registry[ExperimentFactory] = Registry("experiment")

_HALF = {"output_scale": "half"}


def _packnet(version: str, slim: bool) -> str:
    return f"packnet_{'slim_' if slim else ''}{version}"


def _define(
    id: str,
    title: str,
    seed_number: int | None,
    model: Callable[[bool], str],
    options: dict[str, Any],
    seed_mean_loss: float | None,
    seed_note: str,
) -> None:
    """Register an experiment; ``model(slim)`` names the network for the slim or full PackNet."""

    def factory(slim: bool) -> Experiment:
        return Experiment(id, title, seed_number, model(slim), dict(options), seed_mean_loss, seed_note)

    EXPERIMENTS.register(id, description=title)(factory)


_define(
    "densedepth",
    "DenseDepth (no pretraining), the baseline",
    None,
    lambda slim: "densedepth",
    {},
    0.401,
    "baseline: mean loss 0.401 over one NYU epoch",
)
_define(
    "exp1_packnet_b",
    "PackNet version B (skips added)",
    1,
    lambda slim: _packnet("b", slim),
    _HALF,
    0.612,
    "mean loss 0.612; early drop then slow; high batch-to-batch variance",
)
_define(
    "exp2_packnet_a",
    "PackNet version A (skips concatenated)",
    2,
    lambda slim: _packnet("a", slim),
    _HALF,
    0.623,
    "mean loss 0.623, comparable to version B",
)
_define(
    "exp3_leaky_relu",
    "PackNet B with leaky-ReLU depth heads",
    3,
    lambda slim: _packnet("b", slim),
    {**_HALF, "activation": "leaky_relu"},
    None,
    "aborted after ~30 min at about 0.66",
)
_define(
    "exp4_direct",
    "PackNet B predicting depth instead of inverse depth",
    4,
    lambda slim: _packnet("b", slim),
    {**_HALF, "target": "direct"},
    0.731,
    "mean loss 0.731, worse",
)
_define(
    "exp5_no_skips",
    "PackNet without skips (version C)",
    5,
    lambda slim: _packnet("c", slim),
    _HALF,
    None,
    "aborted after ~30 min with mean loss > 1.21",
)


def seed_study_experiments(slim: bool = True, only: list[str] | None = None) -> list[Experiment]:
    """The matrix in registration order (optionally a subset by id)."""
    names = only if only else EXPERIMENTS.names()
    return [EXPERIMENTS.build(name, slim) for name in names]


def model_experiment(model: str, role: str, options: dict[str, Any], slim: bool) -> Experiment:
    """One run of a model compared by ``--model``/``--baseline``.

    A baseline that is also the id of one of the seed's experiments (``densedepth``) is that experiment, with
    ``options`` added to its own; any other model trains with ``options``, its file-safe name as the id.
    """
    if role == BASELINE and model in EXPERIMENTS:
        seed = EXPERIMENTS.build(model, slim)
        return replace(seed, options={**seed.options, **options})
    return Experiment(file_safe_name(model), f"{display_name(model, options)} ({role})", None, model, dict(options))


@dataclass
class RideAlong:
    """The training probes that ride along inside the runs of ``models`` (each model's first experiment): their
    result files go into each run folder, and ``probe study`` combines them over seeds."""

    models: list[str]
    gradient_every: int
    noise_every: int
    noise_batches: tuple[int, int]
    collapse_every: int
    collapse_images: int


@dataclass
class SeedStudyConfig(ModelSelection):
    """The seed's hyper-parameters; ``quick`` shrinks widths, images and data to a CPU-minutes smoke run.

    With ``models`` (``--model SPEC``) the models under study train on the same batches as the seed's
    matrix, or, with ``baselines``, as those baselines only.  ``seeds`` repeats every run per seed.
    """

    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    slim: bool = option(True, flag="--slim/--full", help="PackNetSlim01 or the full PackNet01")
    epochs: int = option(1, help="passes over the training split (seed: 1)")
    max_steps: int | None = option(None, help="cap every run at this many steps")
    batch_size: int = option(4, help="seed: 4")
    lr: float = option(1e-4, help="seed: 1e-4")
    loss_scales: str = option(
        DEFAULT_LOSS_SCALES, help="finest (one objective for every model, the seed's) | all (PackNet's own)"
    )
    width: float = width_option()
    input_size: tuple[int, int] | None = input_size_option()
    dataset_length: int | None = None
    device: str = device_option()
    seed: int = seed_option()
    seeds: int | list[int] | None = seeds_option()
    workers: int = option(TrainConfig.workers, help="data-loading worker processes (0: main process)")
    precision: str | None = option(None, help="bf16|fp16|fp32 (default: bf16 on CUDA, fp32 on CPU)")
    checkpoint_every: int | None = option(
        None, help="also checkpoint every N steps (what a preempted SLURM job loses at most)"
    )
    quick: bool = option(False, flag="--quick", help="tiny widths, 64x96 synthetic images: a few CPU minutes")
    evaluate: bool = option(
        True, flag="--eval/--no-eval", help="score every run on held-out images against the constant predictor"
    )
    eval_images: int | None = option(
        None, help="held-out test images each run is scored on (default: the test split; --quick: 32)"
    )
    only: list[str] | None = option(
        None,
        parse=lambda text: parse_name_list(text, "--only", EXPERIMENTS.names()),
        help="comma-separated experiment ids (default: all)",
    )
    models: list[str] = option(
        default_factory=list,
        flag="--model",
        help="model under study (zoo name or SPEC, repeat): trained beside the seed's matrix, or with --baseline "
        "against those baselines only",
    )
    baselines: list[str] = baselines_option()
    model_options: dict[str, Any] = model_options_option(scoped=True)
    ride_along: RideAlong | None = None  # probes inside the runs (probe study); None: none
    out: Path = out_option(Path("runs/seed-study"))

    def validate(self) -> None:
        """Bad values fail here, before the first of the runs (each run's TrainConfig checks the rest)."""
        check_count("--epochs", self.epochs, MAX_EPOCHS)
        check_optional_count("--max-steps", self.max_steps, MAX_STEPS)
        check_count("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        check_optional_count("--dataset-length", self.dataset_length, MAX_ITEMS)
        check_optional_count("--eval-images", self.eval_images, MAX_ITEMS)
        check_positive_float("--lr", self.lr, what="a positive learning rate")
        check_workers(self.workers)
        check_width(self.width)
        check_input_size(self.input_size)
        check_seed(self.seed)
        seed_list(self.seeds, self.seed)
        check_loss_scales(self.loss_scales)
        if self.quick and self.dataset != "synthetic":
            raise ProbeError(f"--quick: uses the synthetic data; got --dataset {self.dataset}")
        for name in self.only or []:
            EXPERIMENTS.entry(name)
        if self.baselines and not self.models:
            raise ProbeError("--baseline: compares the --model(s) under study with it; give --model SPEC too")
        if self.models:
            self.validate_models()
        elif self.model_options:
            raise ProbeError("--model-option: reaches the --model(s) under study; the seed's matrix sets its own")

    def experiments(self) -> list[Experiment]:
        """The runs in order: the seed's matrix (unless --baseline), the baselines, then the models under study."""
        seed = [] if self.baselines else seed_study_experiments(self.slim, self.only)
        seed = [e for e in seed if e.model not in self.models]
        chosen = [model_experiment(b, BASELINE, self.options_for(b), self.slim) for b in self.baselines]
        chosen += [model_experiment(m, UNDER_STUDY, self.options_for(m), self.slim) for m in self.models]
        return seed + chosen

    def experiment_roles(self, experiments: list[Experiment]) -> Roles:
        """The roles of the trained models: the --model(s) and --baseline(s), or (none given) the seed's comparison."""
        others = list(dict.fromkeys(e.model for e in experiments if e.model not in self.models))
        if not self.models:
            return assign_roles(others)
        return assign_roles(self.models, others, {m: self.options_for(m) for m in self.models})

    def resolved(self) -> "SeedStudyConfig":
        """Apply ``quick``: width 1/16, 64x96 images, 96 synthetic training samples (24 steps), 32 test samples."""
        self.validate()
        if not self.quick:
            return self
        return replace(
            self,
            width=min(self.width, 0.0625),
            input_size=self.input_size or (64, 96),
            dataset_length=self.dataset_length or 96,
            eval_images=self.eval_images or 32,
            workers=0,
        )

    def seed_comparable(self) -> str | None:
        """None when these runs follow the seed's protocol (so its reported losses compare); else why not."""
        differences = [
            f"dataset {self.dataset} (seed: NYU Depth v2)" if self.dataset != "nyu" else "",
            f"width {self.width:g} (seed: 1)" if self.width != 1.0 else "",
            "a step cap" if self.max_steps is not None else "",
            f"{self.epochs} epochs (seed: 1)" if self.epochs != 1 else "",
            f"batch {self.batch_size} (seed: 4)" if self.batch_size != 4 else "",
            f"lr {self.lr:g} (seed: 1e-4)" if self.lr != 1e-4 else "",
            f"loss scales {self.loss_scales} (seed: finest)" if self.loss_scales != "finest" else "",
            f"input {self.input_size[0]}x{self.input_size[1]}" if self.input_size is not None else "",
        ]
        named = [d for d in differences if d]
        return "; ".join(named) if named else None


@dataclass
class ExperimentRun:
    """One seed of one experiment: an ordinary training run folder, its training losses and its held-out score."""

    seed: int
    run_dir: str
    steps: int
    mean_epoch_loss: float | None
    batch_loss_std: float | None
    first100_mean_loss: float | None
    final_loss: float | None
    seconds_per_epoch: float | None
    images_per_s: float | None
    loss_curve: list[float]
    held_out: HeldOutSummary | None  # None with --no-eval
    probes: list[str]  # result files the riding-along probes wrote into run_dir


@dataclass
class ExperimentRow:
    """One experiment over its seeds: what it trained and with which objective, the comparable held-out score
    with its interval, whether it learned, and the seed's reported numbers."""

    id: str
    title: str
    seed_experiment: int | None  # the seed's experiment number (None: the DenseDepth baseline)
    model: str
    options: dict[str, Any]
    params: int
    objective: str  # the training objective (loss, scales): training losses compare only under one objective
    seed_mean_loss: float | None  # what the seed reported (None where it aborted the run)
    seed_note: str
    runs: list[ExperimentRun]  # one per seed
    training_loss: Estimate | None  # mean epoch training loss over seeds
    held_out_loss: Estimate | None  # the DenseDepth loss on held-out images (probe.heldout), over seeds
    held_out_abs_rel: Estimate | None
    learned: Learned | None  # None with --no-eval

    @property
    def run_dir(self) -> str:
        """The first seed's run folder."""
        return self.runs[0].run_dir


@register_result
@dataclass
class SeedStudyResult(Result):
    """Per experiment: model, objective, runs per seed, held-out score and learned verdict over seeds."""

    name: ClassVar[str] = "experiments"
    # 2: launch (how the runs ran) and config.checkpoint_every; 3: roles, config.models/baselines/model_options;
    # 4: one run per seed with its held-out score, objective and the learned verdict over seeds;
    # 5: the held-out score's and the learned verdict's mean depth map fields (mean_map_abs_rel, image_ratio,
    # reads_image: probe.heldout.IMAGE_RULE)
    schema_version: ClassVar[int] = 5
    config: SeedStudyConfig
    experiments: list[ExperimentRow]
    roles: Roles  # which trained models are under study and which are baselines
    launch: Launch = field(default_factory=Launch)

    def figures(self, out_dir: Path) -> list[Path]:
        return [plot_loss_curves(self.experiments, Path(out_dir) / "experiments_loss.png")]


def train_config_for(
    experiment: Experiment, config: SeedStudyConfig, seed: int | None = None, out: Path | None = None
) -> TrainConfig:
    """The TrainConfig of one experiment on one seed: identical data, seed and hyper-parameters for every model."""
    run_dir = Path(out) if out is not None else Path(config.out) / experiment.id
    return TrainConfig(
        model=experiment.model,
        model_options=dict(experiment.options),
        width=config.width,
        dataset=config.dataset,
        data_root=config.data_root,
        input_size=config.input_size,
        dataset_length=config.dataset_length,
        epochs=config.epochs,
        max_steps=config.max_steps,
        batch_size=config.batch_size,
        lr=config.lr,
        loss="densedepth",
        loss_scales=config.loss_scales,
        device=config.device,
        seed=config.seed if seed is None else seed,
        workers=config.workers,
        precision=config.precision,
        checkpoint_every=config.checkpoint_every,
        out=run_dir,
        resume=has_checkpoint(run_dir),
    )


def probe_carriers(experiments: list[Experiment], models: list[str]) -> dict[str, str]:
    """experiment id -> model, for the first experiment of each of ``models`` (the runs the probes ride along in)."""
    carriers: dict[str, str] = {}
    for e in experiments:
        if e.model in models and e.model not in carriers.values():
            carriers[e.id] = e.model
    return carriers


def _ride_along_hooks(ride: RideAlong, folder: Path) -> list[Any]:
    """Fresh probes for one run, skipping those whose result file the run folder already holds (a reused run)."""
    from analyses.collapse import CollapseTracker
    from analyses.gradients import GradientRecorder
    from analyses.noise import NoiseProbe

    hooks: list[Any] = []
    if not (folder / "gradients.json").is_file():
        hooks.append(GradientRecorder(every=ride.gradient_every))
    if not (folder / "noise.json").is_file():
        hooks.append(NoiseProbe(*ride.noise_batches, every=ride.noise_every))
    if not (folder / "collapse.json").is_file():
        hooks.append(CollapseTracker(every=ride.collapse_every, n_images=ride.collapse_images))
    return hooks


def objective_of(summary: Any) -> str:
    """``"supervised densedepth loss on the finest output"``: what a run's training loss measures."""
    scales = "the finest output" if summary.loss_scales == "finest" else "every output scale (mean)"
    return f"{summary.objective} {summary.loss} loss on {scales}"


def run_seed_study(config: SeedStudyConfig, launch: Launch = Launch()) -> SeedStudyResult:
    """Train every experiment on every seed (resuming any run a previous call left unfinished) and compare them.

    With ``config.evaluate`` each run is scored on held-out images against the per-image-median constant
    predictor (:mod:`probe.heldout`).  ``launch`` runs the (experiment, seed) runs side by side
    (:mod:`probe.jobs`); the numbers do not depend on it.  Writes ``DIR/experiments.json`` and
    ``DIR/experiments_loss.png``; each run is ``DIR/<id>/`` (one seed) or ``DIR/<id>/seed_<s>/``.
    """
    cfg = config.resolved()
    experiments = cfg.experiments()
    for experiment in experiments:  # every flag checked before the folder is locked or written
        train_config_for(experiment, cfg).validate()
    launch.validate()
    check_preemptible(launch, cfg.checkpoint_every)
    with run_folder_lock(cfg.out, "experiment seed-study"):
        return _run_experiments(cfg, experiments, launch)


@dataclass
class RunTask:
    """One (experiment, seed) training run: what a worker process needs to train and score it."""

    config: SeedStudyConfig
    experiment: Experiment
    seed: int
    folder: Path
    carries_probes: bool


def train_run(task: RunTask) -> tuple[ExperimentRun, int, str]:
    """Train one experiment on one seed (with the riding-along probes when it carries them), score it on held-out
    images, and write the probes' files into its run folder: -> (the run, parameters, training objective)."""
    from probe.heldout import held_out_dataset, held_out_score, run_mean_map

    cfg, folder, seed = task.config, task.folder, task.seed
    ride = cfg.ride_along if task.carries_probes else None
    hooks = _ride_along_hooks(ride, folder) if ride is not None else []
    run_config = train_config_for(task.experiment, cfg, seed, folder)
    result = train(run_config, hooks=hooks)
    s = result.summary
    if s is None or result.model is None:
        raise ProbeError("experiment seed-study: runs one process per experiment; start it without torchrun")
    held_out = None
    if cfg.evaluate:
        test = held_out_dataset(cfg.dataset, cfg.data_root, cfg.input_size, cfg.eval_images)
        device = next(result.model.parameters()).device
        layout = run_mean_map(run_config)
        held_out = held_out_score(result.model, test, device=device, seed=seed, mean_map=layout).summary()
    for hook in hooks:  # JSON only: the study draws the figures once, over every seed
        hook.held_out = held_out
        hook.save(folder, figures=False)
    probes = [name for name in ("gradients", "noise", "collapse") if (folder / f"{name}.json").is_file()]
    run = ExperimentRun(
        seed=seed,
        run_dir=str(result.out),
        steps=s.steps,
        mean_epoch_loss=s.mean_epoch_loss,
        batch_loss_std=s.batch_loss_std,
        first100_mean_loss=s.first100_mean_loss,
        final_loss=s.final_loss,
        seconds_per_epoch=s.seconds_per_epoch,
        images_per_s=s.images_per_s,
        loss_curve=s.loss_curve,
        held_out=held_out,
        probes=probes if task.carries_probes else [],
    )
    return run, s.params, objective_of(s)


def _run_experiments(cfg: SeedStudyConfig, experiments: list[Experiment], launch: Launch) -> SeedStudyResult:
    seeds = seed_list(cfg.seeds, cfg.seed)
    carriers = probe_carriers(experiments, cfg.ride_along.models) if cfg.ride_along is not None else {}
    tasks = [
        RunTask(cfg, e, seed, seed_folder(Path(cfg.out) / e.id, seed, seeds), e.id in carriers)
        for e in experiments
        for seed in seeds
    ]
    jobs = [Job(str(t.folder.relative_to(cfg.out)), t.folder, train_run, (t,)) for t in tasks]
    trained = run_jobs(jobs, launch, device=cfg.device, out=Path(cfg.out), what="experiments")
    rows = []
    for e in experiments:
        mine = [t for t, task in zip(trained, tasks) if task.experiment.id == e.id]
        rows.append(experiment_row(e, mine[-1][1], mine[-1][2], [run for run, _, _ in mine]))
    study = SeedStudyResult(config=cfg, experiments=rows, roles=cfg.experiment_roles(experiments), launch=launch)
    study.save(cfg.out)
    return study


def experiment_row(experiment: Experiment, params: int, objective: str, runs: list[ExperimentRun]) -> ExperimentRow:
    """One experiment's runs summarised over seeds (a single seed's interval is a bootstrap over its images)."""
    scores = [r.held_out for r in runs]
    scored = [h for h in scores if h is not None]
    complete = len(scored) == len(runs)
    one = scored[0] if len(runs) == 1 and complete else None
    return ExperimentRow(
        id=experiment.id,
        title=experiment.title,
        seed_experiment=experiment.seed_number,
        model=experiment.model,
        options=experiment.options,
        params=params,
        objective=objective,
        seed_mean_loss=experiment.seed_mean_loss,
        seed_note=experiment.seed_note,
        runs=runs,
        training_loss=seed_estimate([r.mean_epoch_loss for r in runs]),
        held_out_loss=seeds_or_images([h.loss for h in scored], one.per_image_loss if one else None)
        if complete
        else None,
        held_out_abs_rel=seeds_or_images([h.abs_rel for h in scored], one.per_image_abs_rel if one else None)
        if complete
        else None,
        learned=learned_of([r.seed for r in runs], scored) if complete else None,
    )


TIMING_FIELDS = ("seconds_per_epoch", "images_per_s")
"""Run fields that measure the machine, not the run: they differ between any two runs of one study."""
PLACE_FIELDS = ("out", "run_dir")
"""Where a study was written: compared relative to its folder."""


def study_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Where two ``experiments.json`` differ, beyond timings and place: ``[]`` when they agree.

    Every number is compared exactly (floats bit for bit): the config (but ``out``), and every
    row's and run's losses, loss curve, parameters, steps and held-out scores.  Left out:
    :data:`TIMING_FIELDS`, the ``launch`` section (how the runs were run, the point of comparing)
    and the folders, whose run folders are compared by their paths under ``out``.

    >>> run = {"seed": 0, "run_dir": "x/a", "final_loss": 0.5, "images_per_s": 10.0}
    >>> study_differences({"config": {"out": "x"}, "experiments": [{"id": "a", "runs": [run]}]},
    ...                   {"config": {"out": "y"},
    ...                    "experiments": [{"id": "a", "runs": [{**run, "run_dir": "y/a", "images_per_s": 3.0}]}]})
    []
    """

    def place(path: str, out: str) -> str:
        return Path(path).relative_to(out).as_posix() if Path(path).is_relative_to(out) else Path(path).name

    def comparable(study: dict[str, Any]) -> dict[str, Any]:
        out = study["config"].get("out", "")
        config = {k: v for k, v in study["config"].items() if k not in PLACE_FIELDS}
        rows = [
            {
                **{k: v for k, v in row.items() if k != "runs"},
                "runs": [
                    {k: (place(v, out) if k == "run_dir" else v) for k, v in run.items() if k not in TIMING_FIELDS}
                    for run in row.get("runs", [])
                ],
            }
            for row in study["experiments"]
        ]
        return {"config": config, "experiments": rows}

    return json_differences(comparable(a), comparable(b))


def moving_average(values: list[float], window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start), same length as ``values``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return arr
    csum = np.concatenate([[0.0], np.cumsum(arr)])
    idx = np.arange(1, arr.size + 1)
    lo = np.maximum(0, idx - window)
    return (csum[idx] - csum[lo]) / (idx - lo)


def _mean_curve(row: ExperimentRow) -> np.ndarray:
    """The per-step training loss averaged over seeds (as long as the shortest run)."""
    curves = [np.asarray(r.loss_curve, dtype=np.float64) for r in row.runs if r.loss_curve]
    if not curves:
        return np.zeros(0)
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0)


def plot_loss_curves(rows: list[ExperimentRow], path: Path) -> Path:
    """Per-batch training loss (mean over seeds, faint) and its moving average (bold) for every experiment."""
    import matplotlib.pyplot as plt

    from probe.plotting import save_figure

    fig, ax = plt.subplots(figsize=(9, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    curves = [_mean_curve(r) for r in rows]
    longest = max((len(c) for c in curves), default=1)
    window = max(1, min(100, longest // 10))
    for i, (row, curve) in enumerate(zip(rows, curves)):
        steps = np.arange(1, len(curve) + 1)
        colour = colours[i % len(colours)]
        ax.plot(steps, curve, color=colour, alpha=0.2, linewidth=0.8)
        label = f"{row.id} ({row.model}, {len(row.runs)} seed(s))"
        ax.plot(steps, moving_average(list(curve), window), color=colour, linewidth=2, label=label)
    objectives = sorted({r.objective for r in rows})
    ax.set_xlabel("step (batch)")
    ax.set_ylabel("training loss" + (f": {objectives[0]}" if len(objectives) == 1 else " (objectives differ)"))
    ax.set_title(f"Seed study: per-batch training loss (mean over seeds) and {window}-batch moving average")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def print_seed_study(result: SeedStudyResult, console: Any = None) -> None:
    """The comparison table: the held-out score over seeds, whether each model learned, the training loss."""
    from rich.console import Console
    from rich.table import Table as RichTable

    table = RichTable(title="seed study: held-out DenseDepth loss and abs_rel (lower is better), over seeds")
    for column in ("id", "model", "params", "seeds", "held-out loss", "held-out abs_rel", "learned", "training loss"):
        table.add_column(column, justify="left" if column in ("id", "model", "learned") else "right", no_wrap=True)
    for row in result.experiments:
        table.add_row(
            row.id,
            row.model,
            format(row.params, ",d"),
            str(len(row.runs)),
            shown(row.held_out_loss),
            shown(row.held_out_abs_rel),
            row.learned.describe() if row.learned else "not scored",
            shown(row.training_loss),
        )
    (console or Console(width=max(160, Console().width))).print(table)
    reason = result.config.seed_comparable()
    if reason is not None:
        (console or Console()).print(f"The seed's NYU losses (0.612, 0.401) do not compare with these runs: {reason}.")


# -- the report: the experiment matrix, and the question that weighs cost against it -----------------------

EXPERIMENTS_NOTE = (
    "Every model is compared on one held-out score computed identically for all (probe.heldout: the DenseDepth "
    "loss and abs_rel of the eval-mode finest output in metres, clipped to the protocol's depth range). "
    f"Learned: {LEARNED_RULE}. Reads the image: {IMAGE_RULE}."
)


def _one_objective(doc: SeedStudyResult) -> str | None:
    objectives = {e.objective for e in doc.experiments}
    return objectives.pop() if len(objectives) == 1 else None


@SECTIONS.register(
    "experiments", description="The seed's five experiments side by side", needs=(SeedStudyResult,), order=20
)
def experiments_section(results: Results) -> Section | None:
    import pandas as pd

    from probe.plotting import IntervalPanel, interval_figure, plt, sns

    doc = results.first(SeedStudyResult)
    if doc is None or not doc.experiments:
        return None
    objective = _one_objective(doc)
    seed_reason = doc.config.seed_comparable()
    rows = []
    for e in doc.experiments:
        row: dict[str, Any] = {
            "experiment": e.id,
            "model": e.model,
            **doc.roles.evidence(e.model),
            "params": e.params,
            "seeds": len(e.runs),
            "held-out loss": shown(e.held_out_loss),
            "held-out abs_rel": shown(e.held_out_abs_rel),
            "abs_rel / constant": shown(e.learned.ratio) if e.learned else "not scored",
            "scale-matched / constant": shown(e.learned.scale_matched_ratio) if e.learned else "not scored",
            "learned": e.learned.status if e.learned else "not scored",
            "scale-matched / mean depth map": (
                shown(e.learned.image_ratio) if e.learned and e.learned.image_ratio else "not scored"
            ),
            "reads the image": (e.learned.reads_image.verdict if e.learned and e.learned.reads_image else "not scored"),
        }
        if objective is None:
            row["training objective"] = e.objective
        else:
            row["training loss (mean epoch)"] = shown(e.training_loss)
        if seed_reason is None:
            row["seed reported (NYU, 1 epoch)"] = e.seed_mean_loss if e.seed_mean_loss is not None else e.seed_note
        rows.append(row)
    notes = [
        EXPERIMENTS_NOTE,
        f"Every experiment trained on one objective ({objective}), so their training losses compare too."
        if objective is not None
        else "The experiments trained on different objectives: their training losses are not compared.",
        "The seed's reported NYU losses (0.612 PackNet B, 0.401 DenseDepth) are shown next to these runs."
        if seed_reason is None
        else f"The seed's reported NYU losses (0.612 PackNet B, 0.401 DenseDepth) are not compared with these "
        f"runs: they differ from the seed's protocol in {seed_reason}.",
    ]
    blocks: list[Block] = [Paragraph(" ".join(notes)), Table(rows, "experiments.json (± : 95% interval)")]
    scored = [e for e in doc.experiments if e.learned is not None]
    if scored:
        fig = interval_figure(
            [
                IntervalPanel(
                    [(e.id, e.model, e.learned.ratio) for e in scored if e.learned],
                    "held-out abs_rel / constant predictor's (dashed: learned threshold)",
                    LEARNED_FRACTION,
                ),
                IntervalPanel(
                    [(e.id, e.model, e.learned.scale_matched_ratio) for e in scored if e.learned],
                    "scale-matched abs_rel / constant predictor's",
                    LEARNED_FRACTION,
                ),
            ]
        )
        blocks.append(
            figure_from_matplotlib(
                fig, "Did each model learn? 95% intervals (x: seeds); left of the dashed line: learned", "learned"
            )
        )
    frames = []
    for e in doc.experiments if objective is not None else []:
        for run in e.runs:
            series = pd.Series(run.loss_curve, dtype=float)
            if series.notna().any():
                frames.append(
                    pd.DataFrame(
                        {
                            "step": range(1, len(series) + 1),
                            "smoothed loss": series.rolling(max(1, len(series) // 20), min_periods=1).mean(),
                            "experiment": e.id,
                        }
                    )
                )
    if frames:
        fig, ax = plt.subplots(figsize=(9, 4))
        sns.lineplot(pd.concat(frames), x="step", y="smoothed loss", hue="experiment", errorbar=("pi", 100), ax=ax)
        ax.set(xlabel="training step (batches)", ylabel=f"training loss ({objective})")
        blocks.append(
            figure_from_matplotlib(
                fig, "Training loss curves, one objective for every model: mean over seeds, band = range", "curves"
            )
        )
    return Section("experiments", "The experiment matrix", blocks)


COST_RULE = (
    "Ratios of parameters, multiply-accumulates and forward+backward latency of each model under study to each "
    "baseline (in the seed's comparison: each PackNet model to DenseDepth) at the same input size "
    "(complexity.json), set against the held-out DenseDepth loss of the experiment matrix when it exists "
    "(experiments.json): the judged experiment under study with the lowest held-out loss against the judged "
    "baseline experiment with the lowest, as a paired difference over seeds with a 95% Student t interval, drawn "
    "only from models that learned."
)
COST_QUESTION = "What does the extra capacity cost?"


def cost_question(roles: Roles) -> str:
    """The seed's wording for its own comparison; else the models under study against the baselines."""
    if roles.seed_comparison:
        return COST_QUESTION
    verb = "do" if roles.plural(UNDER_STUDY) else "does"
    return f"What {verb} {roles.phrase(UNDER_STUDY)} cost against {roles.phrase(BASELINE) or 'no baseline'}?"


@QUESTIONS.register("cost", description=COST_QUESTION, order=50)
def capacity_cost(results: Results) -> Answer | None:
    """Registered here, not with the complexity analysis: it weighs complexity.json against experiments.json."""
    from analyses.complexity import ComplexityResult

    doc = results.first(ComplexityResult)
    if doc is None or not doc.models:
        return None
    models, roles = doc.models, doc.roles
    question = cost_question(roles)
    rule = with_controls(COST_RULE, "learned")
    bases = [m for m in models if roles.role_of(m.name) == BASELINE]
    evidence = [
        {
            "model": m.name,
            **roles.evidence(m.name),
            "params": m.params,
            "MACs": fmt(m.macs),
            "fwd+bwd latency (ms)": fmt(m.latency.forward_backward_ms),
        }
        for m in models
    ]
    studied = [m for m in models if roles.under_study(m.name)]
    if not bases or not studied:
        sentence = "A model under study and a baseline must both be in complexity.json to compare."
        return Answer(question, "inconclusive", sentence, rule, evidence)
    sentence = "; ".join(_cost_ratios(studied, base) for base in bases)
    sentence += _held_out_comparison(results.first(SeedStudyResult))
    return Answer(question, "measured", sentence + ".", rule, evidence)


def _cost_ratios(studied: list[Any], base: Any) -> str:
    """Each model's size, compute and step latency as multiples of ``base``'s, in one clause ending "of <base>"."""
    parts = []
    for m in studied:
        p = m.params / max(base.params, 1)
        c = m.macs / max(base.macs, 1)
        lb, lm = finite(base.latency.forward_backward_ms), finite(m.latency.forward_backward_ms)
        lat = f", {_times(lm / lb)}x the training-step latency" if lb and lm else ""
        parts.append(f"{m.name} has {_times(p)}x the parameters and {_times(c)}x the MACs{lat}")
    return "; ".join(parts) + f" of {base.name}"


def _times(ratio: float) -> str:
    """A ratio for "N x the ...": one decimal from 1 up, two significant digits below (0.02x, not 0.0x)."""
    return f"{ratio:.1f}" if ratio >= 0.95 else f"{ratio:.2g}"


def _held_out_comparison(doc: SeedStudyResult | None) -> str:
    """``"; for that, ..."``: the best judged experiment under study's held-out loss against the best judged
    baseline's, paired over seeds (or why they are not compared)."""
    if doc is None:
        return ""
    scored = [e for e in doc.experiments if e.held_out_loss is not None and e.learned is not None]
    bases = [e for e in scored if doc.roles.role_of(e.model) == BASELINE]
    studied = [e for e in scored if doc.roles.under_study(e.model)]
    if not bases or not studied:
        return "; the experiment matrix has no held-out score of both a model under study and a baseline"
    judged_bases = [e for e in bases if not_learned(e.id, e.learned) is None]
    judged = [e for e in studied if not_learned(e.id, e.learned) is None]
    if not judged_bases:
        reasons = "; ".join(g for g in (not_learned(e.id, e.learned) for e in bases) if g)
        return f"; the held-out scores are not compared, because {reasons}"
    if not judged:
        statuses = ", ".join(f"{e.id} {e.learned.status if e.learned else 'not scored'}" for e in studied)
        return f"; the held-out scores are not compared, because no experiment under study learned ({statuses})"

    def held_out_loss(e: ExperimentRow) -> float:
        return e.held_out_loss.mean if e.held_out_loss is not None else math.inf

    best, base = min(judged, key=held_out_loss), min(judged_bases, key=held_out_loss)
    mine = {r.seed: r.held_out.loss for r in best.runs if r.held_out}
    theirs = {r.seed: r.held_out.loss for r in base.runs if r.held_out}
    seeds = [s for s in mine if s in theirs]
    difference = paired_estimate([mine[s] for s in seeds], [theirs[s] for s in seeds]) if seeds else None
    verdict = decide(difference, above="worse", below="better")
    return (
        f"; for that, the best judged experiment under study ({best.id}) has a held-out DenseDepth loss of "
        f"{shown(best.held_out_loss)} against {base.id}'s {shown(base.held_out_loss)} ({verdict.sentence})"
    )


@SECTIONS.register("cost", description=COST_QUESTION, needs=(), order=70)
def cost_section(results: Results) -> Section | None:
    return answer_section("cost", COST_QUESTION, results, [])
