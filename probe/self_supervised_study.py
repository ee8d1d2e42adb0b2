"""The self-supervised experiment matrix: PackNet and DenseDepth trained from video, with and without the
velocity loss, under velocity-sensor noise, over seeds; each run scored with and without median scaling.

This is PackNet's own regime (packnet-sfm, CVPR 2020): depth and pose learnt
from frames by photometric reprojection, metric scale from the speed.  For
every model and seed the matrix trains:

- one run without the velocity loss (``velocity_weight = 0``: depth up to scale), and
- one run with the velocity loss (``config.velocity_weight``, packnet-sfm's 0.1) per
  velocity-noise level (:class:`NoiseLevel`: additive Gaussian std, bias, dropout,
  applied to the reported speed of the training split only).

Each run is an ordinary ``probe train`` run folder (``DIR/<run id>/``,
resumable) scored on the clean test split by
:func:`probe.evaluate_scale.evaluate_scale`.  The result holds every run
(:class:`SelfSupervisedRun`) and, per condition (model, velocity weight,
noise), the mean, standard deviation and 95 % t-interval over seeds of the
numbers that answer the two questions: "does the velocity loss recover metric
scale?" (``scale_ratio``, ``scale_error``) and "does PackNet beat DenseDepth in
its own regime?" (``abs_rel_median_scaled``, ``abs_rel_metric``).

>>> config = SelfSupervisedStudyConfig(models=("packnet_b", "densedepth"), seeds=(0, 1, 2),
...                                    noise_levels=(NoiseLevel(), NoiseLevel(std=0.2)), out=Path("runs/ssl"))
>>> result = run_self_supervised_study(config)                          # doctest: +SKIP
>>> [(c.model, c.velocity_weight, c.noise.label, c.scale_ratio.mean) for c in result.conditions]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

from probe.data import dataset_info, get_dataset
from probe.errors import ProbeError
from probe.evaluate_scale import ScaleEvaluation, evaluate_scale
from probe.jobs import Job, Launch, run_jobs
from probe.models import list_models
from probe.results import Result
from probe.seeding import check_seed
from probe.training import TrainConfig, load_checkpoint, read_metrics, train
from probe.training.checkpoint import has_checkpoint

__all__ = [
    "ConditionSummary",
    "Interval",
    "NoiseLevel",
    "SelfSupervisedRun",
    "SelfSupervisedStudyConfig",
    "SelfSupervisedStudyResult",
    "run_self_supervised_study",
    "study_runs",
]

PACKNET_VELOCITY_WEIGHT = 0.1


@dataclass(frozen=True)
class NoiseLevel:
    """Faults of the speed sensor: additive Gaussian ``std`` and ``bias`` (m/s), ``dropout`` probability."""

    std: float = 0.0
    bias: float = 0.0
    dropout: float = 0.0

    @property
    def label(self) -> str:
        parts = [
            f"std{self.std:g}" if self.std else "",
            f"bias{self.bias:+g}" if self.bias else "",
            f"drop{self.dropout:g}" if self.dropout else "",
        ]
        return "_".join(p for p in parts if p) or "clean"

    def dataset_options(self) -> dict[str, float]:
        return {"velocity_noise": self.std, "velocity_bias": self.bias, "velocity_dropout": self.dropout}


@dataclass
class SelfSupervisedStudyConfig:
    """The matrix and the training budget shared by every run (identical data, seeds and steps for all models)."""

    models: tuple[str, ...] = ("packnet_b", "densedepth")
    seeds: tuple[int, ...] = (0, 1, 2)
    velocity_weight: float = PACKNET_VELOCITY_WEIGHT
    include_no_velocity: bool = True  # the run without the velocity loss, per model and seed
    smoothness_weight: float = 1e-3
    noise_levels: tuple[NoiseLevel, ...] = (NoiseLevel(),)
    dataset: str = "synthetic_video"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    width: float = 1.0
    pose_width: float = 1.0
    pose_lr: float | None = None
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_size: tuple[int, int] | None = None
    dataset_length: int | None = None
    eval_length: int | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 4
    lr: float = 2e-4
    device: str = "auto"
    workers: int = 0
    precision: str | None = None
    out: Path = Path("runs/self-supervised")

    def validate(self) -> None:
        """One-line ProbeErrors for a matrix that cannot run, before any training."""
        if not self.models or not self.seeds:
            raise ProbeError("self-supervised study: models and seeds must each be non-empty")
        if not self.noise_levels and not self.include_no_velocity:
            raise ProbeError("self-supervised study: no run left (no noise level and include_no_velocity=False)")
        known = list_models()
        for model in self.models:
            if model not in known:
                raise ProbeError(f"--model {model}: not a depth model; expected one of {', '.join(known)}")
        for seed in self.seeds:
            check_seed(seed)
        if not self.velocity_weight > 0:
            raise ProbeError(
                f"--velocity-weight: the study compares with and without it; expected > 0, got {self.velocity_weight}"
            )
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.noise_levels)) != len(self.noise_levels):
            raise ProbeError("self-supervised study: seeds and noise levels must be distinct")
        dataset_info(self.dataset)
        if self.eval_length is not None and dataset_info(self.dataset).needs_root:
            raise ProbeError("--eval-length: only for generated datasets")


@dataclass(frozen=True)
class Interval:
    """Mean, standard deviation (n-1) and two-sided 95 % t-interval of one number over seeds."""

    mean: float
    std: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Interval":
        values = [v for v in values if v is not None and math.isfinite(v)]
        if not values:
            return cls(math.nan, math.nan, math.nan, math.nan, 0)
        mean = statistics.fmean(values)
        if len(values) == 1:
            return cls(mean, math.nan, math.nan, math.nan, 1)
        std = statistics.stdev(values)
        half = _t95(len(values) - 1) * std / math.sqrt(len(values))
        return cls(mean, std, mean - half, mean + half, len(values))


def _t95(dof: int) -> float:
    """Two-sided 95 % Student-t quantile (exact table up to 10 degrees of freedom, then the normal's 1.96+)."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
    return table.get(dof, 1.96 + 2.4 / dof)


@dataclass
class SelfSupervisedRun:
    """One trained run and its scores (scale evaluation on the clean test split)."""

    id: str
    model: str
    seed: int
    velocity_weight: float
    noise: NoiseLevel
    params: int
    steps: int
    seconds: float
    reprojection_first: float
    reprojection_last: float
    pose_scale_last: float | None
    scale: ScaleEvaluation
    run_dir: str

    @property
    def condition(self) -> tuple[str, float, NoiseLevel]:
        return self.model, self.velocity_weight, self.noise


@dataclass
class ConditionSummary:
    """One condition (model, velocity weight, noise) over seeds."""

    model: str
    velocity_weight: float
    noise: NoiseLevel
    seeds: list[int]
    scale_ratio: Interval  # per run: the median over test images of median(gt) / median(pred)
    scale_error: Interval  # |scale_ratio - 1|
    within_10_percent: Interval  # per run: fraction of test images whose ratio is within 10 % of 1
    abs_rel_metric: Interval  # no scaling
    abs_rel_median_scaled: Interval
    delta1_median_scaled: Interval
    constant_abs_rel: Interval  # the median-scaled constant predictor


def summarise(runs: list[SelfSupervisedRun]) -> list[ConditionSummary]:
    """One :class:`ConditionSummary` per condition, in the order conditions first appear."""
    order: list[tuple[str, float, NoiseLevel]] = []
    for run in runs:
        if run.condition not in order:
            order.append(run.condition)

    def over(group: list[SelfSupervisedRun], get: Callable[[SelfSupervisedRun], float]) -> Interval:
        return Interval.of([get(r) for r in group])

    out = []
    for model, weight, noise in order:
        group = [r for r in runs if r.condition == (model, weight, noise)]
        out.append(
            ConditionSummary(
                model=model,
                velocity_weight=weight,
                noise=noise,
                seeds=[r.seed for r in group],
                scale_ratio=over(group, lambda r: r.scale.ratio["median"]),
                scale_error=over(group, lambda r: r.scale.scale_error),
                within_10_percent=over(group, lambda r: r.scale.ratio["within_10_percent"]),
                abs_rel_metric=over(group, lambda r: r.scale.metrics["abs_rel"]),
                abs_rel_median_scaled=over(group, lambda r: r.scale.metrics_median_scaled["abs_rel"]),
                delta1_median_scaled=over(group, lambda r: r.scale.metrics_median_scaled["delta1"]),
                constant_abs_rel=over(group, lambda r: r.scale.constant_median_scaled["abs_rel"]),
            )
        )
    return out


@dataclass
class SelfSupervisedStudyResult(Result):
    """Every run and the per-condition summaries; ``save(dir)`` writes ``dir/self_supervised.json``."""

    name: ClassVar[str] = "self_supervised"
    schema_version: ClassVar[int] = 1

    config: SelfSupervisedStudyConfig
    runs: list[SelfSupervisedRun]
    conditions: list[ConditionSummary]

    def condition(self, model: str, velocity_weight: float, noise: NoiseLevel = NoiseLevel()) -> ConditionSummary:
        """The summary of one condition (ProbeError if the matrix did not hold it)."""
        for c in self.conditions:
            if (c.model, c.velocity_weight, c.noise) == (model, velocity_weight, noise):
                return c
        raise ProbeError(
            f"self-supervised study: no condition {model}, velocity weight {velocity_weight}, noise {noise.label}"
        )


@dataclass(frozen=True)
class PlannedRun:
    """One cell of the matrix before it runs: its id and its training configuration."""

    id: str
    model: str
    seed: int
    velocity_weight: float
    noise: NoiseLevel
    train: TrainConfig


def study_runs(config: SelfSupervisedStudyConfig) -> list[PlannedRun]:
    """The matrix in order: per model, per seed, the run without velocity then one per noise level."""
    config.validate()
    planned = []
    for model in config.models:
        for seed in config.seeds:
            cells = [(0.0, NoiseLevel())] if config.include_no_velocity else []
            cells += [(config.velocity_weight, n) for n in config.noise_levels]
            for weight, noise in cells:
                run_id = f"{model}_{'velocity_' + noise.label if weight > 0 else 'no_velocity'}_seed{seed}"
                run_dir = Path(config.out) / run_id
                options = {**config.dataset_options, **(noise.dataset_options() if weight > 0 else {})}
                train_config = TrainConfig(
                    model=model,
                    model_options=dict(config.model_options.get(model, {})),
                    width=config.width,
                    dataset=config.dataset,
                    input_size=config.input_size,
                    dataset_length=config.dataset_length,
                    dataset_options=options,
                    epochs=config.epochs,
                    max_steps=config.max_steps,
                    batch_size=config.batch_size,
                    lr=config.lr,
                    device=config.device,
                    seed=seed,
                    workers=config.workers,
                    precision=config.precision,
                    objective="self_supervised",
                    velocity_weight=weight,
                    smoothness_weight=config.smoothness_weight,
                    pose_width=config.pose_width,
                    pose_lr=config.pose_lr,
                    out=run_dir,
                    resume=has_checkpoint(run_dir),
                )
                planned.append(PlannedRun(run_id, model, seed, weight, noise, train_config))
    return planned


def _run_one(plan: PlannedRun, config: SelfSupervisedStudyConfig) -> SelfSupervisedRun:
    """Train one cell (resuming the checkpoints of an earlier start, found here where it trains) and score it."""
    result = train(replace(plan.train, resume=has_checkpoint(plan.train.out)))
    summary = result.summary
    if summary is None:
        raise ProbeError("self-supervised study: runs one process per training run; start it without torchrun")
    records = read_metrics(result.out / "metrics.jsonl")
    reprojection = [r["loss_reprojection"] for r in records]
    window = max(1, min(10, len(reprojection) // 5))
    model, _ = load_checkpoint(result.out, device=_device(config))
    options = {k: v for k, v in config.dataset_options.items()}
    if config.eval_length is not None:
        options["length"] = config.eval_length
    test = get_dataset(config.dataset, split="test", input_size=config.input_size, **options)
    scale = evaluate_scale(model, test, batch_size=config.batch_size, device=_device(config))
    scale.save(result.out / "eval")
    return SelfSupervisedRun(
        id=plan.id,
        model=plan.model,
        seed=plan.seed,
        velocity_weight=plan.velocity_weight,
        noise=plan.noise,
        params=summary.params,
        steps=summary.steps,
        seconds=summary.seconds,
        reprojection_first=statistics.fmean(reprojection[:window]),
        reprojection_last=statistics.fmean(reprojection[-window:]),
        pose_scale_last=records[-1].get("loss_pose_scale") if records else None,
        scale=scale,
        run_dir=str(result.out),
    )


def _device(config: SelfSupervisedStudyConfig) -> Any:
    from probe.device import resolve_device

    return resolve_device(config.device)


def run_self_supervised_study(
    config: SelfSupervisedStudyConfig,
    on_run: Callable[[SelfSupervisedRun], None] | None = None,
    launch: Launch = Launch(),
) -> SelfSupervisedStudyResult:
    """Train and score every cell of the matrix (resuming unfinished runs), then summarise over seeds.

    Writes ``DIR/<run id>/`` per run (with ``eval/scale.json``) and
    ``DIR/self_supervised.json``; ``on_run`` is called after each run (progress), in the
    matrix's order.  ``launch`` runs the cells side by side (:mod:`probe.jobs`: worker
    processes, SLURM jobs); each cell is seeded by its own config, so the numbers do not
    depend on it (on a CPU: with equal threads per run).
    """
    planned = study_runs(config)
    for plan in planned:  # every training config is checked before the first run starts
        plan.train.validate()
    launch.validate()
    jobs = [Job(plan.id, plan.train.out, _run_one, (plan, config)) for plan in planned]
    runs: list[SelfSupervisedRun] = []
    if launch.in_process:  # one by one, reporting each as it ends
        for job in jobs:
            runs.extend(run_jobs([job], launch))
            if on_run is not None:
                on_run(runs[-1])
    else:
        runs = run_jobs(jobs, launch, device=config.device, out=Path(config.out), what="self-supervised runs")
        if on_run is not None:
            for run in runs:
                on_run(run)
    result = SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs))
    result.save(config.out)
    return result
