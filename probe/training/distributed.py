"""Multi-process data-parallel training with PyTorch DDP, started by torchrun.

``torchrun --nproc-per-node N -m probe train <flags>`` starts N processes;
each one reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the environment
torchrun sets, joins the process group (NCCL on GPU, gloo on CPU) and trains
its shard of every batch.  ``probe train --nproc-per-node N`` is a shortcut: it
writes the resolved config to ``DIR/launch.json`` and runs
``torch.distributed.run ... -m probe.training.launch --config DIR/launch.json``;
with ``--nnodes M --rdzv-endpoint HOST:PORT`` (run once on every node) the nodes
meet at the rendezvous instead of a standalone one (:class:`Nodes`).
Only rank 0 writes logs, checkpoints and summaries.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
import torch.nn as nn

from probe.errors import ProbeError
from probe.limits import check_processes
from probe.options import option

if TYPE_CHECKING:
    from probe.training.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (``world_size == 1`` without torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """Read torchrun's environment variables (defaults: a single process)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def init_distributed(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each process takes GPU ``LOCAL_RANK``. Returns this process's device."""
    if not info.enabled:
        return device
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise ProbeError(
                f"--nproc-per-node: process {info.local_rank} has no GPU (only {torch.cuda.device_count()} visible)"
            )
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter (name, dtype, shape, bytes): equal digests mean equal weights.

    Buffers are left out on purpose: BatchNorm running statistics are updated by
    each process's own last forward pass, and DDP only re-synchronises them from
    rank 0 at the start of the next one.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def gather_strings(value: str, info: DistInfo) -> list[str]:
    """Every rank's ``value``, in rank order (just ``[value]`` in a single process)."""
    if not info.enabled:
        return [value]
    gathered: list[str] = [""] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered


