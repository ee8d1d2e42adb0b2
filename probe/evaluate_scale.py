"""Did the model learn metric scale?  Metrics with and without median scaling, and the scale factor itself.

A self-supervised model sees depth only through reprojection, which is
blind to one global scale: depth and translation can both be multiplied by
any factor.  The literature therefore evaluates with per-image median
scaling, ``p *= median(gt) / median(p)``, which hides whether the scale was
learnt.  :func:`evaluate_scale` reports, in one pass over the data and with
one protocol (crop, depth range):

- ``metrics``: the prediction as it is (metric depth, clamped to the protocol's range);
- ``metrics_median_scaled``: after per-image median scaling (the monodepth2 / packnet-sfm protocol);
- ``constant_median_scaled``: the constant predictor after median scaling, i.e. every
  pixel at the image's median ground truth: the floor any depth map must beat;
- ``ratio``: the per-image scale factors ``median(gt) / median(pred)`` (over the
  evaluated pixels, before clamping): median, mean, std, quartiles, range and the
  fraction within 10 % of 1.  A median ratio of 1 with a small spread means
  metric depth; the velocity loss is meant to produce exactly that.
- ``ratio_uncropped``: the same over every valid pixel in the protocol's depth range,
  without its crop.  The KITTI (Garg) crop keeps the lower part of the image, the
  near road; a depth map whose range is compressed (near too far, far too near) has
  a scale factor below 1 there while its global scale is metric, and the two
  numbers side by side tell those apart.
- ``range_slope``: per image, the least-squares slope of ``log pred`` on ``log gt`` over the
  same uncropped pixels (:func:`probe.metrics.range_slopes`): 1 when the depth's range is
  right whatever its scale, below 1 when it is compressed, 0 for a flat map.  Median
  scaling cannot change it, so it is the structure half of what the scale factor mixes.
- ``ratio_by_depth``: where the range goes wrong.  The ground truth's depths are cut into
  doubling bins ending at the dataset's depth cap (:func:`depth_bins`); per bin, the median
  over images of each image's median ``s * pred / gt`` there, ``s`` the image's whole-image
  median scaling: 1 where the depth has the right shape, below 1 where it is too near for
  its image, above 1 where too far.  A compressed range reads above 1 near, below 1 far.

>>> result = evaluate_scale(model, get_dataset("synthetic_video", split="test"))  # doctest: +SKIP
>>> result.ratio["median"], result.metrics_median_scaled["abs_rel"]               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from probe.errors import ProbeError
from probe.evaluate import collate_keep_sizes, full_resolution, predict_depth, resolve_protocol
from probe.metrics import MetricAccumulator, range_slopes
from probe.results import Result

__all__ = ["DepthBin", "ScaleEvaluation", "depth_bins", "evaluate_scale", "ratio_summary", "slope_summary"]

#: A ratio within this relative distance of 1 counts as metric scale ("within 10 %").
METRIC_TOLERANCE = 0.10


def ratio_summary(ratios: list[float]) -> dict[str, int | float]:
    """Median, mean, std, quartiles, min, max, count and fraction within 10 % of 1 of finite scale ratios."""
    values = np.asarray([r for r in ratios if np.isfinite(r)], dtype=np.float64)
    if values.size == 0:
        raise ProbeError("scale evaluation: no image had evaluated pixels, so no scale ratio exists")
    q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return {
        "median": float(median),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "q25": float(q25),
        "q75": float(q75),
        "min": float(values.min()),
        "max": float(values.max()),
        "n": int(values.size),
        "within_10_percent": float(np.mean(np.abs(values - 1.0) <= METRIC_TOLERANCE)),
    }


#: Bins of ``ratio_by_depth``: this many doubling bins below the dataset's depth cap.
DEPTH_BINS = 6


def depth_bins(max_depth: float, count: int = DEPTH_BINS) -> list[float]:
    """Edges of ``count`` doubling depth bins ending at ``max_depth``; the first bin also takes every nearer pixel.

    >>> depth_bins(80.0)
    [0.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0]
    """
    return [0.0] + [max_depth / 2.0**k for k in range(count - 1, -1, -1)]


@dataclass(frozen=True)
class DepthBin:
    """One ground-truth depth bin ``(low, high]`` in metres: how many images have pixels there and the median over
    them of each image's median ``s * pred / gt`` in it (NaN where none has)."""

    low: float
    high: float
    n_images: int
    median: float


def _by_depth(values: list[list[float]], edges: list[float]) -> list[DepthBin]:
    """One :class:`DepthBin` per bin from each image's value in it."""
    out = []
    for b, per_image in enumerate(values):
        finite = [v for v in per_image if np.isfinite(v)]
        median = float(np.median(finite)) if finite else float("nan")
        out.append(DepthBin(edges[b], edges[b + 1], len(finite), median))
    return out


def slope_summary(slopes: list[float]) -> dict[str, int | float]:
    """:func:`ratio_summary` of the finite range slopes, or ``{"n": 0}`` where no image had one (flat ground truth)."""
    if not any(np.isfinite(s) for s in slopes):
        return {"n": 0}
    return ratio_summary(slopes)


