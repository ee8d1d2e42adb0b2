"""The one record the CPU benches of the self-supervised work write with ``--out``: what they measured, the
command line, and the machine with its load (timings on a shared machine mean little without it)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probe.io import write_json  # noqa: E402
from probe.runs import provenance  # noqa: E402
from probe.schema import encode  # noqa: E402


def write_bench_record(
    out: Path, benchmark: str, argv: list[str] | None, load_before: tuple[float, ...], **measured: Any
) -> None:
    """Write ``{benchmark, argv, **measured, machine}`` to ``out`` (atomically) and say so.

    ``argv``: the arguments ``main`` was given (None: this process's); ``load_before``: ``os.getloadavg()``
    taken when the measurement started; the load average at the end is read here.
    """
    record = {
        "benchmark": benchmark,
        "argv": sys.argv[1:] if argv is None else argv,
        **measured,
        "machine": {
            **encode(provenance(device="cpu")),
            "cpus": os.cpu_count(),
            "load_average_before": load_before[0],
            "load_average_after": os.getloadavg()[0],
        },
    }
    write_json(out, record)
    print(f"wrote {out}")


def finish(
    table: Any,
    benchmark: str,
    out: Path | None,
    argv: list[str] | None,
    load_before: tuple[float, ...],
    start: float,
    **measured: Any,
) -> None:
    """Print ``table`` (a rich Table), the minutes since ``start`` with the load, and write the record to ``out``
    (None: print only); the measured time goes in as ``seconds``."""
    from rich.console import Console

    Console(width=140).print(table)
    seconds = time.time() - start
    print(f"{seconds / 60:.1f} min; load average before/after {load_before[0]:.1f} / {os.getloadavg()[0]:.1f}")
    if out is not None:
        write_bench_record(out, benchmark, argv, load_before, **measured, seconds=seconds)
