"""Checkpoints: one folder per step, verified by a manifest, committed by one atomic rename.

A run folder's checkpoints::

    checkpoints/
      step_12/                  one complete checkpoint; never modified once it has this name
        weights.safetensors     model weights (metadata: step, model name)
        state.pt                optimizer, GradScaler, RNG states, sampler position, step, config, bad items
        manifest.json           {"format": 1, "step": 12, "keep": false,
                                 "files": {"weights.safetensors": {"bytes": ..., "sha256": ...}, "state.pt": {...}}}
      step_10/                  kept: a --checkpoint-every multiple ("keep": true) or the previous checkpoint
      last                      the text "step_12", atomically replaced after step_12/ is complete
      .partial-step_13-k2j8/    being written; removed by the next command that writes the run

Writing (:func:`save_checkpoint`): both files and then the manifest with their
sizes and SHA-256 go into a fresh ``.partial-*`` folder and are fsync'ed; one
``rename`` turns it into ``step_N`` (the commit); then the ``last`` pointer is
replaced atomically and checkpoints no longer needed are removed (renamed away
first, so a half-deleted folder is never taken for a checkpoint).  A kill at
any instant therefore leaves the previous checkpoints intact and the new one
either absent or complete.

Reading (:func:`find_resume_point`, :func:`resolve_checkpoint`): a checkpoint is
*complete* when its manifest names the step of its folder and both files have
the recorded size and hash, the weights' metadata and the state's position
name the same step.  ``--resume`` takes the newest complete checkpoint and
warns, one line each, about newer ones that fail the check.  The ``last``
pointer is for people and other tools; probe trusts only verified folders,
newest first, so a pointer a kill left one step behind loses nothing.

``state.pt`` holds only tensors and plain containers, so it loads with
``torch.load(path, weights_only=True)``: opening a checkpoint never runs code.

Run folders of probe 0.1 (``checkpoints/last.safetensors`` + ``last.state.pt``,
pairs a kill could tear) still load for ``eval``, ``predict`` and analyses'
``--checkpoint`` (weights only); ``--resume`` and continuing such a run are
refused with one line, because the pair cannot be verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from probe.errors import ProbeError, warn
from probe.io import atomic_write, ensure_dir, fsync_dir, read_json

CHECKPOINT_DIR = "checkpoints"
WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.pt"
MANIFEST_FILE = "manifest.json"
POINTER_FILE = "last"
PARTIAL_PREFIX = ".partial-"
TRASH_PREFIX = ".trash-"
MANIFEST_FORMAT = 1
KEEP_PREVIOUS = 2
"""Checkpoints kept besides the --checkpoint-every ones: the newest and one fallback before it."""

_STEP_FOLDER = re.compile(r"^step_(\d+)$")
_LEGACY_WEIGHTS = "last.safetensors"


class CheckpointError(ProbeError):
    """A checkpoint that is incomplete, corrupt or inconsistent (the message says which file and why)."""


@dataclass
class Position:
    """Where a run stands: ``step`` optimizer steps done; ``batch_in_epoch`` of them in ``epoch``."""

    step: int
    epoch: int
    batch_in_epoch: int


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a run: where its files are and the step it holds.

    ``folder`` is the ``checkpoints/step_N`` folder, or None for a loose or
    probe-0.1 ``.safetensors`` file (``step`` None when its metadata has none).
    """

    run_dir: Path
    weights: Path
    state: Path
    step: int | None
    folder: Path | None = None

    @property
    def verified(self) -> bool:
        return self.folder is not None


