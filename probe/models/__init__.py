"""The model zoo: ``build_model(name, **options)`` and ``list_models()`` are the only doors in.

>>> from probe.models import build_model, list_models
>>> "packnet_b" in list_models()
True
>>> model = build_model("densedepth", width=0.0625).eval()   # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import Any

import torch.nn as nn

from probe.errors import ProbeError
from probe.registry import Registry

MODELS: Registry = Registry("model")


def build_model(name: str, **options: Any) -> nn.Module:
    """Build a registered model; options are the factory's keyword arguments (``width``, ...)."""
    factory = MODELS.get(name)
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ProbeError(f"{name}: unknown option(s) {', '.join(unknown)}; expected some of {', '.join(params)}")
    return factory(**options)


def model_task(name: str) -> str:
    """What a registered model predicts: ``"depth"`` (the default) or ``"pose"`` (registered with ``task="pose"``)."""
    return str(MODELS.entry(name).meta.get("task", "depth"))


def list_models(task: str | None = "depth") -> list[str]:
    """Registered model names of ``task`` (``"depth"``, ``"pose"``; None: every model), in registration order.

    Depth models take ``[B,3,H,W]`` images (the contract in docs/CONTRACTS.md);
    pose models (``posenet``) take stacked frames and serve self-supervised training.
    """
    return [name for name in MODELS.names() if task is None or model_task(name) == task]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# Importing the architecture modules fills the registry.
from probe.models import packnet as _packnet  # noqa: E402,F401
from probe.models import densedepth as _densedepth  # noqa: E402,F401
from probe.models import posenet as _posenet  # noqa: E402,F401
