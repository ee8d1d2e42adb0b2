"""Transforms shared by every dataset: resize, the seed's augmentation, normalisation.

Geometric transforms act identically on image, depth and validity mask.  All
randomness comes from a generator seeded by ``(seed, epoch, index)`` so a given
sample is augmented the same way in every worker and every rerun.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from probe.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

NORMALIZATIONS: Registry = Registry("normalisation")


@NORMALIZATIONS.register("none", description="image stays in [0, 1]")
def _no_normalisation(image: torch.Tensor) -> torch.Tensor:
    return image


@NORMALIZATIONS.register("imagenet", description="subtract ImageNet mean, divide by std")
def _imagenet_normalisation(image: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype).view(3, 1, 1)
    return (image - mean) / std


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``HxWx3`` uint8 (0..255) or float (0..1) array -> float32 ``[3,H,W]`` in [0, 1]."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {tuple(image.shape)}")
    arr = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[3,H,W]`` -> ``[3,h,w]`` bilinear with antialiasing (area-like when shrinking)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return out.clamp_(0.0, 1.0)


def resize_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``[1,H,W]`` -> ``[1,h,w]`` nearest neighbour: never blends a valid depth with a hole."""
    if tuple(depth.shape[-2:]) == tuple(size):
        return depth
    return F.interpolate(depth[None], size=size, mode="nearest-exact")[0]


def valid_mask(depth: torch.Tensor, max_depth: float) -> torch.Tensor:
    """True where the depth is a real return: finite, positive and within the dataset cap."""
    return torch.isfinite(depth) & (depth > 0) & (depth <= max_depth)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample's augmentation."""
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, index])


def augment_choice(
    rng: np.random.Generator, flip_p: float = 0.5, swap_p: float = 0.5
) -> tuple[bool, torch.Tensor | None]:
    """The seed's random draws: (flip horizontally?, RGB channel permutation or None), each with p=0.5.

    Separate from :func:`augment` so that a video window applies one draw to all its frames.
    """
    flip = bool(rng.random() < flip_p)
    perm = torch.from_numpy(rng.permutation(3)) if rng.random() < swap_p else None
    return flip, perm


def augment(
    image: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    rng: np.random.Generator,
    flip_p: float = 0.5,
    swap_p: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seed's augmentation: horizontal flip and a random RGB channel permutation, each with p=0.5."""
    flip, perm = augment_choice(rng, flip_p, swap_p)
    if flip:
        image, depth, valid = image.flip(-1), depth.flip(-1), valid.flip(-1)
    if perm is not None:
        image = image[perm]
    return image, depth, valid
