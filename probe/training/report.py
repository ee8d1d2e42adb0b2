"""Console summaries of training runs (rich tables on stdout)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from probe.training.loop import TrainResult


def _fmt(value: object, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def print_train_summary(result: TrainResult, console: Console | None = None) -> None:
    """One table: steps, losses, throughput and where the run folder is."""
    s = result.summary
    if s is None:  # a DDP process other than the main one: nothing to show
        return
    table = Table(title=f"train {s.model}", show_header=False)
    rows = [
        ("steps", str(result.steps)),
        ("mean loss (last epoch)", _fmt(s.mean_epoch_loss)),
        ("per-batch loss std", _fmt(s.batch_loss_std)),
        ("first-100-batch mean loss", _fmt(s.first100_mean_loss)),
        ("final loss", _fmt(s.final_loss)),
        ("images/s", _fmt(s.images_per_s, ".1f")),
        ("seconds per epoch", _fmt(s.seconds_per_epoch, ".1f")),
        ("parameters", _fmt(s.params, ",d")),
        ("bad items", s.bad_items.summary or "-"),
        ("run folder", str(result.out)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    (console or Console()).print(table)
