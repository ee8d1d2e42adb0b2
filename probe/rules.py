"""Verdict rules as pure functions of recorded numbers, each calibrated on :mod:`probe.controls`.

Nothing here trains or reads files: every rule takes what an analysis recorded
and returns its verdict with the numbers behind it, so the same rule runs on a
control in the tests and on a real model in a study.

Gradients (:func:`vanishing_gradients`), one sentence (:data:`GRADIENT_RULE`):
a layer's gradient vanishes when its gradient-to-weight ratio ``|g| / |w|``
(median over the recorded steps) is below ``1e-4`` of the median ratio over the
model's layers.  Dividing by the layer's own weight norm makes the measure
dimensionless (the relative change one SGD step of unit learning rate would
make) and independent of layer size; comparing with the model's own median
cancels the scale of the loss.  Calibration (``python3 bench/gradient_rule.py
--width 0.0625 --steps 150 --lr 3e-3``): the 24-layer sigmoid control spreads
over 20.6 decades and 7 of its layers (those nearest the input) fall below the
threshold; the residual GroupNorm control of the same depth (min 0.02 x its
median), DenseDepth (347 layers, min 0.026 x) and PackNet B / C (102 layers,
min 0.0069 x and 0.07 x) have none, where the old size-normalised rule flagged
56, 45 and 76 of their layers.

Collapse has two kinds.  Per image (:func:`collapse_call`, :data:`COLLAPSE_RULE`): the prediction is flat within
each image.  Across images (:func:`image_call`, :data:`IMAGE_RULE`): the prediction is one dataset-wide map that
no longer depends on the image, measured by its cross-image std of log depth per pixel over the ground truth's.
Calibration: one fixed map for every image is flagged; the ground truth, x 2 and each image's mean depth are not
(on the synthetic rooms, whose scenes differ in size, the per-image mean keeps 0.78 of the ground truth's
cross-image std).

Packing (:func:`packing_comparison`): packing and max-pool autoencoders are
compared only at matched size (parameters within :data:`PARAM_TOLERANCE`, or
max-pool's PSNR interpolated on its PSNR-vs-log-parameters line between two
runs that bracket the packing run's size) and only when every run involved has
converged by :func:`plateaued`; the rest is listed as unmatched or unconverged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from probe.errors import ProbeError
from probe.stats import Estimate, Verdict, decide, seed_estimate, seed_interval

__all__ = [
    "EXPLODE_ABOVE",
    "GRADIENT_RULE",
    "NEAR_LOSSLESS_MSE",
    "PACKING_RULE",
    "PARAM_TOLERANCE",
    "PLATEAU_RULE",
    "VANISH_BELOW",
    "Convergence",
    "GradientVerdict",
    "LayerRecord",
    "PerStep",
    "PackingComparison",
    "PackingRun",
    "COLLAPSE_RULE",
    "FIT_BELOW",
    "FIT_RULE",
    "FitCall",
    "fit_call",
    "largest_fitted",
    "COLLAPSED_SHARE",
    "GRADIENT_SEEDS_RULE",
    "SCATTER_BAND",
    "SCATTER_RULE",
    "CollapseCall",
    "IGNORES_IMAGE_BELOW",
    "IMAGE_RULE",
    "RATIO_FLOOR",
    "ImageCall",
    "image_call",
    "interval_text",
    "ScatterComparison",
    "collapse_call",
    "gradient_margin",
    "gradient_weight_ratio",
    "packing_comparison",
    "plateaued",
    "scatter_comparison",
    "vanishing_gradients",
    "vanishing_verdict",
]

# -- gradients ------------------------------------------------------------------------------------

VANISH_BELOW = 1e-4
EXPLODE_ABOVE = 1e4
GRADIENT_RULE = (
    "A layer's gradient vanishes when its gradient-to-weight ratio |g|/|w| (median over the recorded steps) is "
    f"below {VANISH_BELOW:g} of the median ratio over the model's layers, and explodes when a gradient is "
    f"non-finite or the ratio exceeds {EXPLODE_ABOVE:g} times the median ratio of the layers executed after it "
    "(gradients flow back from the output, so growth is measured against what arrives from there)."
)


class PerStep(Protocol):
    """A quantity recorded at every step (``analyses.gradients.StepSeries`` is one)."""

    @property
    def per_step(self) -> list[float]: ...


class LayerRecord(Protocol):
    """What the rule reads of one layer (``analyses.gradients.LayerGradients`` has these)."""

    @property
    def name(self) -> str: ...

    @property
    def grad_norm(self) -> PerStep: ...

    @property
    def weight_norm(self) -> PerStep: ...


@dataclass
class GradientVerdict:
    """Per-layer ratios (execution order), the model's median ratio, and the layers each side of the rule."""

    ratios: list[float]
    median_ratio: float
    vanishing: list[str]
    exploding: list[str]
    spread_decades: float
    rule: str = GRADIENT_RULE

    @property
    def verdict(self) -> str:
        """``"vanishing"``, ``"exploding"``, ``"both"`` or ``"healthy"``."""
        if self.vanishing and self.exploding:
            return "both"
        return "vanishing" if self.vanishing else "exploding" if self.exploding else "healthy"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def gradient_weight_ratio(layer: LayerRecord) -> float:
    """Median over the recorded steps of ``|g| / |w|`` (steps with a zero weight norm skipped); NaN if none."""
    g = np.asarray(layer.grad_norm.per_step, dtype=np.float64)
    w = np.asarray(layer.weight_norm.per_step, dtype=np.float64)
    if g.shape != w.shape:
        raise ProbeError(f"gradient rule: layer {layer.name} has {g.size} gradient norms and {w.size} weight norms")
    keep = np.isfinite(g) & np.isfinite(w) & (w > 0)
    return float(np.median(g[keep] / w[keep])) if keep.any() else math.nan


