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
its own regime?" (``abs_rel_median_scaled``, ``abs_rel_metric``); PoseNet is scored
against the exact poses too (:mod:`probe.evaluate_pose`), since the velocity loss fixes
the length of its translation but not its direction.

The questions are answered here, next to the result they read, by stated rules on
95 % t-intervals over seeds (:func:`metric_scale_answer`,
:func:`packnet_vs_densedepth_answer`), and registered with their report sections.

The default dataset is the street video: PackNet's own regime is driving, and on
the indoor video PoseNet's translation stays tens of degrees off in short runs (the
README's "What a CPU run shows"), which leaves the depth scale free.

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
from typing import Any, Callable, ClassVar, Collection

from probe.data import dataset_info, get_dataset
from probe.errors import ProbeError
from probe.evaluate_consistency import ConsistencyEvaluation, evaluate_consistency
from probe.evaluate_pose import AXES, PoseEvaluation, evaluate_pose
from probe.evaluate_scale import ScaleEvaluation, evaluate_scale
from probe.heldout import IMAGE_FRACTION, image_verdict, training_mean_map
from probe.jobs import Job, Launch, check_preemptible, run_jobs
from probe.limits import MAX_ITEMS, check_int, check_optional_count, check_positive_float
from probe.mean_map import DEFAULT_MEAN_MAP_IMAGES, MeanMapModel
from probe.models import list_models
from probe.models.posenet import PoseNet
from probe.observability import Observability, reprojection_parallax
from probe.options import (
    dataset_option,
    device_option,
    input_size_option,
    option,
    out_option,
    parse_data_options,
    parse_name_list,
    width_option,
)
from probe.progress import progress_bar
from probe.report.answers import QUESTIONS, Answer, fmt
from probe.report.collect import Results
from probe.report.document import AnswerBlock, Block, Paragraph, Section, Table, figure_from_matplotlib
from probe.report.sections import SECTIONS
from probe.results import Result, register_result
from probe.roles import model_family
from probe.runs import run_folder_lock
from probe.seeding import check_seed
from probe.stats import Estimate, decide, paired_difference
from probe.training import TrainConfig, load_checkpoint, read_metrics, train
from probe.training.checkpoint import has_checkpoint, latest_checkpoint, read_state

