"""The seed study's experiment matrix one after another against ``--parallel N`` and submitit's local executor.

Each mode runs ``probe experiment seed-study`` as its own process into a fresh folder, timed
by the wall clock (the point of running side by side) and by the CPU seconds of that process
and every process it started:

- ``sequential``: one run after another on torch's default threads (every core);
- ``sequential-pinned``: the same with ``--threads-per-run cores // N``, the threads a worker gets;
- ``parallel``: ``--parallel N`` worker processes;
- ``submitit-local``: ``--parallel N --launcher submitit-local``.

Every result is compared with the reference, ``sequential-pinned`` when it ran (else
``sequential``), by :func:`probe.experiments.study_differences` (every number bit for bit but
the timings and the folders): ``differences`` counts what differs and ``max_relative_difference``
says by how much.  The plain sequential row set against the pinned one shows what the thread
count alone changes: CPU kernels split their sums by thread.

    python3 bench/parallel.py --out bench/results/parallel-cpu.json
    python3 bench/parallel.py --modes sequential,parallel --max-steps 8 --only densedepth,exp1_packnet_b

Timings on a machine shared with other jobs measure that machine's load as much as probe.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from probe.experiments import study_differences  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.jobs import available_cores, threads_per_job  # noqa: E402
from probe.runs import provenance  # noqa: E402

MODES = {
    "sequential": [],
    "sequential-pinned": ["--threads-per-run", "{t}"],
    "parallel": ["--parallel", "{n}"],
    "submitit-local": ["--parallel", "{n}", "--launcher", "submitit-local"],
}


def run_mode(mode: str, parallel: int, study_flags: list[str], out: Path) -> dict[str, Any]:
    """One ``probe experiment seed-study`` process: wall and CPU seconds (its own and its children's)."""
    flags = [f.format(n=parallel, t=threads_per_job(parallel)) for f in MODES[mode]]
    command = [sys.executable, "-m", "cli", "experiment", "seed-study", *study_flags, *flags, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    row: dict[str, Any] = {
        "mode": mode,
        "parallel": 1 if mode.startswith("sequential") else parallel,
        "threads_per_run": None if mode == "sequential" else threads_per_job(parallel),
        "wall_s": wall,
        "cpu_s": cpu,
        "status": "ok"
        if done.returncode == 0
        else f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}",
        "out": str(out),
    }
    return row


def max_relative_difference(a: Any, b: Any) -> float:
    """The largest |x - y| / max(|x|, |y|) over the numbers two JSON values share (0 when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return max([max_relative_difference(a[k], b[k]) for k in a if k in b], default=0.0)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return max([max_relative_difference(x, y) for x, y in zip(a, b)], default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        scale = max(abs(a), abs(b))
        return abs(a - b) / scale if scale else 0.0
    return 0.0


def compare(reference: Path, other: Path) -> dict[str, Any]:
    a, b = (json.loads((p / "experiments.json").read_text()) for p in (reference, other))
    timings = ("seconds_per_epoch", "images_per_s")
    strip = [[{k: v for k, v in row.items() if k not in timings} for row in s["experiments"]] for s in (a, b)]
    found = study_differences(a, b)
    return {
        "differences": len(found),
        "first_differences": found[:5],
        "max_relative_difference": max_relative_difference(*strip),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once in the parallel modes")
    parser.add_argument("--only", default=None, help="experiment ids (default: all six)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap every run (default: --quick's 24 steps)")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="where the studies are written (default: a temp folder)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes: any of {', '.join(MODES)}")
    study_flags = ["--quick", "--device", "cpu"]
    study_flags += ["--only", args.only] if args.only else []
    study_flags += ["--max-steps", str(args.max_steps)] if args.max_steps else []

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="probe-parallel-"))
    rows = [run_mode(mode, args.parallel, study_flags, work / mode) for mode in modes]
    reference = next((r for r in rows if r["mode"] == "sequential-pinned"), rows[0])
    for row in rows:
        row["reference"] = reference["mode"]
        if row is not reference and row["status"] == "ok" and reference["status"] == "ok":
            row.update(compare(Path(reference["out"]), Path(row["out"])))
        row["speed_up"] = rows[0]["wall_s"] / row["wall_s"]

    table = Table(
        title=f"seed study (--quick{' --only ' + args.only if args.only else ''}) on {available_cores()} "
        f"CPU cores, load average {os.getloadavg()[0]:.1f} at the end"
    )
    for column in (
        "mode",
        "runs at once",
        "threads/run",
        "wall s",
        "CPU s",
        f"speed-up vs {rows[0]['mode']}",
        f"differences vs {reference['mode']}",
        "max rel diff",
        "status",
    ):
        table.add_column(column, justify="left" if column in ("mode", "status") else "right")
    for r in rows:
        table.add_row(
            r["mode"],
            str(r["parallel"]),
            str(r["threads_per_run"] or "all"),
            f"{r['wall_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['speed_up']:.2f}",
            str(r.get("differences", "-")),
            f"{r['max_relative_difference']:.1e}" if "max_relative_difference" in r else "-",
            r["status"],
        )
    Console(width=160).print(table)
    if args.out:
        write_json(
            args.out,
            {
                "benchmark": "parallel",
                "study_flags": study_flags,
                "cores": available_cores(),
                "load_average_end": os.getloadavg(),
                "rows": rows,
                "provenance": provenance("cpu"),
            },
        )
        print(f"wrote {args.out}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
