"""Self-supervised training: the photometric loss falls, the velocity loss pulls the translation to metres,
the pose network survives checkpoints and resume, and configs that cannot work fail before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from probe.data import get_dataset
from probe.errors import ProbeError
from probe.models import build_model
from probe.self_supervised_losses import SelfSupervisedLoss
from probe.training import TrainConfig, train
from probe.training.checkpoint import latest_checkpoint, read_state
from probe.training.loop import StepSetup, train_step
from probe.training.self_supervised import SelfSupervisedObjective

TINY = 0.0625


def _overfit(weights: dict[str, float], steps: int, lr: float) -> list[dict[str, float]]:
    """Train a tiny DenseDepth and PoseNet on one fixed batch of 4 windows; the logged terms per step."""
    torch.manual_seed(0)
    batch = next(iter(DataLoader(get_dataset("synthetic_video", input_size=(32, 48), length=4, seed=1), batch_size=4)))
    model = build_model("densedepth", width=TINY).train()
    pose_net = build_model("posenet", width=0.25)
    objective = SelfSupervisedObjective(pose_net, SelfSupervisedLoss(weights), output_space=model.output_space,
                                        max_depth=10.0)
    optimizer = torch.optim.Adam([*model.parameters(), *pose_net.parameters()], lr=lr)
    setup = StepSetup(module=model, device=torch.device("cpu"))
    return [train_step(model, batch, objective, optimizer, setup, step=k, epoch=0).terms for k in range(1, steps + 1)]


def test_training_on_frames_alone_lowers_the_photometric_loss():
    terms = _overfit({"reprojection": 1.0, "smoothness": 1e-3}, steps=12, lr=1e-3)
    first, last = terms[0]["reprojection"], sum(t["reprojection"] for t in terms[-3:]) / 3
    assert last < 0.85 * first
    assert terms[0]["pose_scale"] < 0.3  # PoseNet's 0.01 output scaling starts near identity motion


def test_the_velocity_loss_pulls_the_translation_to_the_distance_travelled():
    pulled = _overfit({"velocity": 1.0}, steps=15, lr=1e-2)
    assert pulled[0]["pose_scale"] < 0.3
    assert abs(sum(t["pose_scale"] for t in pulled[-3:]) / 3 - 1.0) < 0.15
    assert pulled[-1]["velocity"] < 0.5 * pulled[0]["velocity"]


def _reprojection_per_call(tmp_path: Path, calls: int, **schedule) -> list[float]:
    """The logged reprojection term of ``calls`` successive objective calls on one batch, weights unchanged."""
    from probe.training.objective import build_objective

    dataset = get_dataset("synthetic_video", input_size=(32, 48), length=2, seed=1)
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    torch.manual_seed(0)
    model = build_model("densedepth", width=TINY).eval()
    torch.manual_seed(1)  # the same PoseNet weights for every objective
    objective = build_objective(_config(tmp_path, model="densedepth", **schedule), model, dataset, torch.device("cpu"))
    with torch.no_grad():
        return [float(objective(model, batch, lambda m, x: m(x)).terms["reprojection"]) for _ in range(calls)]


def test_source_average_steps_average_the_sources_first_then_take_the_minimum(tmp_path):
    averaged, minimum = _reprojection_per_call(tmp_path, 4, source_average_steps=2), _reprojection_per_call(tmp_path, 2)
    assert averaged[0] == averaged[1] and averaged[2] == averaged[3] == minimum[0] == minimum[1]
    assert averaged[0] > 1.05 * minimum[0]  # the mean over sources, not the minimum, for the first 2 steps


def test_automask_after_leaves_the_identity_candidates_out_of_the_first_steps(tmp_path):
    late, masked = _reprojection_per_call(tmp_path, 3, automask_after=2), _reprojection_per_call(tmp_path, 1)
    assert late[0] == late[1] and late[2] == masked[0]
    assert late[0] > 1.05 * masked[0]  # without the identity candidates the minimum has fewer to pick from


def test_the_two_schedules_combine_phase_by_phase(tmp_path):
    both = _reprojection_per_call(tmp_path, 6, source_average_steps=2, automask_after=4)
    unmasked_min = _reprojection_per_call(tmp_path, 1, automask_after=1)[0]
    masked_min = _reprojection_per_call(tmp_path, 1)[0]
    assert both[0] == both[1] > both[2] == both[3] == unmasked_min > both[4] == both[5] == masked_min
    with pytest.raises(ProbeError, match="increasing positive steps"):
        SelfSupervisedObjective(build_model("posenet", width=0.25), SelfSupervisedLoss(), output_space="inverse",
                                max_depth=10.0, phases=[(3, SelfSupervisedLoss()), (2, SelfSupervisedLoss())])


def test_the_loss_schedule_resumes_where_it_stopped(tmp_path):
    schedule = dict(source_average_steps=3, automask_after=3)
    whole = train(_config(tmp_path / "whole", max_steps=4, **schedule))
    train(_config(tmp_path / "split", max_steps=2, **schedule))
    resumed = train(_config(tmp_path / "split", max_steps=4, resume=True, **schedule))
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert read_state(latest_checkpoint(resumed.out, with_state=True))["objective"]["steps"] == 4
    with pytest.raises(ProbeError, match="--source-average-steps"):
        train(_config(tmp_path / "split", max_steps=5, source_average_steps=1, automask_after=3, resume=True))


def _config(out: Path, **overrides) -> TrainConfig:
    base = dict(model="packnet_slim_b", width=TINY, dataset="synthetic_video", input_size=(32, 48), dataset_length=8,
                batch_size=2, epochs=1, objective="self_supervised", velocity_weight=0.1, pose_width=0.25, lr=1e-3,
                device="cpu", workers=0, deterministic=True, out=out)
    return TrainConfig(**{**base, **overrides})


def test_resume_restores_the_pose_network_and_its_optimiser_state(tmp_path):
    whole = train(_config(tmp_path / "whole", max_steps=4))
    train(_config(tmp_path / "split", max_steps=2))
    resumed = train(_config(tmp_path / "split", max_steps=4, resume=True))
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    states = [read_state(latest_checkpoint(r.out, with_state=True)) for r in (whole, resumed)]
    pose_whole, pose_resumed = (s["objective"]["pose_net"] for s in states)
    assert pose_whole.keys() == pose_resumed.keys() and len(pose_whole) > 10
    for key in pose_whole:
        assert torch.equal(pose_whole[key], pose_resumed[key]), key
    lines = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    assert '"loss_reprojection"' in lines[0] and '"loss_velocity"' in lines[0] and '"loss_pose_scale"' in lines[0]
    assert whole.summary.objective == "self_supervised" and whole.summary.objective_params > 0


def test_the_pose_network_trains_in_its_own_parameter_group_with_its_learning_rate(tmp_path):
    from probe.training.loop import _Run
    from probe.training.distributed import DistInfo

    config = _config(tmp_path / "run", max_steps=1, pose_lr=3e-3).resolved(torch.device("cpu"))
    run = _Run(config, [], DistInfo(), torch.device("cpu"))
    run._build()
    depth_group, pose_group = run.optimizer.param_groups
    assert depth_group["lr"] == 1e-3 and pose_group["lr"] == 3e-3
    assert sum(p.numel() for p in pose_group["params"]) == sum(p.numel() for p in run.objective.parameters())


def test_exact_pose_source_warps_with_the_datasets_poses_and_trains_no_pose_network(tmp_path):
    from probe.depth_space import to_depth
    from probe.self_supervised_losses import DEFAULT_WEIGHTS, ViewSynthesisInputs
    from probe.training.objective import build_objective
    from probe.training.self_supervised import upsample_depth

    dataset = get_dataset("synthetic_video", input_size=(32, 48), length=2, seed=1)
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    torch.manual_seed(0)
    model = build_model("densedepth", width=TINY).eval()
    config = _config(tmp_path, model="densedepth", pose_source="exact", smoothness_weight=0.0)
    objective = build_objective(config, model, dataset, torch.device("cpu"))
    assert list(objective.parameters()) == []  # PoseNet is not trained
    with torch.no_grad():
        got = objective(model, batch, lambda m, x: m(x))
        depth = to_depth(upsample_depth(model(batch["image"]), batch["image"].shape[-2:]), model.output_space, 10.0)
        travelled = batch["speed"][:, None] * batch["context_dt"].abs()
        inputs = ViewSynthesisInputs(batch["image"], batch["context"], [depth], batch["poses"], batch["K"],
                                     travelled, batch["speed_valid"])
        want = SelfSupervisedLoss({**DEFAULT_WEIGHTS, "velocity": 0.1, "smoothness": 0.0})(inputs)
    assert got.terms["reprojection"] == pytest.approx(float(want.terms["reprojection"]), rel=1e-5)
    assert float(got.terms["velocity"]) < 1e-3  # the exact translations have the distance travelled
    with pytest.raises(ProbeError, match="--pose-source exact: .* no exact poses"):
        objective(model, {k: v for k, v in batch.items() if k != "poses"}, lambda m, x: m(x))
    result = train(_config(tmp_path / "run", max_steps=2, pose_source="exact"))
    assert result.summary.objective_params == 0
    with pytest.raises(ProbeError, match="--pose-source"):
        train(_config(tmp_path / "run", max_steps=3, resume=True))


def test_resume_refuses_a_different_velocity_weight(tmp_path):
    train(_config(tmp_path / "run", max_steps=1))
    with pytest.raises(ProbeError, match="--velocity-weight"):
        train(_config(tmp_path / "run", max_steps=2, resume=True, velocity_weight=0.5))


def test_supervised_training_reads_a_video_dataset_like_any_other(tmp_path):
    result = train(_config(tmp_path / "sup", objective="supervised", velocity_weight=0.0, max_steps=2))
    assert result.steps == 2 and result.summary.objective_params == 0


@pytest.mark.parametrize("overrides,match", [
    ({"dataset": "synthetic"}, "no context frames"),
    ({"model": "posenet"}, "a pose model"),
    ({"objective": "supervised"}, "--velocity-weight: only with"),
    ({"velocity_weight": -0.1}, "--velocity-weight"),
    ({"objective": "semi"}, "unknown objective"),
    ({"pose_width": 0.0}, "--pose-width"),
    ({"pose_lr": 0.0}, "--pose-lr"),
    ({"smoothness_weight": -1.0}, "--smoothness-weight"),
    ({"source_average_steps": -1}, "--source-average-steps"),
    ({"pose_inputs": "pile"}, "--pose-inputs: expected one of stack, pairs"),
    ({"pose_translation_scale": 0.0}, "--pose-translation-scale: expected a positive factor"),
    ({"pose_translation_scale": float("nan")}, "--pose-translation-scale: expected a positive factor"),
    ({"objective": "supervised", "velocity_weight": 0.0, "pose_translation_scale": 1.0},
     "--pose-translation-scale: only with"),
    ({"automask_after": -3}, "--automask-after"),
    ({"objective": "supervised", "velocity_weight": 0.0, "automask_after": 5}, "--automask-after: only with"),
    ({"objective": "supervised", "velocity_weight": 0.0, "pose_inputs": "pairs"}, "--pose-inputs: only with"),
    ({"objective": "supervised", "velocity_weight": 0.0, "source_average_steps": 5},
     "--source-average-steps: only with"),
    ({"pose_source": "oracle"}, "--pose-source: expected one of posenet, exact"),
    ({"objective": "supervised", "velocity_weight": 0.0, "pose_source": "exact"}, "--pose-source: only with"),
])
def test_configs_that_cannot_work_fail_before_writing_anything(tmp_path, overrides, match):
    out = tmp_path / "never"
    with pytest.raises(ProbeError, match=match):
        train(_config(out, max_steps=1, **overrides))
    assert not out.exists()


def test_cli_trains_self_supervised_and_refuses_a_still_dataset_in_one_line(run_cli, tmp_path):
    res = run_cli("train", "--model", "densedepth", "--width", TINY, "--dataset", "synthetic_video", "--input-size",
                  "32x48", "--dataset-length", "4", "--batch-size", "2", "--max-steps", "1", "--objective",
                  "self_supervised", "--velocity-weight", "0.1", "--pose-width", "0.25", "--pose-lr", "1e-3",
                  "--smoothness-weight", "0.01", "--source-average-steps", "1", "--pose-inputs", "pairs",
                  "--automask-after", "3", "--pose-translation-scale", "0.5", "--workers", "0", "--device", "cpu",
                  "--out", tmp_path / "ok")
    assert res.code == 0, res
    config = json.loads((tmp_path / "ok" / "config.json").read_text())["train"]["config"]
    assert (config["objective"], config["velocity_weight"], config["pose_lr"], config["smoothness_weight"],
            config["source_average_steps"], config["pose_inputs"], config["automask_after"],
            config["pose_translation_scale"]) == ("self_supervised", 0.1, 1e-3, 0.01, 1, "pairs", 3, 0.5)
    state = read_state(latest_checkpoint(tmp_path / "ok", with_state=True))
    assert state["objective"]["pose_net"]["pose_pred.weight"].shape[0] == 6  # one shared pair network
    bad = run_cli("train", "--dataset", "synthetic", "--objective", "self_supervised", "--out", tmp_path / "bad")
    assert bad.code == 2 and "no context frames" in bad.err and len(bad.err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