__all__ = [
    "ConditionSummary",
    "Interval",
    "NoiseLevel",
    "SelfSupervisedRun",
    "SelfSupervisedStudyConfig",
    "SelfSupervisedStudyResult",
    "metric_scale_answer",
    "packnet_vs_densedepth_answer",
    "parse_noise_levels",
    "plot_scale_vs_noise",
    "print_self_supervised_study",
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
            raise ProbeError(
                f"{flag}: {token!r} is not a noise level; expected e.g. 0,0.2,b-0.1,d0.5 (std, bias, dropout)"
            ) from None
        if not math.isfinite(value) or (kind == "s" and value < 0) or (kind == "d" and not 0 <= value <= 1):
            raise ProbeError(f"{flag}: {token!r} is out of range (std >= 0 m/s, finite bias, dropout in [0, 1])")
        levels.append(
            NoiseLevel(std=value)
            if kind == "s"
            else NoiseLevel(bias=value)
            if kind == "b"
            else NoiseLevel(dropout=value)
        )
    return tuple(levels)


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ProbeError(f"--seeds: expected comma-separated integers like 0,1,2, got {text!r}") from None


def _parse_models(text: str) -> tuple[str, ...]:
    return tuple(parse_name_list(text, "--models", list_models()))


#: The CPU recipe (``--quick``, ``bench/self_supervised.py``): what the README's "What a CPU run shows" measured
#: on the street video at 10 frames/s (0.5-1.5 m between frames), tiny widths at 64x96.  The pose learning rate
#: is 3x the depth's: PoseNet's 0.01 output scaling makes Adam grow a translation by about 1e-3 m per step at
#: lr 1e-3, too slow to reach metres in 800 steps.  The smoothness weight is 10x packnet-sfm's 0.001, which let
#: the depth copy image texture in so short a run.  Auto-masking joins after 200 steps: from the first step it
#: turned PoseNet's t-1 translation backwards (132-137 deg off) in seeds 1 and 2, whose depth then did not beat the
#: constant predictor.  With ``automask_after=200`` (packnet_b, seeds 0,1,2, velocity 0.1 on clean speeds, 64 test
#: windows) both sources point within 2-7 deg of the motion in every seed, median-scaled abs_rel is 0.220, 0.230,
#: 0.201 against the constant's 0.518, and the scale factor 0.795, 0.709, 0.819 (still not within 10 % of 1).
QUICK: dict[str, Any] = dict(
    width=0.125,
    pose_width=0.5,
    input_size=(64, 96),
    max_steps=800,
    batch_size=4,
    lr=1e-3,
    pose_lr=3e-3,
    smoothness_weight=0.01,
    automask_after=200,
    eval_length=64,
    workers=0,
)

#: The metric recipe (``--recipe metric``): QUICK trained 12x longer under a cosine schedule, with PoseNet reading
#: one frame pair per source (monodepth2's shared-pair design) and its translations scaled by 1 instead of
#: packnet-sfm's 0.01.  At 0.01 Adam moves a translation of metres so slowly that PoseNet predicted one speed for
#: every window within 2,400 steps (``bench/pose_speed.py``); at 1 it learnt to follow the speed between steps 2,400
#: and 7,200, and the crop's scale factor then entered the 10 % band.  Measured on the street video (packnet_b,
#: seeds 0-4, velocity 0.1 on clean speeds, 64 test windows): 0.949 [0.928, 0.971]; see the README's "The metric
#: recipe".  About 46 minutes per run on one CPU core.
METRIC: dict[str, Any] = dict(
    QUICK, max_steps=9600, lr_schedule="cosine", pose_lr=1e-3, pose_inputs="pairs", pose_translation_scale=1.0
)

#: ``--recipe NAME``: the settings each fills in (``--quick`` is ``--recipe quick``).
RECIPES: dict[str, dict[str, Any]] = {"quick": QUICK, "metric": METRIC}


@dataclass
class SelfSupervisedStudyConfig:
    """The matrix and the training budget shared by every run (identical data, seeds and steps for all models)."""

    models: tuple[str, ...] = option(
        ("packnet_b", "densedepth"),
        parse=_parse_models,
        shown="packnet_b,densedepth",
        help="comma-separated depth models",
    )
    seeds: tuple[int, ...] = option(
        (0, 1, 2), parse=_parse_seeds, shown="0,1,2", help="comma-separated seeds; intervals are over them"
    )
    velocity_weight: float = option(PACKNET_VELOCITY_WEIGHT, help="velocity loss weight of the velocity runs")
    include_no_velocity: bool = option(
        True, flag="--no-velocity-run/--skip-no-velocity-run", help="also train without the velocity loss"
    )
    smoothness_weight: float = option(1e-3, help="edge-aware smoothness weight (packnet-sfm: 0.001)")
    noise_levels: tuple[NoiseLevel, ...] = option(
        (NoiseLevel(),),
        flag="--velocity-noise",
        parse=parse_noise_levels,
        shown="0",
        help="speed-sensor faults of the velocity runs (training split), e.g. 0,0.2,b0.1,d0.5: Gaussian std, "
        "bias (b), m/s, dropout (d); 0 = clean",
    )
    dataset: str = dataset_option("synthetic_video_outdoor")
    dataset_options: dict[str, Any] = option(
        default_factory=dict,
        flag="--data-option",
        parse=parse_data_options,
        help="video dataset option KEY=VALUE, repeatable (e.g. fps=5)",
    )
    width: float = width_option()
    pose_width: float = option(1.0, help="PoseNet channel multiplier")
    pose_lr: float | None = option(None, help="PoseNet learning rate (default: --lr)")
    pose_inputs: str = option(
        "stack",
        help="PoseNet input: stack (packnet-sfm) | pairs (monodepth2: one earlier-later pair per source, shared)",
    )
    pose_translation_scale: float = option(
        0.01, help="factor on PoseNet's translation outputs (packnet-sfm: 0.01); larger learns a varying speed sooner"
    )
    automask_after: int = option(
        0,
        help="auto-mask static pixels only after N steps (before: every pixel reads the warped sources; "
        "0: from the first step, packnet-sfm)",
    )
    pose_source: str = option(
        "posenet",
        help="the warp's poses: posenet (learnt) | exact (the dataset's: a control of the depth network alone, "
        "whose scale then comes from the poses, not the velocity loss)",
    )
    source_average_steps: int = option(
        0,
        help="average the photometric error over the source frames for the first N steps, then the per-pixel "
        "minimum (0: the minimum from the start, packnet-sfm)",
    )
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    input_size: tuple[int, int] | None = input_size_option()
    dataset_length: int | None = option(None, help="training windows per run (default: enough for --steps)")
    eval_length: int | None = option(None, help="test windows scored per run (generated datasets)")
    mean_map_images: int = option(
        DEFAULT_MEAN_MAP_IMAGES,
        help="training windows averaged into the mean depth map, the image-blind baseline scored beside the runs "
        "(0: none)",
    )
    epochs: int = option(1, help="passes over the training split")
    max_steps: int | None = option(None, flag="--steps", help="optimizer steps per run")
    batch_size: int = option(4, help="windows per step")
    lr: float = option(2e-4, help="Adam learning rate (packnet-sfm: 2e-4)")
    lr_schedule: str = option(
        "constant",
        help="constant | cosine (down to 0.01 x at the last step) | step (halved every --lr-decay-every steps, "
        "packnet-sfm's StepLR); scales --lr and --pose-lr alike",
    )
    lr_decay_every: int | None = option(None, help="with --lr-schedule step: halve the learning rates every N steps")
    device: str = device_option()
    workers: int = option(0, help="data-loading worker processes (0: main process)")
    precision: str | None = option(None, help="bf16|fp16|fp32 (default: bf16 on CUDA, fp32 on CPU)")
    checkpoint_every: int | None = option(
        None, help="also keep each run's checkpoint every N steps (a killed study resumes from the last one)"
    )
    quick: bool = option(False, flag="--quick", help="--recipe quick")
    recipe: str | None = option(
        None,
        help="fill every setting left at its default: quick (the CPU smoke recipe, QUICK: 800 steps) | metric "
        "(METRIC: 9,600 cosine steps, PoseNet on frame pairs with translations scaled by 1)",
    )
    out: Path = out_option(Path("runs/self-supervised"))

    def resolved(self, given: Collection[str] = ()) -> "SelfSupervisedStudyConfig":
        """Checked, with the recipe applied and a generated training split long enough for ``max_steps``.

        The recipe (``recipe``, or ``quick`` for QUICK) fills every field that is still at its default and not
        named in ``given``: the settings the user gave explicitly (the CLI passes the flags given on the command
        line), so ``--quick --automask-after 0`` keeps packnet-sfm's 0 although 0 is also the field's default.
        """
        config = self
        name = self.recipe_name()
        if name is not None:
            default = SelfSupervisedStudyConfig()
            filled = RECIPES[name]
            config = replace(
                self,
                recipe=name,
                **{k: v for k, v in filled.items() if k not in given and getattr(self, k) == getattr(default, k)},
            )
        if (
            config.max_steps is not None
            and config.dataset_length is None
            and not dataset_info(config.dataset).needs_root
        ):
            config = replace(config, dataset_length=config.max_steps * config.batch_size)
        config.validate()
        return config

    def recipe_name(self) -> str | None:
        """The recipe to apply: ``recipe``, or ``quick`` for ``--quick``; a one-line ProbeError for an unknown or
        contradictory one."""
        if self.recipe is not None and self.recipe not in RECIPES:
            raise ProbeError(f"--recipe {self.recipe}: expected one of {', '.join(RECIPES)}")
        if self.quick and self.recipe not in (None, "quick"):
            raise ProbeError(f"--quick and --recipe {self.recipe}: --quick is --recipe quick; give one of them")
        return "quick" if self.quick else self.recipe

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
        check_positive_float(
            "--velocity-weight", self.velocity_weight, what="a weight > 0 (the study compares with and without it)"
        )
        check_optional_count("--eval-length", self.eval_length, MAX_ITEMS)
        check_int("--mean-map-images", self.mean_map_images, 0, MAX_ITEMS)
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

    def estimate(self) -> Estimate:
        """The same numbers as a :class:`probe.stats.Estimate`, for :func:`probe.stats.decide`."""
        has = self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)
        method = f"student_t_95 over {self.n} seeds" if has else f"{self.n} seed(s): no interval"
        std = self.std if math.isfinite(self.std) else None
        return Estimate(self.mean, std, self.n, self.low if has else None, self.high if has else None, method, "seeds")


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
    # the reprojection loss against a depth multiplier with the run's own poses (probe.evaluate_consistency)
    consistency: ConsistencyEvaluation | None = None

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
    scale_ratio_uncropped: Interval  # per run: the same median ratio over every valid pixel, without the crop
    within_10_percent: Interval  # per run: fraction of test images whose ratio is within 10 % of 1
    abs_rel_metric: Interval  # no scaling
    abs_rel_median_scaled: Interval
    delta1_median_scaled: Interval
    constant_abs_rel: Interval  # the median-scaled constant predictor
    # PoseNet on the test split (NaN without exact poses), per run the median over windows: ||t_hat|| / ||t||,
    # and the translation angle (degrees) of the worse source frame
    translation_ratio: Interval = field(default_factory=lambda: Interval.of([]))
    translation_angle: Interval = field(default_factory=lambda: Interval.of([]))
    # per run: the depth multiplier at which the reprojection loss with its own poses is lowest (1: consistent)
    photometric_multiplier: Interval = field(default_factory=lambda: Interval.of([]))
    # per run: the whole-image scale factor the depth would have at that multiplier (uncropped factor / multiplier)
    photometric_scale_ratio: Interval = field(default_factory=lambda: Interval.of([]))
    # per run: the median over test images of the slope of log depth on log truth, uncropped (1: right range,
    # below 1: compressed; scale-free, so it separates a wrong structure from a wrong scale)
    range_slope: Interval = field(default_factory=lambda: Interval.of([]))
    # per run: the range exponent about each image's median at which the reprojection loss is lowest, with the
    # run's own poses and with the exact ones (1: the loss asks for the range the depth has; above 1: a wider one)
    range_exponent: Interval = field(default_factory=lambda: Interval.of([]))
    range_exponent_exact: Interval = field(default_factory=lambda: Interval.of([]))
    # per run: the exact-pose exponent minus the own-pose one (above 0: the true motion asks for a wider range)
    range_exponent_gap: Interval = field(default_factory=lambda: Interval.of([]))
    # PoseNet on the test split, per run the source that follows its motion least: the share of the exact
    # translation's (after its best scale) and rotation's variation across windows that PoseNet follows
    # (probe.evaluate_pose.explained_variation; 1: every window's motion, 0: one motion for all), and the size of
    # the rotation's mean error (degrees, the worse source: a bias every window shares)
    translation_explained: Interval = field(default_factory=lambda: Interval.of([]))
    rotation_explained: Interval = field(default_factory=lambda: Interval.of([]))
    rotation_bias: Interval = field(default_factory=lambda: Interval.of([]))


def _exponent(run: "SelfSupervisedRun", exact: bool) -> float:
    """The run's loss-best range exponent (own or exact poses); NaN where it was not scanned."""
    c = run.consistency
    value = None if c is None else (c.best_exponent_exact if exact else c.best_exponent)
    return math.nan if value is None else float(value)


def _median_translation_ratio(pose: PoseEvaluation | None) -> float:
    return statistics.median(s["translation_ratio"] for s in pose.per_source) if pose else math.nan


def _rotation_bias(pose: PoseEvaluation | None) -> float:
    """The largest per-source size of the mean Euler-angle error (degrees; NaN without the fields)."""
    if pose is None:
        return math.nan
    sizes = [math.hypot(*pose.bias_deg(i)) for i in range(len(pose.per_source))]
    return max(sizes) if sizes else math.nan


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
                scale_ratio_uncropped=over(group, lambda r: r.scale.ratio_uncropped["median"]),
                within_10_percent=over(group, lambda r: r.scale.ratio["within_10_percent"]),
                abs_rel_metric=over(group, lambda r: r.scale.metrics["abs_rel"]),
                abs_rel_median_scaled=over(group, lambda r: r.scale.metrics_median_scaled["abs_rel"]),
                delta1_median_scaled=over(group, lambda r: r.scale.metrics_median_scaled["delta1"]),
                constant_abs_rel=over(group, lambda r: r.scale.constant_median_scaled["abs_rel"]),
                translation_ratio=over(group, lambda r: _median_translation_ratio(r.pose)),
                translation_angle=over(group, lambda r: r.pose.worst_angle_deg if r.pose else math.nan),
                photometric_multiplier=over(
                    group, lambda r: r.consistency.best_multiplier if r.consistency else math.nan
                ),
                photometric_scale_ratio=over(
                    group,
                    lambda r: (
                        r.scale.ratio_uncropped["median"] / r.consistency.best_multiplier if r.consistency else math.nan
                    ),
                ),
                range_slope=over(group, lambda r: r.scale.range_slope.get("median", math.nan)),
                range_exponent=over(group, lambda r: _exponent(r, exact=False)),
                range_exponent_exact=over(group, lambda r: _exponent(r, exact=True)),
                range_exponent_gap=over(group, lambda r: _exponent(r, exact=True) - _exponent(r, exact=False)),
                translation_explained=over(
                    group, lambda r: r.pose.worst("translation_explained") if r.pose else math.nan
                ),
                rotation_explained=over(group, lambda r: r.pose.worst("rotation_explained") if r.pose else math.nan),
                rotation_bias=over(group, lambda r: _rotation_bias(r.pose)),
            )
        )
    return out


