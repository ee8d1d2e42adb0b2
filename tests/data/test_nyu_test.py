"""nyu_test: DenseDepth's nyu_test.zip read in place, item by item, with its inclusive crop file."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from probe.data import dataset_present, get_dataset
from probe.errors import DataError
from probe.metrics import DENSEDEPTH_NYU_CROP
from tests.data.nyu_test_fixture import make_nyu_test_zip, npy_bytes, random_nyu_test


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_items_are_the_arrays_as_stored_in_any_order(tmp_path, compression):
    path, rgb, depth = random_nyu_test(tmp_path / "nyu_test.zip", compression=compression)
    ds = get_dataset("nyu_test", path, split="test", input_size=(24, 32), depth_resolution="full")
    assert len(ds) == 3 and ds.crop == (2, 20, 3, 28) and "eigen_test_crop.npy" in ds.crop_source
    for i in (2, 0, 1):  # backwards too: a compressed member is re-read from its start
        item = ds[i]
        assert np.array_equal((item["image"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8), rgb[i])
        assert np.array_equal(item["depth"][0].numpy(), depth[i])
    assert ds[0]["depth"].shape == (1, 24, 32)
    assert get_dataset("nyu_test", path, split="test", input_size=(24, 32))[0]["depth"].shape == (1, 12, 16)


def test_root_may_be_the_zip_its_folder_or_the_extracted_arrays(tmp_path):
    path, _, depth = random_nyu_test(tmp_path / "nyu_test.zip")
    extracted = tmp_path / "x"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(extracted)
    for root in (path, tmp_path, extracted):
        assert dataset_present("nyu_test", root)
        ds = get_dataset("nyu_test", root, split="test", input_size=(24, 32), depth_resolution="full")
        assert np.array_equal(ds[1]["depth"][0].numpy(), depth[1])


def test_without_a_crop_file_the_protocol_keeps_densedepths_crop(tmp_path):
    path, _, _ = random_nyu_test(tmp_path / "nyu_test.zip", crop=None)
    ds = get_dataset("nyu_test", path, split="test")
    assert ds.crop == DENSEDEPTH_NYU_CROP and ds.crop_source.startswith("default")


@pytest.mark.parametrize("crop, fragment", [(np.array([1, 2, 3]), "4 integers"), (np.array([0, 30, 0, 5]), "outside"),
                                            (np.array([0.5, 2, 3, 4]), "4 integers")])
def test_a_bad_crop_file_is_a_one_line_error(tmp_path, crop, fragment):
    path, _, _ = random_nyu_test(tmp_path / "nyu_test.zip", crop=None)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("eigen_test_crop.npy", npy_bytes(crop))
    with pytest.raises(DataError, match=fragment):
        get_dataset("nyu_test", path, split="test")


def test_mismatched_or_pickled_arrays_are_refused(tmp_path):
    rgb = np.zeros((2, 4, 6, 3), np.uint8)
    with pytest.raises(DataError, match="eigen_test_depth.npy.*matching the RGB"):
        get_dataset("nyu_test", make_nyu_test_zip(tmp_path / "a.zip", rgb, np.zeros((3, 4, 6), np.float32)), split="test")
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        import io
        buffer = io.BytesIO()
        np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        archive.writestr("eigen_test_rgb.npy", buffer.getvalue())
        archive.writestr("eigen_test_depth.npy", npy_bytes(np.zeros((1, 4, 6), np.float32)))
    with pytest.raises(DataError, match="C-ordered numeric array"):
        get_dataset("nyu_test", tmp_path / "b.zip", split="test")


def test_only_the_test_split_exists(tmp_path):
    path, _, _ = random_nyu_test(tmp_path / "nyu_test.zip")
    with pytest.raises(DataError, match="test split only"):
        get_dataset("nyu_test", path, split="train")
