"""Throughput of the built-in synthetic datasets on one CPU core.

Measures ``dataset[i]`` end to end (scene generation, RGB and depth ray casting,
the base pipeline) at 240x320 with one torch/NumPy thread, plus a per-stage
breakdown, and prints a table.  Images/s are computed from process CPU time
(what one core delivers, robust to other processes sharing the machine) and
from wall time; the best of ``--repeats`` passes is reported with the median.

    python3 bench/data_synthetic.py --out bench_data_synthetic.json
    python3 bench/data_synthetic.py --default-allocator     # glibc defaults, for comparison

Target: >= 200 images/s at 240x320 on one core.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from probe.data import (
    get_dataset,  # noqa: E402
    synthetic,  # noqa: E402
)
from probe.io import write_json  # noqa: E402
from probe.options import parse_size  # noqa: E402

TARGET_IMAGES_PER_S = 200.0


def measure_passes(
    name: str, size: tuple[int, int], items: int, repeats: int, options: dict | None = None
) -> dict[str, list[float]]:
    """CPU and wall seconds of ``repeats`` passes over ``items`` items (after a short warm-up).

    ``options``: the dataset's reader options."""
    dataset = get_dataset(name, input_size=size, length=items, **(options or {}))
    for i in range(min(5, items)):
        dataset[i]
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for i in range(items):
            dataset[i]
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {"cpu_s": cpu, "wall_s": wall}


def measure_stages(name: str, size: tuple[int, int], items: int) -> dict[str, float]:
    """Mean CPU milliseconds per item of each stage."""
    dataset = get_dataset(name, input_size=size, length=items)
    totals = {"scene": 0.0, "image": 0.0, "depth": 0.0, "pipeline": 0.0}
    for i in range(items):
        c0 = time.process_time()
        scene = dataset.scene(i)
        c1 = time.process_time()
        image = synthetic.render_image(scene, dataset.input_size)
        c2 = time.process_time()
        depth = synthetic.render_depth(scene, dataset.depth_size, dataset.input_size)
        c3 = time.process_time()
        dataset._finish(synthetic.RawSample(image, depth, dataset.item_name(i)), i, skipped="")
        c4 = time.process_time()
        for key, seconds in zip(totals, (c1 - c0, c2 - c1, c3 - c2, c4 - c3)):
            totals[key] += seconds
    return {key: 1e3 * value / items for key, value in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="synthetic,synthetic_outdoor", help="comma-separated names")
    parser.add_argument("--size", default="240x320", help="input HxW")
    parser.add_argument("--items", type=int, default=200, help="items per pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (best and median reported)")
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's malloc thresholds alone (see synthetic.retain_freed_memory)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    if args.default_allocator:
        synthetic.retain_freed_memory = lambda: False  # type: ignore[assignment]
        allocator = "glibc defaults"
    else:
        allocator = "retained" if synthetic.retain_freed_memory() else "glibc defaults (mallopt unavailable)"
    size = parse_size(args.size, flag="--size")
    load_before = os.getloadavg()
    results = []
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        passes = measure_passes(name, size, args.items, args.repeats)
        stages = measure_stages(name, size, min(args.items, 100))
        cpu_rates = [args.items / s for s in passes["cpu_s"]]
        wall_rates = [args.items / s for s in passes["wall_s"]]
        results.append(
            {
                "dataset": name,
                "items": args.items,
                "repeats": args.repeats,
                "images_per_s_cpu_best": max(cpu_rates),
                "images_per_s_cpu_median": statistics.median(cpu_rates),
                "images_per_s_wall_best": max(wall_rates),
                "images_per_s_wall_median": statistics.median(wall_rates),
                "stage_ms": stages,
                "meets_target": max(cpu_rates) >= TARGET_IMAGES_PER_S,
            }
        )

    table = Table(title=f"synthetic data at {size[0]}x{size[1]}, 1 thread, allocator: {allocator}")
    for column in (
        "dataset",
        "img/s CPU best",
        "img/s CPU median",
        "img/s wall best",
        "scene ms",
        "image ms",
        "depth ms",
        "pipeline ms",
        f">= {TARGET_IMAGES_PER_S:g}/s",
    ):
        table.add_column(column, justify="right" if column != "dataset" else "left")
    for r in results:
        s = r["stage_ms"]
        table.add_row(
            r["dataset"],
            f"{r['images_per_s_cpu_best']:.0f}",
            f"{r['images_per_s_cpu_median']:.0f}",
            f"{r['images_per_s_wall_best']:.0f}",
            f"{s['scene']:.2f}",
            f"{s['image']:.2f}",
            f"{s['depth']:.2f}",
            f"{s['pipeline']:.2f}",
            "yes" if r["meets_target"] else "NO",
        )
    Console(width=120).print(table)
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} CPUs")
    if args.out is not None:
        write_json(
            args.out,
            {
                "benchmark": "data_synthetic",
                "input_size": list(size),
                "threads": 1,
                "allocator": allocator,
                "target_images_per_s": TARGET_IMAGES_PER_S,
                "results": results,
                "machine": {
                    "platform": platform.platform(),
                    "processor": platform.processor(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "numpy": synthetic.np.__version__,
                    "torch": torch.__version__,
                    "load_average_before": load_before[0],
                    "load_average_after": load_after[0],
                },
            },
        )
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
