"""The shared dataset pipeline: sizes, validity, augmentation, determinism, bad items, workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from probe.data import BadItemLog, DatasetInfo, DepthDataset, RawSample, dataset_info, dataset_present, get_dataset, list_datasets
from probe.errors import DataError, ProbeError

INFO = DatasetInfo(name="toy", description="in-test dataset", min_depth=0.1, max_depth=10.0, input_size=(8, 12),
                   depth_scale=0.5, eval_protocol="none", source="the test", needs_root=False)


class ToyDataset(DepthDataset):
    """Raw image 16x24 whose red channel encodes the column; raw depth 8x12 with every kind of hole."""

    def __init__(self, n: int = 6, bad: tuple[int, ...] = (), **options) -> None:
        super().__init__(INFO, **options)
        self.n, self.bad = n, set(bad)

    def __len__(self) -> int:
        return self.n

    def load_raw(self, index: int) -> RawSample:
        if index in self.bad:
            raise DataError(f"{self.item_name(index)}: corrupt file")
        image = np.zeros((16, 24, 3), np.float32)
        image[..., 0] = np.arange(24) / 24.0
        image[..., 1] = index / 10.0
        image[..., 2] = 0.5
        depth = np.tile(1.0 + np.arange(12, dtype=np.float32) * 0.5, (8, 1))  # 1.0 .. 6.5 m, rising to the right
        depth[0, :6] = [np.nan, np.inf, -np.inf, 0.0, -2.0, 10.5]
        return RawSample(image, depth, self.item_name(index))


def test_items_follow_the_contract():
    ds = ToyDataset(input_size=(8, 12))
    item = ds[2]
    assert item["image"].shape == (3, 8, 12) and item["image"].dtype == torch.float32
    assert item["depth"].shape == (1, 4, 6) and item["depth"].dtype == torch.float32
    assert item["valid"].shape == (1, 4, 6) and item["valid"].dtype == torch.bool
    assert item["name"] == "toy/train/2" and item["skipped"] == ""
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0


def test_invalid_depth_becomes_zero_and_is_masked():
    ds = ToyDataset(input_size=(16, 24))  # depth grid 8x12 = the raw grid: no resize
    item = ds[0]
    depth, valid = item["depth"][0], item["valid"][0]
    assert valid[0, :6].tolist() == [False] * 6  # NaN, inf, -inf, 0, negative, beyond the 10 m cap
    assert torch.all(depth[0, :6] == 0)
    assert torch.all(valid[1:]) and torch.all(valid[0, 6:])
    assert torch.equal(valid, depth > 0)


def test_depth_resize_is_nearest_so_values_are_raw_values():
    ds = ToyDataset(input_size=(6, 10))
    depth = ds[1]["depth"]
    assert depth.shape == (1, 3, 5)
    raw = set((1.0 + np.arange(12) * 0.5).tolist()) | {0.0}
    assert set(depth.flatten().tolist()) <= raw


def test_augmentation_flips_image_depth_and_mask_together():
    plain = ToyDataset(input_size=(16, 24))
    aug = ToyDataset(input_size=(16, 24), augment=True, seed=5)
    flips = 0
    for i in range(len(aug)):
        a, p = aug[i], plain[i]
        flipped = not torch.equal(a["depth"], p["depth"])
        flips += flipped
        assert torch.equal(a["depth"], p["depth"].flip(-1) if flipped else p["depth"])
        assert torch.equal(a["valid"], p["valid"].flip(-1) if flipped else p["valid"])
        geometric = p["image"].flip(-1) if flipped else p["image"]
        for c in range(3):
            assert any(torch.equal(a["image"][c], geometric[k]) for k in range(3))
    assert 0 < flips < len(aug)


def test_augmentation_is_seeded_per_seed_epoch_and_index():
    def images(seed: int, epoch: int) -> list[torch.Tensor]:
        ds = ToyDataset(n=12, input_size=(16, 24), augment=True, seed=seed)
        ds.set_epoch(epoch)
        return [ds[i]["image"] for i in range(len(ds))]

    first = images(1, 0)
    assert all(torch.equal(a, b) for a, b in zip(first, images(1, 0)))
    assert not all(torch.equal(a, b) for a, b in zip(first, images(1, 1)))
    assert not all(torch.equal(a, b) for a, b in zip(first, images(2, 0)))


def test_skip_bad_replaces_a_failing_item_and_names_every_item_it_passed_over():
    ds = ToyDataset(bad=(1, 2), skip_bad=True)
    item = ds[1]
    # item 2 failed too on the way to 3: it is reported even if no batch ever asks for item 2 itself
    assert item["name"] == "toy/train/3" and item["skipped"] == "toy/train/1\ntoy/train/2"
    assert ds[0]["skipped"] == ""
    log = BadItemLog()
    log.update({"skipped": [ds[1]["skipped"], ds[0]["skipped"]]})
    assert log.names == ["toy/train/1", "toy/train/2"]
    assert log.summary() == "2 bad item(s) skipped: toy/train/1, toy/train/2"
    assert BadItemLog().summary() == "no bad items"


def test_without_skip_bad_the_data_error_propagates():
    ds = ToyDataset(bad=(1,))
    with pytest.raises(DataError, match="toy/train/1: corrupt file"):
        ds[1]


def test_skip_bad_with_every_item_bad_raises():
    with pytest.raises(DataError, match="every item failed"):
        ToyDataset(n=3, bad=(0, 1, 2), skip_bad=True)[0]


def test_bad_index_and_split_are_rejected():
    with pytest.raises(IndexError):
        ToyDataset(n=3)[3]
    with pytest.raises(ProbeError, match="split"):
        ToyDataset(split="val")
    with pytest.raises(ProbeError, match="normalisation"):
        ToyDataset(normalize="zscore")


def test_dataloader_workers_give_the_same_items_as_the_main_process():
    ds = ToyDataset(n=6, input_size=(8, 12), augment=True, seed=3, bad=(4,), skip_bad=True)
    direct = [ds[i] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert torch.equal(torch.cat([b["image"] for b in batches]), torch.stack([d["image"] for d in direct]))
    assert torch.equal(torch.cat([b["depth"] for b in batches]), torch.stack([d["depth"] for d in direct]))
    log = BadItemLog()
    for b in batches:
        log.update(b)
    assert log.names == ["toy/train/4"]


def test_missing_root_names_the_expected_files_and_the_source():
    needing = [n for n in list_datasets() if dataset_info(n).needs_root]
    for name in needing:
        info = dataset_info(name)
        assert not dataset_present(name, None)
        with pytest.raises(DataError) as err:
            get_dataset(name, root=None)
        assert info.source in str(err.value) and "not found" in str(err.value)
    assert dataset_present("synthetic", None)


def test_depth_size_follows_depth_scale():
    assert INFO.depth_size() == (4, 6)
    assert INFO.depth_size((7, 9)) == (4, 4)
