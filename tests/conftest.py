"""Shared test setup: Hypothesis profiles, thread limits, and a CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# CI runs every property at least 200 times on a fixed seed, so a run's verdict is reproducible and a
# change cannot land or fail by the draw; `HYPOTHESIS_PROFILE=thorough` explores afresh, many more times.
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Tests use tiny tensors: one thread avoids pool overhead that dominates at this size.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``cuda`` are skipped, with the reason, where no GPU is visible."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False); "
                                   "bench/gpu_check.sh runs these on a GPU machine")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


@pytest.fixture
def run_cli(capsys):
    """Run ``probe ARGS`` in-process exactly as the console script does; returns code/out/err."""
    import cli

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            cli.main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A one-step ``probe train`` run of a tiny DenseDepth on synthetic data (read-only for the tests: copy to change)."""
    from probe.training import TrainConfig, train

    out = tmp_path_factory.mktemp("trained_run")
    train(TrainConfig(model="densedepth", width=0.0625, dataset="synthetic", input_size=(32, 48), dataset_length=4,
                      max_steps=1, batch_size=2, device="cpu", workers=0, out=out))
    return out
