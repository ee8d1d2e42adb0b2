"""Find and load the JSON results of one or more run folders (never re-runs anything).

A run folder is whatever ``--out DIR`` a command wrote into.  Results may sit in the
folder itself or one level down (``probe study`` and ``probe experiment`` keep one
sub-folder per training run), so both levels are scanned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.errors import ProbeError
from probe.io import read_json

#: analysis file stem -> report key
RESULT_FILES = (
    "complexity", "experiments", "gradients", "noise", "collapse",
    "autoencoder", "attribution", "properties", "eval", "train", "self_supervised",
)


@dataclass
class Found:
    """One loaded JSON document and where it came from."""

    path: Path
    data: Any


@dataclass
class Results:
    """Everything the report can show, grouped by analysis name."""

    run_dirs: list[Path]
    by_name: dict[str, list[Found]] = field(default_factory=dict)
    configs: list[Found] = field(default_factory=list)
    metrics_logs: list[Path] = field(default_factory=list)

    def all(self, name: str) -> list[Found]:
        return self.by_name.get(name, [])

    def first(self, name: str) -> Any | None:
        found = self.all(name)
        return found[0].data if found else None

    def has(self, name: str) -> bool:
        return bool(self.by_name.get(name))


def _candidate_dirs(root: Path) -> list[Path]:
    dirs = [root]
    dirs.extend(sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    return dirs


def collect_results(run_dirs: list[str | Path]) -> Results:
    """Load every known result file under the given run folders.

    Raises a one-line ProbeError when a folder is missing, holds no result at all, or a
    result file is not valid JSON (naming the file).
    """
    if not run_dirs:
        raise ProbeError("report: expected at least one RUN_DIR")
    roots = [Path(d) for d in run_dirs]
    results = Results(run_dirs=roots)
    for root in roots:
        if not root.is_dir():
            raise ProbeError(f"{root}: not a directory (expected a run folder written with --out)")
        found_any = False
        for folder in _candidate_dirs(root):
            for stem in RESULT_FILES:
                path = folder / f"{stem}.json"
                if path.is_file():
                    data = read_json(path)
                    if not isinstance(data, dict):
                        raise ProbeError(f"{path}: expected a JSON object (a result written by probe), "
                                         f"got {type(data).__name__}")
                    results.by_name.setdefault(stem, []).append(Found(path, data))
                    found_any = True
            cfg = folder / "config.json"
            if cfg.is_file():
                results.configs.append(Found(cfg, read_json(cfg)))
            log = folder / "metrics.jsonl"
            if log.is_file():
                results.metrics_logs.append(log)
        if not found_any:
            raise ProbeError(
                f"{root}: no result files found (expected one of {', '.join(s + '.json' for s in RESULT_FILES)})"
            )
    return results


def read_metrics_log(path: Path) -> list[dict[str, Any]]:
    """Lines of a training ``metrics.jsonl``; a malformed line is an error naming file and line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise ProbeError(f"{path}:{number}: not a JSON line") from None
    return rows