#: torchrun rendezvous backends probe passes through (others need extra services, e.g. etcd).
RDZV_BACKENDS = ("c10d", "static")
_ENDPOINT = re.compile(r"^(?P<host>[A-Za-z0-9._\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Nodes:
    """The machines of a DDP job, as torchrun's rendezvous flags.

    One node (the default) uses a standalone rendezvous on a free local port.  Several nodes
    run the same command on every node: ``c10d`` meets at ``rdzv_endpoint`` (a store on the
    first node to arrive; ranks are assigned by the rendezvous, ``node_rank`` is not needed),
    ``static`` makes node ``node_rank`` 0 host it at ``rdzv_endpoint``.  Every node of one job
    must pass the same ``rdzv_id``.
    """

    nnodes: int = option(1, help="machines in the DDP job; run the same command on each (needs --rdzv-endpoint)")
    node_rank: int | None = option(
        None, help="this machine's index, 0..nnodes-1 (needed by --rdzv-backend static; c10d assigns ranks itself)"
    )
    rdzv_endpoint: str | None = option(None, help="HOST:PORT where the nodes meet (e.g. the first node, port 29500)")
    rdzv_backend: str = option("c10d", help="torchrun rendezvous: c10d|static")
    rdzv_id: str = option("probe", help="job id shared by every node (e.g. $SLURM_JOB_ID)")

    @property
    def standalone(self) -> bool:
        return self.nnodes == 1 and self.rdzv_endpoint is None

    def validate(self) -> None:
        """Raise a ProbeError naming the flag for any inconsistent value."""
        if isinstance(self.nnodes, bool) or not isinstance(self.nnodes, int) or self.nnodes < 1:
            raise ProbeError(f"--nnodes: expected a positive integer, got {self.nnodes!r}")
        if self.rdzv_backend not in RDZV_BACKENDS:
            raise ProbeError(f"--rdzv-backend: expected one of {', '.join(RDZV_BACKENDS)}, got {self.rdzv_backend!r}")
        if self.nnodes > 1 and self.rdzv_endpoint is None:
            raise ProbeError(
                f"--nnodes {self.nnodes}: needs --rdzv-endpoint HOST:PORT, the address every node meets at"
            )
        if self.rdzv_endpoint is not None:
            match = _ENDPOINT.match(self.rdzv_endpoint)
            if not match or not 1 <= int(match["port"]) <= 65535:
                raise ProbeError(
                    f"--rdzv-endpoint: expected HOST:PORT with a port from 1 to 65535 "
                    f"(e.g. node001:29500), got {self.rdzv_endpoint!r}"
                )
        if self.node_rank is not None and not 0 <= self.node_rank < self.nnodes:
            raise ProbeError(
                f"--node-rank: expected 0..{self.nnodes - 1} for --nnodes {self.nnodes}, got {self.node_rank}"
            )
        if self.rdzv_backend == "static" and not self.standalone and self.node_rank is None:
            raise ProbeError("--rdzv-backend static: needs --node-rank (0 on the node at --rdzv-endpoint)")
        if not re.fullmatch(r"[A-Za-z0-9._\-]+", self.rdzv_id):
            raise ProbeError(
                f"--rdzv-id: expected letters, digits, '.', '_' or '-' (e.g. a job id), got {self.rdzv_id!r}"
            )

    def torchrun_flags(self) -> list[str]:
        """The rendezvous part of the torchrun command line."""
        if self.standalone:
            return ["--standalone"]
        flags = [
            f"--nnodes={self.nnodes}",
            f"--rdzv-backend={self.rdzv_backend}",
            f"--rdzv-endpoint={self.rdzv_endpoint}",
            f"--rdzv-id={self.rdzv_id}",
        ]
        return flags + ([f"--node-rank={self.node_rank}"] if self.node_rank is not None else [])


def torchrun_command(nproc: int, launch_args: list[str], nodes: Nodes = Nodes()) -> list[str]:
    """``python -m torch.distributed.run <rendezvous> --nproc-per-node N -m probe.training.launch ARGS``."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ProbeError(f"--nproc-per-node: expected a positive integer, got {nproc!r}")
    nodes.validate()
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *nodes.torchrun_flags(),
        f"--nproc-per-node={nproc}",
        "-m",
        "probe.training.launch",
        *launch_args,
    ]


def run_torchrun(nproc: int, launch_args: list[str], nodes: Nodes = Nodes()) -> None:
    """Run :func:`torchrun_command` and wait for it.

    The children find ``probe`` through ``PYTHONPATH`` even when it is not
    installed (a source checkout).  A failing child becomes a ProbeError.
    """
    check_processes(nproc)  # this machine runs them: no more than it has GPUs (or cores)
    command = torchrun_command(nproc, launch_args, nodes)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    # one process per GPU owns the machine's threads; on CPU share the cores between processes
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise ProbeError(
            f"--nproc-per-node {nproc}: torchrun exited with status {result.returncode} (see the messages above)"
        )


def launch_distributed(config: "TrainConfig", nproc: int, nodes: Nodes = Nodes()) -> None:
    """``probe train --nproc-per-node N [--nnodes M ...]``: write the config next to the run, start torchrun on it.

    On several nodes every node writes the same ``launch.json`` (atomically) into ``--out``,
    which must then be a folder all nodes share (only rank 0 writes the run itself).
    """
    from probe.io import ensure_dir, write_json
    from probe.runs import run_folder_lock

    check_processes(nproc)
    torchrun_command(nproc, [], nodes)  # bad flags fail here, before anything is written
    config.validate()  # bad flags fail here, once, not in every child process
    # Rank 0 locks the folder for the run.  On one node, holding the lock while writing the request
    # refuses a busy folder at once; several nodes write the same request concurrently, so they do not lock.
    lock = (
        run_folder_lock(config.out, "train")
        if nodes.standalone
        else contextlib.nullcontext(ensure_dir(config.out, "--out"))
    )
    with lock as out:
        request = out / "launch.json"
        write_json(request, config.to_json())
    run_torchrun(nproc, ["--config", str(request)], nodes)
