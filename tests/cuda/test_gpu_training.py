"""Training on a CUDA GPU: precision, memory format, resume, activation checkpointing, the packing conv, NCCL DDP.

Every test here is marked ``cuda`` and skipped without a GPU (tests/conftest.py says why);
``bench/gpu_check.sh`` runs them on a GPU machine.  Sizes stay small (seconds per test),
the tolerances are stated where they are used.  Their CPU-checkable parts run on every
machine: tests/cuda/test_step_agreement_on_cpu.py, tests/models/test_recompute.py,
tests/models/test_depth_conv.py, tests/training/test_processes.py.
"""

from __future__ import annotations

import copy
import json
from functools import partial

import pytest
import torch

from probe.losses import build_loss
from probe.models.depth_conv import DEPTH_CONVS
from probe.models.recompute import enable_activation_checkpointing
from probe.training import TrainConfig, read_metrics, train
from probe.training.config import PRECISIONS
from probe.training.loop import StepSetup, to_channels_last, train_step
from tests.cuda.agreement import exact_fp32, seeded_model, step_agreement, synthetic_batch
from tests.training.conftest import TINY_FLAGS, run_probe

pytestmark = pytest.mark.cuda

GPU = torch.device("cuda", 0)


@pytest.fixture(autouse=True)
def _restore_global_switches():
    """train() sets determinism and cuDNN switches for the process: give every test the same start."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


@pytest.mark.parametrize("name", ["packnet_a", "packnet_slim_b", "densedepth"])
def test_bf16_channels_last_step_matches_the_exact_fp32_step(name):
    """Tolerances: tests/cuda/agreement.py (loss within 2%, gradient cosine >= 0.98, norm within 5%)."""
    model = seeded_model(name, width=0.25, **({"output_scale": "half"} if name.startswith("packnet") else {}))
    agreement = step_agreement(model, synthetic_batch((128, 160), 4), GPU, precision="bf16", channels_last=True)
    assert agreement.within_tolerance(), agreement


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_depth_conv_forms_agree_on_the_gpu(dtype, rtol):
    """fp32 with TF32 off: rounding only; bf16: each form rounds its 27-term sums differently (2**-8 each)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 24, 32, generator=generator).to(GPU, dtype).requires_grad_()
    weight = torch.randn(8, 1, 3, 3, 3, generator=generator).to(GPU, dtype).requires_grad_()
    bias = torch.randn(8, generator=generator).to(GPU, dtype).requires_grad_()
    upstream = torch.randn(2, 8 * 64, 24, 32, generator=generator).to(GPU, dtype)
    results = {}
    with exact_fp32():
        for name, fn in DEPTH_CONVS.items():
            out = fn(x, weight, bias)
            grads = torch.autograd.grad(out, (x, weight, bias), upstream)
            results[name] = [out.float(), *(g.float() for g in grads)]
    for got, expected in zip(results["conv2d"], results["conv3d"]):
        scale = expected.abs().max()
        assert (got - expected).abs().max() <= rtol * scale


