"""Spread and confidence for every compared number: intervals over seeds or images, and one verdict rule.

A number probe compares is an :class:`Estimate`: the values behind it, their
mean, sample standard deviation and a 95% interval, and the *name of the
method* that produced the interval, so a result file can say exactly what its
error bar means:

============================  =====================================================================
:func:`seed_interval`          mean over seeds +- Student t (n - 1 degrees of freedom); one seed gives
                               no interval (``low``/``high`` are None) and says so
:func:`bootstrap_interval`     a per-image statistic: percentile bootstrap over images (seeded, with a
                               stated number of resamples)
:func:`paired_difference`      two models measured on the same seeds: mean of the paired differences
                               +- Student t over those differences
:func:`paired_bootstrap_ratio` two predictors scored on the same images: ratio of their means, with a
                               percentile bootstrap that resamples the images jointly
:func:`percentile_interval`    a statistic of a whole set of images (not a mean of per-image values),
                               recomputed on resamples drawn by :func:`resample_counts`
============================  =====================================================================

:func:`decide` is the one verdict rule: it states a verdict only when the whole
interval lies on one side of the threshold, and otherwise says
``inconclusive: the difference (x +- y) is within the seeds' spread``.

>>> e = seed_interval([0.30, 0.32, 0.34])
>>> round(e.mean, 3), round(e.half_width, 3), e.method
(0.32, 0.05, 'student_t_95 over 3 seeds')
>>> difference = paired_difference([0.5, 0.52, 0.55], [0.3, 0.31, 0.33])
>>> decide(difference, above="PackNet is worse", below="PackNet is better").verdict
'PackNet is worse'
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from probe.errors import ProbeError

__all__ = [
    "CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "Estimate",
    "Verdict",
    "MISSING",
    "bootstrap_interval",
    "decide",
    "finite_values",
    "geometric_seed_estimate",
    "paired_bootstrap_ratio",
    "percentile_interval",
    "resample_counts",
    "paired_difference",
    "paired_estimate",
    "sample_std",
    "seed_estimate",
    "seed_interval",
    "seeds_or_images",
    "student_t_quantile",
]

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A compared number: ``mean`` of ``values`` with a ``confidence`` interval ``[low, high]``.

    ``std`` is the sample standard deviation (ddof = 1; None for one value).
    ``low``/``high`` are None when the method gives no interval (one seed).
    ``method`` names how the interval was made, e.g. ``"student_t_95 over 3 seeds"``;
    ``spread_of`` is what varies between the values (``"seeds"`` or ``"images"``).
    """

    mean: float
    std: float | None
    n: int
    low: float | None
    high: float | None
    method: str
    spread_of: str
    values: list[float] = field(default_factory=list)
    confidence: float = CONFIDENCE

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (the "+-" printed next to the mean); None without an interval."""
        if not self.has_interval:
            return None
        return (self.high - self.low) / 2  # type: ignore[operator]

    def describe(self, digits: int = 3) -> str:
        """``"0.32 +- 0.05 (student_t_95 over 3 seeds)"`` or ``"0.32 (one seed: no interval)"``."""
        if not self.has_interval:
            return f"{self.mean:.{digits}g} ({self.method})"
        return f"{self.mean:.{digits}g} ± {self.half_width:.{digits}g} ({self.method})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Estimate":
        return cls(**data)


def _finite(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ProbeError(f"statistics: no {what} to summarise")
    if not np.all(np.isfinite(arr)):
        raise ProbeError(f"statistics: {int((~np.isfinite(arr)).sum())} non-finite {what} in {arr.tolist()}")
    return arr


def _label(confidence: float) -> str:
    return f"{round(confidence * 100):d}"


def sample_std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof = 1); None for a single value."""
    arr = _finite(values, "values")
    return float(arr.std(ddof=1)) if arr.size > 1 else None


@functools.lru_cache(maxsize=64)
def student_t_quantile(confidence: float, dof: int) -> float:
    """Two-sided Student t critical value: ``t`` with ``P(|T| <= t) = confidence`` at ``dof`` degrees of freedom.

    >>> round(student_t_quantile(0.95, 2), 3)
    4.303
    """
    from scipy.special import stdtrit  # the t quantile; scipy.special imports in a fraction of scipy.stats' time

    return float(stdtrit(dof, 0.5 + confidence / 2))


