"""Tiny training runs shared by the training tests (width 1/16, 32x64 images, a handful of steps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from probe.training import TrainConfig

ROOT = Path(__file__).resolve().parents[2]

TINY: dict[str, Any] = dict(model="packnet_slim_b", width=0.0625, dataset="synthetic", input_size=(32, 64),
                            dataset_length=8, batch_size=4, device="cpu", workers=0, seed=0)


def tiny_config(out: Path, **overrides: Any) -> TrainConfig:
    return TrainConfig(**{**TINY, "out": out, **overrides})


TINY_FLAGS = ["--model", "packnet_slim_b", "--width", "0.0625", "--dataset", "synthetic", "--input-size", "32x64",
              "--batch-size", "4", "--device", "cpu", "--workers", "0", "--seed", "0"]


def probe_command(*args: str) -> list[str]:
    """``python -m cli ARGS`` from the repository root (works without installing probe)."""
    return [sys.executable, "-m", "cli", *args]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_probe(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(probe_command(*args), cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def tiny(tmp_path: Path):
    """``tiny(name, **overrides) -> TrainConfig`` writing to ``tmp_path/name``."""
    return lambda name="run", **overrides: tiny_config(tmp_path / name, **overrides)

