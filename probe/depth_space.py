"""How a model's raw output maps to metres and to the DenseDepth loss space.

Every model in the zoo declares ``model.output_space`` (a name in
:data:`OUTPUT_SPACES`) and, for inverse-depth heads, ``model.min_depth``.  Losses and
metrics never guess: they convert through these functions.

==============  ====================================  ==========================
output_space    what the network emits                depth in metres
==============  ====================================  ==========================
``inverse``     inverse depth in 1/m (PackNet:        ``1 / out``
                ``sigmoid(x) / min_depth``)
``direct``      depth as a fraction of the dataset    ``out * max_depth``
                cap (seed experiment 4: sigmoid)
``depthnorm``   DenseDepth's ``max_depth / depth``    ``max_depth / out``
``metric``      depth in metres                       ``out``
``log_depth``   natural log of depth in metres        ``exp(out)``
``disparity``   Monodepth2's sigmoid disparity        ``1 / (1/max_d + (1/min_d
                ``s`` in [0, 1] over the model's own  - 1/max_d) * s)``
                range ``[min_d, max_d]``
==============  ====================================  ==========================

``max_depth`` in the table is the *dataset's* cap (what the loss and the
metrics are given); ``min_d`` / ``max_d`` are the *model's* declared range.
``disparity`` is the one space whose meaning depends on the model rather than
the dataset, so it is not a converter here: the user-model adapter
(:mod:`probe.models.contract`) maps it to ``inverse`` with
:func:`disparity_to_inverse` inside its forward pass, once, and losses and
metrics see an ``inverse`` model.  :data:`MODEL_RANGE_SPACES` lists such spaces.

The DenseDepth loss works in *depthnorm* space, ``max_depth / depth`` (1..100
for NYU's 0.1..10 m).  For an inverse-depth head this is ``max_depth * out``,
a linear map, so the loss sees exactly the quantity the network predicts up to
a constant; for a direct head it is ``1 / out``.  Outputs are clamped to the
positive range before any division so a leaky-ReLU head that strays below zero
yields a large but finite depth rather than NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from probe.errors import ProbeError

_EPS = 1e-6
_LOG_EPS = math.log(_EPS)

Converter = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class OutputSpace:
    """What a network in this space emits, and its two conversions: ``(out, max_depth) -> tensor``."""

    description: str
    to_depth: Converter  # -> metres
    to_depthnorm: Converter  # -> the DenseDepth loss space, max_depth / depth


def _log_depth_to_depth(out: torch.Tensor, max_depth: float) -> torch.Tensor:
    # Clamped to the same [1e-6, 1e6] m window the divisions allow, so exp never overflows to inf.
    return torch.exp(out.clamp(_LOG_EPS, -_LOG_EPS))


#: output space name -> its conversions; a new space (e.g. for a user model) is one entry here
OUTPUT_SPACES: dict[str, OutputSpace] = {
    "inverse": OutputSpace(
        "inverse depth in 1/m", lambda out, max_depth: 1.0 / out.clamp_min(_EPS), lambda out, max_depth: out * max_depth
    ),
    "direct": OutputSpace(
        "depth / max_depth",
        lambda out, max_depth: out.clamp_min(_EPS) * max_depth,
        lambda out, max_depth: 1.0 / out.clamp_min(_EPS),
    ),
    "depthnorm": OutputSpace(
        "max_depth / depth", lambda out, max_depth: max_depth / out.clamp_min(_EPS), lambda out, max_depth: out
    ),
    "metric": OutputSpace(
        "depth in metres",
        lambda out, max_depth: out.clamp_min(_EPS),
        lambda out, max_depth: max_depth / out.clamp_min(_EPS),
    ),
    "log_depth": OutputSpace(
        "ln(depth in metres)",
        _log_depth_to_depth,
        lambda out, max_depth: max_depth * torch.exp(-out.clamp(_LOG_EPS, -_LOG_EPS)),
    ),
}


def output_space(name: str) -> OutputSpace:
    """The conversions of output space ``name``; an unknown name is a one-line ProbeError listing the known ones."""
    try:
        return OUTPUT_SPACES[name]
    except KeyError:
        raise ProbeError(f"unknown output space {name!r}; expected one of: {', '.join(OUTPUT_SPACES)}") from None


def disparity_to_inverse(out: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Monodepth2's scaled disparity: ``s`` in [0, 1] -> inverse depth in 1/m, ``[B,1,h,w] -> [B,1,h,w]``.

    ``1/max_depth + (1/min_depth - 1/max_depth) * s``: ``s = 0`` is ``max_depth`` metres and
    ``s = 1`` is ``min_depth`` metres; the map is affine, so gradients only change scale.

    >>> disparity_to_inverse(torch.tensor([0.0, 1.0]), 0.1, 100.0)
    tensor([ 0.0100, 10.0000])
    """
    return 1.0 / max_depth + (1.0 / min_depth - 1.0 / max_depth) * out


#: Spaces defined relative to the model's own ``[min_depth, max_depth]``: name -> (space of
#: :data:`OUTPUT_SPACES` it maps to, the map ``(out, min_depth, max_depth) -> out'``).
MODEL_RANGE_SPACES: dict[str, tuple[str, Callable[[torch.Tensor, float, float], torch.Tensor]]] = {
    "disparity": ("inverse", disparity_to_inverse)
}


def output_spaces() -> list[str]:
    """Every space a model may declare: :data:`OUTPUT_SPACES` plus :data:`MODEL_RANGE_SPACES`."""
    return [*OUTPUT_SPACES, *MODEL_RANGE_SPACES]


def to_depth(out: torch.Tensor, output_space_name: str, max_depth: float) -> torch.Tensor:
    """Raw model output ``[B,1,h,w]`` -> depth in metres ``[B,1,h,w]``."""
    return output_space(output_space_name).to_depth(out, max_depth)


def to_depthnorm(out: torch.Tensor, output_space_name: str, max_depth: float) -> torch.Tensor:
    """Raw model output ``[B,1,h,w]`` -> DenseDepth loss space ``max_depth / depth``."""
    return output_space(output_space_name).to_depthnorm(out, max_depth)
