"""A corrupt file stops training with its name, unless --skip-bad, which trains on and reports it."""

from __future__ import annotations

import json

from tests.data.fixtures import make_folder


def _corrupt_one(root):
    bad = sorted((root / "train" / "image").iterdir())[1]
    bad.write_bytes(b"not a jpeg")
    return bad


def test_a_corrupt_training_file_is_named_in_a_one_line_error(tmp_path, run_cli):
    make_folder(tmp_path / "data", n=4)
    bad = _corrupt_one(tmp_path / "data")
    res = run_cli("train", "--model", "densedepth", "--width", "0.0625", "--dataset", "folder",
                  "--data-root", tmp_path / "data", "--input-size", "32x32", "--batch-size", "4",
                  "--max-steps", "1", "--device", "cpu", "--no-augment", "--out", tmp_path / "run")
    assert res.code == 2 and res.err.count("\n") == 1 and bad.name in res.err


def test_skip_bad_trains_on_and_lists_the_bad_file(tmp_path, run_cli):
    make_folder(tmp_path / "data", n=4)
    bad = _corrupt_one(tmp_path / "data")
    res = run_cli("train", "--model", "densedepth", "--width", "0.0625", "--dataset", "folder",
                  "--data-root", tmp_path / "data", "--input-size", "32x32", "--batch-size", "4",
                  "--max-steps", "1", "--device", "cpu", "--no-augment", "--skip-bad",
                  "--data-option", "pair_by=order", "--out", tmp_path / "run")
    assert res.code == 0, res
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    assert summary["bad_items"]["count"] == 1
    assert any(bad.stem in name for name in summary["bad_items"]["names"])
