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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

from probe.data import dataset_info, get_dataset
from probe.errors import ProbeError
from probe.evaluate_pose import PoseEvaluation, evaluate_pose
from probe.evaluate_scale import ScaleEvaluation, evaluate_scale
from probe.io import ensure_dir, write_json
from probe.models import build_model, list_models
from probe.progress import progress_bar
from probe.seeding import check_seed
from probe.training import TrainConfig, load_checkpoint, read_metrics, train
from probe.training.checkpoint import has_checkpoint, latest_checkpoint, read_state

__all__ = ["ConditionSummary", "Interval", "NoiseLevel", "SelfSupervisedRun", "SelfSupervisedStudyConfig",
           "SelfSupervisedStudyResult", "parse_noise_levels", "plot_scale_vs_noise", "print_self_supervised_study",
           "run_self_supervised_study", "study_config", "study_runs"]

PACKNET_VELOCITY_WEIGHT = 0.1


@dataclass(frozen=True)
class NoiseLevel:
    """Faults of the speed sensor: additive Gaussian ``std`` and ``bias`` (m/s), ``dropout`` probability."""

    std: float = 0.0
    bias: float = 0.0
    dropout: float = 0.0

    @property
    def label(self) -> str:
        parts = [f"std{self.std:g}" if self.std else "", f"bias{self.bias:+g}" if self.bias else "",
                 f"drop{self.dropout:g}" if self.dropout else ""]
        return "_".join(p for p in parts if p) or "clean"

    def dataset_options(self) -> dict[str, float]:
        return {"velocity_noise": self.std, "velocity_bias": self.bias, "velocity_dropout": self.dropout}


def parse_noise_levels(text: str, flag: str = "--velocity-noise") -> tuple[NoiseLevel, ...]:
    """``"0,0.2,b-0.1,d0.5"`` -> clean, Gaussian std 0.2 m/s, bias -0.1 m/s, dropout 0.5 ('' -> none).

    A plain number is the Gaussian std (0: clean), ``bB`` a bias in m/s, ``dP`` a dropout probability.
    """
    levels = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        kind, number = (token[0], token[1:]) if token[0] in "bd" else ("s", token)
        try:
            value = float(number)
        except ValueError:
            raise ProbeError(f"{flag}: {token!r} is not a noise level; expected e.g. 0,0.2,b-0.1,d0.5 (std, bias, "
                             "dropout)") from None
        bad = (not math.isfinite(value) or (kind == "s" and value < 0) or (kind == "d" and not 0 <= value <= 1))
        if bad:
            raise ProbeError(f"{flag}: {token!r} is out of range (std >= 0 m/s, finite bias, dropout in [0, 1])")
        levels.append(NoiseLevel(std=value) if kind == "s" else NoiseLevel(bias=value) if kind == "b"
                      else NoiseLevel(dropout=value))
    return tuple(levels)


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
            raise ProbeError(f"--velocity-weight: the study compares with and without it; expected > 0, "
                             f"got {self.velocity_weight}")
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.noise_levels)) != len(self.noise_levels):
            raise ProbeError("self-supervised study: seeds and noise levels must be distinct")
        dataset_info(self.dataset)
        if self.eval_length is not None and dataset_info(self.dataset).needs_root:
            raise ProbeError("--eval-length: only for generated datasets")


#: The CPU recipe (``probe experiment self-supervised --quick``, ``bench/self_supervised.py``): what the README's
#: "What a CPU run shows" measured.  PackNet's own regime, driving (street video at 10 frames/s, 0.5-1.5 m between
#: frames), tiny widths at 64x96.  The pose learning rate is 3x the depth's: PoseNet's 0.01 output scaling makes
#: Adam grow a translation by about 1e-3 m per step at lr 1e-3, too slow to reach metres in 800 steps.  The
#: smoothness weight is 10x packnet-sfm's 0.001, which let the depth copy image texture in so short a run.
QUICK: dict[str, Any] = dict(dataset="synthetic_video_outdoor", width=0.125, pose_width=0.5, input_size=(64, 96),
                             max_steps=800, batch_size=4, lr=1e-3, pose_lr=3e-3, smoothness_weight=0.01,
                             eval_length=64, workers=0)