def _median_after(ratios: list[float], index: int) -> float:
    """Median of the finite, positive ratios after ``index`` (inf when there are none: nothing to grow from)."""
    later = [r for r in ratios[index + 1 :] if math.isfinite(r) and r > 0]
    return float(np.median(later)) if later else math.inf


def vanishing_gradients(
    layers: Sequence[LayerRecord], *, vanish_below: float = VANISH_BELOW, explode_above: float = EXPLODE_ABOVE
) -> GradientVerdict:
    """:data:`GRADIENT_RULE` on per-layer gradient and weight norms, layers in execution order."""
    if not layers:
        raise ProbeError("gradient rule: no layer was recorded")
    ratios = [gradient_weight_ratio(layer) for layer in layers]
    finite = np.asarray([r for r in ratios if math.isfinite(r) and r > 0], dtype=np.float64)
    median = float(np.median(finite)) if finite.size else math.nan
    nonfinite = [not np.all(np.isfinite(layer.grad_norm.per_step)) for layer in layers]
    exploding = [
        layer.name
        for i, (layer, r, bad) in enumerate(zip(layers, ratios, nonfinite))
        if bad or r > explode_above * _median_after(ratios, i)
    ]
    vanishing = [
        layer.name
        for layer, r, bad in zip(layers, ratios, nonfinite)
        if not bad and math.isfinite(median) and r < vanish_below * median
    ]
    spread = float(np.log10(finite.max() / finite.min())) if finite.size else math.nan
    return GradientVerdict(
        ratios=ratios, median_ratio=median, vanishing=vanishing, exploding=exploding, spread_decades=spread
    )


def gradient_margin(verdict: GradientVerdict) -> float:
    """log10 of the weakest layer's ratio over the model's median ratio (NaN when no ratio is finite).

    The rule flags a layer when this is below ``log10(VANISH_BELOW)`` = -4: the margin is the one number per run
    the verdict over seeds is drawn from.
    """
    finite = [r for r in verdict.ratios if math.isfinite(r) and r > 0]
    if not finite or not math.isfinite(verdict.median_ratio) or verdict.median_ratio <= 0:
        return math.nan
    return math.log10(min(finite) / verdict.median_ratio)


GRADIENT_SEEDS_RULE = (
    "Over seeds, the weakest layer's margin log10(min ratio / median ratio) is averaged with a 95% Student t "
    f"interval: vanishing when the whole interval lies below log10({VANISH_BELOW:g}) = {math.log10(VANISH_BELOW):g}, "
    "not vanishing when it lies above, inconclusive otherwise (one seed gives no interval)."
)