@register_result
@dataclass
class SelfSupervisedStudyResult(Result):
    """Every run and the per-condition summaries; ``save(dir)`` writes ``dir/self_supervised.json`` and its figure."""

    name: ClassVar[str] = "self_supervised"
    # 2: PoseNet scores (runs[].pose, translation_ratio, translation_angle);
    # 3: the config's pose_inputs, source_average_steps and automask_after; 4: its lr_schedule and lr_decay_every;
    # 5: runs[].consistency and photometric_multiplier (probe.evaluate_consistency), runs[].scale at its schema 2
    # and scale_ratio_uncropped; 6: runs[].scale at its schema 3 (range_slope, ratio_by_depth), range_slope and
    # observability (probe.observability: how far the loss can see depth at the study's input size);
    # 7: runs[].consistency at its schema 2 (the range-exponent scans), range_exponent and range_exponent_exact,
    # the config's pose_source; 8: runs[].pose's motion fields (translation_explained, rotation_explained and the
    # pitch, yaw and roll biases), translation_explained, rotation_explained and rotation_bias; 9: the config's
    # pose_translation_scale; 10: the config's recipe; 11: mean_map (the training set's mean depth map scored on
    # the test split) and the config's mean_map_images; 12: test_speeds (what a speed bias predicts)
    schema_version: ClassVar[int] = 12

    config: SelfSupervisedStudyConfig
    runs: list[SelfSupervisedRun]
    conditions: list[ConditionSummary]
    observability: Observability | None = None  # the test split's reprojection shift of a 25 % depth error
    # the training split's mean depth map (probe.mean_map) scored like a run: what a depth that never reads the
    # image scores on the test split (None: --mean-map-images 0)
    mean_map: ScaleEvaluation | None = None
    # the exact speed (m/s) of every test window, in order (None: the dataset has no exact speed)
    test_speeds: list[float] | None = None

    def bias_factor(self, bias: float) -> float | None:
        """What a constant speed bias alone does to the scale factor: the median over test windows of v / (v + b).

        The velocity loss (L1) teaches PoseNet the reported speed, v + b, for a window moving at v, so the depth that
        is consistent with those poses is (v + b) / v times too far, and its scale factor v / (v + b) times the clean
        one; one depth network for every window settles near the median.  None without exact speeds, or where a
        window's v + b is not positive.
        """
        speeds = self.test_speeds or []
        if not speeds or any(v + bias <= 0 for v in speeds):
            return None
        return float(statistics.median(v / (v + bias) for v in speeds))

    def mean_map_images_text(self) -> str:
        """``"512 training images"``: what the mean depth map averaged ('' when it was not scored)."""
        if self.mean_map is None:
            return ""
        return f"{int(self.mean_map.options.get('training_images', 0)):,} training images"

    def condition(self, model: str, velocity_weight: float, noise: NoiseLevel = NoiseLevel()) -> ConditionSummary:
        """The summary of one condition (ProbeError if the matrix did not hold it)."""
        for c in self.conditions:
            if (c.model, c.velocity_weight, c.noise) == (model, velocity_weight, noise):
                return c
        raise ProbeError(
            f"self-supervised study: no condition {model}, velocity weight {velocity_weight}, noise {noise.label}"
        )

    def figures(self, out_dir: Path) -> list[Path]:
        """``self_supervised_scale.png``: the scale factor per velocity-noise level (:func:`plot_scale_vs_noise`)."""
        if not self.runs:
            return []
        from probe.plotting import save_figure

        return [save_figure(plot_scale_vs_noise(self), Path(out_dir) / f"{self.name}_scale.png")]


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
                    lr_schedule=config.lr_schedule,
                    lr_decay_every=config.lr_decay_every,
                    device=config.device,
                    seed=seed,
                    workers=config.workers,
                    precision=config.precision,
                    objective="self_supervised",
                    velocity_weight=weight,
                    smoothness_weight=config.smoothness_weight,
                    pose_width=config.pose_width,
                    pose_lr=config.pose_lr,
                    source_average_steps=config.source_average_steps,
                    automask_after=config.automask_after,
                    pose_inputs=config.pose_inputs,
                    pose_translation_scale=config.pose_translation_scale,
                    pose_source=config.pose_source,
                    checkpoint_every=config.checkpoint_every,
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
    test = _test_split(config)
    scale = evaluate_scale(model, test, batch_size=config.batch_size, device=_device(config))
    scale.save(result.out / "eval")
    device = _device(config)
    # with exact poses in the warp there is no learnt pose to score, and the run's own poses are the exact ones
    pose_net = _pose_net(result.out, test, config) if config.pose_source == "posenet" else None
    pose = None
    if pose_net is not None and "poses" in test[0]:
        pose = evaluate_pose(pose_net, test, batch_size=config.batch_size, device=device)
    consistency = evaluate_consistency(model, pose_net, test, batch_size=config.batch_size, device=device)
    consistency.save(result.out / "eval")
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
        pose=pose,
        consistency=consistency,
    )


def _test_split(config: SelfSupervisedStudyConfig) -> Any:
    """The clean test split every run is scored on (``--eval-length`` windows of generated data)."""
    options = {k: v for k, v in config.dataset_options.items()}
    if config.eval_length is not None:
        options["length"] = config.eval_length
    return get_dataset(config.dataset, split="test", input_size=config.input_size, **options)


def _mean_map_score(config: SelfSupervisedStudyConfig, test: Any) -> ScaleEvaluation | None:
    """The training split's mean depth map scored on ``test`` like a run (None: ``mean_map_images`` 0)."""
    if config.mean_map_images == 0:
        return None
    mean_map = training_mean_map(
        config.dataset,
        None,
        config.input_size,
        options=config.dataset_options,
        length=config.dataset_length,
        images=config.mean_map_images,
    )
    score = evaluate_scale(MeanMapModel(mean_map), test, batch_size=config.batch_size)
    score.options["training_images"] = mean_map.images  # the images the map averaged
    return score


def _test_speeds(test: Any) -> list[float] | None:
    """The exact speed of every window of ``test`` (None where the dataset reports no exact speed, e.g. KITTI raw)."""
    speeds = []
    for i in range(len(test)):
        item = test[i]
        if "speed_true" not in item:
            return None
        speeds.append(float(item["speed_true"]))
    return speeds


def _observability(test: Any) -> Observability | None:
    """How far the study's loss can see depth at the test split's size (None: it has no exact poses)."""
    return reprojection_parallax(test) if "poses" in test[0] else None


def _pose_net(run_dir: Path, test: Any, config: SelfSupervisedStudyConfig) -> PoseNet:
    """The run's PoseNet, from its newest checkpoint's training state."""
    checkpoint = latest_checkpoint(run_dir, with_state=True)
    if checkpoint is None:
        raise ProbeError(f"{run_dir}: no checkpoint to read the pose network from")
    pose_net = PoseNet(
        n_sources=len(test.context_offsets),
        width=config.pose_width,
        inputs=config.pose_inputs,
        offsets=tuple(int(o) for o in test.context_offsets),
        translation_scale=config.pose_translation_scale,
    )
    pose_net.load_state_dict(read_state(checkpoint)["objective"]["pose_net"])
    return pose_net


def _device(config: SelfSupervisedStudyConfig) -> Any:
    from probe.device import resolve_device

    return resolve_device(config.device)


def run_self_supervised_study(
    config: SelfSupervisedStudyConfig,
    on_run: Callable[[SelfSupervisedRun], None] | None = None,
    launch: Launch = Launch(),
    given: Collection[str] = (),
) -> SelfSupervisedStudyResult:
    """Train and score every cell of the matrix (resuming unfinished runs), then summarise over seeds.

    ``given``: the fields set explicitly, which ``--quick`` leaves alone (:meth:`SelfSupervisedStudyConfig.resolved`).

    Writes ``DIR/<run id>/`` per run (with ``eval/scale.json``) and
    ``DIR/self_supervised.json``; ``on_run`` is called after each run (progress), in the
    matrix's order.  ``launch`` runs the cells side by side (:mod:`probe.jobs`: worker
    processes, SLURM jobs); each cell is seeded by its own config, so the numbers do not
    depend on it (on a CPU: with equal threads per run).
    """
    config = config.resolved(given)
    planned = study_runs(config)
    for plan in planned:  # every training config is checked before the first run starts
        plan.train.validate()
    launch.validate()
    check_preemptible(launch, config.checkpoint_every)
    with run_folder_lock(config.out, "experiment self-supervised"):
        runs = _run_matrix(planned, config, launch, on_run)
        test = _test_split(config)  # the clean test split every run was scored on
        result = SelfSupervisedStudyResult(
            config=config,
            runs=runs,
            conditions=summarise(runs),
            observability=_observability(test),
            test_speeds=_test_speeds(test),
            mean_map=_mean_map_score(config, test),
        )
        result.save(config.out)
    return result


