"""The training set's mean depth map: what a depth network can score without looking at the image.

Eigen et al. (NIPS 2014, Table 1) report a "Mean" baseline next to their network: every test image
gets the per-pixel mean depth of the training set.  It is the floor an image-reading network must
clear on data with a fixed layout.  On street scenes (a ground plane below the horizon, the far
road at its centre) the mean map carries most of the depth structure, so beating the per-image
median constant proves little there; on rooms it is almost flat, and the two floors coincide.

:func:`mean_depth_map` averages ``log depth`` over the valid pixels of the first ``images`` items of
a dataset (the geometric mean, so a few far pixels do not dominate; median scaling per image then
removes the scale, as it does for a model's prediction).  Pixels no training image covers (the
sky of the street scenes) take the map's median; they are invalid in the test images as well.

:class:`MeanMapModel` wraps the map as a depth model (``output_space = "log_depth"``) that returns
it for every image, so every evaluation scores it by the very protocol it scores a network by:

>>> blind = MeanMapModel(mean_depth_map(get_dataset("synthetic_video_outdoor", split="train")))  # doctest: +SKIP
>>> evaluate_scale(blind, test).metrics_median_scaled["abs_rel"]                                   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from probe.errors import ProbeError

__all__ = ["MeanDepthMap", "MeanMapModel", "mean_depth_map"]

#: Training items averaged by default: enough for a smooth map, a few seconds for the generated datasets.
DEFAULT_MEAN_MAP_IMAGES = 512


@dataclass(frozen=True)
class MeanDepthMap:
    """``log_depth`` [H,W]: the mean log depth per pixel over ``images`` training items of ``dataset``;
    ``coverage`` [H,W]: the fraction of them valid at each pixel."""

    dataset: str
    images: int
    log_depth: torch.Tensor
    coverage: torch.Tensor

    def log_at(self, size: tuple[int, int]) -> torch.Tensor:
        """The map's log depth as ``[1,1,h,w]`` at ``size`` (bilinear in log depth)."""
        log = self.log_depth.reshape(1, 1, *self.log_depth.shape[-2:])
        if tuple(log.shape[-2:]) != tuple(size):
            log = F.interpolate(log, size=size, mode="bilinear", align_corners=False)
        return log


class MeanMapModel(nn.Module):
    """A depth model that never reads its input: ``[B,3,H,W]`` -> ``[B,1,H,W]`` log depth, the mean map at ``H,W``.

    No parameters; ``model_name`` is ``"mean depth map"`` so results name it.
    """

    output_space = "log_depth"
    model_name = "mean depth map"
    log_depth: torch.Tensor  # the map's buffer [H,W], moved with the module

    def __init__(self, mean_map: MeanDepthMap) -> None:
        super().__init__()
        self.mean_map = mean_map
        self.register_buffer("log_depth", mean_map.log_depth.clone(), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ProbeError(f"mean depth map: expected images [B,3,H,W], got {tuple(images.shape)}")
        log = self.log_depth.reshape(1, 1, *self.log_depth.shape[-2:])
        if tuple(log.shape[-2:]) != tuple(images.shape[-2:]):
            log = F.interpolate(log, size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)
        return log.expand(images.shape[0], 1, *images.shape[-2:]).to(images.dtype)


def mean_depth_map(dataset: Dataset, images: int = DEFAULT_MEAN_MAP_IMAGES) -> MeanDepthMap:
    """The per-pixel geometric mean depth over the valid pixels of ``dataset``'s first ``images`` items.

    Items are :mod:`probe.data` items (``depth`` [1,H,W] metres, ``valid`` [1,H,W]); every item must
    have the same size (the training resolution).  Fewer items are used when the dataset is shorter.
    """
    if images < 1:
        raise ProbeError(f"mean depth map: expected a positive number of training images, got {images}")
    name = getattr(getattr(dataset, "info", None), "name", type(dataset).__name__)
    count = min(images, len(dataset))  # type: ignore[arg-type]
    if count == 0:
        raise ProbeError(f"mean depth map: dataset {name!r} is empty")
    total: torch.Tensor | None = None
    covered: torch.Tensor | None = None
    for i in range(count):
        item = dataset[i]
        depth, valid = item["depth"].float(), item["valid"].bool()
        depth, valid = depth.reshape(depth.shape[-2:]), valid.reshape(valid.shape[-2:])  # [1,H,W] -> [H,W]
        valid = valid & (depth > 0) & torch.isfinite(depth)
        log = torch.where(valid, depth.clamp_min(1e-6).log(), torch.zeros_like(depth))
        if total is None or covered is None:
            total, covered = log.double(), valid.double()
        elif tuple(log.shape) != tuple(total.shape):
            raise ProbeError(
                f"mean depth map: {name!r} item {i} is {tuple(log.shape)}, item 0 was {tuple(total.shape)}; "
                "expected every training item at one size"
            )
        else:
            total, covered = total + log, covered + valid
    assert total is not None and covered is not None
    if not bool((covered > 0).any()):
        raise ProbeError(f"mean depth map: no valid depth pixel in the first {count} items of {name!r}")
    mean = total / covered.clamp_min(1)
    fill = mean[covered > 0].median()
    mean = torch.where(covered > 0, mean, fill)
    return MeanDepthMap(dataset=name, images=count, log_depth=mean.float(), coverage=(covered / count).float())
