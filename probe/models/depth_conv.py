"""PackNet's 3-D convolution over packed features, in two equivalent forms.

The packing layers treat the ``D`` packed channels of a ``[B,D,H,W]`` tensor as a depth
axis and run ``Conv3d(1 -> d, k x k x k, 'same' zero padding)`` over it, giving
``[B,d,D,H,W]``, which the layer reads as ``[B,d*D,H,W]`` (output channel ``o*D + z``).
With a single input channel that convolution is also a 2-D one:

* ``conv3d``: :func:`torch.nn.functional.conv3d` on ``x.unsqueeze(1)``, as published;
* ``conv2d``: the ``k`` depth neighbours of every plane become ``k`` input channels
  (``[B*D,k,H,W]``), one ``Conv2d(k -> d)`` runs over the ``B*D`` planes with the same
  weight viewed as ``[d,k,k,k]``, and the result is transposed to the ``o*D + z`` order.

Both do the same multiply-adds (``B*d*D*H*W*k**3``); they differ in the kernels the
backend picks, the ``k``-fold copy of the input the 2-D form builds and its final
transpose.  They are equal up to the order of the floating-point sums (bitwise on
integer-valued data, where every sum is exact: ``tests/models/test_depth_conv.py``).

Which form runs for ``impl="auto"`` is :data:`DEFAULT_IMPL`, per device type, chosen
from ``bench/depth_conv.py`` measurements (see the README's performance section).

>>> import torch
>>> conv = DepthConv3d(d=8)
>>> conv(torch.rand(2, 12, 5, 7)).shape
torch.Size([2, 96, 5, 7])
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.errors import ProbeError

DepthConvFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def depth_conv_3d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``[B,D,H,W]``, weight ``[d,1,k,k,k]`` -> ``[B,d*D,H,W]`` through ``F.conv3d`` (the published form)."""
    padding = tuple(k // 2 for k in weight.shape[2:])
    return F.conv3d(x.unsqueeze(1), weight, bias, padding=padding).flatten(1, 2)


def depth_conv_2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``[B,D,H,W]``, weight ``[d,1,k,k,k]`` -> ``[B,d*D,H,W]``: the same convolution as ``F.conv2d``.

    Plane ``z`` of the output sees planes ``z-k//2 .. z+k//2`` of the input (zeros past
    either end): stacking those ``k`` planes as channels turns the depth taps into the
    input channels of a 2-D convolution whose weight is the 3-D one viewed as ``[d,k,k,k]``.
    """
    b, depth, h, w = x.shape
    d, _, kd, kh, kw = weight.shape
    padded = F.pad(x, (0, 0, 0, 0, kd // 2, kd // 2))
    taps = torch.stack([padded[:, i : i + depth] for i in range(kd)], dim=2)  # [B,D,kd,H,W]
    planes = F.conv2d(
        taps.reshape(b * depth, kd, h, w), weight.reshape(d, kd, kh, kw), bias, padding=(kh // 2, kw // 2)
    )  # [B*D,d,H,W]
    return planes.reshape(b, depth, d, h, w).transpose(1, 2).reshape(b, d * depth, h, w)


#: The forms, by name (a fixed choice of two).
DEPTH_CONVS: dict[str, DepthConvFn] = {"conv3d": depth_conv_3d, "conv2d": depth_conv_2d}

#: The form ``impl="auto"`` runs on each device type.  CPU: measured by ``bench/depth_conv.py``
#: (the 2-D form is faster forward+backward at every PackNet01 layer shape, see the README).
#: CUDA: unmeasured so far, so the published form stays until ``bench/gpu_check.sh`` decides.
#: Device types not listed run the published form.
DEFAULT_IMPL: dict[str, str] = {"cpu": "conv2d", "cuda": "conv3d"}

IMPLS = ("auto", *DEPTH_CONVS)


def check_impl(impl: object) -> str:
    """``impl`` if it names a form (or ``auto``), else a one-line ProbeError naming the option."""
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ProbeError(f"depth_conv: expected one of {', '.join(IMPLS)}, got {impl!r}")
    return str(impl)


def resolve_impl(impl: str, device: torch.device) -> str:
    """The concrete form for ``impl`` on ``device`` (``auto`` -> :data:`DEFAULT_IMPL`)."""
    return DEFAULT_IMPL.get(device.type, "conv3d") if impl == "auto" else impl


class DepthConv3d(nn.Conv3d):
    """``Conv3d(1 -> d)`` over the packed channels: ``[B,D,H,W] -> [B,d*D,H,W]``.

    The parameters are exactly ``nn.Conv3d(1, d, k, padding=k // 2)``'s (a 5-D weight
    ``[d,1,k,k,k]`` and bias ``[d]``), so published PackNet state dicts load unchanged;
    only the kernel that computes it is chosen by ``impl`` (``auto``, ``conv3d``, ``conv2d``).
    """

    def __init__(self, d: int, kernel_size: int = 3, impl: str = "auto") -> None:
        super().__init__(1, d, kernel_size, stride=1, padding=kernel_size // 2)
        self.impl = check_impl(impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return DEPTH_CONVS[resolve_impl(self.impl, x.device)](x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}"
