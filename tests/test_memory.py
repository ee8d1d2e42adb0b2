"""The training-memory estimate: built on the meta device, it counts what a real forward pass saves."""

from __future__ import annotations

import pytest
import torch

from probe.errors import ProbeError
from probe.memory import check_training_fits, estimate_training_memory
from probe.models import build_model, count_parameters, list_models
from probe.models.recompute import saved_tensor_bytes

TINY = dict(input_size=(32, 48), batch_size=2, width=0.0625)


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_is_estimated_on_meta_with_its_real_parameter_count(name):
    estimate = estimate_training_memory(name, **TINY)
    params = count_parameters(build_model(name, width=0.0625))
    assert estimate.parameters == params
    assert (estimate.weight_bytes, estimate.gradient_bytes, estimate.optimizer_bytes) == (4 * params, 4 * params,
                                                                                         8 * params)
    assert estimate.input_bytes == 2 * 3 * 32 * 48 * 4 and estimate.activation_bytes > 0


@pytest.mark.parametrize("name", ["packnet_slim_b", "densedepth"])
def test_meta_activations_equal_those_a_real_forward_pass_saves_on_the_cpu(name):
    torch.manual_seed(0)
    model = build_model(name, width=0.0625).train()
    image = torch.rand(2, 3, 32, 48)
    assert estimate_training_memory(name, **TINY).activation_bytes == saved_tensor_bytes(lambda: model(image), model)


def test_activation_checkpointing_is_estimated_as_it_trains_with_far_less_saved():
    from probe.models.recompute import enable_activation_checkpointing

    plain = estimate_training_memory("packnet_slim_b", **TINY)
    recomputed = estimate_training_memory("packnet_slim_b", **TINY, activation_checkpointing=True)
    model = build_model("packnet_slim_b", width=0.0625).train()
    enable_activation_checkpointing(model)
    image = torch.rand(2, 3, 32, 48)
    assert recomputed.activation_bytes == saved_tensor_bytes(lambda: model(image), model)
    assert recomputed.activation_bytes < 0.5 * plain.activation_bytes


def test_activations_grow_with_the_batch_and_halve_under_bf16():
    one = estimate_training_memory("packnet_slim_b", input_size=(32, 48), batch_size=1, width=0.0625)
    four = estimate_training_memory("packnet_slim_b", input_size=(32, 48), batch_size=4, width=0.0625)
    half = estimate_training_memory("packnet_slim_b", input_size=(32, 48), batch_size=4, width=0.0625,
                                    precision="bf16")
    assert four.activation_bytes == 4 * one.activation_bytes and four.state_bytes == one.state_bytes
    assert half.activation_bytes == four.activation_bytes // 2


def test_a_configuration_beyond_free_memory_is_refused_naming_flags_estimate_and_free_memory(monkeypatch):
    import probe.memory as memory

    monkeypatch.setattr(memory, "available_memory", lambda device: (1 << 20, "available RAM (MemAvailable)"))
    with pytest.raises(ProbeError, match=r"^--batch-size 2 --input-size 32x48 --width 0.0625: training packnet_slim_b "
                                         r"needs about .* MiB .*more than the 1.0 MiB available RAM \(MemAvailable\); "
                                         r"lower --batch-size, --input-size or --width$"):
        check_training_fits("packnet_slim_b", **TINY)
    monkeypatch.setattr(memory, "available_memory", lambda device: (1 << 40, "available RAM (MemAvailable)"))
    assert check_training_fits("packnet_slim_b", **TINY).total_bytes < 1 << 30


def test_absurd_sizes_fail_on_the_plain_limits_before_any_model_is_built():
    with pytest.raises(ProbeError, match="--width: expected a positive channel multiplier .* at most 16"):
        estimate_training_memory("packnet_b", input_size=(32, 32), batch_size=1, width=1e6)
    with pytest.raises(ProbeError, match="--input-size: expected HxW with sides from 1 to 16,384"):
        estimate_training_memory("packnet_b", input_size=(100000, 100000), batch_size=1)


def test_the_estimate_runs_the_kernels_of_the_target_device():
    """PackNet's packing convolution is a 2-D conv over a k-fold copy on CPUs, the published conv3d on CUDA."""
    cpu = estimate_training_memory("packnet_slim_b", **TINY, device="cpu")
    cuda = estimate_training_memory("packnet_slim_b", **TINY, device="cuda")
    assert cuda.activation_bytes < cpu.activation_bytes and cuda.state_bytes == cpu.state_bytes
