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
the seed, whose ground truth came at half the input resolution.  All runs use
the same seed, hence the same batches in the same order with the same
augmentation.  Each experiment is an ordinary training run in
``DIR/<id>/`` (resumable, reportable); ``DIR/experiments.json`` and
``DIR/experiments_loss.png`` compare them.

The experiments are independent runs, each seeded by its own config, so they can
run side by side (:mod:`probe.jobs`: ``--parallel N`` worker processes, one per GPU
on CUDA, or one submitit job each with ``--launcher slurm``) with the numbers of
one after another (on a CPU: with equal threads per run, ``--threads-per-run``).
:func:`study_differences` is that comparison: every number but the timings
(:data:`TIMING_FIELDS`) and where and how the runs ran.

>>> result = run_seed_study(SeedStudyConfig(quick=True, out=Path("runs/seed")))  # doctest: +SKIP
>>> [row.mean_epoch_loss for row in result.experiments]                        # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from probe.errors import ProbeError
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
    width_option,
)
from probe.registry import Registry
from probe.report.answers import QUESTIONS, Answer, finite, fmt
from probe.report.collect import Results
from probe.report.document import Block, Section, Table, figure_from_matplotlib
from probe.report.sections import SECTIONS, answer_section
from probe.results import Result, register_result
from probe.roles import BASELINE, UNDER_STUDY, ModelSelection, Roles, assign_roles, baselines_option
from probe.runs import run_folder_lock
from probe.seeding import check_seed
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
class SeedStudyConfig(ModelSelection):
    """The seed's hyper-parameters; ``quick`` shrinks widths, images and data to a CPU-minutes smoke run.

    With ``models`` (``--model SPEC``) the models under study train on the same batches as the seed's
    matrix, or, with ``baselines``, as those baselines only.
    """

    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    slim: bool = option(True, flag="--slim/--full", help="PackNetSlim01 or the full PackNet01")
    epochs: int = option(1, help="passes over the training split (seed: 1)")
    max_steps: int | None = option(None, help="cap every run at this many steps")
    batch_size: int = option(4, help="seed: 4")
    lr: float = option(1e-4, help="seed: 1e-4")
    width: float = width_option()
    input_size: tuple[int, int] | None = input_size_option()
    dataset_length: int | None = None
    device: str = device_option()
    seed: int = seed_option()
    workers: int = option(TrainConfig.workers, help="data-loading worker processes (0: main process)")
    precision: str | None = option(None, help="bf16|fp16|fp32 (default: bf16 on CUDA, fp32 on CPU)")
    checkpoint_every: int | None = option(
        None, help="also checkpoint every N steps (what a preempted SLURM job loses at most)"
    )
    quick: bool = option(False, flag="--quick", help="tiny widths, 64x96 synthetic images: a few CPU minutes")
    evaluate: bool = option(True, flag="--eval/--no-eval", help="score every run on the test split")
    eval_length: int | None = None
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
    out: Path = out_option(Path("runs/seed-study"))

    def validate(self) -> None:
        """Bad values fail here, before the first of the runs (each run's TrainConfig checks the rest)."""
        check_count("--epochs", self.epochs, MAX_EPOCHS)
        check_optional_count("--max-steps", self.max_steps, MAX_STEPS)
        check_count("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        check_optional_count("--dataset-length", self.dataset_length, MAX_ITEMS)
        check_optional_count("--eval-length", self.eval_length, MAX_ITEMS)
        check_positive_float("--lr", self.lr, what="a positive learning rate")
        check_workers(self.workers)
        check_width(self.width)
        check_input_size(self.input_size)
        check_seed(self.seed)
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
            eval_length=self.eval_length or 32,
            workers=0,
        )


@dataclass
class ExperimentEval:
    """A finished run scored on the test split (``probe eval``; the run's ``eval/eval.json`` has the rest)."""

    protocol: str
    n_images: int
    metrics: dict[str, float]  # pooled over pixels: abs_rel ... delta3


