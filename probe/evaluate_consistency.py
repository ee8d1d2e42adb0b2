"""Is the depth's scale where its own objective wants it?  Photometric self-consistency of depth and pose.

A self-supervised run learns depth and translation together; the reprojection
loss ties their scales, and the velocity loss fixes the translation's.  When
the evaluated scale factor (``median gt / median pred``, :mod:`probe.evaluate_scale`)
misses 1, either the objective points elsewhere (PoseNet's translations are off,
the velocity loss is weak) or the depth network has not settled where the
objective points (its global scale is a flat, slowly converging direction).

:func:`evaluate_consistency` separates the two.  With the run's own PoseNet
translations held fixed it multiplies the predicted depth by each ``s`` of a
log-spaced grid and measures the photometric reprojection loss (the training
term: 0.85 SSIM + 0.15 L1, minimum over the sources, auto-masked, finest scale,
at the trained input size) on test windows.  ``best_multiplier`` is the ``s`` with
the lowest mean loss, refined by a parabola through it and its two neighbours in
``log s``.  Read together with the scale factor ``r``:

- ``best_multiplier`` near 1: depth and poses agree; a scale error then comes from
  the poses' scale (the velocity loss), not from the depth network;
- ``best_multiplier`` near ``r``: the objective already points at metric depth and
  the depth network has not got there (an optimisation lag); more steps or an
  annealed learning rate are the remedy, not another loss.

Controls (``tests/test_evaluate_consistency.py``): exact depth with exact poses has
its minimum at 1; exact depth times 1.25 has it at 0.8.

>>> result = evaluate_consistency(model, pose_net, get_dataset("synthetic_video", split="test"))  # doctest: +SKIP
>>> result.best_multiplier                                                                          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from probe.depth_space import to_depth
from probe.errors import ProbeError, ShapeError
from probe.models.common import finest_scale, output_space_of
from probe.models.posenet import PoseNet
from probe.results import Result
from probe.self_supervised_losses import combine_sources, reprojection_errors
from probe.training.self_supervised import upsample_depth

__all__ = ["DEFAULT_MULTIPLIERS", "ConsistencyEvaluation", "best_multiplier", "evaluate_consistency", "loss_curve"]

#: Depth multipliers scanned: 25 log-spaced values from 1/2 to 2 (about 6 % apart).
DEFAULT_MULTIPLIERS: tuple[float, ...] = tuple(float(2.0 ** (k / 12)) for k in range(-12, 13))


def loss_curve(
    target: torch.Tensor,
    sources: torch.Tensor,
    depth: torch.Tensor,
    poses: torch.Tensor,
    K: torch.Tensor,
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
    *,
    automask: bool = True,
) -> torch.Tensor:
    """Summed per-pixel reprojection loss of ``depth * s`` for each multiplier: ``[len(multipliers)]`` (float64).

    ``target [B,3,H,W]``, ``sources [B,S,3,H,W]``, ``depth [B,1,H,W]`` metres, ``poses [B,S,4,4]``
    ``T_target_to_source``, ``K [B,3,3]`` (the :func:`probe.self_supervised_losses.reprojection_errors`
    contract).  Sums, not means, so batches add up; divide by the pixel count for the mean.
    """
    if depth.dim() != 4 or depth.shape[1] != 1 or depth.shape[-2:] != target.shape[-2:]:
        raise ShapeError(f"consistency: depth {tuple(depth.shape)} must be [B,1,H,W] at the target's size")
    sums = []
    for s in multipliers:
        errors = reprojection_errors(target, sources, depth * float(s), poses, K, automask=automask)
        sums.append(combine_sources(errors, sources.shape[1], "min").double().sum())
    return torch.stack(sums)


def best_multiplier(multipliers: Sequence[float], losses: Sequence[float]) -> float:
    """The multiplier of the lowest loss, refined by a parabola in ``log s`` through it and its neighbours.

    At an end of the grid the grid's end is returned (the minimum may lie beyond it).
    """
    if len(multipliers) != len(losses) or len(multipliers) < 3:
        raise ProbeError("consistency: needs at least 3 multipliers, each with one loss")
    i = int(np.argmin(losses))
    if i in (0, len(losses) - 1):
        return float(multipliers[i])
    x = np.log(np.asarray(multipliers[i - 1 : i + 2], dtype=np.float64))
    y = np.asarray(losses[i - 1 : i + 2], dtype=np.float64)
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:
        return float(multipliers[i])
    return float(np.exp(np.clip(-b / (2 * a), x[0], x[2])))


@dataclass
class ConsistencyEvaluation(Result):
    """The loss against the depth multiplier; ``save(dir)`` writes ``dir/consistency.json``."""

    name: ClassVar[str] = "consistency"
    schema_version: ClassVar[int] = 1

    dataset: str
    n_windows: int
    multipliers: list[float]
    losses: list[float]  # mean per-pixel reprojection loss at each multiplier
    best_multiplier: float
    loss_at_one: float
    loss_at_best: float  # the lowest scanned loss
    options: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def evaluate_consistency(
    model: nn.Module,
    pose_net: PoseNet,
    dataset: Dataset,
    *,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
) -> ConsistencyEvaluation:
    """Scan the depth multiplier for ``model`` with ``pose_net``'s poses on video ``dataset`` (module docstring).

    ``pose_net.poses(target [B,3,H,W], sources [B,S,3,H,W]) -> [B,S,4,4]``; the model's finest output is
    converted to metres with its output space and brought to the image size by nearest-neighbour
    upsampling, as in training.
    """
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ProbeError("evaluate_consistency: the dataset is empty")
    first = dataset[0]
    if "context" not in first or "K" not in first:
        raise ProbeError("evaluate_consistency: the dataset has no context frames and intrinsics (use a video dataset)")
    if 1.0 not in multipliers:
        raise ProbeError("evaluate_consistency: the multipliers must include 1.0")
    info = getattr(dataset, "info", None)
    if info is None:
        raise ProbeError("evaluate_consistency: the dataset has no .info (its depth cap is needed)")
    dev = torch.device(device)
    model, pose_net = model.to(dev).eval(), pose_net.to(dev).eval()
    space = output_space_of(model)
    total = torch.zeros(len(multipliers), dtype=torch.float64)
    pixels, windows = 0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        image, sources, K = batch["image"].to(dev), batch["context"].to(dev), batch["K"].to(dev).float()
        depth = to_depth(upsample_depth(finest_scale(model(image)).float(), image.shape[-2:]), space, info.max_depth)
        poses = pose_net.poses(image, sources).float()
        total += loss_curve(image.float(), sources.float(), depth, poses, K, multipliers).cpu()
        pixels += image.shape[0] * image.shape[-2] * image.shape[-1]
        windows += image.shape[0]
    losses = (total / pixels).tolist()
    return ConsistencyEvaluation(
        dataset=str(info.name),
        n_windows=windows,
        multipliers=[float(s) for s in multipliers],
        losses=losses,
        best_multiplier=best_multiplier(multipliers, losses),
        loss_at_one=losses[list(multipliers).index(1.0)],
        loss_at_best=min(losses),
        options={"batch_size": batch_size, "automask": True, "sources": "min", "scale": "finest"},
    )
