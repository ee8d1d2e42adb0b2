"""How far can a video's photometric loss see depth?  The reprojection shift a depth error causes, per depth bin.

Self-supervised depth is learnt through reprojection: a pixel of the target
frame is moved into a source frame by its depth and the pose, and the
photometric error there is the loss.  A depth error the reprojection barely
moves is invisible to that loss.  :func:`reprojection_parallax` measures it
with a dataset's exact depth, poses and intrinsics: for every valid pixel it
projects the point at its true depth and at ``multiplier`` times it into each
source frame and takes the larger of the two shifts in pixels (the source that
constrains the pixel best; the loss takes the per-pixel minimum over sources,
so it can pick that one).  Per doubling depth bin (:func:`probe.evaluate_scale.depth_bins`)
it reports the median over windows of each window's median shift.

Forward motion makes the shift fall with depth (a point at distance ``Z`` moves
about ``f * r * dZ / Z^2``), and it scales with the image's width, so a run's
input size decides how far its loss can see: on the street video at 64x96 a
25 % depth error beyond 20 m moves the reprojection by about 0.2 px.

>>> test = get_dataset("synthetic_video_outdoor", split="test", input_size=(64, 96), length=8)  # doctest: +SKIP
>>> reprojection_parallax(test).unobservable_beyond()                                        # doctest: +SKIP
10.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from probe.errors import ProbeError
from probe.evaluate_scale import DepthBin, depth_bins
from probe.geometry import backproject, project

__all__ = ["DEPTH_ERROR", "VISIBLE_PIXELS", "Observability", "reprojection_parallax"]

#: The depth error whose reprojection shift is measured: 25 %, about the compression a squeezed range shows.
DEPTH_ERROR = 1.25
#: A shift below half a pixel is one the photometric loss at that resolution can hardly see.
VISIBLE_PIXELS = 0.5


@dataclass
class Observability:
    """Median reprojection shift (pixels) of a ``multiplier`` depth error per ground-truth depth bin."""

    multiplier: float
    windows: int
    input_size: tuple[int, int]
    bins: list[DepthBin]  # median over windows of each window's median shift, in pixels

    def unobservable_beyond(self, pixels: float = VISIBLE_PIXELS) -> float | None:
        """The near edge of the first bin from which every populated bin's shift is below ``pixels`` (None: none).

        >>> b = [DepthBin(0, 5, 3, 2.0), DepthBin(5, 10, 3, 0.8), DepthBin(10, 20, 3, 0.3), DepthBin(20, 40, 0, 0)]
        >>> Observability(1.25, 3, (64, 96), b).unobservable_beyond()
        10
        >>> Observability(1.25, 3, (64, 96), b[:2]).unobservable_beyond() is None
        True
        """
        populated = [b for b in self.bins if b.n_images and math.isfinite(b.median)]
        edge = None
        for b in reversed(populated):
            if b.median >= pixels:
                break
            edge = b.low
        return edge

    def sentence(self, pixels: float = VISIBLE_PIXELS) -> str:
        """One sentence for a report: how far the loss sees at this input size ('' where it sees every bin)."""
        edge = self.unobservable_beyond(pixels)
        if edge is None:
            return ""
        h, w = self.input_size
        return (
            f" At {h}x{w} a {self.multiplier - 1:.0%} depth error beyond {edge:g} m moves the reprojection by under "
            f"{pixels:g} px (exact poses and depth, {self.windows} test windows), so the photometric loss can hardly "
            "see depth there and the range beyond it is set by the smoothness term and the network's prior."
        )


def _to_source(depth: torch.Tensor, T: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels ``[1,H,W,2]`` of the target's points at ``depth`` in the source ``T`` maps them to, and in front."""
    points = backproject(depth, K)
    moved = (T[:, :3, :3] @ points.reshape(1, 3, -1) + T[:, :3, 3:]).view_as(points)
    return project(moved, K)


@torch.no_grad()
def reprojection_parallax(dataset: Dataset, multiplier: float = DEPTH_ERROR, windows: int = 24) -> Observability:
    """:class:`Observability` of ``dataset`` (items with ``depth``, ``valid``, ``K`` and ``poses``: a video split)."""
    if not multiplier > 0 or multiplier == 1:
        raise ProbeError(f"reprojection_parallax: multiplier must be positive and not 1, got {multiplier}")
    count = min(windows, len(dataset))  # type: ignore[arg-type]
    if count < 1:
        raise ProbeError("reprojection_parallax: the dataset is empty")
    info = getattr(dataset, "info", None)
    first: dict[str, Any] = dataset[0]
    if "poses" not in first or "K" not in first:
        raise ProbeError(
            f"reprojection_parallax: dataset {getattr(info, 'name', dataset)!r} has no exact poses and intrinsics "
            "(expected a video dataset such as synthetic_video_outdoor)"
        )
    edges = depth_bins(float(info.max_depth) if info is not None else float(first["depth"].max()))
    per_bin: list[list[float]] = [[] for _ in edges[1:]]
    for i in range(count):
        item = first if i == 0 else dataset[i]
        depth, valid = item["depth"][None].double(), item["valid"][None].bool()
        K = item["K"][None].double()
        shift = torch.zeros_like(depth)
        for pose in item["poses"]:
            T = pose[None].double()
            (true_uv, front), (wrong_uv, front_wrong) = _to_source(depth, T, K), _to_source(depth * multiplier, T, K)
            moved_by = (wrong_uv - true_uv).norm(dim=-1)[:, None]
            shift = torch.maximum(shift, torch.where(front & front_wrong, moved_by, torch.zeros_like(moved_by)))
        for b in range(len(per_bin)):
            inside = valid & (depth > edges[b]) & (depth <= edges[b + 1])
            if bool(inside.any()):
                per_bin[b].append(float(shift[inside].median()))
    bins = [
        DepthBin(edges[b], edges[b + 1], len(v), float(torch.tensor(v).median()) if v else math.nan)
        for b, v in enumerate(per_bin)
    ]
    size = tuple(int(s) for s in first["depth"].shape[-2:])
    return Observability(multiplier, count, (size[0], size[1]), bins)
