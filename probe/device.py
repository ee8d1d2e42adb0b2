"""The one device-selection helper: ``--device auto|cpu|cuda|cuda:N``."""

from __future__ import annotations

import re
import time
from typing import Callable

import torch

from probe.errors import ProbeError

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn a ``--device`` value into a :class:`torch.device`.

    ``auto`` picks ``cuda`` when available, else ``cpu``.  Asking for CUDA on a
    machine without it is an error, never a silent fallback to the CPU.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    spec = spec.strip().lower()
    if not _DEVICE_RE.match(spec):
        raise ProbeError(f"--device: expected auto, cpu, cuda or cuda:N, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ProbeError(f"--device {spec}: CUDA is not available on this machine (use --device cpu or auto)")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ProbeError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible "
                f"(indices 0..{torch.cuda.device_count() - 1})"
            )
        return torch.device("cuda", index)
    return torch.device("cpu")


def device_description(device: torch.device) -> str:
    """Human-readable name of the device (GPU model or CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_clock(device: torch.device) -> Callable[[], float]:
    """The clock benchmarks time ``device`` with: process CPU seconds on a CPU, wall seconds on CUDA.

    CPU time counts every thread of this process and nothing of other processes, so CPU
    timings stay comparable on a shared machine; on CUDA callers synchronise first.
    """
    return time.process_time if device.type == "cpu" else time.perf_counter


def benchmark_clock_name(device: torch.device) -> str:
    """What :func:`benchmark_clock` measures on ``device``, for result files."""
    return "process CPU time" if device.type == "cpu" else "synchronised wall time"
