"""Find the result files of one or more run folders and read each through its Result class (never re-runs anything).

A run folder is whatever ``--out DIR`` a command wrote into.  Results may sit in the
folder itself or one level down (``probe study`` and ``probe experiment`` keep one
sub-folder per training run), or in that sub-folder's ``seed_<s>`` folders (one run
folder per seed), so those levels are scanned.  Which files exist is
:data:`probe.results.RESULTS` (every registered Result class); each file is read by
its class's ``from_json``.  A file that cannot be read is kept as one line naming the
file and the key, so the report can list it while its other sections still render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Sequence, TypeVar

from probe.errors import ProbeError
from probe.results import RESULTS, Result
from probe.runs import RunRecord, read_run_records

R = TypeVar("R", bound=Result)


@dataclass
class Loaded(Generic[R]):
    """One result and the file it was read from."""

    path: Path
    result: R


@dataclass
class Results:
    """Everything the report can show: results by file name, unreadable files, run records and training logs."""

    run_dirs: list[Path]
    found: dict[str, list[Loaded[Result]]] = field(default_factory=dict)
    unreadable: dict[str, list[str]] = field(default_factory=dict)  # file name -> one line per bad file
    records: list[tuple[Path, dict[str, RunRecord]]] = field(default_factory=list)  # every config.json
    metrics_logs: list[Path] = field(default_factory=list)

    def all(self, cls: type[R]) -> list[Loaded[R]]:
        """Every ``cls.name``.json that was read, in folder order."""
        return [Loaded(item.path, item.result) for item in self.found.get(cls.name, []) if isinstance(item.result, cls)]

    def first(self, cls: type[R]) -> R | None:
        found = self.all(cls)
        return found[0].result if found else None

    def has(self, name: str) -> bool:
        return bool(self.found.get(name))

    def errors(self, name: str) -> list[str]:
        """One line per ``<name>.json`` that could not be read (file and key named)."""
        return self.unreadable.get(name, [])

    def add_error(self, name: str, line: str) -> None:
        self.unreadable.setdefault(name, []).append(line)


def _candidate_dirs(root: Path) -> list[Path]:
    """``root``, its sub-folders, and their ``seed_<s>`` folders (one run folder per seed)."""
    dirs = [root]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        dirs.append(sub)
        dirs.extend(sorted(p for p in sub.glob("seed_*") if p.is_dir()))
    return dirs


def collect_results(run_dirs: Sequence[str | Path]) -> Results:
    """Read every registered result file under the given run folders.

    Raises a one-line ProbeError when a folder is missing or holds no result file, or when
    not one of the result files found could be read (the first reason is named).
    """
    if not run_dirs:
        raise ProbeError("report: expected at least one RUN_DIR")
    roots = [Path(d) for d in run_dirs]
    results = Results(run_dirs=roots)
    for root in roots:
        if not root.is_dir():
            raise ProbeError(f"{root}: not a directory (expected a run folder written with --out)")
        if not any([_collect_folder(results, folder) for folder in _candidate_dirs(root)]):  # every folder is read
            expected = ", ".join(f"{name}.json" for name in RESULTS.names())
            raise ProbeError(f"{root}: no result files found (expected one of {expected})")
    if not results.found:
        raise ProbeError(next(line for lines in results.unreadable.values() for line in lines))
    return results


def _collect_folder(results: Results, folder: Path) -> bool:
    """Read the result files, config.json and metrics.jsonl of one folder; True if it holds a result file."""
    any_result = False
    for entry in RESULTS.entries():
        path = folder / f"{entry.name}.json"
        if not path.is_file():
            continue
        any_result = True
        try:
            loaded = Loaded(path, entry.factory.read(path))
        except ProbeError as exc:
            results.add_error(entry.name, str(exc))
        else:
            results.found.setdefault(entry.name, []).append(loaded)
    config = folder / "config.json"
    if config.is_file():
        try:
            results.records.append((config, read_run_records(config)))
        except ProbeError as exc:
            results.add_error("config", str(exc))
    if (folder / "metrics.jsonl").is_file():
        results.metrics_logs.append(folder / "metrics.jsonl")
    return any_result
