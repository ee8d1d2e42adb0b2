"""KITTI reader: 16-bit ground truth / 256, the three split-list formats, missing GT, benchmark crop."""

from __future__ import annotations

import numpy as np
import pytest

from probe.data import dataset_present, get_dataset
from probe.data.kitti import benchmark_crop, parse_split_list
from probe.errors import DataError
from tests.data.fixtures import encode_png, kitti_list_line, make_kitti, write


@pytest.mark.parametrize("fmt", ["monodepth", "monodepth2", "bts"])
def test_every_list_format_loads_gt_as_value_over_256_exactly(tmp_path, fmt):
    fx = make_kitti(tmp_path, fmt=fmt)
    ds = get_dataset("kitti", fx.root, split="train")
    assert len(ds) == 2
    for k in range(len(ds)):
        raw = ds.load_raw(k)
        np.testing.assert_array_equal(raw.depth, fx.depth[raw.name])
        assert raw.image.shape == (20, 64, 3)


def test_zero_is_invalid_and_beyond_80m_is_invalid(tmp_path):
    fx = make_kitti(tmp_path)
    ds = get_dataset("kitti", fx.root, split="test", input_size=(20, 64))
    item = ds[0]
    expected = fx.depth[item["name"]]
    np.testing.assert_array_equal(item["valid"][0].numpy(), (expected > 0) & (expected <= 80.0))
    assert ds.info.max_depth == 80.0 and ds.info.eval_protocol == "kitti" and ds.info.input_size == (192, 640)


def test_explicit_split_file_and_val_ground_truth_folder(tmp_path):
    fx = make_kitti(tmp_path, gt_subset="val")
    custom = write(tmp_path / "lists" / "mine.txt", (fx.lines["train"][1] + "\n").encode())
    ds = get_dataset("kitti", fx.root, split="test", split_file=custom)
    assert len(ds) == 1
    np.testing.assert_array_equal(ds.load_raw(0).depth, fx.depth[ds.item_name(0)])


def test_frame_without_ground_truth_is_named_and_skippable(tmp_path):
    fx = make_kitti(tmp_path)
    extra = kitti_list_line("2011_09_26", "2011_09_26_drive_0001_sync", 7, "monodepth")
    write(tmp_path / "2011_09_26" / "2011_09_26_drive_0001_sync" / "image_02" / "data" / "0000000007.png",
          encode_png(np.zeros((20, 64, 3), np.uint8)))
    (tmp_path / "eigen_test_files.txt").write_text(fx.lines["test"][0] + "\n" + extra + "\n")
    ds = get_dataset("kitti", fx.root, split="test")
    with pytest.raises(DataError, match=r"0000000007.png: no ground truth .*image_02/0000000007.png"):
        ds.load_raw(1)
    tolerant = get_dataset("kitti", fx.root, split="test", skip_bad=True, input_size=(8, 16))
    assert tolerant[1]["skipped"] == "2011_09_26/2011_09_26_drive_0001_sync/image_02/0000000007"


def test_bts_lines_declaring_no_gt_are_dropped_and_counted(tmp_path):
    lines = ["2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png None 721.5377",
             kitti_list_line("2011_09_26", "2011_09_26_drive_0002_sync", 70, "bts"), ""]
    frames, dropped = parse_split_list(write(tmp_path / "l.txt", "\n".join(lines).encode()))
    assert dropped == 1 and len(frames) == 1 and frames[0].frame == "0000000070"


def test_unrecognised_list_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "eigen_train_files.txt", b"2011_09_26/x/image_02/data/0000000001.jpg\nnot a kitti line at all\n")
    with pytest.raises(DataError, match=r"eigen_train_files.txt, line 2: unrecognised entry"):
        parse_split_list(path)


def test_eight_bit_ground_truth_is_rejected_by_name(tmp_path):
    fx = make_kitti(tmp_path)
    gt = next(tmp_path.rglob("groundtruth/image_02/0000000012.png"))
    gt.write_bytes(encode_png(np.ones((20, 64), np.uint8)))
    with pytest.raises(DataError, match=r"0000000012.png: expected a 16-bit depth PNG"):
        get_dataset("kitti", fx.root, split="test").load_raw(0)


def test_benchmark_crop_keeps_bottom_352_rows_and_central_1216_columns():
    image = np.arange(375 * 1242, dtype=np.int64).reshape(375, 1242)
    rgb = np.stack([image] * 3, axis=-1)
    out_rgb, out_depth = benchmark_crop(rgb, image.astype(np.float32), "frame")
    assert out_depth.shape == (352, 1216) and out_rgb.shape == (352, 1216, 3)
    assert out_depth[0, 0] == 23 * 1242 + 13 and out_depth[-1, -1] == 374 * 1242 + 13 + 1215


def test_kb_crop_on_a_small_frame_is_named(tmp_path):
    fx = make_kitti(tmp_path)
    ds = get_dataset("kitti", fx.root, split="test", kb_crop=True)
    assert ds.input_size == (352, 1216)
    with pytest.raises(DataError, match="kb_crop needs"):
        ds.load_raw(0)


def test_root_without_lists_names_expected_files_and_registration(tmp_path):
    assert not dataset_present("kitti", tmp_path)
    with pytest.raises(DataError, match=r"eigen_train_files.txt.*registration required"):
        get_dataset("kitti", tmp_path)
