"""The one progress display: a rich progress bar (Typer's stack) with ETA."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

#: One console for every bar: rich stacks a bar opened inside another (a study's runs around each run's
#: training steps) only when both share their console; two consoles would overwrite each other's lines.
_STDERR = Console(stderr=True)


def progress_bar(transient: bool = False, disable: bool | None = None) -> Progress:
    """A Progress with description, bar, n/total, elapsed and ETA, written to stderr.

    Use as a context manager and add tasks with ``progress.add_task(desc, total=n)``;
    put live numbers (loss) in the description via ``progress.update(task, description=...)``.
    Hidden when stderr is not a terminal, and in processes started with ``PROBE_PROGRESS=0``
    (the workers of ``--parallel``, whose bars would garble one terminal).  A bar opened while
    another is live stacks under it.
    """
    if disable is None:
        disable = not sys.stderr.isatty() or os.environ.get("PROBE_PROGRESS") == "0"
    console = _STDERR
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=disable,
    )
