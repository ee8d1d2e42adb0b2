"""The one atomic file writer, and JSON with plain numbers.

Every result, figure and checkpoint goes through :func:`atomic_write` so that a
crash or SIGKILL never leaves a half-written file in place of a good one: the
bytes go to a temporary file in the same directory, are fsync'ed, and the file
is renamed over the target (an atomic operation on POSIX).

Only regular files are replaced.  An output path that names a character or
block device, a FIFO, a socket or ``-`` is refused with one line: renaming a
file over ``/dev/null`` would replace the device node, and writing a result
into a pipe would lose the atomicity every reader relies on.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from probe.errors import ProbeError
from probe.schema import encode


def ensure_dir(path: str | os.PathLike[str], label: str | None = None) -> Path:
    """Create folder ``path`` (and its parents) or raise a one-line ProbeError.

    ``label`` names what the folder is for in the message (a flag such as
    ``"--out"``, or the file about to be written); by default the path itself.
    """
    folder = Path(path)
    label = label or str(folder)
    if folder.exists() and not folder.is_dir():
        raise ProbeError(f"{label}: {folder} exists and is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file, no permission, read-only file system
        raise ProbeError(f"{label}: cannot create folder {folder} ({exc.strerror or exc})") from None
    return folder


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Use for writers that insist on a file name (``safetensors.torch.save_file``,
    ``fig.savefig``, ``torch.save``)::

        with atomic_path(out / "weights.safetensors") as tmp:
            save_file(tensors, str(tmp))
    """
    target = Path(path)
    check_regular_output(target)
    ensure_dir(target.parent, f"cannot write {target}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_MARK + target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


TEMP_MARK = ".probe-tmp"
"""In the name of every temporary file :func:`atomic_path` creates (``.<name>.<random>.probe-tmp<suffix>``)."""


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename inside ``folder`` durable (POSIX: the directory entry lives in the folder's own data)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # platforms or file systems without directory handles: the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_path` left directly in ``folder``; returns them.

    Call only while holding the folder's writer lock (:func:`probe.runs.run_folder_lock`),
    so that no live writer's temporary file is taken for a stale one.
    """
    base = Path(folder)
    if not base.is_dir():
        return []
    stale = [p for p in base.glob(f".*{TEMP_MARK}*") if p.is_file() or p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


_SPECIAL_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def special_file_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a folder (``"a FIFO ..."``), else None.

    Symbolic links are followed: a link to ``/dev/null`` is a character device.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ProbeError(f"{path}: cannot inspect this path ({exc.strerror or exc})") from None
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), None)


def check_regular_output(path: str | os.PathLike[str]) -> None:
    """Refuse an output path that is a folder, a device, a FIFO, a socket or ``-`` (one line)."""
    target = Path(path)
    if str(path) == "-":
        raise ProbeError("-: writing to standard output is not supported; give a file name")
    if target.is_dir():
        raise ProbeError(f"{target}: is a directory (expected a file name to write)")
    kind = special_file_kind(target)
    if kind is not None:
        raise ProbeError(f"{target}: is {kind}, not a regular file; probe writes results only to regular files")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)


def to_plain(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, dataclasses, paths and tuples to JSON types.

    Non-finite floats become ``None`` (JSON has no Infinity/NaN); callers that
    need to distinguish +inf (e.g. PSNR of identical images) store that fact in
    a separate field.  One implementation: :func:`probe.schema.encode`.
    """
    return encode(obj)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON with plain numbers."""
    text = json.dumps(to_plain(obj), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, text)


MAX_JSON_DEPTH = 64
"""Nesting of arrays and objects in a JSON file probe reads (its own files nest fewer than 10 levels)."""

MAX_JSON_INT_DIGITS = 300
"""Digits of one JSON integer: every such integer still converts to a float (the largest is about 1.8e308)."""

MAX_JSON_BYTES = 1 << 30
"""Bytes of one JSON file probe reads whole (result files of the largest studies are a few MB)."""


class _JSONRefused(ValueError):
    """A value the JSON grammar allows but no file probe writes contains (message: what and where)."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise _JSONRefused(f"an integer of {digits:,} digits (at most {MAX_JSON_INT_DIGITS} are read)")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: outside the float range; probe writes non-finite values as null
        raise _JSONRefused(f"the number {text[:40]} is outside the float range")
    return value


def _parse_constant(name: str) -> Any:
    raise _JSONRefused(f"{name} is not JSON (probe writes non-finite numbers as null)")


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar: 0), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def loads_json(text: str, label: str) -> Any:
    """Parse JSON text probe reads (a result, config.json, a manifest): one line naming ``label`` on failure.

    Beyond the grammar it refuses what no file probe writes contains and what would crash the
    readers behind it: nesting deeper than :data:`MAX_JSON_DEPTH`, integers longer than
    :data:`MAX_JSON_INT_DIGITS` digits, numbers outside the float range, ``NaN`` and ``Infinity``.
    """
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except RecursionError:
        raise ProbeError(f"{label}: not valid JSON (nested more than {MAX_JSON_DEPTH} levels deep)") from None
    except _JSONRefused as exc:
        raise ProbeError(f"{label}: not valid JSON ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ProbeError(f"{label}: not valid JSON ({exc})") from None
    except ValueError as exc:  # what Python's own limits refuse
        raise ProbeError(f"{label}: not valid JSON ({str(exc)[:120]})") from None
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise ProbeError(f"{label}: not valid JSON (nested {depth} levels deep; at most {MAX_JSON_DEPTH} are read)")
    return value


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file (:func:`loads_json`), raising a one-line ProbeError naming the file on failure."""
    p = Path(path)
    if not p.is_file():
        raise ProbeError(f"{p}: file not found (expected a JSON file)")
    try:
        size = p.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ProbeError(f"{p}: {size:,} bytes, more than the {MAX_JSON_BYTES:,} probe reads from a JSON file")
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProbeError(f"{p}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ProbeError(f"{p}: cannot read file ({exc.strerror or exc})") from None
    return loads_json(text, str(p))


def append_jsonl(path: str | os.PathLike[str], record: Any) -> None:
    """Append one JSON line and flush it (used for per-step training logs)."""
    p = Path(path)
    check_regular_output(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(to_plain(record), allow_nan=False) + "\n"
    with open(p, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
