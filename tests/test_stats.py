"""The statistics core on cases with known answers: t intervals, bootstrap, paired comparisons, the verdict rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from probe.errors import ProbeError
from probe.stats import (Estimate, bootstrap_interval, decide, paired_bootstrap_ratio, paired_difference, sample_std,
                         seed_interval, student_t_quantile)


def test_mean_and_sample_std_match_the_textbook():
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    assert sample_std(values) == pytest.approx(math.sqrt(32 / 7))  # sum of squares 32, n - 1 = 7
    assert sample_std([3.0]) is None


def test_student_t_interval_over_three_seeds_is_mean_plus_minus_4_303_sem():
    e = seed_interval([1.0, 2.0, 3.0])
    assert student_t_quantile(0.95, 2) == pytest.approx(4.302653, rel=1e-6)
    assert (e.mean, e.std, e.n) == (2.0, 1.0, 3)
    assert e.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert e.method == "student_t_95 over 3 seeds" and e.spread_of == "seeds"


def test_one_seed_gives_no_interval_and_says_so():
    e = seed_interval([0.42])
    assert e.low is None and e.high is None and e.std is None and not e.has_interval
    assert e.method == "one seed: no interval"
    v = decide(e, above="worse", below="better")
    assert v.verdict == "inconclusive" and "no interval" in v.sentence


def test_t_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        e = seed_interval(rng.normal(1.0, 2.0, 3).tolist())
        hits += e.low <= 1.0 <= e.high
    assert 0.93 < hits / 2000 < 0.97


def test_bootstrap_is_seeded_names_its_method_and_brackets_the_mean():
    rng = np.random.default_rng(1)
    values = rng.exponential(1.0, 64).tolist()
    a = bootstrap_interval(values, resamples=500, seed=3)
    b = bootstrap_interval(values, resamples=500, seed=3)
    assert a == b and a.method == "bootstrap_95 over 64 images, 500 resamples" and a.spread_of == "images"
    assert a.low < a.mean < a.high
    # the percentile interval of a mean is close to mean +- 1.96 standard errors for 64 samples
    sem = np.std(values, ddof=1) / 8
    assert a.half_width == pytest.approx(1.96 * sem, rel=0.15)


def test_bootstrap_of_a_constant_has_zero_width():
    e = bootstrap_interval([0.3] * 10, resamples=100)
    assert e.low == pytest.approx(0.3) and e.high == pytest.approx(0.3)


def test_paired_difference_removes_what_the_seeds_share():
    shared = [0.0, 5.0, -3.0]  # large seed effects common to both models
    a = [s + 1.0 + d for s, d in zip(shared, (0.01, -0.02, 0.01))]
    b = [s for s in shared]
    paired = paired_difference(a, b)
    assert paired.mean == pytest.approx(1.0) and paired.high - paired.low < 0.2
    assert paired.method == "paired student_t_95 over 3 seeds"
    unpaired = seed_interval(a).half_width
    assert unpaired > 5  # the seeds' spread swamps the difference without pairing
    assert decide(paired, above="a worse", below="a better").verdict == "a worse"
    with pytest.raises(ProbeError, match="one value per seed"):
        paired_difference([1.0, 2.0], [1.0])


def test_paired_bootstrap_ratio_of_proportional_values_is_exact():
    base = np.linspace(0.1, 0.5, 20)
    e = paired_bootstrap_ratio((0.5 * base).tolist(), base.tolist(), resamples=200)
    assert e.mean == pytest.approx(0.5) and e.low == pytest.approx(0.5) and e.high == pytest.approx(0.5)
    assert e.method == "paired bootstrap_95 over 20 images, 200 resamples"


def test_verdict_only_when_the_interval_excludes_the_threshold():
    clear = seed_interval([1.0, 1.1, 0.9])
    assert decide(clear, above="up", below="down").verdict == "up"
    assert decide(seed_interval([-1.0, -1.1, -0.9]), above="up", below="down").verdict == "down"
    wide = seed_interval([0.3, -0.2, 0.5])
    v = decide(wide, above="up", below="down")
    assert v.verdict == "inconclusive"
    assert v.sentence == f"inconclusive: the difference ({wide.mean:.3g} ± {wide.half_width:.3g}) is within the seeds' spread"
    assert decide(clear, above="over", below="under", threshold=2.0).verdict == "under"


def test_estimates_and_verdicts_round_trip_through_json():
    import json

    from probe.stats import Verdict

    v = decide(seed_interval([0.2, 0.25, 0.22]), above="a", below="b", threshold=0.1)
    back = Verdict.from_json(json.loads(json.dumps(v.to_json())))
    assert back == v and Estimate.from_json(v.estimate.to_json()) == v.estimate


def test_non_finite_values_are_refused():
    with pytest.raises(ProbeError, match="non-finite"):
        seed_interval([1.0, float("nan")])
    with pytest.raises(ProbeError, match="no seed values"):
        seed_interval([])
