"""A rule whose input is missing or not finite answers "inconclusive", never a verdict.

Verdict rules compare numbers with thresholds.  A number that is missing (``null`` in a
result file, read back as None or NaN) or not finite (NaN, +-inf) compares False with
everything, so ``ratio < 1e-2`` quietly reads as "no" and a rule can answer from evidence
it never had.  A rule names the numbers it needs; when any is undefined it answers with
:func:`inconclusive`, which says which ones::

    missing = undefined_inputs({f"{m.name} first/last ratio": m.verdict.first_last_ratio for m in packnets})
    if missing:
        return inconclusive(QUESTION, RULE, evidence, missing)
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from probe.report.answers import Answer


def is_defined(value: Any) -> bool:
    """Whether ``value`` is a finite real number (``True``/``False`` are not numbers here).

    >>> [is_defined(v) for v in (0.5, 0, None, float("nan"), float("inf"), "1", True)]
    [True, True, False, False, False, False, False]
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float is no measured number either
        return False


def undefined_inputs(inputs: Mapping[str, Any]) -> list[str]:
    """The names of the inputs whose value is not :func:`is_defined`, in order.

    >>> undefined_inputs({"packnet_b ratio": float("nan"), "densedepth ratio": 0.3, "packnet_c ratio": None})
    ['packnet_b ratio', 'packnet_c ratio']
    """
    return [name for name, value in inputs.items() if not is_defined(value)]


def inconclusive(question: str, rule: str, evidence: list[dict[str, Any]], undefined: Sequence[str]) -> Answer:
    """The answer of a rule that cannot be applied because ``undefined`` inputs are missing or not finite."""
    if not undefined:
        raise ValueError("inconclusive: name the inputs that are undefined")
    names = ", ".join(undefined)
    verb = "is" if len(undefined) == 1 else "are"
    sentence = (
        f"Inconclusive: the rule needs {names}, which {verb} missing or not a finite number in these results, "
        "so it can neither say yes nor no."
    )
    return Answer(question, "inconclusive", sentence, rule, evidence)
