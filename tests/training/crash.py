"""Kill `probe train` with SIGKILL at random moments and check that every kill leaves a resumable run.

Shared by the crash test (a handful of kills) and ``bench/crash_resume.py`` (the issue's 20).
Each round starts ``probe train ... [--resume]``, waits for it to make progress (its run
folder appears, or a new checkpoint is committed), sleeps a seeded random delay and sends
SIGKILL; then the newest complete checkpoint is looked up exactly as ``--resume`` does,
recording any warning it prints (a torn checkpoint taken for a complete one would show here).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from probe.errors import ProbeError
from probe.io import TEMP_MARK
from probe.training.checkpoint import PARTIAL_PREFIX, POINTER_FILE, TRASH_PREFIX, find_resume_point
from tests.training.conftest import ROOT, probe_command, subprocess_env


@dataclass
class KillRecord:
    """One round: when the kill came, and what a resume would find afterwards."""

    round: int
    delay_s: float
    killed: bool  # False: the process had already exited (status in exit_code)
    exit_code: int | None
    resume_step: int | None  # newest complete checkpoint after the kill (None: none yet)
    resumable: bool
    warnings: str = ""
    error: str = ""
    temporaries_left: list[str] = field(default_factory=list)


def temporaries(run_dir: Path) -> list[Path]:
    """Every partial checkpoint, half-deleted checkpoint and atomic-writer temporary under ``run_dir``."""
    if not run_dir.exists():
        return []
    return sorted(p for p in run_dir.rglob("*")
                  if p.name.startswith((PARTIAL_PREFIX, TRASH_PREFIX)) or TEMP_MARK in p.name)


def _pointer(run_dir: Path) -> str:
    try:
        return (run_dir / "checkpoints" / POINTER_FILE).read_text()
    except OSError:
        return ""


def _wait_for_progress(proc: subprocess.Popen, run_dir: Path, first: bool, timeout: float) -> None:
    before = _pointer(run_dir)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if (first and (run_dir / "config.json").exists()) or (not first and _pointer(run_dir) != before):
            return
        time.sleep(0.002)


def resume_point(run_dir: Path) -> tuple[int | None, str, str]:
    """``(step, warnings, error)`` of what ``--resume`` would continue from."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            found = find_resume_point(run_dir)
        except ProbeError as exc:
            return None, stderr.getvalue(), str(exc)
    return (found[0].step if found else None), stderr.getvalue(), ""


def kill_rounds(run_dir: Path, flags: list[str], rounds: int, rng: random.Random, *, max_delay: float = 0.3,
                anytime_share: float = 0.0, anytime_window: float = 6.0, timeout: float = 120.0) -> list[KillRecord]:
    """Start, (resume,) and SIGKILL ``probe train FLAGS --out run_dir`` ``rounds`` times.

    A round waits for progress and then up to ``max_delay`` s; with probability
    ``anytime_share`` it instead kills after up to ``anytime_window`` s from the start
    (interpreter start-up, imports, building, cleaning included).
    """
    records = []
    for index in range(rounds):
        command = probe_command("train", *flags, *(["--resume"] if index else []), "--out", str(run_dir))
        proc = subprocess.Popen(command, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if rng.random() < anytime_share:
            delay = rng.uniform(0.0, anytime_window)
        else:
            _wait_for_progress(proc, run_dir, first=index == 0, timeout=timeout)
            delay = rng.uniform(0.0, max_delay)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=timeout)
        stderr = proc.stderr.read() if proc.stderr else ""
        step, warnings, error = resume_point(run_dir)
        failed_itself = not killed and code != 0
        records.append(KillRecord(index, round(delay, 4), killed, None if killed else code, step,
                                  resumable=not error and not failed_itself,
                                  warnings=warnings.strip(), error=error or (stderr.strip()[-500:] if failed_itself else ""),
                                  temporaries_left=[str(p.relative_to(run_dir)) for p in temporaries(run_dir)]))
    return records


def finish(run_dir: Path, flags: list[str], timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Plain ``--resume`` to the end of the run."""
    return subprocess.run(probe_command("train", *flags, "--resume", "--out", str(run_dir)), cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=timeout, check=False)
