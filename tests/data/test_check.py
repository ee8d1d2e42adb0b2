"""`probe data check`: counts, resolutions, depth range, every bad file, non-zero exit when any."""

from __future__ import annotations

import numpy as np
import pytest

from probe.data.check import check_dataset
from probe.errors import DataError, ProbeError
from tests.data.fixtures import make_make3d, make_nyu_zip


def test_clean_dataset_reports_counts_sizes_and_range(tmp_path):
    fx = make_nyu_zip(tmp_path, n_train=3, n_test=2, size=(24, 32))
    report = check_dataset("nyu", fx.root, split="all", progress=False)
    assert report.ok and [s.count for s in report.splits] == [3, 2]
    test = report.splits[1]
    assert test.image_sizes == {"24x32": 2} and test.depth_sizes == {"24x32": 2}
    values = np.concatenate([d[d > 0] for d in fx.depth["test"]])
    assert test.depth_min == pytest.approx(values.min()) and test.depth_max == pytest.approx(values.max())
    text = report.format()
    assert "test: 2 items, 0 bad" in text and "24x32 (2)" in text and text.endswith("ok")
    report.raise_if_bad()


def test_every_bad_file_is_listed_and_the_check_fails(tmp_path):
    fx = make_nyu_zip(tmp_path, broken=True)
    report = check_dataset("nyu", fx.root, split="train", progress=False)
    assert not report.ok and report.splits[0].count == 5
    assert len(report.bad) == 2
    assert any("room_0009_out/1.png: file not found" in b for b in report.bad)
    assert any("room_0009_out/2.jpg: cannot decode" in b for b in report.bad)
    with pytest.raises(ProbeError, match="2 bad file"):
        report.raise_if_bad()


def test_workers_give_the_same_report(tmp_path):
    fx = make_nyu_zip(tmp_path, broken=True)
    serial = check_dataset("nyu", fx.root, split="train", progress=False)
    parallel = check_dataset("nyu", fx.root, split="train", workers=2, progress=False)
    assert serial == parallel


def test_a_split_that_cannot_open_is_bad_but_the_other_is_checked(tmp_path):
    fx = make_make3d(tmp_path, train=("a",), test=("b",))
    for path in (fx.image_paths["a"], fx.depth_paths["a"]):
        path.unlink()
    report = check_dataset("make3d", fx.root, split="all", progress=False)
    assert report.splits[1].count == 1 and not report.splits[1].bad
    assert len(report.splits[0].bad) == 1 and "make3d (train)" in report.splits[0].bad[0]
    assert not report.ok


def test_missing_root_raises_naming_expected_files(tmp_path):
    with pytest.raises(DataError, match="nyu_data.zip"):
        check_dataset("nyu", tmp_path / "absent", progress=False)
    with pytest.raises(ProbeError, match="--split"):
        check_dataset("nyu", tmp_path, split="val")


def test_cli_check_prints_report_and_exits_nonzero_on_bad_files(tmp_path, run_cli):
    good = make_nyu_zip(tmp_path / "good")
    res = run_cli("data", "check", "nyu", "--data-root", good.root, "--split", "test")
    assert res.code == 0, res
    assert "test: 2 items, 0 bad" in res.out
    bad = make_nyu_zip(tmp_path / "bad", broken=True)
    res = run_cli("data", "check", "nyu", "--data-root", bad.root)
    assert res.code == 2, res
    assert "room_0009_out/1.png: file not found" in res.out and "2 bad file(s)" in res.err


def test_cli_check_passes_dataset_options(tmp_path, run_cli):
    fx = make_make3d(tmp_path, train=("a",), test=("b",))
    res = run_cli("data", "check", "make3d", "--data-root", fx.root, "--split", "test", "--option", "crop=full")
    assert res.code == 0, res
    assert "64x48 (1)" in res.out  # uncropped portrait image