def study_config(*, quick: bool = False, out: Path = Path("runs/self-supervised"), **given: Any) -> SelfSupervisedStudyConfig:
    """A checked config from command-line values: :data:`QUICK` when ``quick``, then ``given`` on top.

    ``given`` holds config fields; text forms are parsed here: ``seeds="0,1,2"``,
    ``noise_levels="0,0.2,b0.1"`` (:func:`parse_noise_levels`), ``input_size="64x96"``,
    ``dataset_options=["fps=5"]``, ``models`` as a list.  Without a dataset length,
    a generated dataset is made long enough for ``max_steps`` (one epoch).
    """
    from probe.options import parse_size
    from probe.training.config import parse_model_options

    values: dict[str, Any] = {**(QUICK if quick else {}), **given}
    unknown = sorted(set(values) - set(SelfSupervisedStudyConfig.__dataclass_fields__))
    if unknown:
        raise ProbeError(f"self-supervised study: unknown setting(s) {', '.join(unknown)}")
    if isinstance(values.get("seeds"), str):
        try:
            values["seeds"] = tuple(int(v) for v in values["seeds"].split(",") if v.strip())
        except ValueError:
            raise ProbeError(f"--seeds: expected comma-separated integers like 0,1,2, got {values['seeds']!r}") from None
    if isinstance(values.get("noise_levels"), str):
        values["noise_levels"] = parse_noise_levels(values["noise_levels"])
    if isinstance(values.get("input_size"), str):
        values["input_size"] = parse_size(values["input_size"])
    if isinstance(values.get("dataset_options"), (list, tuple)):
        values["dataset_options"] = parse_model_options(list(values["dataset_options"]), flag="--data-option",
                                                        example="fps=5")
    if "models" in values:
        values["models"] = tuple(values["models"])
    config = SelfSupervisedStudyConfig(**values, out=Path(out))
    if config.max_steps is not None and config.dataset_length is None and not dataset_info(config.dataset).needs_root:
        config.dataset_length = config.max_steps * config.batch_size * max(1, config.epochs)
    config.validate()
    return config


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


    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Interval":
        """Read back :func:`dataclasses.asdict` output; JSON's null (a non-finite number) becomes NaN."""
        return cls(*(math.nan if data[k] is None else float(data[k]) for k in ("mean", "std", "low", "high")),
                   int(data["n"]))


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
    pose: PoseEvaluation | None = None  # PoseNet against the exact poses (datasets that have them)

    @property
    def condition(self) -> tuple[str, float, NoiseLevel]:
        return self.model, self.velocity_weight, self.noise

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "scale"}, "noise": asdict(self.noise),
                "noise_label": self.noise.label, "scale": self.scale.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SelfSupervisedRun":
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["noise"] = NoiseLevel(**data["noise"])
        values["scale"] = ScaleEvaluation.from_json(data["scale"])
        values["pose"] = PoseEvaluation.from_json(data["pose"]) if data.get("pose") else None
        return cls(**values)


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
    # PoseNet on the test split (NaN without exact poses): ||t_hat|| / ||t||, and the translation angle (degrees)
    # of its worse source frame, per run the median over windows
    translation_ratio: Interval = field(default_factory=lambda: Interval.of([]))
    translation_angle: Interval = field(default_factory=lambda: Interval.of([]))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "noise_label": self.noise.label}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ConditionSummary":
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["noise"] = NoiseLevel(**data["noise"])
        for key in ("scale_ratio", "scale_error", "within_10_percent", "abs_rel_metric", "abs_rel_median_scaled",
                    "delta1_median_scaled", "constant_abs_rel", "translation_ratio", "translation_angle"):
            if key in data:
                values[key] = Interval.from_json(data[key])
        return cls(**values)


def _median_translation_ratio(pose: PoseEvaluation | None) -> float:
    return statistics.median(s["translation_ratio"] for s in pose.per_source) if pose else math.nan


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
        out.append(ConditionSummary(
            model=model, velocity_weight=weight, noise=noise, seeds=[r.seed for r in group],
            scale_ratio=over(group, lambda r: r.scale.ratio["median"]),
            scale_error=over(group, lambda r: r.scale.scale_error),
            within_10_percent=over(group, lambda r: r.scale.ratio["within_10_percent"]),
            abs_rel_metric=over(group, lambda r: r.scale.metrics["abs_rel"]),
            abs_rel_median_scaled=over(group, lambda r: r.scale.metrics_median_scaled["abs_rel"]),
            delta1_median_scaled=over(group, lambda r: r.scale.metrics_median_scaled["delta1"]),
            constant_abs_rel=over(group, lambda r: r.scale.constant_median_scaled["abs_rel"]),
            translation_ratio=over(group, lambda r: _median_translation_ratio(r.pose)),
            translation_angle=over(group, lambda r: r.pose.worst_angle_deg if r.pose else math.nan)))
    return out


