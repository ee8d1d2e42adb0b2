"""Errors reach the user as one line, also when they were raised inside a DataLoader worker."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader, Dataset

from probe.errors import DataError, one_line


class _Broken(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        raise DataError("/data/img-7.jpg: cannot decode image")


def test_an_error_from_a_worker_keeps_only_its_original_message():
    with pytest.raises(DataError) as info:
        next(iter(DataLoader(_Broken(), num_workers=1)))
    assert "Original Traceback" in str(info.value)  # torch's wrapping, which one_line must undo
    assert one_line(info.value) == "/data/img-7.jpg: cannot decode image"


def test_multi_line_messages_are_folded():
    assert one_line(ValueError("a\n  b")) == "a b"
