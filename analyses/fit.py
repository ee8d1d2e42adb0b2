"""Can the model fit its own training images?  The "overfit a small training set" sanity check.

A network that cannot drive its error down on a handful of images it sees at every step fails to *optimise*;
whether it generalises is a later question (Karpathy's recipe for training networks; Zhang et al. 2017 show
that ordinary networks memorise even random labels).  For each model, each training-set size N and each seed,
:func:`run` trains on exactly the first N items of the training split for ``steps`` steps (augmentation off),
then scores the trained model with :func:`probe.heldout.held_out_score` twice:

- on those same N training images (``train``): did it fit them?
- on the first ``test_images`` items of the test split (``test``): what did that give on unseen images?

Both scores are the abs_rel ratios against the per-image-median constant predictor, raw and scale-matched
(the model's abs_rel after per-image median scaling over the constant's).  Over seeds each ratio is a mean with
a 95% Student t interval; with one seed the paired bootstrap over the images that the score already carries.
:data:`probe.rules.FIT_RULE` calls a model at one N ``fits`` when the whole interval of its train-set
scale-matched ratio lies below :data:`probe.rules.FIT_BELOW` (controls: :func:`probe.controls.fit_predictions`).

Each (model, N, seed) training run is an ordinary run folder, ``OUT/<model>/images_<N>/seed_<s>`` (its
config.json, train.json, metrics.jsonl and checkpoint); ``OUT/fit.json`` and ``OUT/fit.png`` hold the analysis.

>>> result = run(FitConfig(models=["packnet_slim_b", "densedepth"], images=[8, 16, 64], width=0.0625,
...                        input_size=(64, 96), device="cpu", out=Path("runs/fit")))   # doctest: +SKIP
>>> result.save("runs/fit")                                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from probe.data import dataset_info, get_dataset
from probe.errors import ProbeError
from probe.heldout import HeldOutSummary, held_out_dataset, held_out_score
from probe.io import ensure_dir
from probe.jobs import Job, Launch, run_jobs
from probe.limits import (
    MAX_BATCH_SIZE,
    MAX_HELD_OUT_IMAGES,
    MAX_ITEMS,
    MAX_STEPS,
    check_count,
    check_input_size,
    check_positive_float,
    check_width,
)
from probe.losses import LOSSES, check_loss_scales
from probe.mean_map import mean_depth_map
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
from probe.report.answers import QUESTIONS, Answer, shown, with_controls
from probe.report.collect import Results
from probe.report.document import Block, Section, Table, figure_from_matplotlib
from probe.report.sections import SECTIONS, answer_section
from probe.results import Result, register_result
from probe.roles import ModelSelection, Roles, baselines_option
from probe.rules import FIT_BELOW, FIT_RULE, fit_call, interval_text, largest_fitted
from probe.schema import encode
from probe.seeding import check_seed, seed_list
from probe.stats import Estimate, Verdict, decide, paired_estimate, seed_interval
from probe.training import TrainConfig, train

#: Images the held-out (test-split) score uses by default: enough for a bootstrap, cheap on a CPU.
TEST_IMAGES = 16


def parse_image_counts(text: str, flag: str = "--images") -> list[int]:
    """``"8,16,64"`` -> ``[8, 16, 64]``: training-set sizes, each a positive integer, sorted, no repeats.

    >>> parse_image_counts("64, 8,16")
    [8, 16, 64]
    """
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p.isdigit() for p in parts):
        raise ProbeError(f"{flag}: expected training-set sizes as positive integers, e.g. 8,16,64, got {text!r}")
    counts = [int(p) for p in parts]
    if len(set(counts)) != len(counts):
        raise ProbeError(f"{flag}: a training-set size is given twice in {text!r}")
    return sorted(counts)


@dataclass
class FitConfig(ModelSelection):
    """``probe fit``: train each model on the first N training images for ``steps`` steps, for each N and seed,
    and score it on those images and on held-out ones.  The defaults are the CPU standard budget's protocol."""

    models: list[str] = option(
        default_factory=list,
        flag="--model",
        help="model under study: a zoo name or SPEC (repeat to compare on the same images)",
    )
    baselines: list[str] = baselines_option()
    model_options: dict[str, Any] = model_options_option(scoped=True)
    images: list[int] = option(
        default_factory=lambda: [8, 16, 64],
        parse=parse_image_counts,
        shown="8,16,64",
        help="training-set sizes N, e.g. 8,16,64: each run trains on the first N items of the training split",
    )
    steps: int = option(600, help="training steps per run")
    batch_size: int = option(8, help="training batch size (capped at N: a step never repeats an image)")
    lr: float = option(3e-3, help="Adam learning rate (the CPU budgets': 3e-3)")
    loss: str = option("densedepth", help="the training loss (densedepth|l1_inverse|silog|berhu)")
    loss_scales: str = option("finest", help="finest | all (mean over PackNet's output scales)")
    width: float = width_option(0.0625)
    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    input_size: tuple[int, int] | None = input_size_option((64, 96))
    test_images: int = option(TEST_IMAGES, help="held-out test images each trained model is also scored on")
    device: str = device_option()
    seed: int = seed_option()
    seeds: int | list[int] | None = seeds_option()
    out: Path = out_option(Path("runs/fit"))

    def validate(self) -> None:
        """Raise a one-line ProbeError naming the flag for any impossible value, before any training."""
        if not self.models:
            raise ProbeError("--model: give at least one model name")
        if not isinstance(self.images, list) or not self.images:
            raise ProbeError("--images: give at least one training-set size, e.g. 8,16,64")
        for n in self.images:
            check_count("--images", n, MAX_ITEMS)
        if len(set(self.images)) != len(self.images):
            raise ProbeError(f"--images: a training-set size is given twice in {self.images}")
        check_count("--steps", self.steps, MAX_STEPS)
        check_count("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        check_positive_float("--lr", self.lr, what="a positive learning rate")
        if self.loss not in LOSSES.names():
            raise ProbeError(f"--loss: expected one of {', '.join(LOSSES.names())}, got {self.loss!r}")
        check_loss_scales(self.loss_scales)
        check_width(self.width)
        check_input_size(self.input_size)
        check_count("--test-images", self.test_images, MAX_HELD_OUT_IMAGES)
        check_seed(self.seed)
        seed_list(self.seeds, self.seed)
        info = dataset_info(self.dataset)
        if info.needs_root:
            raise ProbeError(
                f"--dataset {self.dataset}: fit cuts the training split to its first N items, which training does "
                "only for generated datasets (e.g. synthetic, synthetic_outdoor)"
            )
        self.validate_models()
        for name in self.compared():  # the training runs' own checks (objective, options), before any of them runs
            self.train_config(name, self.images[0], self.seed).validate()

    def train_config(self, model: str, images: int, seed: int) -> TrainConfig:
        """The training run of ``model`` on the first ``images`` training items with ``seed``."""
        return TrainConfig(
            model=model,
            model_options=self.options_for(model),
            width=self.width,
            dataset=self.dataset,
            data_root=self.data_root,
            input_size=self.input_size,
            dataset_length=images,
            augment=False,
            epochs=None,  # exactly `steps` steps, over as many passes over the N images as they need
            max_steps=self.steps,
            batch_size=min(self.batch_size, images),
            lr=self.lr,
            loss=self.loss,
            loss_scales=self.loss_scales,
            device=self.device,
            seed=seed,
            workers=0,
            out=self.out / file_safe_name(model) / f"images_{images}" / f"seed_{seed}",
        )


def training_images(config: TrainConfig) -> Any:
    """The images the run of ``config`` trained on, without augmentation: its dataset's training split, cut to
    ``dataset_length`` and rendered with the run's seed (a generated item depends on it)."""
    options = {**config.dataset_options, "augment": False, "seed": config.seed, "length": config.dataset_length}
    return get_dataset(config.dataset, config.data_root, split="train", input_size=config.input_size, **options)


# -- the result ---------------------------------------------------------------------------------


@dataclass
class FitRun:
    """One model trained on the first ``images`` training items with one seed, scored on them and on test ones."""

    model: str
    images: int
    seed: int
    steps: int
    run_dir: str  # the training run's folder
    train: HeldOutSummary  # scored on the N images it trained on
    test: HeldOutSummary  # scored on the first test_images items of the test split


@dataclass
class FitCell:
    """One model at one training-set size over its seeds: the four ratios with intervals and the rule's call.

    One seed: the run's own ratios (paired bootstrap over its images); several: Student t over the seeds.
    """

    model: str
    images: int
    seeds: list[int]
    train_ratio: Estimate  # abs_rel / the constant's, on the training images
    train_scale_matched_ratio: Estimate  # what FIT_RULE judges
    test_ratio: Estimate
    test_scale_matched_ratio: Estimate
    verdict: str  # fits | does not fit | inconclusive

    @classmethod
    def of(cls, runs: list[FitRun]) -> FitCell:
        one = runs[0]

        def over(part: str, ratio: str) -> Estimate:
            """``ratio`` (an Estimate of HeldOutSummary) of ``part`` (train | test): the run's own, or over seeds."""
            if len(runs) == 1:
                return getattr(getattr(one, part), ratio)
            return seed_interval([getattr(getattr(r, part), ratio).mean for r in runs])

        fitted = over("train", "scale_matched_ratio")
        return cls(
            model=one.model,
            images=one.images,
            seeds=[r.seed for r in runs],
            train_ratio=over("train", "ratio"),
            train_scale_matched_ratio=fitted,
            test_ratio=over("test", "ratio"),
            test_scale_matched_ratio=over("test", "scale_matched_ratio"),
            verdict=fit_call(fitted).verdict,
        )


def cells_of(runs: list[FitRun]) -> list[FitCell]:
    """One :class:`FitCell` per (model, N), in the order the runs first name them."""
    groups: dict[tuple[str, int], list[FitRun]] = {}
    for r in runs:
        groups.setdefault((r.model, r.images), []).append(r)
    return [FitCell.of(group) for group in groups.values()]


@register_result
@dataclass
class FitResult(Result):
    """Every (model, N, seed) run and each model at each N over its seeds.

    ``save(DIR)`` writes ``fit.json`` and ``fit.png``."""

    name: ClassVar[str] = "fit"
    schema_version: ClassVar[int] = 2  # 2: held-out scores with the mean depth map's fields
    runs: list[FitRun]
    cells: list[FitCell]
    roles: Roles  # which models are under study and which are baselines
    config: dict[str, Any] = field(default_factory=dict)
    rule: str = FIT_RULE

    @classmethod
    def of(cls, runs: list[FitRun], roles: Roles, config: dict[str, Any] | None = None) -> FitResult:
        return cls(runs=runs, cells=cells_of(runs), roles=roles, config=config or {})

    def models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.cells))

    def largest_fitted(self, model: str) -> int | None:
        """The largest N the model fits (:data:`probe.rules.FIT_RULE`); None: none."""
        return largest_fitted({c.images: c.verdict for c in self.cells if c.model == model})

    def figures(self, out_dir: Path) -> list[Path]:
        from probe.plotting import plt, save_figure

        fig, ax = plt.subplots(figsize=(8, 4.5))
        draw_fit(ax, self)
        return [save_figure(fig, Path(out_dir) / "fit.png")]


