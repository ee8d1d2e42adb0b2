"""Throughput of the synthetic video datasets on one CPU core: windows of three frames per second.

Measures ``dataset[i]`` end to end (scene and trajectory generation, three
frames ray cast and shaded with exact depth, the window pipeline) at 240x320
with one torch/NumPy thread, plus a per-stage breakdown, and prints a table.
Windows/s are computed from process CPU time (what one core delivers; other
processes on the machine still slow it through shared caches and frequency,
so the load average is printed with the result) and from wall time; the best
of ``--repeats`` passes is reported with the median.

    python3 bench/data_video.py --out bench_data_video.json
    python3 bench/data_video.py --moving-objects 3 --items 100

Target: >= 100 windows/s of three 240x320 frames on one core.
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

from bench.data_synthetic import measure_passes  # noqa: E402  (one way to time passes over a dataset)
from probe.data import (
    get_dataset,  # noqa: E402
    synthetic,  # noqa: E402
)
from probe.io import write_json  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.runs import provenance  # noqa: E402
from probe.schema import encode  # noqa: E402

TARGET_WINDOWS_PER_S = 100.0


def measure_stages(name: str, size: tuple[int, int], items: int, options: dict) -> dict[str, float]:
    """Mean CPU milliseconds per window of: scene + trajectory, casting, shading, and the rest (pipeline)."""
    dataset = get_dataset(name, input_size=size, length=items, **options)
    offsets = (0, *dataset.context_offsets)
    totals = {"scene": 0.0, "cast": 0.0, "shade": 0.0, "pipeline": 0.0}
    for i in range(items):
        c0 = time.process_time()
        scene = dataset.scene(i)
        stills = [scene.at(dataset.frame_time(i, o)) for o in offsets]
        c1 = time.process_time()
        hits = [synthetic.cast(s, size, size) for s in stills]
        c2 = time.process_time()
        for s, h in zip(stills, hits):
            synthetic.shade(s, h, size)
        c3 = time.process_time()
        dataset[i]
        c4 = time.process_time()
        totals["scene"] += c1 - c0
        totals["cast"] += c2 - c1
        totals["shade"] += c3 - c2
        totals["pipeline"] += (c4 - c3) - (c3 - c0)  # the whole item minus the rendering measured above
    return {key: 1e3 * value / items for key, value in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="synthetic_video,synthetic_video_outdoor", help="comma-separated names")
    parser.add_argument("--size", default="240x320", help="input HxW")
    parser.add_argument("--items", type=int, default=200, help="windows per pass")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (best and median reported)")
    parser.add_argument("--moving-objects", type=int, default=0, help="moving objects per scene")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    synthetic.retain_freed_memory()
    size = parse_size(args.size, flag="--size")
    options = {"moving_objects": args.moving_objects}
    load_before = os.getloadavg()
    results = []
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        passes = measure_passes(name, size, args.items, args.repeats, options)
        stages = measure_stages(name, size, min(args.items, 100), options)
        cpu_rates = [args.items / s for s in passes["cpu_s"]]
        wall_rates = [args.items / s for s in passes["wall_s"]]
        results.append(
            {
                "dataset": name,
                "items": args.items,
                "repeats": args.repeats,
                "frames_per_window": 3,
                "windows_per_s_cpu_best": max(cpu_rates),
                "windows_per_s_cpu_median": statistics.median(cpu_rates),
                "windows_per_s_wall_best": max(wall_rates),
                "windows_per_s_wall_median": statistics.median(wall_rates),
                "stage_ms": stages,
                "meets_target": max(cpu_rates) >= TARGET_WINDOWS_PER_S,
            }
        )
    load_after = os.getloadavg()

    table = Table(
        title=f"synthetic video windows (3 frames) at {size[0]}x{size[1]}, 1 thread, "
        f"moving objects {args.moving_objects}"
    )
    for column in (
        "dataset",
        "win/s CPU best",
        "win/s CPU median",
        "win/s wall best",
        "scene ms",
        "cast ms",
        "shade ms",
        "pipeline ms",
        f">= {TARGET_WINDOWS_PER_S:g}/s",
    ):
        table.add_column(column, justify="right" if column != "dataset" else "left")
    for r in results:
        s = r["stage_ms"]
        table.add_row(
            r["dataset"],
            f"{r['windows_per_s_cpu_best']:.0f}",
            f"{r['windows_per_s_cpu_median']:.0f}",
            f"{r['windows_per_s_wall_best']:.0f}",
            f"{s['scene']:.2f}",
            f"{s['cast']:.2f}",
            f"{s['shade']:.2f}",
            f"{s['pipeline']:.2f}",
            "yes" if r["meets_target"] else "NO",
        )
    Console(width=130).print(table)
    print(
        f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} CPUs "
        "(CPU-time rates drop when other processes share the cores)"
    )
    if args.out is not None:
        write_json(
            args.out,
            {
                "benchmark": "data_video",
                "input_size": list(size),
                "threads": 1,
                "moving_objects": args.moving_objects,
                "target_windows_per_s": TARGET_WINDOWS_PER_S,
                "results": results,
                "machine": {
                    **encode(provenance()),
                    "processor": platform.processor(),
                    "cpus": os.cpu_count(),
                    "load_average_before": load_before[0],
                    "load_average_after": load_after[0],
                },
            },
        )
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
