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
from typing import Any, Callable, Protocol, Sequence, TypeVar

from probe.controls import CONTROLS
from probe.heldout import GATE_RULE, Learned
from probe.registry import Registry
from probe.report.collect import Results
from probe.roles import Roles
from probe.stats import Estimate


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


def with_controls(rule: str, control: str, gated: bool = True) -> str:
    """A question's rule text as the report prints it: the rule, the controls it is tested on, the learned gate."""
    text = f"{rule} Controls (tests/test_controls.py): {CONTROLS[control]}."
    return f"{text} {GATE_RULE}." if gated else text


def shown(estimate: Estimate | None, digits: int = 3) -> str:
    """``"0.32 ± 0.05"``, ``"0.32 (one seed: no interval)"`` or ``"n/a"`` (missing or not finite)."""
    if estimate is None or not math.isfinite(estimate.mean):
        return "n/a"
    if estimate.half_width is None:
        return f"{fmt(estimate.mean, digits)} ({estimate.method})"
    return f"{fmt(estimate.mean, digits)} ± {fmt(estimate.half_width, 2)}"


def not_learned(name: str, learned: Learned | None) -> str | None:
    """None when a verdict may be drawn from model ``name``; else the sentence saying why not (the learned gate)."""
    if learned is None:
        return f"{name}: no held-out score was recorded, so whether it learned is unknown"
    if learned.usable:
        return None
    return f"{name} {learned.describe()}"


class Judged(Protocol):
    """A model's summary over seeds (``GradientSummary``, ``CollapseOverSeeds``, ``NoiseOverSeeds``)."""

    @property
    def name(self) -> str: ...

    @property
    def seeds(self) -> list[int]: ...

    @property
    def learned(self) -> Learned | None: ...


J = TypeVar("J", bound=Judged)


def gate(summaries: Sequence[J], roles: Roles | None = None) -> tuple[list[J], list[str]]:
    """(the models a verdict may be drawn from, one sentence per model left out by the learned gate); with
    ``roles`` only the models under study are asked about (the baselines' numbers are the reference)."""
    judged, excluded = [], []
    for s in summaries:
        if roles is not None and not roles.under_study(s.name):
            continue
        reason = not_learned(roles.display(s.name) if roles is not None else s.name, s.learned)
        if reason is None:
            judged.append(s)
        else:
            excluded.append(reason)
    return judged, excluded


def model_columns(s: Judged, roles: Roles | None = None) -> dict[str, Any]:
    """The first evidence columns of a model over seeds: name, its role, number of seeds, learned status."""
    role = roles.evidence(s.name) if roles is not None else {}
    learned = s.learned.status if s.learned else "not measured"
    return {"model": s.name, **role, "seeds": len(s.seeds), "learned": learned}


NOT_JUDGED = "not judged (learning not shown)"


def verdict_cell(s: Judged, verdict: str) -> str:
    """A model's verdict in an evidence table, or :data:`NOT_JUDGED` when the learned gate leaves it out."""
    return verdict if s.learned is not None and s.learned.usable else NOT_JUDGED


def excluded_sentence(reasons: list[str]) -> str:
    """One sentence naming the models left out by the learned gate (empty when none)."""
    return f" Not judged: {'; '.join(reasons)}." if reasons else ""


def answer_all(results: Results) -> list[tuple[str, str, Answer | None]]:
    """(key, question, answer or None when not run) for every registered question, in ``order``."""
    entries = sorted(QUESTIONS.entries(), key=lambda e: e.meta.get("order", 1000))
    return [(e.name, e.description, e.factory(results)) for e in entries]
