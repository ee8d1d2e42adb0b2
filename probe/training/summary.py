"""A run's ``metrics.jsonl`` (one line per step) and ``train.json`` (its summary), read and written in one place.

>>> summary = TrainSummary.read("runs/x/train.json")          # doctest: +SKIP
>>> summary.mean_epoch_loss, summary.batch_loss_std             # doctest: +SKIP
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from probe.errors import ProbeError
from probe.results import Result, register_result


def read_metrics(path: str | Path, *, drop_cut_last_line: bool = False) -> list[dict[str, Any]]:
    """The per-step records of a run's ``metrics.jsonl`` (empty if there is none).

    A line that is not a JSON object is a one-line error naming the file and the line.  With
    ``drop_cut_last_line`` (``--resume``) a bad *last* line is dropped instead: a kill during an
    append leaves it cut short, and its step is after the checkpoint's (checkpoints follow their
    steps' lines).
    """
    file = Path(path)
    if not file.is_file():
        return []
    lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, ValueError, RecursionError):
            if drop_cut_last_line and number == len(lines):
                break
            raise ProbeError(f"{file}:{number}: not a JSON line") from None
        if not isinstance(record, dict):
            raise ProbeError(f"{file}:{number}: expected a JSON object per line, got {type(record).__name__}")
        records.append(record)
    return records


def read_loss_curve(path: str | Path) -> tuple[list[int], list[float]]:
    """``(steps, losses)`` of a ``metrics.jsonl``; a line without an integer step and a numeric loss is an error."""
    steps, losses = [], []
    for number, record in enumerate(read_metrics(path), start=1):
        step, loss = record.get("step"), record.get("loss")
        if not isinstance(step, int) or isinstance(step, bool) or not isinstance(loss, (int, float)):
            raise ProbeError(f"{path}: record {number}: expected an integer 'step' and a numeric 'loss'")
        steps.append(step)
        losses.append(float(loss))
    return steps, losses


@dataclass
class EpochSummary:
    """One epoch: its steps, mean and standard deviation of the per-batch loss, and wall time."""

    epoch: int
    steps: int
    mean_loss: float
    loss_std: float
    seconds: float


@dataclass
class MetricsSummary:
    """What ``metrics.jsonl`` says about a run: the numbers the seed judged models by.

    Mean loss over the (last) epoch, how much single batches scatter around it, how fast
    the first batches improve, and throughput.
    """

    steps: int
    epochs: list[EpochSummary]
    mean_epoch_loss: float | None  # the last epoch's mean (None: no step was logged)
    batch_loss_std: float | None
    first100_mean_loss: float | None
    final_loss: float | None
    seconds: float
    seconds_per_epoch: float | None
    images_per_s: float | None
    loss_curve: list[float]


def summarise_metrics(records: list[dict[str, Any]]) -> MetricsSummary:
    """Per-epoch mean loss and time, per-batch loss spread, first-100-batch loss, throughput."""
    losses = [r["loss"] for r in records]
    seconds = sum(r["seconds"] for r in records)
    images = sum(r["images_per_s"] * r["seconds"] for r in records)
    epochs = []
    for epoch in sorted({r["epoch"] for r in records}):
        rows = [r for r in records if r["epoch"] == epoch]
        epoch_losses = [r["loss"] for r in rows]
        epochs.append(
            EpochSummary(
                epoch,
                len(rows),
                statistics.fmean(epoch_losses),
                statistics.pstdev(epoch_losses),
                sum(r["seconds"] for r in rows),
            )
        )
    return MetricsSummary(
        steps=len(records),
        epochs=epochs,
        mean_epoch_loss=epochs[-1].mean_loss if epochs else None,
        batch_loss_std=statistics.pstdev(losses) if losses else None,
        first100_mean_loss=statistics.fmean(losses[:100]) if losses else None,
        final_loss=losses[-1] if losses else None,
        seconds=seconds,
        seconds_per_epoch=statistics.fmean(e.seconds for e in epochs) if epochs else None,
        images_per_s=images / seconds if seconds > 0 else None,
        loss_curve=losses,
    )


@dataclass
class BadItems:
    """Items ``--skip-bad`` replaced during the run."""

    count: int
    names: list[str]
    summary: str


@register_result
@dataclass
class TrainSummary(MetricsSummary, Result):
    """``train.json``: the metrics summary plus what trained, where, and whether DDP replicas agree."""

    name: ClassVar[str] = "train"
    schema_version: ClassVar[int] = 1
    model: str
    model_options: dict[str, Any]
    width: float
    params: int
    dataset: str
    loss: str  # the supervised objective's loss (TrainConfig.loss)
    loss_scales: str  # finest | all: which output scales the loss charged
    objective: str  # supervised | self_supervised (TrainConfig.objective)
    velocity_weight: float
    objective_params: int  # parameters the objective trains beside the model (the pose network)
    batch_size: int
    precision: str | None
    device: str
    resumed_from_step: int | None
    bad_items: BadItems
    world_size: int
    replica_weights_sha256: list[str]
    replicas_identical: bool
