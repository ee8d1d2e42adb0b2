"""KITTI raw sequences: P_rect intrinsics, OXTS speed, timestamp intervals, windows, split lists, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probe.data import dataset_present, get_dataset
from probe.data.kitti_raw import read_timestamps
from probe.errors import DataError, ProbeError
from probe.geometry import scale_intrinsics
from tests.data.fixtures import encode_png, make_kitti_raw, write


def test_windows_carry_p_rect_intrinsics_oxts_speed_and_timestamp_intervals(tmp_path):
    fx = make_kitti_raw(tmp_path, n=5)
    ds = get_dataset("kitti_raw", fx.root, input_size=fx.size)
    assert len(ds) == 3  # frames 1..3 have both neighbours
    assert ds.item_name(0).endswith("image_02/0000000001")
    item = ds[1]  # target frame 2
    np.testing.assert_allclose(item["K"].numpy(), fx.K, rtol=1e-5)
    assert float(item["speed"]) == pytest.approx(float(np.linalg.norm(fx.velocity[2])), rel=1e-6)
    assert bool(item["speed_valid"])
    expected_dt = [fx.stamps[1] - fx.stamps[2], fx.stamps[3] - fx.stamps[2]]
    np.testing.assert_allclose(item["context_dt"].numpy(), expected_dt, atol=1e-6)
    assert float(item["dt"]) == pytest.approx((fx.stamps[-1] - fx.stamps[0]) / 4, abs=1e-6)
    assert item["context"].shape == (2, 3, *fx.size) and item["context_offsets"].tolist() == [-1, 1]
    assert not item["valid"].any() and "poses" not in item  # no labels, no ground-truth poses in raw KITTI


def test_intrinsics_follow_the_resize(tmp_path):
    fx = make_kitti_raw(tmp_path)
    ds = get_dataset("kitti_raw", fx.root, input_size=(24, 60))
    expected = scale_intrinsics(torch.tensor(fx.K), 60 / fx.size[1], 24 / fx.size[0])
    torch.testing.assert_close(ds[0]["K"], expected.float())
    assert ds[0]["image"].shape == (3, 24, 60)


def test_timestamps_keep_sub_millisecond_intervals(tmp_path):
    path = write(tmp_path / "t.txt", b"2011-09-26 13:02:25.964389445\n2011-09-26 13:02:26.068091477\n")
    assert read_timestamps(path)[1] == pytest.approx(0.103702032, abs=1e-6)


def test_a_split_list_selects_frames_and_wider_contexts_need_wider_windows(tmp_path):
    fx = make_kitti_raw(tmp_path, n=6)
    listed = write(tmp_path / "split.txt", f"{fx.drive} 0 l\n{fx.drive} 2 l\n{fx.drive} 4 l\n".encode())
    ds = get_dataset("kitti_raw", fx.root, split_file=listed, input_size=fx.size)
    assert [ds.item_name(i)[-1] for i in range(len(ds))] == ["2", "4"]  # frame 0 has no predecessor
    wide = get_dataset("kitti_raw", fx.root, context="-2,2", input_size=fx.size)
    assert [wide.item_name(i)[-1] for i in range(len(wide))] == ["2", "3"]


def test_annotated_ground_truth_is_used_when_present(tmp_path):
    fx = make_kitti_raw(tmp_path)
    counts = np.full(fx.size, 10 * 256, np.uint16)
    counts[0, 0] = 0
    drive = fx.drive.split("/")[1]
    write(tmp_path / "data_depth_annotated" / "train" / drive / "proj_depth" / "groundtruth" / "image_02"
          / "0000000001.png", encode_png(counts))
    item = get_dataset("kitti_raw", fx.root, input_size=fx.size)[0]
    assert float(item["depth"][0, 1, 1]) == 10.0 and not bool(item["valid"][0, 0, 0])


def test_missing_and_malformed_files_are_named(tmp_path):
    fx = make_kitti_raw(tmp_path)
    (tmp_path / fx.drive / "oxts" / "data" / "0000000002.txt").unlink()
    ds = get_dataset("kitti_raw", fx.root, input_size=fx.size)
    with pytest.raises(DataError, match=r"oxts/data/0000000002.txt: OXTS record .* not found"):
        ds.load_raw(1)
    assert get_dataset("kitti_raw", fx.root, input_size=fx.size, skip_bad=True)[1]["skipped"].endswith("0000000002")
    calib = tmp_path / "2011_09_26" / "calib_cam_to_cam.txt"
    calib.write_text(calib.read_text().replace("P_rect_02", "P_rect_09"))
    with pytest.raises(DataError, match="calib_cam_to_cam.txt: needs P_rect_02"):
        get_dataset("kitti_raw", fx.root, input_size=fx.size).load_raw(0)


def test_an_image_of_the_wrong_size_contradicts_the_calibration(tmp_path):
    fx = make_kitti_raw(tmp_path)
    write(tmp_path / fx.drive / "image_02" / "data" / "0000000000.png", encode_png(np.zeros((5, 5, 3), np.uint8)))
    with pytest.raises(DataError, match="0000000000.png: image is 5x5, but .* gives S_rect 12x40"):
        get_dataset("kitti_raw", fx.root, input_size=fx.size).load_raw(0)


def test_found_only_where_the_raw_layout_is(tmp_path):
    assert not dataset_present("kitti_raw", tmp_path)
    make_kitti_raw(tmp_path)
    assert dataset_present("kitti_raw", tmp_path)
    with pytest.raises(ProbeError, match="unknown option"):
        get_dataset("kitti_raw", tmp_path, colour=1)


def test_self_supervised_training_reads_kitti_raw(tmp_path):
    from probe.training import TrainConfig, train

    fx = make_kitti_raw(tmp_path / "kitti", n=6, size=(16, 48))
    result = train(TrainConfig(model="densedepth", width=0.0625, dataset="kitti_raw", data_root=fx.root,
                               input_size=(16, 48), batch_size=2, max_steps=2, objective="self_supervised",
                               velocity_weight=0.1, pose_width=0.25, device="cpu", workers=0, out=tmp_path / "run"))
    assert result.steps == 2
