"""The training loop: ``train(config, hooks) -> TrainResult`` around one readable ``train_step``.

A run folder (``config.out``) ends up holding::

    config.json                 resolved TrainConfig + provenance (section "train")
    metrics.jsonl               one line per step (StepStats.to_record)
    checkpoints/last.*          weights (safetensors) + state (weights_only torch file)
    checkpoints/step_N.*        every --checkpoint-every N steps
    train.json                  summary: loss per epoch, batch-loss spread, throughput, params
    tensorboard/                with --tensorboard

Under torchrun every process runs this same function on its shard of each
batch (DDP); only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

from probe.data import BadItemLog, dataset_info, get_dataset
from probe.device import resolve_device, synchronize
from probe.errors import ProbeError
from probe.io import append_jsonl, atomic_write, to_plain, write_json
from probe.losses import build_loss, dataset_loss_options
from probe.models import build_model, count_parameters
from probe.progress import progress_bar
from probe.runs import prepare_run_dir
from probe.seeding import seed_everything, set_deterministic
from probe.training.checkpoint import (Position, checkpoint_paths, load_weights, read_training_state, rng_state,
                                       save_checkpoint, set_rng_state)
from probe.training.config import OPTIMIZERS, PRECISIONS, TrainConfig
from probe.training.distributed import (DistInfo, env_dist_info, gather_strings, init_distributed,
                                        shutdown_distributed, weights_digest)
from probe.training.hooks import StepStats, TrainHook
from probe.training.loader import EpochLoader, make_loader

# Changing these between a run and its --resume would silently make a different run.
RESUME_FIXED_FIELDS = ("model", "width", "model_options", "dataset", "input_size", "split", "dataset_length",
                       "augment", "batch_size", "seed", "loss", "loss_scales", "optimizer")
# What a run recorded before a field existed meant: runs older than --loss-scales averaged every scale.
LEGACY_FIELDS = {"loss_scales": "all"}


class NonFiniteLoss(ProbeError):
    """The loss (or, without a GradScaler, the gradient norm) stopped being finite."""


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
    """What ``train`` produced; ``model`` is the trained plain module (on the training device)."""

    out: Path
    steps: int
    summary: dict[str, Any]
    checkpoint: Path
    model: nn.Module | None = field(default=None, repr=False, compare=False)


def train_step(model: nn.Module, batch: dict[str, Any], loss_fn: Callable[..., Any],
               optimizer: torch.optim.Optimizer, setup: StepSetup, *, step: int, epoch: int,
               data_seconds: float = 0.0) -> StepStats:
    """One optimizer step on one batch: forward, loss, backward, hooks, clip, step.

    ``batch``: ``image [B,3,H,W]``, ``depth [B,1,h,w]`` metres, ``valid [B,1,h,w]`` bool.
    ``loss_fn(outputs, depth, valid) -> LossOutput`` (output space already bound).
    Raises :class:`NonFiniteLoss` *before* the weights change, so they stay the last good ones.
    """
    start = time.perf_counter()
    dev = setup.device
    image = batch["image"].to(dev, non_blocking=True)
    if setup.channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    depth = batch["depth"].to(dev, non_blocking=True)
    valid = batch["valid"].to(dev, non_blocking=True)

    with torch.autocast(dev.type, dtype=setup.autocast_dtype, enabled=setup.autocast_dtype is not None):
        outputs = model(image)
    result = loss_fn(outputs, depth, valid)  # probe.losses runs in fp32 whatever the autocast dtype
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

    grads = [p.grad for p in setup.module.parameters() if p.grad is not None]
    grad_norm = torch.nn.utils.get_total_norm(grads)
    if setup.grad_clip is not None:
        torch.nn.utils.clip_grads_with_norm_(setup.module.parameters(), setup.grad_clip, grad_norm)
    grad_norm_value = float(grad_norm)
    if setup.scaler is not None:  # skips the update itself when fp16 gradients overflowed
        setup.scaler.step(optimizer)
        setup.scaler.update()
    elif not math.isfinite(grad_norm_value):
        raise NonFiniteLoss(f"step {step}: non-finite gradient norm ({grad_norm_value}) with finite loss "
                            f"{logged['loss']:.4g}")
    else:
        optimizer.step()
    synchronize(dev)

    seconds = time.perf_counter() - start + data_seconds
    images = image.shape[0] * setup.dist.world_size
    return StepStats(step=step, epoch=epoch, loss=logged.pop("loss"), terms=logged, grad_norm=grad_norm_value,
                     lr=float(optimizer.param_groups[0]["lr"]), images_per_s=images / max(seconds, 1e-9),
                     seconds=seconds, data_seconds=data_seconds)


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


def train(config: TrainConfig, hooks: Sequence[TrainHook] = ()) -> TrainResult:
    """Train ``config.model`` on ``config.dataset``; write the run folder ``config.out``.

    Under torchrun (``WORLD_SIZE`` > 1) this process joins the DDP job;
    ``config.batch_size`` is then per process.

    >>> cfg = TrainConfig(model="packnet_slim_b", width=0.0625, input_size=(32, 64),
    ...                   dataset_length=16, max_steps=4, out=Path("runs/tiny"))  # doctest: +SKIP
    >>> train(cfg).summary["steps"]                                              # doctest: +SKIP
    4
    """
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
        self.rng_to_restore: dict[str, Any] | None = None

    # -- setup ------------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.config
        # torch.use_deterministic_algorithms imports the compiler stack (seconds): only touch it when it changes
        if cfg.deterministic != torch.are_deterministic_algorithms_enabled():
            set_deterministic(cfg.deterministic)
        torch.backends.cudnn.benchmark = not cfg.deterministic
        seed_everything(cfg.seed)
        options: dict[str, Any] = {**cfg.dataset_options, "augment": cfg.augment, "seed": cfg.seed,
                                   "skip_bad": cfg.skip_bad}
        if cfg.dataset_length is not None:
            if dataset_info(cfg.dataset).needs_root:
                raise ProbeError(f"--dataset-length: only for generated datasets (e.g. synthetic), "
                                 f"not {cfg.dataset!r}")
            options["length"] = cfg.dataset_length
        self.dataset = get_dataset(cfg.dataset, cfg.data_root, split=cfg.split, input_size=cfg.input_size, **options)
        self.loader: EpochLoader = make_loader(self.dataset, cfg.batch_size, seed=cfg.seed, workers=cfg.workers,
                                               shuffle=True, distributed=self.dist.enabled)
        self.steps_per_epoch = self.loader.batches_per_epoch()
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps is not None else total

        self.module = build_model(cfg.model, width=cfg.width, **cfg.model_options).to(self.device)
        if cfg.channels_last:
            to_channels_last(self.module)
        self.optimizer = OPTIMIZERS.build(cfg.optimizer, self.module.parameters(), cfg.lr)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None
        loss = build_loss(cfg.loss, **dataset_loss_options(cfg.loss, self.dataset.info))
        self.loss_fn = partial(loss, output_space=self.module.output_space, max_depth=self.dataset.info.max_depth,
                               scales=cfg.loss_scales)

    def _prepare_folder(self) -> Position:
        """Fresh run: refuse to mix with an old one. Resume: restore everything at the checkpoint's step."""
        cfg = self.config
        weights, _ = checkpoint_paths(self.out)
        if not cfg.resume:
            if weights.exists():
                raise ProbeError(f"--out {self.out}: already holds a training run (checkpoints/last.safetensors); "
                                 "pass --resume to continue it or choose another --out")
            if self.dist.is_main:
                prepare_run_dir(self.out, "train", cfg.to_json(), device=self.device, seed=cfg.seed)
                self.metrics_path.unlink(missing_ok=True)
            return Position(step=0, epoch=0, batch_in_epoch=0)

        state, weights_path = read_training_state(self.out)
        saved = state["config"]
        now = to_plain(cfg.to_json())
        changed = [k for k in RESUME_FIXED_FIELDS if saved.get(k, LEGACY_FIELDS.get(k)) != now[k]]
        if changed:
            raise ProbeError(f"--resume: {', '.join('--' + k.replace('_', '-') for k in changed)} differ from the "
                             f"run in {self.out}; use the same values or a new --out")
        load_weights(self.module, weights_path, self.device)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.bad_items.names.extend(state.get("bad_items", []))
        self.rng_to_restore = state["rng"]
        position = Position(**state["position"])
        self.saved_step = position.step
        if self.dist.is_main:
            prepare_run_dir(self.out, "train", cfg.to_json(), device=self.device, seed=cfg.seed)
            _truncate_metrics(self.metrics_path, position.step)
        return position

    def _checkpoint(self, position: Position, periodic: bool) -> None:
        if self.saved_step == position.step:
            return
        self.saved_step = position.step
        if not self.dist.is_main:
            return
        state = {"position": vars(position).copy(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                 "rng": rng_state(), "config": to_plain(self.config.to_json()),
                 "bad_items": list(self.bad_items.names)}
        tags = ["last"] + ([f"step_{position.step}"] if periodic else [])
        save_checkpoint(self.out, self.module, state, tags)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.config
        self._build()
        position = self._prepare_folder()
        model: nn.Module = self.module
        if self.dist.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        if cfg.compile:
            model = torch.compile(model)
        setup = StepSetup(module=self.module, device=self.device, autocast_dtype=PRECISIONS[cfg.precision],
                          scaler=self.scaler, grad_clip=cfg.grad_clip, channels_last=bool(cfg.channels_last),
                          hooks=self.hooks, dist=self.dist)
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
        summary = self._summarise(position.step if cfg.resume else None)
        return TrainResult(out=self.out, steps=step, summary=summary, checkpoint=checkpoint_paths(self.out)[0],
                           model=self.module)

    def _step(self, model: nn.Module, batch: dict[str, Any], setup: StepSetup, step: int, epoch: int,
              data_seconds: float) -> StepStats:
        try:
            return train_step(model, batch, self.loss_fn, self.optimizer, setup, step=step, epoch=epoch,
                              data_seconds=data_seconds)
        except NonFiniteLoss as exc:
            kept = checkpoint_paths(self.out)[0]
            where = f"last good checkpoint: {kept} (step {self.saved_step})" if kept.exists() else "no checkpoint written yet"
            raise ProbeError(f"{exc}; run stopped, {where}; try a lower --lr or --grad-clip") from None
        except torch.OutOfMemoryError:
            raise ProbeError(f"CUDA out of memory at step {step} with --batch-size {self.config.batch_size} "
                             f"({self.config.model}, input {tuple(batch['image'].shape[-2:])}); try "
                             f"--batch-size {max(1, self.config.batch_size // 2)} or a smaller --input-size") from None

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
    def _summarise(self, resumed_from: int | None) -> dict[str, Any]:
        digests = gather_strings(weights_digest(self.module), self.dist)
        if not self.dist.is_main:
            return {}
        records = read_metrics(self.metrics_path)
        summary = summarise_metrics(records)
        summary.update({
            "model": self.config.model, "model_options": self.config.model_options, "width": self.config.width,
            "loss": self.config.loss, "loss_scales": self.config.loss_scales,
            "params": count_parameters(self.module), "dataset": self.config.dataset,
            "batch_size": self.config.batch_size, "precision": self.config.precision,
            "device": str(self.device), "resumed_from_step": resumed_from,
            "bad_items": {"count": len(set(self.bad_items.names)), "names": sorted(set(self.bad_items.names)),
                          "summary": self.bad_items.summary()},
            "world_size": self.dist.world_size, "replica_weights_sha256": digests,
            "replicas_identical": len(set(digests)) == 1,
        })
        write_json(self.out / "train.json", summary)
        if len(set(digests)) != 1:
            raise ProbeError(f"DDP replicas ended with different weights ({digests}); see {self.out / 'train.json'}")
        return summary


def _tensorboard_writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ProbeError("--tensorboard: the tensorboard package is not installed; "
                         "pip install 'probe[tensorboard]' (or pip install tensorboard)") from None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The per-step records of a run's ``metrics.jsonl`` (empty if there is none)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after the checkpoint a run resumes from, so the log stays one line per step."""
    kept = [r for r in read_metrics(path) if r["step"] <= step]
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept))


