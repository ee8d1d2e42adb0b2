"""The atomic writer: whole files or nothing, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from probe.io import atomic_path, atomic_write, write_json


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "report.html", "<html></html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = write_json(tmp_path / "result.json", {"value": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text().strip().startswith("{") and '"value": 1' in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
