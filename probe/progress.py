"""The one progress display: a rich progress bar (Typer's stack) with ETA."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(transient: bool = False, disable: bool | None = None) -> Progress:
    """A Progress with description, bar, n/total, elapsed and ETA, written to stderr.

    Use as a context manager and add tasks with ``progress.add_task(desc, total=n)``;
    put live numbers (loss) in the description via ``progress.update(task, description=...)``.
    """
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=_quiet() if disable is None else disable,
    )


def _quiet() -> bool:
    """No live bar when stderr is not a terminal, or inside a worker process (``PROBE_NO_PROGRESS``) whose parent
    shows the progress of all of them."""
    return not sys.stderr.isatty() or bool(os.environ.get("PROBE_NO_PROGRESS"))
