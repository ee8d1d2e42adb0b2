"""Image-reconstruction quality: MSE, PSNR and SSIM for RGB images in [0, 1].

These score *images* (the autoencoder study reconstructs its RGB input); the
SSIM term of the depth loss lives in :mod:`probe.losses` and has its own
conventions.  SSIM here follows Wang et al. (2004): an 11x11 Gaussian window
with sigma 1.5, constants ``K1 = 0.01``, ``K2 = 0.03``, statistics computed
only where the window fits inside the image ("valid" filtering), averaged over
positions and channels.

>>> import torch
>>> x = torch.rand(2, 3, 32, 32)
>>> psnr(x, x).tolist()            # identical images
[inf, inf]
>>> ssim(x, x).tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from probe.errors import ShapeError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 4:
        raise ShapeError(
            "image quality: expected two [B,C,H,W] tensors of the same shape, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: ``[B,C,H,W], [B,C,H,W] -> [B]``."""
    _check_pair(pred, target)
    return (pred.double() - target.double()).pow(2).flatten(1).mean(dim=1)


def psnr_from_mse(mse_value: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """``10 log10(data_range^2 / mse)`` in dB; ``+inf`` where the error is exactly zero."""
    mse_value = mse_value.double()
    return torch.where(
        mse_value > 0,
        10.0 * torch.log10(data_range**2 / mse_value.clamp_min(1e-300)),
        torch.full_like(mse_value, math.inf),
    )


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB: ``[B,C,H,W] x2 -> [B]`` (``inf`` for identical images)."""
    return psnr_from_mse(mse(pred, target), data_range)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 2-D Gaussian ``[size, size]`` (sums to 1), float64."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> torch.Tensor:
    """Structural similarity per image: ``[B,C,H,W] x2 -> [B]``, 1 for identical images.

    Each channel is filtered separately with the Gaussian window and only
    positions where the whole window fits are scored, so no padding value leaks
    into the statistic.  H and W must be at least ``window``.
    """
    _check_pair(pred, target)
    b, c, h, w = pred.shape
    if h < window or w < window:
        raise ShapeError(f"ssim: images must be at least {window}x{window} pixels, got {h}x{w}")
    kernel = gaussian_window(window, sigma).to(pred.device)[None, None].expand(c, 1, window, window)
    x, y = pred.double(), target.double()

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=c)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


@dataclass(frozen=True)
class ImageQuality:
    """Quality of a set of reconstructions, averaged over images.

    ``psnr`` is the mean of per-image PSNRs in dB; it is ``inf`` when any image is
    reconstructed exactly (result files store it as ``null`` beside a ``psnr_infinite`` flag,
    see :class:`analyses.autoencoder.AutoencoderRun`).
    """

    mse: float
    psnr: float
    ssim: float
    images: int

    @property
    def psnr_infinite(self) -> bool:
        return math.isinf(self.psnr)

    @staticmethod
    def combine(parts: "list[ImageQuality]") -> "ImageQuality":
        """Merge per-batch summaries into one (image-weighted means, so batching does not matter)."""
        n = sum(p.images for p in parts)
        if n == 0:
            raise ValueError("ImageQuality.combine: no images")
        return ImageQuality(
            mse=sum(p.mse * p.images for p in parts) / n,
            psnr=sum(p.psnr * p.images for p in parts) / n,
            ssim=sum(p.ssim * p.images for p in parts) / n,
            images=n,
        )


def image_quality(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> ImageQuality:
    """MSE, PSNR and SSIM of a batch of reconstructions ``[B,C,H,W]`` against the originals.

    >>> import torch
    >>> q = image_quality(torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), 0.1))
    >>> round(q.psnr, 6)
    20.0
    """
    per_image_mse = mse(pred, target)
    return ImageQuality(
        mse=float(per_image_mse.mean()),
        psnr=float(psnr_from_mse(per_image_mse, data_range).mean()),
        ssim=float(ssim(pred, target, data_range).mean()),
        images=int(pred.shape[0]),
    )


def to_uint8_rgb(images: torch.Tensor) -> np.ndarray:
    """Images ``[N,3,H,W]`` in [0, 1] (clamped) -> ``uint8 [N,H,W,3]`` on the CPU, the pixels figures show."""
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