@dataclass
class ExperimentRow:
    """One experiment: what it trained, the seed's numbers beside ours, and its test-split scores."""

    id: str
    title: str
    seed_experiment: int | None  # the seed's experiment number (None: the DenseDepth baseline)
    model: str
    options: dict[str, Any]
    params: int
    steps: int
    mean_epoch_loss: float | None
    batch_loss_std: float | None
    first100_mean_loss: float | None
    final_loss: float | None
    seconds_per_epoch: float | None
    images_per_s: float | None
    loss_curve: list[float]
    seed_mean_loss: float | None  # what the seed reported (None where it aborted the run)
    seed_note: str
    run_dir: str
    eval: ExperimentEval | None  # None with --no-eval


@register_result
@dataclass
class SeedStudyResult(Result):
    """Per experiment: model, options, params, losses (mean, spread, first 100, curve), time, eval metrics."""

    name: ClassVar[str] = "experiments"
    # 2: launch (how the runs ran) and config.checkpoint_every; 3: roles, config.models/baselines/model_options
    schema_version: ClassVar[int] = 3
    config: SeedStudyConfig
    experiments: list[ExperimentRow]
    roles: Roles  # which trained models are under study and which are baselines
    launch: Launch = field(default_factory=Launch)

    def figures(self, out_dir: Path) -> list[Path]:
        return [plot_loss_curves(self.experiments, Path(out_dir) / "experiments_loss.png")]


def train_config_for(experiment: Experiment, config: SeedStudyConfig) -> TrainConfig:
    """The TrainConfig of one experiment: identical data, seed and hyper-parameters for every model."""
    run_dir = Path(config.out) / experiment.id
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
        device=config.device,
        seed=config.seed,
        workers=config.workers,
        precision=config.precision,
        checkpoint_every=config.checkpoint_every,
        out=run_dir,
        resume=has_checkpoint(run_dir),
    )


def evaluate_run(run_dir: Path, config: SeedStudyConfig) -> ExperimentEval:
    """Score a finished run on the dataset's test split (``probe eval``); writes ``run_dir/eval/eval.json``."""
    from probe.evaluate import EvalOptions, evaluate_checkpoint

    result = evaluate_checkpoint(
        EvalOptions(
            checkpoint=run_dir,
            out=run_dir / "eval",
            split="test",
            dataset_length=config.eval_length,
            batch_size=config.batch_size,
            device=config.device,
        )
    )
    return ExperimentEval(result.protocol, result.n_images, dict(result.metrics))


def run_seed_study(config: SeedStudyConfig, launch: Launch = Launch()) -> SeedStudyResult:
    """Train every experiment (resuming any that a previous call left unfinished) and compare them.

    With ``config.evaluate`` each finished run is also scored on the test
    split.  ``launch`` runs the experiments side by side (:mod:`probe.jobs`); the
    numbers do not depend on it.  Writes ``DIR/experiments.json`` and
    ``DIR/experiments_loss.png``.
    """
    cfg = config.resolved()
    experiments = cfg.experiments()
    for experiment in experiments:  # every flag checked before the folder is locked or written
        train_config_for(experiment, cfg).validate()
    launch.validate()
    check_preemptible(launch, cfg.checkpoint_every)
    with run_folder_lock(cfg.out, "experiment seed-study"):
        jobs = [Job(e.id, Path(cfg.out) / e.id, run_experiment, (e, cfg)) for e in experiments]
        rows = run_jobs(jobs, launch, device=cfg.device, out=Path(cfg.out), what="experiments")
        study = SeedStudyResult(config=cfg, experiments=rows, roles=cfg.experiment_roles(experiments), launch=launch)
        study.save(cfg.out)
        return study


def run_experiment(experiment: Experiment, cfg: SeedStudyConfig) -> ExperimentRow:
    """Train one experiment into ``DIR/<id>/`` (resuming its newest checkpoint) and score it: its row.

    A job of :func:`run_seed_study`; the TrainConfig is made here, in the process that
    trains, so a requeued job sees the checkpoints its earlier start wrote.
    """
    result = train(train_config_for(experiment, cfg))
    s = result.summary
    if s is None:
        raise ProbeError("experiment seed-study: runs one process per experiment; start it without torchrun")
    return ExperimentRow(
        id=experiment.id,
        title=experiment.title,
        seed_experiment=experiment.seed_number,
        model=experiment.model,
        options=experiment.options,
        params=s.params,
        steps=s.steps,
        mean_epoch_loss=s.mean_epoch_loss,
        batch_loss_std=s.batch_loss_std,
        first100_mean_loss=s.first100_mean_loss,
        final_loss=s.final_loss,
        seconds_per_epoch=s.seconds_per_epoch,
        images_per_s=s.images_per_s,
        loss_curve=s.loss_curve,
        seed_mean_loss=experiment.seed_mean_loss,
        seed_note=experiment.seed_note,
        run_dir=str(result.out),
        eval=evaluate_run(result.out, cfg) if cfg.evaluate else None,
    )


