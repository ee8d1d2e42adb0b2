"""The training loop: ``train(config, hooks) -> TrainResult`` around one readable ``train_step``.

A run folder (``config.out``) ends up holding::

    config.json                 resolved TrainConfig + provenance (section "train")
    metrics.jsonl               one line per step (StepStats.to_record)
    checkpoints/step_N/         weights + state + manifest, committed by one rename (probe.training.checkpoint)
    checkpoints/last            the newest checkpoint's folder name
    train.json                  summary: loss per epoch, batch-loss spread, throughput, params, bad items
    tensorboard/                with --tensorboard
    .lock                       while running: the writer lock (probe.runs.run_folder_lock), one writer per folder

Under torchrun every process runs this same function on its shard of each
batch (DDP); only rank 0 locks the folder and writes files.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import torch
import torch.distributed as dist
import torch.nn as nn

from probe.data import BadItemLog, dataset_info, get_dataset
from probe.device import resolve_device, synchronize
from probe.errors import ProbeError, warn
from probe.io import append_jsonl, atomic_write, to_plain
from probe.memory import check_training_fits
from probe.models import build_model, count_parameters
from probe.models.recompute import enable_activation_checkpointing
from probe.progress import progress_bar
from probe.runs import prepare_run_dir, run_folder_lock
from probe.seeding import seed_everything, set_deterministic
from probe.training.checkpoint import (
    INIT_WEIGHT_OPTIONS,
    Checkpoint,
    Position,
    clean_partial_checkpoints,
    find_resume_point,
    has_checkpoint,
    load_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from probe.training.config import LR_SCHEDULES, OPTIMIZERS, PRECISIONS, TrainConfig
from probe.training.distributed import (
    DistInfo,
    env_dist_info,
    gather_strings,
    init_distributed,
    shutdown_distributed,
    weights_digest,
)
from probe.training.hooks import StepStats, TrainHook
from probe.training.loader import EpochLoader, make_loader
from probe.training.objective import Objective, as_objective, build_objective
from probe.training.summary import BadItems, TrainSummary, read_metrics, summarise_metrics

# Changing these between a run and its --resume would silently make a different run.
RESUME_FIXED_FIELDS = (
    "model",
    "width",
    "model_options",
    "dataset",
    "input_size",
    "split",
    "dataset_length",
    "augment",
    "batch_size",
    "seed",
    "loss",
    "loss_scales",
    "optimizer",
    "lr",  # the optimizer's restored state carries the saved learning rate: a new --lr would be ignored
    "lr_schedule",
    "lr_decay_every",
    "objective",
    "velocity_weight",
    "smoothness_weight",
    "pose_width",
    "pose_lr",
    "source_average_steps",
    "pose_inputs",
    "pose_translation_scale",
    "pose_source",
    "automask_after",
)
# What a run recorded before a field existed meant: runs older than --loss-scales averaged every scale, runs
# older than --source-average-steps, --pose-inputs and --automask-after took the minimum over source frames and
# auto-masked from the first step, and stacked the frames for PoseNet, whose poses the warp used, with its
# translations scaled by the published 0.01.
LEGACY_FIELDS = {
    "loss_scales": "all",
    "source_average_steps": 0,
    "pose_inputs": "stack",
    "pose_translation_scale": 0.01,
    "automask_after": 0,
    "pose_source": "posenet",
}


def changed_fields(recorded: dict[str, Any], config: TrainConfig) -> list[str]:
    """The :data:`RESUME_FIXED_FIELDS` in which ``config`` differs from a checkpoint's recorded config."""
    now = to_plain(config.to_json())
    return [k for k in RESUME_FIXED_FIELDS if recorded.get(k, LEGACY_FIELDS.get(k)) != now[k]]


class NonFiniteLoss(ProbeError):
    """The loss (or, without a GradScaler, the gradient norm, or the weights after a step) stopped being finite."""


