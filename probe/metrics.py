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

Protocols (:data:`PROTOCOLS`) are the published evaluation recipes: which
ground-truth pixels count (crop box, depth range), how the prediction is
post-processed (clipping, per-image median scaling, flip averaging) and how
metrics are pooled.  Every protocol scores at the ground truth's own
resolution: the prediction is upsampled bilinearly to it, the ground truth is
never resampled (:mod:`probe.evaluate`).  Each protocol's docstring line cites
its source; :meth:`EvalProtocol.choices` lists every choice for ``eval.json``.

===================  ======================================================================
``nyu_densedepth``   DenseDepth's ``evaluate.py``/``utils.py`` on ``nyu_test.zip``: each pass
                     clipped to [0.1, 10] m, mirrored pass averaged, crop from
                     ``eigen_test_crop.npy`` (inclusive bounds), every pixel pooled, no
                     depth-range mask.  abs_rel is computed correctly (see below).
``nyu_eigen``        BTS / AdaBins: rows 45:471, cols 41:601 of 480x640, 1e-3 < gt < 10 m,
                     prediction clamped to [1e-3, 10]
``kitti_eigen``      monodepth2 / packnet-sfm: Garg crop, 1e-3 < gt < 80 m, clamp to [1e-3, 80]
``kitti_eigen_       the same with per-image median scaling ``p *= median(g)/median(p)``
median``             before clamping (self-supervised models, scale-ambiguous)
``make3d_c1``        Monodepth-style Make3D C1: gt <= 70 m on the reader's 2:1 centre crop
``none``             every valid pixel with gt > 1e-3 m
===================  ======================================================================

The older names ``nyu``, ``kitti`` and ``make3d`` still work and mean
``nyu_eigen``, ``kitti_eigen`` and ``make3d_c1`` (``eval.json`` records the
canonical name).

DenseDepth's published abs_rel.  Its ``compute_errors(gt, pred)`` is called as
``compute_errors(predictions, testSetDepths)``, so the published "abs_rel" is
``mean |g - p| / p`` (relative to the prediction).  probe reports the standard
``mean |p - g| / g`` as ``abs_rel`` and, for ``nyu_densedepth``, DenseDepth's
quantity as ``abs_rel_as_published`` beside it.  delta, RMSE and log10 are
symmetric in the two arguments and unaffected; ``sq_rel`` and ``rmse_log`` are
not part of DenseDepth's output.

