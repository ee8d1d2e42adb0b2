"""Multi-process data-parallel training with PyTorch DDP, started by torchrun.

``torchrun --nproc-per-node N -m probe train <flags>`` starts N processes;
each one reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the environment
torchrun sets, joins the process group (NCCL on GPU, gloo on CPU) and trains
its shard of every batch.  ``probe train --nproc-per-node N``
is a shortcut: it writes the resolved config to ``DIR/launch.json`` and runs
``torch.distributed.run ... -m probe.training.launch --config DIR/launch.json``.
Only rank 0 writes logs, checkpoints and summaries.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
import torch.nn as nn

from probe.errors import ProbeError

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


def run_torchrun(nproc: int, launch_args: list[str]) -> None:
    """Run ``python -m torch.distributed.run --nproc-per-node N -m probe.training.launch ARGS``.

    The children find ``probe`` through ``PYTHONPATH`` even when it is not
    installed (a source checkout).  A failing child becomes a ProbeError.
    """
    if nproc < 1:
        raise ProbeError(f"--nproc-per-node: expected a positive integer, got {nproc}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    # one process per GPU owns the machine's threads; on CPU share the cores between processes
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "probe.training.launch",
        *launch_args,
    ]
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise ProbeError(
            f"--nproc-per-node {nproc}: torchrun exited with status {result.returncode} (see the messages above)"
        )


def launch_distributed(config: "TrainConfig", nproc: int) -> None:
    """``probe train --nproc-per-node N``: write the config next to the run and start torchrun on it."""
    from probe.io import ensure_dir, write_json

    if nproc < 1:
        raise ProbeError(f"--nproc-per-node: expected a positive integer, got {nproc}")
    config.validate()  # bad flags fail here, once, not in every child process
    out = ensure_dir(config.out, "--out")
    request = out / "launch.json"
    write_json(request, config.to_json())
    run_torchrun(nproc, ["--config", str(request)])