TIMING_FIELDS = ("seconds_per_epoch", "images_per_s")
"""Row fields that measure the machine, not the run: they differ between any two runs of one study."""
PLACE_FIELDS = ("out", "run_dir")
"""Where a study was written: compared relative to its folder."""


def study_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Where two ``experiments.json`` differ, beyond timings and place: ``[]`` when they agree.

    Every number is compared exactly (floats bit for bit): the config (but ``out``), and every
    row's losses, loss curve, parameters, steps and eval metrics.  Left out: :data:`TIMING_FIELDS`,
    the ``launch`` section (how the runs were run, the point of comparing) and the folders,
    whose run folders are compared by their names under ``out``.

    >>> row = {"id": "a", "run_dir": "x/a", "final_loss": 0.5, "images_per_s": 10.0}
    >>> study_differences({"config": {"out": "x"}, "experiments": [row]},
    ...                   {"config": {"out": "y"}, "experiments": [{**row, "run_dir": "y/a", "images_per_s": 3.0}]})
    []
    """

    def comparable(study: dict[str, Any]) -> dict[str, Any]:
        config = {k: v for k, v in study["config"].items() if k not in PLACE_FIELDS}
        rows = [
            {k: (Path(v).name if k == "run_dir" else v) for k, v in row.items() if k not in TIMING_FIELDS}
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


def plot_loss_curves(rows: list[ExperimentRow], path: Path) -> Path:
    """Per-batch loss (faint) and its moving average (bold) for every experiment."""
    import matplotlib.pyplot as plt

    from probe.plotting import save_figure

    fig, ax = plt.subplots(figsize=(9, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    longest = max((len(r.loss_curve) for r in rows), default=1)
    window = max(1, min(100, longest // 10))
    for i, row in enumerate(rows):
        curve = row.loss_curve
        steps = np.arange(1, len(curve) + 1)
        colour = colours[i % len(colours)]
        ax.plot(steps, curve, color=colour, alpha=0.2, linewidth=0.8)
        ax.plot(steps, moving_average(curve, window), color=colour, linewidth=2, label=f"{row.id} ({row.model})")
    ax.set_xlabel("step (batch)")
    ax.set_ylabel("DenseDepth loss")
    ax.set_title(f"Seed study: per-batch loss and {window}-batch moving average")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def print_seed_study(result: SeedStudyResult, console: Any = None) -> None:
    """The comparison table: our numbers next to what the seed reported."""
    from rich.console import Console
    from rich.table import Table

    def fmt(value: Any, spec: str = ".4f") -> str:
        return "-" if value is None else format(value, spec)

    table = Table(title="seed study (DenseDepth loss; lower is better)")
    for column in (
        "id",
        "model",
        "params",
        "mean loss",
        "batch std",
        "first 100",
        "s/epoch",
        "abs_rel",
        "delta1",
        "seed's loss",
    ):
        table.add_column(column, justify="left" if column in ("id", "model") else "right", no_wrap=True)
    for row in result.experiments:
        metrics = row.eval.metrics if row.eval is not None else {}
        table.add_row(
            row.id,
            row.model,
            fmt(row.params, ",d"),
            fmt(row.mean_epoch_loss),
            fmt(row.batch_loss_std),
            fmt(row.first100_mean_loss),
            fmt(row.seconds_per_epoch, ".1f"),
            fmt(metrics.get("abs_rel")),
            fmt(metrics.get("delta1")),
            fmt(row.seed_mean_loss, ".3f"),
        )
    (console or Console(width=max(140, Console().width))).print(table)


# -- the report: the experiment matrix, and the question that weighs cost against it -----------------------


@SECTIONS.register(
    "experiments", description="The seed's five experiments side by side", needs=(SeedStudyResult,), order=20
)
def experiments_section(results: Results) -> Section | None:
    import pandas as pd

    from probe.plotting import plt, sns

    doc = results.first(SeedStudyResult)
    if doc is None or not doc.experiments:
        return None
    rows = []
    for e in doc.experiments:
        metrics = e.eval.metrics if e.eval is not None else {}
        rows.append(
            {
                "experiment": e.id,
                "title": e.title,
                "model": e.model,
                **doc.roles.evidence(e.model),
                "params": e.params,
                "mean epoch loss": e.mean_epoch_loss,
                "seed reported (NYU, 1 epoch)": e.seed_mean_loss if e.seed_mean_loss is not None else e.seed_note,
                "per-batch loss std": e.batch_loss_std,
                "first-100-batch loss": e.first100_mean_loss,
                "time/epoch (s)": e.seconds_per_epoch,
                "abs_rel": metrics.get("abs_rel"),
                "rmse": metrics.get("rmse"),
                "delta1": metrics.get("delta1"),
            }
        )
    blocks: list[Block] = [Table(rows, "experiments.json")]
    frames = []
    for e in doc.experiments:
        curve = [v for v in e.loss_curve if math.isfinite(v)]
        if curve:
            s = pd.Series(curve)
            frames.append(
                pd.DataFrame(
                    {
                        "step": range(1, len(curve) + 1),
                        "loss": s,
                        "smoothed loss": s.rolling(max(1, len(curve) // 20), min_periods=1).mean(),
                        "experiment": e.id,
                    }
                )
            )
    if frames:
        df = pd.concat(frames)
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
        sns.lineplot(df, x="step", y="smoothed loss", hue="experiment", ax=axes[0])
        axes[0].set(xlabel="training step (batches)", ylabel="training loss (smoothed)")
        axes[0].legend(title="experiment (see table)", fontsize="small")
        std = df.groupby("experiment", sort=False)["loss"].std().reset_index()
        sns.barplot(std, x="loss", y="experiment", hue="experiment", legend=False, ax=axes[1])
        axes[1].set(xlabel="per-batch loss standard deviation", ylabel="")
        fig.tight_layout()
        blocks.append(
            figure_from_matplotlib(
                fig, "Loss curves and per-batch loss spread per experiment (ids as in the table above)", "curves"
            )
        )
    return Section("experiments", "The experiment matrix", blocks)


COST_RULE = (
    "Ratios of parameters, multiply-accumulates and forward+backward latency of each model under study to each "
    "baseline (in the seed's comparison: each PackNet model to DenseDepth) at the same input size "
    "(complexity.json), set against the mean training loss of the experiment matrix when it exists "
    "(experiments.json)."
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
        return Answer(
            question,
            "inconclusive",
            "A model under study and a baseline must both be in complexity.json to compare.",
            COST_RULE,
            evidence,
        )
    sentence = "; ".join(_cost_ratios(studied, base) for base in bases)
    experiments = results.first(SeedStudyResult)
    losses = _experiment_losses(experiments)
    if experiments is not None:
        base_losses = [v for k, v in losses.items() if experiments.roles.role_of(k) == BASELINE]
        studied_losses = [v for k, v in losses.items() if experiments.roles.under_study(k)]
        if base_losses and studied_losses:
            better = min(studied_losses) < min(base_losses)
            sentence += (
                f"; for that, its best mean training loss is {fmt(min(studied_losses))} against "
                f"{fmt(min(base_losses))} ({'better' if better else 'worse'})"
            )
    return Answer(question, "measured", sentence + ".", COST_RULE, evidence)


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


def _experiment_losses(doc: SeedStudyResult | None) -> dict[str, float]:
    """The best mean epoch loss of each model of the experiment matrix."""
    out: dict[str, float] = {}
    for e in doc.experiments if doc is not None else []:
        if e.mean_epoch_loss is not None and math.isfinite(e.mean_epoch_loss):
            out[e.model] = min(e.mean_epoch_loss, out.get(e.model, math.inf))
    return out


@SECTIONS.register("cost", description=COST_QUESTION, needs=(), order=70)
def cost_section(results: Results) -> Section | None:
    return answer_section("cost", COST_QUESTION, results, [])
