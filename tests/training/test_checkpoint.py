"""Checkpoints as one verified unit: layout, pruning, and the fallback from every kind of broken checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_model

from probe.errors import ProbeError
from probe.training import load_checkpoint, train
from probe.training.checkpoint import (CheckpointError, clean_partial_checkpoints, find_resume_point,
                                       has_checkpoint, latest_checkpoint, resolve_checkpoint, save_checkpoint,
                                       verify_checkpoint)


def _state(step: int) -> dict:
    return {"position": {"step": step, "epoch": 0, "batch_in_epoch": step}, "optimizer": {"lr": 0.1},
            "marker": torch.full((4,), float(step))}


def _save(run: Path, *steps: int, keep: bool = False) -> nn.Module:
    model = nn.Linear(3, 2)
    for step in steps:
        with torch.no_grad():
            model.weight.fill_(step)
        save_checkpoint(run, model, _state(step), keep=keep)
    return model


def _rewrite_manifest(folder: Path) -> None:
    """Make the manifest match whatever files are there now (a consistent-looking but mixed pair)."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_checkpoint_is_a_step_folder_with_both_files_a_manifest_and_the_last_pointer(tmp_path):
    _save(tmp_path, 1, 2)
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["last", "step_1", "step_2"]
    assert sorted(p.name for p in (root / "step_2").iterdir()) == ["manifest.json", "state.pt", "weights.safetensors"]
    assert (root / "last").read_text() == "step_2\n"
    found, state = find_resume_point(tmp_path)
    assert found.step == 2 and torch.equal(state["marker"], torch.full((4,), 2.0))


def test_pruning_keeps_the_two_newest_and_every_periodic_checkpoint(tmp_path):
    _save(tmp_path, 2, keep=True)
    _save(tmp_path, 3, 4, 5)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last", "step_2", "step_4", "step_5"]


BREAKAGES = {
    "weights byte flipped": lambda f: _flip_last_byte(f / "weights.safetensors"),
    "state truncated": lambda f: _truncate(f / "state.pt"),
    "manifest missing": lambda f: (f / "manifest.json").unlink(),
    "manifest names another step": lambda f: _edit_manifest(f, step=1),
    "weights of another step": lambda f: (shutil.copyfile(f.parent / "step_1" / "weights.safetensors",
                                                          f / "weights.safetensors"), _rewrite_manifest(f)),
    "state of another step": lambda f: (shutil.copyfile(f.parent / "step_1" / "state.pt", f / "state.pt"),
                                        _rewrite_manifest(f)),
    "state not a torch file": lambda f: ((f / "state.pt").write_bytes(b"not a pickle"), _rewrite_manifest(f)),
}

MESSAGES = {
    "weights byte flipped": "weights.safetensors: SHA-256 differs",
    "state truncated": "state.pt: .* bytes, the manifest records",
    "manifest missing": "manifest.json: missing",
    "manifest names another step": "records step 1, but the folder is step_2",
    "weights of another step": "metadata step 1 differs from step_2",
    "state of another step": "position step 1 differs from the weights' step 2",
    "state not a torch file": "state.pt: cannot read this checkpoint",
}


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_manifest(folder: Path, **changes) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, **changes}))


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_resume_falls_back_from_a_broken_newest_checkpoint_with_one_warning(tmp_path, capsys, breakage):
    _save(tmp_path, 1, 2)
    BREAKAGES[breakage](tmp_path / "checkpoints" / "step_2")
    found, state = find_resume_point(tmp_path)
    assert found.step == 1 and state["position"]["step"] == 1
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("probe: warning: --resume: skipping an incomplete checkpoint")
    assert __import__("re").search(MESSAGES[breakage], warning[0]) and warning[0].endswith("using step_1")


def test_every_checkpoint_broken_is_an_error_not_a_silent_restart(tmp_path):
    _save(tmp_path, 1, 2)
    for step in (1, 2):
        _flip_last_byte(tmp_path / "checkpoints" / f"step_{step}" / "weights.safetensors")
    with pytest.raises(CheckpointError, match=r"--resume: no complete checkpoint .*2 failed verification"):
        find_resume_point(tmp_path)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        resolve_checkpoint(tmp_path)


