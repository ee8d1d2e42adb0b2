"""The training loop: run folder contents, hooks, clipping, non-finite losses, checkpoints, resume rules."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from probe.errors import ProbeError
from probe.training import StepStats, TrainHook, load_checkpoint, read_metrics, train, train_step
from probe.training.checkpoint import resolve_checkpoint
from probe.options import parse_model_options
from probe.training.config import TrainConfig
from probe.training.loop import StepSetup


class Recorder(TrainHook):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_start(self, model, config):
        self.events.append(("start", config.model))

    def after_backward(self, step, model):
        has_grads = all(p.grad is not None for p in model.parameters() if p.requires_grad)
        self.events.append(("backward", step, has_grads))

    def after_step(self, step, model, stats):
        self.events.append(("step", step, stats.loss))

    def on_end(self, model):
        self.events.append(("end",))


def test_run_folder_has_one_metrics_line_per_step_config_summary_and_checkpoint(tiny):
    hook = Recorder()
    result = train(tiny(epochs=2, max_steps=3, checkpoint_every=2), hooks=[hook])
    out = result.out
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in ("epoch", "loss", "loss_ssim", "loss_edges", "loss_l1", "lr", "grad_norm", "images_per_s", "seconds"):
        assert key in records[0]
    assert all(math.isfinite(r["loss"]) and r["lr"] == 1e-4 for r in records)

    config = json.loads((out / "config.json").read_text())["train"]["config"]
    assert config["model"] == "packnet_slim_b" and config["precision"] == "fp32" and config["channels_last"] is False

    summary = json.loads((out / "train.json").read_text())
    assert summary["steps"] == 3 and summary["params"] > 0
    assert summary["loss_curve"] == [r["loss"] for r in records]
    assert summary["first100_mean_loss"] == pytest.approx(sum(r["loss"] for r in records) / 3)

    # step 2 is a --checkpoint-every multiple; step 3 the end of the run and the `last` pointer's target
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last", "step_2", "step_3"]
    assert (out / "checkpoints" / "last").read_text() == "step_3\n" and result.checkpoint.parent.name == "step_3"
    state = torch.load(out / "checkpoints" / "step_3" / "state.pt", weights_only=True)
    assert state["position"]["step"] == 3 and "optimizer" in state and "rng" in state

    assert hook.events[0] == ("start", "packnet_slim_b") and hook.events[-1] == ("end",)
    assert [e[:2] for e in hook.events[1:-1]] == [("backward", 1), ("step", 1), ("backward", 2), ("step", 2),
                                                   ("backward", 3), ("step", 3)]
    assert all(e[2] for e in hook.events if e[0] == "backward")


def test_load_checkpoint_rebuilds_the_trained_model_from_folder_or_file(tiny):
    result = train(tiny(max_steps=2, model="packnet_slim_a", model_options={"output_scale": "half"}))
    image = torch.rand(1, 3, 32, 64)
    expected = result.model.eval()(image)
    for path in (result.out, result.out / "checkpoints" / "step_2", result.out / "checkpoints" / "step_2" / "weights.safetensors"):
        model, run_config = load_checkpoint(path, "cpu")
        # the protocol's head range (min_depth 0.1 m on the synthetic rooms) is recorded with the explicit options
        assert run_config["model_options"] == {"min_depth": 0.1, "output_scale": "half"}
        assert torch.equal(model(image), expected)


def test_load_checkpoint_without_config_is_a_probe_error(tmp_path, tiny):
    result = train(tiny(max_steps=1))
    (result.out / "config.json").unlink()
    with pytest.raises(ProbeError, match="config.json"):
        load_checkpoint(result.out)
    with pytest.raises(ProbeError, match="run folder, a checkpoints/step_N folder or a .safetensors"):
        load_checkpoint(tmp_path / "weights.bin")


class PoisonAfter(TrainHook):
    """Sets one weight to NaN after step ``step`` so the next loss is NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, step, model, stats):
        if step == self.step:
            with torch.no_grad():
                next(model.parameters()).view(-1)[0] = float("nan")


def test_non_finite_loss_stops_naming_step_and_terms_and_keeps_last_good_checkpoint(tiny):
    config = tiny(epochs=3, checkpoint_every=2)
    with pytest.raises(ProbeError) as info:
        train(config, hooks=[PoisonAfter(3)])
    message = str(info.value)
    assert "step 4" in message and "ssim=" in message and "last good checkpoint" in message
    last = resolve_checkpoint(config.out, with_state=True)
    assert last.step == 2 and all(torch.isfinite(t).all() for t in load_file(str(last.weights)).values())
    assert [r["step"] for r in read_metrics(config.out / "metrics.jsonl")] == [1, 2, 3]


