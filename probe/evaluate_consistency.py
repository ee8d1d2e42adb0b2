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

The same loss also reads the depth's *range*.  Each image's depth is raised to
an exponent ``a`` about its own median ``m`` (``m * (d / m) ** a``: ``a > 1``
stretches the range, ``a < 1`` compresses it, the median stays) and the loss is
scanned over ``a``, once with the run's own poses (``best_exponent``) and once
with the exact poses where the dataset has them (``best_exponent_exact``).  For a
depth whose range is compressed (:func:`probe.metrics.range_slopes` below 1):

- ``best_exponent_exact`` above 1 and above ``best_exponent``: the true motion
  would stretch the range that the run's own poses accept; the poses' error
  holds the range compressed;
- ``best_exponent`` above 1: the objective with the run's own poses already
  asks for a wider range and the depth network has not followed it.

The study decides both over seeds (:func:`probe.self_supervised_study.range_reading`).

Controls (``tests/test_evaluate_consistency.py``): exact depth with exact poses has
its minimum at multiplier 1 and exponent 1; exact depth times 1.25 has it at 0.8;
exact depth compressed to exponent 0.5 has it at exponent 2, stretched to 1.5 at
2/3; poses that do not move make every exponent equally good while the exact
scan still finds 1.

>>> result = evaluate_consistency(model, pose_net, get_dataset("synthetic_video", split="test"))  # doctest: +SKIP
>>> result.best_multiplier                                                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Sequence

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

__all__ = [
    "DEFAULT_EXPONENTS",
    "DEFAULT_MULTIPLIERS",
    "ConsistencyEvaluation",
    "best_exponent",
    "best_multiplier",
    "evaluate_consistency",
    "loss_curve",
    "range_loss_curve",
    "with_range_exponent",
]

#: Depth multipliers scanned: 25 log-spaced values from 1/2 to 2 (about 6 % apart).
DEFAULT_MULTIPLIERS: tuple[float, ...] = tuple(float(2.0 ** (k / 12)) for k in range(-12, 13))
#: Range exponents scanned: 0.4 to 2.5 in steps of 0.1 (1 leaves the depth as it is).
DEFAULT_EXPONENTS: tuple[float, ...] = tuple(round(0.4 + 0.1 * k, 10) for k in range(22))


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
    _check_depth(depth, target)
    return _summed_losses(target, sources, (depth * float(s) for s in multipliers), poses, K, automask)


def _check_depth(depth: torch.Tensor, target: torch.Tensor) -> None:
    if depth.dim() != 4 or depth.shape[1] != 1 or depth.shape[-2:] != target.shape[-2:]:
        raise ShapeError(f"consistency: depth {tuple(depth.shape)} must be [B,1,H,W] at the target's size")


def _summed_losses(
    target: torch.Tensor,
    sources: torch.Tensor,
    depths: Iterable[torch.Tensor],
    poses: torch.Tensor,
    K: torch.Tensor,
    automask: bool,
) -> torch.Tensor:
    """The summed per-pixel reprojection loss (minimum over sources) of each depth: ``[n]`` float64."""
    sums = [
        combine_sources(reprojection_errors(target, sources, d, poses, K, automask=automask), sources.shape[1], "min")
        .double()
        .sum()
        for d in depths
    ]
    return torch.stack(sums)


def with_range_exponent(depth: torch.Tensor, exponent: float) -> torch.Tensor:
    """Each image's depth raised to ``exponent`` about its own median: ``m * (d / m) ** exponent``.

    ``depth [B,1,H,W]`` (positive) -> same shape; the median ``m`` is over every pixel of the image.
    """
    if depth.dim() != 4 or depth.shape[1] != 1:
        raise ShapeError(f"consistency: depth {tuple(depth.shape)} must be [B,1,H,W]")
    if exponent == 1.0:
        return depth  # exactly, so the scan's value at 1 is the loss of the depth as it is
    median = depth.flatten(1).median(dim=1).values.view(-1, 1, 1, 1)
    return median * (depth / median) ** float(exponent)


def range_loss_curve(
    target: torch.Tensor,
    sources: torch.Tensor,
    depth: torch.Tensor,
    poses: torch.Tensor,
    K: torch.Tensor,
    exponents: Sequence[float] = DEFAULT_EXPONENTS,
    *,
    automask: bool = True,
) -> torch.Tensor:
    """Summed per-pixel reprojection loss of :func:`with_range_exponent` ``(depth, a)`` per exponent: ``[len]``.

    The :func:`loss_curve` contract, with the range exponent in place of the multiplier.
    """
    _check_depth(depth, target)
    return _summed_losses(target, sources, (with_range_exponent(depth, a) for a in exponents), poses, K, automask)


def _refined_minimum(grid: Sequence[float], losses: Sequence[float], what: str, log: bool) -> float:
    """The grid value of the lowest loss, refined by a parabola through it and its two neighbours
    (in ``log x`` when ``log``); at an end of the grid the end (the minimum may lie beyond it)."""
    if len(grid) != len(losses) or len(grid) < 3:
        raise ProbeError(f"consistency: needs at least 3 {what}, each with one loss")
    i = int(np.argmin(losses))
    if i in (0, len(losses) - 1):
        return float(grid[i])
    x = np.asarray(grid[i - 1 : i + 2], dtype=np.float64)
    x = np.log(x) if log else x
    y = np.asarray(losses[i - 1 : i + 2], dtype=np.float64)
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:
        return float(grid[i])
    best = float(np.clip(-b / (2 * a), x[0], x[2]))
    return float(np.exp(best)) if log else best


