"""The one exception type users are meant to see.

Library code raises :class:`ProbeError` (or a subclass) for bad input: a missing
file, a malformed flag, an impossible shape.  The CLI prints its message on one
line and exits non-zero without a traceback, so every message must name the
file or flag at fault and what was expected.
"""


class ProbeError(Exception):
    """User-facing error: the message is printed verbatim on one line."""


class DataError(ProbeError, ValueError):
    """A dataset file is missing, corrupt or inconsistent."""


class ShapeError(ProbeError, ValueError):
    """A tensor does not satisfy a documented shape contract."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line.

    An error raised inside a DataLoader worker arrives re-wrapped by torch with the worker's
    whole traceback in its message; the original one-line message is that traceback's last line.
    """
    text = str(exc)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        head, sep, rest = last.partition(": ")
        text = rest if sep and "." in head and " " not in head else last
    return " ".join(text.split())


def reason(exc: BaseException, limit: int = 160) -> str:
    """``Type: message`` of a third-party exception, on one line and short: for "cannot read X (reason)"."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


def warn(message: str) -> None:
    """Tell the user something went wrong but the command carries on: one ``probe: warning:`` line on stderr."""
    import sys

    print(f"probe: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)
