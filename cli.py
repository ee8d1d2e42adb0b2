"""``probe``: the command-line front.

This module only parses arguments and calls library functions; every command's
work lives in ``probe/`` or ``analyses/``.  Bad input raises ``ProbeError``,
which :func:`main` prints as one line before exiting with status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from probe.errors import ProbeError, one_line

app = typer.Typer(
    name="probe",
    help="Analyse why a monocular depth architecture under-performs (PackNet vs DenseDepth).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Shared option types: every command uses the same spelling and help.
DeviceOpt = Annotated[str, typer.Option("--device", help="auto|cpu|cuda|cuda:N")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed")]
OutOpt = Annotated[Path, typer.Option("--out", help="run folder: DIR/<analysis>.json, PNG figures, DIR/config.json")]
WidthOpt = Annotated[float, typer.Option("--width", help="channel multiplier (1.0 = published widths)")]
DatasetOpt = Annotated[str, typer.Option("--dataset", help="dataset name (see `probe datasets`)")]
DataRootOpt = Annotated[Optional[Path], typer.Option("--data-root", help="folder (or archive) holding the dataset")]
InputSizeOpt = Annotated[Optional[str], typer.Option("--input-size", help="HxW, e.g. 240x320 (default: the dataset protocol's)")]



@app.callback()
def _root() -> None:
    """probe: models, analyses and reports for monocular depth estimation."""


# ----------------------------------------------------------------------------
# section: models and complexity
# ----------------------------------------------------------------------------


@app.command("models")
def models_command(width: WidthOpt = 1.0) -> None:
    """List the zoo (name, family, parameters, description) and the models installed packages register
    (entry-point group probe.models) with their source. Example: probe models --width 0.25"""
    from rich.console import Console
    from rich.table import Table

    from analyses.complexity import model_summaries, model_table
    from probe.models.spec import ENTRY_POINT_GROUP, entry_point_models

    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(model_table(model_summaries(width), width))
    plugins = Table(title=f"models registered by installed packages (entry-point group {ENTRY_POINT_GROUP})")
    for column in ("name", "source"):
        plugins.add_column(column)
    for entry in entry_point_models():
        plugins.add_row(entry.name, entry.source + (" (shadowed by the zoo model of this name)" if entry.shadowed else ""))
    console.print(plugins if plugins.row_count else f"no installed package registers models ({ENTRY_POINT_GROUP})")
    console.print("Any --model also takes package.module:factory or path/to/file.py:factory; "
                  "`probe check-model SPEC` checks one against the model contract.")


@app.command("check-model")
def check_model_command(
    spec: Annotated[str, typer.Argument(help="zoo name, entry-point name, package.module:factory or path/to/file.py:factory")],
    input_size: Annotated[Optional[str], typer.Option("--input-size", help="HxW of the checked batch (default 64x96; the odd size is H+3 x W-3)")] = None,
    model_option: Annotated[Optional[list[str]], typer.Option("--model-option", help="KEY=VALUE, repeatable: factory keyword arguments and output_space, min_depth, max_depth, output_key, input_multiple, weights, name")] = None,
    width: WidthOpt = 1.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="images per checked batch (at least 2)")] = 2,
    max_depth: Annotated[Optional[float], typer.Option("--max-depth", help="dataset cap for direct/depthnorm outputs (default: the model's max_depth, else 10 m)")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
) -> None:
    """Run the model contract on a model: each clause passed or failed with its fix; exit 2 if any failed.

    Example: probe check-model examples/unet.py:build --input-size 64x96
    """
    from analyses import model_check
    from probe.options import parse_size
    from probe.training.config import parse_model_options

    config = model_check.CheckConfig(
        spec, options=parse_model_options(model_option or []), width=width, batch_size=batch_size, device=device,
        seed=seed, max_depth=max_depth, **({"input_size": parse_size(input_size)} if input_size else {}))
    report = model_check.run(config)
    for clause in report.clauses:
        typer.echo(clause.line(report.spec), err=clause.status == "failed")
    if not report.passed:
        raise typer.Exit(2)


@app.command("complexity")
def complexity_command(
    out: OutOpt,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="model name (repeat; default: all)")] = None,
    input_size: InputSizeOpt = None,
    width: WidthOpt = 1.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="images per measured forward, and of the training-memory estimate")] = 1,
    precision: Annotated[str, typer.Option("--precision", help="fp32|bf16|fp16: the training step's autocast (fwd+bwd timing, peak, memory estimate)")] = "fp32",
    activation_checkpointing: Annotated[bool, typer.Option("--activation-checkpointing", help="the training step recomputes the model's stages in backward")] = False,
    repeats: Annotated[Optional[int], typer.Option("--repeats", help="timed runs, median reported (default 3 on CPU, 20 on CUDA)")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help="untimed warm-up runs (default 1 on CPU, 5 on CUDA)")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
) -> None:
    """Parameters, MACs, activations, latency and memory per model and block (input default 192x640). Example:
    probe complexity --model packnet_a --model densedepth --input-size 192x640 --repeats 1 --out runs/cost"""
    from rich.console import Console

    from analyses import complexity
    from probe.options import parse_size
    from probe.progress import progress_bar

    config = complexity.ComplexityConfig(
        models=list(model) if model else complexity.list_models(),
        input_size=parse_size(input_size) if input_size else (192, 640), width=width, batch_size=batch_size,
        precision=precision, activation_checkpointing=activation_checkpointing, device=device, repeats=repeats,
        warmup=warmup, seed=seed)
    with progress_bar() as progress:
        result = complexity.run(config, progress)
    paths = result.save_run(out, device=result.device, seed=seed)
    Console(width=None if sys.stdout.isatty() else 160).print(result.table())
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command("properties")
def properties_command(
    out: OutOpt,
    examples: Annotated[int, typer.Option("--examples", help="Hypothesis examples per law")] = 200,
    seed: SeedOpt = 0,
) -> None:
    """Check the pack/unpack laws under Hypothesis; writes DIR/properties.json, exits 1 if a law fails. Example:
    probe properties --examples 500 --out runs/props"""
    from rich.console import Console

    from probe.laws import law_table, run_laws, save_properties
    from probe.runs import prepare_run_dir

    results = run_laws(examples, seed)
    prepare_run_dir(out, "properties", {"examples": examples, "seed": seed}, seed=seed)
    path = save_properties(results, out, max_examples=examples, seed=seed)
    Console().print(law_table(results))
    typer.echo(f"wrote {path}")
    if not all(r.passed for r in results):
        raise typer.Exit(1)

# ----------------------------------------------------------------------------
# section: data
# ----------------------------------------------------------------------------

data_app = typer.Typer(help="Inspect, check and fetch datasets. Example: probe data check synthetic --split test",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


DatasetOptionOpt = Annotated[Optional[list[str]], typer.Option(
    "--option", help="KEY=VALUE reader option, repeatable (e.g. split_file=lists/x.txt, crop=full, depth_scale=0.001)")]


@data_app.command("check")
def data_check_command(
    name: Annotated[str, typer.Argument(help="dataset name (see `probe datasets`)")],
    data_root: DataRootOpt = None,
    split: Annotated[str, typer.Option("--split", help="train|test|all")] = "all",
    workers: Annotated[int, typer.Option("--workers", help="reader processes (0: this process)")] = 0,
    option: DatasetOptionOpt = None,
) -> None:
    """Read every item; print counts, resolutions, depth range and every bad file (exit 2 if any).

    Example: probe data check nyu --data-root ~/data/nyu_data.zip --split test
    """
    from probe.data.check import check_dataset
    from probe.training.config import parse_model_options

    options = parse_model_options(option or [], flag="--option")
    report = check_dataset(name, data_root, split=split, workers=workers, **options)
    typer.echo(report.format())
    report.raise_if_bad()


@data_app.command("download")
def data_download_command(
    name: Annotated[str, typer.Argument(help="dataset name (see `probe datasets`)")],
    data_root: Annotated[Path, typer.Option("--data-root", help="folder to download and extract into")],
    url: Annotated[Optional[list[str]], typer.Option("--url", help="download this URL instead of the registered ones (repeatable)")] = None,
) -> None:
    """Fetch a dataset's public files (resumable, size-checked) and extract archives safely.

    Example: probe data download make3d --data-root ~/data/make3d
    """
    from probe.data.download import download_dataset

    report = download_dataset(name, data_root, urls=url)
    typer.echo(report.summary())


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
    name: Annotated[str, typer.Argument(help="dataset name (see `probe datasets`)")],
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
    from probe.training.config import parse_model_options

    options = parse_model_options(option or [], flag="--option")
    path = write_preview(name, out, root=data_root, split=split, count=count, seed=seed,
                         input_size=parse_size(input_size) if input_size else None, **options)
    typer.echo(f"wrote {path}")

# ----------------------------------------------------------------------------
# section: training, evaluation, prediction, experiments
# ----------------------------------------------------------------------------


@app.command("train")
def train_command(
    model: Annotated[str, typer.Option("--model", help="model name (see `probe models`)")] = "packnet_slim_b",
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    epochs: Annotated[int, typer.Option("--epochs", help="passes over the training split")] = 1,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="stop after this many optimizer steps")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="images per step (per process under DDP)")] = 4,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate")] = 1e-4,
    input_size: InputSizeOpt = None,
    loss: Annotated[str, typer.Option("--loss", help="densedepth|l1_inverse|silog|berhu")] = "densedepth",
    loss_scales: Annotated[str, typer.Option("--loss-scales", help="finest (one objective for every model, the seed's) | all (mean over PackNet's output scales)")] = "finest",
    objective: Annotated[str, typer.Option("--objective", help="supervised|self_supervised (video datasets: frames, PoseNet, no depth labels)")] = "supervised",
    velocity_weight: Annotated[float, typer.Option("--velocity-weight", help="self-supervised: weight of the velocity loss (packnet-sfm: 0.1)")] = 0.0,
    smoothness_weight: Annotated[float, typer.Option("--smoothness-weight", help="self-supervised: edge-aware smoothness weight (packnet-sfm: 0.001)")] = 1e-3,
    pose_width: Annotated[float, typer.Option("--pose-width", help="self-supervised: PoseNet channel multiplier")] = 1.0,
    pose_lr: Annotated[Optional[float], typer.Option("--pose-lr", help="self-supervised: PoseNet learning rate (default: --lr)")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    workers: Annotated[int, typer.Option("--workers", help="data-loading worker processes (0: main process)")] = 2,
    precision: Annotated[Optional[str], typer.Option("--precision", help="bf16|fp16|fp32 (default: bf16 on CUDA, fp32 on CPU)")] = None,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the model")] = False,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="NHWC memory format (default: on for CUDA)")] = None,
    activation_checkpointing: Annotated[bool, typer.Option("--activation-checkpointing", help="recompute the model's stages in backward: less memory, about one more forward of time")] = False,
    grad_clip: Annotated[Optional[float], typer.Option("--grad-clip", help="clip the total gradient norm to this value")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="also keep checkpoints/step_N every N steps")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out from its last checkpoint")] = False,
    deterministic: Annotated[bool, typer.Option("--deterministic", help="deterministic kernels (bitwise-reproducible on CPU)")] = False,
    width: WidthOpt = 1.0,
    model_option: Annotated[Optional[list[str]], typer.Option("--model-option", help="KEY=VALUE model option, repeatable (activation, target, output_scale, residual, skips, ...)")] = None,
    dataset_length: Annotated[Optional[int], typer.Option("--dataset-length", help="number of generated samples (synthetic data)")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="skip unreadable items and list them at the end instead of stopping")] = False,
    data_option: Annotated[Optional[list[str]], typer.Option("--data-option", help="dataset reader option KEY=VALUE (repeatable), e.g. split_file=eigen.txt")] = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="the seed's flip + channel-swap augmentation")] = True,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="also log to DIR/tensorboard (needs probe[tensorboard])")] = False,
    nproc_per_node: Annotated[int, typer.Option("--nproc-per-node", help="DDP processes (runs torchrun); 1 = this process")] = 1,
    nnodes: Annotated[int, typer.Option("--nnodes", help="machines in the DDP job; run the same command on each (needs --rdzv-endpoint)")] = 1,
    node_rank: Annotated[Optional[int], typer.Option("--node-rank", help="this machine's index, 0..nnodes-1 (needed by --rdzv-backend static; c10d assigns ranks itself)")] = None,
    rdzv_endpoint: Annotated[Optional[str], typer.Option("--rdzv-endpoint", help="HOST:PORT where the nodes meet (e.g. the first node, port 29500)")] = None,
    rdzv_backend: Annotated[str, typer.Option("--rdzv-backend", help="torchrun rendezvous: c10d|static")] = "c10d",
    rdzv_id: Annotated[str, typer.Option("--rdzv-id", help="job id shared by every node (e.g. $SLURM_JOB_ID)")] = "probe",
    probe_names: Annotated[Optional[str], typer.Option("--probe", help="comma-separated training probes (analyses.probes.TRAIN_PROBES)")] = None,
    probe_every: Annotated[int, typer.Option("--probe-every", help="run the probes every K steps")] = 10,
    out: OutOpt = Path("runs/train"),
) -> None:
    """Train a model with the seed's protocol (Adam, lr 1e-4, batch 4); resumable, optionally DDP.

    Example: probe train --model packnet_slim_b --dataset synthetic --epochs 1 --out runs/x
    """
    from probe.options import parse_size
    from probe.training import TrainConfig, parse_model_options, train
    from probe.training.distributed import Nodes, env_dist_info, launch_distributed
    from probe.training.report import print_train_summary

    config = TrainConfig(
        model=model, model_options=parse_model_options(model_option or []), width=width, dataset=dataset,
        data_root=data_root, input_size=parse_size(input_size) if input_size else None, dataset_length=dataset_length, skip_bad=skip_bad,
        dataset_options=parse_model_options(data_option or [], flag="--data-option", example="split_file=eigen_test_files.txt"),
        augment=augment, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, loss=loss, loss_scales=loss_scales,
        objective=objective, velocity_weight=velocity_weight, smoothness_weight=smoothness_weight,
        pose_width=pose_width, pose_lr=pose_lr, device=device,
        seed=seed, workers=workers, precision=precision, compile=compile_model, channels_last=channels_last,
        activation_checkpointing=activation_checkpointing, grad_clip=grad_clip, checkpoint_every=checkpoint_every, resume=resume, deterministic=deterministic,
        tensorboard=tensorboard, out=out,
    )
    nodes = Nodes(nnodes=nnodes, node_rank=node_rank, rdzv_endpoint=rdzv_endpoint, rdzv_backend=rdzv_backend,
                  rdzv_id=rdzv_id)
    nodes.validate()
    if (nproc_per_node != 1 or not nodes.standalone) and not env_dist_info().enabled:
        if probe_names:
            raise ProbeError("--probe: not available with --nproc-per-node; run torchrun -m probe.training.launch ... --probe NAMES")
        launch_distributed(config, nproc_per_node, nodes)
        return
    hooks = []
    if probe_names:
        from analyses.probes import TRAIN_PROBES
        from probe.options import parse_name_list

        hooks = [TRAIN_PROBES.build(name, probe_every, out) for name in parse_name_list(probe_names, "--probe", TRAIN_PROBES.names())]
    result = train(config, hooks=hooks)
    if env_dist_info().is_main:
        for hook in hooks:
            hook.save()
        print_train_summary(result)


# How independent runs are run (probe.jobs.Launch): the seed study and the study's experiment step.
ParallelOpt = Annotated[Optional[int], typer.Option("--parallel", help="runs at once: worker processes here (CPU threads split between them; one GPU each on CUDA), or SLURM jobs at once (default: 1 here, all on SLURM)")]
ThreadsPerRunOpt = Annotated[Optional[int], typer.Option("--threads-per-run", help="torch threads of every run, sequential ones too (default: this process's when sequential, cores // --parallel in a worker); equal threads give bit-equal numbers")]
LauncherOpt = Annotated[str, typer.Option("--launcher", help="local|slurm|submitit-local: this machine, one SLURM job per run (submitit; requeued on preemption), or submitit jobs on this machine")]
PartitionOpt = Annotated[Optional[str], typer.Option("--partition", help="SLURM partition (--launcher slurm)")]
GpusPerJobOpt = Annotated[int, typer.Option("--gpus-per-job", help="GPUs of each SLURM job")]
CpusPerJobOpt = Annotated[Optional[int], typer.Option("--cpus-per-job", help="CPUs of each SLURM job (default: the partition's)")]
TimeMinOpt = Annotated[int, typer.Option("--time-min", help="time limit of each submitit job, minutes")]


def _launch(parallel: Optional[int], threads_per_run: Optional[int], launcher: str, partition: Optional[str],
            gpus_per_job: int, cpus_per_job: Optional[int], time_min: int) -> "Launch":
    from probe.jobs import Launch

    return Launch(parallel=parallel, threads=threads_per_run, launcher=launcher, partition=partition,
                  gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job, time_min=time_min)


experiment_app = typer.Typer(help="Experiment matrices (the seed study). Example: probe experiment seed-study --quick",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("seed-study")
def seed_study_command(
    quick: Annotated[bool, typer.Option("--quick", help="tiny widths, 64x96 synthetic images: a few CPU minutes")] = False,
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    slim: Annotated[bool, typer.Option("--slim/--full", help="PackNetSlim01 or the full PackNet01")] = True,
    epochs: Annotated[int, typer.Option("--epochs", help="passes over the training split (seed: 1)")] = 1,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="cap every run at this many steps")] = None,
    only: Annotated[Optional[str], typer.Option("--only", help="comma-separated experiment ids (default: all)")] = None,
    width: WidthOpt = 1.0,
    input_size: InputSizeOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="seed: 4")] = 4,
    lr: Annotated[float, typer.Option("--lr", help="seed: 1e-4")] = 1e-4,
    precision: Annotated[Optional[str], typer.Option("--precision", help="bf16|fp16|fp32 (default: bf16 on CUDA, fp32 on CPU)")] = None,
    workers: Annotated[int, typer.Option("--workers", help="data-loading worker processes")] = 2,
    evaluate: Annotated[bool, typer.Option("--eval/--no-eval", help="score every run on the test split")] = True,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="also checkpoint every N steps (what a preempted job loses at most)")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs/seed-study"),
    parallel: ParallelOpt = None, threads_per_run: ThreadsPerRunOpt = None, launcher: LauncherOpt = "local",
    partition: PartitionOpt = None,
    gpus_per_job: GpusPerJobOpt = 1, cpus_per_job: CpusPerJobOpt = None, time_min: TimeMinOpt = 240,
) -> None:
    """Run the seed's experiments (DenseDepth, PackNet B, A, leaky ReLU, direct depth, no skips) on identical batches.

    Example: probe experiment seed-study --quick --out runs/seed
    """
    from probe.experiments import EXPERIMENTS, SeedStudyConfig, print_seed_study, run_seed_study
    from probe.options import parse_name_list, parse_size

    config = SeedStudyConfig(
        dataset=dataset, data_root=data_root, slim=slim, epochs=epochs, max_steps=max_steps, width=width,
        input_size=parse_size(input_size) if input_size else None, batch_size=batch_size, lr=lr, precision=precision,
        workers=workers, evaluate=evaluate, checkpoint_every=checkpoint_every, device=device, seed=seed, quick=quick,
        out=out, only=parse_name_list(only, "--only", EXPERIMENTS.names()) if only else None,
    )
    launch = _launch(parallel, threads_per_run, launcher, partition, gpus_per_job, cpus_per_job, time_min)
    print_seed_study(run_seed_study(config, launch))


CheckpointOpt = Annotated[Path, typer.Option("--checkpoint", help="run folder (uses checkpoints/last) or a .safetensors file")]
FlipTtaOpt = Annotated[bool, typer.Option("--flip-tta", help="average with the mirrored prediction of the mirrored image")]


@app.command("eval")
def eval_command(
    checkpoint: CheckpointOpt,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="dataset name (default: the run's)")] = None,
    data_root: DataRootOpt = None,
    split: Annotated[str, typer.Option("--split", help="train|test")] = "test",
    input_size: InputSizeOpt = None,
    dataset_length: Annotated[Optional[int], typer.Option("--dataset-length", help="number of generated samples (synthetic data)")] = None,
    protocol: Annotated[Optional[str], typer.Option("--protocol", help="nyu_densedepth|nyu_eigen|kitti_eigen|kitti_eigen_median|make3d_c1|none (old names nyu, kitti, make3d still work; default: the dataset's)")] = None,
    median_scaling: Annotated[bool, typer.Option("--median-scaling", help="scale each prediction by median(gt)/median(pred)")] = False,
    flip_tta: FlipTtaOpt = False,
    clamp: Annotated[bool, typer.Option("--clamp/--no-clamp", help="clamp predictions to the protocol's depth range")] = True,
    batch_size: Annotated[int, typer.Option("--batch-size", help="images per forward pass")] = 4,
    workers: Annotated[int, typer.Option("--workers", help="data-loading worker processes (0: main process)")] = 0,
    device: DeviceOpt = "auto",
    out: OutOpt = Path("runs/eval"),
) -> None:
    """Evaluate a checkpoint with a dataset protocol; writes DIR/eval.json and prints a table.

    Example: probe eval --checkpoint runs/x --dataset nyu_test --data-root nyu_test.zip --protocol nyu_densedepth --out runs/x/eval
    """
    from probe.evaluate import EvalOptions, evaluate_checkpoint, print_eval_table
    from probe.options import parse_size

    result = evaluate_checkpoint(EvalOptions(
        checkpoint=checkpoint, out=out, dataset=dataset, data_root=data_root, split=split,
        input_size=parse_size(input_size) if input_size else None, dataset_length=dataset_length, protocol=protocol,
        median_scaling=median_scaling, flip_tta=flip_tta, clamp=clamp, batch_size=batch_size, device=device,
        workers=workers))
    print_eval_table(result)


@app.command("predict")
def predict_command(
    images: Annotated[list[Path], typer.Argument(help="image files (JPEG, PNG, ...)")],
    checkpoint: CheckpointOpt,
    input_size: InputSizeOpt = None,
    flip_tta: FlipTtaOpt = False,
    colormap: Annotated[str, typer.Option("--colormap", help="matplotlib colormap for the PNG")] = "magma",
    depth_range: Annotated[Optional[str], typer.Option("--range", help="MIN,MAX metres mapped by the colormap (default 0,max depth)")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite prediction files that already exist in --out")] = False,
    device: DeviceOpt = "auto",
    out: OutOpt = Path("runs/predict"),
) -> None:
    """Predict depth for images: DIR/<name>_depth.png (colour-mapped) and DIR/<name>_depth.npy (metres).

    Names are unique per image (a repeated file name gets _2, _3, ...); existing files are kept unless --force.

    Example: probe predict --checkpoint runs/x room.jpg --out preds
    """
    from probe.evaluate import parse_depth_range, predict_checkpoint
    from probe.options import parse_size

    records = predict_checkpoint(checkpoint, images, out, device=device,
                                 input_size=parse_size(input_size) if input_size else None, flip_tta=flip_tta,
                                 colormap=colormap, depth_range=parse_depth_range(depth_range) if depth_range else None,
                                 force=force)
    for record in records:
        typer.echo(f"{record.source} -> {record.png}, {record.npy} "
                   f"(depth {record.min_depth:.2f}..{record.max_depth:.2f} m, median {record.median_depth:.2f} m)")

# ----------------------------------------------------------------------------
# section: gradients, noise, collapse
# ----------------------------------------------------------------------------

ModelsOpt = Annotated[Optional[list[str]], typer.Option("--model", help="model name (repeat to compare on the same batches)")]
StepsOpt = Annotated[int, typer.Option("--steps", help="training steps per model")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", help="training batch size (the seed's: 4)")]
ContinueOpt = Annotated[Optional[Path], typer.Option("--checkpoint", help="continue a copy of this run (folder or .safetensors) instead of --model")]


def _finish_analysis(command: str, result: "object", out: Path, device: str, seed: int) -> None:
    """Record config + provenance in DIR/config.json, write the result, list the files."""
    from probe.device import resolve_device

    for path in result.save_run(out, device=resolve_device(device), seed=seed):
        typer.echo(f"wrote {path}")


@app.command("gradients")
def gradients_command(
    model: ModelsOpt = None,
    checkpoint: ContinueOpt = None,
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    steps: StepsOpt = 50,
    batch_size: BatchSizeOpt = 4,
    width: WidthOpt = 1.0,
    input_size: InputSizeOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs/gradients"),
) -> None:
    """Per-layer gradient norms while training (Adam 1e-4, same batches for every model); vanishing verdict.

    Example: probe gradients --model packnet_c --model densedepth --width 0.125 --input-size 64x96 --steps 20
    """
    from analyses import gradients
    from probe.options import parse_size

    result = gradients.run(gradients.GradientsConfig(
        models=list(model or []), checkpoint=checkpoint, steps=steps, batch_size=batch_size, width=width,
        dataset=dataset, data_root=data_root, input_size=parse_size(input_size) if input_size else None,
        device=device, seed=seed, out=out))
    for m in result.models:
        typer.echo(f"{m.name}: {m.verdict()['summary']}")
    _finish_analysis("gradients", result, out, device, seed)


@app.command("noise")
def noise_command(
    model: ModelsOpt = None,
    checkpoint: ContinueOpt = None,
    small_batch: Annotated[int, typer.Option("--small-batch", help="B_small of the noise-scale estimator")] = 2,
    big_batch: Annotated[int, typer.Option("--big-batch", help="B_big (a multiple of B_small)")] = 8,
    every: Annotated[int, typer.Option("--every", help="measure the gradient noise every K steps")] = 1,
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    steps: StepsOpt = 50,
    batch_size: BatchSizeOpt = 4,
    width: WidthOpt = 1.0,
    input_size: InputSizeOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs/noise"),
) -> None:
    """Gradient noise scale B_simple = tr(Sigma)/|G|^2 and per-batch loss spread while training.

    Example: probe noise --model packnet_b --model densedepth --small-batch 2 --big-batch 8 --steps 30 --width 0.125
    """
    from analyses import noise
    from probe.options import parse_size

    result = noise.run(noise.NoiseConfig(
        models=list(model or []), checkpoint=checkpoint, small_batch=small_batch, big_batch=big_batch, every=every,
        steps=steps, batch_size=batch_size, width=width, dataset=dataset, data_root=data_root,
        input_size=parse_size(input_size) if input_size else None, device=device, seed=seed, out=out))
    for m in result.models:
        doc = m.to_json()
        typer.echo(f"{m.name}: B_simple {doc['b_simple']:.4g} ({doc['b_simple_over_train_batch']:.3g} x batch "
                   f"{doc['train_batch_size']}); per-batch loss CV {doc['loss']['cv']:.3g}, detrended "
                   f"{doc['loss']['cv_detrended']:.3g} (second half {doc['loss_second_half']['cv_detrended']:.3g})")
    _finish_analysis("noise", result, out, device, seed)


@app.command("collapse")
def collapse_command(
    model: ModelsOpt = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="measure this trained run (folder or .safetensors) instead of training")] = None,
    steps: StepsOpt = 20,
    every: Annotated[int, typer.Option("--every", help="measure every K steps")] = 5,
    images: Annotated[int, typer.Option("--images", help="held-out images measured (first N of the test split)")] = 8,
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    batch_size: BatchSizeOpt = 4,
    width: WidthOpt = 1.0,
    input_size: InputSizeOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs/collapse"),
) -> None:
    """Does the prediction collapse to one value per image? Std ratio, correlations, R^2 vs the image mean.

    Example: probe collapse --model packnet_b --steps 20 --every 5 --width 0.125 --input-size 64x96
    """
    from analyses import collapse
    from probe.options import parse_size

    result = collapse.run(collapse.CollapseConfig(
        models=list(model or []), checkpoint=checkpoint, steps=steps, every=every, n_images=images,
        batch_size=batch_size, width=width, dataset=dataset, data_root=data_root,
        input_size=parse_size(input_size) if input_size else None, device=device, seed=seed, out=out))
    for m in result.models:
        row = m.final.history_row()
        typer.echo(f"{m.name} at step {row['step']}: {row['collapsed_share']:.0%} of {row['n_defined']} images "
                   f"collapsed, median std ratio {row['median_std_ratio']:.3g}, mean r {row['mean_pearson']:.3g}, "
                   f"median R^2 {row['median_r2']:.3g}, scale flagged {row['scale_flagged_share']:.0%}")
    _finish_analysis("collapse", result, out, device, seed)

# ----------------------------------------------------------------------------
# section: autoencoder, attribution
# ----------------------------------------------------------------------------


@app.command("autoencoder")
def autoencoder_command(
    out: OutOpt,
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    arch: Annotated[Optional[list[str]], typer.Option("--arch", help="architecture (repeat; default: all)")] = None,
    levels: Annotated[str, typer.Option("--levels", help="downsampling levels: 1..5 or 1,2,3")] = "1..5",
    steps: Annotated[int, typer.Option("--steps", help="training steps per architecture and level")] = 200,
    batch_size: Annotated[int, typer.Option("--batch-size", help="images per step")] = 8,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate")] = 1e-3,
    width: WidthOpt = 0.25,
    norm: Annotated[str, typer.Option("--norm", help="normalisation in the generic architectures: none|group")] = "none",
    input_size: InputSizeOpt = None,
    train_images: Annotated[int, typer.Option("--train-images", help="training images cached and cycled")] = 256,
    eval_images: Annotated[int, typer.Option("--eval-images", help="held-out (test split) images scored")] = 32,
    figure_level: Annotated[Optional[int], typer.Option("--figure-level", help="level shown in the reconstruction grid (default: middle of the sweep)")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
) -> None:
    """Reconstruct RGB through skip-less bottlenecks (packing vs pooling vs strides). Example:
    probe autoencoder --levels 1..3 --steps 100 --input-size 64x64 --width 0.0625 --out runs/ae"""
    from analyses import autoencoder as ae
    from probe.options import parse_size
    from probe.progress import progress_bar

    config = ae.AutoencoderConfig(
        dataset=dataset, data_root=data_root, archs=list(arch) if arch else list(ae.DEFAULT_ARCHS),
        levels=ae.parse_levels(levels), steps=steps, batch_size=batch_size, lr=lr, width=width, norm=norm,
        input_size=parse_size(input_size) if input_size else None, train_images=train_images,
        eval_images=eval_images, figure_level=figure_level, device=device, seed=seed)
    with progress_bar() as progress:
        result = ae.run(config, progress)
    for path in result.save_run(out, device=result.device, seed=seed):
        typer.echo(f"wrote {path}")
    for r in result.runs:
        psnr = "inf" if r.quality.psnr_infinite else f"{r.quality.psnr:.2f}"
        typer.echo(f"{r.arch:>15} L={r.levels}  params {r.params:>10,}  MACs {r.macs:>14,}  PSNR {psnr:>6} dB  "
                   f"SSIM {r.quality.ssim:.3f}  {r.train_seconds:.1f}s")


@app.command("attribution")
def attribution_command(
    out: OutOpt,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="zoo model at random init (repeat)")] = None,
    checkpoint: Annotated[Optional[list[Path]], typer.Option("--checkpoint", help="trained run folder or .safetensors (repeat)")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="one RGB image file (instead of --dataset)")] = None,
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    pixel: Annotated[Optional[str], typer.Option("--pixel", help="target output pixel Y,X (default: centre)")] = None,
    region: Annotated[Optional[str], typer.Option("--region", help="target output region Y0,X0,Y1,X1 (half-open)")] = None,
    method: Annotated[str, typer.Option("--method", help="integrated_gradients|saliency|input_x_gradient|guided_backprop|gradient_shap")] = "integrated_gradients",
    steps: Annotated[int, typer.Option("--steps", help="integration steps / samples of the method")] = 32,
    images: Annotated[int, typer.Option("--images", help="test images averaged for the receptive field")] = 4,
    width: WidthOpt = 0.25,
    input_size: InputSizeOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
) -> None:
    """Attribute predicted depth to input pixels (captum) and measure effective receptive fields. Example:
    probe attribution --model packnet_b --model densedepth --width 0.0625 --input-size 64x64 --out runs/attr"""
    from analyses import attribution as at
    from probe.options import parse_size

    config = at.AttributionConfig(
        models=list(model or []), checkpoints=list(checkpoint or []), image=image, dataset=dataset,
        data_root=data_root, pixel=pixel, region=region, method=method, steps=steps, images=images, width=width,
        input_size=parse_size(input_size) if input_size else None, device=device, seed=seed)
    result = at.run(config)
    for path in result.save_run(out, device=result.device, seed=seed):
        typer.echo(f"wrote {path}")
    for m in result.models:
        typer.echo(f"{m.name:>28}  ERF r50 {m.erf.radius_50:g} px  r95 {m.erf.radius_95:g} px  support {m.erf.support:g} px  "
                   f"{result.config.method} r95 {m.attribution_radii.radius_95:g} px")

# ----------------------------------------------------------------------------
# section: report and study
# ----------------------------------------------------------------------------


@app.command("report")
def report_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="run folders written with --out")],
    output: Annotated[Path, typer.Option("-o", "--output", help="report file to write")] = Path("report.html"),
    fmt: Annotated[str, typer.Option("--format", help="html|md")] = "html",
) -> None:
    """Turn run folders into one self-contained report. Example: probe report runs/study -o report.html"""
    from probe.report import build_report

    path = build_report(run_dirs, output, fmt)
    typer.echo(f"wrote {path}")


@app.command("study")
def study_command(
    quick: Annotated[bool, typer.Option("--quick", help="tiny widths and images: minutes on a 2-core CPU")] = False,
    dataset: DatasetOpt = "synthetic",
    data_root: DataRootOpt = None,
    step: Annotated[Optional[list[str]], typer.Option("--step", help="run only these steps (repeatable)")] = None,
    force: Annotated[bool, typer.Option("--force", help="re-run steps whose results already exist")] = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    out: OutOpt = Path("runs/study"),
    parallel: ParallelOpt = None, threads_per_run: ThreadsPerRunOpt = None, launcher: LauncherOpt = "local",
    partition: PartitionOpt = None,
    gpus_per_job: GpusPerJobOpt = 1, cpus_per_job: CpusPerJobOpt = None, time_min: TimeMinOpt = 240,
) -> None:
    """The main job: every analysis, then DIR/report.html. Example: probe study --quick --out runs/study

    --parallel / --launcher run the experiment step's runs side by side (as `probe experiment seed-study`)."""
    from probe.study import StudyConfig, run_study

    launch = _launch(parallel, threads_per_run, launcher, partition, gpus_per_job, cpus_per_job, time_min)
    records = run_study(StudyConfig(quick=quick, dataset=dataset, data_root=data_root, device=device, seed=seed,
                                    out=out, steps=list(step) if step else None, force=force, launch=launch))
    for r in records:
        typer.echo(f"{r.name:12s} {r.status:6s} {r.seconds:7.1f} s")
    typer.echo(f"wrote {out / 'report.html'}")


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
        print(f"probe: internal error: {type(exc).__name__}: {one_line(exc)} (set PROBE_DEBUG=1 for the traceback)",
              file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