@dataclass
class SelfSupervisedStudyResult:
    """Every run and the per-condition summaries; ``save(dir)`` writes ``dir/self_supervised.json``."""

    name: ClassVar[str] = "self_supervised"

    config: dict[str, Any]
    runs: list[SelfSupervisedRun]
    conditions: list[ConditionSummary]

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "runs": [r.to_json() for r in self.runs],
                "conditions": [c.to_json() for c in self.conditions]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SelfSupervisedStudyResult":
        return cls(config=data["config"], runs=[SelfSupervisedRun.from_json(r) for r in data["runs"]],
                   conditions=[ConditionSummary.from_json(c) for c in data["conditions"]])

    def save(self, out_dir: str | Path) -> Path:
        """Write ``self_supervised.json`` and, when runs exist, the figure ``self_supervised_scale.png`` beside it."""
        folder = ensure_dir(out_dir, "--out")
        path = write_json(folder / f"{self.name}.json", {"analysis": self.name, **self.to_json()})
        if self.runs:
            from probe.plotting import save_figure

            save_figure(plot_scale_vs_noise(self), folder / f"{self.name}_scale.png")
        return path

    def condition(self, model: str, velocity_weight: float, noise: NoiseLevel = NoiseLevel()) -> ConditionSummary:
        """The summary of one condition (ProbeError if the matrix did not hold it)."""
        for c in self.conditions:
            if (c.model, c.velocity_weight, c.noise) == (model, velocity_weight, noise):
                return c
        raise ProbeError(f"self-supervised study: no condition {model}, velocity weight {velocity_weight}, "
                         f"noise {noise.label}")


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
                    model=model, model_options=dict(config.model_options.get(model, {})), width=config.width,
                    dataset=config.dataset, input_size=config.input_size, dataset_length=config.dataset_length,
                    dataset_options=options, epochs=config.epochs, max_steps=config.max_steps,
                    batch_size=config.batch_size, lr=config.lr, device=config.device, seed=seed,
                    workers=config.workers, precision=config.precision, objective="self_supervised",
                    velocity_weight=weight, smoothness_weight=config.smoothness_weight, pose_width=config.pose_width,
                    pose_lr=config.pose_lr, out=run_dir,
                    resume=has_checkpoint(run_dir))
                planned.append(PlannedRun(run_id, model, seed, weight, noise, train_config))
    return planned


def _run_one(plan: PlannedRun, config: SelfSupervisedStudyConfig) -> SelfSupervisedRun:
    result = train(plan.train)
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
    pose = _evaluate_pose_net(result.out, test, config) if "poses" in test[0] else None
    return SelfSupervisedRun(
        id=plan.id, model=plan.model, seed=plan.seed, velocity_weight=plan.velocity_weight, noise=plan.noise,
        params=result.summary["params"], steps=result.summary["steps"], seconds=result.summary["seconds"],
        reprojection_first=statistics.fmean(reprojection[:window]),
        reprojection_last=statistics.fmean(reprojection[-window:]),
        pose_scale_last=records[-1].get("loss_pose_scale") if records else None,
        scale=scale, run_dir=str(result.out), pose=pose)


def _evaluate_pose_net(run_dir: Path, test: Any, config: SelfSupervisedStudyConfig) -> PoseEvaluation:
    """The run's PoseNet (from its newest checkpoint's training state) against the test split's exact poses."""
    state = read_state(latest_checkpoint(run_dir, with_state=True))  # type: ignore[arg-type]
    pose_net = build_model("posenet", n_sources=len(test.context_offsets), width=config.pose_width)
    pose_net.load_state_dict(state["objective"]["pose_net"])
    return evaluate_pose(pose_net, test, batch_size=config.batch_size, device=_device(config))


def _device(config: SelfSupervisedStudyConfig) -> Any:
    from probe.device import resolve_device

    return resolve_device(config.device)