def _run_matrix(
    planned: list[PlannedRun],
    config: SelfSupervisedStudyConfig,
    launch: Launch,
    on_run: Callable[[SelfSupervisedRun], None] | None,
) -> list[SelfSupervisedRun]:
    """Every planned run trained and scored as ``launch`` says, in the matrix's order."""
    jobs = [Job(plan.id, plan.train.out, _run_one, (plan, config)) for plan in planned]
    runs: list[SelfSupervisedRun] = []
    if launch.in_process:  # one by one, reporting each as it ends; each run's training bar stacks under this one
        with progress_bar() as bar:
            task = bar.add_task("self-supervised runs", total=len(jobs))
            for job in jobs:
                bar.update(task, description=f"self-supervised runs: {job.name}")
                runs.extend(run_jobs([job], launch))
                bar.update(task, advance=1)
                if on_run is not None:
                    on_run(runs[-1])
    else:
        runs = run_jobs(jobs, launch, device=config.device, out=Path(config.out), what="self-supervised runs")
        if on_run is not None:
            for run in runs:
                on_run(run)
    return runs


NO_VELOCITY_LABEL = "no velocity loss"
METRIC_BAND = (0.9, 1.1)  # a scale factor within 10 % of 1 counts as metric (probe.evaluate_scale.METRIC_TOLERANCE)


def plot_scale_vs_noise(result: SelfSupervisedStudyResult) -> Any:
    """Seaborn figure: each run's scale factor per velocity-noise level and model, with mean and 95 % t-interval.

    The x axis lists the run without the velocity loss first (nothing ties it to metres), then the noise levels in
    the study's order; the shaded band is within 10 % of 1.  Returns the matplotlib Figure (caller saves or embeds).
    """
    import pandas as pd  # the plotting stack loads only when a figure is drawn

    from probe.plotting import plt, sns

    rows = [
        {
            "condition": run.noise.label if run.velocity_weight > 0 else NO_VELOCITY_LABEL,
            "model": run.model,
            "scale factor": run.scale.ratio["median"],
        }
        for run in result.runs
    ]
    order = list(dict.fromkeys(r["condition"] for r in sorted(rows, key=lambda r: r["condition"] != NO_VELOCITY_LABEL)))
    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(order) + 2), 4))
    ax.axhspan(*METRIC_BAND, color="tab:green", alpha=0.12, label="within 10 % of 1")
    ax.axhline(1.0, color="grey", lw=1, ls="--")
    several = frame["model"].nunique() > 1  # seaborn cannot dodge a single hue level
    sns.stripplot(
        frame, x="condition", y="scale factor", hue="model", order=order, dodge=several, alpha=0.45, legend=False, ax=ax
    )
    sns.pointplot(
        frame,
        x="condition",
        y="scale factor",
        hue="model",
        order=order,
        dodge=0.4 if several else False,
        linestyle="none",
        errorbar=lambda v: _interval_bounds(list(v)),
        capsize=0.1,
        marker="D",
        ax=ax,
    )
    ax.set(
        xlabel="reported speed during training (noise on the training split only)",
        ylabel="scale factor median(gt) / median(pred)",
    )
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
    for column in (
        "model",
        "condition",
        "seeds",
        "scale factor",
        "abs_rel median-scaled",
        "constant predictor",
        "abs_rel metric",
        "best depth multiplier",
        "range slope",
        "PoseNet follows (t; rot)",
    ):
        table.add_column(column, justify="left" if column in ("model", "condition") else "right")
    for c in result.conditions:
        table.add_row(
            c.model,
            c.noise.label if c.velocity_weight > 0 else NO_VELOCITY_LABEL,
            ",".join(str(s) for s in c.seeds),
            cell(c.scale_ratio),
            cell(c.abs_rel_median_scaled),
            cell(c.constant_abs_rel),
            cell(c.abs_rel_metric),
            cell(c.photometric_multiplier) if c.photometric_multiplier.n else "n/a",
            cell(c.range_slope) if c.range_slope.n else "n/a",
            f"{c.translation_explained.mean:.2f}; {c.rotation_explained.mean:.2f}" if c.rotation_explained.n else "n/a",
        )
    console = console or Console(width=max(140, Console().width))
    console.print(table)
    if result.mean_map is not None:
        console.print(
            f"The training split's mean depth map ({result.mean_map_images_text()}, never reads the image) scores "
            f"abs_rel {result.mean_map.metrics_median_scaled['abs_rel']:.3f} median-scaled on the same test split."
        )


# -- the two questions and their report sections ------------------------------------------------------------

SCALE_QUESTION = "Does the velocity loss recover metric scale?"
#: A source frame whose PoseNet translation points more than this many degrees from the motion is reversed.
REVERSED_DEG = 90.0
#: How the photometric self-consistency reads a missed scale (probe.evaluate_consistency).
CONSISTENCY_RULE = (
    "Where the scale factor is not within 10 % of 1 it is read in order (each by its 95 % interval over seeds): "
    "if the factor over every valid pixel without the crop is within 10 % of 1, the global scale is metric and "
    "the miss is the depth's structure inside the crop, and the slope of log depth on log ground truth over the "
    "image (1 for the right range at any scale) says whether its range is compressed (interval below 1); otherwise "
    "each run's depth is "
    "multiplied by the factor at which the reprojection loss over the whole image with the run's own PoseNet is "
    "lowest: if the whole-image scale factor there is within 10 % of 1, the objective points at metric depth and "
    "the depth network has not settled there (an optimisation lag); if it is entirely outside, the objective "
    "itself (the poses' scale) misses metric scale; otherwise no reading. " + "Where the range is compressed, "
    "the reprojection loss over the whole image is scanned over a range exponent a (each image's depth "
    "m (d / m)^a about its median m) with the run's own poses and with the exact poses: if the own-pose minimum's "
    "interval lies above 1.1, the objective already asks for a wider range and the depth network has not followed "
    "it; otherwise, if the exact-pose minimum's interval lies above 1.1 and the paired per-seed difference "
    "(exact minus own) lies above 0, the run's own poses hold the range compressed (with the true motion the loss "
    "would widen it); otherwise no reading"
)

#: Below this share of the exact motion's variation across test windows, PoseNet does not follow the motion.
FOLLOWS_MOTION = 0.5
POSE_MOTION_RULE = (
    "PoseNet is scored on how much of the exact motion's variation across test windows it follows "
    "(1 - the scatter of its error about the error's mean over the scatter of the motion about its mean; the "
    "translation after its best single scale): 1 when it follows every window's motion, 0 when it predicts one "
    "motion for every window, as a network that does not read its frames would. Where the 95 % interval over seeds "
    f"of the worse source's share lies below {FOLLOWS_MOTION:g}, for the translation or for the rotation, PoseNet "
    "does not follow the motion from window to window, and the answer says so with the mean rotation error that "
    "every window shares (pitch, yaw, roll)"
)

MEAN_MAP_RULE = (
    "The training split's mean depth map (every test image gets the per-pixel geometric mean depth of the first "
    "training images: Eigen et al. 2014's 'Mean' baseline, a depth that never reads the image) is scored like a "
    "run, and each model's per-seed median-scaled abs_rel over the map's is judged with its t-interval over seeds "
    "by the held-out score's rule: reads the image when the interval lies below "
    f"{IMAGE_FRACTION:g}, no better than the mean map when above (other image-blind maps score within 2 % of it); "
    "the answer says so, with the seeds below 1, and where a model is not shown to read the image, that its depth's "
    "structure is not shown to come from the image (on street scenes the mean map holds the ground plane). The "
    "scale verdict does not depend on it: a self-supervised network never sees depth, so it cannot copy the map's "
    "metres."
)