@dataclass
class ScaleEvaluation(Result):
    """What :func:`evaluate_scale` measured; ``save(dir)`` writes ``dir/scale.json`` (read back by ``from_json``)."""

    name: ClassVar[str] = "scale"
    schema_version: ClassVar[int] = 3  # 2: ratio_uncropped, per_image_ratio_uncropped; 3: range_slope, ratio_by_depth

    dataset: str
    split: str
    protocol: str
    model: str
    n_images: int
    metrics: dict[str, float]
    metrics_median_scaled: dict[str, float]
    constant_median_scaled: dict[str, float]
    ratio: dict[str, int | float]  # median, mean, std, q25, q75, min, max, within_10_percent; n (a count)
    per_image_ratio: list[float]
    ratio_uncropped: dict[str, int | float]  # the same summary without the protocol's crop
    per_image_ratio_uncropped: list[float]
    range_slope: dict[str, int | float]  # slope of log pred on log gt, uncropped: 1 right range, < 1 compressed
    per_image_range_slope: list[float]  # NaN where an image's ground truth is flat
    # per doubling depth bin (low, high, n_images, median): median over images of median(s * pred / gt) there
    ratio_by_depth: list[DepthBin]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def scale_error(self) -> float:
        """``|median ratio - 1|``: 0 for metric depth, 0.1 for a 10 % scale error."""
        return abs(self.ratio["median"] - 1.0)

    @property
    def beats_constant(self) -> bool:
        """Median-scaled abs_rel below the median-scaled constant predictor's."""
        return self.metrics_median_scaled["abs_rel"] < self.constant_median_scaled["abs_rel"]


@torch.no_grad()
def evaluate_scale(
    model: nn.Module,
    dataset: Dataset,
    *,
    protocol: str | None = None,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    max_depth: float | None = None,
    flip_tta: bool = False,
) -> ScaleEvaluation:
    """Evaluate ``model`` on ``dataset`` with and without median scaling (module docstring).

    The same path as :func:`probe.evaluate.evaluate`: ``protocol`` and
    ``max_depth`` default to the dataset's ``info``, each image is scored at its
    ground truth's own resolution; images whose protocol mask is empty have no
    ratio (NaN) and add no pixels.
    """
    if batch_size < 1:
        raise ProbeError(f"--batch-size: expected a positive integer, got {batch_size}")
    info = getattr(dataset, "info", None)
    cap = max_depth if max_depth is not None else (info.max_depth if info is not None else None)
    if cap is None:
        raise ProbeError("evaluate_scale: the dataset has no .info; pass max_depth=")
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ProbeError(f"evaluate_scale: dataset {getattr(info, 'name', dataset)!r} is empty")
    chosen = resolve_protocol(dataset, protocol)
    uncropped = replace(chosen, crop=None, pixel_crop=None, pixel_crop_size=None)
    dev = torch.device(device)
    model = model.to(dev).eval()
    raw, scaled, constant = MetricAccumulator(), MetricAccumulator(), MetricAccumulator()
    ratios: list[float] = []
    ratios_uncropped: list[float] = []
    slopes: list[float] = []
    edges = depth_bins(cap)
    binned: list[list[float]] = [[] for _ in edges[1:]]
    loader = DataLoader(full_resolution(dataset), batch_size=batch_size, shuffle=False, collate_fn=collate_keep_sizes)
    for batch in loader:
        preds = predict_depth(
            model, batch["image"].to(dev), max_depth=cap, flip_tta=flip_tta or chosen.flip_tta, clip=chosen.clip
        ).cpu()
        for i in range(len(batch["name"])):
            gt, valid = batch["depth"][i][None].float(), batch["valid"][i][None].bool()
            pred = F.interpolate(preds[i : i + 1], size=gt.shape[-2:], mode="bilinear", align_corners=False)
            as_is = chosen.apply(pred, gt, valid, median_scaling=False)
            median = chosen.apply(pred, gt, valid, median_scaling=True)
            flat = chosen.apply(torch.ones_like(pred), gt, valid, median_scaling=True)
            raw.update(as_is.pred, gt, as_is.mask)
            scaled.update(median.pred, gt, median.mask)
            constant.update(flat.pred, gt, flat.mask)
            ratios.append(float(median.ratios[0]))  # type: ignore[index]
            whole = uncropped.apply(pred, gt, valid, median_scaling=True)
            ratios_uncropped.append(float(whole.ratios[0]))  # type: ignore[index]
            slopes.append(float(range_slopes(pred, gt, whole.mask)[0]))
            relative = whole.pred / gt  # median-scaled over the whole image
            for b in range(len(binned)):
                inside = whole.mask & (gt > edges[b]) & (gt <= edges[b + 1])
                if bool(inside.any()):
                    binned[b].append(float(relative[inside].median()))
    return ScaleEvaluation(
        dataset=getattr(info, "name", type(dataset).__name__),
        split=getattr(dataset, "split", "unknown"),
        protocol=chosen.name,
        model=str(getattr(model, "model_name", type(model).__name__)),
        n_images=raw.n_images,
        metrics=raw.pooled(),
        metrics_median_scaled=scaled.pooled(),
        constant_median_scaled=constant.pooled(),
        ratio=ratio_summary(ratios),
        per_image_ratio=ratios,
        ratio_uncropped=ratio_summary(ratios_uncropped),
        per_image_ratio_uncropped=ratios_uncropped,
        range_slope=slope_summary(slopes),
        per_image_range_slope=slopes,
        ratio_by_depth=_by_depth(binned, edges),
        options={"max_depth": cap, "flip_tta": flip_tta or chosen.flip_tta, "batch_size": batch_size},
    )
