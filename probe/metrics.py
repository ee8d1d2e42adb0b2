"""Depth-estimation error metrics and the published evaluation protocols (crops, caps, median scaling).

Metrics follow the literature (Eigen et al. 2014 and every paper since): with
prediction ``p`` and ground truth ``g`` (metres, ``g > 0``) over the evaluated
pixels,

=============  ==========================================================
``abs_rel``    mean ``|p - g| / g``          (relative to ground truth)
``sq_rel``     mean ``(p - g)^2 / g``
``rmse``       ``sqrt(mean (p - g)^2)``                         (metres)
``rmse_log``   ``sqrt(mean (ln p - ln g)^2)``
``log10``      mean ``|log10 p - log10 g|``
``delta{k}``   fraction with ``max(p/g, g/p) < 1.25^k`` (strict), k = 1, 2, 3
=============  ==========================================================

Reduction.  ``compute_depth_metrics`` pools every evaluated pixel of the batch
(``reduction="pixels"``, as DenseDepth's evaluation does over the whole NYU
test set); ``reduction="images"`` computes each image's metrics and averages
them over images (monodepth2/BTS/AdaBins style).  The two differ when images
have different numbers of valid pixels (sparse LiDAR) and for the root
metrics (the mean of per-image RMSEs is not the pooled RMSE), so
:func:`probe.evaluate.evaluate` reports both.

Protocols (:data:`PROTOCOLS`) decide which pixels count and how the prediction
is post-processed, in this order: optional per-image median scaling
(``p *= median(g) / median(p)`` over the evaluated pixels), optional clamping
of ``p`` to ``[min_depth, max_depth]``, then metrics over pixels that are valid,
inside the crop and satisfy ``min_depth < g < max_depth``.

>>> import torch
>>> gt = torch.full((1, 1, 4, 4), 2.0)
>>> m = compute_depth_metrics(gt * 1.1, gt, torch.ones_like(gt, dtype=torch.bool))
>>> round(m["abs_rel"], 6), m["delta1"]
(0.1, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import torch

from probe.errors import ProbeError, ShapeError
from probe.registry import Registry

__all__ = ["METRIC_NAMES", "EvalProtocol", "ProtocolOutput", "PROTOCOLS", "MetricAccumulator",
           "compute_depth_metrics", "get_protocol", "list_protocols"]

METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")
REDUCTIONS = ("pixels", "images")

# Columns of the per-image sums: count, then the sum of each per-pixel quantity.
_N, _ABS_REL, _SQ_REL, _SQ, _SQ_LOG, _LOG10, _D1, _D2, _D3 = range(9)


def _flatten(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[B,1,h,w]``, ``[B,h,w]`` or ``[h,w]`` (all the same shape) -> ``[B, h*w]`` each."""
    if not (pred.shape == gt.shape == mask.shape):
        raise ShapeError(f"metrics: pred {tuple(pred.shape)}, gt {tuple(gt.shape)} and valid {tuple(mask.shape)} "
                         "must have the same shape")
    batch = pred.shape[0] if pred.dim() >= 3 else 1
    return (pred.reshape(batch, -1).double(), gt.reshape(batch, -1).double(), mask.reshape(batch, -1).bool())


