"""bench/pose_learning.py: its oracle objective really hands the loss the exact pose and depth, its supervised
pose loss is zero exactly at the exact motion and teaches it, and a tiny run writes one row per scoring step."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import DataLoader

from bench.pose_learning import OracleObjective, main, supervised_pose_loss
from probe.data import get_dataset
from probe.geometry import matrix_to_pose_vec
from probe.models import build_model
from probe.models.posenet import PoseNet
from probe.self_supervised_losses import SelfSupervisedLoss, ViewSynthesisInputs


def test_the_oracle_objective_warps_with_the_exact_pose_and_depth():
    batch = next(iter(DataLoader(get_dataset("synthetic_video", input_size=(32, 48), length=2), batch_size=2)))
    loss = SelfSupervisedLoss({"reprojection": 1.0})
    model = build_model("packnet_b", width=0.0625).train()
    oracle = OracleObjective(PoseNet(width=0.25), loss, output_space=model.output_space, max_depth=10.0,
                             exact_pose=True, exact_depth=True)
    got = oracle(model, batch, lambda module, *x: module(*x)).terms["reprojection"]
    depth = torch.where(batch["valid"], batch["depth"], torch.full_like(batch["depth"], 10.0))
    exact = loss(ViewSynthesisInputs(batch["image"], batch["context"], [depth], batch["poses"], batch["K"]))
    torch.testing.assert_close(got, exact.terms["reprojection"], rtol=1e-4, atol=1e-6)


def test_a_tiny_run_scores_every_few_steps(tmp_path):
    out = tmp_path / "pose.json"
    assert main(["--steps", "2", "--every", "1", "--size", "32x48", "--width", "0.0625", "--pose-width", "0.25",
                 "--eval-length", "2", "--exact-depth", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["step"] for r in rows] == [1, 2] and len(rows[0]["translation_angle_deg"]) == 2
    assert len(rows[0]["translation_explained"]) == len(rows[0]["rotation_explained"]) == 2
    assert len(rows[0]["translation_explained"]) == len(rows[0]["rotation_explained"]) == 2
    machine = json.loads(out.read_text())["machine"]  # the shared bench record: provenance and load
    assert machine["cpus"] >= 1 and "load_average_after" in machine and machine["device"] == "cpu"


class _Says(torch.nn.Module):
    """A pose network that outputs fixed ``[B,S,6]`` vectors whatever its frames."""

    def __init__(self, vectors: torch.Tensor) -> None:
        super().__init__()
        self.vectors = vectors

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.vectors


def test_the_supervised_pose_loss_is_zero_at_the_exact_motion_and_weighs_rotation_in_centiradians():
    batch = next(iter(DataLoader(get_dataset("synthetic_video", input_size=(24, 32), length=2), batch_size=2)))
    exact = matrix_to_pose_vec(batch["poses"].flatten(0, 1).double()).float().view(2, 2, 6)
    assert float(supervised_pose_loss(_Says(exact), batch)) < 1e-6
    off = exact.clone()
    off[..., 4] += 0.01  # every yaw 0.01 rad off: weighs like 1 cm, averaged over the 6 entries
    assert float(supervised_pose_loss(_Says(off), batch)) == pytest.approx(1.0 / 6, rel=1e-4)


def test_supervised_steps_teach_posenet_the_motion_of_a_batch():
    torch.manual_seed(0)
    batch = next(iter(DataLoader(get_dataset("synthetic_video", input_size=(32, 48), length=4), batch_size=4)))
    pose_net = PoseNet(width=0.25)
    optimizer = torch.optim.Adam(pose_net.parameters(), lr=3e-3)
    first = supervised_pose_loss(pose_net, batch).item()
    for _ in range(60):
        optimizer.zero_grad()
        supervised_pose_loss(pose_net, batch).backward()
        optimizer.step()
    assert supervised_pose_loss(pose_net, batch).item() < 0.5 * first


def test_a_tiny_supervised_pose_run_scores_posenet_and_no_depth(tmp_path):
    out = tmp_path / "pose.json"
    assert main(["--steps", "2", "--every", "2", "--size", "32x48", "--pose-width", "0.25", "--eval-length", "2",
                 "--supervised-pose", "--pose-inputs", "pairs", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["step"] == 2 and len(row["translation_explained"]) == 2
    assert row["scale_factor"] is None  # the depth is not trained, so not scored (NaN, written as null)
