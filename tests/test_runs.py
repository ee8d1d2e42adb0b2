"""One writer per run folder: the lock refuses a second process at once, nests in one process, never goes stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from probe.errors import ProbeError
from probe.runs import holds_run_folder_lock, prepare_run_dir, run_folder_lock
from tests.training.conftest import TINY_FLAGS, run_probe

HOLD = textwrap.dedent("""
    import os, sys, time
    from probe.runs import run_folder_lock
    with run_folder_lock(sys.argv[1], "hold"):
        if os.fork() == 0:          # like a DataLoader worker: a child forked while the lock is held
            time.sleep(60)
            os._exit(0)
        print("locked", flush=True)
        time.sleep(60)
""")


def _holder(folder) -> subprocess.Popen:
    from tests.training.conftest import ROOT, subprocess_env

    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_at_once_naming_the_folder_and_the_holder(tmp_path):
    with run_folder_lock(tmp_path / "run", "train"):
        start = time.monotonic()
        res = run_probe("train", *TINY_FLAGS, "--dataset-length", "8", "--max-steps", "1", "--out",
                        str(tmp_path / "run"))
        assert res.returncode == 2 and not (tmp_path / "run" / "config.json").exists()
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert f"--out {tmp_path / 'run'}: another probe command is writing into this run folder" in lines[0]
        assert f"PID {os.getpid()}" in lines[0] and "`probe train`" in lines[0] and "started 20" in lines[0]
        assert time.monotonic() - start < 60, "refused at once, never waiting for the holder"


def test_the_lock_file_records_pid_command_and_start_time(tmp_path):
    with run_folder_lock(tmp_path, "gradients"):
        record = json.loads((tmp_path / ".lock").read_text())
    assert record["pid"] == os.getpid() and record["command"] == "gradients" and record["started"][:2] == "20"


def test_nested_use_in_one_process_reenters_instead_of_deadlocking(tmp_path):
    with run_folder_lock(tmp_path / "study", "study"):
        with run_folder_lock(tmp_path / "study", "gradients"):
            prepare_run_dir(tmp_path / "study", "gradients", {"steps": 1})  # takes it a third time
            with run_folder_lock(tmp_path / "study" / "runs" / "a", "train"):
                assert holds_run_folder_lock(tmp_path / "study" / "runs" / "a")
        assert holds_run_folder_lock(tmp_path / "study")
    assert not holds_run_folder_lock(tmp_path / "study")


def test_a_lock_held_by_another_process_refuses_the_shared_run_folder_entry(tmp_path):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(ProbeError, match=rf"another probe command .*`probe hold`, PID {holder.pid}"):
            prepare_run_dir(tmp_path, "complexity", {})
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_from_a_sigkilled_writer_never_blocks_even_with_its_forked_child_alive(tmp_path):
    holder = _holder(tmp_path)
    child_pids = subprocess.run(["pgrep", "-P", str(holder.pid)], capture_output=True, text=True).stdout.split()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    try:
        assert child_pids, "the holder's forked child is still running"
        with run_folder_lock(tmp_path, "train"):
            assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    finally:
        for pid in child_pids:
            os.kill(int(pid), signal.SIGKILL)


def test_taking_the_lock_removes_the_temporaries_a_killed_writer_left(tmp_path):
    from probe.io import TEMP_MARK

    stale = tmp_path / f".gradients.json.k2j8{TEMP_MARK}.json"
    stale.write_text('{"half": ')
    (tmp_path / "gradients.json").write_text("{}")
    with run_folder_lock(tmp_path, "gradients"):
        assert not stale.exists() and (tmp_path / "gradients.json").exists()


ANALYSES = {
    "gradients": ("gradients", "--model", "packnet_slim_b", "--width", "0.0625", "--input-size", "16x16", "--steps", "1"),
    "noise": ("noise", "--model", "packnet_slim_b", "--width", "0.0625", "--input-size", "16x16", "--steps", "1"),
    "collapse": ("collapse", "--model", "packnet_slim_b", "--width", "0.0625", "--input-size", "16x16", "--steps", "1"),
    "complexity": ("complexity", "--model", "packnet_slim_b", "--width", "0.0625", "--input-size", "16x16"),
    "autoencoder": ("autoencoder", "--arch", "maxpool", "--levels", "1", "--steps", "1", "--input-size", "16x16"),
    "attribution": ("attribution", "--model", "packnet_slim_b", "--width", "0.0625", "--input-size", "16x16"),
    "properties": ("properties", "--examples", "1"),
}


@pytest.mark.parametrize("command", list(ANALYSES))
def test_every_analysis_refuses_a_busy_run_folder_before_any_work(run_cli, tmp_path, command):
    """The lock is taken at command start, so a second writer never trains or measures before it is refused."""
    holder = _holder(tmp_path)
    try:
        device = () if command == "properties" else ("--device", "cpu")
        res = run_cli(*ANALYSES[command], *device, "--out", tmp_path)
    finally:
        holder.kill()
        holder.wait()
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1 and "another probe command is writing" in lines[0], res
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"], "nothing but the holder's lock file"
    assert "wrote" not in res.out


def test_the_lock_file_is_removed_on_release_and_left_only_by_a_killed_holder(tmp_path):
    with run_folder_lock(tmp_path, "gradients"):
        assert (tmp_path / ".lock").is_file()
    assert not (tmp_path / ".lock").exists()
    holder = _holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (tmp_path / ".lock").is_file()  # stale, never blocking (see above)


def test_a_lock_file_removed_between_open_and_lock_is_taken_again(tmp_path, monkeypatch):
    """A releasing holder unlinks the file another process has just opened: that process must lock the new one."""
    import probe.runs as runs

    real_open, calls = os.open, []

    def racing_open(path, flags, mode=0o777):
        fd = real_open(path, flags, mode)
        calls.append(path)
        if len(calls) == 1:
            os.unlink(path)  # the old holder's release happens right here
        return fd

    monkeypatch.setattr(runs.os, "open", racing_open)
    with run_folder_lock(tmp_path, "train"):
        held = runs._HELD[str(tmp_path.resolve())]
        assert len(calls) == 2 and os.path.samestat(os.fstat(held.fd), os.stat(tmp_path / ".lock"))