SCALE_RULE = (
    "Per model, the runs trained with the velocity loss on clean speeds: each run's scale factor is the median over "
    "test images of median(gt) / median(pred); its mean and two-sided 95 % t-interval are taken over seeds. Yes when "
    f"the interval lies within [{METRIC_BAND[0]}, {METRIC_BAND[1]}] (within 10 % of 1), no when it lies entirely "
    "outside that band, inconclusive when it crosses a bound or fewer than two seeds ran. A scale factor is only "
    "the scale of a depth that has structure: a model whose mean median-scaled abs_rel over those seeds does not "
    "beat the median-scaled constant predictor is inconclusive whatever its interval, and the answer counts the "
    "seeds whose depth beats it. "
    + MEAN_MAP_RULE
    + " Under a constant speed bias b the answer states, beside the factor, what the bias alone predicts: each "
    "seed's clean factor times the median over test windows of v / (v + b), v the window's exact speed (the "
    "velocity loss teaches PoseNet the reported v + b, so the depth consistent with its poses is (v + b) / v too "
    "far). Over models: yes or no when every model gets it, partly when some get yes and "
    "others no, inconclusive otherwise. The verdict reads the protocol's evaluated pixels (its crop included); the "
    "scale factor over every valid pixel without the crop is stated beside it. " + CONSISTENCY_RULE + ". A source "
    f"frame whose PoseNet translation points more than {REVERSED_DEG:g} degrees from the true motion (median over "
    "test windows) is reversed, and the answer names it with the number of seeds in which it is. A study whose "
    "warp read the dataset's exact poses (--pose-source exact) is a control of the depth network alone: its scale "
    "comes from those poses, not from the velocity loss, so it answers inconclusive and states its factors. "
    + POSE_MOTION_RULE
)
BEATS_QUESTION = "Does PackNet beat DenseDepth in its own regime?"
BEATS_RULE = (
    "Both models trained self-supervised on the same video with the same seeds. For every condition (velocity loss "
    "or none; clean speeds) both ran, the per-seed difference of median-scaled abs_rel, PackNet minus DenseDepth, and "
    "its 95 % t-interval over the paired seeds. Yes when the interval lies below 0 in every condition, no when it lies "
    "above 0 in every condition, partly when the conditions disagree, inconclusive otherwise: an interval holding 0, "
    "fewer than two paired seeds, or neither model beating the median-scaled constant predictor (then neither has "
    "learnt depth and the comparison says nothing). A model that does not beat that predictor is named in the answer: "
    "a win over it says more about its training than about the architectures. Where a model does not beat the "
    "training split's mean depth map (a depth that never reads the image), the answer names it too: the "
    "comparison is then between fits of the scenes' average layout more than between readings of the image."
)


def _combine(verdicts: list[str]) -> str:
    if verdicts and all(v == "yes" for v in verdicts):
        return "yes"
    if verdicts and all(v == "no" for v in verdicts):
        return "no"
    return "partly" if "yes" in verdicts and "no" in verdicts else "inconclusive"


def _interval_text(interval: Interval, digits: int = 3, decimals: int | None = None) -> str:
    """``mean [low, high]`` to ``digits`` significant digits, or to ``decimals`` places (angles: 128.2, not 1.3e+02)."""

    def f(x: float) -> str:
        return fmt(x, digits) if decimals is None or not math.isfinite(x) else f"{x:.{decimals}f}"

    if interval.n >= 2 and math.isfinite(interval.low):
        return f"{f(interval.mean)} [{f(interval.low)}, {f(interval.high)}]"
    return f"{f(interval.mean)} (n={interval.n}, no interval)"


def band_verdict(interval: Interval, band: tuple[float, float] = METRIC_BAND) -> str:
    """yes: the 95 % interval lies inside ``band``; no: entirely outside; inconclusive: crosses it or n < 2.

    Both bounds are decided by :func:`probe.stats.decide`, the one verdict rule.
    """
    estimate = interval.estimate()
    lower = decide(estimate, above="above", below="below", threshold=band[0]).verdict
    upper = decide(estimate, above="above", below="below", threshold=band[1]).verdict
    if lower == "above" and upper == "below":
        return "yes"
    return "no" if "below" == lower or "above" == upper else "inconclusive"


def _condition_label(c: ConditionSummary) -> str:
    return f"velocity {c.velocity_weight:g}, {c.noise.label}" if c.velocity_weight > 0 else NO_VELOCITY_LABEL


def metric_scale_answer(result: SelfSupervisedStudyResult) -> Answer:
    """The rule :data:`SCALE_RULE` on ``result`` (see the module docstring)."""
    evidence = [
        {
            "model": c.model,
            "condition": _condition_label(c),
            "seeds": len(c.seeds),
            "scale factor, mean [95 % CI]": _interval_text(c.scale_ratio),
            "scale factor without the crop": _interval_text(c.scale_ratio_uncropped),
            "images within 10 %": fmt(c.within_10_percent.mean),
            "within 10 % of 1": band_verdict(c.scale_ratio) if c.velocity_weight > 0 else "n/a",
            "seeds whose depth beats the constant predictor": f"{_seeds_learnt(result, c)} of {len(c.seeds)}",
            "seeds whose depth beats the mean depth map": (
                f"{_seeds_beating_mean_map(result, c)} of {len(c.seeds)}" if result.mean_map is not None else "n/a"
            ),
            "median-scaled abs_rel / mean depth map's": _image_text(result, c),
            "PoseNet |t| / distance": _interval_text(c.translation_ratio),
            "PoseNet t angle, worse source (deg)": _interval_text(c.translation_angle, decimals=1),
            "photometric-best depth multiplier": _interval_text(c.photometric_multiplier),
            "scale factor there": _interval_text(c.photometric_scale_ratio),
            "depth-range slope (1: right range)": _interval_text(c.range_slope),
            "loss-best range exponent, own poses": _interval_text(c.range_exponent),
            "loss-best range exponent, exact poses": _interval_text(c.range_exponent_exact),
            "PoseNet motion followed, worse source (translation; rotation)": (
                f"{_interval_text(c.translation_explained)}; {_interval_text(c.rotation_explained)}"
            ),
            "PoseNet mean rotation error, worse source (deg)": _interval_text(c.rotation_bias),
        }
        for c in result.conditions
    ]
    clean = [c for c in result.conditions if c.velocity_weight > 0 and c.noise == NoiseLevel()]
    if not clean:
        return Answer(
            SCALE_QUESTION,
            "inconclusive",
            "Inconclusive: the study trained no model with the velocity loss "
            "on clean speeds, so the question cannot be answered from it.",
            SCALE_RULE,
            evidence,
        )
    if result.config.pose_source == "exact":
        return Answer(SCALE_QUESTION, "inconclusive", exact_pose_control_text(clean), SCALE_RULE, evidence)
    verdicts = [band_verdict(c.scale_ratio) if _learnt_depth(c) else "inconclusive" for c in clean]
    verdict = _combine(verdicts)
    lead = {"yes": "Yes", "no": "No", "partly": "Partly", "inconclusive": "Inconclusive"}[verdict]
    parts = [
        f"{c.model} {_interval_text(c.scale_ratio)} over {len(c.seeds)} seed(s) ({v}; the depth beats the "
        f"constant predictor in {_seeds_learnt(result, c)} of {len(c.seeds)} seeds"
        + ("" if _learnt_depth(c) else ", not on average: its scale factor is not the scale of a learnt depth")
        + ")"
        for c, v in zip(clean, verdicts)
    ]
    sentence = f"{lead}: with the velocity loss on clean speeds the scale factor is " + "; ".join(parts) + "."
    sentence += mean_map_text(result, clean)
    sentence += "".join(
        uncropped_text(c) + consistency_text(c) + pose_direction_text(result, c) + pose_motion_text(result, c)
        for c in clean
    )
    if result.observability is not None and any(consistency_reading(c) == "structure" for c in clean):
        sentence += result.observability.sentence()
    noisy = [c for c in result.conditions if c.velocity_weight > 0 and c.noise != NoiseLevel()]
    if noisy:
        sentence += (
            " Under speed noise: "
            + "; ".join(f"{c.model} {c.noise.label} {noise_text(result, c)}" for c in noisy)
            + "."
        )
    return Answer(SCALE_QUESTION, verdict, sentence, SCALE_RULE, evidence)


def bias_prediction(result: SelfSupervisedStudyResult, c: ConditionSummary) -> tuple[Interval, float] | None:
    """For a condition with a speed bias: per seed that also ran on clean speeds, that seed's clean scale factor
    times :meth:`SelfSupervisedStudyResult.bias_factor`, over seeds, and that factor (None: no bias, no exact
    speeds, or no paired clean run)."""
    if c.noise.bias == 0 or c.velocity_weight == 0:
        return None
    factor = result.bias_factor(c.noise.bias)
    if factor is None:
        return None
    clean = {
        r.seed: r.scale.ratio["median"]
        for r in result.runs
        if r.model == c.model and r.velocity_weight == c.velocity_weight and r.noise == NoiseLevel()
    }
    paired = [clean[s] * factor for s in c.seeds if s in clean]
    return (Interval.of(paired), factor) if paired else None


