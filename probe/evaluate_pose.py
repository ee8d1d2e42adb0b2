"""How right is the pose network?  Its translations and rotations against the exact poses of a video dataset.

The velocity loss fixes the *length* of the predicted translation; the depth
scale the photometric loss then teaches also depends on its *direction* and on
the rotation (a translation pointing the wrong way, or one source frame's pose
left wrong because the per-pixel minimum over sources ignores it, leaves the
depth free).  :func:`evaluate_pose` reports, per source frame of the window
(e.g. t-1 and t+1), over the test windows (the first four are medians):

- ``translation_ratio``: ``||t_hat|| / ||t||`` (1: metric translations);
- ``translation_angle_deg``: the angle between ``t_hat`` and ``t``;
- ``rotation_error_deg``: the angle of ``R_hat^T R``;
- ``rotation_deg``: the angle of the exact rotation itself (the scale of the problem);
- ``translation_explained`` and ``rotation_explained``: the share of the exact
  motion's variation *across windows* that the predictions follow
  (:func:`explained_variation`; the translation after its best single scale,
  since PoseNet knows it only up to the depth's scale; a constant offset never
  counts against either).  1: every window's motion; 0: no better than one
  fixed motion for every window (a network that does not read its frames);
  below 0 (rotation only): noisier than that.  NaN where the exact motion does
  not vary (fewer than two windows, or one motion for all);
- ``pitch_bias_deg``, ``yaw_bias_deg``, ``roll_bias_deg``: the mean error of the
  predicted rotation's Euler angles (PoseNet's own ``rx, ry, rz``, camera axes
  x right, y down, z forward), in degrees.  Unlike the rotation error, these
  are not medians but means of signed errors: a bias that every window shares.

Rotation angles are compared as :func:`probe.geometry.matrix_to_pose_vec`'s
Euler angles, which is what PoseNet predicts; for the motion between video
frames (a few degrees) they are the rotation vector to first order.

>>> pose = evaluate_pose(pose_net, get_dataset("synthetic_video", split="test"))     # doctest: +SKIP
>>> pose.per_source[1]["translation_angle_deg"]                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from probe.errors import ProbeError
from probe.geometry import matrix_to_pose_vec
from probe.models.posenet import PoseNet

__all__ = ["AXES", "MOTION_FIELDS", "PoseEvaluation", "evaluate_pose", "explained_variation"]

#: The Euler axes of PoseNet's rotation (rx, ry, rz; camera x right, y down, z forward).
AXES = ("pitch", "yaw", "roll")

#: The per-source fields on how well the predictions follow the motion from window to window (absent in
#: results written before they existed; readers take NaN then).
MOTION_FIELDS = ("translation_explained", "rotation_explained", *(f"{axis}_bias_deg" for axis in AXES))

#: Exact motion varying less than this across windows (summed variance, m^2 or rad^2) leaves nothing to explain.
_MIN_VARIATION = 1e-12


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

    def worst(self, name: str) -> float:
        """The lowest per-source value of a ``*_explained`` field: the source that follows its motion least
        (NaN when a source lacks it: a result written before the field existed, or an exact motion that does not
        vary)."""
        values = [s.get(name, math.nan) for s in self.per_source]
        return math.nan if not values or any(math.isnan(v) for v in values) else min(values)

    def bias_deg(self, source: int) -> tuple[float, ...]:
        """Source ``source``'s mean (pitch, yaw, roll) error in degrees (NaN for a result written without them)."""
        return tuple(self.per_source[source].get(f"{axis}_bias_deg", math.nan) for axis in AXES)


def explained_variation(predicted: torch.Tensor, exact: torch.Tensor, *, fit_scale: bool = False) -> float:
    """``[N,D]`` predictions and exact values over N windows -> the share of the exact values' variation across
    windows that the predictions follow: ``1 - sum |k p_c - x_c|^2 / sum |x_c|^2``, with ``p_c`` and ``x_c`` the
    predictions and exact values less their means over windows.

    ``k`` is 1, or with ``fit_scale`` the least-squares scale (a translation is known only up to the depth's
    scale). A constant offset never lowers it; a prediction that is the same for every window scores 0; below 0
    (only without ``fit_scale``) the predictions scatter more than the motion itself; NaN when ``exact`` does not
    vary or N < 2.
    """
    if predicted.shape != exact.shape or predicted.dim() != 2:
        raise ProbeError(
            f"explained_variation: expected two [N,D] tensors, got {tuple(predicted.shape)} and {tuple(exact.shape)}"
        )
    if exact.shape[0] < 2:
        return math.nan
    p, x = predicted - predicted.mean(0), exact - exact.mean(0)
    spread = float((x**2).sum())
    if spread < _MIN_VARIATION:
        return math.nan
    k = 1.0
    if fit_scale:
        norm = float((p**2).sum())
        k = float((p * x).sum()) / norm if norm > _MIN_VARIATION * spread else 0.0
    return 1.0 - float(((k * p - x) ** 2).sum()) / spread


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
    vectors_hat, vectors = [], []  # [B,S,6] (tx, ty, tz, rx, ry, rz) per batch, predicted and exact
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        predicted = pose_net.poses(batch["image"].to(device), batch["context"].to(device)).cpu().double()
        exact = batch["poses"].double()
        t_hat, t = predicted[..., :3, 3], exact[..., :3, 3]
        cos = (t_hat * t).sum(-1) / (t_hat.norm(dim=-1) * t.norm(dim=-1)).clamp_min(1e-12)
        ratios.append(t_hat.norm(dim=-1) / t.norm(dim=-1).clamp_min(1e-12))
        angles.append(torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0))))
        rot_errors.append(_angle_deg(predicted[..., :3, :3].transpose(-1, -2) @ exact[..., :3, :3]))
        rotations.append(_angle_deg(exact[..., :3, :3]))
        b, n_sources = exact.shape[:2]
        vectors_hat.append(matrix_to_pose_vec(predicted.reshape(-1, 4, 4)).view(b, n_sources, 6))
        vectors.append(matrix_to_pose_vec(exact.reshape(-1, 4, 4)).view(b, n_sources, 6))
        offsets = batch["context_offsets"][0].tolist()
    columns = {
        "translation_ratio": torch.cat(ratios),
        "translation_angle_deg": torch.cat(angles),
        "rotation_error_deg": torch.cat(rot_errors),
        "rotation_deg": torch.cat(rotations),
    }
    v_hat, v = torch.cat(vectors_hat), torch.cat(vectors)
    bias = torch.rad2deg((v_hat[..., 3:] - v[..., 3:]).mean(0))  # [S,3] mean Euler-angle error per source
    per_source = [
        {name: float(values[:, s].median()) for name, values in columns.items()}
        | {
            "translation_explained": explained_variation(v_hat[:, s, :3], v[:, s, :3], fit_scale=True),
            "rotation_explained": explained_variation(v_hat[:, s, 3:], v[:, s, 3:]),
        }
        | {f"{axis}_bias_deg": float(bias[s, k]) for k, axis in enumerate(AXES)}
        for s in range(columns["translation_ratio"].shape[1])
    ]
    return PoseEvaluation(
        offsets=[int(o) for o in offsets or []], n_windows=int(columns["rotation_deg"].shape[0]), per_source=per_source
    )
