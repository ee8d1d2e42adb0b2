"""Pieces shared by every architecture: channel widths, padding any input to the stride, the output's scales."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.errors import ProbeError, ShapeError
from probe.limits import check_width


def output_space_of(model: nn.Module) -> str:
    """The model's declared ``output_space`` (see :mod:`probe.depth_space`); a model without one is an error."""
    space = getattr(model, "output_space", None)
    if not isinstance(space, str):
        raise ProbeError(f"model {type(model).__name__} has no output_space attribute (see docs/CONTRACTS.md)")
    return space


def output_scales(outputs: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A model's output as its list of scales, finest first: one ``[B,C,h,w]`` (eval mode) or a list (training mode)."""
    scales = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    if not scales:
        raise ShapeError("model output: an empty list (expected a tensor or a list of scales, finest first)")
    return scales


def finest_scale(outputs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The finest scale of a model's output ``[B,C,h,w]`` (the output itself in eval mode)."""
    return output_scales(outputs)[0]


def scale_channels(base: int, width: float, *, multiple: int = 1, minimum: int = 1) -> int:
    """Published channel count ``base`` times ``width``: rounded to a multiple of ``multiple``, at least ``minimum``.

    ``width == 1.0`` returns ``base`` exactly (the published network).

    >>> scale_channels(64, 0.0625, multiple=2, minimum=4), scale_channels(32, 0.25)
    (4, 8)
    """
    check_width(width)
    if width == 1.0:
        return base
    return max(minimum, multiple * round(base * width / multiple))


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