def run_self_supervised_study(config: SelfSupervisedStudyConfig,
                              on_run: Callable[[SelfSupervisedRun], None] | None = None) -> SelfSupervisedStudyResult:
    """Train and score every cell of the matrix (resuming unfinished runs), then summarise over seeds.

    Writes ``DIR/<run id>/`` per run (with ``eval/scale.json``) and
    ``DIR/self_supervised.json``; ``on_run`` is called after each run (progress).
    """
    planned = study_runs(config)
    for plan in planned:  # every training config is checked before the first run starts
        plan.train.validate()
    runs = []
    with progress_bar() as bar:  # each run's own training bar nests under this one
        task = bar.add_task("self-supervised runs", total=len(planned))
        for plan in planned:
            bar.update(task, description=f"self-supervised runs: {plan.id}")
            run = _run_one(plan, config)
            runs.append(run)
            bar.update(task, advance=1)
            if on_run is not None:
                on_run(run)
    result = SelfSupervisedStudyResult(config=_config_json(config), runs=runs, conditions=summarise(runs))
    result.save(config.out)
    return result


def _config_json(config: SelfSupervisedStudyConfig) -> dict[str, Any]:
    data = asdict(replace(config))
    data["noise_levels"] = [asdict(n) for n in config.noise_levels]
    return data


NO_VELOCITY_LABEL = "no velocity loss"
METRIC_BAND = (0.9, 1.1)  # a scale factor within 10 % of 1 counts as metric (probe.evaluate_scale.METRIC_TOLERANCE)


def plot_scale_vs_noise(result: SelfSupervisedStudyResult) -> Any:
    """Seaborn figure: each run's scale factor per velocity-noise level and model, with mean and 95 % t-interval.

    The x axis lists the run without the velocity loss first (nothing ties it to metres), then the noise levels in
    the study's order; the shaded band is within 10 % of 1.  Returns the matplotlib Figure (caller saves or embeds).
    """
    import pandas as pd  # the plotting stack loads only when a figure is drawn

    from probe.plotting import plt, sns

    rows = [{"condition": run.noise.label if run.velocity_weight > 0 else NO_VELOCITY_LABEL, "model": run.model,
             "scale factor": run.scale.ratio["median"]} for run in result.runs]
    order = list(dict.fromkeys(r["condition"] for r in sorted(rows, key=lambda r: r["condition"] != NO_VELOCITY_LABEL)))
    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(order) + 2), 4))
    ax.axhspan(*METRIC_BAND, color="tab:green", alpha=0.12, label="within 10 % of 1")
    ax.axhline(1.0, color="grey", lw=1, ls="--")
    several = frame["model"].nunique() > 1  # seaborn cannot dodge a single hue level
    sns.stripplot(frame, x="condition", y="scale factor", hue="model", order=order, dodge=several, alpha=0.45,
                  legend=False, ax=ax)
    sns.pointplot(frame, x="condition", y="scale factor", hue="model", order=order, dodge=0.4 if several else False,
                  linestyle="none", errorbar=lambda v: _interval_bounds(list(v)), capsize=0.1, marker="D", ax=ax)
    ax.set(xlabel="reported speed during training (noise on the training split only)",
           ylabel="scale factor median(gt) / median(pred)")
    ax.set_title("Does the velocity loss give metric depth? (dots: seeds; diamonds: mean, 95 % t-interval)")
    fig.tight_layout()
    return fig


def _interval_bounds(values: list[float]) -> tuple[float, float]:
    interval = Interval.of(values)
    return (interval.low, interval.high) if interval.n >= 2 else (interval.mean, interval.mean)


def print_self_supervised_study(result: SelfSupervisedStudyResult, console: Any = None) -> None:
    """One row per condition: mean [95 % t-interval] over seeds of the scale factor and the abs_rel numbers."""
    from rich.console import Console
    from rich.table import Table

    def cell(interval: Interval) -> str:
        spread = f" [{interval.low:.3f}, {interval.high:.3f}]" if interval.n >= 2 else ""
        return f"{interval.mean:.3f}{spread}"

    table = Table(title="self-supervised study: mean [95 % t-interval] over seeds (scored on the clean test split)")
    for column in ("model", "condition", "seeds", "scale factor", "abs_rel median-scaled", "constant predictor",
                   "abs_rel metric"):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for c in result.conditions:
        table.add_row(c.model, c.noise.label if c.velocity_weight > 0 else NO_VELOCITY_LABEL,
                      ",".join(str(s) for s in c.seeds), cell(c.scale_ratio), cell(c.abs_rel_median_scaled),
                      cell(c.constant_abs_rel), cell(c.abs_rel_metric))
    (console or Console(width=max(140, Console().width))).print(table)
