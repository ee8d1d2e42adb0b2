"""PackNet's packing-layer 3-D convolution: the published conv3d against the equivalent conv2d.

For every :class:`probe.models.depth_conv.DepthConv3d` of a model at a given input
size (its input shapes come from one forward on the ``meta`` device), times
forward + backward of both forms (``probe.models.depth_conv.DEPTH_CONVS``) on the
same random input and weights, and checks that they agree.  The two forms are
timed alternately, repeat after repeat, so that drifting machine load hits both
alike; the median is reported.  The clock is the process CPU time on a CPU (every
thread of this process, none of another's: comparable on a shared machine) and
synchronised wall time on CUDA.  The per-device default (``DEFAULT_IMPL``) should be
the form with the smaller total over a model's layers.

    python3 bench/depth_conv.py --device cpu --models packnet_a --input-size 240x320 --repeats 5
    python3 bench/depth_conv.py --device cuda --models packnet_a,packnet_slim_b --input-size 480x640 \\
        --batch-size 8 --precision bf16 --out bench/results/depth_conv-cuda.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from probe.device import benchmark_clock, benchmark_clock_name, device_description, resolve_device, synchronize  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.models import build_model  # noqa: E402
from probe.models.depth_conv import DEFAULT_IMPL, DEPTH_CONVS, DepthConv3d  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.runs import provenance  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def layer_shapes(
    model_name: str, size: tuple[int, int], batch_size: int, width: float, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Name, input shape ``[B,D,H,W]`` and weight shape of every DepthConv3d, from a meta-device forward."""
    with torch.device("meta"):
        model = build_model(model_name, width=width, **options).eval()
    shapes: list[dict[str, Any]] = []
    for name, module in model.named_modules():
        if isinstance(module, DepthConv3d):
            module.register_forward_pre_hook(
                lambda m, args, name=name: shapes.append(
                    {"layer": name, "input": list(args[0].shape), "weight": list(m.weight.shape)}
                )
            )
    with torch.no_grad():
        model(torch.empty(batch_size, 3, *size, device="meta"))
    return shapes


def time_layer(
    shape: dict[str, Any], device: torch.device, dtype: torch.dtype, repeats: int, warmup: int
) -> dict[str, Any]:
    """Median forward+backward milliseconds of each form on one layer shape, and their largest difference."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape["input"], generator=generator).to(device, dtype).requires_grad_()
    weight = torch.randn(shape["weight"], generator=generator).to(device, dtype).requires_grad_()
    bias = torch.randn(shape["weight"][0], generator=generator).to(device, dtype).requires_grad_()
    outputs = {name: fn(x, weight, bias).detach() for name, fn in DEPTH_CONVS.items()}
    reference = outputs["conv3d"].float()
    max_abs = max(float((out.float() - reference).abs().max()) for out in outputs.values())
    seconds: dict[str, list[float]] = {name: [] for name in DEPTH_CONVS}
    clock = benchmark_clock(device)
    for i in range(warmup + repeats):
        for name, fn in DEPTH_CONVS.items():
            x.grad = weight.grad = bias.grad = None
            synchronize(device)
            start = clock()
            out = fn(x, weight, bias)
            out.backward(torch.ones_like(out))
            synchronize(device)
            if i >= warmup:
                seconds[name].append(clock() - start)
    ms = {name: 1e3 * statistics.median(values) for name, values in seconds.items()}
    return {
        **shape,
        "ms": ms,
        "max_abs_difference": max_abs,
        "reference_max_abs": float(reference.abs().max()),
        "faster": min(ms, key=ms.__getitem__),
    }


def summarise(model_name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    totals = {name: sum(r["ms"][name] for r in rows) for name in DEPTH_CONVS}
    return {
        "model": model_name,
        "total_ms": totals,
        "faster": min(totals, key=totals.__getitem__),
        "speedup_conv2d_over_conv3d": totals["conv3d"] / totals["conv2d"],
    }


def print_table(results: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("model", "layer", "input [B,D,H,W]", "conv3d ms", "conv2d ms", "conv3d/conv2d", "max |diff|"):
        table.add_column(column, justify="left" if column in ("model", "layer") else "right", no_wrap=True)
    for result in results:
        for r in result["layers"]:
            table.add_row(
                result["model"],
                r["layer"],
                "x".join(map(str, r["input"])),
                f"{r['ms']['conv3d']:.2f}",
                f"{r['ms']['conv2d']:.2f}",
                f"{r['ms']['conv3d'] / r['ms']['conv2d']:.2f}",
                f"{r['max_abs_difference']:.2g}",
            )
        s = result["summary"]
        table.add_row(
            result["model"],
            "total",
            "",
            f"{s['total_ms']['conv3d']:.2f}",
            f"{s['total_ms']['conv2d']:.2f}",
            f"{s['speedup_conv2d_over_conv3d']:.2f}",
            "",
            end_section=True,
        )
    Console(width=max(120, Console().width)).print(table)


def run(
    models: list[str],
    size: tuple[int, int],
    batch_size: int,
    width: float,
    device: torch.device,
    precision: str,
    repeats: int,
    warmup: int,
) -> list[dict[str, Any]]:
    results = []
    for name in models:
        options = {"output_scale": "half"}  # the seed's setting; the last decoder stage is not built
        rows = [
            time_layer(shape, device, DTYPES[precision], repeats, warmup)
            for shape in layer_shapes(name, size, batch_size, width, options)
        ]
        results.append({"model": name, "options": options, "layers": rows, "summary": summarise(name, rows)})
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="packnet_a,packnet_slim_b")
    parser.add_argument("--input-size", default="240x320")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", default="bench_depth_conv.json")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    size = parse_size(args.input_size)
    results = run(
        args.models.split(","), size, args.batch_size, args.width, device, args.precision, args.repeats, args.warmup
    )
    title = (
        f"depth conv forward+backward on {device_description(device)}, {args.precision}, input {size[0]}x{size[1]}, "
        f"batch {args.batch_size}, width {args.width:g} (default here: {DEFAULT_IMPL.get(device.type, 'conv3d')})"
    )
    print_table(results, title)
    report = {
        "benchmark": "depth_conv",
        "device": device_description(device),
        "device_type": device.type,
        "clock": benchmark_clock_name(device),
        "precision": args.precision,
        "input_size": list(size),
        "batch_size": args.batch_size,
        "width": args.width,
        "repeats": args.repeats,
        "default_impl": DEFAULT_IMPL.get(device.type, "conv3d"),
        "provenance": provenance(device),
        "models": results,
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