class OverflowingSGD(torch.optim.SGD):
    """An update that overflows one weight to inf while the loss and the gradient were finite."""

    def step(self, closure=None):
        super().step(closure)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = float("inf")


def test_a_step_that_makes_weights_non_finite_raises_naming_the_step():
    from probe.losses import build_loss
    from probe.models import build_model

    torch.manual_seed(0)
    model = build_model("packnet_slim_b", width=0.0625).train()
    loss = build_loss("densedepth")
    batch = {"image": torch.rand(2, 3, 32, 64), "depth": torch.rand(2, 1, 32, 64) * 9 + 0.5,
             "valid": torch.ones(2, 1, 32, 64, dtype=torch.bool)}
    setup = StepSetup(module=model, device=torch.device("cpu"))
    with pytest.raises(ProbeError, match=r"step 7: the optimizer step made weights non-finite \(lr 0.001"):
        train_step(model, batch, lambda o, d, v: loss(o, d, v, output_space="inverse", max_depth=10.0),
                   OverflowingSGD(model.parameters(), lr=1e-3), setup, step=7, epoch=0)


def test_grad_clip_bounds_the_sgd_update_and_grad_norm_is_measured_before_clipping():
    from probe.losses import build_loss
    from probe.models import build_model

    torch.manual_seed(0)
    model = build_model("packnet_slim_b", width=0.0625).train()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    loss = build_loss("densedepth")
    batch = {"image": torch.rand(2, 3, 32, 64), "depth": torch.rand(2, 1, 32, 64) * 9 + 0.5,
             "valid": torch.ones(2, 1, 32, 64, dtype=torch.bool)}
    setup = StepSetup(module=model, device=torch.device("cpu"), grad_clip=1e-3)
    stats = train_step(model, batch, lambda o, d, v: loss(o, d, v, output_space="inverse", max_depth=10.0),
                       optimizer, setup, step=1, epoch=0)
    update = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert isinstance(stats, StepStats) and stats.grad_norm > 1e-3
    assert float(update) == pytest.approx(1e-3, rel=1e-3)


def test_fresh_run_refuses_an_existing_run_and_resume_refuses_a_different_model(tiny):
    train(tiny(max_steps=1))
    with pytest.raises(ProbeError, match="--resume"):
        train(tiny(max_steps=2))
    with pytest.raises(ProbeError, match="--model"):
        train(tiny(max_steps=2, model="packnet_slim_a", resume=True))


def test_resume_refuses_a_different_learning_rate_that_the_restored_optimizer_would_ignore(tiny):
    first = train(tiny(max_steps=1))
    with pytest.raises(ProbeError, match="--lr"):
        train(tiny(max_steps=2, lr=first_lr(first) * 10, resume=True))


def first_lr(result):
    return json.loads((result.out / "config.json").read_text())["train"]["config"]["lr"]