def fit_one(config: FitConfig, model: str, images: int, seed: int) -> FitRun:
    """One job of :func:`run`: train ``model`` on the first ``images`` training items with ``seed``, then score it
    on those items and on the first ``config.test_images`` of the test split."""
    cfg = config.train_config(model, images, seed)
    result = train(cfg)
    resumed = result.summary.resumed_from_step if result.summary is not None else None
    if result.model is None or result.steps - (resumed or 0) != config.steps:
        raise ProbeError(
            f"fit: {model} on {images} images trained {result.steps} steps, not the --steps {config.steps}"
        )
    device = next(result.model.parameters()).device
    fit_set = training_images(cfg)
    layout = mean_depth_map(fit_set)  # the N images' own mean map: what memorising their layout scores
    fitted = held_out_score(result.model, fit_set, batch_size=8, device=device, seed=seed, mean_map=layout)
    if fitted.n_images != images:
        raise ProbeError(f"fit: {images} training images were asked for, {fitted.n_images} could be scored")
    test_set = held_out_dataset(cfg.dataset, cfg.data_root, cfg.input_size, config.test_images)
    held_out = held_out_score(result.model, test_set, batch_size=8, device=device, seed=seed, mean_map=layout)
    return FitRun(model, images, seed, config.steps, str(result.out), fitted.summary(), held_out.summary())