@dataclass
class StepSetup:
    """What stays fixed between steps: where and how to compute, and who is watching."""

    module: nn.Module
    device: torch.device
    autocast_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    grad_clip: float | None = None
    channels_last: bool = False
    hooks: Sequence[TrainHook] = ()
    dist: DistInfo = field(default_factory=DistInfo)


@dataclass
class TrainResult:
    """What ``train`` produced; ``summary`` is ``train.json`` (None on DDP processes other than the main one);
    ``model`` is the trained plain module (on the training device)."""

    out: Path
    steps: int
    summary: TrainSummary | None
    checkpoint: Path
    model: nn.Module | None = field(default=None, repr=False, compare=False)


def train_step(
    model: nn.Module,
    batch: dict[str, Any],
    objective: Objective | Callable[..., Any],
    optimizer: torch.optim.Optimizer,
    setup: StepSetup,
    *,
    step: int,
    epoch: int,
    data_seconds: float = 0.0,
) -> StepStats:
    """One optimizer step on one batch: forward and loss (the objective), backward, hooks, clip, step.

    ``batch``: ``image [B,3,H,W]``, ``depth [B,1,h,w]`` metres, ``valid [B,1,h,w]`` bool,
    and whatever else the objective reads (video context, ``K``, speed).
    ``objective(model, batch, forward) -> LossOutput`` (probe.training.objective); a plain
    ``loss_fn(outputs, depth, valid)`` is the supervised objective.
    Raises :class:`NonFiniteLoss` *before* the weights change when the loss or gradient is not
    finite, and after the step when the step itself made a weight non-finite (an lr so large that
    Adam's update overflows while a saturating head keeps the loss finite); either way no checkpoint
    of bad weights is ever written.
    """
    start = time.perf_counter()
    objective = as_objective(objective)
    inputs = _to_device(batch, setup)

    result = objective(model, inputs, partial(_autocast_forward, setup))  # losses compute in fp32 themselves
    logged = _mean_over_processes({"loss": result.total, **result.terms}, setup.dist)
    if not all(math.isfinite(v) for v in logged.values()):
        shown = ", ".join(f"{k}={v:.4g}" for k, v in logged.items())
        raise NonFiniteLoss(f"step {step}: non-finite loss ({shown})")

    optimizer.zero_grad(set_to_none=True)
    if setup.scaler is not None:
        setup.scaler.scale(result.total).backward()
        setup.scaler.unscale_(optimizer)
    else:
        result.total.backward()
    for hook in setup.hooks:
        hook.after_backward(step, setup.module)

    params = [*setup.module.parameters(), *objective.parameters()]
    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    if setup.grad_clip is not None:
        torch.nn.utils.clip_grads_with_norm_(params, setup.grad_clip, grad_norm)
    grad_norm_value = float(grad_norm)
    if setup.scaler is not None:  # skips the update itself when fp16 gradients overflowed
        setup.scaler.step(optimizer)
        setup.scaler.update()
    elif not math.isfinite(grad_norm_value):
        raise NonFiniteLoss(
            f"step {step}: non-finite gradient norm ({grad_norm_value}) with finite loss {logged['loss']:.4g}"
        )
    else:
        optimizer.step()
    weight_max = float(torch.nn.utils.get_total_norm(list(setup.module.parameters()), norm_type=math.inf))
    if not math.isfinite(weight_max):
        raise NonFiniteLoss(
            f"step {step}: the optimizer step made weights non-finite (lr "
            f"{optimizer.param_groups[0]['lr']:g}, gradient norm {grad_norm_value:.4g})"
        )
    synchronize(setup.device)

    seconds = time.perf_counter() - start + data_seconds
    images = inputs["image"].shape[0] * setup.dist.world_size
    return StepStats(
        step=step,
        epoch=epoch,
        loss=logged.pop("loss"),
        terms=logged,
        grad_norm=grad_norm_value,
        lr=float(optimizer.param_groups[0]["lr"]),
        images_per_s=images / max(seconds, 1e-9),
        seconds=seconds,
        data_seconds=data_seconds,
    )


