"""Parameters, MACs and latency of every registered model at 192x640 on this machine's device.

Runs :func:`analyses.complexity.run` over the whole zoo (or ``--model`` names),
prints the table plus the wall time each model's measurement took, and writes the
full JSON (per-block costs included).  This is where latency numbers live; the
tests only check that latency is measured, never how fast.

    python3 bench/complexity.py --device cpu --repeats 1 --warmup 0 --out bench_complexity_cpu.json
    python3 bench/complexity.py --device cuda --out bench_complexity_cuda.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from analyses.complexity import ComplexityConfig, run  # noqa: E402
from probe.errors import ProbeError  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.models import list_models  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.runs import provenance  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model name (repeat; default: every registered model)")
    parser.add_argument("--input-size", default="192x640", help="HxW (default 192x640)")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (default 1.0)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 3 on CPU, 20 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up runs (default 1 on CPU, 5 on CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path("bench_complexity.json"), help="JSON file to write")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    config = ComplexityConfig(
        models=args.model or list_models(),
        input_size=parse_size(args.input_size),
        width=args.width,
        batch_size=args.batch_size,
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
    )
    started = time.perf_counter()
    result = run(config)
    total_s = time.perf_counter() - started

    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(result.table())
    timing = Table(title="measurement wall time per model (tracing, counting, timing)")
    timing.add_column("model")
    timing.add_column("seconds", justify="right")
    for m in result.models:
        timing.add_row(m.name, f"{m.measure_seconds:.1f}")
    timing.add_row("total", f"{total_s:.1f}")
    console.print(timing)

    doc = {
        "benchmark": "complexity",
        "total_seconds": total_s,
        "torch_threads": torch.get_num_threads(),
        "provenance": provenance(result.device),
        **result.to_json(),
    }
    write_json(args.out, doc)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    try:
        main()
    except ProbeError as exc:
        print(f"bench/complexity.py: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