>>> import torch
>>> gt = torch.full((1, 1, 4, 4), 2.0)
>>> m = compute_depth_metrics(gt * 1.1, gt, torch.ones_like(gt, dtype=torch.bool))
>>> round(m["abs_rel"], 6), m["delta1"]
(0.1, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Callable

import torch

from probe.errors import ProbeError, ShapeError
from probe.registry import Registry

__all__ = [
    "METRIC_NAMES",
    "EvalProtocol",
    "ProtocolOutput",
    "PROTOCOLS",
    "MetricAccumulator",
    "compute_depth_metrics",
    "get_protocol",
    "list_protocols",
]

METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")
REDUCTIONS = ("pixels", "images")

# Columns of the per-image sums: count, then the sum of each per-pixel quantity.
_N, _ABS_REL, _SQ_REL, _SQ, _SQ_LOG, _LOG10, _D1, _D2, _D3 = range(9)


def _flatten(
    pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[B,1,h,w]``, ``[B,h,w]`` or ``[h,w]`` (all the same shape) -> ``[B, h*w]`` each."""
    if not (pred.shape == gt.shape == mask.shape):
        raise ShapeError(
            f"metrics: pred {tuple(pred.shape)}, gt {tuple(gt.shape)} and valid {tuple(mask.shape)} "
            "must have the same shape"
        )
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
        raise ProbeError(
            f"metrics: ground truth has {int(bad_gt.sum())} non-positive or non-finite value(s) inside the valid mask"
        )
    bad_pred = m & ~(torch.isfinite(p) & (p > 0))
    if bad_pred.any():
        raise ProbeError(
            f"metrics: prediction has {int(bad_pred.sum())} non-positive or non-finite depth(s) at "
            "valid pixels (the model output NaN/inf, or clamping was disabled)"
        )
    one = torch.ones_like(g)
    p = torch.where(m, p, one)
    g = torch.where(m, g, one)
    diff = p - g
    log_diff = torch.log(p) - torch.log(g)
    ratio = torch.maximum(p / g, g / p)
    per_pixel = torch.stack(
        [
            one,
            diff.abs() / g,
            diff * diff / g,
            diff * diff,
            log_diff * log_diff,
            (torch.log10(p) - torch.log10(g)).abs(),
            (ratio < 1.25).double(),
            (ratio < 1.25**2).double(),
            (ratio < 1.25**3).double(),
        ],
        dim=-1,
    )
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
            raise ProbeError(
                "metrics: no valid ground-truth pixel to evaluate (every image was empty after the "
                "protocol's crop and depth range)"
            )

    def pooled(self) -> dict[str, float]:
        """Metrics over all evaluated pixels of all images together."""
        self._require_pixels()
        return metrics_from_sums(self._total)

    def image_mean(self) -> dict[str, float]:
        """Each image's metrics averaged over the images that had evaluated pixels."""
        self._require_pixels()
        return {name: total / self.n_images for name, total in self._image_metric_sums.items()}


def compute_depth_metrics(
    pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, *, reduction: str = "pixels"
) -> dict[str, float]:
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
#: Pixel bounds (top, bottom, left, right), bottom/right exclusive, on a map of ``on_size``.
PixelBox = tuple[int, int, int, int]


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
    """A published evaluation recipe: which pixels count and how predictions are post-processed.

    ``crop`` holds the (top, bottom, left, right) edges as fractions of the
    ground-truth height/width; pixel edges are ``floor(fraction * size)`` (the
    ``astype(np.int32)`` of monodepth2 and BTS).  ``pixel_crop`` instead fixes a
    box in pixels of a map of ``pixel_crop_size`` (DenseDepth's crop file); a map
    of another size is an error.  Ground truth counts where it is valid and
    ``min_depth < g < max_depth`` (``g <= max_depth`` with ``max_inclusive``);
    ``range_mask=False`` skips the range test (DenseDepth pools every pixel).

    ``clip`` bounds each prediction pass in metres before flip averaging
    (DenseDepth: ``np.clip`` inside ``predict``); ``clamp`` bounds the final
    prediction to ``[min_depth, max_depth]`` after median scaling (monodepth2,
    BTS).  ``median_scaling`` and ``flip_tta`` are the protocol's own settings;
    ``reduction`` names the pooling its source reports (both are always written).
    """

    name: str
    description: str
    source: str
    min_depth: float
    max_depth: float
    crop: Crop | None = None
    pixel_crop: PixelBox | None = None
    pixel_crop_size: tuple[int, int] | None = None
    max_inclusive: bool = False
    range_mask: bool = True
    clip: tuple[float, float] | None = None
    clamp: bool = True
    median_scaling: bool = False
    flip_tta: bool = False
    reduction: str = "images"
    swapped_abs_rel: bool = False
    crop_source: str = ""

    def crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) pixel bounds, bottom/right exclusive, for a ``height x width`` map."""
        if self.pixel_crop is not None:
            if self.pixel_crop_size is not None and (height, width) != tuple(self.pixel_crop_size):
                raise ShapeError(
                    f"protocol {self.name}: its crop is defined on {self.pixel_crop_size[0]}x"
                    f"{self.pixel_crop_size[1]} ground truth, got {height}x{width}"
                )
            return self.pixel_crop
        if self.crop is None:
            return 0, height, 0, width
        top, bottom, left, right = self.crop
        return (
            math.floor(top * height),
            math.floor(bottom * height),
            math.floor(left * width),
            math.floor(right * width),
        )

    def with_pixel_crop(
        self, inclusive: tuple[int, int, int, int], size: tuple[int, int], source: str = ""
    ) -> "EvalProtocol":
        """This protocol with DenseDepth-style inclusive bounds ``(r0, r1, c0, c1)`` on a ``size`` map."""
        r0, r1, c0, c1 = (int(v) for v in inclusive)
        if not (0 <= r0 <= r1 < size[0] and 0 <= c0 <= c1 < size[1]):
            raise ProbeError(
                f"protocol {self.name}: crop {inclusive} (inclusive rows, cols) lies outside {size[0]}x{size[1]}"
            )
        return replace(
            self,
            pixel_crop=(r0, r1 + 1, c0, c1 + 1),
            pixel_crop_size=(int(size[0]), int(size[1])),
            crop_source=source or self.crop_source,
        )

    def mask(self, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Evaluated pixels of ``[..., h, w]``: valid, inside the crop, within the depth range."""
        keep = valid.bool() & torch.isfinite(gt) & (gt > 0)
        if self.range_mask:
            below_max = gt <= self.max_depth if self.max_inclusive else gt < self.max_depth
            keep = keep & (gt > self.min_depth) & below_max
        top, bottom, left, right = self.crop_box(gt.shape[-2], gt.shape[-1])
        if (top, bottom, left, right) != (0, gt.shape[-2], 0, gt.shape[-1]):
            window = torch.zeros_like(keep)
            window[..., top:bottom, left:right] = True
            keep = keep & window
        return keep

    def apply(
        self,
        pred: torch.Tensor,
        gt: torch.Tensor,
        valid: torch.Tensor,
        *,
        median_scaling: bool | None = None,
        clamp: bool | None = None,
    ) -> ProtocolOutput:
        """``pred``, ``gt``, ``valid`` ``[B,1,h,w]`` -> :class:`ProtocolOutput` (median scaling, then clamping).

        ``median_scaling``/``clamp`` default to the protocol's own settings.
        """
        if not (pred.shape == gt.shape == valid.shape) or pred.dim() != 4:
            raise ShapeError(
                f"protocol {self.name}: pred {tuple(pred.shape)}, gt {tuple(gt.shape)}, valid "
                f"{tuple(valid.shape)} must all be [B,1,h,w]"
            )
        median_scaling = self.median_scaling if median_scaling is None else median_scaling
        clamp = self.clamp if clamp is None else clamp
        mask = self.mask(gt, valid)
        ratios = None
        if median_scaling:
            ratios = median_ratios(pred, gt, mask)
            pred = pred * torch.nan_to_num(ratios, nan=1.0).to(pred.dtype).view(-1, 1, 1, 1)
        if clamp:
            pred = pred.clamp(self.min_depth, self.max_depth)
        return ProtocolOutput(pred=pred, mask=mask, ratios=ratios)

    def choices(
        self,
        *,
        height: int | None = None,
        width: int | None = None,
        median_scaling: bool | None = None,
        clamp: bool | None = None,
        flip_tta: bool | None = None,
    ) -> dict[str, Any]:
        """Every choice this protocol implies, as plain JSON values (for ``eval.json``)."""
        box = self.crop_box(height, width) if height and width else None
        return {
            "name": self.name,
            "source": self.source,
            "crop": {
                "fractions": [str(f) for f in self.crop] if self.crop else None,
                "pixels_exclusive_end": list(box) if box else None,
                "defined_on": list(self.pixel_crop_size) if self.pixel_crop_size else None,
                "from": self.crop_source or None,
            },
            "gt_range_m": [self.min_depth, self.max_depth] if self.range_mask else None,
            "gt_range_rule": (
                None
                if not self.range_mask
                else f"{self.min_depth} < gt {'<=' if self.max_inclusive else '<'} {self.max_depth}"
            ),
            "clip_each_pass_m": list(self.clip) if self.clip else None,
            "clamp_m": [self.min_depth, self.max_depth] if (self.clamp if clamp is None else clamp) else None,
            "median_scaling": self.median_scaling if median_scaling is None else median_scaling,
            "flip_tta": self.flip_tta or bool(flip_tta),
            "resolution": "ground truth's own; prediction upsampled bilinearly (align_corners=False)",
            "reduction_reported_by_source": self.reduction,
            "abs_rel": "mean |p - g| / g"
            + ("; abs_rel_as_published = mean |g - p| / p" if self.swapped_abs_rel else ""),
        }


def median_ratios(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image ``median(gt) / median(pred)`` over ``mask`` (NumPy's median: mean of the middle two): ``[B]``."""
    ratios = torch.full((pred.shape[0],), float("nan"), dtype=torch.float64)
    for i in range(pred.shape[0]):
        m = mask[i]
        if m.any():
            ratios[i] = (torch.quantile(gt[i][m].double(), 0.5) / torch.quantile(pred[i][m].double(), 0.5)).item()
    return ratios


def range_slopes(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image the least-squares slope of ``log pred`` on ``log gt`` over ``mask``: ``[B]`` (float64).

    1 for a depth map whose range is right up to one scale (``pred = s * gt`` for any ``s``), below 1 for a
    compressed range (near too far, far too near), 0 for a flat map.  Median scaling leaves it unchanged, so it
    measures the depth's structure where the scale factor measures its scale.  NaN where ``mask`` keeps fewer
    than two pixels, the ground truth there is flat, or a prediction is not positive.

    >>> gt = torch.tensor([1.0, 2.0, 4.0, 8.0]).view(1, 1, 2, 2)
    >>> round(float(range_slopes(3 * gt, gt, gt > 0)[0]), 6), round(float(range_slopes(gt.sqrt(), gt, gt > 0)[0]), 6)
    (1.0, 0.5)
    """
    slopes = torch.full((pred.shape[0],), float("nan"), dtype=torch.float64)
    for i in range(pred.shape[0]):
        m = mask[i]
        if int(m.sum()) < 2:
            continue
        x, y = gt[i][m].double().log(), pred[i][m].double()
        if bool((y <= 0).any()):
            continue
        y = y.log()
        dx = x - x.mean()
        spread = float((dx * dx).sum())
        if spread > 1e-12 * x.numel():
            slopes[i] = float((dx * (y - y.mean())).sum()) / spread
    return slopes


def abs_rel_as_published_sums(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """``(sum |g - p| / p, count)`` over ``mask``: DenseDepth's published "abs_rel" (arguments swapped)."""
    p, g = pred[mask].double(), gt[mask].double()
    return float(((g - p).abs() / p).sum()), int(mask.sum())


PROTOCOLS: Registry[Callable[[], EvalProtocol]] = Registry("evaluation protocol")


def _register(protocol: EvalProtocol, *aliases: str) -> EvalProtocol:
    def factory() -> EvalProtocol:
        return protocol

    PROTOCOLS.register(protocol.name, description=protocol.description, protocol=protocol)(factory)
    for alias in aliases:
        PROTOCOLS.register(alias, description=f"alias of {protocol.name}", protocol=protocol, alias_of=protocol.name)(
            factory
        )
    return protocol


_GARG = (Fraction("0.40810811"), Fraction("0.99189189"), Fraction("0.03594771"), Fraction("0.96405229"))

#: DenseDepth's crop (rows 20..459, cols 24..615 inclusive of 480x640): the value that DenseDepth-derived
#: evaluation code hard-codes for ``eigen_test_crop.npy``; the file itself wins when present.
DENSEDEPTH_NYU_CROP: tuple[int, int, int, int] = (20, 459, 24, 615)
NYU_SIZE = (480, 640)

NYU_DENSEDEPTH = _register(
    EvalProtocol(
        "nyu_densedepth",
        "DenseDepth's NYU recipe on nyu_test.zip: clip each pass to [0.1, 10] m, flip-average, crop 20..459 x 24..615 "
        "(inclusive; from eigen_test_crop.npy), every pixel pooled",
        source="ialhashim/DenseDepth evaluate.py + utils.py (predict, scale_up, evaluate, compute_errors)",
        min_depth=0.1,
        max_depth=10.0,
        range_mask=False,
        clip=(0.1, 10.0),
        clamp=False,
        flip_tta=True,
        reduction="pixels",
        swapped_abs_rel=True,
    ).with_pixel_crop(
        DENSEDEPTH_NYU_CROP, NYU_SIZE, source="default: DenseDepth's crop (eigen_test_crop.npy replaces it when read)"
    )
)
NYU_EIGEN = _register(
    EvalProtocol(
        "nyu_eigen",
        "NYU Depth v2, Eigen crop (rows 45:471, cols 41:601 of 480x640), 1e-3 < gt < 10 m, clamp [1e-3, 10]",
        source="BTS / AdaBins eval (eval_mask[45:471, 41:601]; min_depth_eval 1e-3, max_depth_eval 10)",
        min_depth=1e-3,
        max_depth=10.0,
        crop=(Fraction(45, 480), Fraction(471, 480), Fraction(41, 640), Fraction(601, 640)),
    ),
    "nyu",
)
KITTI_EIGEN = _register(
    EvalProtocol(
        "kitti_eigen",
        "KITTI Eigen split: Garg crop (rows 0.408-0.992 H, cols 0.036-0.964 W), 1e-3 < gt < 80 m",
        source="monodepth2 evaluate_depth.py / packnet-sfm (Garg crop, MIN_DEPTH 1e-3, MAX_DEPTH 80)",
        min_depth=1e-3,
        max_depth=80.0,
        crop=_GARG,
    ),
    "kitti",
)
KITTI_EIGEN_MEDIAN = _register(
    EvalProtocol(
        "kitti_eigen_median",
        "kitti_eigen with per-image median scaling (self-supervised models)",
        source="monodepth2 evaluate_depth.py (ratio = median(gt) / median(pred) per image, then clamp)",
        min_depth=1e-3,
        max_depth=80.0,
        crop=_GARG,
        median_scaling=True,
    )
)
MAKE3D_C1 = _register(
    EvalProtocol(
        "make3d_c1",
        "Make3D C1: gt <= 70 m on the 2:1 centre crop (the make3d reader's default crop='monodepth')",
        source="Saxena et al. C1 (depth <= 70 m); Monodepth's Make3D crop (image height = width / 2, centred)",
        min_depth=1e-3,
        max_depth=70.0,
        max_inclusive=True,
    ),
    "make3d",
)
NONE = _register(
    EvalProtocol(
        "none",
        "no crop, no cap: every valid pixel with gt > 1e-3 m",
        source="probe",
        min_depth=1e-3,
        max_depth=math.inf,
    )
)


def get_protocol(name: str) -> EvalProtocol:
    """The registered protocol ``name`` (an alias returns its canonical protocol)."""
    return PROTOCOLS.build(name)


def list_protocols() -> list[str]:
    """Canonical protocol names (aliases excluded)."""
    return [e.name for e in PROTOCOLS.entries() if "alias_of" not in e.meta]
