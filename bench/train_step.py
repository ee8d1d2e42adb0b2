"""Training-step throughput: images/s, step time, memory and model FLOP utilisation (MFU).

Runs ``probe.training.train_step`` (the function ``probe train`` uses: autocast,
DenseDepth loss, backward, Adam step) on one fixed synthetic batch per model,
input size, batch size and step mode, on the current device; data loading is excluded.

Step modes (:class:`StepMode`):

- ``default``: what ``probe train`` does on this device (``TrainConfig().resolved``:
  bf16 autocast and channels_last on CUDA, fp32 on a CPU), plus ``--compile``,
  ``--activation-checkpointing``, ``--precisions``, ``--channels-last`` as given;
- ``eager_fp32`` (``--compare-eager-fp32``): the way the reference code trains: fp32,
  contiguous NCHW, no compile, no activation checkpointing, the published conv3d in the
  packing layers.  PyTorch's default TF32 setting for convolutions is kept (and recorded),
  so this is what running the reference code on this GPU gives today.  With it, every
  (model, size, batch) also gets a comparison: the speed-up of the default step and its
  memory against the eager one.

MFU = (training FLOPs per image x images/s) / device peak FLOP/s, with training
FLOPs per image = 3 x forward FLOPs (the backward pass costs about twice the
forward; recomputation under activation checkpointing is not model work and is
not counted).  Forward FLOPs come from ``analyses.complexity.count_torch_flops``
(``torch.utils.flop_counter``: convolutions and matmuls, the tensor-core work,
a multiply-add counting two) on the ``meta`` device; MACs are reported as half of it.
Peaks are dense (no sparsity) tensor-core figures from the vendors' data sheets
(:data:`PEAK_TFLOPS`); fp32 on Ampere and newer counts TF32 when cuDNN may use it.
On a CPU there is no peak to divide by, so MFU is left empty.

Memory: on CUDA the steady-state peak allocated (reset after the warm-up steps, so
cuDNN's algorithm search does not count) and reserved.  On every device the bytes
autograd saves for backward during one step (:func:`probe.models.recompute.saved_tensor_bytes`,
measured on the first warm-up step; not with ``--compile``), which is how activation
checkpointing is seen on a CPU.  Times are medians over ``--steps`` after ``--warmup``;
the clock is process CPU time on a CPU (robust to other processes) and synchronised wall
time on CUDA.

    python3 bench/train_step.py --device cuda --models packnet_a --input-size 480x640 --batch-sizes 16 \\
        --compare-eager-fp32 --out bench/results/train_step.json
    python3 bench/train_step.py --device cpu --width 0.125 --input-size 64x96 --steps 3 --warmup 1 \\
        --compare-eager-fp32 --activation-checkpointing
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402

from analyses.complexity import count_torch_flops  # noqa: E402
from probe.data import get_dataset  # noqa: E402
from probe.device import benchmark_clock, benchmark_clock_name, device_description, resolve_device  # noqa: E402
from probe.errors import one_line  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.losses import build_loss  # noqa: E402
from probe.memory import estimate_training_memory  # noqa: E402
from probe.models import MODELS, build_model, count_parameters  # noqa: E402
from probe.models.recompute import enable_activation_checkpointing, saved_tensor_bytes  # noqa: E402
from probe.options import (
    parse_model_options,  # noqa: E402
    parse_size,  # noqa: E402
)
from probe.runs import provenance  # noqa: E402
from probe.seeding import seed_everything  # noqa: E402
from probe.training.config import PRECISIONS, TrainConfig  # noqa: E402
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


@dataclass(frozen=True)
class StepMode:
    """How a step runs: precision, memory format, compile, activation checkpointing, packing-conv kernel."""

    name: str
    precision: str
    channels_last: bool
    compile: bool = False
    activation_checkpointing: bool = False
    depth_conv: str = "auto"


#: The reference code's way: plain eager fp32, NCHW, the published conv3d.
EAGER_FP32 = StepMode(
    "eager_fp32", "fp32", channels_last=False, compile=False, activation_checkpointing=False, depth_conv="conv3d"
)


def default_mode(
    device: torch.device,
    *,
    precision: str | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
    activation_checkpointing: bool = False,
    depth_conv: str = "auto",
) -> StepMode:
    """``probe train``'s step on ``device`` (its defaults come from ``TrainConfig.resolved``), with overrides."""
    resolved = TrainConfig(precision=precision, channels_last=channels_last).resolved(device)
    return StepMode(
        "default", str(resolved.precision), bool(resolved.channels_last), compile, activation_checkpointing, depth_conv
    )


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