def test_resume_continues_at_the_checkpoint_step_across_epochs(tiny):
    """In-process twin of the SIGKILL test: stop after 3 of 6 steps (mid-epoch 1), resume, compare."""
    whole = train(tiny("whole", epochs=3, deterministic=True))
    train(tiny("split", epochs=3, deterministic=True, max_steps=3))
    resumed = train(tiny("split", epochs=3, deterministic=True, resume=True))
    assert resumed.summary is not None and resumed.summary.resumed_from_step == 3 and resumed.steps == whole.steps == 6
    assert read_metrics(whole.out / "metrics.jsonl") == [
        {**r, "seconds": w["seconds"], "images_per_s": w["images_per_s"], "data_seconds": w["data_seconds"]}
        for r, w in zip(read_metrics(resumed.out / "metrics.jsonl"), read_metrics(whole.out / "metrics.jsonl"))
    ]
    a, b = (load_file(str(r.checkpoint)) for r in (whole, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_config_validation_and_model_option_parsing():
    assert parse_model_options(["activation=leaky_relu", "skips=false", "min_depth=0.25", "dropout=none"]) == {
        "activation": "leaky_relu", "skips": False, "min_depth": 0.25, "dropout": None}
    with pytest.raises(ProbeError, match="--model-option"):
        parse_model_options(["activation"])
    for bad, flag in ((dict(batch_size=0), "--batch-size"), (dict(precision="fp8"), "--precision"),
                      (dict(lr=0.0), "--lr"), (dict(lr=float("inf")), "--lr"), (dict(lr=float("nan")), "--lr"),
                      (dict(grad_clip=-1.0), "--grad-clip"), (dict(grad_clip=float("nan")), "--grad-clip"),
                      (dict(max_steps=2**70), "--max-steps"), (dict(epochs=10**12), "--epochs"),
                      (dict(workers=10**6), "--workers"), (dict(width=1e6), "--width"),
                      (dict(input_size=(100000, 100000)), "--input-size"), (dict(dataset_length=2**70), "--dataset-length")):
        with pytest.raises(ProbeError, match=flag):
            TrainConfig(**bad).validate()
    cpu = TrainConfig().resolved(torch.device("cpu"))
    assert (cpu.precision, cpu.channels_last) == ("fp32", False)
    assert TrainConfig.from_json(json.loads(json.dumps(cpu.to_json(), default=str))) == cpu


def test_tensorboard_logging_writes_event_files(tiny):
    pytest.importorskip("tensorboard")
    result = train(tiny(max_steps=1, tensorboard=True))
    assert list((result.out / "tensorboard").glob("events.out.tfevents.*"))


def test_cli_train_runs_and_rejects_bad_flags(run_cli, tmp_path):
    from tests.training.conftest import TINY_FLAGS

    res = run_cli("train", *TINY_FLAGS, "--dataset-length", "8", "--max-steps", "2", "--model-option",
                  "output_scale=half", "--probe", "gradients", "--probe-every", "1", "--out", tmp_path / "cli")
    assert res.code == 0, res
    summary = json.loads((tmp_path / "cli" / "train.json").read_text())
    assert summary["model_options"] == {"min_depth": 0.1, "output_scale": "half"} and summary["loss_scales"] == "finest"
    assert (tmp_path / "cli" / "gradients.json").exists(), "the probe hook ran and saved into the run folder"
    res = run_cli("train", *TINY_FLAGS, "--probe", "nonsense", "--out", tmp_path / "bad")
    assert res.code == 2 and "--probe" in res.err
    res = run_cli("train", *TINY_FLAGS, "--precision", "fp8", "--out", tmp_path / "bad")
    assert res.code == 2 and "--precision" in res.err
    res = run_cli("train", *TINY_FLAGS, "--loss-scales", "coarsest", "--out", tmp_path / "bad")
    assert res.code == 2 and "--loss-scales: expected one of finest, all" in res.err and not (tmp_path / "bad").exists()


def test_channels_last_bf16_training_of_packnet_saves_weights_that_reload_exactly(tiny):
    """PackNet's conv3d weights are 5-D: channels_last must convert only the 4-D tensors."""
    result = train(tiny(max_steps=1, precision="bf16", channels_last=True))
    weights = list(result.model.parameters())
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights if p.dim() == 4)
    assert any(p.dim() == 5 for p in weights), "PackNet has packing conv3d weights"
    model, run_config = load_checkpoint(result.out)
    assert run_config["precision"] == "bf16" and run_config["channels_last"] is True
    reference = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    assert all(torch.equal(reference[k], v) for k, v in model.state_dict().items())


def test_lr_schedules_start_at_the_groups_rate_and_end_where_they_say():
    from probe.training.config import LR_SCHEDULES

    assert [LR_SCHEDULES["constant"](s, 10, None) for s in (1, 10)] == [1.0, 1.0]
    cosine = [LR_SCHEDULES["cosine"](s, 11, None) for s in range(1, 12)]
    assert cosine[0] == 1.0 and cosine[-1] == pytest.approx(0.01) and cosine[5] == pytest.approx(0.505)
    assert all(a > b for a, b in zip(cosine, cosine[1:]))  # falls at every step
    assert [LR_SCHEDULES["step"](s, 12, 3) for s in (1, 3, 4, 6, 7, 10)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


def test_training_uses_the_schedule_at_every_step_and_resume_continues_it(tiny):
    whole = train(tiny("whole", max_steps=4, lr=1e-3, lr_schedule="step", lr_decay_every=2, epochs=None))
    assert [r["lr"] for r in read_metrics(whole.out / "metrics.jsonl")] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])
    step_schedule = dict(lr=1e-3, lr_schedule="step", lr_decay_every=2, epochs=None)
    train(tiny("split", max_steps=3, **step_schedule))
    resumed = train(tiny("split", max_steps=4, resume=True, **step_schedule))
    assert [r["lr"] for r in read_metrics(resumed.out / "metrics.jsonl")] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])
    with pytest.raises(ProbeError, match="--lr-schedule"):  # a schedule is part of the run: resume keeps it
        train(tiny("split", max_steps=5, lr=1e-3, lr_schedule="cosine", epochs=None, resume=True))


@pytest.mark.parametrize("overrides,flag", [(dict(lr_schedule="linear"), "--lr-schedule"),
                                            (dict(lr_schedule="step"), "--lr-decay-every"),
                                            (dict(lr_decay_every=5), "--lr-decay-every"),
                                            (dict(lr_schedule="step", lr_decay_every=0), "--lr-decay-every")])
def test_bad_schedule_settings_are_refused_naming_the_flag(tiny, overrides, flag):
    with pytest.raises(ProbeError, match=flag):
        tiny(**overrides).validate()
