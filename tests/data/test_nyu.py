"""NYU readers: DenseDepth's nyu_data.zip (in place or extracted) and the labeled v7.3 .mat."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from probe.data import BadItemLog, dataset_present, get_dataset
from probe.errors import DataError
from tests.data.fixtures import make_nyu_labeled, make_nyu_zip, write_mat_v5


@pytest.fixture(scope="module")
def nyu_zip(tmp_path_factory):
    return make_nyu_zip(tmp_path_factory.mktemp("nyu"))


def test_test_split_depth_is_16bit_millimetres_exactly(nyu_zip):
    ds = get_dataset("nyu", nyu_zip.root, split="test")
    assert len(ds) == 2
    for k in range(len(ds)):
        raw = ds.load_raw(k)
        np.testing.assert_array_equal(raw.depth, nyu_zip.depth["test"][k])
        assert raw.name == nyu_zip.pairs["test"][k][0]


def test_train_split_depth_is_8bit_times_ten_over_255(nyu_zip):
    ds = get_dataset("nyu", nyu_zip.root, split="train")
    for k in range(len(ds)):
        raw = ds.load_raw(k)
        counts = nyu_zip.counts["train"][k]
        hit = counts > 0
        assert np.abs(raw.depth[hit] - np.clip(counts[hit] * 10.0 / 255.0, 0.1, 10.0)).max() <= 10.0 / 255.0
        np.testing.assert_allclose(raw.depth, nyu_zip.depth["train"][k], rtol=1e-6)


def test_depth_is_clamped_to_densedepth_range_and_holes_stay_invalid(nyu_zip):
    raw = get_dataset("nyu", nyu_zip.root, split="test").load_raw(0)
    assert raw.depth[1, 1] == pytest.approx(0.1) and raw.depth[1, 2] == pytest.approx(10.0)
    assert np.all(raw.depth[0, :3] == 0)
    assert raw.depth[raw.depth > 0].min() >= 0.1 and raw.depth.max() <= 10.0


def test_item_has_contract_shapes_and_valid_marks_holes(nyu_zip):
    ds = get_dataset("nyu", nyu_zip.root, split="test", input_size=(24, 32))
    item = ds[0]
    assert item["image"].shape == (3, 24, 32) and item["image"].dtype == torch.float32
    assert item["depth"].shape == (1, 12, 16) and item["valid"].dtype == torch.bool
    assert torch.equal(item["valid"], item["depth"] > 0)
    assert ds.info.input_size == (480, 640) and ds.info.depth_scale == 0.5 and ds.info.eval_protocol == "nyu"


def test_root_may_be_zip_folder_holding_it_or_extracted_folder(tmp_path, nyu_zip):
    extracted = make_nyu_zip(tmp_path / "x", extracted=True)
    for root in (nyu_zip.root, nyu_zip.root.parent, extracted.root, extracted.root / "data"):
        assert dataset_present("nyu", root)
        ds = get_dataset("nyu", root, split="test")
        np.testing.assert_array_equal(ds.load_raw(1).depth, nyu_zip.depth["test"][1])


def test_zip_is_read_in_separate_dataloader_workers(nyu_zip):
    ds = get_dataset("nyu", nyu_zip.root, split="train", input_size=(24, 32))
    ds.load_raw(0)  # open the archive in the parent first: workers must not reuse that handle
    loader = DataLoader(ds, batch_size=1, num_workers=2, shuffle=False)
    names = [batch["name"][0] for batch in loader]
    assert names == [p[0] for p in nyu_zip.pairs["train"]]


def test_missing_and_corrupt_files_are_named_and_skipped_under_skip_bad(tmp_path):
    fx = make_nyu_zip(tmp_path, broken=True)
    ds = get_dataset("nyu", fx.root, split="train")
    missing, truncated = len(ds) - 2, len(ds) - 1
    with pytest.raises(DataError, match="room_0009_out/1.png: file not found"):
        ds.load_raw(missing)
    with pytest.raises(DataError, match="room_0009_out/2.jpg: cannot decode"):
        ds[truncated]
    tolerant = get_dataset("nyu", fx.root, split="train", skip_bad=True, input_size=(24, 32))
    log = BadItemLog()
    for k in range(len(tolerant)):
        log.update({"skipped": [tolerant[k]["skipped"]]})
    assert sorted(set(log.names)) == sorted([fx.pairs["train"][missing][0], fx.pairs["train"][truncated][0]])


def test_root_without_the_archive_names_expected_files_and_source(tmp_path):
    with pytest.raises(DataError, match=r"nyu_data.zip.*densedepth/nyu_data.zip"):
        get_dataset("nyu", tmp_path)
    assert not dataset_present("nyu", tmp_path)


def test_corrupt_archive_given_as_root_is_named(tmp_path):
    bad = tmp_path / "nyu_data.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"nyu_data.zip: not a readable zip archive"):
        get_dataset("nyu", bad)


def test_malformed_csv_row_names_file_and_line(tmp_path):
    fx = make_nyu_zip(tmp_path, extracted=True)
    (fx.root / "data" / "nyu2_test.csv").write_text("a.png,b.png\nonly-one-column\n")
    with pytest.raises(DataError, match=r"nyu2_test.csv, line 2"):
        get_dataset("nyu", fx.root, split="test")


# -- nyu_labeled ---------------------------------------------------------------------------------

def test_labeled_split_selects_one_based_indices_and_transposes_back(tmp_path):
    fx = make_nyu_labeled(tmp_path)
    for split, indices in (("train", fx.train), ("test", fx.test)):
        ds = get_dataset("nyu_labeled", tmp_path, split=split)
        assert len(ds) == len(indices)
        for k, one_based in enumerate(indices):
            raw = ds.load_raw(k)
            np.testing.assert_array_equal(raw.image, fx.images[one_based - 1])
            np.testing.assert_array_equal(raw.depth, fx.depths[one_based - 1])
            assert raw.name.endswith(f"#{one_based}")


def test_labeled_depth_beyond_cap_is_invalid_and_root_may_be_the_mat(tmp_path):
    make_nyu_labeled(tmp_path, size=(12, 16))
    ds = get_dataset("nyu_labeled", tmp_path / "nyu_depth_v2_labeled.mat", split="test", input_size=(24, 32))
    item = ds[0]
    assert item["depth"].shape == (1, 12, 16)
    assert not item["valid"][0, 0, 0] and item["depth"][0, 0, 0] == 0


def test_labeled_split_out_of_range_is_named(tmp_path):
    make_nyu_labeled(tmp_path, n=4, train=(1, 2), test=(3, 4))
    write_mat_v5(tmp_path / "splits.mat", {"trainNdxs": np.array([[1.0], [9.0]]), "testNdxs": np.array([[3.0]])})
    with pytest.raises(DataError, match=r"splits.mat: trainNdxs .* within 1..4"):
        get_dataset("nyu_labeled", tmp_path, split="train")


def test_labeled_missing_splits_names_both_files(tmp_path):
    make_nyu_labeled(tmp_path)
    (tmp_path / "splits.mat").unlink()
    with pytest.raises(DataError, match=r"nyu_depth_v2_labeled.mat, splits.mat"):
        get_dataset("nyu_labeled", tmp_path)


def test_labeled_corrupt_mat_is_named(tmp_path):
    make_nyu_labeled(tmp_path)
    (tmp_path / "nyu_depth_v2_labeled.mat").write_bytes(b"MATLAB 7.3 MAT-file" + b"\0" * 600)
    with pytest.raises(DataError, match="nyu_depth_v2_labeled.mat: cannot open"):
        get_dataset("nyu_labeled", tmp_path)
