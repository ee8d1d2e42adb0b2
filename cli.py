"""``probe``: the command-line front.

This module only parses arguments and prints; every command's work lives in
``probe/`` or ``analyses/``.  A command backed by a config dataclass is declared
with :func:`config_command`: its options are the config's ``option()`` fields,
whose flags, defaults and help are written once, in the config.  Bad input raises
``ProbeError``, which :func:`main` prints as one line before exiting with status 2.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
import os
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional, TypeVar, Union

import typer

from analyses.attribution import AttributionConfig
from analyses.autoencoder import AutoencoderConfig
from analyses.collapse import CollapseConfig
from analyses.complexity import ComplexityConfig
from analyses.fit import FitConfig
from analyses.gradients import GradientsConfig
from analyses.noise import NoiseConfig
from probe.errors import ProbeError, one_line
from probe.evaluate import EvalOptions, PredictOptions
from probe.experiments import SeedStudyConfig
from probe.jobs import Launch
from probe.laws import PropertiesConfig
from probe.models.check import CheckConfig
from probe.options import data_root_option, input_size_option, is_option, out_option, parse_key_values, width_option
from probe.self_supervised_study import SelfSupervisedStudyConfig
from probe.study import StudyConfig
from probe.training import TrainConfig
from probe.training.distributed import Nodes

app = typer.Typer(
    name="probe",
    help="Analyse why a monocular depth architecture under-performs (PackNet vs DenseDepth).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Handler = TypeVar("Handler", bound=Callable[..., None])


# ----------------------------------------------------------------------------
# options from config dataclasses
# ----------------------------------------------------------------------------


def config_command(parent: typer.Typer, name: str, *configs: type) -> Callable[[Handler], Handler]:
    """Register ``handler(config, ..., **extra)`` as command ``name``.

    The command has one option per ``option()`` field of each config (its flag, default and
    help read from the field; flags given as text go through the field's parser), then the
    handler's own parameters; the handler receives the built configs, in order.
    """

    def register(handler: Handler) -> Handler:
        parts = [
            (config, typing.get_type_hints(config), [f for f in dataclasses.fields(config) if is_option(f)])
            for config in configs
        ]
        extra = list(inspect.signature(handler, eval_str=True).parameters.values())[len(configs) :]
        params = [_parameter(f, hints[f.name]) for _, hints, fields in parts for f in fields]
        params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in extra]
        params.append(inspect.Parameter("typer_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context))

        def command(**given: Any) -> None:
            token = _GIVEN.set(_given_names(given.pop("typer_context")))
            try:
                built = [
                    config(**{f.name: _value(f, hints[f.name], given.pop(f.name)) for f in fields})
                    for config, hints, fields in parts
                ]
                handler(*built, **given)
            finally:
                _GIVEN.reset(token)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # what Typer reads  # what Typer reads the options from
        command.__doc__ = handler.__doc__
        parent.command(name)(command)
        return handler

    return register


#: The running command's parameters the user gave (on the command line or through the environment), by name;
#: set by every ``config_command`` before its handler runs.
_GIVEN: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("given", default=frozenset())


def _given_on_command_line() -> frozenset[str]:
    """The running command's parameters the user gave, by field name (``--steps`` is ``max_steps``).

    A recipe such as ``--quick`` fills only the others: a flag given with its default value is still given.
    """
    return _GIVEN.get()


def _given_names(ctx: typer.Context) -> frozenset[str]:
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return frozenset(name for name, source in sources.items() if source is not None and "DEFAULT" not in source.name)


def _parameter(f: dataclasses.Field[Any], hint: Any) -> inspect.Parameter:
    meta = f.metadata
    default = _default(f)
    cli_type: Any
    if meta["parse"] is not None:  # given as text, read by the field's parser
        cli_type = list[str] | None if _is_dict(hint) else str | None
        cli_default: Any = None
        shown: Any = meta["shown"] or (default is not None and default != {} and str(default))
    elif _is_list(hint):  # a repeatable option; not given: the field's default
        cli_type = types.GenericAlias(list, (_item(hint),)) | None
        cli_default, shown = None, meta["shown"] or bool(default)
    else:
        cli_type, cli_default, shown = hint, default, True
    if meta["argument"]:
        info: Any = typer.Argument(help=meta["help"], show_default=False)
    else:
        info = typer.Option(meta["flag"] or "--" + f.name.replace("_", "-"), help=meta["help"], show_default=shown)
    required = default is dataclasses.MISSING
    return inspect.Parameter(
        f.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[cli_type, info],
        default=inspect.Parameter.empty if required else cli_default,
    )


def _value(f: dataclasses.Field[Any], hint: Any, given: Any) -> Any:
    """The field's value from what the command line gave (``None``: not given, for parsed and list options)."""
    if f.metadata["parse"] is not None:
        return _default(f) if given is None else f.metadata["parse"](given)
    if _is_list(hint) and given is None:
        return _default(f)
    return list(given) if _is_list(hint) else given


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _without_none(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint


def _is_list(hint: Any) -> bool:
    return typing.get_origin(_without_none(hint)) is list


def _is_dict(hint: Any) -> bool:
    return typing.get_origin(_without_none(hint)) is dict


def _item(hint: Any) -> Any:
    return typing.get_args(_without_none(hint))[0]


# Options of commands that are not backed by a config: help text from the same declarations as the configs'.
WidthOpt = Annotated[float, typer.Option("--width", help=width_option().metadata["help"])]
DataRootOpt = Annotated[Optional[Path], typer.Option("--data-root", help=data_root_option().metadata["help"])]
InputSizeOpt = Annotated[Optional[str], typer.Option("--input-size", help=input_size_option().metadata["help"])]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed")]
OutOpt = Annotated[Path, typer.Option("--out", help=out_option().metadata["help"])]


@app.callback()
def _root() -> None:
    """probe: models, analyses and reports for monocular depth estimation."""


@contextlib.contextmanager
def _writing(out: Path, command: str, config: Any) -> Iterator[None]:
    """Check ``config``, then hold ``out``'s writer lock for the whole command: the work and the save.

    A second command on a busy run folder then fails at once, not after its work, when it saves.
    """
    from probe.runs import run_folder_lock

    config.validate()  # bad input fails before the folder or its lock file exists
    with run_folder_lock(out, command):
        yield


def _echo_written(paths: list[Path]) -> None:
    for path in paths:
        typer.echo(f"wrote {path}")


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


# ----------------------------------------------------------------------------
# section: models and complexity
# ----------------------------------------------------------------------------


@app.command("models")
def models_command(width: WidthOpt = 1.0) -> None:
    """List the zoo (name, family, parameters, description) and the models installed packages register
    (entry-point group probe.models) with their source. Example: probe models --width 0.25"""
    from rich.table import Table

    from analyses.complexity import model_summaries, model_table
    from probe.limits import check_width
    from probe.models.spec import ENTRY_POINT_GROUP, entry_point_models

    check_width(width)
    console = _console()
    console.print(model_table(model_summaries(width), width))
    plugins = Table(title=f"models registered by installed packages (entry-point group {ENTRY_POINT_GROUP})")
    for column in ("name", "source"):
        plugins.add_column(column)
    for entry in entry_point_models():
        plugins.add_row(
            entry.name, entry.source + (" (shadowed by the zoo model of this name)" if entry.shadowed else "")
        )
    console.print(plugins if plugins.row_count else f"no installed package registers models ({ENTRY_POINT_GROUP})")
    console.print(
        "Any --model also takes package.module:factory or path/to/file.py:factory; "
        "`probe check-model SPEC` checks one against the model contract."
    )


@config_command(app, "check-model", CheckConfig)
def check_model_command(config: CheckConfig) -> None:
    """Run the model contract on a model: each clause passed or failed with its fix; exit 2 if any failed.

    Example: probe check-model examples/unet.py:build --input-size 64x96
    """
    from analyses import model_check

    report = model_check.run(config)
    for clause in report.clauses:
        typer.echo(clause.line(report.spec), err=clause.status == "failed")
    if not report.passed:
        raise typer.Exit(2)


@config_command(app, "complexity", ComplexityConfig)
def complexity_command(config: ComplexityConfig, out: OutOpt) -> None:
    """Parameters, MACs, activations, latency and memory per model and block (input default 192x640). Example:
    probe complexity --model packnet_a --model densedepth --input-size 192x640 --repeats 1 --out runs/cost"""
    from analyses import complexity
    from probe.progress import progress_bar

    with _writing(out, "complexity", config), progress_bar() as progress:
        result = complexity.run(config, progress)
        paths = result.save_run(out, device=result.device, seed=config.seed)
    _console().print(result.table())
    _echo_written(paths)


@config_command(app, "properties", PropertiesConfig)
def properties_command(config: PropertiesConfig, out: OutOpt) -> None:
    """Check the pack/unpack laws under Hypothesis; writes DIR/properties.json, exits 1 if a law fails. Example:
    probe properties --examples 500 --out runs/props"""
    from rich.console import Console

    from probe.laws import law_table, run_properties

    with _writing(out, "properties", config):
        result = run_properties(config)
        paths = result.save_run(out, seed=config.seed)
    Console().print(law_table(result.laws))
    _echo_written(paths[:1])
    if not result.passed:
        raise typer.Exit(1)


# ----------------------------------------------------------------------------
# section: data
# ----------------------------------------------------------------------------

data_app = typer.Typer(
    help="Inspect, check and fetch datasets. Example: probe data check synthetic --split test", no_args_is_help=True
)
app.add_typer(data_app, name="data")


DatasetOptionOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--option",
        help="KEY=VALUE reader option, repeatable (e.g. split_file=lists/x.txt, crop=full, depth_scale=0.001)",
    ),
]
DatasetArg = Annotated[str, typer.Argument(help="dataset name (see `probe datasets`)")]


