"""The attack suite: corrupt files of every supported format are read correctly or named in one line.

Hypothesis mutates valid files (truncation, overwritten bytes, inserted and deleted runs) of every
format probe reads: .npy, 8- and 16-bit PNG, JPEG, MATLAB v5 and v7.3 (HDF5), the NYU CSV, the NYU
zip and downloaded tar archives.  Every outcome must be either a successful read or a DataError
whose message is one line naming the file: never another exception, never a hang (each test has a
timeout).  The issue's hand-made corrupt inputs (``attack_inputs.ATTACKS``) each give their message.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.data import get_dataset
from probe.data.download import safe_extract
from probe.data.images import read_depth_metres, read_depth_png, read_mat, read_rgb
from probe.data.nyu import parse_pair_csv
from probe.errors import DataError
from tests.data.attack_inputs import ATTACKS, first_error
from tests.data.fixtures import (encode_jpeg, encode_png, make_nyu_zip, random_rgb, write_mat_v5, write_mat_v73,
                                 write_tar)

# A fifth of the profile's examples: 40 per format in CI, 1000 under HYPOTHESIS_PROFILE=thorough.
EXAMPLES = max(40, settings.default.max_examples // 5)
ATTACK_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

Mutation = tuple[str, int, bytes]
mutations = st.lists(st.tuples(st.sampled_from(["truncate", "overwrite", "insert", "delete"]),
                               st.integers(min_value=0, max_value=1 << 20), st.binary(min_size=1, max_size=24)),
                     min_size=1, max_size=4)


def mutate(data: bytes, steps: list[Mutation]) -> bytes:
    """Apply truncations, overwrites, insertions and deletions at positions taken modulo the length."""
    out = bytearray(data)
    for kind, position, payload in steps:
        at = position % (len(out) + 1)
        if kind == "truncate":
            del out[at:]
        elif kind == "overwrite":
            out[at:at + len(payload)] = payload
        elif kind == "insert":
            out[at:at] = payload
        else:
            del out[at:at + len(payload)]
    return bytes(out)


def read_or_named(read, path: Path, name: str | None = None) -> object:
    """``read(path)``, or None after checking that the DataError it raised is one line naming the file."""
    try:
        return read(path)
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert (name or str(path)) in message, message
        return None


def _valid_files(folder: Path) -> dict[str, tuple[bytes, object]]:
    """One valid file per format and the reader that must survive its corrupt copies."""
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 9.0, size=(12, 16)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, depth, allow_pickle=False)
    mat5 = write_mat_v5(folder / "valid5.mat", {"Position3DGrid": rng.uniform(1, 80, (5, 7, 4))}).read_bytes()
    mat73 = write_mat_v73(folder / "valid73.mat", {"depths": depth}).read_bytes()
    return {
        "depth.npy": (buffer.getvalue(), lambda p: read_depth_metres(p, 1.0)),
        "rgb.png": (encode_png(random_rgb(rng, 12, 16)), read_rgb),
        "depth16.png": (encode_png(rng.integers(0, 60000, (12, 16)).astype(np.uint16)), read_depth_png),
        "rgb.jpg": (encode_jpeg(random_rgb(rng, 12, 16)), read_rgb),
        "grid5.mat": (mat5, lambda p: read_mat(p, ["Position3DGrid"])),
        "depth73.mat": (mat73, lambda p: read_mat(p, ["depths"])),
    }


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    return _valid_files(tmp_path_factory.mktemp("valid"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["depth.npy", "rgb.png", "depth16.png", "rgb.jpg", "grid5.mat", "depth73.mat"])
def test_a_corrupt_file_of_every_format_is_read_or_named_in_one_line(tmp_path, valid_files, name):
    data, read = valid_files[name]
    path = tmp_path / name

    @ATTACK_SETTINGS
    @given(steps=mutations)
    def check(steps):
        path.write_bytes(mutate(data, steps))
        result = read_or_named(read, path)
        if isinstance(result, np.ndarray):
            assert result.size > 0 and result.dtype.kind in "uif"

    check()


@pytest.mark.timeout(300)
@ATTACK_SETTINGS
@given(text=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_nyu_csv_bytes_give_pairs_inside_the_root_or_a_named_error(text):
    try:
        pairs = parse_pair_csv(text, "nyu2_test.csv")
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("nyu2_test.csv"), str(exc)
        return
    assert pairs
    for pair in pairs:
        for member in pair:
            assert not member.startswith("/") and ".." not in member.split("/") and "\x00" not in member


@pytest.fixture(scope="module")
def nyu_zip(tmp_path_factory):
    return make_nyu_zip(tmp_path_factory.mktemp("nyu"), n_train=1, n_test=2).root.read_bytes()


@pytest.mark.timeout(600)
def test_a_corrupt_nyu_zip_is_read_or_every_failure_names_the_archive(tmp_path, nyu_zip):
    path = tmp_path / "nyu_data.zip"

    @ATTACK_SETTINGS
    @given(steps=mutations)
    def check(steps):
        path.write_bytes(mutate(nyu_zip, steps))
        dataset = read_or_named(lambda p: get_dataset("nyu", p, split="test", input_size=(24, 32)), path)
        for index in range(len(dataset) if dataset is not None else 0):
            read_or_named(lambda p: dataset[index], path)

    check()


@pytest.fixture(scope="module")
def valid_tar(tmp_path_factory):
    return write_tar(tmp_path_factory.mktemp("tar") / "a.tar", {"Test134/img-a.jpg": b"jpeg" * 50,
                                                                "Test134/b/c.mat": b"m" * 300},
                     symlinks={"Test134/alias.jpg": "img-a.jpg"}, mode="w").read_bytes()


@pytest.mark.timeout(600)
def test_a_corrupt_tar_extracts_inside_its_root_or_is_refused_naming_it(tmp_path, valid_tar):
    path = tmp_path / "Test134.tar"
    counter = iter(range(10**9))

    @ATTACK_SETTINGS
    @given(steps=mutations)
    def check(steps):
        path.write_bytes(mutate(valid_tar, steps))
        target = tmp_path / f"out{next(counter)}"
        read_or_named(lambda p: safe_extract(p, target), path)
        outside = [p for p in tmp_path.iterdir() if p.name not in (path.name,) and not p.name.startswith("out")]
        assert not outside, outside
        for written in target.rglob("*") if target.exists() else ():
            assert written.resolve().is_relative_to(target.resolve()) or written.is_symlink()

    check()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_each_listed_corrupt_input_is_one_line_naming_the_file(tmp_path, name):
    attack = ATTACKS[name]
    message = first_error(attack, attack.build(tmp_path / "root"))
    assert "\n" not in message
    assert re.search(attack.expected, message), message
    assert str(tmp_path) in message or "nyu2_test.csv" in message, "the message names the file"


def test_skip_bad_reports_every_corrupt_item_by_name(tmp_path):
    from probe.data import BadItemLog

    root = tmp_path / "root"
    for stem, depth in (("a", np.zeros((0, 20))), ("b", np.ones((16, 20), np.complex64)),
                        ("c", np.ones((16, 20), np.float32))):
        buffer = io.BytesIO()
        np.save(buffer, depth, allow_pickle=False)
        (root / "train" / "image").mkdir(parents=True, exist_ok=True)
        (root / "train" / "depth").mkdir(parents=True, exist_ok=True)
        (root / "train" / "image" / f"{stem}.png").write_bytes(encode_png(np.zeros((16, 20, 3), np.uint8)))
        (root / "train" / "depth" / f"{stem}.npy").write_bytes(buffer.getvalue())
    dataset = get_dataset("folder", root, split="train", input_size=(16, 20), skip_bad=True)
    log = BadItemLog()
    log.update({"skipped": [dataset[0]["skipped"]]})  # item a: passes over a and b to reach c
    assert log.names == ["train/image/a.png", "train/image/b.png"]


def test_tar_escape_is_refused_without_the_interpreters_data_filter(tmp_path, monkeypatch):
    """Python before 3.10.12 / 3.11.4 has no tarfile.data_filter: probe's own checks must suffice."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = tmp_path / "chain.tar"
    with tarfile.open(archive, "w") as tar:
        for name, target in (("d", "."), ("p", "d/..")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    with pytest.raises(DataError, match=r"chain.tar: link 'p' -> 'd/\.\.' points outside"):
        safe_extract(archive, tmp_path / "out")