def _to_device(batch: dict[str, Any], setup: StepSetup) -> dict[str, Any]:
    """Every tensor of the batch on the step's device (non-blocking); the image NHWC when asked."""
    moved = {k: v.to(setup.device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    if setup.channels_last:
        moved["image"] = moved["image"].contiguous(memory_format=torch.channels_last)
    return moved


def _autocast_forward(setup: StepSetup, module: nn.Module, *inputs: torch.Tensor) -> Any:
    """``module(*inputs)`` under the step's autocast (bf16/fp16 or off)."""
    dtype = setup.autocast_dtype
    with torch.autocast(setup.device.type, dtype=dtype, enabled=dtype is not None):
        return module(*inputs)


def to_channels_last(module: nn.Module) -> nn.Module:
    """NHWC storage for every 4-D parameter and buffer (conv2d weights), in place.

    ``module.to(memory_format=torch.channels_last)`` refuses PackNet, whose
    packing layers hold 5-D conv3d weights; those keep their layout here.
    """
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.dim() == 4:
            tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return module


def _mean_over_processes(values: dict[str, torch.Tensor], info: DistInfo) -> dict[str, float]:
    """Detach, average over DDP processes (NaN anywhere -> NaN everywhere) and turn into floats."""
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    if info.enabled:
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked /= info.world_size
    return dict(zip(values, stacked.tolist()))


def planned_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """The optimizer steps a run makes: ``epochs`` passes of ``steps_per_epoch`` capped at ``max_steps``, or
    exactly ``max_steps`` (spanning as many passes as needed) when ``epochs`` is None."""
    if config.epochs is None:
        assert config.max_steps is not None  # TrainConfig.validate
        return config.max_steps
    total = config.epochs * steps_per_epoch
    return min(total, config.max_steps) if config.max_steps is not None else total


def train(config: TrainConfig, hooks: Sequence[TrainHook] = ()) -> TrainResult:
    """Train ``config.model`` on ``config.dataset``; write the run folder ``config.out``.

    Under torchrun (``WORLD_SIZE`` > 1) this process joins the DDP job;
    ``config.batch_size`` is then per process.

    >>> cfg = TrainConfig(model="packnet_slim_b", width=0.0625, input_size=(32, 64),
    ...                   dataset_length=16, max_steps=4, out=Path("runs/tiny"))  # doctest: +SKIP
    >>> train(cfg).summary.steps                                                 # doctest: +SKIP
    4
    """
    config.validate()  # bad values fail before a process group or a device is touched
    info = env_dist_info()
    started_group = info.enabled and not (dist.is_available() and dist.is_initialized())
    device = init_distributed(info, resolve_device(config.device))
    try:
        return _Run(config.resolved(device), list(hooks), info, device).run()
    finally:
        if started_group:
            shutdown_distributed()


class _Run:
    """State of one training run; ``run()`` is the loop. Split into methods only for setup and bookkeeping."""

    def __init__(self, config: TrainConfig, hooks: list[TrainHook], info: DistInfo, device: torch.device) -> None:
        self.config, self.hooks, self.dist, self.device = config, hooks, info, device
        self.out = Path(config.out)
        self.metrics_path = self.out / "metrics.jsonl"
        self.bad_items = BadItemLog()
        self.saved_step: int | None = None
        self.last_checkpoint: Checkpoint | None = None
        self.resumed_from: int | None = None
        self.rng_to_restore: dict[str, Any] | None = None

    # -- setup ------------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        set_deterministic(cfg.deterministic, self.device.type)
        seed_everything(cfg.seed)
        options: dict[str, Any] = {
            **cfg.dataset_options,
            "augment": cfg.augment,
            "seed": cfg.seed,
            "skip_bad": cfg.skip_bad,
        }
        if cfg.dataset_length is not None:
            if dataset_info(cfg.dataset).needs_root:
                raise ProbeError(f"--dataset-length: only for generated datasets (e.g. synthetic), not {cfg.dataset!r}")
            options["length"] = cfg.dataset_length
        self.dataset = get_dataset(cfg.dataset, cfg.data_root, split=cfg.split, input_size=cfg.input_size, **options)
        self.loader: EpochLoader = make_loader(
            self.dataset,
            cfg.batch_size,
            seed=cfg.seed,
            workers=cfg.workers,
            shuffle=True,
            distributed=self.dist.enabled,
        )
        self.steps_per_epoch = self.loader.batches_per_epoch()
        self.total_steps = planned_steps(cfg, self.steps_per_epoch)
        check_training_fits(
            cfg.model,
            width=cfg.width,
            model_options=cfg.model_options,
            input_size=self.dataset.input_size,
            batch_size=cfg.batch_size,
            precision=cfg.precision or "fp32",
            activation_checkpointing=cfg.activation_checkpointing,
            device=self.device,
        )
        shard = self.loader.shard_length()
        if cfg.batch_size > shard:  # every batch would be smaller than the batch size the run records
            where = (
                f"this process's shard of the {cfg.dataset!r} {cfg.split} split"
                if self.dist.enabled
                else (f"the {cfg.dataset!r} {cfg.split} split")
            )
            raise ProbeError(
                f"--batch-size {cfg.batch_size}: {where} has only {shard} items; lower --batch-size "
                "(or, for generated data, raise --dataset-length)"
            )
        options = cfg.model_options
        if cfg.resume and has_checkpoint(self.out):  # every weight comes from the checkpoint: the file the run
            options = {k: v for k, v in options.items() if k not in INIT_WEIGHT_OPTIONS}  # started from is not read
        self.module = build_model(cfg.model, width=cfg.width, **options).to(self.device)
        if cfg.activation_checkpointing:
            enable_activation_checkpointing(self.module)
        if cfg.channels_last:
            to_channels_last(self.module)
        self.objective = build_objective(cfg, self.module, self.dataset, self.device)
        groups: list[dict[str, Any]] = [{"params": list(self.module.parameters())}]
        extra = list(self.objective.parameters())
        if extra:  # the objective's own networks (the pose net) in a group of their own, as packnet-sfm
            groups.append({"params": extra, "lr": cfg.pose_lr if cfg.pose_lr is not None else cfg.lr})
        self.optimizer = OPTIMIZERS[cfg.optimizer](groups, cfg.lr)
        self.base_lrs = [float(group["lr"]) for group in self.optimizer.param_groups]  # what the schedule scales
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None

    def _prepare_folder(self) -> Position:
        """Fresh run: refuse to mix with an old one. Resume: restore everything at the newest complete checkpoint.

        ``--resume`` where no checkpoint was written yet (a run killed before its first one, or a
        requeued job's first start) starts at step 0 with a warning.
        """
        cfg = self.config
        if self.dist.is_main:  # what a killed writer left in checkpoints/ (the lock cleaned the folder itself)
            clean_partial_checkpoints(self.out)
        if not cfg.resume and has_checkpoint(self.out):
            raise ProbeError(
                f"--out {self.out}: already holds a training run (checkpoints/); "
                "pass --resume to continue it or choose another --out"
            )
        found = find_resume_point(self.out) if cfg.resume else None
        if found is None:
            if cfg.resume and self.dist.is_main:
                warn(f"--resume: no checkpoint in {self.out} yet; starting at step 0")
            if self.dist.is_main:
                prepare_run_dir(self.out, "train", cfg.to_json(), device=self.device, seed=cfg.seed)
                self.metrics_path.unlink(missing_ok=True)
            return Position(step=0, epoch=0, batch_in_epoch=0)

        checkpoint, state = found
        changed = changed_fields(state["config"], cfg)
        if changed:
            raise ProbeError(
                f"--resume: {', '.join('--' + k.replace('_', '-') for k in changed)} differ from the "
                f"run in {self.out}; use the same values or a new --out"
            )
        load_weights(self.module, checkpoint.weights, self.device)
        self.objective.load_state_dict(state.get("objective", {}))
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.bad_items.names.extend(state.get("bad_items", []))
        self.rng_to_restore = state["rng"]
        position = Position(**state["position"])
        self.saved_step = position.step
        self.last_checkpoint = checkpoint
        self.resumed_from = position.step
        if self.dist.is_main:
            prepare_run_dir(self.out, "train", cfg.to_json(), device=self.device, seed=cfg.seed)
            _truncate_metrics(self.metrics_path, position.step)
        return position

    def _checkpoint(self, position: Position, periodic: bool) -> None:
        if self.saved_step == position.step:
            return
        self.saved_step = position.step
        self._gather_bad_items()
        if not self.dist.is_main:
            return
        state = {
            "position": vars(position).copy(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": rng_state(),
            "config": to_plain(self.config.to_json()),
            "bad_items": list(self.bad_items.names),
            "objective": self.objective.state_dict(),
        }
        self.last_checkpoint = save_checkpoint(self.out, self.module, state, keep=periodic)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Build (every check, nothing written), then train under the run folder's lock (rank 0 takes it)."""
        self._build()
        lock = run_folder_lock(self.out, "train") if self.dist.is_main else contextlib.nullcontext()
        with lock:
            return self._train()

    def _train(self) -> TrainResult:
        cfg = self.config
        position = self._prepare_folder()
        model: nn.Module = self.module
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
            self.objective.wrap(partial(nn.parallel.DistributedDataParallel, device_ids=device_ids))
        if cfg.compile:
            model = cast(nn.Module, torch.compile(model))  # an OptimizedModule, typed as a plain callable
        setup = StepSetup(
            module=self.module,
            device=self.device,
            autocast_dtype=PRECISIONS[cfg.precision or "fp32"],
            scaler=self.scaler,
            grad_clip=cfg.grad_clip,
            channels_last=bool(cfg.channels_last),
            hooks=self.hooks,
            dist=self.dist,
        )
        writer = _tensorboard_writer(self.out) if cfg.tensorboard and self.dist.is_main else None
        for hook in self.hooks:
            hook.on_start(self.module, cfg)
        model.train()
        if self.rng_to_restore is not None:
            set_rng_state(self.rng_to_restore)

        epoch, skip = position.epoch, position.batch_in_epoch
        if skip >= self.steps_per_epoch:
            epoch, skip = epoch + 1, 0
        step = position.step
        with progress_bar(disable=None if self.dist.is_main else True) as bar, contextlib.ExitStack() as cleanup:
            if writer is not None:
                cleanup.callback(writer.close)
            task = bar.add_task(f"train {cfg.model}", total=self.total_steps, completed=step)
            while step < self.total_steps:
                self.loader.set_epoch(epoch, start_batch=skip)
                batches = iter(self.loader)
                batch_in_epoch = skip
                while step < self.total_steps:
                    fetch_start = time.perf_counter()
                    batch = next(batches, None)
                    if batch is None:
                        break
                    self.bad_items.update(batch)
                    stats = self._step(model, batch, setup, step + 1, epoch, time.perf_counter() - fetch_start)
                    step, batch_in_epoch = step + 1, batch_in_epoch + 1
                    self._log(stats, writer)
                    for hook in self.hooks:
                        hook.after_step(step, self.module, stats)
                    bar.update(task, completed=step, description=f"train {cfg.model} loss {stats.loss:.4f}")
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        self._checkpoint(Position(step, epoch, batch_in_epoch), periodic=True)
                self._checkpoint(Position(step, epoch, batch_in_epoch), periodic=False)
                epoch, skip = epoch + 1, 0
        for hook in self.hooks:
            hook.on_end(self.module)
        summary = self._summarise()
        weights = self.last_checkpoint.weights if self.last_checkpoint is not None else self.out
        return TrainResult(out=self.out, steps=step, summary=summary, checkpoint=weights, model=self.module)

    def _gather_bad_items(self) -> None:
        """Under DDP each process skips bad items of its own shard: rank 0 collects them all to report."""
        if not self.dist.enabled:
            return
        merged = set()
        for names in gather_strings(json.dumps(sorted(set(self.bad_items.names))), self.dist):
            merged.update(json.loads(names))
        if self.dist.is_main:
            self.bad_items.names = sorted(merged)

    def _step(
        self, model: nn.Module, batch: dict[str, Any], setup: StepSetup, step: int, epoch: int, data_seconds: float
    ) -> StepStats:
        factor = LR_SCHEDULES[self.config.lr_schedule](step, self.total_steps, self.config.lr_decay_every)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        try:
            return train_step(
                model, batch, self.objective, self.optimizer, setup, step=step, epoch=epoch, data_seconds=data_seconds
            )
        except NonFiniteLoss as exc:
            kept = self.last_checkpoint
            where = (
                f"last good checkpoint: {kept.folder or kept.weights} (step {kept.step})"
                if kept is not None
                else "no checkpoint written yet"
            )
            raise ProbeError(f"{exc}; run stopped, {where}; try a lower --lr or --grad-clip") from None
        except torch.OutOfMemoryError:
            raise ProbeError(
                f"CUDA out of memory at step {step} with --batch-size {self.config.batch_size} "
                f"({self.config.model}, input {tuple(batch['image'].shape[-2:])}); try "
                f"--batch-size {max(1, self.config.batch_size // 2)} or a smaller --input-size"
            ) from None

    def _log(self, stats: StepStats, writer: Any) -> None:
        if not self.dist.is_main:
            return
        record = stats.to_record()
        append_jsonl(self.metrics_path, record)
        if writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch"):
                    writer.add_scalar(f"train/{key}", value, stats.step)

    # -- summary ----------------------------------------------------------------------------------
    def _summarise(self) -> TrainSummary | None:
        """``train.json`` (written by the main process; the others return None)."""
        digests = gather_strings(weights_digest(self.module), self.dist)
        self._gather_bad_items()
        if not self.dist.is_main:
            return None
        cfg = self.config
        bad = sorted(set(self.bad_items.names))
        summary = TrainSummary(
            **vars(summarise_metrics(read_metrics(self.metrics_path))),
            model=cfg.model,
            model_options=cfg.model_options,
            width=cfg.width,
            params=count_parameters(self.module),
            dataset=cfg.dataset,
            loss=cfg.loss,
            loss_scales=cfg.loss_scales,
            objective=cfg.objective,
            velocity_weight=cfg.velocity_weight,
            objective_params=sum(p.numel() for p in self.objective.parameters()),
            batch_size=cfg.batch_size,
            precision=cfg.precision,
            device=str(self.device),
            resumed_from_step=self.resumed_from,
            bad_items=BadItems(len(bad), bad, self.bad_items.summary()),
            world_size=self.dist.world_size,
            replica_weights_sha256=digests,
            replicas_identical=len(set(digests)) == 1,
        )
        summary.save(self.out)
        if len(set(digests)) != 1:
            raise ProbeError(f"DDP replicas ended with different weights ({digests}); see {self.out / 'train.json'}")
        return summary


def _tensorboard_writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ProbeError(
            "--tensorboard: the tensorboard package is not installed; "
            "pip install 'probe[tensorboard]' (or pip install tensorboard)"
        ) from None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after the checkpoint a run resumes from, so the log stays one line per step.

    A last line a kill cut short is dropped too (:func:`~probe.training.summary.read_metrics`);
    a malformed line anywhere else is an error naming the file and line.
    """
    kept = []
    for number, record in enumerate(read_metrics(path, drop_cut_last_line=True), start=1):
        record_step = record.get("step")
        if not isinstance(record_step, int) or isinstance(record_step, bool):
            raise ProbeError(f"{path}: record {number}: no integer 'step'; cannot resume this run's log")
        if record_step <= step:
            kept.append(record)
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))
