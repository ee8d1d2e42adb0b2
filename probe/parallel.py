"""Independent runs side by side: one process per job, one torch thread each.

Small networks on a CPU use a second core poorly from inside one step (the
standard budget's width-1/16 models at 64x96 gain about 1.3x from two torch
threads), while two independent training runs gain almost 2x.  A study's runs
(experiments x seeds, autoencoder seeds) are independent, so :func:`run_jobs`
runs them in ``jobs`` worker processes, each pinned to one torch thread, and
returns their results in task order.  ``jobs=1`` runs them here, in order, with
the process's own threads: the same code path the tests take.

Each worker starts fresh (``spawn``: no state of this process is inherited) and
shows no progress bar of its own; the caller's ``on_done`` sees each result as it
arrives.  A task that fails raises its error here, after the pool has stopped.

>>> run_jobs(abs, [-1, 2, -3], jobs=1)
[1, 2, 3]
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, Callable, Sequence, TypeVar

from probe.errors import ProbeError

__all__ = ["MAX_JOBS", "check_jobs", "default_jobs", "run_jobs"]

T = TypeVar("T")
R = TypeVar("R")

#: More processes than this on one machine is a typo, not a plan.
MAX_JOBS = 64


def check_jobs(jobs: int, flag: str = "--jobs") -> int:
    """``jobs`` if it is an integer from 1 to :data:`MAX_JOBS`, else a one-line ProbeError naming ``flag``."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise ProbeError(f"{flag}: expected a number of parallel runs from 1 to {MAX_JOBS}, got {jobs!r}")
    return jobs


def default_jobs(device: str) -> int:
    """Parallel runs for a study on ``device``: every CPU core (up to 4) on a CPU, one run at a time on a GPU."""
    if device.startswith("cuda"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _start_worker() -> None:
    """Each worker: one torch thread (the cores go to the other workers) and no progress bar of its own."""
    import torch

    os.environ["PROBE_NO_PROGRESS"] = "1"
    torch.set_num_threads(1)


def run_jobs(
    fn: Callable[[T], R], tasks: Sequence[T], jobs: int, on_done: Callable[[int, R], None] | None = None
) -> list[R]:
    """``[fn(t) for t in tasks]``, in ``jobs`` worker processes when ``jobs > 1`` (``fn`` and each task must be
    picklable: a module-level function and dataclasses).  ``on_done(index, result)`` is called as each finishes."""
    check_jobs(jobs)
    if jobs == 1 or len(tasks) <= 1:
        results = []
        for i, task in enumerate(tasks):
            results.append(fn(task))
            if on_done is not None:
                on_done(i, results[-1])
        return results
    import multiprocessing

    out: dict[int, R] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context, initializer=_start_worker) as pool:
        futures: dict[Future[Any], int] = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                i = futures[future]
                out[i] = future.result()
                if on_done is not None:
                    on_done(i, out[i])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [out[i] for i in range(len(tasks))]
