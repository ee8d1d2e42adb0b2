"""Laws of the shared transforms: validity mask, resizing, the seeded augmentation, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.data import transforms as T
from probe.errors import ProbeError


def _coded(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image whose channels encode (column, row, constant) and depth/valid at half size encoding the column."""
    cols = torch.arange(w, dtype=torch.float32).expand(h, w) / w
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) / h
    image = torch.stack([cols, rows, torch.full((h, w), 0.25)])
    depth = 1.0 + torch.arange(w // 2, dtype=torch.float32).expand(h // 2, w // 2)[None].clone()
    valid = torch.zeros(1, h // 2, w // 2, dtype=torch.bool)
    valid[..., : w // 4] = True  # left half valid: a flip moves it to the right
    return image, depth, valid


def test_valid_mask_rejects_nan_inf_nonpositive_and_beyond_cap():
    depth = torch.tensor([[float("nan"), float("inf"), -float("inf"), 0.0, -1.0, 10.0001, 10.0, 0.001, 5.0]])
    valid = T.valid_mask(depth, max_depth=10.0)
    assert valid.tolist() == [[False, False, False, False, False, False, True, True, True]]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=50),
       st.floats(0.1, 100.0))
def test_valid_mask_is_exactly_finite_positive_and_within_cap(values, cap):
    depth = torch.tensor(values, dtype=torch.float32)
    expected = [bool(np.isfinite(v) and v > 0 and v <= np.float32(cap)) for v in depth.tolist()]
    assert T.valid_mask(depth, cap).tolist() == expected


@settings(max_examples=50)
@given(st.integers(2, 20), st.integers(2, 20), st.integers(1, 20), st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_resize_depth_never_blends_values(h, w, out_h, out_w, seed):
    depth = torch.from_numpy(np.random.default_rng(seed).random((1, h, w)).astype(np.float32))
    depth[0, 0, 0] = 0.0  # a hole next to valid depth must stay a hole or vanish, never be averaged
    out = T.resize_depth(depth, (out_h, out_w))
    assert out.shape == (1, out_h, out_w)
    assert set(out.flatten().tolist()) <= set(depth.flatten().tolist())


def test_resize_image_keeps_range_and_is_identity_at_same_size():
    image = torch.rand(3, 20, 30)
    assert T.resize_image(image, (20, 30)) is image
    small = T.resize_image(image, (7, 11))
    assert small.shape == (3, 7, 11) and small.min() >= 0 and small.max() <= 1


def test_image_to_tensor_scales_uint8_and_keeps_float():
    u8 = np.zeros((2, 3, 3), np.uint8)
    u8[0, 1] = (255, 51, 0)
    t = T.image_to_tensor(u8)
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    assert t[:, 0, 1].tolist() == pytest.approx([1.0, 0.2, 0.0])
    f = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    assert torch.equal(T.image_to_tensor(f), torch.from_numpy(f).permute(2, 0, 1))
    with pytest.raises(ValueError):
        T.image_to_tensor(np.zeros((4, 5), np.float32))


@given(st.integers(0, 2**32 - 1), st.integers(0, 50), st.integers(0, 10_000))
def test_augmentation_moves_image_depth_and_mask_together(seed, epoch, index):
    image, depth, valid = _coded(8, 12)
    out_image, out_depth, out_valid = T.augment(image, depth, valid, T.sample_rng(seed, epoch, index))
    flipped = not torch.equal(out_depth, depth)
    assert torch.equal(out_depth, depth.flip(-1) if flipped else depth)
    assert torch.equal(out_valid, valid.flip(-1) if flipped else valid)
    geometric = image.flip(-1) if flipped else image
    # whatever the channel order, each output channel is one input channel moved by the same flip
    for c in range(3):
        assert any(torch.equal(out_image[c], geometric[k]) for k in range(3))


@given(st.integers(0, 2**32 - 1), st.integers(0, 10_000))
def test_channel_swap_permutes_channels_only(seed, index):
    image = torch.rand(3, 5, 6, generator=torch.Generator().manual_seed(index))
    depth, valid = torch.ones(1, 2, 3), torch.ones(1, 2, 3, dtype=torch.bool)
    out, _, _ = T.augment(image, depth, valid, T.sample_rng(seed, 0, index), flip_p=0.0, swap_p=1.0)
    matches = [[torch.equal(out[c], image[k]) for k in range(3)] for c in range(3)]
    perm = [row.index(True) for row in matches]
    assert sorted(perm) == [0, 1, 2]


def test_augmentation_probabilities_are_about_one_half():
    image, depth, valid = _coded(4, 8)
    flips = swaps = 0
    n = 400
    for index in range(n):
        out_image, out_depth, _ = T.augment(image, depth, valid, T.sample_rng(0, 0, index))
        flipped = not torch.equal(out_depth, depth)
        flips += flipped
        geometric = image.flip(-1) if flipped else image
        swaps += not torch.equal(out_image, geometric)
    assert 0.4 < flips / n < 0.6
    # a swap draws a random permutation, which is the identity 1 time in 6
    assert 0.33 < swaps / n < 0.5


def test_augmentation_is_a_function_of_seed_epoch_and_index():
    image, depth, valid = _coded(6, 8)

    def run(seed: int, epoch: int, index: int) -> torch.Tensor:
        return T.augment(image, depth, valid, T.sample_rng(seed, epoch, index))[0]

    assert torch.equal(run(3, 1, 7), run(3, 1, 7))
    outcomes = {tuple(run(3, epoch, 7).flatten().tolist()) for epoch in range(30)}
    assert len(outcomes) > 1  # epochs draw fresh augmentations


def test_normalisations_are_registered_and_imagenet_standardises():
    image = torch.rand(3, 4, 4)
    assert torch.equal(T.NORMALIZATIONS.get("none")(image), image)
    out = T.NORMALIZATIONS.get("imagenet")(image)
    mean = torch.tensor(T.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(T.IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(out * std + mean, image, atol=1e-6)
    with pytest.raises(ProbeError, match="normalisation"):
        T.NORMALIZATIONS.get("zscore")