def noise_text(result: SelfSupervisedStudyResult, c: ConditionSummary) -> str:
    """A noisy condition's scale factor, and for a bias what the bias alone predicts beside it."""
    text = _interval_text(c.scale_ratio)
    predicted = bias_prediction(result, c)
    if predicted is not None:
        interval, factor = predicted
        text += (
            f" (the bias alone predicts {_interval_text(interval)}: each seed's clean factor x {fmt(factor)}, the "
            f"median over test windows of v / (v {c.noise.bias:+g}))"
        )
    return text


def exact_pose_control_text(clean: list[ConditionSummary]) -> str:
    """The scale answer of a study that warped with the exact poses: a control, with its factors stated."""
    parts = [
        f"{c.model} {_interval_text(c.scale_ratio)} (without the crop {_interval_text(c.scale_ratio_uncropped)}, "
        f"range slope {_interval_text(c.range_slope)}, median-scaled abs_rel {_interval_text(c.abs_rel_median_scaled)}"
        f" against the constant predictor's {_interval_text(c.constant_abs_rel)}) over {len(c.seeds)} seed(s)"
        for c in clean
    ]
    return (
        "Inconclusive: a control. The warp read the dataset's exact poses, so the depth's scale comes from them, not "
        "from the velocity loss. With exact poses the depth network alone reaches a scale factor of "
        + "; ".join(parts)
        + ". Compared with the same study with PoseNet, the difference is what the learnt poses cost."
    )


def consistency_reading(c: ConditionSummary) -> str:
    """:data:`CONSISTENCY_RULE` on one condition: ``consistent`` (the scale is already within 10 %), ``structure``,
    ``lag``, ``objective``, or ``none`` (no interval decides, or the runs were not scanned)."""
    if band_verdict(c.scale_ratio) == "yes":
        return "consistent"
    if band_verdict(c.scale_ratio_uncropped) == "yes":
        return "structure"
    if c.photometric_scale_ratio.n < 2:
        return "none"
    there = band_verdict(c.photometric_scale_ratio)
    return {"yes": "lag", "no": "objective"}.get(there, "none")


def uncropped_text(c: ConditionSummary) -> str:
    """Where the protocol crops, the scale factor over the whole image as well: a crop of the near road can miss
    1 while the global scale is metric (a compressed depth range)."""
    if c.scale_ratio_uncropped.n == 0 or c.scale_ratio_uncropped == c.scale_ratio:
        return ""
    return (
        f" Without the protocol's crop (every valid pixel) {c.model}'s scale factor is "
        f"{_interval_text(c.scale_ratio_uncropped)} ({band_verdict(c.scale_ratio_uncropped)} by the same band)."
    )


def consistency_text(c: ConditionSummary) -> str:
    """The scale answer's reading of a missed scale (:data:`CONSISTENCY_RULE`), with the depth-multiplier scan."""
    reading = consistency_reading(c)
    text = ""
    if reading == "structure":
        text += f" So {c.model}'s global scale is metric and the miss is the depth's structure inside the crop"
        text += range_text(c)
    if c.photometric_multiplier.n:
        text += (
            f" With its own poses, {c.model}'s reprojection loss is lowest at depth x "
            f"{_interval_text(c.photometric_multiplier)}, where the whole-image scale factor would be "
            f"{_interval_text(c.photometric_scale_ratio)}"
        )
        text += {
            "lag": ": the objective points at metric depth and the depth network has not settled there "
            "(an optimisation lag, not a missing loss).",
            "objective": ": the objective itself (the poses' scale) misses metric scale.",
        }.get(reading, ".")
    return text


def range_text(c: ConditionSummary) -> str:
    """What the depth-range slope says of a structural miss: compressed, right, or undecided (ends the sentence)."""
    if c.range_slope.n == 0:
        return ", not its scale."
    slope = _interval_text(c.range_slope)
    if band_verdict(c.range_slope) == "yes":
        return f", not its scale (its range over the image is right: the slope of log depth on log truth is {slope})."
    if c.range_slope.n >= 2 and c.range_slope.high < METRIC_BAND[0]:
        return (
            f": its depth range is compressed (the slope of log depth on log truth is {slope}, 1 for the right range)."
            + range_exponent_text(c)
        )
    return f", not its scale (the slope of log depth on log truth is {slope}; 1 is the right range)."


def range_reading(c: ConditionSummary) -> str:
    """Who holds a compressed range (:data:`CONSISTENCY_RULE`'s last sentence): ``lag`` (the own poses already ask
    for a wider one), ``poses`` (the exact poses ask for a wider one than the run's own, paired by seed) or
    ``none``."""
    own, exact, gap = c.range_exponent, c.range_exponent_exact, c.range_exponent_gap
    if own.n < 2 or not math.isfinite(own.low):
        return "none"
    if own.low > METRIC_BAND[1]:
        return "lag"
    decided = exact.n >= 2 and gap.n >= 2 and math.isfinite(exact.low) and math.isfinite(gap.low)
    if decided and exact.low > METRIC_BAND[1] and gap.low > 0:
        return "poses"
    return "none"


def range_exponent_text(c: ConditionSummary) -> str:
    """The range-exponent scans' reading of a compressed range, as sentences (empty when not scanned)."""
    if c.range_exponent.n == 0:
        return ""
    text = (
        f" The reprojection loss is lowest with each image's depth range raised to the power "
        f"{_interval_text(c.range_exponent)} with {c.model}'s own poses"
    )
    if c.range_exponent_exact.n:
        text += (
            f" and {_interval_text(c.range_exponent_exact)} with the exact poses (paired difference "
            f"{_interval_text(c.range_exponent_gap)})"
        )
    return text + {
        "poses": ": its own poses hold the range compressed, and with the true motion the loss would widen it.",
        "lag": ": the objective already asks for a wider range and the depth network has not followed it.",
    }.get(range_reading(c), ".")


def _learnt_depth(c: ConditionSummary) -> bool:
    """The condition's mean median-scaled abs_rel beats the median-scaled constant predictor's (NaN: it does not)."""
    return bool(c.abs_rel_median_scaled.mean < c.constant_abs_rel.mean)


def _mean_map_abs_rel(result: SelfSupervisedStudyResult) -> float | None:
    """The mean depth map's median-scaled abs_rel on the test split (None: not scored)."""
    return None if result.mean_map is None else result.mean_map.metrics_median_scaled["abs_rel"]


def _seeds_beating_mean_map(result: SelfSupervisedStudyResult, c: ConditionSummary) -> int:
    """How many of the condition's runs have a median-scaled abs_rel below the mean depth map's (0: none scored)."""
    floor = _mean_map_abs_rel(result)
    if floor is None:
        return 0
    return sum(1 for r in _condition_runs(result, c) if r.scale.metrics_median_scaled["abs_rel"] < floor)


def _image_reading(result: SelfSupervisedStudyResult, c: ConditionSummary) -> tuple[Interval, str] | None:
    """The condition's per-seed median-scaled abs_rel over the mean depth map's, and IMAGE_RULE on its t-interval."""
    floor = _mean_map_abs_rel(result)
    if floor is None or not floor > 0:
        return None
    ratios = [r.scale.metrics_median_scaled["abs_rel"] / floor for r in _condition_runs(result, c)]
    interval = Interval.of(ratios)
    return interval, image_verdict(interval.estimate()).verdict


def _image_text(result: SelfSupervisedStudyResult, c: ConditionSummary) -> str:
    """``"0.82 [0.78, 0.86] (reads the image)"``, or ``"n/a"`` without a mean map."""
    reading = _image_reading(result, c)
    return "n/a" if reading is None else f"{_interval_text(reading[0])} ({reading[1]})"


def mean_map_text(result: SelfSupervisedStudyResult, conditions: list[ConditionSummary]) -> str:
    """The sentence setting each condition's median-scaled abs_rel against the mean depth map's ('' without it)."""
    floor = _mean_map_abs_rel(result)
    readings = [(c, _image_reading(result, c)) for c in conditions]
    if floor is None or not conditions or any(r is None for _, r in readings):
        return ""
    text = (
        f" The training split's mean depth map, which never reads the image, scores {fmt(floor)} median-scaled "
        f"(from {result.mean_map_images_text()}); as a fraction of it, "
    )
    parts, unshown = [], []
    for c, reading in readings:
        assert reading is not None
        interval, verdict = reading
        parts.append(
            f"{c.model} {_interval_text(interval)} ({verdict}; {_seeds_beating_mean_map(result, c)} of "
            f"{len(c.seeds)} seeds below 1)"
        )
        if verdict != "reads the image":
            unshown.append(c.model)
    text += "; ".join(parts)
    if unshown:
        text += f": the depth structure of {' and '.join(dict.fromkeys(unshown))} is not shown to come from the image"
    return text + "."


