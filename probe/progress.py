"""The one progress display: a rich progress bar (Typer's stack) with ETA."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


#: One console for every bar: rich stacks a bar opened inside another (a study's runs around each run's
#: training steps) only when both share their console; two consoles would overwrite each other's lines.
_STDERR = Console(stderr=True)


def progress_bar(transient: bool = False, disable: bool | None = None) -> Progress:
    """A Progress with description, bar, n/total, elapsed and ETA, written to stderr.

    Use as a context manager and add tasks with ``progress.add_task(desc, total=n)``;
    put live numbers (loss) in the description via ``progress.update(task, description=...)``.
    Bars opened while another is live stack under it.
    """
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
        disable=(not sys.stderr.isatty()) if disable is None else disable,
    )
