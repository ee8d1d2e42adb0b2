"""Hooks: how probes and loggers watch a training run without changing the loop.

A hook is passed to :func:`probe.training.train` (``train(cfg, hooks=[h])``);
the loop calls its methods at fixed points.  Subclass :class:`TrainHook` and
override only what you need::

    class GradNormHook(TrainHook):
        def after_backward(self, step, model):
            self.norms.append(sum(p.grad.norm() ** 2 for p in model.parameters()) ** 0.5)

``model`` is always the plain module (never the DDP or torch.compile wrapper),
so parameter names are the ones ``model.named_parameters()`` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn


@dataclass
class StepStats:
    """What one optimizer step did: the numbers logged to ``metrics.jsonl``.

    ``seconds`` is wall time from asking for the batch to the end of the step
    (data loading included); ``images_per_s`` counts images over all processes.
    ``grad_norm`` is the total L2 norm of the (unscaled) gradients before clipping.
    """

    step: int
    epoch: int
    loss: float
    terms: dict[str, float] = field(default_factory=dict)
    grad_norm: float = 0.0
    lr: float = 0.0
    images_per_s: float = 0.0
    seconds: float = 0.0
    data_seconds: float = 0.0

    def to_record(self) -> dict[str, Any]:
        """Flat record for ``metrics.jsonl``: each loss term becomes ``loss_<term>``."""
        record: dict[str, Any] = {"step": self.step, "epoch": self.epoch, "loss": self.loss}
        record.update({f"loss_{name}": value for name, value in self.terms.items()})
        record.update(
            {
                "lr": self.lr,
                "grad_norm": self.grad_norm,
                "images_per_s": self.images_per_s,
                "seconds": self.seconds,
                "data_seconds": self.data_seconds,
            }
        )
        return record


class TrainHook:
    """No-op base class; every method is optional."""

    def on_start(self, model: nn.Module, config: Any) -> None:
        """Once, after the model is built (and restored on ``--resume``), before the first step."""

    def after_backward(self, step: int, model: nn.Module) -> None:
        """Gradients are populated (unscaled, averaged over processes), before clipping and the step."""

    def after_step(self, step: int, model: nn.Module, stats: StepStats) -> None:
        """After the optimizer step; ``stats`` is what was logged."""

    def on_end(self, model: nn.Module) -> None:
        """Once, after the last step (not called when the run fails)."""