def _condition_runs(result: SelfSupervisedStudyResult, c: ConditionSummary) -> list[SelfSupervisedRun]:
    """The runs (one per seed) a condition summarises."""
    return [
        r
        for r in result.runs
        if r.model == c.model and r.velocity_weight == c.velocity_weight and r.noise == c.noise and r.seed in c.seeds
    ]


def _seeds_learnt(result: SelfSupervisedStudyResult, c: ConditionSummary) -> int:
    """How many of the condition's runs have a median-scaled abs_rel below their constant predictor's."""
    return sum(
        1
        for r in _condition_runs(result, c)
        if r.scale.metrics_median_scaled.get("abs_rel", math.nan)
        < r.scale.constant_median_scaled.get("abs_rel", math.nan)
    )


def reversed_sources(run: SelfSupervisedRun) -> dict[int, float]:
    """Source offset -> median translation angle (degrees) for every source frame whose PoseNet translation points
    more than :data:`REVERSED_DEG` from the true motion (empty without a pose evaluation)."""
    if run.pose is None:
        return {}
    angles = zip(run.pose.offsets, (s["translation_angle_deg"] for s in run.pose.per_source))
    return {offset: angle for offset, angle in angles if angle > REVERSED_DEG}


def pose_direction_text(result: SelfSupervisedStudyResult, c: ConditionSummary) -> str:
    """One sentence per source frame that PoseNet reverses in any seed of ``c`` ('' when none does)."""
    runs = _condition_runs(result, c)
    by_offset: dict[int, list[float]] = {}
    for r in runs:
        for offset, angle in reversed_sources(r).items():
            by_offset.setdefault(offset, []).append(angle)
    return "".join(
        f" {c.model}'s PoseNet translation towards frame t{offset:+d} points backwards (more than "
        f"{REVERSED_DEG:g} degrees from the motion; median {statistics.median(angles):.1f}) in {len(angles)} of "
        f"{len(runs)} seeds: there the reprojection loss, the minimum over source frames, learns from the other "
        "source(s) only, and the depth's scale rests on them."
        for offset, angles in sorted(by_offset.items())
    )


def ignored_motion(c: ConditionSummary) -> list[str]:
    """:data:`POSE_MOTION_RULE` on one condition: the motions ("translation", "rotation") whose worse-source
    explained share has its 95 % interval over seeds below :data:`FOLLOWS_MOTION` (empty: none, or undecided)."""
    out = []
    for name, interval in (("translation", c.translation_explained), ("rotation", c.rotation_explained)):
        if interval.n >= 2 and math.isfinite(interval.high) and interval.high < FOLLOWS_MOTION:
            out.append(name)
    return out


def _mean_bias(result: SelfSupervisedStudyResult, c: ConditionSummary) -> str:
    """Per source, the rotation's mean Euler-angle error averaged over the condition's seeds (``''`` without)."""
    runs = [r for r in _condition_runs(result, c) if r.pose is not None]
    if not runs:
        return ""
    parts = []
    for i, offset in enumerate(runs[0].pose.offsets if runs[0].pose else []):
        means = [statistics.fmean(axis) for axis in zip(*(r.pose.bias_deg(i) for r in runs if r.pose))]
        if all(math.isfinite(m) for m in means):
            parts.append(f"t{offset:+d} " + ", ".join(f"{axis} {m:+.2f}" for axis, m in zip(AXES, means)))
    return "; ".join(parts)


def pose_motion_text(result: SelfSupervisedStudyResult, c: ConditionSummary) -> str:
    """The scale answer's sentence when PoseNet does not follow the motion (:data:`POSE_MOTION_RULE`), else ''."""
    ignored = ignored_motion(c)
    if not ignored:
        return ""
    bias = _mean_bias(result, c)
    return (
        f" {c.model}'s PoseNet does not follow the {' or the '.join(ignored)} from window to window: over test "
        f"windows it follows {_interval_text(c.translation_explained)} of the exact translation's variation and "
        f"{_interval_text(c.rotation_explained)} of the rotation's (1: every window's, 0: one motion for all), so "
        "every window whose speed or turn differs from the typical one is warped with the wrong motion"
        + (f"; its mean rotation error, shared by every window (degrees, seeds' mean): {bias}." if bias else ".")
    )


