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
==============  ====================================  ==========================

The DenseDepth loss works in *depthnorm* space, ``max_depth / depth`` (1..100
for NYU's 0.1..10 m).  For an inverse-depth head this is ``max_depth * out``,
a linear map, so the loss sees exactly the quantity the network predicts up to
a constant; for a direct head it is ``1 / out``.  Outputs are clamped to the
positive range before any division so a leaky-ReLU head that strays below zero
yields a large but finite depth rather than NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from probe.errors import ProbeError

_EPS = 1e-6

Converter = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class OutputSpace:
    """What a network in this space emits, and its two conversions: ``(out, max_depth) -> tensor``."""

    description: str
    to_depth: Converter  # -> metres
    to_depthnorm: Converter  # -> the DenseDepth loss space, max_depth / depth


#: output space name -> its conversions; a new space (e.g. for a user model) is one entry here
OUTPUT_SPACES: dict[str, OutputSpace] = {
    "inverse": OutputSpace("inverse depth in 1/m", lambda out, max_depth: 1.0 / out.clamp_min(_EPS),
                           lambda out, max_depth: out * max_depth),
    "direct": OutputSpace("depth / max_depth", lambda out, max_depth: out.clamp_min(_EPS) * max_depth,
                          lambda out, max_depth: 1.0 / out.clamp_min(_EPS)),
    "depthnorm": OutputSpace("max_depth / depth", lambda out, max_depth: max_depth / out.clamp_min(_EPS),
                             lambda out, max_depth: out),
}


def output_space(name: str) -> OutputSpace:
    """The conversions of output space ``name``; an unknown name is a one-line ProbeError listing the known ones."""
    try:
        return OUTPUT_SPACES[name]
    except KeyError:
        raise ProbeError(f"unknown output space {name!r}; expected one of: {', '.join(OUTPUT_SPACES)}") from None


def to_depth(out: torch.Tensor, output_space_name: str, max_depth: float) -> torch.Tensor:
    """Raw model output ``[B,1,h,w]`` -> depth in metres ``[B,1,h,w]``."""
    return output_space(output_space_name).to_depth(out, max_depth)


def to_depthnorm(out: torch.Tensor, output_space_name: str, max_depth: float) -> torch.Tensor:
    """Raw model output ``[B,1,h,w]`` -> DenseDepth loss space ``max_depth / depth``."""
    return output_space(output_space_name).to_depthnorm(out, max_depth)
