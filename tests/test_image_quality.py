"""MSE, PSNR and SSIM against known values and a brute-force SSIM reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.errors import ShapeError
from probe.image_quality import ImageQuality, gaussian_window, image_quality, mse, psnr, ssim
from probe.io import to_plain
from probe.schema import encode


def _brute_force_ssim(x: np.ndarray, y: np.ndarray, k1: float = 0.01, k2: float = 0.03) -> float:
    """SSIM written straight from Wang et al. (2004): one window position at a time."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)
    c1, c2 = k1**2, k2**2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 10):
            for j in range(x.shape[2] - 10):
                a, b = x[c, i:i + 11, j:j + 11], y[c, i:i + 11, j:j + 11]
                ma, mb = (w * a).sum(), (w * b).sum()
                va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                values.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_identical_images_have_infinite_psnr_and_unit_ssim():
    x = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    q = image_quality(x, x)
    assert q.psnr_infinite and q.mse == 0.0
    assert encode(q)["psnr"] is None  # JSON has no Infinity: the psnr_infinite flag carries it
    assert to_plain(encode(q))["ssim"] == pytest.approx(1.0)


def test_gaussian_noise_psnr_matches_ten_log10_of_inverse_variance():
    gen = torch.Generator().manual_seed(1)
    for sigma in (0.01, 0.05, 0.1):
        clean = torch.full((1, 3, 128, 128), 0.5)
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        assert psnr(noisy, clean).item() == pytest.approx(10 * math.log10(1 / sigma**2), abs=0.1)


def test_constant_offset_psnr_is_exact():
    a = torch.zeros(1, 3, 16, 16)
    b = torch.full_like(a, 0.1)
    assert mse(a, b).item() == pytest.approx(0.01)
    assert psnr(a, b).item() == pytest.approx(20.0)


def test_ssim_matches_brute_force_reference():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(1, 2, 14, 15, generator=gen)
    y = (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    expected = _brute_force_ssim(x[0].double().numpy(), y[0].double().numpy())
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-10)
    assert ssim(x, y).item() < 0.99


def test_gaussian_window_is_normalised_and_symmetric():
    w = gaussian_window()
    assert w.shape == (11, 11)
    assert w.sum().item() == pytest.approx(1.0)
    assert torch.allclose(w, w.T) and torch.allclose(w, w.flip(0))
    assert w.argmax().item() == 5 * 11 + 5


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shift=st.floats(0.01, 0.5))
def test_ssim_is_symmetric_and_at_most_one(seed, shift):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, 12, 12, generator=gen)
    y = (x + shift * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    s_xy, s_yx = ssim(x, y), ssim(y, x)
    assert torch.allclose(s_xy, s_yx)
    assert (s_xy <= 1 + 1e-12).all()


def test_combine_is_independent_of_batching():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(6, 3, 16, 16, generator=gen)
    y = (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    whole = image_quality(x, y)
    parts = ImageQuality.combine([image_quality(x[:2], y[:2]), image_quality(x[2:], y[2:])])
    assert parts.images == 6
    assert parts.mse == pytest.approx(whole.mse) and parts.psnr == pytest.approx(whole.psnr)
    assert parts.ssim == pytest.approx(whole.ssim)


def test_too_small_or_mismatched_images_raise_shape_error():
    with pytest.raises(ShapeError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 32), torch.rand(1, 3, 8, 32))
    with pytest.raises(ShapeError, match="same shape"):
        mse(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