def summarise_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-epoch mean loss and time, per-batch loss spread, first-100-batch loss, throughput.

    The seed judged models by these numbers: mean loss over the epoch, how much
    single batches scatter around it, and how fast the first batches improve.
    """
    losses = [r["loss"] for r in records]
    seconds = sum(r["seconds"] for r in records)
    images = sum(r["images_per_s"] * r["seconds"] for r in records)
    epochs = []
    for epoch in sorted({r["epoch"] for r in records}):
        rows = [r for r in records if r["epoch"] == epoch]
        epoch_losses = [r["loss"] for r in rows]
        epochs.append({"epoch": epoch, "steps": len(rows), "mean_loss": statistics.fmean(epoch_losses),
                       "loss_std": statistics.pstdev(epoch_losses), "seconds": sum(r["seconds"] for r in rows)})
    return {
        "steps": len(records),
        "epochs": epochs,
        "mean_epoch_loss": epochs[-1]["mean_loss"] if epochs else None,
        "batch_loss_std": statistics.pstdev(losses) if losses else None,
        "first100_mean_loss": statistics.fmean(losses[:100]) if losses else None,
        "final_loss": losses[-1] if losses else None,
        "seconds": seconds,
        "seconds_per_epoch": statistics.fmean(e["seconds"] for e in epochs) if epochs else None,
        "images_per_s": images / seconds if seconds > 0 else None,
        "loss_curve": losses,
    }
