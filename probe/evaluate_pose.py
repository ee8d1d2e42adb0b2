"""How right is the pose network?  Its translations and rotations against the exact poses of a video dataset.

The velocity loss fixes the *length* of the predicted translation; the depth
scale the photometric loss then teaches also depends on its *direction* and on
the rotation (a translation pointing the wrong way, or one source frame's pose
left wrong because the per-pixel minimum over sources ignores it, leaves the
depth free).  :func:`evaluate_pose` reports, per source frame of the window
(e.g. t-1 and t+1), medians over the test windows of:

- ``translation_ratio``: ``||t_hat|| / ||t||`` (1: metric translations);
- ``translation_angle_deg``: the angle between ``t_hat`` and ``t``;
- ``rotation_error_deg``: the angle of ``R_hat^T R``;
- ``rotation_deg``: the angle of the exact rotation itself (the scale of the problem).

>>> pose = evaluate_pose(pose_net, get_dataset("synthetic_video", split="test"))     # doctest: +SKIP
>>> pose.per_source[1]["translation_angle_deg"]                                       # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from probe.errors import ProbeError
from probe.models.posenet import PoseNet

__all__ = ["PoseEvaluation", "evaluate_pose"]


@dataclass
class PoseEvaluation:
    """Medians over test windows per source frame (``offsets`` order); see the module docstring.

    Stored inside other results (the self-supervised study's runs), read and written by :mod:`probe.schema`.
    """

    offsets: list[int]
    n_windows: int
    per_source: list[dict[str, float]]

    @property
    def worst_angle_deg(self) -> float:
        """The largest per-source median translation angle: one wrong source is enough to spoil the depth."""
        return max(s["translation_angle_deg"] for s in self.per_source)


def _angle_deg(R: torch.Tensor) -> torch.Tensor:
    """``[...,3,3]`` rotations -> their rotation angles in degrees."""
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))


@torch.no_grad()
def evaluate_pose(
    pose_net: PoseNet, dataset: Dataset, *, batch_size: int = 8, device: torch.device | str = "cpu"
) -> PoseEvaluation:
    """Score ``pose_net`` on a dataset with exact poses.

    ``pose_net.poses(target [B,3,H,W], sources [B,S,3,H,W]) -> [B,S,4,4]`` (``T_target_to_source``).
    """
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ProbeError("evaluate_pose: the dataset is empty")
    if "poses" not in dataset[0]:
        raise ProbeError("evaluate_pose: the dataset has no exact poses (a synthetic video dataset has them)")
    pose_net = pose_net.to(device).eval()
    ratios, angles, rot_errors, rotations, offsets = [], [], [], [], None
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        predicted = pose_net.poses(batch["image"].to(device), batch["context"].to(device)).cpu().double()
        exact = batch["poses"].double()
        t_hat, t = predicted[..., :3, 3], exact[..., :3, 3]
        cos = (t_hat * t).sum(-1) / (t_hat.norm(dim=-1) * t.norm(dim=-1)).clamp_min(1e-12)
        ratios.append(t_hat.norm(dim=-1) / t.norm(dim=-1).clamp_min(1e-12))
        angles.append(torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0))))
        rot_errors.append(_angle_deg(predicted[..., :3, :3].transpose(-1, -2) @ exact[..., :3, :3]))
        rotations.append(_angle_deg(exact[..., :3, :3]))
        offsets = batch["context_offsets"][0].tolist()
    columns = {
        "translation_ratio": torch.cat(ratios),
        "translation_angle_deg": torch.cat(angles),
        "rotation_error_deg": torch.cat(rot_errors),
        "rotation_deg": torch.cat(rotations),
    }
    per_source = [
        {name: float(values[:, s].median()) for name, values in columns.items()}
        for s in range(columns["translation_ratio"].shape[1])
    ]
    return PoseEvaluation(
        offsets=[int(o) for o in offsets or []], n_windows=int(columns["rotation_deg"].shape[0]), per_source=per_source
    )
