"""bench/pose_learning.py: its oracle objective really hands the loss the exact pose and depth, and a tiny run
writes one row per scoring step."""

from __future__ import annotations

import json

import torch
from torch.utils.data import DataLoader

from bench.pose_learning import OracleObjective, main
from probe.data import get_dataset
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
    machine = json.loads(out.read_text())["machine"]  # the shared bench record: provenance and load
    assert machine["cpus"] >= 1 and "load_average_after" in machine and machine["device"] == "cpu"
