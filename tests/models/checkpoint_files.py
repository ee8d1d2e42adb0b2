"""Weight files laid out like the published ones, built in tests (no reference code, no downloads).

* :func:`save_packnet_sfm_checkpoint`: packnet-sfm's ``.ckpt``: ``torch.save`` of
  ``{"config": CfgNode, "epoch", "state_dict", "optimizer", "scheduler"}`` with the
  depth net under ``model.depth_net.``.  The config is pickled as a class named
  ``yacs.config.CfgNode`` (a dict subclass whose ``__init__`` sets the same four
  instance attributes as yacs's), so the pickle stream has the published
  structure (GLOBAL yacs.config CfgNode, NEWOBJ, SETITEMS, BUILD with a ``set``).
* :func:`save_keras_h5`: Keras 2's HDF5 layout, ``/model_weights`` (``model.save``)
  or the root (``model.save_weights``): attribute ``layer_names``, one group per
  layer (a ``/`` in a layer name nests groups), attribute ``weight_names`` such as
  ``conv1/conv/kernel:0`` naming datasets inside the layer's group.
* :func:`save_malicious_pickle`: a ``__reduce__`` payload that writes a marker file.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch


def _yacs_module() -> types.ModuleType:
    module = types.ModuleType("yacs.config")

    class CfgNode(dict):
        def __init__(self, init_dict: dict | None = None) -> None:
            super().__init__(init_dict or {})
            self.__dict__["__immutable__"] = False
            self.__dict__["__deprecated_keys__"] = set()
            self.__dict__["__renamed_keys__"] = {}
            self.__dict__["__new_allowed__"] = False

    CfgNode.__module__ = "yacs.config"
    CfgNode.__qualname__ = "CfgNode"
    module.CfgNode = CfgNode  # type: ignore[attr-defined]
    return module


def save_packnet_sfm_checkpoint(path: Path, depth_state: Mapping[str, torch.Tensor], *, name: str = "PackNet01",
                                version: str = "1A", pose_keys: int = 2) -> Path:
    """Write ``path`` as packnet-sfm's ModelCheckpoint does; returns it."""
    module = _yacs_module()
    saved = {k: sys.modules.get(k) for k in ("yacs", "yacs.config")}
    sys.modules["yacs"] = types.ModuleType("yacs")
    sys.modules["yacs.config"] = module
    try:
        node = module.CfgNode
        config = node({"model": node({"depth_net": node({"name": name, "version": version, "dropout": 0.0}),
                                      "pose_net": node({"name": "PoseNet"})}),
                       "datasets": node({"train": node({"path": ["/data/datasets/KITTI_raw"]})}),
                       "checkpoint": node({"filepath": "/data/checkpoints", "monitor": "abs_rel_pp_gt"})})
        state = {f"model.depth_net.{k}": v for k, v in depth_state.items()}
        state.update({f"model.pose_net.layer{i}.weight": torch.zeros(2, 2) for i in range(pose_keys)})
        torch.save({"config": config, "epoch": 49, "state_dict": state,
                    "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]},
                    "scheduler": {"step_size": 30, "gamma": 0.5, "base_lrs": [2e-4], "last_epoch": 49}}, path)
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return path


class _Payload:
    """Unpickling this calls ``exec`` with code that writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def save_malicious_pickle(path: Path, marker: Path, *, torch_format: bool = True) -> Path:
    """A weights-looking file whose unpickling would write ``marker`` (torch zip format, or a bare pickle)."""
    if torch_format:
        torch.save({"state_dict": {"conv.weight": torch.zeros(1)}, "config": _Payload(marker)}, path)
    else:  # a bare pickle (torch's legacy loader reads one first); plain pickles of tensors need torch itself
        path.write_bytes(pickle.dumps({"config": _Payload(marker), "epoch": 1}, protocol=2))
    return path


def save_keras_h5(path: Path, layers: Mapping[str, Mapping[str, np.ndarray]], *, saved_model: bool = True) -> Path:
    """``{layer: {weight: array}}`` (Keras order and layout) -> an HDF5 file laid out as Keras 2 writes it."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        root = f.create_group("model_weights") if saved_model else f
        root.attrs["layer_names"] = np.array([name.encode("utf8") for name in layers])
        for layer, weights in layers.items():
            group = root.create_group(layer)
            names = [f"{layer}/{w}:0" for w in weights]
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names], dtype="S" if not names else None)
            for name, array in zip(names, weights.values()):
                group.create_dataset(name, data=array)
    return path
