"""What does per-layer gradient recording cost on top of a plain training step?

Trains each model twice per repeat with :func:`probe.training.train` on the same
batches, once plain and once with :class:`analyses.gradients.GradientRecorder`
attached (recording every step), alternating so that machine load drifts evenly.
Two overhead figures are reported:

- ``hook``: time spent inside the recorder's methods divided by the plain
  step time: the recorder's own cost, robust to noise;
- ``end to end``: median recorded step / median plain step - 1.

The clock is the process CPU time on a CPU device (all threads; robust to other
processes sharing the machine) and device-synchronised wall time on CUDA.

Steps before ``--skip`` are excluded (allocator and kernel warm-up).

    python3 bench/gradient_recording.py --device cpu --width 0.125 --input-size 64x96 --steps 12
    python3 bench/gradient_recording.py --device cuda --width 1.0 --input-size 240x320 --steps 30

Goal: at most 10% overhead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from analyses.gradients import GradientRecorder  # noqa: E402
from probe.device import benchmark_clock, benchmark_clock_name, resolve_device, synchronize  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.runs import provenance  # noqa: E402
from probe.training import StepStats, TrainConfig, TrainHook, train  # noqa: E402

GOAL = 0.10


class StepTimes(TrainHook):
    """Seconds per step on :func:`probe.device.benchmark_clock`'s terms: wall time from the loop on CUDA;
    CPU time between steps on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: list[float] = []
        self._last: float | None = None

    def after_backward(self, step: int, model: nn.Module) -> None:
        if self._last is None:
            self._last = time.process_time()

    def after_step(self, step: int, model: nn.Module, stats: StepStats) -> None:
        if self.device.type != "cpu":
            self.seconds.append(stats.seconds - stats.data_seconds)
            return
        now = time.process_time()
        self.seconds.append(now - (self._last if self._last is not None else now))
        self._last = now


class TimedRecorder(GradientRecorder):
    """The recorder, with the wall time of its two per-step methods accumulated per step."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.hook_seconds: list[float] = []
        self._current = 0.0
        self._clock = benchmark_clock(device)

    def _timed(self, fn: Any, *args: Any) -> None:
        synchronize(self.device)
        start = self._clock()
        fn(*args)
        synchronize(self.device)
        self._current += self._clock() - start

    def after_backward(self, step: int, model: nn.Module) -> None:
        self._current = 0.0
        self._timed(super().after_backward, step, model)

    def after_step(self, step: int, model: nn.Module, stats: Any) -> None:
        self._timed(super().after_step, step, model, stats)
        self.hook_seconds.append(self._current)


def measure(model: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    plain: list[float] = []
    recorded: list[float] = []
    hook: list[float] = []
    layers = 0
    for repeat in range(args.repeats):
        for with_recorder in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                config = TrainConfig(
                    model=model,
                    width=args.width,
                    input_size=args.input_size,
                    max_steps=args.steps,
                    batch_size=args.batch_size,
                    device=args.device,
                    seed=repeat,
                    workers=0,
                    out=Path(tmp) / "run",
                )
                times = StepTimes(device)
                hooks: list[TrainHook] = [times]
                if with_recorder:
                    recorder = TimedRecorder(device)
                    hooks.insert(0, recorder)
                train(config, hooks=hooks)
            kept = slice(args.skip, None)
            if with_recorder:
                recorded += times.seconds[kept]
                hook += recorder.hook_seconds[kept]
                layers = len(recorder.result().layers)
            else:
                plain += times.seconds[kept]
    plain_median = statistics.median(plain)
    return {
        "model": model,
        "layers": layers,
        "steps_timed": len(plain),
        "plain_step_ms": 1e3 * plain_median,
        "recorded_step_ms": 1e3 * statistics.median(recorded),
        "hook_ms": 1e3 * statistics.median(hook),
        "hook_overhead": statistics.median(hook) / plain_median,
        "end_to_end_overhead": statistics.median(recorded) / plain_median - 1.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", help="model name (repeat; default packnet_b, packnet_c, densedepth)"
    )
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--input-size", type=parse_size, default=(64, 96), help="HxW (default 64x96)")
    parser.add_argument("--steps", type=int, default=12, help="training steps per run")
    parser.add_argument("--skip", type=int, default=2, help="warm-up steps excluded from the timing")
    parser.add_argument("--repeats", type=int, default=2, help="plain/recorded run pairs per model")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path("bench_gradient_recording.json"), help="JSON file to write")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps <= args.skip:
        parser.error("--steps must be larger than --skip")
    device = resolve_device(args.device)
    rows = [measure(name, args, device) for name in (args.model or ["packnet_b", "packnet_c", "densedepth"])]

    clock = "CPU" if device.type == "cpu" else "wall"
    table = Table(
        title=f"gradient recording overhead ({device}, {clock} time, width {args.width}, "
        f"{args.input_size[0]}x{args.input_size[1]}, batch {args.batch_size}; goal <= {GOAL:.0%})"
    )
    for column in (
        "model",
        "layers",
        "plain step ms",
        "recorded step ms",
        "hook ms",
        "hook overhead",
        "end-to-end overhead",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(
            r["model"],
            str(r["layers"]),
            f"{r['plain_step_ms']:.1f}",
            f"{r['recorded_step_ms']:.1f}",
            f"{r['hook_ms']:.2f}",
            f"{r['hook_overhead']:.1%}",
            f"{r['end_to_end_overhead']:+.1%}",
        )
    Console().print(table)
    write_json(
        args.out,
        {
            "bench": "gradient_recording",
            "goal_overhead": GOAL,
            "clock": benchmark_clock_name(device),
            "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()},
            "results": rows,
            "provenance": provenance(device),
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
