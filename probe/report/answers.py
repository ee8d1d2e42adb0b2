"""The seed's questions: each is a registered rule that answers from the numbers, or says it cannot.

A rule is ``rule(results) -> Answer | None`` (None when the analysis it needs was not
run), registered by the module that produces the results it reads, next to them::

    @QUESTIONS.register("gradients", description="Do PackNet's gradients vanish?", order=10)
    def gradients_vanish(results: Results) -> Answer | None:
        result = results.first(GradientsResult)
        ...

The rule's text is printed next to the answer in the report, so a reader can check
the sentence against the evidence table under it.  Nothing is hard-coded: change
the numbers and the answer changes.  ``order`` places the question in the summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from probe.registry import Registry
from probe.report.collect import Results


@dataclass
class Answer:
    question: str
    verdict: str  # "yes" | "no" | "partly" | "inconclusive" | "measured"
    sentence: str
    rule: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


Rule = Callable[[Results], "Answer | None"]
QUESTIONS: Registry[Rule] = Registry("question")


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a sentence or an evidence table: ``n/a`` when missing or undefined (NaN), ``inf`` when infinite."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def finite(x: float | None) -> float | None:
    """``x`` if it is a finite number, else None (JSON stores non-finite values as null, read back as NaN)."""
    return x if x is not None and math.isfinite(x) else None


def answer_all(results: Results) -> list[tuple[str, str, Answer | None]]:
    """(key, question, answer or None when not run) for every registered question, in ``order``."""
    entries = sorted(QUESTIONS.entries(), key=lambda e: e.meta.get("order", 1000))
    return [(e.name, e.description, e.factory(results)) for e in entries]
