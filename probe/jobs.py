"""Independent runs side by side: in this process, in a local process pool, or as submitit jobs (SLURM).

The seed study's experiment matrix and the self-supervised study's runs share nothing but
their inputs: each is one model, options and seed trained into a run folder of its own, and
each seeds itself from its own config at its start (:func:`probe.seeding.seed_everything` in
the training loop).  The order they run in and the process they run in therefore do not
change their numbers.  :func:`run_jobs` runs a list of :class:`Job` s and returns their
results in the list's order, however they were run (:class:`Launch`):

======================  ==========================================================================
``Launch()``            one after another in this process (the default)
``parallel=N``          N worker processes (``ProcessPoolExecutor``, "spawn").  On CPU each gets
                        ``max(1, cores // N)`` torch threads (and ``OMP_NUM_THREADS`` /
                        ``MKL_NUM_THREADS`` for its own children); on CUDA each gets one GPU
                        of its own through ``CUDA_VISIBLE_DEVICES``, so N is at most the GPUs
``launcher="slurm"``    one SLURM job per run through submitit (``partition``, ``gpus_per_job``,
                        ``time_min``), at most N running at once (a job array's parallelism;
                        default: all); ``#SBATCH --requeue`` and submitit's USR2 signal before
                        the time limit or at preemption: the job is requeued and resumes
``"submitit-local"``    the same submitit jobs as subprocesses of this machine (submitit's
                        LocalExecutor), at most N at once: how the SLURM path is tested here
======================  ==========================================================================

Threads and numbers: on a CPU a run's numbers depend on its torch thread count (kernels split
their sums between threads, so the rounding differs), never on its process or its order.  A
sequential run uses this process's threads (all cores by default) and a ``--parallel N`` worker
``cores // N``.  Measured on the quick seed study (2 threads against 1): the losses part from step
2 to 7 on, and after 24 steps the final losses differ by up to 1.3e-4 relative
(``bench/results/parallel-cpu.json``).  ``threads`` (``--threads-per-run``) gives every run the
same count, in this process too; the numbers are then bit for bit those of the sequential run for
any N and launcher.

A job is an ordinary resumable run folder.  Started again, whether requeued after a
preemption (submitit calls :meth:`SubmititJob.checkpoint`, which requeues it with
``resume=True``), restarted after a crash or re-run by hand, its function finds the run
folder's newest checkpoint (:mod:`probe.training.checkpoint`) and continues from there; a
preempted job loses at most the steps since that checkpoint (``--checkpoint-every``).  Every
start of a job is recorded in ``RUN_DIR/job.json`` (:class:`JobRecord`): launcher, job id,
host, threads, GPU, the checkpoint it started from and how it ended.

One run over several GPUs is not a job list: that stays ``probe train --nproc-per-node``
(torchrun DDP).

>>> run_jobs([Job("a", Path("runs/x/a"), train_one, (config_a,))], Launch(parallel=2))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import shutil
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from probe.errors import ProbeError, one_line, warn
from probe.io import ensure_dir, read_json, write_json
from probe.limits import MAX_STEPS, check_int, max_workers
from probe.options import option
from probe.progress import progress_bar
from probe.runs import run_folder_lock
from probe.schema import decode, encode

LAUNCHERS = {
    "local": "this machine: in this process, or --parallel N worker processes",
    "slurm": "one SLURM job per run through submitit (needs srun/sbatch: a cluster's login node)",
    "submitit-local": "submitit jobs as local subprocesses (submitit's LocalExecutor), as SLURM would run them",
}
JOB_FILE = "job.json"
SUBMITIT_FOLDER = "submitit"
PROGRESS_ENV = "PROBE_PROGRESS"  # "0" in workers: N progress bars on one terminal would garble it
MAX_PARALLEL_JOBS = 10_000
DEFAULT_TIME_MIN = 240


@dataclass(frozen=True)
class Launch:
    """How a list of independent runs is run: where, how many at once, and with what resources.

    ``parallel``: runs at once (None: 1 on this machine, every run at once on SLURM).
    ``threads``: torch threads of every run, in this process too (None: this process's own when
    sequential, ``max(1, cores // parallel)`` in a worker, the job's CPUs on SLURM).
    ``partition``, ``gpus_per_job``, ``cpus_per_job``, ``time_min``: each SLURM job's
    resources (``time_min`` is also the submitit-local jobs' time limit).
    """

    parallel: int | None = option(
        None,
        help="runs at once: worker processes here (CPU threads split between them; one GPU each on CUDA), "
        "or SLURM jobs at once (default: 1 here, all on SLURM)",
    )
    threads: int | None = option(
        None,
        flag="--threads-per-run",
        help="torch threads of every run, sequential ones too (default: this process's when sequential, "
        "cores // --parallel in a worker); equal threads give bit-equal numbers",
    )
    launcher: str = option(
        "local",
        help="local|slurm|submitit-local: this machine, one SLURM job per run (submitit; requeued on preemption), "
        "or submitit jobs on this machine",
    )
    partition: str | None = option(None, help="SLURM partition (--launcher slurm)")
    gpus_per_job: int = option(1, help="GPUs of each SLURM job")
    cpus_per_job: int | None = option(None, help="CPUs of each SLURM job (default: the partition's)")
    time_min: int = option(DEFAULT_TIME_MIN, help="time limit of each submitit job, minutes")

    @property
    def in_process(self) -> bool:
        """One run after another in the calling process: the behaviour without any launch flag."""
        return self.launcher == "local" and (self.parallel or 1) == 1

    def validate(self) -> None:
        """One-line errors for flags that cannot go together, before any run starts."""
        if self.launcher not in LAUNCHERS:
            raise ProbeError(f"--launcher: expected one of {', '.join(LAUNCHERS)}, got {self.launcher!r}")
        if self.parallel is not None:
            high = max_workers() if self.launcher == "local" else MAX_PARALLEL_JOBS
            check_int(
                "--parallel",
                self.parallel,
                1,
                high,
                "runs at once; at most 4 per CPU core on this machine" if self.launcher == "local" else "",
            )
        check_int("--time-min", self.time_min, 1, MAX_STEPS, "minutes")
        if self.threads is not None:
            check_int("--threads-per-run", self.threads, 1, 1024, "torch threads of each run")
        if self.launcher == "slurm":
            if not self.partition:
                raise ProbeError("--launcher slurm: needs --partition (the SLURM partition the jobs run in)")
            if shutil.which("srun") is None or shutil.which("sbatch") is None:
                raise ProbeError(
                    "--launcher slurm: no srun/sbatch on this machine; run the command on the "
                    "cluster's login node (or use --launcher submitit-local here)"
                )
            check_int("--gpus-per-job", self.gpus_per_job, 0, 64, "GPUs of each SLURM job")
            if self.cpus_per_job is not None:
                check_int("--cpus-per-job", self.cpus_per_job, 1, 1024)
        elif self.partition is not None:
            raise ProbeError(f"--partition: only with --launcher slurm (got --launcher {self.launcher})")


@dataclass(frozen=True)
class Job:
    """One independent run: ``fn(*args)`` trains into ``run_dir`` (resuming what it finds there).

    ``fn`` must be a module-level function and ``args`` plain picklable values: a worker
    process or a submitit job imports the function by name.
    """

    name: str
    run_dir: Path
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass
class Attempt:
    """One start of a job, as ``job.json`` records it."""

    started: str
    host: str
    pid: int
    launcher: str
    job_id: str | None  # submitit's job id (the SLURM job id); None in this process or a local pool
    threads: int
    cuda_visible_devices: str | None
    resume: bool  # started by submitit's checkpoint(): requeued after a preemption or time-out
    checkpoint_step: int | None  # the run folder's newest checkpoint at the start (None: a fresh run)
    status: str = "running"  # running | finished | failed | interrupted
    ended: str | None = None
    error: str | None = None


@dataclass
class JobRecord:
    """``RUN_DIR/job.json``: every start of one job, oldest first."""

    name: str
    attempts: list[Attempt] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_json(cls, data: Any) -> "JobRecord":
        return decode(cls, data)

    @classmethod
    def read(cls, run_dir: Path) -> "JobRecord | None":
        path = Path(run_dir) / JOB_FILE
        return cls.from_json(read_json(path)) if path.is_file() else None


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def set_threads(threads: int) -> None:
    """Run this process's torch (and its children's OpenMP / MKL) on ``threads`` threads."""
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask: what a container or SLURM grants)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_job(parallel: int) -> int:
    """Torch threads of each of ``parallel`` runs sharing this machine's cores."""
    return max(1, available_cores() // parallel)


def execute(
    job: Job, launcher: str, *, resume: bool = False, job_id: str | None = None, threads: int | None = None
) -> Any:
    """Run one job in this process under its run folder's writer lock, recording the start in ``job.json``."""
    import torch

    from probe.training.checkpoint import latest_checkpoint

    if threads is not None:
        set_threads(threads)
    run_dir = ensure_dir(job.run_dir, "--out")
    with run_folder_lock(run_dir, f"job {job.name}"):  # train() inside re-enters it
        record = JobRecord.read(run_dir) or JobRecord(job.name)
        newest = latest_checkpoint(run_dir)
        attempt = Attempt(
            started=_now(),
            host=platform.node(),
            pid=os.getpid(),
            launcher=launcher,
            job_id=job_id,
            threads=torch.get_num_threads(),
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            resume=resume,
            checkpoint_step=newest.step if newest is not None else None,
        )
        record.attempts.append(attempt)
        write_json(run_dir / JOB_FILE, record.to_json())
        try:
            result = job.fn(*job.args)
        except BaseException as exc:  # recorded, then raised on: requeue exits and Ctrl-C end here too
            attempt.status = "interrupted" if isinstance(exc, (SystemExit, KeyboardInterrupt)) else "failed"
            attempt.error = None if attempt.status == "interrupted" else f"{type(exc).__name__}: {one_line(exc)}"
            attempt.ended = _now()
            write_json(run_dir / JOB_FILE, record.to_json())
            raise
        attempt.status, attempt.ended = "finished", _now()
        write_json(run_dir / JOB_FILE, record.to_json())
        return result


def run_jobs(
    jobs: Sequence[Job], launch: Launch = Launch(), *, device: str = "auto", out: Path | None = None, what: str = "runs"
) -> list[Any]:
    """Run every job as ``launch`` says; their results in the order of ``jobs``.

    ``device`` is the runs' ``--device`` (it decides between CPU threads and one GPU per
    worker); ``out`` holds submitit's folder (``out/submitit``: pickled jobs and logs).
    A failed job stops the rest (their run folders stay resumable) and is raised as one
    ProbeError naming it.
    """
    launch.validate()
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ProbeError(f"{what}: job names must be distinct, got {names}")
    if not jobs:
        return []
    if launch.in_process:
        with torch_threads(launch.threads):
            return [_named(job, partial(execute, job, "local")) for job in jobs]
    if launch.launcher == "local":
        return _run_pool(jobs, launch, device, what)
    return _run_submitit(jobs, launch, device, Path(out if out is not None else "."), what)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """This process's torch threads (and OpenMP / MKL settings for its children) set to ``threads`` for a while."""
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads(), {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        for key, value in before[1].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _named(job: Job, call: Callable[[], Any]) -> Any:
    """``call()``, with a ProbeError from the job prefixed by the job's name."""
    try:
        return call()
    except ProbeError as exc:
        raise ProbeError(f"{job.name}: {one_line(exc)}") from exc


# -- a local process pool -------------------------------------------------------------------------------


def _gpus_for(device: str, parallel: int, flag: str = "--parallel") -> list[str] | None:
    """The GPU of each worker (CUDA_VISIBLE_DEVICES values), or None when the runs use the CPU."""
    from probe.device import resolve_device

    if resolve_device(device).type != "cuda":
        return None
    if device.strip().lower().startswith("cuda:"):
        raise ProbeError(
            f"--device {device}: with {flag} {parallel} each run gets a GPU of its own; use --device cuda or auto"
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    import torch

    ids = (
        [v.strip() for v in visible.split(",") if v.strip()]
        if visible
        else [str(i) for i in range(torch.cuda.device_count())]
    )
    if parallel > len(ids):
        raise ProbeError(f"{flag} {parallel}: one run per GPU, and {len(ids)} GPU(s) are visible ({', '.join(ids)})")
    return ids[:parallel]


def _init_worker(threads: int, gpus: Any, parent: int | None = None) -> None:
    """A pool worker's set-up, before its first job: its GPU (before CUDA starts), its threads, no progress bars,
    and (``parent``: the pid that started the pool) a watch that ends the worker when that process is gone."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()
    os.environ[PROGRESS_ENV] = "0"
    set_threads(threads)
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), name="probe-parent-watch", daemon=True).start()


PARENT_POLL_S = 1.0


def _exit_with_parent(parent: int) -> None:
    """End this worker once ``parent`` is no longer its parent process.

    A SIGTERM or SIGKILL gives the parent no chance to stop its pool, and the workers would go on training
    for hours.  A run stopped this way resumes from its newest checkpoint (written atomically) next time.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _pool_job(job: Job) -> Any:
    return execute(job, "local")


def _run_pool(jobs: Sequence[Job], launch: Launch, device: str, what: str) -> list[Any]:
    workers = min(launch.parallel or 1, len(jobs))
    gpus = _gpus_for(device, workers)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited CUDA or locks
    queue = None
    if gpus is not None:
        queue = context.Queue()
        for gpu in gpus:
            queue.put(gpu)
    threads = launch.threads or threads_per_job(workers)
    results: dict[int, Any] = {}
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads, queue, os.getpid())
    )
    try:
        futures: dict[Future[Any], int] = {pool.submit(_pool_job, job): i for i, job in enumerate(jobs)}
        with progress_bar() as bar:
            task = bar.add_task(f"{what}: {workers} at once", total=len(jobs))
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = futures[future]
                    results[index] = _named(jobs[index], future.result)
                    bar.advance(task)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown()
    return [results[i] for i in range(len(jobs))]


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now: their runs stop between checkpoints and resume on the next call."""
    processes = list(getattr(pool, "_processes", {}).values())  # the pool's own children, by object
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=30)


# -- submitit: SLURM, or its local executor -----------------------------------------------------------------


class SubmititJob:
    """A :class:`Job` as submitit's checkpointable callable.

    On preemption or before the time limit submitit signals the job and calls
    :meth:`checkpoint`, which requeues the same job with ``resume=True``; the new start
    resumes the run folder from its newest checkpoint (the training loop's own resume).
    """

    def __init__(self, job: Job, launcher: str, threads: int | None) -> None:
        self.job, self.launcher, self.threads = job, launcher, threads

    def __call__(self, resume: bool = False) -> Any:
        import submitit

        os.environ[PROGRESS_ENV] = "0"
        threads = self.threads
        if threads is None and os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
            threads = int(os.environ["SLURM_CPUS_PER_TASK"])
        return execute(self.job, self.launcher, resume=resume, job_id=submitit.JobEnvironment().job_id, threads=threads)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeue with ``resume=True``: the run folder's checkpoints are the state (nothing to save here)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, resume=True)


def slurm_parameters(launch: Launch, n_jobs: int, name: str) -> dict[str, Any]:
    """The SlurmExecutor parameters of every job (submitit's names for sbatch options)."""
    parameters: dict[str, Any] = {
        "job_name": name,
        "partition": launch.partition,
        "time": launch.time_min,
        "nodes": 1,
        "ntasks_per_node": 1,
        "gpus_per_node": launch.gpus_per_job,
        "signal_delay_s": 120,
        "array_parallelism": min(n_jobs, launch.parallel or n_jobs),
        "additional_parameters": {"requeue": True},  # preemption requeues the job instead of cancelling it
        "setup": [_pythonpath_line()],
    }
    if launch.cpus_per_job is not None:
        parameters["cpus_per_task"] = launch.cpus_per_job
    return parameters


def _pythonpath_line() -> str:
    """The jobs import the same probe as this process, whatever their environment puts first."""
    import shlex

    root = Path(__file__).resolve().parents[1]
    return f"export PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}}"


def _submitit_executor(launch: Launch, folder: Path, n_jobs: int, name: str) -> Any:
    import submitit

    if launch.launcher == "slurm":
        slurm = submitit.SlurmExecutor(folder=folder)
        slurm.update_parameters(**slurm_parameters(launch, n_jobs, name))
        return slurm
    local = submitit.LocalExecutor(folder=folder)
    local.update_parameters(timeout_min=launch.time_min, setup=[_pythonpath_line()])
    return local


def _gpu_index(gpu: str) -> int:
    if not gpu.isdigit():
        raise ProbeError(
            f"--launcher submitit-local: CUDA_VISIBLE_DEVICES names GPU {gpu!r}; submitit's local "
            "executor takes GPU indices (set CUDA_VISIBLE_DEVICES to indices, or unset it)"
        )
    return int(gpu)


def _job_failed(job: Job, handle: Any, exc: BaseException) -> ProbeError:
    """One line for a submitit job that failed: the last line of its traceback and where its log is."""
    text = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = text[-1] if text else type(exc).__name__
    head, sep, message = last.partition(": ")  # "probe.errors.ProbeError: message" -> the message
    last = message if sep and " " not in head else last
    log = getattr(getattr(handle, "paths", None), "stderr", None)
    return ProbeError(f"{job.name}: submitit job {handle.job_id} failed: {last}" + (f" (log: {log})" if log else ""))


def _result(job: Job, handle: Any) -> Any:
    try:
        return handle.result()
    except Exception as exc:  # submitit re-raises the job's error as text (FailedJobError / UncompletedJobError)
        raise _job_failed(job, handle, exc) from None


def _run_submitit(jobs: Sequence[Job], launch: Launch, device: str, out: Path, what: str) -> list[Any]:
    folder = ensure_dir(out / SUBMITIT_FOLDER, "--out")
    name = f"probe-{what.replace(' ', '-')}"
    executor = _submitit_executor(launch, folder, len(jobs), name)
    if launch.launcher == "slurm":  # one array; SLURM runs at most `parallel` of it at once
        with executor.batch():
            handles = [executor.submit(SubmititJob(job, "slurm", launch.threads)) for job in jobs]
        return _collect_submitit(jobs, handles, what)
    return _run_local_submitit(executor, jobs, launch, device, what)


def _collect_submitit(jobs: Sequence[Job], handles: list[Any], what: str) -> list[Any]:
    results = []
    with progress_bar() as bar:
        task = bar.add_task(
            f"{what}: {len(jobs)} submitit jobs ({handles[0].job_id.split('_')[0]}...)", total=len(jobs)
        )
        for job, handle in zip(jobs, handles):
            results.append(_result(job, handle))
            bar.advance(task)
    return results


def _run_local_submitit(executor: Any, jobs: Sequence[Job], launch: Launch, device: str, what: str) -> list[Any]:
    """submitit's LocalExecutor starts every job at once: start at most ``parallel``, each on a free GPU."""
    parallel = min(launch.parallel or 1, len(jobs))
    gpus = _gpus_for(device, parallel)
    free: list[str | None] = list(gpus) if gpus is not None else [None] * parallel
    threads = launch.threads or threads_per_job(parallel)
    results: dict[int, Any] = {}
    running: dict[int, tuple[Any, str | None]] = {}
    waiting = list(range(len(jobs)))
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"{what}: {parallel} submitit-local jobs at once", total=len(jobs))
            while waiting or running:
                while waiting and free:
                    index, gpu = waiting.pop(0), free.pop(0)
                    executor.update_parameters(
                        gpus_per_node=0 if gpu is None else 1, visible_gpus=() if gpu is None else (_gpu_index(gpu),)
                    )
                    running[index] = (executor.submit(SubmititJob(jobs[index], "submitit-local", threads)), gpu)
                finished = [i for i, (handle, _) in running.items() if handle.done()]
                for index in finished:
                    handle, gpu = running.pop(index)
                    free.append(gpu)
                    results[index] = _result(jobs[index], handle)
                    bar.advance(task)
                if not finished:
                    time.sleep(0.2)
    except BaseException:
        for handle, _ in running.values():  # their runs resume at the next call
            handle.cancel(check=False)
        raise
    return [results[i] for i in range(len(jobs))]


def json_differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every place two JSON values differ (``.key[index]: x != y``); numbers compared exactly, type included.

    What a parallel run is held to: it must write the sequential run's numbers bit for bit,
    after the caller has removed what legitimately differs (timings, folders).

    >>> json_differences({"a": [1, 2.5]}, {"a": [1, 2.5000001], "b": 0})
    ['.b: only in the second', '.a[1]: 2.5 != 2.5000001']
    """
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{path}.{k}: only in {'the first' if k in a else 'the second'}" for k in sorted(set(a) ^ set(b))]
        return found + [d for k in a if k in b for d in json_differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in json_differences(x, y, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def check_preemptible(launch: Launch, checkpoint_every: int | None) -> None:
    """Warn when SLURM jobs would have no checkpoint to resume from but the end of each epoch."""
    if launch.launcher == "slurm" and checkpoint_every is None:
        warn(
            "--launcher slurm without --checkpoint-every: a preempted job resumes from its last epoch's end; "
            "pass --checkpoint-every N to lose at most N steps"
        )
