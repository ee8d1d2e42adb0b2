"""Run folders: ``--out DIR`` holds ``config.json`` plus one ``<analysis>.json`` per analysis.

``config.json`` records the resolved configuration of every command that wrote
into the folder, together with provenance (versions, device, seed, git commit),
so a report can say exactly how each number was produced.

One writer per run folder: every command that writes into ``DIR`` holds an
advisory lock on ``DIR/.lock`` (:func:`run_folder_lock`), so two runs can
never interleave their logs, checkpoints and config.  A second writer fails at
once with one line naming the folder and the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import torch

from probe import __version__
from probe.errors import ProbeError
from probe.io import ensure_dir, read_json, remove_stale_temporaries, write_json
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
    with run_folder_lock(path, command):  # the read-modify-write of config.json must not interleave
        cfg_file = path / "config.json"
        existing = read_json(cfg_file) if cfg_file.exists() else {}
        if not isinstance(existing, dict):
            raise ProbeError(f"{cfg_file}: expected a JSON object")
        existing[command] = encode(RunRecord(config, provenance(device, seed)))
        write_json(cfg_file, existing)
    return path


# -- one writer per run folder ---------------------------------------------------------------------

LOCK_FILE = ".lock"


@dataclass
class _Held:
    fd: int
    depth: int


# Locks this process holds, by resolved folder: nested commands (study -> analysis -> train) re-enter them.
_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _forget_locks_in_child() -> None:
    """A forked child (a DataLoader worker) must not keep its parent's lock alive after the parent dies."""
    global _HELD_GUARD
    _HELD_GUARD = threading.Lock()  # another thread may have held it at the fork
    for held in _HELD.values():
        try:
            os.close(held.fd)  # flock belongs to the open file description; the parent's copy keeps it
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_locks_in_child)


def _holder(fd: int) -> str:
    """Who holds the lock, from the lock file's one JSON line (best effort: it is information only)."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        info = json.loads(text) if text else {}
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    command = f"`probe {info['command']}`, " if info.get("command") else ""
    host = f" on {info['host']}" if info.get("host") and info.get("host") != platform.node() else ""
    return f"{command}PID {info['pid']}{host}, started {info.get('started', '?')}"


@contextmanager
def run_folder_lock(folder: str | Path, command: str) -> Iterator[Path]:
    """Hold the writer lock of run folder ``folder`` (created if needed) for the ``with`` block.

    The lock is ``fcntl.flock`` on ``folder/.lock``: the operating system drops
    it when the holder exits or is killed, so a stale lock never blocks.  Taking
    it removes the temporary files a killed writer left in ``folder``.  The
    file records the holder's PID, command and start time for the message a
    second writer gets (a one-line ProbeError, raised at once, never a wait);
    it is removed again on release (only a killed holder leaves it behind), and so is
    the folder when this call created it and nothing was written into it.
    Re-entrant within one process: a study that runs an analysis that trains
    into the same folder takes it once.

    >>> with run_folder_lock("runs/x", "train"):    # doctest: +SKIP
    ...     ...                                     # only this process writes into runs/x
    """
    created = not Path(folder).exists()
    path = ensure_dir(folder, "--out")
    key = str(path.resolve())
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held.depth += 1
        else:
            _HELD[key] = _acquire(path, command)
    try:
        yield path
    finally:
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None:
                held.depth -= 1
                if held.depth == 0:
                    del _HELD[key]
                    _release(path / LOCK_FILE, held.fd)
                    if created:  # a command that failed before writing leaves no empty folder behind
                        with contextlib.suppress(OSError):
                            path.rmdir()  # only succeeds while the folder is empty


def _release(lock_path: Path, fd: int) -> None:
    """Remove the lock file, then release the lock: a command leaves no trace in the folder.

    The file goes while the lock is still held, so no other process can take it over; a
    process that opened it just before locks an unlinked file, sees that in :func:`_acquire`
    and starts again.
    """
    try:
        if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
            os.unlink(lock_path)
    except OSError:
        pass  # already gone, or a read-only folder: the lock is released all the same
    os.close(fd)  # releases the flock


def _acquire(path: Path, command: str) -> _Held:
    lock_path = path / LOCK_FILE
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ProbeError(f"--out {path}: cannot create the lock file {lock_path} ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise ProbeError(
                f"--out {path}: another probe command is writing into this run folder ({holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise ProbeError(f"--out {path}: cannot lock {lock_path} ({exc.strerror or exc})") from None
        try:
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)  # its holder removed the file we opened while releasing it: lock the folder's new one
    record = {
        "pid": os.getpid(),
        "command": command,
        "host": platform.node(),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
    remove_stale_temporaries(path)  # no other writer is alive: any temporary file is a killed one's
    return _Held(fd=fd, depth=1)


def holds_run_folder_lock(folder: str | Path) -> bool:
    """Whether this process holds ``folder``'s writer lock."""
    with _HELD_GUARD:
        return str(Path(folder).resolve()) in _HELD