def _reader_options(items: list[str] | None) -> dict[str, Any]:
    return parse_key_values(items or [], "--option", "split_file=lists/x.txt")


@data_app.command("check")
def data_check_command(
    name: DatasetArg,
    data_root: DataRootOpt = None,
    split: Annotated[str, typer.Option("--split", help="train|test|all")] = "all",
    workers: Annotated[int, typer.Option("--workers", help="reader processes (0: this process)")] = 0,
    option: DatasetOptionOpt = None,
) -> None:
    """Read every item; print counts, resolutions, depth range and every bad file (exit 2 if any).

    Example: probe data check nyu --data-root ~/data/nyu_data.zip --split test
    """
    from probe.data.check import check_dataset

    report = check_dataset(name, data_root, split=split, workers=workers, **_reader_options(option))
    typer.echo(report.format())
    report.raise_if_bad()


@data_app.command("download")
def data_download_command(
    name: DatasetArg,
    data_root: Annotated[Path, typer.Option("--data-root", help="folder to download and extract into")],
    url: Annotated[
        Optional[list[str]], typer.Option("--url", help="download this URL instead of the registered ones (repeatable)")
    ] = None,
) -> None:
    """Fetch a dataset's public files (resumable, size-checked) and extract archives safely.

    Example: probe data download make3d --data-root ~/data/make3d
    """
    from probe.data.download import download_dataset

    typer.echo(download_dataset(name, data_root, urls=url).summary())


