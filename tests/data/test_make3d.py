"""Make3D reader: pairing by stem, Position3DGrid channel 4, the Monodepth 2:1 crop, the 70 m cap."""

from __future__ import annotations

import numpy as np
import pytest

from probe.data import dataset_present, get_dataset
from probe.data.make3d import monodepth_crop
from probe.errors import DataError, ProbeError
from tests.data.fixtures import corrupt_bytes, make_make3d, write_mat_v5


@pytest.fixture(scope="module")
def make3d(tmp_path_factory):
    return make_make3d(tmp_path_factory.mktemp("make3d"))


def test_uncropped_depth_is_channel_four_of_the_grid_exactly(make3d):
    ds = get_dataset("make3d", make3d.root, split="train", crop="full")
    assert len(ds) == 2
    for k, stem in enumerate(make3d.stems["train"]):
        raw = ds.load_raw(k)
        np.testing.assert_array_equal(raw.depth, make3d.grids[stem])
        assert raw.image.shape == (64, 48, 3)
        assert raw.name == f"make3d/train/{stem}"


def test_monodepth_crop_matches_published_rows_for_real_sizes():
    image = np.zeros((2272, 1704, 3), np.uint8)
    image[710:1562] = 1
    grid = np.zeros((55, 305), np.float32)
    grid[17:38] = 1
    out_image, out_grid = monodepth_crop(image, grid)
    assert out_image.shape == (852, 1704, 3) and out_image.min() == 1
    assert out_grid.shape == (21, 305) and out_grid.min() == 1


def test_monodepth_crop_keeps_the_central_rows_of_image_and_grid(make3d):
    ds = get_dataset("make3d", make3d.root, split="test")
    raw = ds.load_raw(0)
    stem = make3d.stems["test"][0]
    assert raw.image.shape == (24, 48, 3)  # 64x48 portrait -> 2:1, rows 20..43
    keep = round(16 * 24 / 64)  # 6 of 16 grid rows
    top = (16 - keep) // 2
    np.testing.assert_array_equal(raw.depth, make3d.grids[stem][top:top + keep])
    assert ds.input_size == (256, 512) and ds.info.depth_scale == 1.0


def test_depth_beyond_70m_is_invalid(make3d):
    ds = get_dataset("make3d", make3d.root, split="train", crop="full", input_size=(16, 24))
    item = ds[0]
    grid = make3d.grids[make3d.stems["train"][0]]
    assert item["depth"].shape == (1, 16, 24)
    np.testing.assert_array_equal(item["valid"][0].numpy(), grid <= 70.0)
    assert item["depth"].max() <= 70.0 and ds.info.max_depth == 70.0 and ds.info.eval_protocol == "make3d"


def test_both_published_test_depth_folder_names_are_found(tmp_path):
    fx = make_make3d(tmp_path, test_depth_folder="Test134Depth")
    ds = get_dataset("make3d", fx.root, split="test", crop="full")
    np.testing.assert_array_equal(ds.load_raw(0).depth, fx.grids[fx.stems["test"][0]])


def test_missing_partner_and_corrupt_mat_are_named_and_skippable(tmp_path):
    fx = make_make3d(tmp_path, train=("a", "b", "c"))
    fx.depth_paths["a"].unlink()
    fx.depth_paths["b"].write_bytes(corrupt_bytes(fx.depth_paths["b"].read_bytes()))
    ds = get_dataset("make3d", fx.root, split="train")
    with pytest.raises(DataError, match=r"img-a.jpg: no partner depth_sph_corr-a.mat"):
        ds.load_raw(0)
    with pytest.raises(DataError, match=r"depth_sph_corr-b.mat: cannot read MATLAB"):
        ds.load_raw(1)
    tolerant = get_dataset("make3d", fx.root, split="train", skip_bad=True, input_size=(8, 16))
    # item 0 passes over a and b (both bad) to reach c: both are reported
    assert [tolerant[k]["skipped"] for k in range(3)] == ["make3d/train/a\nmake3d/train/b", "make3d/train/b", ""]


def test_grid_without_depth_channel_is_named(tmp_path):
    fx = make_make3d(tmp_path, train=("a",), test=())
    write_mat_v5(fx.depth_paths["a"], {"Position3DGrid": np.ones((4, 5, 3))})
    with pytest.raises(DataError, match=r"Position3DGrid must be rows x cols x 4"):
        get_dataset("make3d", fx.root, split="train").load_raw(0)


def test_root_without_make3d_folders_names_expected_files(tmp_path):
    assert not dataset_present("make3d", tmp_path)
    with pytest.raises(DataError, match=r"Train400Img/img-\*.jpg.*Train400Img.tar.gz"):
        get_dataset("make3d", tmp_path)


def test_unknown_crop_lists_the_known_ones(make3d):
    with pytest.raises(ProbeError, match="expected one of: full, monodepth"):
        get_dataset("make3d", make3d.root, crop="square")