def vanishing_verdict(margin: Estimate | None) -> Verdict:
    """:data:`GRADIENT_SEEDS_RULE` on the margins over seeds (:func:`gradient_margin` per seed, e.g. through
    :func:`probe.stats.seed_estimate`); None (a seed without a finite margin) is inconclusive.

    >>> vanishing_verdict(seed_estimate([-7.0, -6.5, -7.2])).verdict
    'vanishing'
    >>> vanishing_verdict(seed_estimate([-1.2, -1.0, -1.4])).verdict, vanishing_verdict(None).verdict
    ('not vanishing', 'inconclusive')
    """
    return decide(margin, threshold=math.log10(VANISH_BELOW), below="vanishing", above="not vanishing")


# -- collapse -------------------------------------------------------------------------------------

#: A model's prediction has collapsed when more than this share of its images is collapsed (interval included).
COLLAPSED_SHARE = 0.5
COLLAPSE_RULE = (
    "An image is collapsed when the spatial std of its prediction (clipped to the protocol's depth range) is below "
    "0.1 of the ground truth's, and its scale is flagged when mean(pred)/mean(gt) lies outside [0.8, 1.25]. "
    f"A model is 'collapsed' when the share of collapsed images lies above {COLLAPSED_SHARE:g} with its whole 95% "
    f"interval, 'not collapsed' when below; a model that is not collapsed is 'scale' (right structure, wrong "
    f"scale) when its share of scale-flagged images lies above {COLLAPSED_SHARE:g} in the same way. Intervals: "
    "Student t over seeds, or a bootstrap over the images of a single run."
)


@dataclass
class CollapseCall:
    """What :data:`COLLAPSE_RULE` says about one model: ``collapsed``, ``scale``, ``not collapsed`` or
    ``inconclusive``, and the two verdicts behind it."""

    verdict: str
    sentence: str
    collapsed: Verdict
    scale: Verdict


def collapse_call(collapsed_share: Estimate | None, scale_flagged_share: Estimate | None) -> CollapseCall:
    """:data:`COLLAPSE_RULE` on the shares of collapsed and of scale-flagged images (with their intervals).

    >>> from probe.stats import bootstrap_interval
    >>> collapse_call(bootstrap_interval([1.0] * 8), bootstrap_interval([0.0] * 8)).verdict
    'collapsed'
    >>> collapse_call(bootstrap_interval([0.0] * 8), bootstrap_interval([1.0] * 8)).verdict
    'scale'
    """
    collapsed = decide(collapsed_share, threshold=COLLAPSED_SHARE, above="collapsed", below="not collapsed")
    scale = decide(scale_flagged_share, threshold=COLLAPSED_SHARE, above="scale", below="scale right")
    share = collapsed_share.describe() if collapsed_share is not None else "n/a"
    if collapsed.verdict == "collapsed":
        return CollapseCall("collapsed", f"collapsed (share of collapsed images {share})", collapsed, scale)
    if collapsed.verdict == "not collapsed":
        if scale.verdict == "scale":
            flagged = scale_flagged_share.describe() if scale_flagged_share is not None else "n/a"
            return CollapseCall(
                "scale",
                f"not collapsed (share of collapsed images {share}) but at the wrong scale (share of "
                f"scale-flagged images {flagged})",
                collapsed,
                scale,
            )
        return CollapseCall("not collapsed", f"not collapsed (share of collapsed images {share})", collapsed, scale)
    return CollapseCall("inconclusive", collapsed.sentence, collapsed, scale)


# -- image dependence -----------------------------------------------------------------------------

#: A prediction ignores the image when it varies across images less than this fraction of the ground truth.
IGNORES_IMAGE_BELOW = 0.1
#: Cross-image std ratios below this count as it on the log scale (one fixed map has ratio 0: no logarithm).
RATIO_FLOOR = 1e-6
IMAGE_RULE = (
    "A model ignores the image when its prediction hardly changes from one image to the next: at each pixel, the "
    "std of log predicted depth across the held-out images (clipped to the protocol's depth range), averaged over "
    "the valid pixels, divided by the same statistic of the ground truth, lies below "
    f"{IGNORES_IMAGE_BELOW:g} with its whole 95% interval; it 'depends on the image' when the whole interval lies "
    "above, and the call is inconclusive otherwise. Intervals: over seeds, the geometric mean with a Student t "
    f"interval on log10 of the ratio (a ratio that spans decades is judged in decades; below {RATIO_FLOOR:g} counts as "
    f"{RATIO_FLOOR:g}), or a bootstrap over the images of a single run (each resample recomputes both stds on the "
    "same images). Such a prediction is one dataset-wide "
    "depth map whatever the image; a prediction that is one constant per image still changes with the image and is "
    "the 'collapsed' kind. This kind is judged whether or not the model learned: it is one way of not learning."
)


