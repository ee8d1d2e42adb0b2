"""The one device-selection helper: ``--device auto|cpu|cuda|cuda:N``."""

from __future__ import annotations

import re

import torch

from probe.errors import ProbeError

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn a ``--device`` value into a :class:`torch.device`.

    ``auto`` picks ``cuda`` when available, else ``cpu``.  Asking for CUDA on a
    machine without it is an error, never a silent fallback to the CPU.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    spec = spec.strip().lower()
    if not _DEVICE_RE.match(spec):
        raise ProbeError(f"--device: expected auto, cpu, cuda or cuda:N, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ProbeError(f"--device {spec}: CUDA is not available on this machine (use --device cpu or auto)")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ProbeError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) visible "
                f"(indices 0..{torch.cuda.device_count() - 1})"
            )
        return torch.device("cuda", index)
    return torch.device("cpu")


def device_description(device: torch.device) -> str:
    """Human-readable name of the device (GPU model or CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
