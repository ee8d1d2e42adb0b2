"""How a model's raw output maps to metres and to the DenseDepth loss space.

Every model in the zoo declares ``model.output_space`` (one of the names
registered here) and, for inverse-depth heads, ``model.min_depth``.  Losses and
metrics never guess: they convert through these functions.

==============  ====================================  ==========================
output_space    what the network emits                depth in metres
==============  ====================================  ==========================
``inverse``     inverse depth in 1/m (PackNet:        ``1 / out``
                ``sigmoid(x) / min_depth``)
``direct``      depth as a fraction of the dataset    ``out * max_depth``
                cap (seed experiment 4: sigmoid)
``depthnorm``   DenseDepth's ``max_depth / depth``    ``max_depth / out``
==============  ====================================  ==========================

The DenseDepth loss works in *depthnorm* space, ``max_depth / depth`` (1..100
for NYU's 0.1..10 m).  For an inverse-depth head this is ``max_depth * out``,
a linear map, so the loss sees exactly the quantity the network predicts up to
a constant; for a direct head it is ``1 / out``.  Outputs are clamped to the
positive range before any division so a leaky-ReLU head that strays below zero
yields a large but finite depth rather than NaN.

Before any statistic (a metric, a collapse statistic, a figure) depth in
metres is clipped to the dataset protocol's range, :func:`depth_range`, with
:func:`clip_depth`, as every published evaluation does: an untrained
DenseDepth head near zero would otherwise put single pixels at 10^7 m.  The
same protocol minimum sizes the heads that need one (:func:`head_min_depth`).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from probe.registry import Registry

_EPS = 1e-6

#: PackNet's published inverse-depth head range (``sigmoid / 0.5 m``), tuned for KITTI.
PUBLISHED_MIN_DEPTH = 0.5
#: A protocol minimum below this (KITTI, Make3D: gt > 1e-3 m) only says "depth is positive", not where
#: a depth head must start; there the published 0.5 m is kept.
POSITIVITY_THRESHOLD = 0.05

Converter = Callable[[torch.Tensor, float], torch.Tensor]
TO_DEPTH: Registry[Converter] = Registry("output space")
TO_DEPTHNORM: Registry[Converter] = Registry("output space")


@TO_DEPTH.register("inverse", description="inverse depth in 1/m")
def _inverse_to_depth(out: torch.Tensor, max_depth: float) -> torch.Tensor:
    return 1.0 / out.clamp_min(_EPS)


@TO_DEPTH.register("direct", description="depth / max_depth")
def _direct_to_depth(out: torch.Tensor, max_depth: float) -> torch.Tensor:
    return out.clamp_min(_EPS) * max_depth


@TO_DEPTH.register("depthnorm", description="max_depth / depth")
def _depthnorm_to_depth(out: torch.Tensor, max_depth: float) -> torch.Tensor:
    return max_depth / out.clamp_min(_EPS)


@TO_DEPTHNORM.register("inverse")
def _inverse_to_depthnorm(out: torch.Tensor, max_depth: float) -> torch.Tensor:
    return out * max_depth


@TO_DEPTHNORM.register("direct")
def _direct_to_depthnorm(out: torch.Tensor, max_depth: float) -> torch.Tensor:
    return 1.0 / out.clamp_min(_EPS)


@TO_DEPTHNORM.register("depthnorm")
def _depthnorm_identity(out: torch.Tensor, max_depth: float) -> torch.Tensor:
    return out


def to_depth(out: torch.Tensor, output_space: str, max_depth: float) -> torch.Tensor:
    """Raw model output ``[B,1,h,w]`` -> depth in metres ``[B,1,h,w]``."""
    return TO_DEPTH.get(output_space)(out, max_depth)


def to_depthnorm(out: torch.Tensor, output_space: str, max_depth: float) -> torch.Tensor:
    """Raw model output ``[B,1,h,w]`` -> DenseDepth loss space ``max_depth / depth``."""
    return TO_DEPTHNORM.get(output_space)(out, max_depth)


def depth_to_depthnorm(depth: torch.Tensor, max_depth: float) -> torch.Tensor:
    """Ground-truth metres -> ``max_depth / depth`` (the DenseDepth target)."""
    return max_depth / depth.clamp_min(_EPS)


def depth_range(info: Any) -> tuple[float, float]:
    """The protocol's ``(min_depth, max_depth)`` metres of a :class:`probe.data.DatasetInfo`.

    >>> from probe.data import dataset_info
    >>> depth_range(dataset_info("nyu")), depth_range(dataset_info("synthetic"))
    ((0.1, 10.0), (0.1, 10.0))
    """
    low, high = float(info.min_depth), float(info.max_depth)
    if not 0 < low < high:
        raise ValueError(f"dataset {info.name!r}: depth range must satisfy 0 < min < max, got {low}, {high}")
    return low, high


def clip_depth(depth: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """Depth in metres ``[B,1,h,w]`` clipped to ``bounds = (min, max)``: the one clip before any statistic.

    NaN stays NaN, so a broken model still fails the metrics' finiteness check instead of being hidden.

    >>> clip_depth(torch.tensor([0.01, 3.0, 1e7], dtype=torch.float64), (0.1, 10.0)).tolist()
    [0.1, 3.0, 10.0]
    """
    low, high = bounds
    return depth.clamp(min=low, max=high)


def head_min_depth(info: Any) -> float:
    """The smallest depth an inverse-depth head (and the DenseDepth loss's SSIM range) must reach on a dataset.

    The protocol's minimum (0.1 m on NYU and the synthetic rooms), or the published 0.5 m where the protocol's
    minimum is only a positivity threshold (below :data:`POSITIVITY_THRESHOLD`).

    >>> from probe.data import dataset_info
    >>> head_min_depth(dataset_info("nyu")), head_min_depth(dataset_info("kitti"))
    (0.1, 0.5)
    """
    low = float(info.min_depth)
    return low if low >= POSITIVITY_THRESHOLD else PUBLISHED_MIN_DEPTH