# -- RNG state ----------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states as tensors and plain numbers."""
    py_version, py_internal, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64), "gauss": py_gauss},
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
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
    np.random.set_state(
        (nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"], nps["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


# -- writing ------------------------------------------------------------------------------------------


def checkpoint_root(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def _file_record(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file just written, after forcing it to disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _discard(folder: Path) -> None:
    """Remove a checkpoint folder: renamed away first (atomic), so no half-deleted folder keeps its name."""
    trash = folder.with_name(f"{TRASH_PREFIX}{folder.name}-{os.getpid()}-{random.getrandbits(32):08x}")
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def save_checkpoint(run_dir: Path, model: nn.Module, state: dict[str, Any], *, keep: bool = False) -> Checkpoint:
    """Write ``checkpoints/step_N`` (N = ``state["position"]["step"]``) as one unit; returns it.

    ``keep`` marks a --checkpoint-every checkpoint, which pruning never removes;
    otherwise only the :data:`KEEP_PREVIOUS` newest checkpoints stay.  An
    existing ``step_N`` (e.g. a corrupt one a resume fell back from) is replaced.
    """
    step = int(state["position"]["step"])
    root = ensure_dir(checkpoint_root(run_dir), f"cannot write checkpoints of {run_dir}")
    partial = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}step_{step}-", dir=root))
    final = root / f"step_{step}"
    try:
        os.chmod(partial, 0o777 & ~_umask())  # mkdtemp makes it private; a checkpoint is an ordinary folder
        model_name = str(getattr(model, "model_name", ""))
        save_model(model, str(partial / WEIGHTS_FILE), metadata={"step": str(step), "model": model_name})
        torch.save(state, partial / STATE_FILE)
        manifest = {
            "format": MANIFEST_FORMAT,
            "step": step,
            "keep": bool(keep),
            "model": model_name,
            "files": {name: _file_record(partial / name) for name in (WEIGHTS_FILE, STATE_FILE)},
        }
        with open(partial / MANIFEST_FILE, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(manifest, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(partial)
        if final.exists():
            _discard(final)
        os.rename(partial, final)  # the commit
        fsync_dir(root)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    atomic_write(root / POINTER_FILE, f"{final.name}\n")
    _prune(root)
    return Checkpoint(Path(run_dir), final / WEIGHTS_FILE, final / STATE_FILE, step, final)


def _step_folders(root: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``step_N`` folder, newest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_FOLDER.match(p.name)) and p.is_dir()]
    return sorted(found, reverse=True)


def _manifest_keep(folder: Path) -> bool:
    try:
        manifest = read_json(folder / MANIFEST_FILE)
    except ProbeError:
        return False
    return isinstance(manifest, dict) and manifest.get("keep") is True


def _prune(root: Path) -> None:
    for index, (_, folder) in enumerate(_step_folders(root)):
        if index >= KEEP_PREVIOUS and not _manifest_keep(folder):
            _discard(folder)


def clean_partial_checkpoints(run_dir: Path) -> list[Path]:
    """Remove what a killed writer left in ``checkpoints/`` (partial and half-deleted folders, temp files).

    Call while holding the run folder's lock (:func:`probe.runs.run_folder_lock`).
    """
    from probe.io import remove_stale_temporaries

    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    removed = [p for p in root.iterdir() if p.name.startswith((PARTIAL_PREFIX, TRASH_PREFIX))]
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed + remove_stale_temporaries(root)


# -- verifying ----------------------------------------------------------------------------------------


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    """A truncated or foreign checkpoint file, reported on one line."""
    lines = str(exc).strip().splitlines()
    # torch's unpickling errors are paragraphs of advice; keep only short, specific reasons
    reason = f"{type(exc).__name__}: {lines[0]}" if len(lines) == 1 and len(lines[0]) <= 120 else type(exc).__name__
    return CheckpointError(f"{path}: cannot read this checkpoint ({reason}); expected a file written by `probe train`")


def weights_step(weights_path: Path) -> int | None:
    """The step recorded in a safetensors checkpoint's metadata (None when it records none)."""
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise _unreadable(weights_path, exc) from None
    try:
        return int(metadata["step"]) if "step" in metadata else None
    except ValueError:
        raise CheckpointError(f"{weights_path}: metadata step {metadata['step']!r} is not an integer") from None


def _read_manifest(folder: Path, step: int) -> dict[str, Any]:
    path = folder / MANIFEST_FILE
    if not path.exists():
        raise CheckpointError(f"{path}: missing (the checkpoint was never completed)")
    try:
        manifest = read_json(path)
    except ProbeError as exc:
        raise CheckpointError(str(exc)) from None  # names the manifest and what is wrong with it
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise CheckpointError(f"{path}: not a format-{MANIFEST_FORMAT} checkpoint manifest")
    if manifest.get("step") != step:
        raise CheckpointError(f"{path}: records step {manifest.get('step')!r}, but the folder is step_{step}")
    if not isinstance(manifest.get("files"), dict):
        raise CheckpointError(f"{path}: no 'files' table")
    return manifest


def _check_file(folder: Path, name: str, manifest: dict[str, Any]) -> Path:
    record, path = manifest["files"].get(name), folder / name
    if not isinstance(record, dict) or not {"bytes", "sha256"} <= set(record):
        raise CheckpointError(f"{folder / MANIFEST_FILE}: no size and SHA-256 recorded for {name}")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise CheckpointError(f"{path}: {size} bytes, the manifest records {record['bytes']} (truncated or replaced)")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != record["sha256"]:
        raise CheckpointError(f"{path}: SHA-256 differs from the manifest's (the file was modified or corrupted)")
    return path


def verify_checkpoint(folder: Path, *, with_state: bool = True) -> Checkpoint:
    """Check a ``step_N`` folder against its manifest; raise :class:`CheckpointError` naming the fault.

    ``with_state=False`` checks only the weights (enough for eval and predict).
    """
    folder = Path(folder)
    match = _STEP_FOLDER.match(folder.name)
    if match is None or not folder.is_dir():
        raise CheckpointError(f"{folder}: not a checkpoints/step_N folder")
    step = int(match.group(1))
    manifest = _read_manifest(folder, step)
    weights = _check_file(folder, WEIGHTS_FILE, manifest)
    if weights_step(weights) != step:
        raise CheckpointError(f"{weights}: metadata step {weights_step(weights)} differs from step_{step}")
    if with_state:
        _check_file(folder, STATE_FILE, manifest)
    return Checkpoint(folder.parent.parent, weights, folder / STATE_FILE, step, folder)


def read_state(checkpoint: Checkpoint) -> dict[str, Any]:
    """The training state of a checkpoint (``weights_only``: never runs code); its step must match."""
    path = checkpoint.state
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (needed to continue the run)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        step = int(state["position"]["step"])
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    if checkpoint.step is not None and step != checkpoint.step:
        raise CheckpointError(f"{path}: position step {step} differs from the weights' step {checkpoint.step}")
    return state


def has_legacy_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds probe 0.1's ``checkpoints/last.safetensors``."""
    return (checkpoint_root(run_dir) / _LEGACY_WEIGHTS).is_file()


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds any checkpoint (complete or not, either layout): a run has been started there."""
    return bool(_step_folders(checkpoint_root(run_dir))) or has_legacy_checkpoint(run_dir)


def _refuse_legacy(run_dir: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{what}: {checkpoint_root(run_dir)} holds probe 0.1 checkpoints (last.safetensors + last.state.pt, a pair a "
        "kill could leave from different steps); only verified checkpoints/step_N/ folders can be continued; "
        "start a new --out (eval, predict and --checkpoint still read the old weights)"
    )


def find_resume_point(run_dir: Path) -> tuple[Checkpoint, dict[str, Any]] | None:
    """The newest complete checkpoint of ``run_dir`` and its training state, or None when there is none.

    Every newer checkpoint that fails verification is reported with one
    ``probe: warning:`` line and skipped.  When checkpoints exist but none is
    complete, that is an error: falling back to step 0 would silently discard them.
    """
    candidates = _step_folders(checkpoint_root(run_dir))
    if not candidates and has_legacy_checkpoint(run_dir):
        raise _refuse_legacy(run_dir, "--resume")
    failures: list[str] = []
    for _, folder in candidates:
        try:
            checkpoint = verify_checkpoint(folder)
            state = read_state(checkpoint)
        except CheckpointError as exc:
            failures.append(str(exc))
            continue
        for failure in failures:
            warn(f"--resume: skipping an incomplete checkpoint: {failure}; using {folder.name}")
        return checkpoint, state
    if failures:
        raise CheckpointError(
            f"--resume: no complete checkpoint in {checkpoint_root(run_dir)} "
            f"({len(failures)} failed verification, newest: {failures[0]})"
        )
    return None


def latest_checkpoint(run_dir: Path, *, with_state: bool = False) -> Checkpoint | None:
    """The newest complete checkpoint of ``run_dir`` (warning about newer broken ones), or None."""
    failures: list[str] = []
    for _, folder in _step_folders(checkpoint_root(run_dir)):
        try:
            checkpoint = verify_checkpoint(folder, with_state=with_state)
        except CheckpointError as exc:
            failures.append(str(exc))
            continue
        for failure in failures:
            warn(f"skipping an incomplete checkpoint: {failure}; using {folder.name}")
        return checkpoint
    if failures:
        raise CheckpointError(
            f"{checkpoint_root(run_dir)}: no complete checkpoint "
            f"({len(failures)} failed verification, newest: {failures[0]})"
        )
    return None


# -- reading for eval, predict and analyses -----------------------------------------------------------


def _loose_weights(path: Path) -> Checkpoint:
    """A ``.safetensors`` file outside any step folder: probe 0.1's ``checkpoints/<tag>.safetensors`` or a copy."""
    run_dir = path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
    state = path.with_name(path.name[: -len(".safetensors")] + ".state.pt")
    return Checkpoint(run_dir, path, state, weights_step(path))


def resolve_checkpoint(path: str | Path, *, with_state: bool = False, flag: str = "--checkpoint") -> Checkpoint:
    """What ``--checkpoint PATH`` names, verified: the one door for eval, predict and the analyses.

    ``PATH`` is a run folder (its newest complete checkpoint), a
    ``checkpoints/step_N`` folder, that folder's ``weights.safetensors``, or a
    loose / probe-0.1 ``.safetensors`` file (weights only: ``with_state=True``
    refuses it).

    >>> resolve_checkpoint("runs/x").step          # doctest: +SKIP
    1200
    """
    target = Path(path)
    if target.is_dir() and (target / MANIFEST_FILE).exists():
        return verify_checkpoint(target, with_state=with_state)
    if target.is_dir():
        checkpoint = latest_checkpoint(target, with_state=with_state)
        if checkpoint is not None:
            return checkpoint
        if has_legacy_checkpoint(target):
            if with_state:
                raise _refuse_legacy(target, f"{flag} {target}")
            return _loose_weights(checkpoint_root(target) / _LEGACY_WEIGHTS)
        raise CheckpointError(
            f"{flag} {target}: no checkpoint in this folder (expected a run folder written by "
            "`probe train`, a checkpoints/step_N folder or a .safetensors file)"
        )
    if target.suffix != ".safetensors":
        raise CheckpointError(
            f"{flag} {target}: expected a run folder, a checkpoints/step_N folder or a .safetensors file"
        )
    if not target.is_file():
        raise CheckpointError(f"{flag} {target}: file not found")
    if target.name == WEIGHTS_FILE and (target.parent / MANIFEST_FILE).exists():
        return verify_checkpoint(target.parent, with_state=with_state)
    if with_state:
        raise _refuse_legacy(target.parent.parent, f"{flag} {target}")
    return _loose_weights(target)


def copy_checkpoint(checkpoint: Checkpoint, run_dir: Path) -> Checkpoint:
    """Copy a verified checkpoint (and its run's ``config.json``) into a new run folder, to continue it there."""
    if checkpoint.folder is None:
        raise _refuse_legacy(checkpoint.run_dir, f"--checkpoint {checkpoint.weights}")
    root = ensure_dir(checkpoint_root(run_dir), f"cannot write {run_dir}")
    shutil.copyfile(checkpoint.run_dir / "config.json", Path(run_dir) / "config.json")
    target = root / checkpoint.folder.name
    shutil.copytree(checkpoint.folder, target)
    atomic_write(root / POINTER_FILE, f"{target.name}\n")
    return verify_checkpoint(target)


def load_weights(model: nn.Module, weights_path: Path, device: torch.device, model_from: str = "") -> None:
    """Copy a safetensors checkpoint into ``model``; any missing, extra or misshapen tensor is a ProbeError.

    ``model_from`` says where the model's settings came from (for example ``config.json``'s model,
    width and model_options), so a mismatch names the file to check as well as the weights.
    """
    built = f" built from {model_from}" if model_from else ""
    try:
        missing, unexpected = load_model(model, str(weights_path), strict=False, device=str(device))
    except RuntimeError as exc:  # shape mismatches: a different model or width than the one saved
        first = str(exc).strip().splitlines()[-1].strip()
        raise ProbeError(f"{weights_path}: weights do not fit the model{built} ({first})") from None
    except (SafetensorError, OSError) as exc:
        raise _unreadable(weights_path, exc) from None
    if missing or unexpected:
        raise ProbeError(
            f"{weights_path}: weights do not match the model{built} "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )


def _model_settings(run_config: dict[str, Any], config_path: Path) -> str:
    """``config.json``'s settings that shape a model, for an error that names them."""
    keys = ("model", "width", "model_options")
    return f"{config_path} (" + ", ".join(f"{k}={run_config.get(k)!r}" for k in keys) + ")"


def run_train_config(run_dir: Path, flag: str = "--checkpoint") -> dict[str, Any]:
    """The resolved TrainConfig (plain dict) a run folder's ``config.json`` records under ``train``."""
    config_file = Path(run_dir) / "config.json"
    if not config_file.is_file():
        raise ProbeError(f"{flag} {run_dir}: {config_file} not found (needed to rebuild the model)")
    section = read_json(config_file)
    section = section.get("train") if isinstance(section, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get("config"), dict):
        raise ProbeError(f"{config_file}: no 'train' section (was this folder written by `probe train`?)")
    run_config = section["config"]
    for key in ("model", "width", "model_options"):
        if key not in run_config:
            raise ProbeError(f"{config_file}: train config lacks {key!r}")
    check_recorded_config(run_config, config_file)
    return run_config


def check_recorded_config(run_config: dict[str, Any], config_file: Path) -> None:
    """A run's recorded train config, checked like a data file before anything is built from it.

    Every value must have its :class:`~probe.training.TrainConfig` field's type, and what rebuilds the
    model and its input must lie in the domain a run could have had (a zoo name or SPEC of a depth
    model, a width and an input size within :mod:`probe.limits`, a known dataset).  The model options'
    values are checked where the model is built (:func:`load_checkpoint`).  One line names the file
    and the key; machine-dependent fields (workers, device) are not held against this machine.
    """
    from probe.data import dataset_info
    from probe.limits import check_input_size, check_width
    from probe.losses import LOSSES
    from probe.models import model_task
    from probe.models.spec import resolve_spec
    from probe.training.config import TrainConfig
    from probe.training.objective import OBJECTIVES

    where = f"{config_file} (train section)"
    try:
        recorded = TrainConfig.from_json(run_config)
        check_width(recorded.width, "width")
        check_input_size(recorded.input_size, "input_size")
        for key, check in (
            ("model", lambda: resolve_spec(recorded.model)),
            ("dataset", lambda: dataset_info(recorded.dataset)),
            ("loss", lambda: LOSSES.entry(recorded.loss)),
            ("objective", lambda: OBJECTIVES.entry(recorded.objective)),
        ):
            try:
                check()
            except ProbeError as exc:
                raise ProbeError(f"{key}: {exc}") from None
        if model_task(recorded.model) != "depth":
            raise ProbeError(f"model: {recorded.model} is a {model_task(recorded.model)} model, not a depth model")
        if recorded.split not in ("train", "test"):
            raise ProbeError(f"split: expected 'train' or 'test', got {recorded.split!r}")
        replace(recorded, workers=0).validate()  # every other value in its domain (workers: this machine's)
    except ProbeError as exc:
        message = str(exc).removeprefix("train config: ")
        # the checks name command-line flags; in a file the key is meant: "--dataset-length" -> "dataset_length"
        message = re.sub(r"^--([a-z0-9-]+)", lambda m: m.group(1).replace("-", "_"), message)
        raise ProbeError(f"{where}: {message}") from None


def build_recorded_model(run_config: dict[str, Any], config_file: Path) -> nn.Module:
    """The model a checked run config describes (initial-weight options left out: a checkpoint has every
    weight); a model option the model refuses is one line naming the file and the option (the model's own
    message names the option)."""
    from probe.models import build_model

    options = {k: v for k, v in run_config["model_options"].items() if k not in INIT_WEIGHT_OPTIONS}
    try:
        return build_model(run_config["model"], width=run_config["width"], **options)
    except ProbeError as exc:
        raise ProbeError(f"{config_file} (train section, model {run_config['model']}): {exc}") from None


#: Model options that only choose initial weights; a checkpoint overrides them.
INIT_WEIGHT_OPTIONS = ("weights", "pretrained")


def load_checkpoint(
    path: str | Path | Checkpoint, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from a run folder, a ``step_N`` folder or a ``.safetensors`` file.

    The checkpoint is resolved and verified by :func:`resolve_checkpoint`; the
    model is built from the run's ``config.json`` (``train`` section: model,
    width, model_options), its weights loaded, moved to ``device`` and put in
    eval mode.  ``run_config`` is that section's resolved
    :class:`~probe.training.TrainConfig` as a plain dict (``dataset``,
    ``input_size``, ``loss``, ...).

    >>> model, run_config = load_checkpoint("runs/x")                # doctest: +SKIP
    >>> model(torch.rand(1, 3, 240, 320)).shape, run_config["dataset"]  # doctest: +SKIP
    """
    checkpoint = path if isinstance(path, Checkpoint) else resolve_checkpoint(path)
    run_config = run_train_config(checkpoint.run_dir)
    # The checkpoint holds every weight: the file the run started from is neither needed nor re-read.
    config_path = Path(checkpoint.run_dir) / "config.json"
    model = build_recorded_model(run_config, config_path)
    dev = torch.device(device)
    load_weights(model, checkpoint.weights, dev, model_from=_model_settings(run_config, config_path))
    return model.to(dev).eval(), run_config
