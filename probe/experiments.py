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
on CUDA, or one submitit job each with ``--launcher slurm``) with the same numbers as
one after another.  :func:`study_differences` is that comparison: every field but
the timings (:data:`TIMING_FIELDS`) and where and how the runs ran.

>>> result = run_seed_study(SeedStudyConfig(quick=True, out=Path("runs/seed")))  # doctest: +SKIP
>>> [row["mean_epoch_loss"] for row in result.rows]                              # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from analyses.base import AnalysisResult
from probe.errors import ProbeError
from probe.jobs import Job, Launch, check_preemptible, json_differences, run_jobs
from probe.registry import Registry
from probe.runs import run_folder_lock
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


def _define(id: str, title: str, seed_number: int | None, model: Callable[[bool], str], options: dict[str, Any],
            seed_mean_loss: float | None, seed_note: str) -> None:
    """Register an experiment; ``model(slim)`` names the network for the slim or full PackNet."""
    def factory(slim: bool) -> Experiment:
        return Experiment(id, title, seed_number, model(slim), dict(options), seed_mean_loss, seed_note)

    EXPERIMENTS.register(id, description=title)(factory)


_define("densedepth", "DenseDepth (no pretraining), the baseline", None, lambda slim: "densedepth", {},
        0.401, "baseline: mean loss 0.401 over one NYU epoch")
_define("exp1_packnet_b", "PackNet version B (skips added)", 1, lambda slim: _packnet("b", slim), _HALF,
        0.612, "mean loss 0.612; early drop then slow; high batch-to-batch variance")
_define("exp2_packnet_a", "PackNet version A (skips concatenated)", 2, lambda slim: _packnet("a", slim), _HALF,
        0.623, "mean loss 0.623, comparable to version B")
_define("exp3_leaky_relu", "PackNet B with leaky-ReLU depth heads", 3, lambda slim: _packnet("b", slim),
        {**_HALF, "activation": "leaky_relu"}, None, "aborted after ~30 min at about 0.66")
_define("exp4_direct", "PackNet B predicting depth instead of inverse depth", 4, lambda slim: _packnet("b", slim),
        {**_HALF, "target": "direct"}, 0.731, "mean loss 0.731, worse")
_define("exp5_no_skips", "PackNet without skips (version C)", 5, lambda slim: _packnet("c", slim), _HALF,
        None, "aborted after ~30 min with mean loss > 1.21")


def seed_study_experiments(slim: bool = True, only: list[str] | None = None) -> list[Experiment]:
    """The matrix in registration order (optionally a subset by id)."""
    names = only if only else EXPERIMENTS.names()
    return [EXPERIMENTS.build(name, slim) for name in names]


@dataclass
class SeedStudyConfig:
    """The seed's hyper-parameters; ``quick`` shrinks widths, images and data to a CPU-minutes smoke run."""

    dataset: str = "synthetic"
    data_root: Path | None = None
    slim: bool = True
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 4
    lr: float = 1e-4
    width: float = 1.0
    input_size: tuple[int, int] | None = None
    dataset_length: int | None = None
    device: str = "auto"
    seed: int = 0
    workers: int = 2
    precision: str | None = None
    checkpoint_every: int | None = None  # also what a preempted SLURM job can lose at most
    quick: bool = False
    evaluate: bool = True
    eval_length: int | None = None
    only: list[str] | None = None
    out: Path = Path("runs/seed-study")

    def resolved(self) -> "SeedStudyConfig":
        """Apply ``quick``: width 1/16, 64x96 images, 96 synthetic training samples (24 steps), 32 test samples."""
        if not self.quick:
            return self
        if self.dataset != "synthetic":
            raise ProbeError(f"--quick: uses the synthetic data; got --dataset {self.dataset}")
        return replace(self, width=min(self.width, 0.0625), input_size=self.input_size or (64, 96),
                       dataset_length=self.dataset_length or 96, eval_length=self.eval_length or 32, workers=0)


@dataclass
class SeedStudyResult(AnalysisResult):
    """Per experiment: model, options, params, losses (mean, spread, first 100, curve), time, eval metrics."""

    name = "experiments"
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    launch: dict[str, Any] = field(default_factory=lambda: Launch().to_json())  # how the runs were run

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "launch": self.launch, "experiments": self.rows}

    def figures(self, out_dir: Path) -> list[Path]:
        return [plot_loss_curves(self.rows, Path(out_dir) / "experiments_loss.png")]


def train_config_for(experiment: Experiment, config: SeedStudyConfig) -> TrainConfig:
    """The TrainConfig of one experiment: identical data, seed and hyper-parameters for every model."""
    run_dir = Path(config.out) / experiment.id
    return TrainConfig(
        model=experiment.model, model_options=dict(experiment.options), width=config.width, dataset=config.dataset,
        data_root=config.data_root, input_size=config.input_size, dataset_length=config.dataset_length,
        epochs=config.epochs, max_steps=config.max_steps, batch_size=config.batch_size, lr=config.lr,
        loss="densedepth", device=config.device, seed=config.seed, workers=config.workers,
        precision=config.precision, checkpoint_every=config.checkpoint_every, out=run_dir,
        resume=has_checkpoint(run_dir),
    )