@app.command("datasets")
def datasets_command(data_root: DataRootOpt = None) -> None:
    """List every dataset: whether its files are found under --data-root, input size, depth cap, source.

    Example: probe datasets --data-root ~/data
    """
    from rich.console import Console

    from probe.data.preview import dataset_table

    Console().print(dataset_table(data_root))


@data_app.command("preview")
def data_preview_command(
    name: DatasetArg,
    out: Annotated[Path, typer.Option("--out", help="PNG file to write")],
    data_root: DataRootOpt = None,
    split: Annotated[str, typer.Option("--split", help="train|test")] = "train",
    count: Annotated[int, typer.Option("--count", help="items to show")] = 4,
    input_size: InputSizeOpt = None,
    seed: SeedOpt = 0,
    option: DatasetOptionOpt = None,
) -> None:
    """Grid of RGB images and colour-mapped depth (metres; invalid pixels grey).

    Example: probe data preview synthetic --count 6 --out preview.png
    """
    from probe.data.preview import write_preview
    from probe.options import parse_size

    path = write_preview(
        name,
        out,
        root=data_root,
        split=split,
        count=count,
        seed=seed,
        input_size=parse_size(input_size) if input_size else None,
        **_reader_options(option),
    )
    typer.echo(f"wrote {path}")


# ----------------------------------------------------------------------------
# section: training, evaluation, prediction, experiments
# ----------------------------------------------------------------------------


