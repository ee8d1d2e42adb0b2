"""Checkpoints: weights as safetensors, everything else as a ``weights_only`` torch file.

A checkpoint is a pair written atomically (temporary file, fsync, rename)::

    checkpoints/last.safetensors   model weights (metadata: step, model name)
    checkpoints/last.state.pt      optimizer, GradScaler, RNG states, sampler position, step, config

``last.state.pt`` holds only tensors and plain containers, so it loads with
``torch.load(path, weights_only=True)``: opening a checkpoint never runs code.
``step_N.*`` pairs are kept every ``--checkpoint-every N`` steps.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from probe.errors import ProbeError
from probe.io import atomic_path, read_json

CHECKPOINT_DIR = "checkpoints"


@dataclass
class Position:
    """Where a run stands: ``step`` optimizer steps done; ``batch_in_epoch`` of them in ``epoch``."""

    step: int
    epoch: int
    batch_in_epoch: int


def checkpoint_paths(run_dir: Path, tag: str = "last") -> tuple[Path, Path]:
    """``(weights, state)`` paths of checkpoint ``tag`` (``"last"`` or ``"step_N"``) in a run folder."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return folder / f"{tag}.safetensors", folder / f"{tag}.state.pt"


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states as tensors and plain numbers."""
    py_version, py_internal, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def save_checkpoint(run_dir: Path, model: nn.Module, state: dict[str, Any], tags: list[str]) -> list[Path]:
    """Write the weights and the training state under each tag; returns the paths written.

    ``state`` must contain ``"position"`` (a :class:`Position` as a dict); the
    weights carry the same step in their metadata so a resume can tell a
    matching pair from a torn one.
    """
    step = int(state["position"]["step"])
    written: list[Path] = []
    for tag in tags:
        weights_path, state_path = checkpoint_paths(run_dir, tag)
        with atomic_path(weights_path) as tmp:
            save_model(model, str(tmp), metadata={"step": str(step), "model": str(getattr(model, "model_name", ""))})
        with atomic_path(state_path) as tmp:
            torch.save(state, tmp)
        written += [weights_path, state_path]
    return written


def _unreadable(path: Path, exc: Exception) -> ProbeError:
    """A truncated or foreign checkpoint file, reported on one line."""
    lines = str(exc).strip().splitlines()
    # torch's unpickling errors are paragraphs of advice; keep only short, specific reasons
    reason = f"{type(exc).__name__}: {lines[0]}" if len(lines) == 1 and len(lines[0]) <= 120 else type(exc).__name__
    return ProbeError(f"{path}: cannot read this checkpoint ({reason}); expected a file written by `probe train`")


def weights_step(weights_path: Path) -> int:
    """The step recorded in a safetensors checkpoint's metadata."""
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise _unreadable(weights_path, exc) from None
    if "step" not in metadata:
        raise ProbeError(f"{weights_path}: no 'step' in the safetensors metadata (not a probe checkpoint)")
    return int(metadata["step"])


def read_training_state(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The ``last`` training state (for ``--resume``) and the path of its matching weights."""
    weights_path, state_path = checkpoint_paths(run_dir)
    for path in (weights_path, state_path):
        if not path.is_file():
            raise ProbeError(f"--resume: {path} not found (no checkpoint to resume; run without --resume)")
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        step = int(state["position"]["step"])
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, TypeError) as exc:
        raise _unreadable(state_path, exc) from None
    if weights_step(weights_path) != step:
        raise ProbeError(f"--resume: {weights_path} (step {weights_step(weights_path)}) and {state_path} "
                         f"(step {step}) disagree; resume from a checkpoints/step_N pair instead")
    return state, weights_path


def load_weights(model: nn.Module, weights_path: Path, device: torch.device) -> None:
    """Copy a safetensors checkpoint into ``model``; any missing, extra or misshapen tensor is a ProbeError."""
    try:
        missing, unexpected = load_model(model, str(weights_path), strict=False, device=str(device))
    except RuntimeError as exc:  # shape mismatches: a different model or width than the one saved
        first = str(exc).strip().splitlines()[-1].strip()
        raise ProbeError(f"{weights_path}: weights do not fit the model ({first})") from None
    except (SafetensorError, OSError) as exc:
        raise _unreadable(weights_path, exc) from None
    if missing or unexpected:
        raise ProbeError(f"{weights_path}: weights do not match the model "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


def _run_dir_of(path: Path) -> tuple[Path, Path]:
    """``(run_dir, weights_path)`` for a run folder or a ``.safetensors`` file inside one."""
    if path.is_dir():
        weights = checkpoint_paths(path)[0]
        if not weights.is_file():
            raise ProbeError(f"--checkpoint {path}: no {CHECKPOINT_DIR}/last.safetensors in this run folder")
        return path, weights
    if path.suffix != ".safetensors":
        raise ProbeError(f"--checkpoint {path}: expected a run folder or a .safetensors file")
    if not path.is_file():
        raise ProbeError(f"--checkpoint {path}: file not found")
    run_dir = path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
    return run_dir, path


#: Model options that only choose initial weights; a checkpoint overrides them.
INIT_WEIGHT_OPTIONS = ("weights", "pretrained")


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from a run folder (its last checkpoint) or a ``.safetensors`` file.

    The model is built from the run's ``config.json`` (``train`` section:
    model, width, model_options), its weights loaded, moved to ``device`` and
    put in eval mode.  ``run_config`` is that section's resolved
    :class:`~probe.training.TrainConfig` as a plain dict (``dataset``,
    ``input_size``, ``loss``, ...).

    >>> model, run_config = load_checkpoint("runs/x")                # doctest: +SKIP
    >>> model(torch.rand(1, 3, 240, 320)).shape, run_config["dataset"]  # doctest: +SKIP
    """
    from probe.models import build_model

    run_dir, weights_path = _run_dir_of(Path(path))
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise ProbeError(f"--checkpoint {path}: {config_file} not found (needed to rebuild the model)")
    section = read_json(config_file).get("train")
    if not isinstance(section, dict) or "config" not in section:
        raise ProbeError(f"{config_file}: no 'train' section (was this folder written by `probe train`?)")
    run_config = section["config"]
    for key in ("model", "width", "model_options"):
        if key not in run_config:
            raise ProbeError(f"{config_file}: train config lacks {key!r}")
    # The checkpoint holds every weight: the file the run started from is neither needed nor re-read.
    options = {k: v for k, v in run_config["model_options"].items() if k not in INIT_WEIGHT_OPTIONS}
    model = build_model(run_config["model"], width=run_config["width"], **options)
    dev = torch.device(device)
    load_weights(model, weights_path, dev)
    return model.to(dev).eval(), run_config