def evaluate_run(run_dir: Path, config: SeedStudyConfig) -> dict[str, Any]:
    """Score a finished run on the dataset's test split (``probe eval``); writes ``run_dir/eval/eval.json``."""
    from probe.evaluate import EvalOptions, evaluate_checkpoint

    result = evaluate_checkpoint(EvalOptions(checkpoint=run_dir, out=run_dir / "eval", split="test",
                                             dataset_length=config.eval_length, batch_size=config.batch_size,
                                             device=config.device))
    return {"protocol": result.protocol, "n_images": result.n_images, **result.metrics}


def run_seed_study(config: SeedStudyConfig, launch: Launch = Launch()) -> SeedStudyResult:
    """Train every experiment (resuming any that a previous call left unfinished) and compare them.

    With ``config.evaluate`` each finished run is also scored on the test
    split.  ``launch`` runs the experiments side by side (:mod:`probe.jobs`); the
    numbers do not depend on it.  Writes ``DIR/experiments.json`` and
    ``DIR/experiments_loss.png``.
    """
    cfg = config.resolved()
    experiments = seed_study_experiments(cfg.slim, cfg.only)
    for experiment in experiments:  # every flag checked before the folder is locked or written
        train_config_for(experiment, cfg).validate()
    launch.validate()
    check_preemptible(launch, cfg.checkpoint_every)
    with run_folder_lock(cfg.out, "experiment seed-study"):
        jobs = [Job(e.id, Path(cfg.out) / e.id, run_experiment, (e, cfg)) for e in experiments]
        rows = run_jobs(jobs, launch, device=cfg.device, out=Path(cfg.out), what="experiments")
        study = SeedStudyResult(config=asdict(cfg), rows=rows, launch=launch.to_json())
        study.save(cfg.out)
        return study


def run_experiment(experiment: Experiment, cfg: SeedStudyConfig) -> dict[str, Any]:
    """Train one experiment into ``DIR/<id>/`` (resuming its newest checkpoint) and score it: its row.

    A job of :func:`run_seed_study`; the TrainConfig is made here, in the process that
    trains, so a requeued job sees the checkpoints its earlier start wrote.
    """
    result = train(train_config_for(experiment, cfg))
    s = result.summary
    return {
        "id": experiment.id, "title": experiment.title, "seed_experiment": experiment.seed_number,
        "model": experiment.model, "options": experiment.options, "params": s["params"],
        "steps": s["steps"], "mean_epoch_loss": s["mean_epoch_loss"], "batch_loss_std": s["batch_loss_std"],
        "first100_mean_loss": s["first100_mean_loss"], "final_loss": s["final_loss"],
        "seconds_per_epoch": s["seconds_per_epoch"], "images_per_s": s["images_per_s"],
        "loss_curve": s["loss_curve"], "seed_mean_loss": experiment.seed_mean_loss,
        "seed_note": experiment.seed_note, "run_dir": str(result.out),
        "eval": evaluate_run(result.out, cfg) if cfg.evaluate else {},
    }


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
        rows = [{k: (Path(v).name if k == "run_dir" else v) for k, v in row.items() if k not in TIMING_FIELDS}
                for row in study["experiments"]]
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


def plot_loss_curves(rows: list[dict[str, Any]], path: Path) -> Path:
    """Per-batch loss (faint) and its moving average (bold) for every experiment."""
    import matplotlib.pyplot as plt

    from probe.plotting import save_figure

    fig, ax = plt.subplots(figsize=(9, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    longest = max((len(r["loss_curve"]) for r in rows), default=1)
    window = max(1, min(100, longest // 10))
    for i, row in enumerate(rows):
        curve = row["loss_curve"]
        steps = np.arange(1, len(curve) + 1)
        colour = colours[i % len(colours)]
        ax.plot(steps, curve, color=colour, alpha=0.2, linewidth=0.8)
        ax.plot(steps, moving_average(curve, window), color=colour, linewidth=2, label=f"{row['id']} ({row['model']})")
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
    for column in ("id", "model", "params", "mean loss", "batch std", "first 100", "s/epoch", "abs_rel", "delta1",
                   "seed's loss"):
        table.add_column(column, justify="left" if column in ("id", "model") else "right", no_wrap=True)
    for row in result.rows:
        metrics = row.get("eval") or {}
        table.add_row(row["id"], row["model"], fmt(row["params"], ",d"), fmt(row["mean_epoch_loss"]),
                      fmt(row["batch_loss_std"]), fmt(row["first100_mean_loss"]), fmt(row["seconds_per_epoch"], ".1f"),
                      fmt(metrics.get("abs_rel")), fmt(metrics.get("delta1")), fmt(row["seed_mean_loss"], ".3f"))
    (console or Console(width=max(140, Console().width))).print(table)