@config_command(app, "train", TrainConfig, Nodes)
def train_command(
    config: TrainConfig,
    nodes: Nodes,
    nproc_per_node: Annotated[
        int, typer.Option("--nproc-per-node", help="DDP processes (runs torchrun); 1 = this process")
    ] = 1,
    probe_names: Annotated[
        Optional[str], typer.Option("--probe", help="comma-separated training probes (analyses.probes.TRAIN_PROBES)")
    ] = None,
    probe_every: Annotated[int, typer.Option("--probe-every", help="run the probes every K steps")] = 10,
) -> None:
    """Train a model with the seed's protocol (Adam, lr 1e-4, batch 4); resumable, optionally DDP.

    Example: probe train --model packnet_slim_b --dataset synthetic --epochs 1 --out runs/x
    """
    from analyses.probes import TRAIN_PROBES
    from probe.options import parse_name_list
    from probe.training import train
    from probe.training.distributed import env_dist_info, launch_distributed
    from probe.training.report import print_train_summary

    nodes.validate()
    if (nproc_per_node != 1 or not nodes.standalone) and not env_dist_info().enabled:
        if probe_names:
            raise ProbeError(
                "--probe: not available with --nproc-per-node; run torchrun --nproc-per-node N -m probe "
                "train ... --probe NAMES"
            )
        launch_distributed(config, nproc_per_node, nodes)
        return
    names = parse_name_list(probe_names, "--probe", TRAIN_PROBES.names()) if probe_names else []
    hooks = [TRAIN_PROBES.build(name, probe_every, config.out) for name in names]
    result = train(config, hooks=hooks)
    if env_dist_info().is_main:
        for hook in hooks:
            hook.save()
        print_train_summary(result)