def per_image_sums(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image pixel count and sums of each per-pixel error term: -> float64 ``[B, 9]``.

    Pixels outside ``mask`` are never read, so NaN or 0 there is harmless;
    inside the mask, ``gt`` and ``pred`` must be positive and finite.
    """
    p, g, m = _flatten(pred, gt, mask)
    bad_gt = m & ~(torch.isfinite(g) & (g > 0))
    if bad_gt.any():
        raise ProbeError(f"metrics: ground truth has {int(bad_gt.sum())} non-positive or non-finite value(s) "
                         "inside the valid mask")
    bad_pred = m & ~(torch.isfinite(p) & (p > 0))
    if bad_pred.any():
        raise ProbeError(f"metrics: prediction has {int(bad_pred.sum())} non-positive or non-finite depth(s) at "
                         "valid pixels (the model output NaN/inf, or clamping was disabled)")
    one = torch.ones_like(g)
    p = torch.where(m, p, one)
    g = torch.where(m, g, one)
    diff = p - g
    log_diff = torch.log(p) - torch.log(g)
    ratio = torch.maximum(p / g, g / p)
    per_pixel = torch.stack([
        one,
        diff.abs() / g,
        diff * diff / g,
        diff * diff,
        log_diff * log_diff,
        (torch.log10(p) - torch.log10(g)).abs(),
        (ratio < 1.25).double(),
        (ratio < 1.25 ** 2).double(),
        (ratio < 1.25 ** 3).double(),
    ], dim=-1)
    return torch.where(m[..., None], per_pixel, torch.zeros_like(per_pixel)).sum(dim=1)


def metrics_from_sums(sums: torch.Tensor) -> dict[str, float]:
    """One row of sums ``[9]`` -> the metric dict (``sums[0]`` pixels must be > 0)."""
    s = sums.tolist()
    n = s[_N]
    return {
        "abs_rel": s[_ABS_REL] / n,
        "sq_rel": s[_SQ_REL] / n,
        "rmse": math.sqrt(s[_SQ] / n),
        "rmse_log": math.sqrt(s[_SQ_LOG] / n),
        "log10": s[_LOG10] / n,
        "delta1": s[_D1] / n,
        "delta2": s[_D2] / n,
        "delta3": s[_D3] / n,
    }


class MetricAccumulator:
    """Streams batches; gives pooled (over pixels) and per-image-averaged metrics at the end.

    >>> acc = MetricAccumulator()
    >>> gt = torch.full((2, 1, 3, 3), 4.0)
    >>> _ = acc.update(gt * 2, gt, torch.ones_like(gt, dtype=torch.bool))
    >>> acc.pooled()["abs_rel"], acc.n_images
    (1.0, 2)
    """

    def __init__(self) -> None:
        self._total = torch.zeros(9, dtype=torch.float64)
        self._image_metric_sums = {name: 0.0 for name in METRIC_NAMES}
        self.n_images = 0
        self.n_empty = 0

    def update(self, pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> list[dict[str, float] | None]:
        """Add a batch; returns each image's metrics (None for an image with no evaluated pixel)."""
        sums = per_image_sums(pred, gt, mask)
        self._total += sums.sum(dim=0)
        out: list[dict[str, float] | None] = []
        for row in sums:
            if row[_N] == 0:
                self.n_empty += 1
                out.append(None)
                continue
            metrics = metrics_from_sums(row)
            for name in METRIC_NAMES:
                self._image_metric_sums[name] += metrics[name]
            self.n_images += 1
            out.append(metrics)
        return out

    @property
    def n_pixels(self) -> int:
        return int(self._total[_N].item())

    def _require_pixels(self) -> None:
        if self.n_images == 0:
            raise ProbeError("metrics: no valid ground-truth pixel to evaluate (every image was empty after the "
                             "protocol's crop and depth range)")

    def pooled(self) -> dict[str, float]:
        """Metrics over all evaluated pixels of all images together."""
        self._require_pixels()
        return metrics_from_sums(self._total)

    def image_mean(self) -> dict[str, float]:
        """Each image's metrics averaged over the images that had evaluated pixels."""
        self._require_pixels()
        return {name: total / self.n_images for name, total in self._image_metric_sums.items()}


def compute_depth_metrics(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, *,
                          reduction: str = "pixels") -> dict[str, float]:
    """Error metrics of ``pred`` against ``gt`` (metres, same shape, e.g. ``[B,1,h,w]``) where ``valid``.

    ``reduction="pixels"`` pools all valid pixels of the batch; ``"images"``
    averages per-image metrics.  Raises :class:`ProbeError` when no pixel is
    valid, or when ``pred``/``gt`` are not positive and finite at a valid pixel.

    >>> gt = torch.tensor([[1.0, 2.0], [4.0, 8.0]])
    >>> compute_depth_metrics(gt * 1.25, gt, torch.ones_like(gt, dtype=torch.bool))["delta1"]
    0.0
    """
    if reduction not in REDUCTIONS:
        raise ProbeError(f"metrics: reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    acc = MetricAccumulator()
    acc.update(pred, gt, valid)
    return acc.pooled() if reduction == "pixels" else acc.image_mean()


Crop = tuple[Fraction, Fraction, Fraction, Fraction]


@dataclass
class ProtocolOutput:
    """A batch after a protocol: ``pred`` (scaled/clamped), ``mask`` of evaluated pixels, median ``ratios`` ``[B]``.

    ``ratios`` is None without median scaling; NaN for an image with no evaluated pixel.
    """

    pred: torch.Tensor
    mask: torch.Tensor
    ratios: torch.Tensor | None


@dataclass(frozen=True)
class EvalProtocol:
    """Which pixels a benchmark evaluates and how predictions are post-processed.

    ``crop`` holds the (top, bottom, left, right) edges as fractions of the
    ground-truth height/width; pixel edges are ``floor(fraction * size)``, so a
    crop defined on 480x640 is exact there and scales proportionally elsewhere.
    """

    name: str
    description: str
    min_depth: float
    max_depth: float
    crop: Crop | None = None

    def crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) pixel bounds, bottom/right exclusive, for a ``height x width`` map."""
        if self.crop is None:
            return 0, height, 0, width
        top, bottom, left, right = self.crop
        return (math.floor(top * height), math.floor(bottom * height),
                math.floor(left * width), math.floor(right * width))

    def mask(self, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Evaluated pixels of ``[..., h, w]``: valid, inside the crop, ``min_depth < gt < max_depth``."""
        keep = valid.bool() & (gt > self.min_depth) & (gt < self.max_depth)
        if self.crop is not None:
            top, bottom, left, right = self.crop_box(gt.shape[-2], gt.shape[-1])
            window = torch.zeros_like(keep)
            window[..., top:bottom, left:right] = True
            keep = keep & window
        return keep

    def apply(self, pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, *, median_scaling: bool = False,
              clamp: bool = True) -> ProtocolOutput:
        """``pred``, ``gt``, ``valid`` ``[B,1,h,w]`` -> :class:`ProtocolOutput` (median scaling, then clamping)."""
        if not (pred.shape == gt.shape == valid.shape) or pred.dim() != 4:
            raise ShapeError(f"protocol {self.name}: pred {tuple(pred.shape)}, gt {tuple(gt.shape)}, valid "
                             f"{tuple(valid.shape)} must all be [B,1,h,w]")
        mask = self.mask(gt, valid)
        ratios = None
        if median_scaling:
            ratios = median_ratios(pred, gt, mask)
            pred = pred * torch.nan_to_num(ratios, nan=1.0).to(pred.dtype).view(-1, 1, 1, 1)
        if clamp:
            pred = pred.clamp(self.min_depth, self.max_depth)
        return ProtocolOutput(pred=pred, mask=mask, ratios=ratios)


def median_ratios(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image ``median(gt) / median(pred)`` over ``mask`` (NumPy's median: mean of the middle two): ``[B]``."""
    ratios = torch.full((pred.shape[0],), float("nan"), dtype=torch.float64)
    for i in range(pred.shape[0]):
        m = mask[i]
        if m.any():
            ratios[i] = (torch.quantile(gt[i][m].double(), 0.5) / torch.quantile(pred[i][m].double(), 0.5)).item()
    return ratios


PROTOCOLS: Registry[Callable[[], EvalProtocol]] = Registry("evaluation protocol")


def _register(protocol: EvalProtocol) -> EvalProtocol:
    def factory() -> EvalProtocol:
        return protocol

    PROTOCOLS.register(protocol.name, description=protocol.description, protocol=protocol)(factory)
    return protocol


NYU = _register(EvalProtocol(
    "nyu", "NYU Depth v2: Eigen crop (rows 45:471, cols 41:601 of 480x640), 1e-3 < gt < 10 m",
    min_depth=1e-3, max_depth=10.0,
    crop=(Fraction(45, 480), Fraction(471, 480), Fraction(41, 640), Fraction(601, 640))))
MAKE3D = _register(EvalProtocol(
    "make3d", "Make3D C1: every pixel with 1e-3 < gt < 70 m, no crop", min_depth=1e-3, max_depth=70.0))
KITTI = _register(EvalProtocol(
    "kitti", "KITTI Eigen split: Garg crop (rows 0.408-0.992 H, cols 0.036-0.964 W), 1e-3 < gt < 80 m",
    min_depth=1e-3, max_depth=80.0,
    crop=(Fraction("0.40810811"), Fraction("0.99189189"), Fraction("0.03594771"), Fraction("0.96405229"))))
NONE = _register(EvalProtocol(
    "none", "no crop, no cap: every valid pixel with gt > 1e-3 m", min_depth=1e-3, max_depth=math.inf))


def get_protocol(name: str) -> EvalProtocol:
    """The registered protocol ``name`` (``nyu``, ``make3d``, ``kitti``, ``none``)."""
    return PROTOCOLS.build(name)


def list_protocols() -> list[str]:
    return PROTOCOLS.names()
