"""``weights=PATH`` for user models: a state dict read without running code, fitted key for key.

The file is read by the zoo's reader (:func:`probe.models.densedepth.read_state_dict`:
``.safetensors``, or a torch file with ``weights_only=True``, ``state_dict``/``model``
wrappers unwrapped).  When probe's general safe weight reader (``probe.models.weights``,
issue 11) is on main, :func:`load_user_weights` should read through it instead and
keep only the prefix fitting below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn

from probe.errors import ProbeError, one_line
from probe.models.densedepth import read_state_dict

# Prefixes a state dict of the same network may carry: DataParallel/DDP's, and probe's own checkpoint of an
# adapted user model (:class:`probe.models.contract.ModelAdapter` keeps the network as ``net``).
_WRAPPER_PREFIXES = ("module.", "net.")
_MAX_DETAIL = 300  # characters of torch's key listing kept in the one-line error


def _fit_prefixes(state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with wrapper prefixes removed when that, and only that, makes its keys the model's."""
    candidates = [state]
    for prefix in _WRAPPER_PREFIXES:
        candidates += [{k.removeprefix(prefix): v for k, v in c.items()} for c in list(candidates)
                       if all(k.startswith(prefix) for k in c)]
    return next((c for c in candidates if c.keys() == expected.keys()), state)


def load_user_weights(module: nn.Module, path: str | Path, label: str) -> None:
    """Load ``path`` into ``module`` strictly: every key present, no extra key, every shape equal.

    A mismatch is one line: torch's own list of missing, unexpected and mis-shaped keys, shortened.
    """
    expected = module.state_dict()
    try:
        raw = read_state_dict(path)
    except ProbeError as exc:  # the reader names the file as weights=PATH; say which model it was for
        raise ProbeError(f"{label}: {one_line(exc).removeprefix(f'weights={Path(path)}: ')}") from None
    state = _fit_prefixes(raw, expected)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # torch lists the missing, unexpected and mis-shaped keys; keep one line of it
        text = one_line(exc).split(":", 1)[-1].strip()
        raise ProbeError(f"{label}: the state dict does not fit the model: "
                         f"{text[:_MAX_DETAIL]}{' ...' if len(text) > _MAX_DETAIL else ''}") from None
