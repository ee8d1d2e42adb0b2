"""Run folders: ``--out DIR`` holds ``config.json`` plus one ``<analysis>.json`` per analysis.

``config.json`` records the resolved configuration of every command that wrote
into the folder, together with provenance (versions, device, seed, git commit),
so a report can say exactly how each number was produced.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from probe import __version__
from probe.errors import ProbeError
from probe.io import ensure_dir, read_json, write_json
from probe.schema import SchemaError, decode, encode


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the probe checkout (None outside a git checkout)."""
    here = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@dataclass
class Provenance:
    """Versions, machine, device and commit: everything needed to trust a number later."""

    probe_version: str
    git_commit: str | None
    python: str
    torch: str
    numpy: str
    platform: str
    hostname: str
    cuda_available: bool
    time_utc: str
    seed: int | None
    device: str | None
    device_name: str | None  # the GPU's name on CUDA


@dataclass
class RunRecord:
    """One command's entry in ``DIR/config.json``: its resolved config and provenance."""

    config: dict[str, Any]
    provenance: Provenance


def provenance(device: torch.device | str | None = None, seed: int | None = None) -> Provenance:
    """The :class:`Provenance` of this process, for a run on ``device`` with ``seed``."""
    import numpy

    dev = torch.device(device) if device is not None else None
    return Provenance(
        probe_version=__version__,
        git_commit=git_commit(),
        python=sys.version.split()[0],
        torch=torch.__version__,
        numpy=numpy.__version__,
        platform=platform.platform(),
        hostname=platform.node(),
        cuda_available=torch.cuda.is_available(),
        time_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seed=seed,
        device=str(dev) if dev is not None else None,
        device_name=torch.cuda.get_device_name(dev) if dev is not None and dev.type == "cuda" else None,
    )


def read_run_records(path: str | Path) -> dict[str, RunRecord]:
    """``DIR/config.json`` as command name -> :class:`RunRecord`; a malformed file is one line naming the key."""
    try:
        return decode(dict[str, RunRecord], read_json(path))
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None


def prepare_run_dir(
    out: str | Path, command: str, config: dict[str, Any], *, device: Any = None, seed: int | None = None
) -> Path:
    """Create ``out`` and merge this command's resolved config into ``out/config.json``.

    The file maps command names to ``{"config": ..., "provenance": ...}`` so that
    several analyses can share one run folder without overwriting each other.
    """
    path = ensure_dir(out, "--out")
    cfg_file = path / "config.json"
    existing = read_json(cfg_file) if cfg_file.exists() else {}
    if not isinstance(existing, dict):
        raise ProbeError(f"{cfg_file}: expected a JSON object")
    existing[command] = encode(RunRecord(config, provenance(device, seed)))
    write_json(cfg_file, existing)
    return path
