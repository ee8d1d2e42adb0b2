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


def _special_nodes(tmp_path, suffix=""):
    """A FIFO and, where this user may create one, a character device like /dev/null (1, 3)."""
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    nodes = {"a FIFO": fifo}
    try:
        os.mknod(tmp_path / f"null{suffix}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        nodes["a character device"] = tmp_path / f"null{suffix}"
    except PermissionError:
        pass
    return nodes


@pytest.mark.timeout(30)
def test_outputs_that_are_not_regular_files_are_refused_and_left_in_place(tmp_path):
    from probe.errors import ProbeError

    nodes = _special_nodes(tmp_path)
    if "a character device" not in nodes:
        pytest.skip("creating a device node needs CAP_MKNOD (root)")
    for kind, node in nodes.items():
        before = os.stat(node)
        for write in (lambda p: write_json(p, {"x": 1}), lambda p: atomic_write(p, b"x")):
            with pytest.raises(ProbeError, match=rf"{node}: is {kind}, not a regular file"):
                write(node)
        after = os.stat(node)
        assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev, before.st_ino)
    link = tmp_path / "link.json"
    link.symlink_to(nodes["a character device"])
    with pytest.raises(ProbeError, match="is a character device"):
        write_json(link, {"x": 1})
    with pytest.raises(ProbeError, match="^-: writing to standard output is not supported"):
        write_json("-", {"x": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "null", "pipe"], "no temporary left"


@pytest.mark.timeout(30)
def test_the_image_loader_refuses_a_fifo_without_opening_it(tmp_path):
    from probe.data.images import read_depth_metres, read_npy, read_rgb
    from probe.errors import DataError

    for kind, node in _special_nodes(tmp_path, ".npy").items():
        for read in (read_rgb, read_npy, lambda p: read_depth_metres(p, 1.0)):
            with pytest.raises(DataError, match=rf"{node}: is a FIFO, device or socket, not a regular file"):
                read(node)


def test_stale_temporaries_are_recognised_by_name_only(tmp_path):
    from probe.io import TEMP_MARK, remove_stale_temporaries

    (tmp_path / f".train.json.abc{TEMP_MARK}.json").write_text("half")
    (tmp_path / "train.json").write_text("{}")
    (tmp_path / ".lock").write_text("")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [f".train.json.abc{TEMP_MARK}.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "train.json"]


@pytest.mark.parametrize("text, reason", [
    ("[" * 100_000 + "]" * 100_000, "nested more than 64"),
    ('{"a": ' * 65 + "1" + "}" * 65, "nested 65 levels deep"),
    ('{"width": 1' + "0" * 5000 + "}", "an integer of 5,001 digits"),
    ('{"x": 1e999}', "outside the float range"),
    ('{"x": NaN}', "NaN is not JSON"),
    ('[-Infinity]', "-Infinity is not JSON"),
    ('{"x": ', "not valid JSON"),
])
def test_the_json_reader_refuses_what_no_probe_file_holds_in_one_line_naming_the_file(tmp_path, text, reason):
    from probe.errors import ProbeError
    from probe.io import read_json

    path = tmp_path / "gradients.json"
    path.write_text(text)
    with pytest.raises(ProbeError) as caught:
        read_json(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid JSON") and reason in message and "\n" not in message


def test_the_json_reader_keeps_everything_probe_writes(tmp_path):
    from probe.io import loads_json, read_json

    doc = {"a": [1, 2.5, None, "x", True], "b": {"c": 10**299, "d": -1e308}, "deep": [[[[[[[[1]]]]]]]]}
    assert read_json(write_json(tmp_path / "r.json", doc)) == doc
    assert loads_json('{"a": ' * 64 + "1" + "}" * 64, "f")  # 64 levels: the limit itself is read
