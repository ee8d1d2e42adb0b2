"""Activation checkpointing: recompute a model's declared stages in backward instead of storing them.

A model opts in by declaring its stages: an attribute ``checkpoint_stages``, a tuple of
submodule paths in forward order (PackNet: ``pre_calc``, ``conv1``, ``pack1`` ...
``iconv2``; DenseDepth: ``encoder.features.denseblock1`` ... and the decoder's up
blocks).  :func:`enable_activation_checkpointing` then makes each of those submodules
run through :func:`torch.utils.checkpoint.checkpoint` (``use_reentrant=False``): its
forward keeps only its inputs, and backward runs it again to rebuild what its own
backward needs.  Nothing else changes: no module is replaced or renamed, so state
dicts, parameter order and optimizer state are those of the plain model.

Gradients are the plain step's bit for bit where the recomputation repeats the
forward exactly (deterministic kernels; dropout replays the saved RNG state).  Two
things about recomputation are handled here rather than left to the caller:

* buffers written by a forward (BatchNorm's running statistics) would be updated a
  second time by the recomputation; every buffer of a stage is restored after it;
* in ``torch.no_grad()`` (evaluation) a stage runs plainly: nothing would be saved.

Forward hooks registered *inside* a checkpointed stage fire again during recomputation.

>>> import torch
>>> from probe.models import build_model
>>> model = build_model("packnet_slim_b", width=0.0625)
>>> enable_activation_checkpointing(model)[:3]
['pre_calc', 'conv1', 'pack1']
>>> saved_tensor_bytes(lambda: model(torch.rand(1, 3, 64, 64))[0].sum(), model) > 0
True
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from probe.errors import ProbeError


def checkpoint_stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(path, submodule)`` pairs ``model.checkpoint_stages`` declares, resolved and checked."""
    declared = getattr(model, "checkpoint_stages", None)
    name = getattr(model, "model_name", type(model).__name__)
    if not declared:
        raise ProbeError(
            f"--activation-checkpointing: {name} declares no checkpoint_stages "
            "(a tuple of submodule paths to recompute in backward; for your own model set the attribute "
            "or pass --model-option checkpoint_stages=PATH,PATH)"
        )
    stages = []
    for path in declared:
        try:
            stages.append((path, model.get_submodule(path)))
        except AttributeError:
            raise ProbeError(
                f"--activation-checkpointing: {name}.checkpoint_stages names {path!r}, which is not a submodule"
            ) from None
    return stages


class CheckpointedForward:
    """A stage's ``forward`` run through ``torch.utils.checkpoint`` when autograd records it."""

    def __init__(self, module: nn.Module) -> None:
        self.forward = module.forward
        self.module = module
        self.mutable = any(True for _ in module.buffers())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled():
            return self.forward(*args, **kwargs)
        if self.mutable and not torch.compiler.is_compiling():
            # Under torch.compile buffer writes are functionalised and applied once, recomputed or not.
            return checkpoint(self.forward, *args, use_reentrant=False, context_fn=self.contexts, **kwargs)
        return checkpoint(self.forward, *args, use_reentrant=False, **kwargs)

    def contexts(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        """(forward, recomputation) contexts for ``torch.utils.checkpoint``: restore buffers after recomputing."""
        return contextlib.nullcontext(), _buffers_restored(self.module)


@contextlib.contextmanager
def _buffers_restored(module: nn.Module) -> Iterator[None]:
    """Put every buffer of ``module`` back as it was (the recomputation must not count a batch twice)."""
    saved = [(buffer, buffer.detach().clone()) for buffer in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def enable_activation_checkpointing(model: nn.Module) -> list[str]:
    """Recompute every declared stage of ``model`` in backward; returns the stage paths. Idempotent.

    Raises a ProbeError when the model declares no ``checkpoint_stages``.
    """
    stages = checkpoint_stages(model)
    for _, stage in stages:
        if not is_checkpointed(stage):
            stage.forward = CheckpointedForward(stage)  # an instance attribute: nn.Module.__call__ finds it first
    return [path for path, _ in stages]


def disable_activation_checkpointing(model: nn.Module) -> None:
    """Undo :func:`enable_activation_checkpointing`: every stage runs its own forward again."""
    for _, stage in checkpoint_stages(model):
        if is_checkpointed(stage):
            del stage.forward


def is_checkpointed(module: nn.Module) -> bool:
    return isinstance(module.__dict__.get("forward"), CheckpointedForward)


def saved_tensor_bytes(fn: Callable[[], Any], model: nn.Module | None = None) -> int:
    """Bytes autograd keeps for backward while ``fn()`` runs: a device-independent activation-memory measure.

    Counts each distinct storage once (a view and its base are one allocation) and leaves out the
    parameters of ``model`` (they are resident anyway).  Inside a checkpointed stage autograd saves
    nothing but the stage's inputs, which is exactly what this measures.  Run ``fn`` as the forward
    pass (and loss) of a step; the result is what the backward would have to hold at its start.
    """
    # keyed by the storage object itself, not its address: meta tensors (probe.memory) all have address 0
    parameters = {p.untyped_storage()._cdata for p in model.parameters()} if model is not None else set()
    sizes: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in parameters:
            sizes[storage._cdata] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sum(sizes.values())
