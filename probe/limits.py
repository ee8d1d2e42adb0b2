"""Stated limits on every count and size a user can ask for, and the one way to check them.

A flag outside its domain fails up front, before any allocation or work, with one
line naming the flag, the limit and the value::

    >>> check_count("--steps", 2**70, MAX_STEPS)
    Traceback (most recent call last):
    ...
    probe.errors.ProbeError: --steps: expected an integer from 1 to 10,000,000, got 1180591620717411303424

The limits are generous for real work (a full NYU epoch at batch 4 is ~12,700
steps; a 20-epoch run ~254,000) and stop requests that could only be typos or
attacks (``2**70`` steps, a million workers, a 100000x100000 input).  Each
limit is a plain constant so that configs, docs and tests quote the same number.
"""

from __future__ import annotations

import math
import os
from typing import Any

from probe.errors import ProbeError

MAX_STEPS = 10_000_000
"""Optimizer steps, measured steps, integration steps: far beyond any run probe is meant for."""

MAX_ANALYSIS_STEPS = 100_000
"""Training steps of an analysis that keeps a record of every step (per-layer gradient norms, losses,
collapse statistics) in memory: 500x the full study's budget."""

MAX_EPOCHS = 10_000
MAX_REPEATS = 10_000
"""Timed repeats and untimed warm-up runs of a measurement."""

MAX_EXAMPLES = 1_000_000
"""Hypothesis examples per law."""

MAX_HELD_OUT_IMAGES = 4_096
"""Images an analysis holds and predicts together (collapse's held-out batch, attribution's images)."""

MAX_METHOD_STEPS = 10_000
"""Integration steps / samples of one attribution (Integrated Gradients uses 20 to 300)."""

MAX_PREVIEW_COUNT = 64
"""Items shown in one preview grid (each is a row of two panels)."""

MAX_ITEMS = 10_000_000
"""Generated dataset length, images per analysis: beyond it a sampler's index permutation alone is ~80 MB."""

MAX_BATCH_SIZE = 65_536
MAX_WIDTH = 16.0
"""Channel multiplier: 16x the published widths is already ~30 billion PackNet parameters."""

MAX_INPUT_SIDE = 16_384
"""Pixels per side of a network input (16K covers any camera probe reads)."""

MAX_ARRAY_ELEMENTS = 2**28
"""Elements of one array read from a data file (.npy, .mat variable): 268 M, 1 GiB of float32.
A depth map of the largest supported input (16384 x 16384) fits."""

MAX_DATA_FILE_BYTES = 2**31
"""Bytes of one image, .npy or MATLAB v5 file read whole into memory (2 GiB: a MAX_ARRAY_ELEMENTS float64
array); HDF5 and zip containers are read lazily and have no such limit."""

MAX_ARCHIVE_MEMBERS = 1_000_000
"""Members of one downloaded archive (Make3D's largest has ~400)."""


def max_workers() -> int:
    """Data-loading worker processes: 4 per CPU core, at most 64 (more only forks idle processes)."""
    return min(64, 4 * (os.cpu_count() or 1))


def max_processes() -> int:
    """DDP processes on one node: one per visible GPU, or one per CPU core without CUDA."""
    import torch

    if torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return max(1, os.cpu_count() or 1)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(flag: str, value: Any, low: int, high: int, why: str = "") -> int:
    """``value`` if it is an integer in ``[low, high]``, else a one-line ProbeError naming ``flag``."""
    if not _is_int(value) or not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise ProbeError(f"{flag}: expected an integer from {low:,} to {high:,}{reason}, got {value!r}")
    return value


def check_count(flag: str, value: Any, limit: int, why: str = "") -> int:
    """A positive count no larger than ``limit``."""
    return check_int(flag, value, 1, limit, why)


def check_optional_count(flag: str, value: Any, limit: int, why: str = "") -> int | None:
    """``None`` or a positive count no larger than ``limit``."""
    return None if value is None else check_count(flag, value, limit, why)


def check_positive_float(flag: str, value: Any, high: float = math.inf, what: str = "a positive number") -> float:
    """A finite float in ``(0, high]``: rejects NaN, inf, zero, negatives and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProbeError(f"{flag}: expected {what}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0 < number <= high:
        bound = f" at most {high:g}" if math.isfinite(high) else ""
        raise ProbeError(f"{flag}: expected {what} (finite, > 0{',' + bound if bound else ''}), got {value!r}")
    return number


def check_width(value: Any, flag: str = "--width") -> float:
    """A channel multiplier in ``(0, MAX_WIDTH]``."""
    return check_positive_float(flag, value, MAX_WIDTH, "a positive channel multiplier")


def check_input_size(size: Any, flag: str = "--input-size") -> tuple[int, int] | None:
    """``None`` (the dataset's default size) or :func:`check_size`."""
    return None if size is None else check_size(size, flag)


def check_size(size: Any, flag: str = "--input-size") -> tuple[int, int]:
    """``(H, W)`` with both sides from 1 to :data:`MAX_INPUT_SIDE`."""
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ProbeError(f"{flag}: expected HxW, got {size!r}") from None
    for side in (height, width):
        if not _is_int(side) or not 1 <= side <= MAX_INPUT_SIDE:
            raise ProbeError(
                f"{flag}: expected HxW with sides from 1 to {MAX_INPUT_SIDE:,} pixels, got {height}x{width}"
            )
    return int(height), int(width)


def check_workers(value: Any, flag: str = "--workers") -> int:
    """0 (load in this process) up to :func:`max_workers`."""
    return check_int(flag, value, 0, max_workers(), "0: load in this process; at most 4 per CPU core, 64 in all")


def check_processes(value: Any, flag: str = "--nproc-per-node") -> int:
    """1 up to :func:`max_processes`."""
    return check_int(flag, value, 1, max_processes(), "at most one per visible GPU, or per CPU core without one")
