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


def _answer(tmp_path, ratio: float, medians: list[float] | None = None):
    doc = ex.gradients({"packnet_b": medians or [0.5, 1.0, 1.0, 1.0], "densedepth": [1.0] * 4})
    doc.models[0].verdict.first_last_ratio = ratio  # written as null when not finite, as a damaged file holds it
    ex.write(doc, tmp_path)
    return gradients_vanish(collect_results([tmp_path]))


@pytest.mark.parametrize("ratio", [math.nan, math.inf])
def test_a_missing_first_last_ratio_makes_the_gradient_answer_inconclusive(tmp_path, ratio) -> None:
    answer = _answer(tmp_path, ratio)
    assert answer.verdict == "inconclusive" and "packnet_b's first/last ratio" in answer.sentence


def test_a_finite_ratio_above_the_threshold_still_answers_no(tmp_path) -> None:
    assert _answer(tmp_path, 0.5).verdict == "no"


def test_flagged_layers_answer_yes_even_when_the_ratio_is_missing(tmp_path) -> None:
    assert _answer(tmp_path, math.nan, [1e-4, 1e-6, 1e-6, 1.0]).verdict == "yes"