@dataclass
class ImageCall:
    """What :data:`IMAGE_RULE` says about one model: ``ignores the image``, ``depends on the image`` or
    ``inconclusive``, with the verdict behind it."""

    verdict: str
    sentence: str
    decision: Verdict


def interval_text(estimate: Estimate | None, digits: int = 3) -> str:
    """``"0.0096 [0.0077, 0.011] (method)"``: the value and its interval as bounds (asymmetric on a log scale);
    ``"x (method)"`` without an interval, ``"n/a"`` when missing or not finite.

    >>> interval_text(Estimate(0.5, None, 1, 0.25, 1.0, "m", "seeds"))
    '0.5 [0.25, 1] (m)'
    """
    if estimate is None or not math.isfinite(estimate.mean):
        return "n/a"
    if not estimate.has_interval:
        return f"{estimate.mean:.{digits}g} ({estimate.method})"
    return f"{estimate.mean:.{digits}g} [{estimate.low:.{digits}g}, {estimate.high:.{digits}g}] ({estimate.method})"


def image_call(cross_std_ratio: Estimate | None) -> ImageCall:
    """:data:`IMAGE_RULE` on the prediction's cross-image std over the ground truth's (with its interval).

    >>> from probe.stats import geometric_seed_estimate
    >>> image_call(geometric_seed_estimate([0.006, 0.004, 0.005], RATIO_FLOOR)).verdict
    'ignores the image'
    >>> image_call(geometric_seed_estimate([1.0, 0.4, 0.48], RATIO_FLOOR)).verdict
    'depends on the image'
    >>> image_call(None).verdict
    'inconclusive'
    """
    decision = decide(
        cross_std_ratio, threshold=IGNORES_IMAGE_BELOW, below="ignores the image", above="depends on the image"
    )
    if not decision.conclusive or cross_std_ratio is None:
        return ImageCall("inconclusive", f"image dependence {decision.sentence}", decision)
    ratio = interval_text(cross_std_ratio)
    if decision.verdict == "ignores the image":
        return ImageCall(
            "ignores the image",
            "ignores the image: its prediction does not depend on the image, it is a dataset-wide map (its "
            f"cross-image variation is {ratio} of the ground truth's)",
            decision,
        )
    return ImageCall(
        "depends on the image",
        f"depends on the image (its cross-image variation is {ratio} of the ground truth's)",
        decision,
    )


# -- fit: can the model fit its own training images? ---------------------------------------------

#: A model fits N training images when its scale-matched abs_rel on them is below this fraction of the
#: per-image-median constant's (interval included).  The constant is 1 by construction, the ground truth 0; a
#: network that memorised its images sits far below the learned threshold (0.8): PackNetSlim B at 0.22 on 8
#: images, DenseDepth at 0.72 on 64 (issue 10, 600 steps, width 1/16, 64x96), so 0.5 separates "fitted" from
#: "learned a little" with room on both sides.
FIT_BELOW = 0.5
FIT_RULE = (
    "A model 'fits N images' when, trained for the step budget on exactly the first N training images, its "
    "scale-matched abs_rel on those same N images (after per-image median scaling, over the per-image-median "
    f"constant predictor's abs_rel) lies below {FIT_BELOW:g} with its whole 95% interval; it 'does not fit' when "
    f"the whole interval lies above {FIT_BELOW:g}; inconclusive otherwise. Intervals: Student t over seeds, or the "
    "paired bootstrap over the N images of a single run. The answer names the largest N the model fits. A model "
    "that cannot fit a handful of its own training images fails to optimise; whether it generalises is a "
    "separate question (the test-set ratio is shown alongside)."
)


@dataclass
class FitCall:
    """What :data:`FIT_RULE` says about one model at one training-set size: ``fits``, ``does not fit`` or
    ``inconclusive``, with the verdict behind it."""

    verdict: str
    sentence: str
    decision: Verdict