def run(config: FitConfig, progress: Any | None = None, launch: Launch | None = None) -> FitResult:
    """Train and score every (model, N, seed), each a job of :func:`fit_one` in its own run folder, run as
    ``launch`` says (default: one after another here; ``--parallel N``: side by side, numbers unchanged for a
    fixed ``--threads-per-run``).  ``progress`` (a rich Progress) advances once per finished run."""
    config.validate()
    launch = launch if launch is not None else Launch()
    launch.validate()
    ensure_dir(config.out, "--out")
    seeds = seed_list(config.seeds, config.seed)
    cells = [(model, n, seed) for model in config.compared() for n in config.images for seed in seeds]
    jobs = [
        Job(
            f"fit {model} on {n} images, seed {seed}",
            config.train_config(model, n, seed).out,
            fit_one,
            (config, model, n, seed),
        )
        for model, n, seed in cells
    ]
    task = progress.add_task("fit", total=len(jobs)) if progress is not None else None
    # in this process one job at a time, so the bar names each run; side by side the bar moves once at the end
    batches = [[job] for job in jobs] if launch.in_process else [jobs]
    runs: list[FitRun] = []
    for batch in batches:
        if progress is not None and task is not None:
            what = batch[0].name if len(batch) == 1 else f"fit: {len(batch)} runs, {launch.parallel or 'all'} at once"
            progress.update(task, description=what)
        runs += run_jobs(batch, launch, device=config.device, out=config.out, what="fit")
        if progress is not None and task is not None:
            progress.update(task, advance=len(batch))
    return FitResult.of(runs, config.roles(), encode(config))


