"""Pieces shared by every architecture: padding any input to the network's stride."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``[B,C,H,W]`` on the bottom/right (replicate) so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` so the output can be cropped back
    with :func:`crop_to_scale`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


def crop_to_scale(y: torch.Tensor, size: tuple[int, int], scale: float) -> torch.Tensor:
    """Crop an output computed on a padded input back to ``round(size * scale)``."""
    # float() because under torch.jit.trace (fvcore's counters) sizes arrive as 0-d tensors
    h = max(1, int(round(float(size[0]) * scale)))
    w = max(1, int(round(float(size[1]) * scale)))
    return y[..., :h, :w]
