"""How far one fast training step lands from the exact fp32 step: shared by the CUDA tests and their CPU checks.

Both steps start from the same weights and batch and run ``probe.training.train_step``
(autocast, loss, backward); the fp32 reference runs with TF32 off, so it is the exact
arithmetic the fast step approximates.  Compared: the loss, and the whole gradient as
one vector (cosine and norm ratio).

Tolerances (:data:`LOSS_RTOL`, :data:`GRADIENT_COSINE_MIN`, :data:`GRADIENT_NORM_RTOL`):
bf16 keeps 8 significant bits, a relative rounding error of 2**-9 ~ 0.2% per operation;
over a forward and backward of tens of layers the errors mostly average out.  On a CPU
with bf16 autocast the tiny models (width 1/16, 64x96) land within 0.05% of the fp32 loss,
at a gradient cosine above 0.998 and within 1% of its norm; the bounds leave room for GPU
kernels and larger widths.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from functools import partial
from typing import Any, Iterator

import torch
import torch.nn as nn
from torch.utils.data import default_collate

from probe.data import get_dataset
from probe.losses import build_loss
from probe.models import build_model
from probe.training import TrainHook
from probe.training.config import PRECISIONS
from probe.training.loop import StepSetup, to_channels_last, train_step

LOSS_RTOL = 0.02
GRADIENT_COSINE_MIN = 0.98
GRADIENT_NORM_RTOL = 0.05


@dataclass(frozen=True)
class Agreement:
    """Loss and gradient of a fast step against the exact fp32 step."""

    reference_loss: float
    loss: float
    gradient_cosine: float
    gradient_norm_ratio: float

    @property
    def loss_relative_difference(self) -> float:
        return abs(self.loss - self.reference_loss) / abs(self.reference_loss)

    def within_tolerance(self) -> bool:
        return (self.loss_relative_difference <= LOSS_RTOL and self.gradient_cosine >= GRADIENT_COSINE_MIN
                and abs(self.gradient_norm_ratio - 1.0) <= GRADIENT_NORM_RTOL)


class _GradientCapture(TrainHook):
    """Copies the gradient after backward (before the optimizer changes anything)."""

    def __init__(self) -> None:
        self.gradient: torch.Tensor | None = None

    def after_backward(self, step: int, model: nn.Module) -> None:
        self.gradient = torch.cat([p.grad.detach().double().flatten() for p in model.parameters()
                                   if p.grad is not None])


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """TF32 off for convolutions and matmuls (PyTorch allows it for cuDNN convolutions by default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def synthetic_batch(size: tuple[int, int], batch_size: int, seed: int = 0) -> dict[str, Any]:
    dataset = get_dataset("synthetic", input_size=size, length=batch_size, seed=seed)
    return default_collate([dataset[i] for i in range(batch_size)])


def step_gradient(model: nn.Module, batch: dict[str, Any], device: torch.device, precision: str,
                  channels_last: bool) -> tuple[float, torch.Tensor]:
    """Loss and flattened gradient of one ``train_step`` of ``model`` (which it modifies)."""
    model = model.to(device).train()
    if channels_last:
        to_channels_last(model)
    capture = _GradientCapture()
    setup = StepSetup(module=model, device=device, autocast_dtype=PRECISIONS[precision],
                      channels_last=channels_last, hooks=(capture,))
    loss_fn = partial(build_loss("densedepth"), output_space=model.output_space, max_depth=10.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    stats = train_step(model, batch, loss_fn, optimizer, setup, step=1, epoch=0)
    assert capture.gradient is not None
    return stats.loss, capture.gradient


def step_agreement(model: nn.Module, batch: dict[str, Any], device: torch.device, *, precision: str,
                   channels_last: bool, reference: nn.Module | None = None,
                   reference_batch: dict[str, Any] | None = None) -> Agreement:
    """One step of a copy of ``model`` in (precision, channels_last) against the exact fp32 step of ``reference``.

    ``reference`` and ``reference_batch`` default to ``model`` and ``batch`` (the comparison the tests
    make); passing others is how a negative control shows the measure can fail.
    """
    with exact_fp32():
        reference_loss, reference_grad = step_gradient(copy.deepcopy(reference or model), reference_batch or batch,
                                                       device, "fp32", channels_last=False)
    loss, grad = step_gradient(copy.deepcopy(model), batch, device, precision, channels_last)
    cosine = float(torch.nn.functional.cosine_similarity(grad, reference_grad, dim=0))
    return Agreement(reference_loss=reference_loss, loss=loss, gradient_cosine=cosine,
                     gradient_norm_ratio=float(grad.norm() / reference_grad.norm()))


def seeded_model(name: str, width: float, seed: int = 0, **options: Any) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(name, width=width, **options)
