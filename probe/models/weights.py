"""Reading published and probe weight files without running any code they contain.

Three formats reach a model through ``weights=PATH`` / ``pretrained=PATH``:

* ``.safetensors`` (probe's own checkpoints): a flat tensor table, code-free by design;
* torch pickles (``.pth``, ``.pt``, ``.ckpt``, ``.tar``): a state dict, or a dict
  wrapping one (``state_dict``/``model``), such as packnet-sfm's ``.ckpt``
  ``{"config": yacs CfgNode, "epoch", "state_dict", "optimizer", "scheduler"}``;
* Keras HDF5 (``.h5``/``.hdf5``): a model saved with ``model.save`` (weights under
  ``/model_weights``) or ``model.save_weights`` (weights at the root).

Pickles are the danger: unpickling calls whatever callables the file names, so a
``__reduce__`` payload runs on load.  :func:`read_pickle` therefore uses
:class:`RestrictedUnpickler`, whose ``find_class`` returns only an explicit
allow-list (:data:`SAFE_GLOBALS`: torch's tensor rebuilders, ``OrderedDict``,
``set``...) and, for the foreign classes that published checkpoints hold
(:data:`INERT_CLASSES`: yacs's ``CfgNode``), an inert stand-in that keeps the
keys and values as plain data and has no behaviour.  Any other global is
refused with a one-line :class:`ProbeError` before anything is called.

Mismatches are one line too (:func:`fit_state_dict`): the first missing keys,
the first unexpected keys and the first shape conflicts, each with a count.
Keys a format carries but no model uses (torchvision's ``classifier``, a
packnet-sfm checkpoint's pose network) are dropped by the model's loader and
reported through a :class:`IgnoredWeightsWarning` naming them.
"""

from __future__ import annotations

import codecs
import collections
import pickle
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn

from probe.errors import ProbeError

__all__ = [
    "INERT_CLASSES",
    "SAFE_GLOBALS",
    "IgnoredWeightsWarning",
    "InertConfig",
    "RestrictedUnpickler",
    "TensorFile",
    "fit_state_dict",
    "read_keras_h5",
    "read_pickle",
    "read_tensor_file",
    "split_prefix",
    "warn_ignored",
]

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".tar", ".bin")
H5_SUFFIXES = (".h5", ".hdf5", ".keras_h5")


class IgnoredWeightsWarning(UserWarning):
    """A weights file held tensors that the model does not use (named in the message)."""


class InertConfig(dict):
    """A foreign configuration object (yacs ``CfgNode``) rebuilt as plain data.

    The file's keys and values become this dict's items; the object's pickled
    attributes land in ``pickled_attributes``.  It has no methods beyond ``dict``'s.
    """

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "pickled_attributes", state)


def _torch_dtypes() -> dict[str, Any]:
    return {f"torch.{name}": value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}


#: Globals a weights pickle may name: torch's tensor and parameter rebuilders, the containers and
#: the values torch.save emits for state dicts and optimizer states, nothing that touches the system.
SAFE_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "torch._utils._rebuild_tensor": torch._utils._rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
    "torch.Size": torch.Size,
    "torch.device": torch.device,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.complex": complex,
    "_codecs.encode": codecs.encode,  # how protocol-2 pickles spell bytes (codecs.encode is _codecs.encode)
    **_torch_dtypes(),
}

#: Foreign classes found in published checkpoints, mapped to inert stand-ins.
INERT_CLASSES: dict[str, type] = {
    "yacs.config.CfgNode": InertConfig  # packnet-sfm's `config`
}

# Python 2 module names that protocol-2 pickles carry (pickle maps them only in its own find_class).
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only tensors, containers, plain values and inert stand-ins.

    ``find_class`` is the only door through which a pickle reaches a callable;
    here it returns :data:`SAFE_GLOBALS` and :data:`INERT_CLASSES` entries and
    refuses every other name, so a payload is rejected before it can run.
    """

    def find_class(self, module: str, name: str) -> Any:
        key = f"{_PY2_MODULES.get(module, module)}.{name}"
        if key in SAFE_GLOBALS:
            return SAFE_GLOBALS[key]
        if key in INERT_CLASSES:
            return INERT_CLASSES[key]
        raise _RefusedGlobal(key)


def _restricted_load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


# torch.load accepts any module-like object with Unpickler and load.
_RESTRICTED_PICKLE = types.SimpleNamespace(
    Unpickler=RestrictedUnpickler, load=_restricted_load, __name__="probe.models.weights.restricted_pickle"
)


def read_pickle(path: Path, label: str) -> Any:
    """Load a torch pickle (zip or legacy format) through :class:`RestrictedUnpickler` on the CPU.

    A global outside the allow-list is refused with one line naming it; nothing it names is called.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RESTRICTED_PICKLE)
    except _RefusedGlobal as exc:
        raise ProbeError(
            f"{label}: refused to load: the pickle calls {exc.name}, which is not a tensor, container "
            "or plain value (loading it could run code)"
        ) from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise ProbeError(f"{label}: cannot read a torch weights file ({type(exc).__name__}: {first})") from None


def _decode(values: Any) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in np.asarray(values).reshape(-1)]


def _h5_names(group: Any, attr: str) -> list[str] | None:
    """An HDF5 name-list attribute; Keras splits long ones into ``attr0``, ``attr1``, ..."""
    if attr in group.attrs:
        return _decode(group.attrs[attr])
    if f"{attr}0" in group.attrs:
        names: list[str] = []
        chunk = 0
        while f"{attr}{chunk}" in group.attrs:
            names += _decode(group.attrs[f"{attr}{chunk}"])
            chunk += 1
        return names
    return None