# -- the figure ---------------------------------------------------------------------------------


def draw_fit(ax: Any, result: FitResult) -> None:
    """Train-set scale-matched ratio (solid) and test-set ratio (dashed) against N, one colour per model, mean and
    95% interval as error bars; each seed as a dot; the rule's threshold as a grey line."""
    from probe.plotting import log_axis, sns

    palette = dict(zip(result.models(), sns.color_palette(n_colors=max(1, len(result.models())))))
    for model, colour in palette.items():
        cells = sorted((c for c in result.cells if c.model == model), key=lambda c: c.images)
        xs = [c.images for c in cells]
        for pick, style, label in (
            (lambda c: c.train_scale_matched_ratio, "-", "training images"),
            (lambda c: c.test_scale_matched_ratio, "--", "test images"),
        ):
            means = [pick(c).mean for c in cells]
            lows = [m - (pick(c).low if pick(c).low is not None else m) for c, m in zip(cells, means)]
            highs = [(pick(c).high if pick(c).high is not None else m) - m for c, m in zip(cells, means)]
            ax.errorbar(
                xs, means, yerr=[lows, highs], ls=style, marker="o", color=colour, capsize=3, label=f"{model}, {label}"
            )
        seeds = [(r.images, r.train.scale_matched_ratio.mean) for r in result.runs if r.model == model]
        ax.scatter([x for x, _ in seeds], [y for _, y in seeds], s=10, color=colour, alpha=0.5)
    ax.axhline(FIT_BELOW, ls=":", c="grey")
    ax.axhline(1.0, ls="-", lw=0.5, c="grey")
    ax.set_ylim(bottom=0.0)  # 0: the ground truth itself
    ratios = [e.mean for c in result.cells for e in (c.train_scale_matched_ratio, c.test_scale_matched_ratio)]
    if any(math.isfinite(r) for r in ratios):  # a log axis needs a drawn point (none known: the panel stays linear)
        log_axis(ax, "x")
        ax.set_xticks(sorted({c.images for c in result.cells}))
    ax.set(
        xlabel="training images N (the first N of the training split)",
        ylabel="scale-matched abs_rel / constant's",
        title=f"Can the model fit its own training images? (dotted: the rule's {FIT_BELOW:g}; 1: the constant)",
    )
    ax.legend(fontsize=7)


# -- the report ---------------------------------------------------------------------------------

FIT_QUESTION = "Can the model fit its own training images?"


def _model_phrase(result: FitResult, model: str, name: str) -> str:
    cells = sorted((c for c in result.cells if c.model == model), key=lambda c: c.images)
    largest = result.largest_fitted(model)
    parts = ", ".join(f"{c.images}: {c.verdict} ({shown(c.train_scale_matched_ratio)})" for c in cells)
    head = f"fits up to {largest} images" if largest is not None else "fits none of the sizes tried"
    return f"{name} {head} in {result.config.get('steps', '?')} steps ({parts})"


def paired_with_baseline(result: FitResult, model: str, baseline: str) -> list[tuple[int, Verdict]]:
    """Per training-set size both models were trained at: ``model``'s train-set scale-matched ratio minus
    ``baseline``'s, paired by seed (a seed trains both on the same N images, so what the images share drops out of
    the spread), with a Student t interval over the per-seed differences and the verdict of
    :func:`probe.stats.decide` at 0.  Sizes with fewer than two shared seeds give no interval and are left out.
    """

    def per_seed(name: str, n: int) -> dict[int, float]:
        return {r.seed: r.train.scale_matched_ratio.mean for r in result.runs if r.model == name and r.images == n}

    out = []
    for n in sorted({c.images for c in result.cells if c.model == model}):
        a, b = per_seed(model, n), per_seed(baseline, n)
        seeds = sorted(set(a) & set(b))
        if len(seeds) < 2:
            continue
        estimate = paired_estimate([a[s] for s in seeds], [b[s] for s in seeds])
        out.append((n, decide(estimate, above="fits worse", below="fits better")))
    return out


