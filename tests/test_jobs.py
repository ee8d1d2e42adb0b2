"""Independent runs side by side (probe.jobs): job records, failures, GPUs per worker, the SLURM job script.

The end-to-end checks (``--parallel 2`` and submitit's local executor writing the sequential
run's experiments.json, a preempted job resuming) are in tests/training/test_experiments.py.
"""

from __future__ import annotations

import json
import os
import queue
import time

import pytest
import torch

from probe.errors import ProbeError
from probe.jobs import (Job, JobRecord, Launch, SubmititJob, _gpus_for, _init_worker, run_jobs, slurm_parameters,
                        threads_per_job)


def _returns(value):
    return value


def _fails(message, after=0.0):
    time.sleep(after)
    raise ProbeError(message)


def _sleeps(seconds):
    time.sleep(seconds)
    return seconds


def test_in_process_jobs_return_in_order_and_record_every_start(tmp_path):
    jobs = [Job(name, tmp_path / name, _returns, (i,)) for i, name in enumerate(["b", "a", "c"])]
    assert run_jobs(jobs) == [0, 1, 2]
    assert run_jobs(jobs[:1]) == [0]  # a second start of "b" is a second attempt in its record
    record = JobRecord.read(tmp_path / "b")
    assert [a.status for a in record.attempts] == ["finished", "finished"]
    assert record.attempts[0].pid == os.getpid() and record.attempts[0].launcher == "local"
    assert JobRecord.from_json(json.loads((tmp_path / "b" / "job.json").read_text())) == record


def test_a_failed_job_is_one_error_naming_it_and_recorded_as_failed(tmp_path):
    with pytest.raises(ProbeError, match=r"^broken: --data-root: no such folder$"):
        run_jobs([Job("broken", tmp_path / "broken", _fails, ("--data-root: no such folder",))])
    attempt = JobRecord.read(tmp_path / "broken").attempts[-1]
    assert attempt.status == "failed" and attempt.error == "ProbeError: --data-root: no such folder"


def test_in_a_pool_a_failed_job_stops_the_others_at_once(tmp_path):
    jobs = [Job("slow", tmp_path / "slow", _sleeps, (120,)), Job("broken", tmp_path / "broken", _fails, ("bad input", 2.0))]
    started = time.monotonic()
    with pytest.raises(ProbeError, match="^broken: bad input$"):
        run_jobs(jobs, Launch(parallel=2), device="cpu")
    assert time.monotonic() - started < 60, "the other worker was ended, not waited for"
    slow = JobRecord.read(tmp_path / "slow").attempts[0]
    assert slow.pid != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(slow.pid, 0)


def test_threads_are_split_between_the_runs(monkeypatch):
    monkeypatch.setattr("probe.jobs.available_cores", lambda: 16)
    assert [threads_per_job(n) for n in (1, 2, 3, 16, 40)] == [16, 8, 5, 1, 1]


def _torch_threads():
    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")


def test_threads_per_run_pins_sequential_runs_too_and_is_restored(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        jobs = [Job("a", tmp_path / "a", _torch_threads)]
        assert run_jobs(jobs, Launch(threads=2)) == [(2, "2")]
        assert JobRecord.read(tmp_path / "a").attempts[0].threads == 2
        assert _torch_threads() == (1, "7")
    finally:
        torch.set_num_threads(before)


def test_on_cuda_each_worker_gets_one_visible_gpu_of_its_own(monkeypatch):
    monkeypatch.setattr("probe.device.resolve_device", lambda spec: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert _gpus_for("auto", 3) == ["0", "1", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # the GPUs this process may use, by their names
    assert _gpus_for("cuda", 2) == ["5", "7"]
    with pytest.raises(ProbeError, match=r"--parallel 3: one run per GPU, and 2 GPU\(s\) are visible"):
        _gpus_for("auto", 3)
    with pytest.raises(ProbeError, match="--device cuda:1"):
        _gpus_for("cuda:1", 2)
    monkeypatch.setattr("probe.device.resolve_device", lambda spec: torch.device("cpu"))
    assert _gpus_for("auto", 2) is None


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that is gone to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
def test_pool_workers_end_when_the_process_that_started_them_is_killed(tmp_path):
    """SIGKILL leaves the parent no chance to stop its pool: the workers notice and end themselves."""
    import signal
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path; from probe.jobs import Job, Launch, run_jobs; "
        "from tests.test_jobs import _sleeps; out = Path(sys.argv[1]); "
        "run_jobs([Job(n, out / n, _sleeps, (300,)) for n in ('a', 'b')], Launch(parallel=2), device='cpu')"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=root, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all((tmp_path / n / "job.json").is_file() for n in "ab"):
            time.sleep(0.2)
        pids = [JobRecord.read(tmp_path / n).attempts[0].pid for n in "ab"]
        assert all(_alive(pid) for pid in pids) and parent.pid not in pids
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in pids), "a worker outlived the killed parent"


def test_a_pool_worker_takes_its_gpu_and_threads_before_any_job(monkeypatch):
    for key in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PROBE_PROGRESS"):
        monkeypatch.setenv(key, "unset")  # restored after the test
    gpus: queue.Queue = queue.Queue()
    gpus.put("7")
    before = torch.get_num_threads()
    try:
        _init_worker(1, gpus)
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "7" and os.environ["OMP_NUM_THREADS"] == "1"
        assert os.environ["PROBE_PROGRESS"] == "0" and torch.get_num_threads() == 1 and gpus.empty()
    finally:
        torch.set_num_threads(before)


def test_the_slurm_job_script_asks_for_the_partition_gpus_time_requeue_and_the_preemption_signal(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string

    launch = Launch(launcher="slurm", partition="gpu", gpus_per_job=1, cpus_per_job=8, time_min=90, parallel=2)
    script = _make_sbatch_string(command="python -u -m submitit.core._submit x", folder=tmp_path, map_count=6,
                                 **slurm_parameters(launch, 6, "probe-experiments"))
    lines = script.splitlines()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --time=90", "#SBATCH --requeue", "#SBATCH --signal=USR2@120", "#SBATCH --array=0-5%2",
                 "#SBATCH --job-name=probe-experiments", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1"):
        assert line in lines, script
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert any(line.startswith(f"export PYTHONPATH={root}") for line in lines), "jobs import this probe"
    every_job_at_once = slurm_parameters(Launch(launcher="slurm", partition="gpu"), 6, "x")
    assert every_job_at_once["array_parallelism"] == 6 and "cpus_per_task" not in every_job_at_once


def test_checkpoint_requeues_the_same_job_with_resume(tmp_path):
    job = SubmititJob(Job("a", tmp_path / "a", _returns, (1,)), "slurm", None)
    delayed = job.checkpoint()
    assert delayed.function is job and delayed.args == () and delayed.kwargs == {"resume": True}
