"""Training-step throughput: images/s, step time, peak memory and model FLOP utilisation (MFU).

Runs ``probe.training.train_step`` (the function ``probe train`` uses: autocast,
DenseDepth loss, backward, Adam step) on one fixed synthetic batch per model,
batch size and precision, on the current device; data loading is excluded.

MFU = (training FLOPs per image x images/s) / device peak FLOP/s, with training
FLOPs per image = 3 x forward FLOPs (the backward pass costs about twice the
forward).  Forward FLOPs come from ``analyses.complexity.count_torch_flops``
(``torch.utils.flop_counter``: convolutions and matmuls, the tensor-core work,
a multiply-add counting two); MACs are reported as half of it.  Peaks are dense (no sparsity)
tensor-core figures from the vendors' data sheets (:data:`PEAK_TFLOPS`); fp32
on Ampere and newer counts TF32 when cuDNN may use it (PyTorch's default for
convolutions).  On a CPU there is no peak to divide by, so MFU is left empty.

    python3 bench/train_step.py --device cuda --batch-sizes 4,8 --precisions bf16,fp32
    python3 bench/train_step.py --device cpu --width 0.25 --input-size 120x160 --steps 5 --warmup 2
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402

from analyses.complexity import count_torch_flops  # noqa: E402
from probe.data import get_dataset  # noqa: E402
from probe.device import device_description, resolve_device  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.losses import build_loss  # noqa: E402
from probe.models import build_model, count_parameters  # noqa: E402
from probe.options import (
    parse_model_options,  # noqa: E402
    parse_size,  # noqa: E402
)
from probe.runs import provenance  # noqa: E402
from probe.seeding import seed_everything  # noqa: E402
from probe.training.config import PRECISIONS  # noqa: E402
from probe.training.loop import StepSetup, to_channels_last, train_step  # noqa: E402

# Dense peak TFLOP/s by GPU name fragment (first match wins; more specific names first).
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("V100", {"fp16": 125.0, "fp32": 15.7}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
]


def peak_flops(device: torch.device, precision: str) -> tuple[float | None, str]:
    """Peak FLOP/s for ``precision`` on ``device`` and the table key used (None if unknown)."""
    if device.type != "cuda":
        return None, "cpu: no peak"
    name = torch.cuda.get_device_name(device)
    for fragment, peaks in PEAK_TFLOPS:
        if fragment in name:
            key = precision
            if precision == "fp32" and "tf32" in peaks and torch.backends.cudnn.allow_tf32:
                key = "tf32"
            return (peaks[key] * 1e12, f"{fragment} {key}") if key in peaks else (None, f"{fragment}: no {key} peak")
    return None, f"{name}: not in PEAK_TFLOPS"


def synthetic_batch(size: tuple[int, int], batch_size: int) -> dict[str, Any]:
    dataset = get_dataset("synthetic", input_size=size, length=batch_size)
    return default_collate([dataset[i] for i in range(batch_size)])


def measure(
    model_name: str,
    options: dict[str, Any],
    width: float,
    size: tuple[int, int],
    batch_size: int,
    precision: str,
    device: torch.device,
    steps: int,
    warmup: int,
    channels_last: bool,
    compile_model: bool,
) -> dict[str, Any]:
    seed_everything(0)
    module = build_model(model_name, width=width, **options).to(device)
    if channels_last:
        to_channels_last(module)
    row: dict[str, Any] = {
        "model": model_name,
        "options": options,
        "width": width,
        "input_size": list(size),
        "batch_size": batch_size,
        "precision": precision,
        "params": count_parameters(module),
        "channels_last": channels_last,
        "compile": compile_model,
    }
    row["forward_flops_per_image"] = count_torch_flops(module.eval(), torch.rand(1, 3, *size, device=device))
    row["macs_per_image"] = row["forward_flops_per_image"] // 2
    module.train()
    model = torch.compile(module) if compile_model else module
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    loss = build_loss("densedepth")
    loss_fn = partial(loss, output_space=module.output_space, max_depth=10.0)
    setup = StepSetup(
        module=module,
        device=device,
        autocast_dtype=PRECISIONS[precision],
        scaler=torch.amp.GradScaler(device.type) if precision == "fp16" else None,
        channels_last=channels_last,
    )
    batch = synthetic_batch(size, batch_size)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        seconds = [
            train_step(model, batch, loss_fn, optimizer, setup, step=i + 1, epoch=0).seconds
            for i in range(warmup + steps)
        ][warmup:]
    except torch.OutOfMemoryError:
        return {**row, "status": "out of memory"}
    step_s = statistics.median(seconds)
    images_per_s = batch_size / step_s
    peak, peak_key = peak_flops(device, precision)
    train_flops = 3.0 * row["forward_flops_per_image"] * images_per_s
    row.update(
        {
            "status": "ok",
            "step_ms": 1e3 * step_s,
            "step_ms_min": 1e3 * min(seconds),
            "images_per_s": images_per_s,
            "achieved_tflops": train_flops / 1e12,
            "peak_tflops": peak / 1e12 if peak else None,
            "peak_key": peak_key,
            "mfu": train_flops / peak if peak else None,
            "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )
    return row


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    def fmt(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    table = Table(title=title)
    for column in (
        "model",
        "batch",
        "precision",
        "params (M)",
        "GMACs/img",
        "step ms",
        "images/s",
        "TFLOP/s",
        "MFU",
        "peak MiB",
        "status",
    ):
        table.add_column(column, justify="left" if column in ("model", "status") else "right", no_wrap=True)
    for r in rows:
        table.add_row(
            r["model"],
            str(r["batch_size"]),
            r["precision"],
            fmt(r["params"] / 1e6, ".1f"),
            fmt(r["macs_per_image"] / 1e9, ".2f"),
            fmt(r.get("step_ms"), ".1f"),
            fmt(r.get("images_per_s"), ".1f"),
            fmt(r.get("achieved_tflops"), ".2f"),
            fmt(r.get("mfu"), ".1%"),
            fmt(r.get("peak_memory_mib"), ",.0f"),
            r["status"],
        )
    Console(width=max(140, Console().width)).print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="densedepth,packnet_slim_b,packnet_b")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--input-size", default="240x320")
    parser.add_argument("--batch-sizes", default="4")
    parser.add_argument("--precisions", default=None, help="comma list; default bf16 on CUDA, fp32 on CPU")
    parser.add_argument(
        "--model-option",
        action="append",
        default=[],
        help="KEY=VALUE for PackNet models (default output_scale=half, as in the seed)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", default="bench_train_step.json")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    size = parse_size(args.input_size)
    precisions = (args.precisions or ("bf16" if device.type == "cuda" else "fp32")).split(",")
    channels_last = device.type == "cuda" if args.channels_last is None else args.channels_last
    packnet_options = {"output_scale": "half", **parse_model_options(args.model_option)}
    rows = []
    for name in args.models.split(","):
        options = packnet_options if name.startswith("packnet") else {}
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            for precision in precisions:
                rows.append(
                    measure(
                        name,
                        options,
                        args.width,
                        size,
                        batch_size,
                        precision,
                        device,
                        args.steps,
                        args.warmup,
                        channels_last,
                        args.compile,
                    )
                )
    title = f"train_step on {device_description(device)}, input {size[0]}x{size[1]}, width {args.width:g}"
    print_table(rows, title)
    write_json(
        args.out,
        {
            "benchmark": "train_step",
            "device": device_description(device),
            "provenance": provenance(device),
            "rows": rows,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
