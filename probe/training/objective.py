"""Training objectives: what one step computes from a batch, behind one small interface.

``train_step`` calls ``objective(model, batch, forward) -> LossOutput``, where
``batch`` holds the batch's tensors already on the device and
``forward(module, *inputs)`` runs a module under the step's autocast.  An
objective may own trainable modules besides the depth model (the
self-supervised objective's pose network): ``parameters()`` lists them for
the optimiser, clipping and the gradient norm; ``state_dict()`` /
``load_state_dict()`` carry them through checkpoints; ``wrap(fn)`` lets the
loop wrap them for DDP.

Objectives are registered in :data:`OBJECTIVES` and built by
:func:`build_objective` from a :class:`~probe.training.config.TrainConfig`:

==================  ========================================================================
``supervised``      the depth loss ``--loss`` against ground truth (the default)
``self_supervised`` photometric reprojection from the video context + smoothness, with the
                    velocity loss weighted by ``--velocity-weight`` (probe.training.self_supervised)
==================  ========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import torch
import torch.nn as nn

from probe.losses import LossOutput, build_loss, dataset_loss_options
from probe.models.common import output_space_of
from probe.registry import Registry

Forward = Callable[..., Any]


@runtime_checkable
class Objective(Protocol):
    """``objective(model, batch, forward) -> LossOutput`` plus the trainable modules it owns."""

    def __call__(self, model: nn.Module, batch: dict[str, Any], forward: Forward) -> LossOutput: ...

    def parameters(self) -> Iterator[nn.Parameter]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def wrap(self, fn: Callable[[nn.Module], nn.Module]) -> None: ...


@dataclass
class SupervisedObjective:
    """The depth model's output against the ground truth: ``loss_fn(model(image), depth, valid)``.

    The loss runs outside autocast (probe.losses computes in float32 anyway).
    """

    loss_fn: Callable[..., LossOutput]

    def __call__(self, model: nn.Module, batch: dict[str, Any], forward: Forward) -> LossOutput:
        outputs = forward(model, batch["image"])
        return self.loss_fn(outputs, batch["depth"], batch["valid"])

    def parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def wrap(self, fn: Callable[[nn.Module], nn.Module]) -> None:
        return None


def as_objective(objective_or_loss: Objective | Callable[..., LossOutput]) -> Objective:
    """An :class:`Objective` as is; a plain ``loss_fn(outputs, depth, valid)`` as the supervised objective."""
    if isinstance(objective_or_loss, Objective):
        return objective_or_loss
    return SupervisedObjective(objective_or_loss)


ObjectiveFactory = Callable[..., Objective]
OBJECTIVES: Registry[ObjectiveFactory] = Registry("objective")


@OBJECTIVES.register("supervised", description="the depth loss (--loss) against ground-truth depth")
def _supervised(config: Any, model: nn.Module, dataset: Any, device: torch.device) -> Objective:
    return SupervisedObjective(supervised_loss(config, model, dataset))


def supervised_loss(config: Any, model: nn.Module, dataset: Any) -> Callable[..., LossOutput]:
    """``loss_fn(outputs, depth, valid)``: ``config.loss`` bound to ``model``'s output space, the dataset's depth
    cap and protocol range, and ``config.loss_scales`` (the objective's and the noise probe's one loss)."""
    loss = build_loss(config.loss, **dataset_loss_options(config.loss, dataset.info))
    return partial(
        loss, output_space=output_space_of(model), max_depth=dataset.info.max_depth, scales=config.loss_scales
    )


def build_objective(config: Any, model: nn.Module, dataset: Any, device: torch.device) -> Objective:
    """The objective ``config.objective`` for ``model`` trained on ``dataset`` (checks fit before any work)."""
    return OBJECTIVES.build(config.objective, config, model, dataset, device)
