"""Nothing a command loads from a file may run code: a `__reduce__` payload planted in any file a command
reads is refused with one line, and the marker file it would write never appears.

Each case plants a malicious pickle (see tests/models/checkpoint_files.py) where the command looks: the
checkpoint files of a run (found through `probe.training.checkpoint.resolve_checkpoint`, not hard-coded, with
the manifest's hashes recomputed so that only the loader itself stands between the payload and running it), or
a `weights=` / `pretrained=` model option.  A positive control shows the payload is live.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
from PIL import Image

from probe.training.checkpoint import MANIFEST_FILE, resolve_checkpoint
from tests.models.checkpoint_files import save_malicious_pickle


def _poisoned_copy(run: Path, tmp_path: Path, which: str, marker: Path) -> Path:
    import hashlib
    import json

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    checkpoint = resolve_checkpoint(copy, with_state=True)
    target = checkpoint.weights if which == "weights" else checkpoint.state
    save_malicious_pickle(target, marker)
    manifest = json.loads((checkpoint.folder / MANIFEST_FILE).read_text())
    data = target.read_bytes()
    manifest["files"][target.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (checkpoint.folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return copy


def test_the_payload_is_live_when_unpickled_plainly(tmp_path):
    marker = tmp_path / "marker"
    path = save_malicious_pickle(tmp_path / "evil.pkl", marker, torch_format=False)
    pickle.loads(path.read_bytes())
    assert marker.read_text() == "ran"


def _image(tmp_path: Path) -> Path:
    Image.new("RGB", (24, 16), (120, 30, 200)).save(tmp_path / "room.png")
    return tmp_path / "room.png"


COMMANDS = {
    "eval": lambda run, tmp: ("eval", "--checkpoint", run, "--dataset-length", "2", "--device", "cpu", "--out", tmp / "o"),
    "predict": lambda run, tmp: ("predict", "--checkpoint", run, _image(tmp), "--device", "cpu", "--out", tmp / "o"),
    "train --resume": lambda run, tmp: ("train", "--model", "densedepth", "--width", "0.0625", "--input-size", "32x48",
                                        "--dataset-length", "4", "--max-steps", "2", "--batch-size", "2",
                                        "--device", "cpu", "--resume", "--out", run),
    "collapse --checkpoint": lambda run, tmp: ("collapse", "--checkpoint", run, "--device", "cpu", "--out", tmp / "o"),
    "attribution --checkpoint": lambda run, tmp: ("attribution", "--checkpoint", run, "--device", "cpu",
                                                  "--out", tmp / "o"),
    "gradients --checkpoint": lambda run, tmp: ("gradients", "--checkpoint", run, "--steps", "1", "--device", "cpu",
                                                "--out", tmp / "o"),
    "noise --checkpoint": lambda run, tmp: ("noise", "--checkpoint", run, "--device", "cpu", "--out", tmp / "o"),
}


@pytest.mark.parametrize("which", ["weights", "state"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_poisoned_checkpoint_file_is_refused_by_every_command(run_cli, trained_run, tmp_path, command, which):
    marker = tmp_path / "marker"
    run = _poisoned_copy(trained_run, tmp_path, which, marker)
    res = run_cli(*COMMANDS[command](run, tmp_path))
    assert not marker.exists(), f"{command} ran the payload planted in the {which} file"
    if res.code == 0:
        # only commands that never open this file may succeed: eval/predict/collapse/attribution read weights only
        assert which == "state" and command in {"eval", "predict", "collapse --checkpoint", "attribution --checkpoint"}
    else:
        assert res.code == 2 and res.err.count("\n") == 1, res


@pytest.mark.parametrize("option, model", [("weights", "densedepth"), ("pretrained", "densedepth"),
                                           ("weights", "packnet_slim_b")])
def test_a_malicious_weights_or_pretrained_file_is_refused_through_the_model_options(run_cli, tmp_path, option, model):
    marker = tmp_path / "marker"
    evil = save_malicious_pickle(tmp_path / "model.ckpt", marker)
    res = run_cli("train", "--model", model, "--width", "0.0625", "--input-size", "32x48", "--dataset-length", "4",
                  "--max-steps", "1", "--batch-size", "2", "--device", "cpu", "--model-option", f"{option}={evil}",
                  "--out", tmp_path / "o")
    assert not marker.exists()
    assert res.code == 2 and res.err.count("\n") == 1 and "refused to load" in res.err and f"{option}=" in res.err, res