def fit_call(scale_matched_ratio: Estimate | None) -> FitCall:
    """:data:`FIT_RULE` on the train-set scale-matched abs_rel ratio (with its interval).

    >>> fit_call(seed_interval([0.2, 0.25, 0.22])).verdict, fit_call(seed_interval([0.95, 1.0, 0.9])).verdict
    ('fits', 'does not fit')
    >>> fit_call(seed_interval([0.3, 0.9, 0.5])).verdict, fit_call(None).verdict
    ('inconclusive', 'inconclusive')
    """
    decision = decide(scale_matched_ratio, threshold=FIT_BELOW, below="fits", above="does not fit")
    if not decision.conclusive or scale_matched_ratio is None:
        return FitCall("inconclusive", decision.sentence, decision)
    shown = interval_text(scale_matched_ratio)
    return FitCall(decision.verdict, f"{decision.verdict} (scale-matched ratio {shown})", decision)


def largest_fitted(calls: dict[int, str]) -> int | None:
    """The largest training-set size whose call is ``fits`` (None: none).

    >>> largest_fitted({8: "fits", 16: "inconclusive", 64: "does not fit"}), largest_fitted({8: "does not fit"})
    (8, None)
    """
    fitted = [n for n, verdict in calls.items() if verdict == "fits"]
    return max(fitted) if fitted else None


# -- noise ----------------------------------------------------------------------------------------

#: Batch scatter counts as different only beyond 20% either way.
SCATTER_BAND = 1.2
SCATTER_RULE = (
    "The batch-to-batch scatter of the training loss is its detrended coefficient of variation (std of successive "
    "differences / sqrt(2) / mean; the control recovers a known injected scatter within 10%). Per seed, PackNet's "
    "CV over the reference model's (both trained on the same batches); over seeds a 95% Student t interval: "
    f"noisier when the whole interval lies above {SCATTER_BAND:g}, calmer when below 1/{SCATTER_BAND:g}, "
    "comparable when it lies between the two, inconclusive otherwise (one seed gives no interval)."
)


@dataclass
class ScatterComparison:
    """``noisier``, ``calmer``, ``comparable`` or ``inconclusive``, with the ratio over seeds behind it."""

    verdict: str
    sentence: str
    ratio: Estimate | None


def scatter_comparison(cv: Sequence[float | None], reference_cv: Sequence[float | None]) -> ScatterComparison:
    """:data:`SCATTER_RULE`: per-seed CVs of a model and of the reference, paired by seed.

    >>> scatter_comparison([0.4, 0.42, 0.41], [0.1, 0.11, 0.1]).verdict
    'noisier'
    >>> scatter_comparison([0.1, 0.102, 0.099], [0.1, 0.1, 0.101]).verdict
    'comparable'
    """
    if len(cv) != len(reference_cv):
        raise ProbeError(
            f"scatter rule: expected one CV per seed for both models, got {len(cv)} and {len(reference_cv)}"
        )
    ratios = [
        a / b if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and b > 0 else None
        for a, b in zip(cv, reference_cv)
    ]
    ratio = seed_estimate(ratios)
    high = decide(ratio, threshold=SCATTER_BAND, above="noisier", below="not noisier")
    low = decide(ratio, threshold=1 / SCATTER_BAND, above="not calmer", below="calmer")
    if ratio is None or not ratio.has_interval:
        return ScatterComparison("inconclusive", high.sentence, ratio)
    if high.verdict == "noisier":
        return ScatterComparison("noisier", f"noisier: CV ratio {ratio.describe()}", ratio)
    if low.verdict == "calmer":
        return ScatterComparison("calmer", f"calmer: CV ratio {ratio.describe()}", ratio)
    if high.verdict == "not noisier" and low.verdict == "not calmer":
        return ScatterComparison("comparable", f"comparable: CV ratio {ratio.describe()}", ratio)
    shown = f"{ratio.mean:.3g}" + (f" ± {ratio.half_width:.3g}" if ratio.half_width is not None else "")
    return ScatterComparison(
        "inconclusive",
        f"inconclusive: the CV ratio ({shown}) is within the seeds' spread of the band "
        f"[1/{SCATTER_BAND:g}, {SCATTER_BAND:g}]",
        ratio,
    )


# -- convergence ----------------------------------------------------------------------------------

