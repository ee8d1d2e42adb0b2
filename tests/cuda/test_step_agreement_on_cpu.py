"""The CUDA tests' measure of agreement, checked on a CPU (bf16 autocast exists there too).

Positive control: a bf16 + channels_last step of the same model and batch is within the
tolerances the CUDA tests use.  Negative controls: another model's, or another batch's,
gradient is not.  Identity: the exact fp32 step agrees with itself bitwise.
"""

from __future__ import annotations

import pytest
import torch

from tests.cuda.agreement import seeded_model, step_agreement, synthetic_batch

CPU = torch.device("cpu")


@pytest.mark.parametrize("name", ["packnet_slim_b", "densedepth"])
def test_bf16_channels_last_step_is_within_the_stated_tolerance_of_fp32(name):
    model = seeded_model(name, width=0.0625)
    agreement = step_agreement(model, synthetic_batch((64, 96), 2), CPU, precision="bf16", channels_last=True)
    assert agreement.within_tolerance(), agreement


def test_the_exact_fp32_step_agrees_with_itself_bitwise():
    model = seeded_model("packnet_slim_b", width=0.0625)
    agreement = step_agreement(model, synthetic_batch((64, 96), 2), CPU, precision="fp32", channels_last=False)
    assert agreement.loss == agreement.reference_loss and agreement.gradient_norm_ratio == 1.0
    assert agreement.gradient_cosine == pytest.approx(1.0, abs=1e-12)


def test_another_models_or_batchs_gradient_is_outside_the_tolerance():
    batch = synthetic_batch((64, 96), 2)
    model, other = seeded_model("packnet_slim_b", 0.0625, seed=0), seeded_model("packnet_slim_b", 0.0625, seed=1)
    assert not step_agreement(model, batch, CPU, precision="bf16", channels_last=True,
                              reference=other).within_tolerance()
    assert not step_agreement(model, batch, CPU, precision="bf16", channels_last=True,
                              reference_batch=synthetic_batch((64, 96), 2, seed=7)).within_tolerance()
