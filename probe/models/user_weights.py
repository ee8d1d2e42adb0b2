"""``weights=PATH`` for user models: a state dict read without running code, fitted key for key.

The file is read by probe's one safe reader (:func:`probe.models.weights.read_tensor_file`:
``.safetensors``, Keras ``.h5``, or a torch pickle through the restricted unpickler, with
``state_dict``/``model`` wrappers unwrapped) and loaded strictly by
:func:`probe.models.weights.fit_state_dict`.  The only user-model specific step is
dropping a wrapper prefix that a copy of the same network may carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn

from probe.models.weights import fit_state_dict, read_tensor_file

# Prefixes a state dict of the same network may carry: DataParallel/DDP's, and probe's own checkpoint of an
# adapted user model (:class:`probe.models.contract.ModelAdapter` keeps the network as ``net``).
_WRAPPER_PREFIXES = ("module.", "net.")


def _fit_prefixes(state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with wrapper prefixes removed when that, and only that, makes its keys the model's."""
    candidates = [state]
    for prefix in _WRAPPER_PREFIXES:
        candidates += [
            {k.removeprefix(prefix): v for k, v in c.items()}
            for c in list(candidates)
            if all(k.startswith(prefix) for k in c)
        ]
    return next((c for c in candidates if c.keys() == expected.keys()), state)


def load_user_weights(module: nn.Module, path: str | Path, label: str) -> None:
    """Load ``path`` into ``module`` strictly: every key present, no extra key, every shape equal.

    A mismatch is one line naming the first missing and unexpected keys and shape conflicts.
    """
    tensors = read_tensor_file(path, label).tensors
    state = _fit_prefixes(tensors, module.state_dict())
    fit_state_dict(module, state, label=label, target="the model")