def _paired_phrase(result: FitResult, model: str, baseline: str, names: Roles) -> str | None:
    pairs = paired_with_baseline(result, model, baseline)
    if not pairs:
        return None
    parts = ", ".join(
        f"{n}: {v.verdict}" + (f" ({interval_text(v.estimate)})" if v.estimate is not None else "") for n, v in pairs
    )
    return (
        f"against {names.display(baseline)}, paired by seed (each seed trains both on the same images; "
        f"{names.display(model)} minus {names.display(baseline)}), {parts}"
    )


def fit_answer(result: FitResult) -> Answer:
    """:data:`FIT_RULE` on every model under study: yes when each fits every N tried, no when each fits none,
    partly when one fits some N and not others, inconclusive when a call is inconclusive and none is 'does not
    fit'."""
    roles = result.roles
    rule = with_controls(FIT_RULE, "fit", gated=False)
    evidence = [
        {
            "model": c.model,
            **roles.evidence(c.model),
            "N": c.images,
            "seeds": len(c.seeds),
            "train, scale-matched": interval_text(c.train_scale_matched_ratio),
            "train, raw": interval_text(c.train_ratio),
            "test, scale-matched": interval_text(c.test_scale_matched_ratio),
            "test, raw": interval_text(c.test_ratio),
            "verdict": c.verdict,
        }
        for c in result.cells
    ]
    studied = [m for m in result.models() if roles.under_study(m)]
    if not studied:
        sentence = "No model under study was trained, so the question cannot be answered from these runs."
        return Answer(FIT_QUESTION, "inconclusive", sentence, rule, evidence)
    verdicts = {c.verdict for c in result.cells if c.model in studied}
    if verdicts == {"fits"}:
        verdict = "yes"
    elif verdicts == {"does not fit"}:
        verdict = "no"
    elif "fits" in verdicts and "does not fit" in verdicts:
        verdict = "partly"
    else:
        verdict = "inconclusive"
    lead = {"yes": "Yes", "no": "No", "partly": "Partly", "inconclusive": "Inconclusive"}[verdict]
    phrases = "; ".join(_model_phrase(result, m, roles.display(m)) for m in studied)
    baselines = [m for m in result.models() if not roles.under_study(m)]
    paired = [p for m in studied for b in baselines if (p := _paired_phrase(result, m, b, roles)) is not None]
    more = "".join(f" Compared {p}." for p in paired)
    return Answer(FIT_QUESTION, verdict, f"{lead}: {phrases}.{more}", rule, evidence)


@QUESTIONS.register("fit", description=FIT_QUESTION, order=25)
def model_fits(results: Results) -> Answer | None:
    result = results.first(FitResult)
    return None if result is None or not result.cells else fit_answer(result)


@SECTIONS.register("fit", description=FIT_QUESTION, needs=(FitResult,), order=45)
def fit_section(results: Results) -> Section | None:
    from probe.plotting import plt

    result = results.first(FitResult)
    if result is None or not result.cells:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    draw_fit(ax, result)
    caption = (
        "Scale-matched abs_rel over the per-image-median constant's against the training-set size N: on the N "
        "training images (solid) and on held-out test images (dashed); mean and 95% interval, dots: each seed"
    )
    extra: list[Block] = [
        figure_from_matplotlib(fig, caption, "fit"),
        Table(
            [
                {
                    "model": r.model,
                    "N": r.images,
                    "seed": r.seed,
                    "steps": r.steps,
                    "train, scale-matched": f"{r.train.scale_matched_ratio.mean:.3g}",
                    "train abs_rel (constant)": f"{r.train.abs_rel:.3g} ({r.train.constant_abs_rel:.3g})",
                    "test, scale-matched": f"{r.test.scale_matched_ratio.mean:.3g}",
                    "run folder": r.run_dir,
                }
                for r in result.runs
            ],
            "fit.json: every run",
        ),
    ]
    return answer_section("fit", FIT_QUESTION, results, extra)
