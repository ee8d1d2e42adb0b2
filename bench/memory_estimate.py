"""Estimated training memory at the full scale, on any machine: which batch sizes can fit a GPU of a given size?

For every model, input size, batch size, precision and activation-checkpointing setting,
:func:`probe.memory.estimate_training_memory` (the estimate ``probe complexity`` shows)
builds the model on PyTorch's ``meta`` device and counts what one Adam step keeps: weights,
gradients, Adam's two states, the activations autograd saves, the input.  Nothing is
allocated, so a CPU-only machine answers the question in seconds.  The estimate leaves
out the backward pass's transient buffers and the loss: it is a lower bound, and
``fits`` means only that the configuration is not ruled out (``bench/train_step.py``
measures the peak on a GPU and reports ``peak_over_estimate``).

    python3 bench/memory_estimate.py --out bench/results/memory_estimate.json
    python3 bench/memory_estimate.py --models packnet_a --input-size 480x640 --batch-sizes 8,16,32 --budget-gib 80
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from probe.io import write_json  # noqa: E402
from probe.memory import GIB, estimate_training_memory  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.runs import provenance  # noqa: E402


def estimate_rows(
    models: list[str],
    size: tuple[int, int],
    batches: list[int],
    precisions: list[str],
    budget_gib: float,
    device_type: str,
) -> list[dict[str, Any]]:
    """One row per (model, batch, precision, checkpointing): the estimate's parts in GiB and the budget test."""
    rows = []
    for model in models:
        for precision in precisions:
            for checkpointing in (False, True):
                for batch in batches:
                    e = estimate_training_memory(
                        model,
                        input_size=size,
                        batch_size=batch,
                        precision=precision,
                        activation_checkpointing=checkpointing,
                        device=device_type,
                    )
                    rows.append(
                        {
                            "model": model,
                            "input_size": list(size),
                            "batch_size": batch,
                            "precision": precision,
                            "activation_checkpointing": checkpointing,
                            "parameters": e.parameters,
                            "state_gib": e.state_bytes / GIB,
                            "activation_gib": e.activation_bytes / GIB,
                            "input_gib": e.input_bytes / GIB,
                            "total_gib": e.total_bytes / GIB,
                            "budget_gib": budget_gib,
                            "fits": e.total_bytes / GIB <= budget_gib,
                        }
                    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="packnet_a,packnet_slim_b,densedepth")
    parser.add_argument("--input-size", default="480x640")
    parser.add_argument("--batch-sizes", default="8,16")
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--budget-gib", type=float, default=15.5, help="GPU memory to fit (a 16 GB card: 15.5 GiB)")
    parser.add_argument(
        "--device-type", default="cuda", help="the kernels of this device type (PackNet's packing conv)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    size = parse_size(args.input_size)
    rows = estimate_rows(
        [m.strip() for m in args.models.split(",")],
        size,
        [int(b) for b in args.batch_sizes.split(",")],
        [p.strip() for p in args.precisions.split(",")],
        args.budget_gib,
        args.device_type,
    )
    table = Table(
        title=f"estimated training memory (GiB, lower bound) at {args.input_size}, Adam, "
        f"{args.device_type} kernels; budget {args.budget_gib:g} GiB"
    )
    for column in ("model", "precision", "AC", "batch", "weights+grads+Adam", "activations", "total", "fits"):
        table.add_column(column, justify="left" if column in ("model", "precision") else "right")
    for r in rows:
        table.add_row(
            r["model"],
            r["precision"],
            "y" if r["activation_checkpointing"] else "n",
            str(r["batch_size"]),
            f"{r['state_gib']:.2f}",
            f"{r['activation_gib']:.2f}",
            f"{r['total_gib']:.2f}",
            "not ruled out" if r["fits"] else "no",
        )
    Console(width=150).print(table)
    if args.out:
        write_json(args.out, {"benchmark": "memory_estimate", "rows": rows, "provenance": provenance("cpu")})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
