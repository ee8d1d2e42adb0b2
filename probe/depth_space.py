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
"""

from __future__ import annotations

from typing import Callable

import torch

from probe.registry import Registry

_EPS = 1e-6

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