def test_resume_on_gpu_continues_like_the_uninterrupted_run(tmp_path):
    """fp32, --deterministic (bilinear backward stays atomic on CUDA: runs agree to rounding, not bitwise)."""
    cfg = dict(model="packnet_slim_b", width=0.125, dataset="synthetic", input_size=(64, 96), dataset_length=12,
               batch_size=4, epochs=2, device="cuda", workers=0, seed=0, lr=1e-3, precision="fp32",
               deterministic=True)
    whole = train(TrainConfig(**cfg, max_steps=6, out=tmp_path / "whole"))
    train(TrainConfig(**cfg, max_steps=3, out=tmp_path / "split"))
    resumed = train(TrainConfig(**cfg, max_steps=6, resume=True, out=tmp_path / "split"))
    assert resumed.summary is not None and resumed.summary.resumed_from_step == 3
    expected = [r["loss"] for r in read_metrics(whole.out / "metrics.jsonl")]
    got = [r["loss"] for r in read_metrics(resumed.out / "metrics.jsonl")]
    assert len(got) == 6
    # resumed without its Adam state, the same CPU run's step-5 loss moves by 12%: far outside rounding
    assert got == pytest.approx(expected, rel=1e-5)
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def _peak_step_bytes(model: torch.nn.Module, batch: dict, precision: str) -> int:
    """Peak allocated during one steady-state step, above what was allocated before it (weights, Adam state)."""
    loss_fn = partial(build_loss("densedepth"), output_space=model.output_space, max_depth=10.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    setup = StepSetup(module=model, device=GPU, autocast_dtype=PRECISIONS[precision], channels_last=True)
    train_step(model, batch, loss_fn, optimizer, setup, step=1, epoch=0)  # Adam state, cuDNN algorithm search
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    train_step(model, batch, loss_fn, optimizer, setup, step=2, epoch=0)
    return torch.cuda.max_memory_allocated() - before


@pytest.mark.parametrize("name", ["packnet_a", "densedepth"])
def test_activation_checkpointing_lowers_peak_gpu_memory(name):
    """On a CPU the saved activations drop to 0.16-0.19 (tests/models/test_recompute.py); the peak
    also holds one recomputed stage and the gradients, so the bound here is 0.75."""
    torch.backends.cudnn.benchmark = False
    options = {"output_scale": "half"} if name.startswith("packnet") else {}
    plain = to_channels_last(seeded_model(name, width=0.25, **options).to(GPU))
    recomputed = copy.deepcopy(plain)
    enable_activation_checkpointing(recomputed)
    batch = synthetic_batch((256, 320), 8)
    plain_peak = _peak_step_bytes(plain, batch, "bf16")
    recomputed_peak = _peak_step_bytes(recomputed, batch, "bf16")
    assert recomputed_peak <= 0.75 * plain_peak, (recomputed_peak / 2**20, plain_peak / 2**20)


def test_compiled_checkpointed_bf16_step_matches_eager(tmp_path):
    """torch.compile with activation checkpointing and channels_last: same losses as eager to bf16 rounding."""
    cfg = dict(model="packnet_slim_b", width=0.0625, dataset="synthetic", input_size=(64, 96), dataset_length=8,
               batch_size=4, device="cuda", workers=0, seed=0, max_steps=3, precision="bf16", channels_last=True,
               activation_checkpointing=True)
    eager = train(TrainConfig(**cfg, out=tmp_path / "eager"))
    compiled = train(TrainConfig(**cfg, compile=True, out=tmp_path / "compiled"))
    expected = [r["loss"] for r in read_metrics(eager.out / "metrics.jsonl")]
    assert [r["loss"] for r in read_metrics(compiled.out / "metrics.jsonl")] == pytest.approx(expected, rel=2e-2)


def test_deterministic_training_runs_on_the_gpu(tmp_path):
    """--deterministic on CUDA: kernels without a deterministic version warn instead of stopping the run."""
    cfg = TrainConfig(model="densedepth", width=0.0625, input_size=(64, 96), dataset_length=4, batch_size=2,
                      device="cuda", workers=0, max_steps=2, deterministic=True, out=tmp_path / "det")
    assert train(cfg).steps == 2


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL DDP needs at least 2 GPUs; this machine has fewer")
def test_nccl_ddp_over_the_gpus_present_ends_with_identical_weights(tmp_path):
    gpus = torch.cuda.device_count()
    out = tmp_path / "ddp"
    flags = [f if f != "cpu" else "cuda" for f in TINY_FLAGS]
    res = run_probe("train", *flags, "--dataset-length", str(4 * gpus), "--batch-size", "2", "--epochs", "2",
                    "--nproc-per-node", str(gpus), "--out", str(out), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "train.json").read_text())
    assert summary["world_size"] == gpus and summary["replicas_identical"]
    assert len(set(summary["replica_weights_sha256"])) == 1 and summary["device"].startswith("cuda")