def seed_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean over seeds with a Student t interval: ``mean +- t(n-1) * std / sqrt(n)`` (n >= 2).

    One seed gives the value, no interval, and ``method`` says so.
    """
    arr = _finite(values, "seed values")
    n = int(arr.size)
    mean = float(arr.mean())
    if n == 1:
        return Estimate(mean, None, 1, None, None, "one seed: no interval", "seeds", arr.tolist(), confidence)
    std = float(arr.std(ddof=1))
    half = student_t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return Estimate(
        mean,
        std,
        n,
        mean - half,
        mean + half,
        f"student_t_{_label(confidence)} over {n} seeds",
        "seeds",
        arr.tolist(),
        confidence,
    )


def finite_values(values: Sequence[float | None]) -> list[float] | None:
    """``values`` as floats when every one is a finite number, else None (missing data gives no estimate)."""
    out = []
    for v in values:
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        out.append(float(v))
    return out or None


def seed_estimate(values: Sequence[float | None], confidence: float = CONFIDENCE) -> Estimate | None:
    """:func:`seed_interval` of per-seed values, or None when one is missing or not finite (never a guess).

    >>> seed_estimate([1.0, None]) is None, seed_estimate([1.0, 2.0, 3.0]).n
    (True, 3)
    """
    finite = finite_values(values)
    return seed_interval(finite, confidence) if finite is not None else None


def geometric_seed_estimate(
    values: Sequence[float | None], floor: float, confidence: float = CONFIDENCE
) -> Estimate | None:
    """A positive ratio over seeds on the log scale: the geometric mean with a Student t interval on log10,
    mapped back (an asymmetric interval around the geometric mean); values below ``floor`` count as ``floor``
    (an exact 0 has no logarithm).  None when a value is missing, not finite or negative; one seed: no interval.

    Ratios that span decades (0.009 against a threshold of 0.1 against 1) are judged in decades: an arithmetic
    mean of 1.0 and 0.4 is pulled by the larger one, and its symmetric interval crosses zero.

    >>> e = geometric_seed_estimate([0.01, 0.1, 1.0], floor=1e-6)
    >>> round(e.mean, 3), e.method
    (0.1, 'geometric mean, student_t_95 on log10 over 3 seeds')
    """
    finite = finite_values(values)
    if finite is None or any(v < 0 for v in finite):
        return None
    logs = np.log10(np.maximum(np.asarray(finite, dtype=np.float64), floor))
    on_log = seed_interval(logs.tolist(), confidence)
    mean = float(10**on_log.mean)
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    if not on_log.has_interval:
        return Estimate(mean, None, 1, None, None, "one seed: no interval", "seeds", finite, confidence)
    return Estimate(
        mean,
        std,
        on_log.n,
        float(10**on_log.low),  # type: ignore[operator]
        float(10**on_log.high),  # type: ignore[operator]
        f"geometric mean, student_t_{_label(confidence)} on log10 over {on_log.n} seeds",
        "seeds",
        finite,
        confidence,
    )


def paired_estimate(a: Sequence[float | None], b: Sequence[float | None]) -> Estimate | None:
    """:func:`paired_difference` of per-seed values, or None when one is missing or not finite (never a guess)."""
    x, y = finite_values(a), finite_values(b)
    return paired_difference(x, y) if x is not None and y is not None else None


def seeds_or_images(
    seed_values: Sequence[float | None],
    image_values: Sequence[float | None] | None = None,
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate | None:
    """A per-image statistic over runs: Student t over seeds when there are several, else a bootstrap over the one
    run's images (``image_values``, summarised by ``statistic``); None when an input is missing or not finite.

    >>> seeds_or_images([0.5]).method, seeds_or_images([0.5], [0.0, 1.0, 1.0, 0.0]).method[:12]
    ('one seed: no interval', 'bootstrap_95')
    """
    if len(seed_values) > 1 or image_values is None:
        return seed_estimate(seed_values)
    finite = finite_values(image_values)
    if finite is None:
        return None
    return bootstrap_interval(finite, statistic, resamples=resamples, seed=seed)


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    if resamples < 1:
        raise ProbeError(f"bootstrap: expected a positive number of resamples, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """A per-image statistic (``statistic`` of ``values``, one per image) with a percentile bootstrap interval.

    Resamples the images with replacement ``resamples`` times (NumPy generator seeded ``seed``) and takes the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the statistic.
    """
    arr = _finite(values, "per-image values")
    n = int(arr.size)
    value = float(statistic(arr))
    std = float(arr.std(ddof=1)) if n > 1 else None
    if n == 1:
        return Estimate(value, None, 1, None, None, "one image: no interval", "images", arr.tolist(), confidence)
    stats = np.array([statistic(arr[idx]) for idx in _resample_indices(n, resamples, seed)], dtype=np.float64)
    low, high = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(
        value,
        std,
        n,
        float(low),
        float(high),
        f"bootstrap_{_label(confidence)} over {n} images, {resamples} resamples",
        "images",
        arr.tolist(),
        confidence,
    )


def resample_counts(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """``[resamples, n]`` integer weights: how often each of ``n`` images is drawn in each bootstrap resample
    (with replacement, seeded), for statistics that take weighted sums instead of indexing.

    >>> w = resample_counts(4, 3)
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 4), [4, 4, 4])
    """
    idx = _resample_indices(n, resamples, seed)
    counts = np.zeros((resamples, n), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(resamples), n), idx.ravel()), 1)
    return counts


def percentile_interval(
    value: float, resampled: Sequence[float], n: int, *, confidence: float = CONFIDENCE
) -> Estimate:
    """A statistic of a set of ``n`` images, ``value``, with the percentile interval of its bootstrap
    recomputations ``resampled`` (one per resample, e.g. over :func:`resample_counts`).

    ``std`` is the bootstrap standard error; ``values`` holds ``value`` alone (there is no value per image).
    """
    stats = _finite(resampled, "bootstrap recomputations")
    if not math.isfinite(value):
        raise ProbeError(f"statistics: the statistic itself is not finite ({value})")
    low, high = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(
        float(value),
        float(stats.std(ddof=1)) if stats.size > 1 else None,
        n,
        float(low),
        float(high),
        f"bootstrap_{_label(confidence)} over {n} images, {stats.size} resamples",
        "images",
        [float(value)],
        confidence,
    )


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """``a - b`` for two models measured on the same seeds (``a[i]``, ``b[i]`` share seed i).

    The mean of the paired differences with a Student t interval over them, which removes what the seeds
    share (the batches, the initial draw of the data) from the spread.
    """
    x, y = _finite(a, "values of the first model"), _finite(b, "values of the second model")
    if x.size != y.size:
        raise ProbeError(f"paired comparison: expected one value per seed for both models, got {x.size} and {y.size}")
    diff = seed_interval((x - y).tolist(), confidence)
    method = diff.method if diff.n == 1 else f"paired {diff.method}"
    return Estimate(diff.mean, diff.std, diff.n, diff.low, diff.high, method, "seeds", diff.values, confidence)


def paired_bootstrap_ratio(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """``mean(a) / mean(b)`` for two predictors scored on the same images, with a paired percentile bootstrap.

    Each resample draws image indices once and uses them for both, so what the images share cancels.
    ``values`` holds the per-image ratios ``a[i] / b[i]`` for reference.
    """
    x, y = _finite(a, "per-image values"), _finite(b, "per-image reference values")
    if x.size != y.size:
        raise ProbeError(f"paired ratio: expected one value per image for both, got {x.size} and {y.size}")
    if not np.all(y > 0):
        raise ProbeError("paired ratio: the reference values must be positive")
    n = int(x.size)
    ratio = float(x.mean() / y.mean())
    per_image = (x / y).tolist()
    if n == 1:
        return Estimate(ratio, None, 1, None, None, "one image: no interval", "images", per_image, confidence)
    idx = _resample_indices(n, resamples, seed)
    stats = x[idx].mean(axis=1) / y[idx].mean(axis=1)
    low, high = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(
        ratio,
        float(stats.std(ddof=1)),
        n,
        float(low),
        float(high),
        f"paired bootstrap_{_label(confidence)} over {n} images, {resamples} resamples",
        "images",
        per_image,
        confidence,
    )


@dataclass(frozen=True)
class Verdict:
    """What :func:`decide` concluded: ``verdict`` (one of the two given, or ``"inconclusive"``) and why."""

    verdict: str
    sentence: str
    threshold: float
    estimate: Estimate | None  # None: the inputs were missing or not finite

    @property
    def conclusive(self) -> bool:
        return self.verdict != "inconclusive"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "sentence": self.sentence,
            "threshold": self.threshold,
            "estimate": self.estimate.to_json() if self.estimate is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Verdict":
        estimate = Estimate.from_json(data["estimate"]) if data.get("estimate") is not None else None
        return cls(data["verdict"], data["sentence"], data["threshold"], estimate)


MISSING = "inconclusive: a value it needs is missing or not finite"


def decide(estimate: Estimate | None, *, above: str, below: str, threshold: float = 0.0, digits: int = 3) -> Verdict:
    """The one verdict rule: ``above`` when the whole interval lies above ``threshold``, ``below`` when it lies
    below, otherwise ``"inconclusive"`` (also when there is no interval, e.g. one seed, and when there is no
    estimate at all: missing or non-finite inputs never give a verdict).

    >>> decide(seed_interval([0.1, -0.2, 0.15]), above="worse", below="better").sentence
    "inconclusive: the difference (0.0167 ± 0.47) is within the seeds' spread"
    """
    if estimate is None or not math.isfinite(estimate.mean):
        return Verdict("inconclusive", MISSING, threshold, estimate)
    shown = f"{estimate.mean:.{digits}g}"
    if not estimate.has_interval:
        return Verdict(
            "inconclusive", f"inconclusive: {shown} has no interval ({estimate.method})", threshold, estimate
        )
    if estimate.low > threshold:  # type: ignore[operator]
        verdict = above
    elif estimate.high < threshold:  # type: ignore[operator]
        verdict = below
    else:
        what = "difference" if threshold == 0 else f"value against {threshold:.{digits}g}"
        return Verdict(
            "inconclusive",
            f"inconclusive: the {what} ({shown} ± {estimate.half_width:.{digits}g}) is "
            f"within the {estimate.spread_of}' spread",
            threshold,
            estimate,
        )
    return Verdict(verdict, f"{verdict}: {estimate.describe(digits)}", threshold, estimate)
