"""How much memory training a model needs, estimated without allocating any of it.

:func:`estimate_training_memory` builds the model on PyTorch's ``meta`` device
(shapes and dtypes, no storage) and runs one training-mode forward pass on a
meta input, counting every tensor autograd saves for the backward pass
(:func:`probe.models.recompute.saved_tensor_bytes`, the measure the training benchmark reports).  With
the parameters that gives::

    weights      4 B x parameters        (fp32 master weights, whatever the autocast precision)
    gradients    4 B x parameters
    optimizer    8 B x parameters        (Adam's two moment estimates)
    activations  the saved tensors' bytes (halved under bf16 / fp16 autocast)
    input        the batch of images

The sum is what must fit at the peak of a step, before the transient buffers
of the backward pass and the loss (so a run that the estimate refuses could
never fit, while one it admits may still run out near the limit).
:func:`check_training_fits` refuses a configuration whose estimate exceeds the
device's free memory (``MemAvailable`` of ``/proc/meminfo`` on CPU,
``torch.cuda.mem_get_info`` on CUDA), with one line naming the flags, the
estimate and the free memory.

>>> estimate = estimate_training_memory("densedepth", input_size=(480, 640), batch_size=4)  # doctest: +SKIP
>>> print(estimate.describe())                                                          # doctest: +SKIP
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from probe.errors import ProbeError, reason, warn
from probe.limits import MAX_BATCH_SIZE, check_count, check_size, check_width

GIB = float(1 << 30)
FP32_BYTES = 4
ADAM_STATES = 2
ACTIVATION_SCALE = {"fp32": 1.0, "bf16": 0.5, "fp16": 0.5}
"""Saved activations relative to fp32 under each autocast precision (norms keep fp32: approximate)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one training step needs, by kind; ``total_bytes`` is their sum."""

    model: str
    input_size: tuple[int, int]
    batch_size: int
    width: float
    precision: str
    parameters: int
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    input_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.gradient_bytes + self.optimizer_bytes + self.activation_bytes + self.input_bytes

    @property
    def state_bytes(self) -> int:
        """Weights, gradients and optimizer states: what does not grow with the batch."""
        return self.weight_bytes + self.gradient_bytes + self.optimizer_bytes

    def describe(self) -> str:
        states = "weights, gradients and Adam states" if self.optimizer_bytes else "weights and gradients"
        return (
            f"about {format_bytes(self.total_bytes)} ({states} "
            f"{format_bytes(self.state_bytes)} for {self.parameters:,} parameters; activations "
            f"{format_bytes(self.activation_bytes)})"
        )


def format_bytes(count: float) -> str:
    """``1536 MiB`` -> ``"1.5 GiB"``; below a GiB in MiB."""
    return f"{count / GIB:.1f} GiB" if count >= GIB else f"{count / (1 << 20):.1f} MiB"


def estimate_training_memory(
    model: str,
    *,
    input_size: tuple[int, int],
    batch_size: int,
    width: float = 1.0,
    model_options: dict[str, Any] | None = None,
    precision: str = "fp32",
    activation_checkpointing: bool = False,
    device: torch.device | str = "cpu",
) -> MemoryEstimate:
    """Estimate the memory of one training step of ``model`` at ``[batch_size,3,H,W]`` without allocating it.

    The model is built on the ``meta`` device and run forward once in training
    mode (through its checkpointed stages with ``activation_checkpointing``, as
    ``probe train --activation-checkpointing`` runs it); see the module docstring
    for what is counted.  ``device`` is where training will run: kernels chosen per
    device type (PackNet's packing convolution) are the ones it will use, since
    on ``meta`` they would fall back to another form.  Sizes are checked
    against :mod:`probe.limits` first, so an absurd request fails before any
    model is built.

    >>> e = estimate_training_memory("packnet_slim_b", input_size=(64, 96), batch_size=4, width=0.0625)
    >>> e.parameters > 0 and e.activation_bytes > 0
    True
    """
    size = check_size(input_size)
    check_count("--batch-size", batch_size, MAX_BATCH_SIZE)
    check_width(width)
    if precision not in ACTIVATION_SCALE:
        raise ProbeError(f"--precision: expected one of {', '.join(ACTIVATION_SCALE)}, got {precision!r}")
    # weight files only fill values; shapes do not depend on them, and they must not be read here
    options = tuple(sorted((k, v) for k, v in (model_options or {}).items() if k not in ("weights", "pretrained")))
    try:
        hash(options)
    except TypeError:  # an unhashable option value: estimate without the cache
        return _estimate.__wrapped__(
            model,
            size,
            batch_size,
            float(width),
            options,
            precision,
            activation_checkpointing,
            torch.device(device).type,
        )
    return _estimate(
        model, size, batch_size, float(width), options, precision, activation_checkpointing, torch.device(device).type
    )


@functools.lru_cache(maxsize=64)
def _estimate(
    model: str,
    size: tuple[int, int],
    batch_size: int,
    width: float,
    options: tuple[tuple[str, Any], ...],
    precision: str,
    activation_checkpointing: bool,
    device_type: str,
) -> MemoryEstimate:
    """The meta-device measurement behind :func:`estimate_training_memory` (cached: analyses train the same
    configuration many times in one process)."""
    from probe.models import build_model
    from probe.models.depth_conv import DepthConv3d, resolve_impl
    from probe.models.recompute import enable_activation_checkpointing

    with torch.device("meta"):
        module = build_model(model, width=width, **dict(options))
    for layer in module.modules():  # the form the target device runs, not the one meta would pick
        if isinstance(layer, DepthConv3d) and layer.impl == "auto":
            layer.impl = resolve_impl("auto", torch.device(device_type))
    if activation_checkpointing:
        enable_activation_checkpointing(module)
    return _measure(model, module, size, batch_size, width, precision)


def _measure(
    name: str, module: torch.nn.Module, size: tuple[int, int], batch_size: int, width: float, precision: str
) -> MemoryEstimate:
    """One training-mode forward pass of a meta-device ``module`` on ``[batch_size,3,H,W]``, counted."""
    from probe.models.recompute import saved_tensor_bytes

    with torch.device("meta"):
        image = torch.empty(batch_size, 3, *size)
    module.train()
    parameters = sum(p.numel() for p in module.parameters())
    activations = int(saved_tensor_bytes(lambda: module(image), module) * ACTIVATION_SCALE[precision])
    return MemoryEstimate(
        model=name,
        input_size=size,
        batch_size=batch_size,
        width=float(width),
        precision=precision,
        parameters=parameters,
        weight_bytes=FP32_BYTES * parameters,
        gradient_bytes=FP32_BYTES * parameters,
        optimizer_bytes=ADAM_STATES * FP32_BYTES * parameters,
        activation_bytes=activations,
        input_bytes=image.numel() * FP32_BYTES,
    )


def estimate_module_training_memory(
    name: str,
    build: Callable[[], torch.nn.Module],
    *,
    input_size: tuple[int, int],
    batch_size: int,
    width: float = 1.0,
    precision: str = "fp32",
) -> MemoryEstimate:
    """:func:`estimate_training_memory` for a network that is not a model of the zoo (``build()`` makes it;
    it is called on the meta device): an analysis' own architectures, such as the autoencoders."""
    size = check_size(input_size)
    check_count("--batch-size", batch_size, MAX_BATCH_SIZE)
    with torch.device("meta"):
        module = build()
    return _measure(name, module, size, batch_size, width, precision)


def available_memory(device: torch.device | str) -> tuple[int, str] | None:
    """Free bytes on ``device`` and where the number comes from, or None when it cannot be known."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free), f"free on {dev} (torch.cuda.mem_get_info)"
    if dev.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "available RAM (MemAvailable)"
        except (OSError, ValueError, IndexError):
            return None
    return None


def check_training_fits(
    model: str,
    *,
    input_size: tuple[int, int],
    batch_size: int,
    width: float = 1.0,
    model_options: dict[str, Any] | None = None,
    precision: str = "fp32",
    activation_checkpointing: bool = False,
    device: torch.device | str = "cpu",
    optimizer: bool = True,
    flags: str = "",
) -> MemoryEstimate | None:
    """Refuse, with one line, a training configuration whose estimate exceeds the device's free memory.

    ``optimizer=False`` leaves Adam's states out: a forward and backward pass only (the complexity
    analysis' timed training step).  ``flags`` names the flags in the message (default: ``--batch-size B
    --input-size HxW --width W``).

    Returns the estimate, or None for a user model (a SPEC) whose forward pass cannot run on the
    meta device; that is said in one warning line and training goes on unchecked.  Zoo models are
    always estimated (a test runs every one on the meta device).
    """
    from probe.models import list_models

    try:
        estimate = estimate_training_memory(
            model,
            input_size=input_size,
            batch_size=batch_size,
            width=width,
            model_options=model_options,
            precision=precision,
            activation_checkpointing=activation_checkpointing,
            device=device,
        )
    except ProbeError:
        raise
    except Exception as exc:
        if model in list_models():
            raise
        warn(
            f"{model}: memory not estimated (its forward pass does not run on the meta device: {reason(exc)}); "
            "--batch-size and --input-size are not checked against free memory"
        )
        return None
    return refuse_if_over(estimate, device, optimizer=optimizer, flags=flags)


def refuse_if_over(
    estimate: MemoryEstimate, device: torch.device | str, *, optimizer: bool = True, flags: str = ""
) -> MemoryEstimate:
    """``estimate`` (without Adam's states unless ``optimizer``), or a one-line ProbeError naming the
    flags, the estimate and the free memory when it exceeds what ``device`` has free."""
    if not optimizer:
        estimate = replace(estimate, optimizer_bytes=0)
    free = available_memory(device)
    if free is not None and estimate.total_bytes > free[0]:
        height, width_px = estimate.input_size
        named = (
            flags or f"--batch-size {estimate.batch_size} --input-size {height}x{width_px} --width {estimate.width:g}"
        )
        raise ProbeError(
            f"{named}: training {estimate.model} needs {estimate.describe()}, more than the "
            f"{format_bytes(free[0])} {free[1]}; lower --batch-size, --input-size or --width"
        )
    return estimate


def check_host_memory(what: str, nbytes: int, flags: str) -> None:
    """Refuse, with one line naming ``flags``, holding ``nbytes`` in host memory when more than is available."""
    free = available_memory("cpu")
    if free is not None and nbytes > free[0]:
        raise ProbeError(
            f"{flags}: {what} needs {format_bytes(nbytes)}, more than the {format_bytes(free[0])} {free[1]}"
        )
