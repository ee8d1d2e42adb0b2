"""``weights=PATH`` for user models: a state dict read without running code, fitted key for key.

This is the one place user-model weights are read.  Issue 11 writes probe's
general safe weight reader (``probe.models.weights``); when both are on main,
:func:`load_user_weights` should read through it and keep only the key
canonicalisation below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn

from probe.errors import ProbeError, one_line

# Prefixes a state dict of the same network may carry: DataParallel/DDP's, and probe's own checkpoint of an
# adapted user model (:class:`probe.models.contract.ModelAdapter` keeps the network as ``net``).
_WRAPPER_PREFIXES = ("module.", "net.")


def read_state_dict_file(path: Path, label: str) -> dict[str, torch.Tensor]:
    """``.safetensors`` or a torch file loaded with ``weights_only=True`` -> ``{name: tensor}``.

    ``{"state_dict": ...}`` and ``{"model": ...}`` wrappers are unwrapped.  Anything
    else (a pickled module, non-tensor values) is a one-line ProbeError naming ``label``.
    """
    if not path.is_file():
        raise ProbeError(f"{label}: file not found (expected a .safetensors or .pt/.pth state dict)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for foreign or truncated files
        raise ProbeError(f"{label}: cannot read a state dict without running code ({type(exc).__name__}: "
                         f"{one_line(exc)[:200]})") from None
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ProbeError(f"{label}: expected a mapping of parameter names to tensors")
    return {str(k): v for k, v in obj.items()}


def _fit_prefixes(state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with wrapper prefixes removed when that, and only that, makes its keys the model's."""
    candidates = [state]
    for prefix in _WRAPPER_PREFIXES:
        candidates += [{k.removeprefix(prefix): v for k, v in c.items()} for c in list(candidates)
                       if all(k.startswith(prefix) for k in c)]
    return next((c for c in candidates if c.keys() == expected.keys()), state)


def load_user_weights(module: nn.Module, path: str | Path, label: str) -> None:
    """Load ``path`` into ``module`` strictly: every key present, no extra key, every shape equal.

    A mismatch is one line listing the first few missing / unexpected / mis-shaped keys.
    """
    expected = module.state_dict()
    state = _fit_prefixes(read_state_dict_file(Path(path), label), expected)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{what} {items[:3]}" + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")
                 for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("shape mismatches (file vs model)", shapes)) if items]
        raise ProbeError(f"{label}: the state dict does not fit the model: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)
