"""Packing: lossless space-to-depth and its exact inverse.

PackNet replaces striding and pooling by :func:`pack`, which folds every ``r x r``
block of pixels into ``r*r`` channels, and replaces upsampling by :func:`unpack`.
Both are pure reshapes and permutations, so they move elements without touching
their bits: they are lossless for every dtype (integers, float16, bfloat16, ...),
and each is the other's inverse and adjoint (``probe.laws`` states and checks
these laws; ``probe properties`` runs them).

Channel order (identical to ``torch.nn.functional.pixel_unshuffle`` /
``pixel_shuffle``, and to packnet-sfm's ``packing``): input channel ``c`` and
offset ``(i, j)`` inside the ``r x r`` block go to output channel
``c * r * r + i * r + j``::

    pack(x, r)[b, c*r*r + i*r + j, h, w] == x[b, c, h*r + i, w*r + j]

>>> import torch
>>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
>>> pack(x, 2).shape
torch.Size([1, 4, 2, 2])
>>> pack(x, 2)[0, :, 0, 0].tolist()   # the top-left 2x2 block, row by row
[0.0, 1.0, 4.0, 5.0]
>>> torch.equal(unpack(pack(x, 2), 2), x)
True
"""

from __future__ import annotations

import numbers

import torch

from probe.errors import ShapeError


def _check_ratio(r: object, op: str) -> int:
    if isinstance(r, bool) or not isinstance(r, numbers.Integral) or int(r) < 1:
        raise ShapeError(f"{op}: the packing ratio r must be an integer >= 1, got {r!r}")
    return int(r)


def _check_4d(x: torch.Tensor, op: str, contract: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(f"{op}: expected a 4-D tensor {contract}, got {shape}")


def pack(x: torch.Tensor, r: int) -> torch.Tensor:
    """Space-to-depth: ``[B,C,H,W] -> [B,r*r*C,H/r,W/r]``; H and W must be divisible by ``r``.

    Raises :class:`probe.errors.ShapeError` (a ``ValueError``) for non-4-D input,
    non-divisible H/W, or ``r`` that is not an integer >= 1.
    """
    r = _check_ratio(r, "pack")
    contract = f"[B,C,H,W] -> [B,r*r*C,H/r,W/r] with H and W divisible by r={r}"
    _check_4d(x, "pack", contract)
    b, c, h, w = x.shape
    if h % r or w % r:
        raise ShapeError(f"pack: expected {contract}, got {tuple(x.shape)}")
    blocks = x.reshape(b, c, h // r, r, w // r, r)
    return blocks.permute(0, 1, 3, 5, 2, 4).reshape(b, c * r * r, h // r, w // r)


def unpack(y: torch.Tensor, r: int) -> torch.Tensor:
    """Depth-to-space, the exact inverse of :func:`pack`: ``[B,r*r*C,H,W] -> [B,C,H*r,W*r]``.

    The channel count must be divisible by ``r*r``; violations raise
    :class:`probe.errors.ShapeError`.
    """
    r = _check_ratio(r, "unpack")
    contract = f"[B,r*r*C,H,W] -> [B,C,H*r,W*r] with channels divisible by r*r={r * r}"
    _check_4d(y, "unpack", contract)
    b, cr2, h, w = y.shape
    if cr2 % (r * r):
        raise ShapeError(f"unpack: expected {contract}, got {tuple(y.shape)}")
    c = cr2 // (r * r)
    blocks = y.reshape(b, c, r, r, h, w)
    return blocks.permute(0, 1, 4, 2, 5, 3).reshape(b, c, h * r, w * r)
