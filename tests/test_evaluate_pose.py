"""PoseNet scoring against exact poses: perfect, scaled, reversed and one-source-wrong poses give the numbers they must."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from probe.data import get_dataset
from probe.errors import ProbeError
from probe.evaluate_pose import PoseEvaluation, evaluate_pose
from probe.schema import decode, encode


class Oracle(nn.Module):
    """Returns the dataset's exact poses, changed by ``edit`` ([B,S,4,4] -> [B,S,4,4])."""

    def __init__(self, dataset, edit) -> None:
        super().__init__()
        self.exact = torch.stack([dataset[i]["poses"] for i in range(len(dataset))])
        self.edit, self.seen = edit, 0

    def poses(self, target: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        out = self.exact[self.seen:self.seen + target.shape[0]]
        self.seen += target.shape[0]
        return self.edit(out.clone())


def _score(edit) -> PoseEvaluation:
    dataset = get_dataset("synthetic_video", split="test", input_size=(24, 32), length=6)
    return evaluate_pose(Oracle(dataset, edit), dataset, batch_size=4)


def _scaled(T: torch.Tensor) -> torch.Tensor:
    T[..., :3, 3] *= 2.0
    return T


def _second_source_reversed(T: torch.Tensor) -> torch.Tensor:
    T[:, 1, :3, 3] = -T[:, 1, :3, 3]  # the same rotation, the translation pointing the other way
    return T


def test_exact_poses_score_ratio_one_and_zero_angles():
    pose = _score(lambda T: T)
    assert pose.offsets == [-1, 1] and pose.n_windows == 6
    for source in pose.per_source:
        assert source["translation_ratio"] == pytest.approx(1.0, abs=1e-5)
        assert source["translation_angle_deg"] < 0.1 and source["rotation_error_deg"] < 0.1


def test_a_doubled_translation_keeps_its_direction():
    pose = _score(_scaled)
    assert all(s["translation_ratio"] == pytest.approx(2.0, abs=1e-4) and s["translation_angle_deg"] < 0.1
               for s in pose.per_source)


def test_one_source_pointing_backwards_is_the_worst_angle():
    pose = _score(_second_source_reversed)
    assert pose.per_source[0]["translation_angle_deg"] < 0.1 and pose.per_source[1]["translation_angle_deg"] > 90
    assert pose.worst_angle_deg == pose.per_source[1]["translation_angle_deg"]
    assert decode(PoseEvaluation, encode(pose)) == pose


def test_a_dataset_without_poses_is_refused():
    with pytest.raises(ProbeError, match="no exact poses"):
        evaluate_pose(nn.Identity(), get_dataset("synthetic", split="test", input_size=(24, 32), length=2))
