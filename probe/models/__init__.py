"""Models: ``build_model(spec, **options)`` and ``list_models()`` are the only doors in.

``spec`` is a zoo name or any SPEC of :mod:`probe.models.spec` (an entry-point name,
``package.module:factory``, ``path/to/file.py:factory``).  Zoo models are returned as
built; user models come wrapped in :class:`probe.models.contract.ModelAdapter`, which
gives them the zoo's attributes, so nothing downstream asks which kind it holds.

>>> from probe.models import build_model, list_models
>>> "packnet_b" in list_models()
True
>>> model = build_model("densedepth", width=0.0625).eval()   # doctest: +SKIP
>>> model = build_model("examples/unet.py:build", width=0.0625)   # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch.nn as nn

from probe.errors import ProbeError
from probe.registry import Registry

MODELS: Registry = Registry("model")


def build_model(name: str, /, **options: Any) -> nn.Module:
    """Build a zoo model or a user model from a SPEC; options are the factory's keyword arguments (``width``, ...).

    For user models the options of :data:`probe.models.contract.ADAPTER_OPTIONS` (``output_space``,
    ``output_key``, ``min_depth``, ``max_depth``, ``input_multiple``, ``weights``, ``name``) configure the adapter.
    """
    if name not in MODELS:
        from probe.models.contract import build_user_model
        from probe.models.spec import resolve_spec

        return build_user_model(resolve_spec(name), options)
    _check_zoo_options(name, options)
    return MODELS.get(name)(**options)


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise the ProbeError :func:`build_model` would for option names ``name`` does not take, building nothing.

    A SPEC's factory is loaded (importing the user's code) to read its signature.
    """
    if name in MODELS:
        _check_zoo_options(name, options)
        return
    from probe.models.contract import split_options
    from probe.models.spec import resolve_spec

    resolved = resolve_spec(name)
    split_options(resolved, resolved.load(), options)


def _check_zoo_options(name: str, options: Mapping[str, Any]) -> None:
    params = inspect.signature(MODELS.get(name)).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ProbeError(f"{name}: unknown option(s) {', '.join(unknown)}; expected some of {', '.join(params)}")


def dataset_model_options(name: str, info: Any) -> dict[str, Any]:
    """Options the dataset protocol ``info`` implies for model ``name`` (explicit options override them).

    PackNet's inverse-depth head ``sigmoid / min_depth`` cannot predict below ``min_depth``; it follows the
    protocol's minimum (:func:`probe.depth_space.head_min_depth`: 0.1 m on NYU and the synthetic rooms) instead
    of the published 0.5 m.  DenseDepth's DepthNorm output ``max_depth / depth`` is unbounded and needs none;
    user models (SPECs) declare their own range.

    >>> from probe.data import dataset_info
    >>> nyu = dataset_info("nyu")
    >>> dataset_model_options("packnet_b", nyu), dataset_model_options("densedepth", nyu)
    ({'min_depth': 0.1}, {})
    """
    from probe.depth_space import head_min_depth

    if name in MODELS and MODELS.entry(name).meta.get("family") == "packnet":
        return {"min_depth": head_min_depth(info)}
    return {}


def model_task(name: str) -> str:
    """What a model predicts: ``"pose"`` for zoo models registered with ``task="pose"``, else ``"depth"``.

    A SPEC outside the zoo (a user model) is a depth model by the model contract.
    """
    return str(MODELS.entry(name).meta.get("task", "depth")) if name in MODELS else "depth"


def list_models(task: str | None = "depth") -> list[str]:
    """Zoo model names of ``task`` (``"depth"``, ``"pose"``; None: every model), in registration order.

    Depth models take ``[B,3,H,W]`` images (the contract in docs/CONTRACTS.md); pose models
    (``posenet``) take stacked frames and serve self-supervised training.  Entry-point models:
    :func:`probe.models.spec.entry_point_models`.
    """
    return [name for name in MODELS.names() if task is None or model_task(name) == task]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# Importing the architecture modules fills the registry, in this order (the order `probe models` lists).
# isort: off
from probe.models import packnet as _packnet  # noqa: E402,F401
from probe.models import densedepth as _densedepth  # noqa: E402,F401
from probe.models import posenet as _posenet  # noqa: E402,F401
# isort: on