PLATEAU_TAIL = 0.2
PLATEAU_BELOW = 0.02
PLATEAU_RULE = (
    f"converged when, over the last {PLATEAU_TAIL:.0%} of the steps, the mean training loss of the final quarter "
    f"is at most {PLATEAU_BELOW:.0%} below that of the first quarter, or already at or below the stated floor "
    "(where nothing that matters is left to gain)"
)


@dataclass
class Convergence:
    """Whether a loss curve has plateaued by :data:`PLATEAU_RULE`, and the improvement it measured."""

    converged: bool
    relative_improvement: float
    final_loss: float
    floor: float
    steps: int
    rule: str = PLATEAU_RULE

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def plateaued(
    losses: Sequence[float], *, tail: float = PLATEAU_TAIL, below: float = PLATEAU_BELOW, floor: float = 0.0
) -> Convergence:
    """:data:`PLATEAU_RULE` on per-step training losses (at least 8 steps in the tail window).

    ``floor``: a final loss at or below it counts as converged however fast it still falls (a near-lossless
    autoencoder halving an MSE of 1e-5 has nothing left to gain that matters).

    >>> plateaued([1.0 / (1 + t) for t in range(100)]).converged, plateaued([1.0] * 100).converged
    (False, True)
    """
    arr = np.asarray([x for x in losses if math.isfinite(x)], dtype=np.float64)
    window = arr[len(arr) - max(8, int(round(tail * len(arr)))) :] if arr.size else arr
    if window.size < 8:
        raise ProbeError(f"plateau rule: needs at least 8 finite losses, got {arr.size}")
    quarter = max(2, window.size // 4)
    first, last = float(window[:quarter].mean()), float(window[-quarter:].mean())
    improvement = (first - last) / abs(first) if first != 0 else 0.0
    return Convergence(
        converged=improvement <= below or last <= floor,
        relative_improvement=improvement,
        final_loss=last,
        floor=floor,
        steps=int(arr.size),
    )


# -- packing --------------------------------------------------------------------------------------

PARAM_TOLERANCE = 0.25
#: Reconstruction MSE (images in [0, 1]) at 35 dB PSNR: below it an autoencoder counts as converged.
NEAR_LOSSLESS_MSE = 10 ** (-35 / 10)
PACKING_RULE = (
    "Packing autoencoders (architectures named pack*) are compared with max-pool + bilinear at the same number of "
    f"levels and matched size: a max-pool run within {PARAM_TOLERANCE:.0%} of the packing run's parameters, or "
    "max-pool's PSNR interpolated linearly in log(parameters) between two max-pool runs that bracket it; a run "
    f"whose training loss has not plateaued (over the last {PLATEAU_TAIL:.0%} of steps it still fell by more than "
    f"{PLATEAU_BELOW:.0%}, "
    "and its MSE is above that of 35 dB) is left out and reported as unconverged. Per level, the PSNR "
    "difference (packing - max-pool) over seeds gives a verdict only when its 95% interval excludes 0 dB."
)


@dataclass
class PackingRun:
    """One trained autoencoder: architecture, levels, size, held-out PSNR per seed and training losses per seed."""

    arch: str
    levels: int
    params: int
    macs: int
    psnr: list[float]
    losses: list[list[float]] = field(default_factory=list)

    @property
    def is_packing(self) -> bool:
        return self.arch.startswith("pack")


@dataclass
class LevelComparison:
    """The matched comparison at one level (``difference`` is None when nothing could be compared)."""

    levels: int
    packing: str
    packing_params: int
    reference: str
    difference: Estimate | None
    verdict: Verdict | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": self.levels,
            "packing": self.packing,
            "packing_params": self.packing_params,
            "reference": self.reference,
            "note": self.note,
            "difference_db": self.difference.to_json() if self.difference else None,
            "verdict": self.verdict.to_json() if self.verdict else None,
        }


@dataclass
class PackingComparison:
    """Every level's matched comparison, the runs left out, and the overall verdict."""

    levels: list[LevelComparison]
    unconverged: list[str]
    verdict: str
    rule: str = PACKING_RULE

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "rule": self.rule,
            "unconverged": self.unconverged,
            "levels": [c.to_json() for c in self.levels],
        }


