"""Small user models for the contract tests, imported by probe as a file SPEC (``.../user_models.py:NAME``).

Each factory exercises one way a network can meet or break the contract (probe.models.contract).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Plain(nn.Module):
    """A conv net returning ``[B,1,H,W]`` in the space given; ``shape`` picks the output's layout."""

    def __init__(self, output_space: str | None = "metric", shape: str = "tensor", min_depth: float = 0.1,
                 max_depth: float = 10.0) -> None:
        super().__init__()
        if output_space is not None:
            self.output_space = output_space
        self.min_depth, self.max_depth = min_depth, max_depth
        self.shape = shape
        self.body = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 3, padding=1)
        self.coarse = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x: torch.Tensor):
        y = torch.relu(self.body(x))
        coarse = 1.0 + torch.sigmoid(self.coarse(F.avg_pool2d(y, 2)))
        fine = 1.0 + torch.sigmoid(self.head(y)) + 0.1 * F.interpolate(coarse, size=x.shape[-2:])
        return {
            "tensor": lambda: fine,
            "squeezed": lambda: fine[:, 0],
            "list": lambda: [fine, coarse],
            "coarse_first": lambda: [coarse, fine],
            "string_dict": lambda: {"depth": fine, "aux": coarse},
            "tuple_dict": lambda: {("depth", 0): fine, ("depth", 1): coarse, "features": y},
            "two_channels": lambda: fine.repeat(1, 2, 1, 1),
        }[self.shape]()


def plain(output_space: str | None = "metric", shape: str = "tensor", width: float = 1.0,
          min_depth: float = 0.1, max_depth: float = 10.0) -> Plain:
    """``width`` is accepted and ignored: the net is already tiny."""
    return Plain(output_space, shape, min_depth=min_depth, max_depth=max_depth)


def flexible(**options) -> Plain:
    """A factory taking ``**options``: probe passes it every non-adapter option."""
    flexible.seen = dict(options)
    return Plain()


def no_width() -> Plain:
    return Plain()


def not_a_module() -> str:
    return "a string"


def raises(width: float = 1.0) -> Plain:
    raise RuntimeError("the factory is broken")


NOT_CALLABLE = 3


class Broken(nn.Module):
    """Breaks four clauses at once and keeps the rest.

    * odd input size: fixed x2 upsampling added to a full-size skip needs even sizes;
    * output range: ``head - 1`` is mostly negative, outside ``inverse``'s domain;
    * eval determinism: noise is added in eval mode too;
    * gradients: ``unused`` never reaches the output.
    """

    output_space = "inverse"
    min_depth, max_depth = 0.1, 10.0

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(3, 4, 1)
        self.head = nn.Conv2d(4, 1, 3, padding=1)
        self.unused = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(self.down(x), scale_factor=2.0, mode="nearest") + self.skip(x)
        out = self.head(y) - 1.0
        return out + 0.01 * torch.rand_like(out)


def broken(width: float = 1.0) -> Broken:
    return Broken()