def best_multiplier(multipliers: Sequence[float], losses: Sequence[float]) -> float:
    """The multiplier of the lowest loss, refined by a parabola in ``log s`` through it and its neighbours.

    At an end of the grid the grid's end is returned (the minimum may lie beyond it).
    """
    return _refined_minimum(multipliers, losses, "multipliers", log=True)


def best_exponent(exponents: Sequence[float], losses: Sequence[float]) -> float:
    """The range exponent of the lowest loss, refined by a parabola in ``a`` (the grid's end at an end)."""
    return _refined_minimum(exponents, losses, "exponents", log=False)


@dataclass
class ConsistencyEvaluation(Result):
    """The loss against the depth multiplier and the range exponent; ``save(dir)`` writes ``dir/consistency.json``."""

    name: ClassVar[str] = "consistency"
    # 2: the range-exponent scans (exponents, range_losses, best_exponent and their exact-pose twins)
    schema_version: ClassVar[int] = 2

    dataset: str
    n_windows: int
    multipliers: list[float]
    losses: list[float]  # mean per-pixel reprojection loss at each multiplier
    best_multiplier: float
    loss_at_one: float
    loss_at_best: float  # the lowest scanned loss
    exponents: list[float] = field(default_factory=list)
    range_losses: list[float] = field(default_factory=list)  # mean per-pixel loss per exponent, the run's own poses
    best_exponent: float = math.nan  # 1: the own poses ask for the range the depth has; above 1: a wider one
    range_losses_exact: list[float] | None = None  # the same with the exact poses (None: the dataset has none)
    best_exponent_exact: float | None = None
    options: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def evaluate_consistency(
    model: nn.Module,
    pose_net: PoseNet | None,
    dataset: Dataset,
    *,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
    exponents: Sequence[float] = DEFAULT_EXPONENTS,
) -> ConsistencyEvaluation:
    """Scan the depth multiplier and the range exponent for ``model`` on video ``dataset`` (module docstring).

    ``pose_net.poses(target [B,3,H,W], sources [B,S,3,H,W]) -> [B,S,4,4]``; the model's finest output is
    converted to metres with its output space and brought to the image size by nearest-neighbour
    upsampling, as in training.  The exponent scan runs with those poses and, where the dataset's items
    hold ``poses``, with the exact ones.  ``pose_net=None``: the run warped with the exact poses
    (``--pose-source exact``), which are then its own.
    """
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ProbeError("evaluate_consistency: the dataset is empty")
    first = dataset[0]
    if "context" not in first or "K" not in first:
        raise ProbeError("evaluate_consistency: the dataset has no context frames and intrinsics (use a video dataset)")
    if 1.0 not in multipliers:
        raise ProbeError("evaluate_consistency: the multipliers must include 1.0")
    if 1.0 not in exponents:
        raise ProbeError("evaluate_consistency: the exponents must include 1.0")
    info = getattr(dataset, "info", None)
    if info is None:
        raise ProbeError("evaluate_consistency: the dataset has no .info (its depth cap is needed)")
    if pose_net is None and "poses" not in first:
        raise ProbeError("evaluate_consistency: without a pose network the dataset's exact poses are needed")
    dev = torch.device(device)
    model = model.to(dev).eval()
    if pose_net is not None:
        pose_net = pose_net.to(dev).eval()
    space = output_space_of(model)
    total = torch.zeros(len(multipliers), dtype=torch.float64)
    own = torch.zeros(len(exponents), dtype=torch.float64)
    # a separate exact-pose scan only where the run's own poses are PoseNet's (without one they are the exact poses)
    scan_exact = pose_net is not None and "poses" in first
    exact: torch.Tensor | None = torch.zeros(len(exponents), dtype=torch.float64) if scan_exact else None
    pixels, windows = 0, 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        image, sources, K = batch["image"].to(dev), batch["context"].to(dev), batch["K"].to(dev).float()
        depth = to_depth(upsample_depth(finest_scale(model(image)).float(), image.shape[-2:]), space, info.max_depth)
        poses = (pose_net.poses(image, sources) if pose_net is not None else batch["poses"].to(dev)).float()
        total += loss_curve(image.float(), sources.float(), depth, poses, K, multipliers).cpu()
        own += range_loss_curve(image.float(), sources.float(), depth, poses, K, exponents).cpu()
        if exact is not None:
            true_poses = batch["poses"].to(dev).float()
            exact += range_loss_curve(image.float(), sources.float(), depth, true_poses, K, exponents).cpu()
        pixels += image.shape[0] * image.shape[-2] * image.shape[-1]
        windows += image.shape[0]
    losses = (total / pixels).tolist()
    range_losses = (own / pixels).tolist()
    range_losses_exact = None  # no exact poses in the dataset
    if exact is not None:
        range_losses_exact = (exact / pixels).tolist()
    elif pose_net is None:  # the run's own poses are the exact ones: the same scan
        range_losses_exact = range_losses
    return ConsistencyEvaluation(
        dataset=str(info.name),
        n_windows=windows,
        multipliers=[float(s) for s in multipliers],
        losses=losses,
        best_multiplier=best_multiplier(multipliers, losses),
        loss_at_one=losses[list(multipliers).index(1.0)],
        loss_at_best=min(losses),
        exponents=[float(a) for a in exponents],
        range_losses=range_losses,
        best_exponent=best_exponent(exponents, range_losses),
        range_losses_exact=range_losses_exact,
        best_exponent_exact=None if range_losses_exact is None else best_exponent(exponents, range_losses_exact),
        options={
            "batch_size": batch_size,
            "automask": True,
            "sources": "min",
            "scale": "finest",
            "own_poses": "posenet" if pose_net is not None else "exact",
        },
    )
