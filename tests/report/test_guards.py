"""A rule whose input is missing or not finite answers "inconclusive": the guard and the gradient question."""

from __future__ import annotations

import math

import pytest

from analyses.gradients import gradients_vanish
from probe.report.collect import collect_results
from probe.report.guards import inconclusive, is_defined, undefined_inputs
from tests import result_examples as ex


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, "0.5", True, [1.0], 10**400])
def test_missing_non_finite_and_non_numbers_are_undefined(value) -> None:
    assert not is_defined(value)
    assert undefined_inputs({"x": 1.0, "y": value}) == ["y"]


@pytest.mark.parametrize("value", [0, 0.0, -3, 1e-300, 1e300])
def test_finite_numbers_are_defined(value) -> None:
    assert is_defined(value) and undefined_inputs({"x": value}) == []


def test_the_inconclusive_answer_names_every_undefined_input() -> None:
    answer = inconclusive("Q?", "rule", [{"model": "a"}], ["a's ratio", "b's ratio"])
    assert answer.verdict == "inconclusive" and "a's ratio, b's ratio, which are missing" in answer.sentence
    assert answer.rule == "rule" and answer.evidence == [{"model": "a"}]
    with pytest.raises(ValueError):
        inconclusive("Q?", "rule", [], [])


def _answer(tmp_path, margin_missing: bool, medians: list[float] | None = None):
    """PackNet B (``medians`` as its layers' |g|, over 3 seeds) and C (healthy); C's margin over seeds nulled."""
    doc = ex.gradients({"packnet_b": medians or [0.5, 1.0, 1.0, 1.0], "packnet_c": [1.0] * 4,
                        "densedepth": [1.0] * 4})
    if margin_missing:
        doc.summaries[1].margin = None  # written as null, as a damaged file holds it
    ex.write(doc, tmp_path)
    return gradients_vanish(collect_results([tmp_path]))


def test_a_missing_margin_makes_the_gradient_answer_inconclusive(tmp_path) -> None:
    answer = _answer(tmp_path, True)
    assert answer.verdict == "inconclusive" and "packnet_c's weakest-layer margin" in answer.sentence


def test_finite_margins_above_the_threshold_still_answer_no(tmp_path) -> None:
    assert _answer(tmp_path, False).verdict == "no"


def test_a_vanishing_model_answers_yes_even_when_another_margin_is_missing(tmp_path) -> None:
    assert _answer(tmp_path, True, [1e-9, 1.0, 1.0, 1.0]).verdict == "yes"
