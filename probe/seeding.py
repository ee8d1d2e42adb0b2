"""Seeding and determinism switches, in one place."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from probe.errors import ProbeError

MAX_SEED = 2**63 - 1  # torch generators take a signed 64-bit seed; NumPy's take no negative one


def check_seed(seed: int, flag: str = "--seed") -> int:
    """``seed`` if it is an integer in ``0..2**63-1`` (what every generator here accepts), else a ProbeError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ProbeError(f"{flag}: expected an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed


MAX_SEEDS = 100  # runs per configuration: more is a typo, not a study


def seed_list(seeds: int | list[int] | None, seed: int, flag: str = "--seeds") -> list[int]:
    """The seeds a command runs: ``None`` -> ``[seed]``; ``N`` -> ``seed .. seed+N-1``; a list as given.

    >>> seed_list(None, 7), seed_list(3, 7), seed_list([0, 4], 7)
    ([7], [7, 8, 9], [0, 4])
    """
    check_seed(seed)
    if seeds is None:
        return [seed]
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple)):
        raise ProbeError(f"{flag}: expected a number of seeds or a list of seeds, got {seeds!r}")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ProbeError(f"{flag}: expected 1 to {MAX_SEEDS} seeds, got {seeds}")
        values = list(range(seed, seed + seeds))
    else:
        values = list(seeds)
    if not 1 <= len(values) <= MAX_SEEDS:
        raise ProbeError(f"{flag}: expected 1 to {MAX_SEEDS} seeds, got {len(values)}")
    for value in values:
        check_seed(value, flag)
    if len(set(values)) != len(values):
        raise ProbeError(f"{flag}: a seed is repeated in {values}")
    return values


def seed_folder(out: Path, seed: int, seeds: list[int]) -> Path:
    """Where seed ``seed`` of ``seeds`` writes: ``out`` itself for one seed, else ``out/seed_<seed>``."""
    return Path(out) if len(seeds) == 1 else Path(out) / f"seed_{seed}"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_deterministic(enabled: bool, device_type: str = "cpu") -> None:
    """Ask torch for deterministic kernels: bitwise-reproducible runs on a CPU.

    On CUDA a few kernels have no deterministic version: the backward of bilinear
    upsampling (DenseDepth's decoder, the multi-scale loss) accumulates with atomics.
    There torch warns about those instead of stopping the run, and two runs agree to
    rounding rather than bitwise.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    warn_only = enabled and device_type == "cuda"
    # the first call imports the compiler stack (seconds): only touch torch's switch when it changes
    if (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) != (
        enabled,
        warn_only,
    ):
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled
