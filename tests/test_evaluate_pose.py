"""PoseNet scoring against exact poses: perfect, scaled, reversed and one-source-wrong poses give the numbers they must."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from probe.data import get_dataset
from probe.errors import ProbeError
from probe.evaluate_pose import MOTION_FIELDS, PoseEvaluation, evaluate_pose, explained_variation
from probe.geometry import matrix_to_pose_vec, pose_vec_to_matrix
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


def _score(edit, length: int = 6) -> PoseEvaluation:
    dataset = get_dataset("synthetic_video", split="test", input_size=(24, 32), length=length)
    return evaluate_pose(Oracle(dataset, edit), dataset, batch_size=4)


def _vectors(T: torch.Tensor) -> torch.Tensor:
    return matrix_to_pose_vec(T.reshape(-1, 4, 4)).view(*T.shape[:2], 6)


def _matrices(v: torch.Tensor) -> torch.Tensor:
    return pose_vec_to_matrix(v.reshape(-1, 6)).view(*v.shape[:2], 4, 4)


class MeanMotion(Oracle):
    """A pose network that does not read its frames: every window gets the test split's mean motion."""

    def __init__(self, dataset) -> None:
        super().__init__(dataset, lambda T: T)
        self.exact = _matrices(_vectors(self.exact).mean(0, keepdim=True).expand(len(self.exact), -1, -1))


def _with_rotation_noise(T: torch.Tensor) -> torch.Tensor:
    """Each window's Euler angles moved by noise as large as the exact turns themselves."""
    v = _vectors(T)
    generator = torch.Generator().manual_seed(int(1e6 * float(v[..., 3:].abs().sum())) % 2**31)
    noise = torch.randn(v[..., 3:].shape, generator=generator, dtype=v.dtype) * v[..., 3:].std()
    return _matrices(torch.cat([v[..., :3], v[..., 3:] + noise], dim=-1))


def _pitched(T: torch.Tensor) -> torch.Tensor:
    """The exact motion with every rotation pitched by a further 0.5 degrees."""
    v = _vectors(T)
    v[..., 3] += torch.deg2rad(torch.tensor(0.5, dtype=v.dtype))
    return _matrices(v)


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


def test_exact_poses_follow_all_of_the_motion_with_no_bias():
    pose = _score(lambda T: T, length=16)
    for source in pose.per_source:
        assert source["translation_explained"] == pytest.approx(1.0, abs=1e-6)
        assert source["rotation_explained"] == pytest.approx(1.0, abs=1e-6)
        assert all(abs(source[name]) < 1e-6 for name in ("pitch_bias_deg", "yaw_bias_deg", "roll_bias_deg"))
    assert pose.worst("rotation_explained") == pytest.approx(1.0, abs=1e-6)


def test_one_motion_for_every_window_follows_none_of_it():
    dataset = get_dataset("synthetic_video", split="test", input_size=(24, 32), length=16)
    pose = evaluate_pose(MeanMotion(dataset), dataset, batch_size=4)
    for source in pose.per_source:
        assert source["translation_explained"] == pytest.approx(0.0, abs=1e-6)
        assert source["rotation_explained"] == pytest.approx(0.0, abs=1e-6)


def test_a_scaled_translation_still_follows_the_motion_but_a_scaled_rotation_does_not():
    pose = _score(_scaled, length=16)  # translations doubled: PoseNet's translation is up to the depth's scale
    assert all(s["translation_explained"] == pytest.approx(1.0, abs=1e-6) for s in pose.per_source)
    assert all(s["rotation_explained"] == pytest.approx(1.0, abs=1e-6) for s in pose.per_source)
    noisy = _score(_with_rotation_noise, length=16)  # rotations off by as much as they turn: no better than none
    assert all(s["rotation_explained"] < 0.5 for s in noisy.per_source)
    assert all(s["translation_explained"] == pytest.approx(1.0, abs=1e-6) for s in noisy.per_source)


def test_a_shared_pitch_offset_is_a_bias_not_a_failure_to_follow():
    pose = _score(_pitched, length=16)
    for source in pose.per_source:
        assert source["pitch_bias_deg"] == pytest.approx(0.5, abs=1e-4)
        assert abs(source["yaw_bias_deg"]) < 1e-4 and abs(source["roll_bias_deg"]) < 1e-4
        assert source["rotation_explained"] == pytest.approx(1.0, abs=1e-4)
    assert decode(PoseEvaluation, encode(pose)) == pose


def test_explained_variation_is_nan_without_variation_and_zero_for_a_constant():
    exact = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    assert explained_variation(exact * 0.5 + 7, exact, fit_scale=True) == pytest.approx(1.0)
    assert explained_variation(exact * 0.5 + 7, exact) == pytest.approx(1.0 - 0.25)  # half the swing is missed
    assert explained_variation(torch.ones(3, 2), exact, fit_scale=True) == 0.0
    assert torch.isnan(torch.tensor(explained_variation(exact, torch.ones(3, 2))))
    assert torch.isnan(torch.tensor(explained_variation(exact[:1], exact[:1])))
    with pytest.raises(ProbeError, match="two \\[N,D\\] tensors"):
        explained_variation(exact, exact[:, :1])


def test_results_written_before_the_motion_fields_read_them_as_nan():
    old = PoseEvaluation(offsets=[-1, 1], n_windows=4, per_source=[
        {"translation_ratio": 1.0, "translation_angle_deg": 2.0, "rotation_error_deg": 0.3, "rotation_deg": 0.1}] * 2)
    assert all(torch.isnan(torch.tensor(old.worst(name))) for name in MOTION_FIELDS[:2])
