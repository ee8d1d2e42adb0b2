"""Folder reader: glob patterns, 16-bit PNG x depth_scale or .npy metres, pairing by stem or order."""

from __future__ import annotations

import numpy as np
import pytest

from probe.data import dataset_present, get_dataset
from probe.errors import DataError, ProbeError
from tests.data.fixtures import corrupt_bytes, make_folder


def test_png_depth_is_value_times_depth_scale_exactly(tmp_path):
    fx = make_folder(tmp_path, depth_scale=1 / 256)
    ds = get_dataset("folder", tmp_path, split="test", depth_scale=1 / 256)
    assert len(ds) == 3 and dataset_present("folder", tmp_path)
    for k in range(3):
        np.testing.assert_array_equal(ds.load_raw(k).depth, fx.depth["test"][k])


def test_npy_depth_is_metres_and_nan_is_invalid(tmp_path):
    fx = make_folder(tmp_path, depth_format=".npy", size=(16, 20))
    ds = get_dataset("folder", tmp_path, split="train", input_size=(16, 20))
    np.testing.assert_array_equal(ds.load_raw(2).depth, fx.depth["train"][2])
    item = ds[0]
    assert item["depth"].shape == (1, 16, 20) and not item["valid"][0, 0, 0] and item["valid"][0, 1:, :].all()


def test_max_depth_option_sets_the_cap(tmp_path):
    make_folder(tmp_path)
    ds = get_dataset("folder", tmp_path, split="train", input_size=(16, 20), max_depth=5.0)
    item = ds[0]
    assert ds.info.max_depth == 5.0 and float(item["depth"].max()) <= 5.0
    raw = ds.load_raw(0).depth
    np.testing.assert_array_equal(item["valid"][0].numpy(), (raw > 0) & (raw <= 5.0))


def test_custom_globs_without_split_and_pairing_by_order(tmp_path):
    make_folder(tmp_path)
    for k, path in enumerate(sorted((tmp_path / "train" / "depth").iterdir())):
        path.rename(path.with_name(f"d{k}_depth.png"))
    ds = get_dataset("folder", tmp_path, image_glob="train/image/*.jpg", depth_glob="train/depth/*.png",
                     pair_by="order")
    assert len(ds) == 3 and ds.item_name(1) == "train/image/001.jpg"
    by_stem = get_dataset("folder", tmp_path, image_glob="train/image/*.jpg", depth_glob="train/depth/*.png")
    with pytest.raises(DataError, match=r"000.jpg: no depth file with the same stem"):
        by_stem.load_raw(0)


def test_mismatched_counts_name_both_counts_and_the_folder(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "train" / "depth" / "001.png").unlink()
    with pytest.raises(DataError, match=rf"{tmp_path}: 3 images .* but 2 depth files"):
        get_dataset("folder", tmp_path, pair_by="order")


def test_corrupt_depth_is_named_and_skipped(tmp_path):
    make_folder(tmp_path)
    bad = tmp_path / "train" / "depth" / "001.png"
    bad.write_bytes(corrupt_bytes(bad.read_bytes()))
    with pytest.raises(DataError, match="001.png: cannot decode"):
        get_dataset("folder", tmp_path).load_raw(1)
    tolerant = get_dataset("folder", tmp_path, skip_bad=True, input_size=(8, 8))
    assert tolerant[1]["skipped"] == "train/image/001.jpg" and tolerant[1]["name"] == "train/image/002.jpg"


def test_bad_options_are_named(tmp_path):
    make_folder(tmp_path)
    with pytest.raises(ProbeError, match="depth_scale"):
        get_dataset("folder", tmp_path, depth_scale=0)
    with pytest.raises(ProbeError, match="unknown pairing 'name'"):
        get_dataset("folder", tmp_path, pair_by="name")
    with pytest.raises(DataError, match="no images match"):
        get_dataset("folder", tmp_path, image_glob="nothing/*", depth_glob="none/*")