def read_keras_h5(path: Path, label: str) -> dict[str, np.ndarray]:
    """Keras 2 HDF5 weights -> ``{"<layer>/<weight>": array}`` (e.g. ``"conv1/conv/kernel"``), layer order kept.

    Reads the layout Keras writes and reads itself: the layer list in the
    ``layer_names`` attribute of ``/model_weights`` (``model.save``) or of the root
    (``model.save_weights``), each layer's weights listed in its group's
    ``weight_names`` attribute (``"conv1/conv/kernel:0"``, a path inside that
    group).  The ``:0`` suffix and the layer prefix are dropped.  Arrays keep
    Keras's layout (convolution kernels HWIO).
    """
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ProbeError(f"{label}: cannot open as HDF5 ({exc})".splitlines()[0]) from None
    with handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        layers = _h5_names(group, "layer_names")
        if layers is None:
            raise ProbeError(f"{label}: not a Keras weights file (no layer_names attribute at / or /model_weights)")
        arrays: dict[str, np.ndarray] = {}
        for layer in layers:
            if layer not in group:
                raise ProbeError(f"{label}: layer {layer!r} is listed in layer_names but has no group")
            layer_group = group[layer]
            for weight in _h5_names(layer_group, "weight_names") or []:
                if weight not in layer_group:
                    raise ProbeError(f"{label}: weight {weight!r} of layer {layer!r} is listed but missing")
                short = weight.rsplit("/", 1)[-1].split(":", 1)[0]
                arrays[f"{layer}/{short}"] = np.asarray(layer_group[weight])
        return arrays


@dataclass
class TensorFile:
    """What a weights file held: ``tensors`` by name, its ``kind`` and any ``config`` found beside them.

    ``kind`` is ``"safetensors"``, ``"torch"`` or ``"keras_h5"`` (Keras names, arrays in Keras layout).
    """

    tensors: dict[str, Any]
    kind: str
    config: Any = None
    extra_keys: list[str] = field(default_factory=list)


def _unwrap(obj: Any, label: str) -> TensorFile:
    """A state dict, or a dict wrapping one under ``state_dict`` / ``model`` (packnet-sfm, Lightning, ...)."""
    config = None
    extra: list[str] = []
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                config = obj.get("config")
                extra = [str(k) for k in obj if k != wrapper]
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ProbeError(f"{label}: expected a state dict (parameter names -> tensors), got {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ProbeError(
            f"{label}: expected a state dict of tensors; {len(bad)} entr(ies) are not tensors (first: {bad[0]!r})"
        )
    return TensorFile({str(k): v for k, v in obj.items()}, "torch", config=config, extra_keys=extra)


def read_tensor_file(path: str | Path, label: str) -> TensorFile:
    """Read ``path`` by its suffix (safetensors, Keras HDF5, else a torch pickle); see the module docstring."""
    expected = "expected a .safetensors, .pth/.pt/.ckpt or Keras .h5 file"
    if not isinstance(path, (str, Path)):  # a run's config.json can hold any JSON value here
        raise ProbeError(f"{label}: expected a file path ({expected[9:]}), got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise ProbeError(f"{label}: is a directory ({expected})")
    if not p.is_file():
        raise ProbeError(f"{label}: file not found ({expected})")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return TensorFile(load_file(str(p), device="cpu"), "safetensors")
        except (SafetensorError, OSError) as exc:
            raise ProbeError(f"{label}: cannot read safetensors ({exc})".splitlines()[0]) from None
    if suffix in H5_SUFFIXES:
        return TensorFile(read_keras_h5(p, label), "keras_h5")
    return _unwrap(read_pickle(p, label), label)


def split_prefix(state: Mapping[str, Any], prefix: str) -> tuple[dict[str, Any], list[str]]:
    """Keys under ``prefix`` with it removed, and the other keys (to report as ignored).

    Without any key under ``prefix`` the state is returned unchanged (a bare state dict).
    """
    if not any(k.startswith(prefix) for k in state):
        return dict(state), []
    kept = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return kept, [k for k in state if not k.startswith(prefix)]


def _listing(label: str, items: list[str], shown: int = 3) -> str:
    more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return f"{len(items)} {label} [{', '.join(items[:shown])}]{more}"


def fit_state_dict(
    module: nn.Module, state: Mapping[str, torch.Tensor], *, label: str, target: str, hint: str = ""
) -> int:
    """Load ``state`` into ``module`` strictly; returns the number of tensors loaded.

    BatchNorm's ``num_batches_tracked`` counters, which carry no weights and which
    older torchvision and Keras files lack, keep the module's values.  Any other
    missing key, unexpected key or shape conflict is one :class:`ProbeError` line
    naming the first of each and how many there are, plus ``hint``.
    """
    expected = module.state_dict()
    state = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    conflicts = [
        f"{k} file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or conflicts:
        parts = [
            _listing(name, items)
            for name, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape conflicts", conflicts),
            )
            if items
        ]
        raise ProbeError(f"{label}: does not fit {target}: " + "; ".join(parts) + (f". {hint}" if hint else ""))
    module.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()}, strict=True)
    return len(state)


def warn_ignored(label: str, ignored: list[str], why: str) -> None:
    """Report keys a loader dropped on purpose (one warning line naming the first few)."""
    if ignored:
        warnings.warn(
            f"{label}: ignored {_listing('tensor(s)', ignored, 4)}: {why}", IgnoredWeightsWarning, stacklevel=3
        )
