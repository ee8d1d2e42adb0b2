"""Parsers for option strings shared by the CLI and configs (sizes, pixels, lists)."""

from __future__ import annotations

import re

from probe.errors import ProbeError

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX,]\s*(\d+)\s*$")


def parse_size(text: str, flag: str = "--input-size") -> tuple[int, int]:
    """``"192x640"`` -> ``(192, 640)`` as (H, W).

    >>> parse_size("240x320")
    (240, 320)
    """
    match = _SIZE_RE.match(text)
    if not match:
        raise ProbeError(f"{flag}: expected HxW with positive integers (e.g. 192x640), got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if h <= 0 or w <= 0:
        raise ProbeError(f"{flag}: height and width must be positive, got {text!r}")
    return h, w


def parse_int_tuple(text: str, n: int, flag: str, example: str) -> tuple[int, ...]:
    """``"10,20"`` -> ``(10, 20)``; exactly ``n`` comma-separated non-negative integers."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != n or any(v < 0 for v in values):
        raise ProbeError(f"{flag}: expected {n} comma-separated non-negative integers (e.g. {example}), got {text!r}")
    return values


def parse_name_list(text: str, flag: str, allowed: list[str]) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, each checked against ``allowed``."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in allowed]
    if not names or bad:
        raise ProbeError(f"{flag}: expected a comma-separated list from {', '.join(allowed)}, got {text!r}")
    return names