experiment_app = typer.Typer(
    help="Experiment matrices (the seed study, the self-supervised study). Example: probe experiment seed-study",
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")


@config_command(experiment_app, "seed-study", SeedStudyConfig, Launch)
def seed_study_command(config: SeedStudyConfig, launch: Launch) -> None:
    """Run the seed's experiments (DenseDepth, PackNet B, A, leaky ReLU, direct depth, no skips) on identical batches.

    Side by side: --parallel N here, or --launcher slurm --partition P (one SLURM job each, through submitit).
    Example: probe experiment seed-study --quick --out runs/seed
    """
    from probe.experiments import print_seed_study, run_seed_study

    print_seed_study(run_seed_study(config, launch))


@config_command(experiment_app, "self-supervised", SelfSupervisedStudyConfig, Launch)
def self_supervised_command(config: SelfSupervisedStudyConfig, launch: Launch) -> None:
    """PackNet and DenseDepth trained from video, with and without the velocity loss and under speed noise, over
    seeds. Writes DIR/self_supervised.json (and its figure) and a folder per run; prints both questions' answers.
    Side by side: --parallel N (with --threads-per-run), or --launcher slurm --partition P.

    Example: probe experiment self-supervised --quick --seeds 0,1,2 --velocity-noise 0,b1 --out runs/ssl
    """
    from probe.self_supervised_study import (
        metric_scale_answer,
        packnet_vs_densedepth_answer,
        print_self_supervised_study,
        run_self_supervised_study,
    )

    result = run_self_supervised_study(config, launch=launch, given=_given_on_command_line())
    print_self_supervised_study(result, _console())
    for answer in (metric_scale_answer(result), packnet_vs_densedepth_answer(result)):
        typer.echo(f"{answer.question} {answer.sentence}")
    typer.echo(f"wrote {result.config.out / 'self_supervised.json'}")


@config_command(app, "eval", EvalOptions)
def eval_command(options: EvalOptions) -> None:
    """Evaluate a checkpoint with a dataset protocol; writes DIR/eval.json and prints a table.

    Example: probe eval --checkpoint runs/x --dataset nyu_test --data-root nyu_test.zip --protocol nyu_densedepth
    --out runs/x/eval
    """
    from probe.evaluate import evaluate_checkpoint, print_eval_table

    print_eval_table(evaluate_checkpoint(options))


@config_command(app, "predict", PredictOptions)
def predict_command(options: PredictOptions) -> None:
    """Predict depth for images: DIR/<name>_depth.png (colour-mapped) and DIR/<name>_depth.npy (metres).

    Names are unique per image (a repeated file name gets _2, _3, ...); existing files are kept unless --force.

    Example: probe predict --checkpoint runs/x room.jpg --out preds
    """
    from probe.evaluate import predict_checkpoint

    for record in predict_checkpoint(options):
        typer.echo(
            f"{record.source} -> {record.png}, {record.npy} "
            f"(depth {record.min_depth:.2f}..{record.max_depth:.2f} m, median {record.median_depth:.2f} m)"
        )


# ----------------------------------------------------------------------------
# section: gradients, noise, collapse, fit
# ----------------------------------------------------------------------------


def _save_analysis(result: Any, out: Path, device: str, seed: int) -> None:
    """Record config + provenance in DIR/config.json, write the result, list the files."""
    from probe.device import resolve_device

    _echo_written(result.save_run(out, device=resolve_device(device), seed=seed))


@config_command(app, "gradients", GradientsConfig)
def gradients_command(config: GradientsConfig) -> None:
    """Per-layer gradient norms while training (Adam 1e-4, same batches for every model); vanishing verdict.

    Example: probe gradients --model packnet_c --model densedepth --width 0.125 --input-size 64x96 --steps 20
    """
    from analyses import gradients
    from probe.report.answers import shown
    from probe.rules import vanishing_verdict

    with _writing(config.out, "gradients", config):
        result = gradients.run(config)
        for s in result.summaries:
            typer.echo(
                f"{s.name} ({len(s.seeds)} seed(s)): vanishing layers per seed {s.vanishing_layers} of {s.layers}; "
                f"weakest/median |g|/|w| 10^{shown(s.margin)}: {vanishing_verdict(s.margin).verdict}; "
                f"{s.learned.describe() if s.learned else 'learned: not measured'}"
            )
        _save_analysis(result, config.out, config.device, config.seed)


@config_command(app, "noise", NoiseConfig)
def noise_command(config: NoiseConfig) -> None:
    """Gradient noise scale B_simple = tr(Sigma)/|G|^2 and per-batch loss spread while training.

    Example: probe noise --model packnet_b --model densedepth --small-batch 2 --big-batch 8 --steps 30 --width 0.125
    """
    from analyses import noise

    with _writing(config.out, "noise", config):
        result = noise.run(config)
        _save_analysis(result, config.out, config.device, config.seed)
    for m in result.models:
        typer.echo(
            f"{m.name} seed {m.seed}: B_simple {m.b_simple:.4g} ({m.b_simple_over_train_batch:.3g} x batch "
            f"{m.train_batch_size}); per-batch loss CV {m.loss.cv:.3g}, detrended "
            f"{m.loss.cv_detrended:.3g} (second half {m.loss_second_half.cv_detrended:.3g})"
        )


@config_command(app, "collapse", CollapseConfig)
def collapse_command(config: CollapseConfig) -> None:
    """Does the prediction collapse to one value per image, or to one map for every image? Std ratio,
    correlations, R^2 vs the image mean; cross-image std vs the ground truth's; where the image fades.

    Example: probe collapse --model packnet_b --steps 20 --every 5 --width 0.125 --input-size 64x96
    """
    from analyses import collapse

    with _writing(config.out, "collapse", config):
        result = collapse.run(config)
        _save_analysis(result, config.out, config.device, config.seed)
    for m in result.models:
        row = m.last
        typer.echo(
            f"{m.name} seed {m.seed} at step {row.step}: {row.collapsed_share:.0%} of {row.n_defined} images "
            f"collapsed, median std ratio {row.median_std_ratio:.3g}, mean r {row.mean_pearson:.3g}, "
            f"median R^2 {row.median_r2:.3g}, scale flagged {row.scale_flagged_share:.0%}; cross-image std of "
            f"log depth {row.image_dependence.cross_std_ratio:.3g} x the ground truth's, image fades at "
            f"{m.fade.fades_at if m.fade is not None and m.fade.fades_at else 'no block'}"
        )


@config_command(app, "fit", FitConfig, Launch)
def fit_command(config: FitConfig, launch: Launch) -> None:
    """Can the model fit its own training images? Train on the first N training images (each N of --images) for
    --steps steps, score on those images and on held-out ones against the per-image-median constant.

    Side by side: --parallel N (one torch thread each with --threads-per-run 1).
    Example: probe fit --model packnet_slim_b --model densedepth --images 8,16,64 --steps 600 --out runs/fit
    """
    from analyses import fit
    from probe.progress import progress_bar

    with _writing(config.out, "fit", config), progress_bar() as progress:
        result = fit.run(config, progress, launch)
        _save_analysis(result, config.out, config.device, config.seed)
    for c in result.cells:
        typer.echo(
            f"{c.model} on {c.images} training images ({len(c.seeds)} seed(s)): scale-matched ratio "
            f"{c.train_scale_matched_ratio.describe()} on them, {c.test_scale_matched_ratio.describe()} on test "
            f"images: {c.verdict}"
        )


# ----------------------------------------------------------------------------
# section: autoencoder, attribution
# ----------------------------------------------------------------------------


@config_command(app, "autoencoder", AutoencoderConfig, Launch)
def autoencoder_command(config: AutoencoderConfig, launch: Launch, out: OutOpt) -> None:
    """Reconstruct RGB through skip-less bottlenecks (packing vs pooling vs strides). Example:
    probe autoencoder --levels 1..3 --steps 100 --input-size 64x64 --width 0.0625 --out runs/ae

    Side by side: --parallel N (one torch thread each with --threads-per-run 1), each run in OUT/runs/."""
    from analyses import autoencoder
    from probe.progress import progress_bar

    with _writing(out, "autoencoder", config):
        with progress_bar() as progress:
            result = autoencoder.run(config, progress, out, launch)
        _echo_written(result.save_run(out, device=result.device, seed=config.seed))
    for r in result.runs:
        psnr = "inf" if r.psnr_infinite else f"{r.psnr:.2f}"
        typer.echo(
            f"{r.arch:>15} L={r.levels} w={r.width:<6g} seed {r.seed:<3} params {r.params:>10,}  "
            f"MACs {r.macs:>14,}  PSNR {psnr:>6} dB  SSIM {r.ssim:.3f}  {r.train_seconds:.1f}s"
        )


@config_command(app, "attribution", AttributionConfig)
def attribution_command(config: AttributionConfig, out: OutOpt) -> None:
    """Attribute predicted depth to input pixels (captum) and measure effective receptive fields. Example:
    probe attribution --model packnet_b --model densedepth --width 0.0625 --input-size 64x64 --out runs/attr"""
    from analyses import attribution

    with _writing(out, "attribution", config):
        result = attribution.run(config)
        _echo_written(result.save_run(out, device=result.device, seed=config.seed))
    for m in result.models:
        typer.echo(
            f"{m.name:>28}  ERF r50 {m.erf.radius_50:g} px  r95 {m.erf.radius_95:g} px  "
            f"support {m.erf.support:g} px  {config.method} r95 {m.attribution_radii.radius_95:g} px"
        )


# ----------------------------------------------------------------------------
# section: report and study
# ----------------------------------------------------------------------------


@app.command("report")
def report_command(
    run_dirs: Annotated[list[str], typer.Argument(help="run folders written with --out")],
    output: Annotated[Path, typer.Option("-o", "--output", help="report file to write")] = Path("report.html"),
    fmt: Annotated[str, typer.Option("--format", help="html|md")] = "html",
) -> None:
    """Turn run folders into one self-contained report. Example: probe report runs/study -o report.html"""
    from probe.report.build import build_report

    typer.echo(f"wrote {build_report(run_dirs, output, fmt)}")


@config_command(app, "study", StudyConfig, Launch)
def study_command(config: StudyConfig, launch: Launch) -> None:
    """The main job: every analysis, then DIR/report.html. Example: probe study --quick --out runs/study

    --parallel / --launcher run the experiment, fit and autoencoder steps' runs side by side
    (as `probe experiment seed-study`)."""
    from probe.study import run_study

    for r in run_study(dataclasses.replace(config, launch=launch)):
        typer.echo(f"{r.name:12s} {r.status:7s} {r.seconds:7.1f} s" + (f"  ({r.reason})" if r.reason else ""))
    typer.echo(f"wrote {config.out / 'report.html'}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the Typer app, turning ProbeError into one line and exit 2."""
    try:
        app(args=argv, prog_name="probe", standalone_mode=True)
    except ProbeError as exc:
        if os.environ.get("PROBE_DEBUG") and exc.__cause__ is not None:  # e.g. a user model's own traceback
            import traceback

            traceback.print_exception(exc.__cause__, file=sys.stderr)
        print(f"probe: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("probe: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # a bug, not bad input: still one line unless asked for the traceback
        if os.environ.get("PROBE_DEBUG"):
            raise
        print(
            f"probe: internal error: {type(exc).__name__}: {one_line(exc)} (set PROBE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