def test_no_checkpoint_yet_resumes_from_nothing(tmp_path):
    assert find_resume_point(tmp_path) is None and latest_checkpoint(tmp_path) is None
    assert not has_checkpoint(tmp_path)


def test_eval_needs_only_the_weights_and_a_named_step_folder_is_verified(tmp_path):
    _save(tmp_path, 1, 2)
    _truncate(tmp_path / "checkpoints" / "step_2" / "state.pt")
    assert resolve_checkpoint(tmp_path).step == 2, "a broken state does not stop eval or predict"
    assert resolve_checkpoint(tmp_path, with_state=True).step == 1
    with pytest.raises(CheckpointError, match="state.pt"):
        resolve_checkpoint(tmp_path / "checkpoints" / "step_2", with_state=True)
    assert resolve_checkpoint(tmp_path / "checkpoints" / "step_1" / "weights.safetensors").step == 1


def test_leftovers_of_a_killed_writer_are_removed_and_never_taken_for_checkpoints(tmp_path):
    _save(tmp_path, 1)
    root = tmp_path / "checkpoints"
    shutil.copytree(root / "step_1", root / ".partial-step_2-abc")  # killed before its rename
    shutil.copytree(root / "step_1", root / ".trash-step_0-1-2")  # killed while deleting
    (root / ".last.x1.probe-tmp").write_text("step_")  # killed while replacing the pointer
    assert find_resume_point(tmp_path)[0].step == 1
    removed = clean_partial_checkpoints(tmp_path)
    assert sorted(p.name for p in removed) == [".last.x1.probe-tmp", ".partial-step_2-abc", ".trash-step_0-1-2"]
    assert sorted(p.name for p in root.iterdir()) == ["last", "step_1"]


def test_a_checkpoint_is_replaced_when_its_step_is_saved_again(tmp_path):
    _save(tmp_path, 1, 2)
    _flip_last_byte(tmp_path / "checkpoints" / "step_2" / "weights.safetensors")
    _save(tmp_path, 2)  # a run that fell back to step 1 reaches step 2 again
    assert verify_checkpoint(tmp_path / "checkpoints" / "step_2").step == 2


def test_training_resumes_from_the_previous_checkpoint_when_the_newest_is_corrupt(tiny, capsys):
    first = train(tiny(epochs=2, checkpoint_every=1))
    _flip_last_byte(first.checkpoint)
    resumed = train(tiny(epochs=3, checkpoint_every=1, resume=True))
    assert "skipping an incomplete checkpoint" in capsys.readouterr().err
    assert resumed.summary.resumed_from_step == 3 and resumed.steps == 6
    assert verify_checkpoint(resumed.checkpoint.parent).step == 6


def test_resume_without_any_checkpoint_starts_at_step_zero_with_a_warning(tiny, capsys):
    result = train(tiny(max_steps=2, resume=True))
    assert result.steps == 2 and result.summary.resumed_from_step is None
    assert "--resume: no checkpoint in" in capsys.readouterr().err


def test_probe_0_1_run_folders_load_for_eval_but_refuse_to_resume(tiny, tmp_path):
    run = train(tiny(max_steps=1)).out
    legacy = run / "checkpoints"
    model, _ = load_checkpoint(run)
    shutil.rmtree(legacy)
    legacy.mkdir()
    save_model(model, str(legacy / "last.safetensors"), metadata={"step": "1", "model": "packnet_slim_b"})
    reloaded, run_config = load_checkpoint(run)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reloaded.state_dict().values()))
    with pytest.raises(ProbeError, match=r"--resume: .* holds probe 0.1 checkpoints .*start a new --out"):
        train(tiny(max_steps=2, resume=True))
    with pytest.raises(ProbeError, match="already holds a training run"):
        train(tiny(max_steps=2))