@lru_cache(maxsize=None)
def forward_flops_per_image(
    model_name: str, options: tuple[tuple[str, Any], ...], width: float, size: tuple[int, int]
) -> int:
    """FLOPs of one image's forward pass, counted on the ``meta`` device (no memory, no time)."""
    with torch.device("meta"):
        module = build_model(model_name, width=width, **dict(options)).eval()
    return count_torch_flops(module, torch.empty(1, 3, *size, device="meta"))


def synthetic_batch(size: tuple[int, int], batch_size: int) -> dict[str, Any]:
    dataset = get_dataset("synthetic", input_size=size, length=batch_size)
    return default_collate([dataset[i] for i in range(batch_size)])


def _is_packnet(model_name: str) -> bool:
    return MODELS.entry(model_name).meta.get("family") == "packnet"


def model_options(model_name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The seed's half-resolution output for PackNet models (as ``probe experiment seed-study`` trains them)."""
    base = {"output_scale": "half"} if _is_packnet(model_name) else {}
    return {**base, **(extra or {})}


def step_options(model_name: str, options: dict[str, Any], mode: StepMode) -> dict[str, Any]:
    """The model options a row in ``mode`` builds with: PackNet's packing conv follows the mode."""
    return {**options, "depth_conv": mode.depth_conv} if _is_packnet(model_name) else dict(options)


def measure(
    model_name: str,
    options: dict[str, Any],
    width: float,
    size: tuple[int, int],
    batch_size: int,
    mode: StepMode,
    device: torch.device,
    steps: int,
    warmup: int,
) -> dict[str, Any]:
    """One row: time ``steps`` training steps after ``warmup`` (>= 1) in ``mode``; errors become the row's status."""
    if steps < 1 or warmup < 1:
        raise ValueError("measure: needs steps >= 1 and warmup >= 1 (the first warm-up step measures saved bytes)")
    options = step_options(model_name, options, mode)
    row: dict[str, Any] = {
        "model": model_name,
        "options": options,
        "width": width,
        "input_size": list(size),
        "batch_size": batch_size,
        "mode": mode.name,
        **{f"mode_{k}": v for k, v in asdict(mode).items() if k != "name"},
        "device_type": device.type,
        "status": "ok",
    }
    try:
        flops = forward_flops_per_image(model_name, tuple(sorted(options.items())), width, size)
        row.update({"forward_flops_per_image": flops, "macs_per_image": flops // 2})
        row.update(_timed_steps(model_name, options, width, size, batch_size, mode, device, steps, warmup))
    except torch.OutOfMemoryError:
        row["status"] = "out of memory"
    except Exception as exc:  # one failing configuration must not lose the others' results
        row["status"] = f"error: {type(exc).__name__}: {one_line(exc)}"
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if row["status"] == "ok":
        row.update(_derived(row, device, mode))
        row.update(memory_check(row, mode, device))
    return row


def memory_check(row: dict[str, Any], mode: StepMode, device: torch.device) -> dict[str, Any]:
    """What ``probe complexity`` predicts for a measured row (probe.memory) set against what the row measured.

    ``activation_over_estimate``: saved activations measured / estimated, on every device.  The estimate
    counts the model's saved tensors on the meta device; the row's step also saves the loss's (SSIM,
    gradients of the depth), so the ratio is above 1 by the loss's share (1.03 to 1.29 at width 1/16,
    64x96, batch 2 on a CPU).  ``peak_over_estimate`` (CUDA): peak allocated / estimated total, the
    check of the estimate against a GPU (the estimate leaves out the backward's transient buffers).
    """
    estimate = estimate_training_memory(
        row["model"],
        input_size=tuple(row["input_size"]),
        batch_size=row["batch_size"],
        width=row["width"],
        model_options=row["options"],
        precision=mode.precision,
        activation_checkpointing=mode.activation_checkpointing,
        device=device,
    )
    total_mib, activation_mib = estimate.total_bytes / 2**20, estimate.activation_bytes / 2**20
    saved, peak = row.get("saved_activation_mib"), row.get("peak_memory_mib")
    return {
        "estimated_memory_mib": total_mib,
        "estimated_activation_mib": activation_mib,
        "activation_over_estimate": saved / activation_mib if saved is not None and activation_mib else None,
        "peak_over_estimate": peak / total_mib if peak is not None else None,
    }


def _timed_steps(
    model_name: str,
    options: dict[str, Any],
    width: float,
    size: tuple[int, int],
    batch_size: int,
    mode: StepMode,
    device: torch.device,
    steps: int,
    warmup: int,
) -> dict[str, Any]:
    seed_everything(0)
    module = build_model(model_name, width=width, **options).to(device)
    params = count_parameters(module)
    if mode.activation_checkpointing:
        enable_activation_checkpointing(module)
    if mode.channels_last:
        to_channels_last(module)
    module.train()
    model = torch.compile(module) if mode.compile else module
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    loss_fn = partial(build_loss("densedepth"), output_space=module.output_space, max_depth=10.0)
    setup = StepSetup(
        module=module,
        device=device,
        autocast_dtype=PRECISIONS[mode.precision],
        scaler=torch.amp.GradScaler(device.type) if mode.precision == "fp16" else None,
        channels_last=mode.channels_last,
    )
    batch = synthetic_batch(size, batch_size)
    clock = benchmark_clock(device)

    def step(i: int) -> float:
        start = clock()
        train_step(model, batch, loss_fn, optimizer, setup, step=i + 1, epoch=0)  # synchronises at its end
        return clock() - start

    saved: list[int] = []
    if mode.compile:  # saved-tensor hooks and dynamo do not mix; CUDA memory is measured directly
        step(0)
    else:
        saved.append(saved_tensor_bytes(lambda: step(0), module))
    for i in range(1, warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = [step(warmup + i) for i in range(steps)]
    return {
        "params": params,
        "step_ms": 1e3 * statistics.median(seconds),
        "step_ms_min": 1e3 * min(seconds),
        "saved_activation_mib": saved[0] / 2**20 if saved else None,
        "peak_memory_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20 if device.type == "cuda" else None,
        "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tf32_convolutions": bool(torch.backends.cudnn.allow_tf32) if device.type == "cuda" else None,
    }


def _derived(row: dict[str, Any], device: torch.device, mode: StepMode) -> dict[str, Any]:
    images_per_s = row["batch_size"] / (row["step_ms"] / 1e3)
    train_flops = 3.0 * row["forward_flops_per_image"] * images_per_s
    peak, peak_key = peak_flops(device, mode.precision)
    return {
        "images_per_s": images_per_s,
        "achieved_tflops": train_flops / 1e12,
        "peak_tflops": peak / 1e12 if peak else None,
        "peak_key": peak_key,
        "mfu": train_flops / peak if peak else None,
    }


def compare(rows: list[dict[str, Any]], baseline: str = EAGER_FP32.name) -> list[dict[str, Any]]:
    """Per (model, size, batch, activation checkpointing): every other mode against ``baseline``.

    ``speedup`` = baseline step time / mode step time; ``memory_ratio`` = mode / baseline
    (peak allocated on CUDA, saved activation bytes elsewhere).
    """

    def key(r: dict[str, Any]) -> tuple:
        return r["model"], tuple(r["input_size"]), r["batch_size"]

    base = {key(r): r for r in rows if r["mode"] == baseline}
    out = []
    for r in rows:
        b = base.get(key(r))
        if r["mode"] == baseline or b is None:
            continue
        ok = r["status"] == "ok" and b["status"] == "ok"
        memory_key = "peak_memory_mib" if r.get("peak_memory_mib") is not None else "saved_activation_mib"
        mem, base_mem = r.get(memory_key), b.get(memory_key)
        out.append(
            {
                "model": r["model"],
                "input_size": r["input_size"],
                "batch_size": r["batch_size"],
                "mode": r["mode"],
                "activation_checkpointing": r["mode_activation_checkpointing"],
                "baseline": baseline,
                "mode_status": r["status"],
                "baseline_status": b["status"],
                "speedup": b["step_ms"] / r["step_ms"] if ok else None,
                "memory": memory_key,
                "memory_ratio": mem / base_mem if ok and mem and base_mem else None,
            }
        )
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_rows(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in (
        "model",
        "size",
        "batch",
        "mode",
        "prec",
        "CL",
        "AC",
        "GMACs/img",
        "step ms",
        "images/s",
        "TFLOP/s",
        "MFU",
        "peak MiB",
        "saved MiB",
        "status",
    ):
        table.add_column(
            column, justify="left" if column in ("model", "mode", "prec", "status") else "right", no_wrap=True
        )
    for r in rows:
        table.add_row(
            r["model"],
            "x".join(map(str, r["input_size"])),
            str(r["batch_size"]),
            r["mode"],
            r["mode_precision"],
            "y" if r["mode_channels_last"] else "n",
            "y" if r["mode_activation_checkpointing"] else "n",
            _fmt(r.get("macs_per_image", 0) / 1e9, ".2f"),
            _fmt(r.get("step_ms"), ".1f"),
            _fmt(r.get("images_per_s"), ".2f"),
            _fmt(r.get("achieved_tflops"), ".2f"),
            _fmt(r.get("mfu"), ".1%"),
            _fmt(r.get("peak_memory_mib"), ",.0f"),
            _fmt(r.get("saved_activation_mib"), ",.1f"),
            r["status"],
        )
    Console(width=max(160, Console().width)).print(table)


def print_comparisons(comparisons: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("model", "size", "batch", "mode", "AC", "speed-up", "memory ratio", "memory measure"):
        table.add_column(column, justify="left" if column in ("model", "mode", "memory measure") else "right")
    for c in comparisons:
        table.add_row(
            c["model"],
            "x".join(map(str, c["input_size"])),
            str(c["batch_size"]),
            c["mode"],
            "y" if c["activation_checkpointing"] else "n",
            _fmt(c["speedup"], ".2f"),
            _fmt(c["memory_ratio"], ".2f"),
            c["memory"],
        )
    Console(width=max(120, Console().width)).print(table)


def modes_from_args(args: argparse.Namespace, device: torch.device) -> list[StepMode]:
    precisions = args.precisions.split(",") if args.precisions else [None]
    modes = [
        default_mode(
            device,
            precision=p,
            channels_last=args.channels_last,
            compile=args.compile,
            activation_checkpointing=args.activation_checkpointing,
            depth_conv=args.depth_conv,
        )
        for p in precisions
    ]
    if len(modes) > 1:
        modes = [replace(m, name=f"default_{m.precision}") for m in modes]
    return modes + ([EAGER_FP32] if args.compare_eager_fp32 else [])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="densedepth,packnet_slim_b,packnet_b")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--input-size", default="240x320", help="HxW, or several: 240x320,480x640")
    parser.add_argument("--batch-sizes", default="4")
    parser.add_argument(
        "--precisions", default=None, help="comma list; default: probe train's (bf16 on CUDA, fp32 on CPU)"
    )
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
    parser.add_argument(
        "--activation-checkpointing",
        action="store_true",
        help="the default step recomputes the models' stages in backward",
    )
    parser.add_argument(
        "--depth-conv",
        choices=("auto", "conv3d", "conv2d"),
        default="auto",
        help="packing-layer 3-D convolution kernel of the default step",
    )
    parser.add_argument(
        "--compare-eager-fp32",
        action="store_true",
        help="also run the reference code's plain eager fp32 step and report the speed-up",
    )
    parser.add_argument("--out", default="bench_train_step.json")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    sizes = [parse_size(s) for s in args.input_size.split(",")]
    modes = modes_from_args(args, device)
    extra = parse_model_options(args.model_option)
    rows = [
        measure(name, model_options(name, extra), args.width, size, batch_size, mode, device, args.steps, args.warmup)
        for name in args.models.split(",")
        for size in sizes
        for batch_size in (int(b) for b in args.batch_sizes.split(","))
        for mode in modes
    ]
    title = f"train_step on {device_description(device)}, width {args.width:g}"
    print_rows(rows, title)
    comparisons = compare(rows)
    if comparisons:
        print_comparisons(comparisons, f"default step against {EAGER_FP32.name}")
    write_json(
        args.out,
        {
            "benchmark": "train_step",
            "device": device_description(device),
            "provenance": provenance(device),
            "clock": benchmark_clock_name(device),
            "rows": rows,
            "comparisons": comparisons,
        },
    )
    print(f"wrote {args.out}")
    failed = [r for r in rows if r["status"].startswith("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