def _paired_differences(
    result: SelfSupervisedStudyResult, a: str, b: str, weight: float
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per seed both ran (clean speeds, ``weight``): abs_rel differences a - b, a's, b's and the constant's."""

    def runs(model: str) -> dict[int, Any]:
        return {
            r.seed: r
            for r in result.runs
            if r.model == model and r.velocity_weight == weight and (weight == 0 or r.noise == NoiseLevel())
        }

    ra, rb = runs(a), runs(b)
    seeds = sorted(set(ra) & set(rb))
    scaled = {m: [r[s].scale.metrics_median_scaled["abs_rel"] for s in seeds] for m, r in (("a", ra), ("b", rb))}
    constant = [ra[s].scale.constant_median_scaled["abs_rel"] for s in seeds]
    return [x - y for x, y in zip(scaled["a"], scaled["b"])], scaled["a"], scaled["b"], constant


def packnet_vs_densedepth_answer(result: SelfSupervisedStudyResult) -> Answer:
    """The rule :data:`BEATS_RULE` on ``result`` (see the module docstring)."""
    models = list(dict.fromkeys(r.model for r in result.runs))
    packnets = [m for m in models if model_family(m) == "packnet"]  # the zoo's families, not name substrings
    baselines = [m for m in models if model_family(m) == "densedepth"]
    weights = sorted({r.velocity_weight for r in result.runs})
    evidence, verdicts, parts = [], [], []
    for p in packnets:
        for d in baselines:
            for weight in weights:
                diffs, pa, da, constant = _paired_differences(result, p, d, weight)
                if not diffs:
                    continue
                interval = Interval.of(diffs)
                floor = Interval.of(constant).mean
                below_floor = [m for m, v in ((p, pa), (d, da)) if Interval.of(v).mean < floor]
                difference = paired_difference(pa, da)  # PackNet minus DenseDepth, seed by seed
                verdict = decide(difference, above="no", below="yes").verdict if below_floor else "inconclusive"
                label = NO_VELOCITY_LABEL if weight == 0 else f"velocity {weight:g}, clean"
                verdicts.append(verdict)
                # a win over a model that learnt no depth says little about the architectures: say so
                unlearnt = [m for m in (p, d) if m not in below_floor]
                note = (
                    ", neither beats the constant predictor"
                    if not below_floor
                    else f", {' and '.join(unlearnt)} does not beat the constant predictor"
                    if unlearnt
                    else ""
                )
                parts.append(f"{p} minus {d}, {label}: {_interval_text(interval)} ({verdict}{note})")
                evidence.append(
                    {
                        "condition": label,
                        "PackNet": p,
                        "DenseDepth": d,
                        "paired seeds": interval.n,
                        f"{p} abs_rel (scaled)": _interval_text(Interval.of(pa)),
                        f"{d} abs_rel (scaled)": _interval_text(Interval.of(da)),
                        "constant predictor": fmt(floor),
                        "difference, mean [95 % CI]": _interval_text(interval),
                        "verdict": verdict,
                    }
                )
    if not verdicts:
        return Answer(
            BEATS_QUESTION,
            "inconclusive",
            "Inconclusive: the study did not train both a PackNet model and "
            "DenseDepth on a common condition, so they cannot be compared.",
            BEATS_RULE,
            evidence,
        )
    verdict = _combine(verdicts)
    lead = {"yes": "Yes", "no": "No", "partly": "Partly", "inconclusive": "Inconclusive"}[verdict]
    sentence = f"{lead}: median-scaled abs_rel differences (negative: PackNet better) are " + "; ".join(parts) + "."
    clean = [c for c in result.conditions if c.noise == NoiseLevel() and c.model in (*packnets, *baselines)]
    sentence += mean_map_text(result, clean)
    return Answer(BEATS_QUESTION, verdict, sentence, BEATS_RULE, evidence)


@QUESTIONS.register("self_supervised_scale", description=SCALE_QUESTION, order=60)
def velocity_gives_metric_scale(results: Results) -> Answer | None:
    result = results.first(SelfSupervisedStudyResult)
    return None if result is None else metric_scale_answer(result)


@QUESTIONS.register("self_supervised_models", description=BEATS_QUESTION, order=61)
def packnet_beats_densedepth(results: Results) -> Answer | None:
    result = results.first(SelfSupervisedStudyResult)
    return None if result is None else packnet_vs_densedepth_answer(result)


def _conditions_table(result: SelfSupervisedStudyResult) -> Table:
    rows = [
        {
            "model": c.model,
            "condition": _condition_label(c),
            "seeds": ",".join(str(s) for s in c.seeds),
            "scale factor": _interval_text(c.scale_ratio),
            "scale factor, no crop": _interval_text(c.scale_ratio_uncropped),
            "abs_rel, metric": _interval_text(c.abs_rel_metric),
            "abs_rel, median-scaled": _interval_text(c.abs_rel_median_scaled),
            "delta1, median-scaled": _interval_text(c.delta1_median_scaled),
            "constant predictor abs_rel": _interval_text(c.constant_abs_rel),
            "PoseNet |t| / distance": _interval_text(c.translation_ratio),
            "PoseNet t angle (deg)": _interval_text(c.translation_angle, decimals=1),
            "PoseNet motion followed (translation; rotation)": (
                f"{_interval_text(c.translation_explained)}; {_interval_text(c.rotation_explained)}"
            ),
            "photometric-best depth multiplier": _interval_text(c.photometric_multiplier),
            "depth-range slope": _interval_text(c.range_slope),
            "loss-best range exponent (own, exact poses)": (
                f"{_interval_text(c.range_exponent)}; {_interval_text(c.range_exponent_exact)}"
            ),
        }
        for c in result.conditions
    ]
    return Table(rows, "self_supervised.json: mean [95 % t-interval] over seeds per condition")


# optional: `probe study` does not run the self-supervised experiment, so its report does not list these as not run
@SECTIONS.register(
    "self_supervised_scale", description=SCALE_QUESTION, needs=(SelfSupervisedStudyResult,), order=75, optional=True
)
def scale_section(results: Results) -> Section | None:
    result = results.first(SelfSupervisedStudyResult)
    if result is None:
        return None
    blocks: list[Block] = [AnswerBlock(metric_scale_answer(result))]
    if result.runs:
        blocks.append(
            figure_from_matplotlib(
                plot_scale_vs_noise(result),
                "Scale factor per velocity-noise level "
                "(dots: seeds; diamonds: mean and 95 % t-interval; band: within 10 % "
                "of 1)",
                "scale_noise",
            )
        )
    blocks.append(
        Paragraph(
            "Noise acts on the reported speed of the training split only; every run is scored on "
            "the clean test split. Without the velocity loss nothing ties depth to metres, so its "
            "scale factor is shown for contrast. The velocity loss fixes the length of PoseNet's "
            "translation; the depth follows it only where the translation also points the right way "
            "(the angle column: the worse of the source frames, median over test windows), and only where "
            "PoseNet follows each window's motion rather than one typical motion for all (the motion column: "
            "the share of the exact translation's and rotation's variation across test windows it follows, "
            "worse source; 1 all, 0 none)."
        )
    )
    blocks.append(_conditions_table(result))
    for table in (_pose_runs_table(result), _depth_profile_table(result)):
        if table is not None:
            blocks.append(table)
    return Section("self_supervised_scale", SCALE_QUESTION, blocks)


def _pose_runs_table(result: SelfSupervisedStudyResult) -> Table | None:
    """One row per run scored against exact poses: how much of the motion its PoseNet follows per source, its
    shared rotation error, and the run's scale factors, so the seeds whose PoseNet follows the motion can be set
    against their scale (None when no run has the motion fields)."""
    runs = [r for r in result.runs if r.pose and r.pose.per_source and "translation_explained" in r.pose.per_source[0]]
    if not runs:
        return None

    def per_source(run: SelfSupervisedRun, name: str, digits: int = 2) -> str:
        assert run.pose is not None
        return "; ".join(
            # + 0.0 after rounding: no "-0.00" for an error that rounds to nothing
            f"t{o:+d} {round(s.get(name, math.nan), digits) + 0.0:.{digits}f}"
            for o, s in zip(run.pose.offsets, run.pose.per_source)
        )

    rows = [
        {
            "run": r.id,
            "translation followed": per_source(r, "translation_explained"),
            "rotation followed": per_source(r, "rotation_explained"),
            "pitch error (deg)": per_source(r, "pitch_bias_deg"),
            "yaw error (deg)": per_source(r, "yaw_bias_deg"),
            "scale factor": fmt(r.scale.ratio["median"]),
            "scale factor, no crop": fmt(r.scale.ratio_uncropped.get("median", math.nan)),
        }
        for r in runs
    ]
    return Table(
        rows,
        "PoseNet per run (test split): the share of the exact translation's (after its best scale) and rotation's "
        "variation across windows it follows (1: every window's motion, 0: one motion for all), its mean pitch and "
        "yaw error shared by every window, and the run's scale factors",
    )


def _depth_profile_table(result: SelfSupervisedStudyResult) -> Table | None:
    """Per ground-truth depth bin: how far a 25 % depth error moves the reprojection, and each condition's
    median-scaled depth over the truth there (mean [95 % t-interval] over seeds); None without either."""
    obs = result.observability
    edges = [(b.low, b.high) for b in obs.bins] if obs else []
    for run in result.runs:
        edges = edges or [(b.low, b.high) for b in run.scale.ratio_by_depth]
    if not edges:
        return None
    rows = []
    for k, (low, high) in enumerate(edges):
        row: dict[str, Any] = {"ground truth (m)": f"{low:g}-{high:g}"}
        if obs is not None:
            row[f"shift of a {obs.multiplier - 1:.0%} error (px)"] = fmt(obs.bins[k].median)
        for c in result.conditions:
            group = [r for r in result.runs if r.condition == (c.model, c.velocity_weight, c.noise)]
            values = [r.scale.ratio_by_depth[k].median for r in group if len(r.scale.ratio_by_depth) > k]
            row[f"{c.model}, {_condition_label(c)}: s*pred/gt"] = _interval_text(Interval.of(values))
        rows.append(row)
    return Table(
        rows,
        "Depth profile: per ground-truth depth bin, the reprojection shift a depth error causes (exact poses, test "
        "split) and each condition's depth after whole-image median scaling over the truth (1: right shape; above 1 "
        "near and below 1 far: a compressed range)",
    )


@SECTIONS.register(
    "self_supervised_models", description=BEATS_QUESTION, needs=(SelfSupervisedStudyResult,), order=76, optional=True
)
def models_section(results: Results) -> Section | None:
    result = results.first(SelfSupervisedStudyResult)
    if result is None:
        return None
    cfg = result.config
    size = "x".join(str(v) for v in cfg.input_size) if cfg.input_size else "the dataset's size"
    steps = f"{cfg.max_steps} steps" if cfg.max_steps else f"{cfg.epochs} epoch(s)"
    schedule = {"constant": "constant", "cosine": "cosine schedule"}.get(
        cfg.lr_schedule, f"halved every {cfg.lr_decay_every} steps"
    )
    recipe = f" (recipe {cfg.recipe})" if cfg.recipe else ""
    budget = (
        f"Budget per run{recipe}: {steps}, batch {cfg.batch_size}, width {cfg.width:g}, PoseNet width "
        f"{cfg.pose_width:g} ({cfg.pose_inputs}, translations scaled by {cfg.pose_translation_scale:g}), input "
        f"{size}, lr {cfg.lr:g} (pose {cfg.pose_lr or cfg.lr:g}, {schedule}), on {cfg.dataset}."
    )
    runs = [
        {
            "run": r.id,
            "params": r.params,
            "steps": r.steps,
            "reprojection first -> last": f"{fmt(r.reprojection_first, 4)} -> {fmt(r.reprojection_last, 4)}",
            "abs_rel, median-scaled": r.scale.metrics_median_scaled["abs_rel"],
            "constant predictor": r.scale.constant_median_scaled["abs_rel"],
            "scale factor": r.scale.ratio["median"],
        }
        for r in result.runs
    ]
    if result.mean_map is not None:  # the image-blind baseline, scored by the same protocol
        runs.append(
            {
                "run": f"mean depth map of {result.mean_map_images_text()} (not trained, never reads the image)",
                "params": 0,
                "steps": 0,
                "reprojection first -> last": "n/a",
                "abs_rel, median-scaled": result.mean_map.metrics_median_scaled["abs_rel"],
                "constant predictor": result.mean_map.constant_median_scaled["abs_rel"],
                "scale factor": result.mean_map.ratio["median"],
            }
        )
    return Section(
        "self_supervised_models",
        BEATS_QUESTION,
        [
            AnswerBlock(packnet_vs_densedepth_answer(result)),
            Paragraph(budget),
            Table(runs, "every run of self_supervised.json"),
        ],
    )