def _converged(run: PackingRun) -> bool:
    """Every seed's curve plateaued; a curve with fewer than 8 finite losses cannot show it, so it has not."""
    return bool(run.losses) and all(
        sum(1 for x in curve if math.isfinite(x)) >= 8 and plateaued(curve, floor=NEAR_LOSSLESS_MSE).converged
        for curve in run.losses
    )


def _reference_psnr(run: PackingRun, pools: list[PackingRun]) -> tuple[list[float], str] | None:
    """Max-pool PSNR per seed at ``run``'s size: a matched run, or interpolation between two bracketing runs."""
    matched = [p for p in pools if abs(p.params - run.params) <= PARAM_TOLERANCE * run.params]
    if matched:
        best = min(matched, key=lambda p: abs(math.log(p.params / run.params)))
        return best.psnr, f"{best.arch} with {best.params:,} parameters"
    below = [p for p in pools if p.params < run.params]
    above = [p for p in pools if p.params > run.params]
    if not below or not above:
        return None
    lo, hi = max(below, key=lambda p: p.params), min(above, key=lambda p: p.params)
    t = (math.log(run.params) - math.log(lo.params)) / (math.log(hi.params) - math.log(lo.params))
    psnr = [(1 - t) * a + t * b for a, b in zip(lo.psnr, hi.psnr)]
    return psnr, f"{lo.arch} interpolated between {lo.params:,} and {hi.params:,} parameters"


def packing_comparison(
    runs: Sequence[PackingRun],
    *,
    reference: str = "maxpool",
    subject: Callable[[PackingRun], bool] | None = None,
    label: str = "packing",
) -> PackingComparison:
    """:data:`PACKING_RULE` on autoencoder runs (PSNR per seed, in the same seed order for every run).

    ``subject`` picks the runs compared with ``reference`` (default: the packing architectures, ``pack*``);
    ``label`` names them in the verdicts (``"packing better"``).  The same rule judges a model's own encoder.
    """
    is_subject = subject or (lambda r: r.is_packing)
    unconverged = [f"{r.arch}@{r.levels} ({r.params:,} parameters)" for r in runs if not _converged(r)]
    comparisons = []
    for run in sorted((r for r in runs if is_subject(r)), key=lambda r: (r.levels, r.arch, r.params)):
        pools = [p for p in runs if p.arch == reference and p.levels == run.levels and _converged(p)]
        if not _converged(run):
            comparisons.append(
                LevelComparison(
                    run.levels,
                    run.arch,
                    run.params,
                    reference,
                    None,
                    None,
                    "unconverged: training loss had not plateaued",
                )
            )
            continue
        found = _reference_psnr(run, pools)
        if found is None:
            sizes = ", ".join(f"{p.params:,}" for p in sorted(pools, key=lambda p: p.params)) or "none converged"
            comparisons.append(
                LevelComparison(
                    run.levels,
                    run.arch,
                    run.params,
                    reference,
                    None,
                    None,
                    f"unmatched: no {reference} run of comparable size ({sizes})",
                )
            )
            continue
        psnr, matched = found
        if len(psnr) != len(run.psnr):  # a paired difference needs the same seeds on both sides
            comparisons.append(
                LevelComparison(
                    run.levels,
                    run.arch,
                    run.params,
                    matched,
                    None,
                    None,
                    f"unpaired: {len(run.psnr)} seeds against {len(psnr)} of {matched}",
                )
            )
            continue
        diff = seed_interval([a - b for a, b in zip(run.psnr, psnr)])
        verdict = decide(diff, above=f"{label} better", below=f"{label} worse")
        comparisons.append(LevelComparison(run.levels, run.arch, run.params, matched, diff, verdict))
    decided = [c.verdict.verdict for c in comparisons if c.verdict is not None and c.verdict.conclusive]
    compared = [c for c in comparisons if c.verdict is not None]
    if not compared:
        overall = f"inconclusive: no converged {label} run has a converged {reference} run of matched size"
    elif len(decided) < len(compared):
        overall = "inconclusive: at some matched level the difference is within the seeds' spread"
    elif all(v == f"{label} better" for v in decided):
        overall = "yes"
    elif all(v == f"{label} worse" for v in decided):
        overall = "no"
    else:
        overall = "partly"
    return PackingComparison(levels=comparisons, unconverged=unconverged, verdict=overall)
