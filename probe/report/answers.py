"""The seed's questions, each answered from the numbers by a stated rule.

Every rule is a registered function ``rule(results) -> Answer | None`` (None when the
analysis it needs was not run).  The rule's text is printed next to the answer in the
report, so a reader can check the sentence against the evidence table under it.
Nothing here is hard-coded: change the JSON and the answer changes.
"""

from __future__ import annotations

import math
import statistics
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


def is_packnet(name: str) -> bool:
    return "packnet" in name.lower()


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def _models(doc: Any) -> list[dict[str, Any]]:
    """Per-model entries of an analysis document: a list under ``models`` or a name-keyed dict."""
    if not isinstance(doc, dict):
        return []
    models = doc.get("models")
    if isinstance(models, list):
        return [m for m in models if isinstance(m, dict)]
    if isinstance(models, dict):
        return [{"name": k, **v} for k, v in models.items() if isinstance(v, dict)]
    return []


# -- gradients ------------------------------------------------------------------------------

VANISH_RULE = (
    "Yes when a PackNet model's gradient verdict flags at least one layer as vanishing "
    "(the rule recorded in gradients.json), or its first/last-layer median gradient ratio is below 1e-2; "
    "no when no PackNet layer is flagged and the ratio is at least 1e-2."
)


@QUESTIONS.register("gradients", description="Do PackNet's gradients vanish?")
def gradients_vanish(results: Results) -> Answer | None:
    doc = results.first("gradients")
    models = _models(doc)
    if not models:
        return None
    evidence, flagged = [], []
    for m in models:
        verdict = m.get("verdict") or {}
        vanishing = verdict.get("vanishing") or []
        exploding = verdict.get("exploding") or []
        ratio = m.get("first_last_ratio", verdict.get("first_last_ratio"))
        evidence.append({
            "model": m.get("name"),
            "layers": len(m.get("layers") or []),
            "vanishing layers": len(vanishing),
            "exploding layers": len(exploding),
            "first/last median grad": _fmt(ratio),
        })
        if is_packnet(str(m.get("name"))) and (vanishing or (ratio is not None and ratio < 1e-2)):
            flagged.append((m.get("name"), len(vanishing), ratio))
    packnets = [m for m in models if is_packnet(str(m.get("name")))]
    if not packnets:
        return Answer("Do PackNet's gradients vanish?", "inconclusive",
                      "No PackNet model was measured, so the question cannot be answered from these runs.",
                      VANISH_RULE, evidence)
    if flagged:
        parts = ", ".join(f"{n} ({k} layers flagged, first/last ratio {_fmt(r)})" for n, k, r in flagged)
        sentence = f"Yes: gradients vanish in {parts}."
        verdict = "yes"
    else:
        ratios = ", ".join(f"{m.get('name')} {_fmt(m.get('first_last_ratio'))}" for m in packnets)
        sentence = f"No: no PackNet layer meets the vanishing rule (first/last ratios: {ratios})."
        verdict = "no"
    return Answer("Do PackNet's gradients vanish?", verdict, sentence, VANISH_RULE, evidence)


# -- collapse -------------------------------------------------------------------------------

COLLAPSE_RULE = (
    "An image is collapsed when the spatial standard deviation of its prediction is below 0.1 of the "
    "ground truth's. Yes when at least half of a model's evaluated images are collapsed at the last "
    "measurement, partly when some are, no when none are."
)


def _final_collapse(m: dict[str, Any]) -> tuple[float | None, float | None]:
    """(share collapsed, median std ratio) at the last measurement of a model."""
    share = m.get("collapsed_share")
    ratio = m.get("median_std_ratio")
    history = m.get("history") or m.get("steps") or []
    if isinstance(history, list) and history and isinstance(history[-1], dict):
        last = history[-1]
        share = last.get("collapsed_share", share)
        ratio = last.get("median_std_ratio", ratio)
    final = m.get("final")
    if isinstance(final, dict):
        share = final.get("collapsed_share", share)
        ratio = final.get("median_std_ratio", ratio)
    return share, ratio


@QUESTIONS.register("collapse", description="Does the prediction collapse to the mean?")
def prediction_collapses(results: Results) -> Answer | None:
    models = _models(results.first("collapse"))
    if not models:
        return None
    evidence, worst = [], []
    for m in models:
        share, ratio = _final_collapse(m)
        evidence.append({"model": m.get("name"), "collapsed share": _fmt(share),
                         "median std ratio": _fmt(ratio)})
        if share is not None:
            worst.append((share, m.get("name"), ratio))
    if not worst:
        return Answer("Does the prediction collapse to the mean?", "inconclusive",
                      "collapse.json holds no collapsed share.", COLLAPSE_RULE, evidence)
    # most collapsed: highest collapsed share, ties broken by the smallest std ratio
    worst.sort(key=lambda t: (t[0], -(t[2] if t[2] is not None else float("inf"))), reverse=True)
    share, name, ratio = worst[0]
    if share >= 0.5:
        verdict, lead = "yes", "Yes"
    elif share > 0:
        verdict, lead = "partly", "Partly"
    else:
        verdict, lead = "no", "No"
    sentence = (f"{lead}: the most collapsed model, {name}, has {share:.0%} of images collapsed "
                f"(median prediction/ground-truth std ratio {_fmt(ratio)}).")
    return Answer("Does the prediction collapse to the mean?", verdict, sentence, COLLAPSE_RULE, evidence)


# -- autoencoder ----------------------------------------------------------------------------

PACKING_RULE = (
    "Compares held-out reconstruction PSNR of packing autoencoders (architectures whose name starts with "
    "'pack') against max-pool + bilinear upsampling at the same number of levels. Yes when packing is at "
    "least 1 dB better at every level measured, no when it is never better, partly otherwise."
)


def _autoencoder_rows(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    rows = doc.get("results") or doc.get("runs") or doc.get("architectures") or []
    return [r for r in rows if isinstance(r, dict)]


@QUESTIONS.register("packing", description="Does packing preserve information?")
def packing_preserves(results: Results) -> Answer | None:
    rows = _autoencoder_rows(results.first("autoencoder"))
    if not rows:
        return None
    by_level: dict[int, dict[str, float]] = {}
    for r in rows:
        level, arch, psnr = r.get("levels", r.get("level")), r.get("arch", r.get("name")), r.get("psnr")
        if level is None or arch is None:
            continue
        value = float("inf") if psnr is None and r.get("psnr_infinite") else psnr
        if value is not None:
            by_level.setdefault(int(level), {})[str(arch)] = float(value)
    diffs, evidence = [], []
    for level in sorted(by_level):
        archs = by_level[level]
        pool = archs.get("maxpool")
        packs = {a: v for a, v in archs.items() if a.startswith("pack")}
        if pool is None or not packs:
            continue
        best_arch = max(packs, key=packs.get)
        diff = packs[best_arch] - pool
        diffs.append(diff)
        evidence.append({"levels": level, "best packing": best_arch, "packing PSNR (dB)": _fmt(packs[best_arch]),
                         "max-pool PSNR (dB)": _fmt(pool), "difference (dB)": _fmt(diff)})
    if not diffs:
        return Answer("Does packing preserve information?", "inconclusive",
                      "The autoencoder study has no level where both packing and max-pool were trained.",
                      PACKING_RULE, evidence)
    if all(d >= 1.0 for d in diffs):
        verdict, lead = "yes", "Yes"
    elif all(d <= 0 for d in diffs):
        verdict, lead = "no", "No"
    else:
        verdict, lead = "partly", "Partly"
    lo, hi = min(diffs), max(diffs)
    if lo >= 0:
        span = f"{_fmt(lo)} to {_fmt(hi)} dB better than"
    elif hi <= 0:
        span = f"{_fmt(-hi)} to {_fmt(-lo)} dB worse than"
    else:
        span = f"between {_fmt(-lo)} dB worse and {_fmt(hi)} dB better than"
    sentence = (f"{lead}: packing reconstructs held-out images {span} max-pooling "
                f"over {len(diffs)} level setting(s).")
    return Answer("Does packing preserve information?", verdict, sentence, PACKING_RULE, evidence)


# -- noise ----------------------------------------------------------------------------------

NOISE_RULE = (
    "Compares the batch-to-batch scatter of the loss between PackNet models and DenseDepth: the detrended "
    "coefficient of variation (std of successive differences / sqrt(2) / mean, so the falling trend of "
    "the loss does not count as noise; the plain std/mean where the detrended value is absent). Yes "
    "(PackNet's batches are noisier) when the PackNet CV exceeds DenseDepth's by more than 20%; no when it "
    "is lower by more than 20%; comparable otherwise. B_simple is shown as evidence."
)


def _loss_cv(m: dict[str, Any]) -> float | None:
    loss = m.get("loss") or {}
    value = loss.get("cv_detrended", loss.get("cv"))
    return None if value is None else float(value)


@QUESTIONS.register("noise", description="How noisy are the batches?")
def batch_noise(results: Results) -> Answer | None:
    models = _models(results.first("noise"))
    if not models:
        return None
    evidence = []
    for m in models:
        loss = m.get("loss") or {}
        evidence.append({"model": m.get("name"), "B_simple": _fmt(m.get("b_simple")),
                         "loss CV (detrended)": _fmt(_loss_cv(m)), "loss CV (plain)": _fmt(loss.get("cv")),
                         "loss std": _fmt(loss.get("std"))})
    cv = {str(m.get("name")): _loss_cv(m) for m in models}
    pn = [v for k, v in cv.items() if is_packnet(k) and v is not None]
    dd = [v for k, v in cv.items() if not is_packnet(k) and v is not None]
    if not pn or not dd:
        named = ", ".join(f"{e['model']} CV {e['loss CV (detrended)']}, B_simple {e['B_simple']}" for e in evidence)
        return Answer("How noisy are the batches?", "inconclusive",
                      f"Measured {named}; a PackNet and a non-PackNet model are both needed to compare.",
                      NOISE_RULE, evidence)
    ratio = statistics.mean(pn) / max(statistics.mean(dd), 1e-12)
    if ratio > 1.2:
        verdict, lead = "yes", f"PackNet's batches are noisier: its per-batch loss CV is {ratio:.2f}x DenseDepth's"
    elif ratio < 1 / 1.2:
        verdict, lead = "no", f"PackNet's batches are calmer: its per-batch loss CV is {ratio:.2f}x DenseDepth's"
    else:
        verdict, lead = "partly", f"Comparable: PackNet's per-batch loss CV is {ratio:.2f}x DenseDepth's"
    return Answer("How noisy are the batches?", verdict, lead + ".", NOISE_RULE, evidence)


# -- capacity -------------------------------------------------------------------------------

COST_RULE = (
    "Ratios of parameters, multiply-accumulates and forward+backward latency of each PackNet model to "
    "DenseDepth at the same input size (complexity.json), set against the mean training loss of the "
    "experiment matrix when it exists (experiments.json)."
)


@QUESTIONS.register("cost", description="What does the extra capacity cost?")
def capacity_cost(results: Results) -> Answer | None:
    models = _models(results.first("complexity"))
    if not models:
        return None
    base = next((m for m in models if not is_packnet(str(m.get("name")))), None)
    evidence = [{"model": m.get("name"), "params": m.get("params"), "MACs": _fmt(m.get("macs")),
                 "fwd+bwd latency (ms)": _fmt(_latency_ms(m))} for m in models]
    packs = [m for m in models if is_packnet(str(m.get("name")))]
    if base is None or not packs:
        return Answer("What does the extra capacity cost?", "inconclusive",
                      "A PackNet model and DenseDepth must both be in complexity.json to compare.",
                      COST_RULE, evidence)
    parts = []
    for m in packs:
        p = m.get("params", 0) / max(base.get("params", 1), 1)
        c = (m.get("macs") or 0) / max(base.get("macs") or 1, 1)
        lb, lm = _latency_ms(base), _latency_ms(m)
        lat = f", {lm / lb:.1f}x the training-step latency" if lb and lm else ""
        parts.append(f"{m.get('name')} has {p:.1f}x the parameters and {c:.1f}x the MACs{lat}")
    sentence = "; ".join(parts) + f" of {base.get('name')}"
    exp = results.first("experiments")
    losses = _experiment_losses(exp)
    if losses:
        dd = [v for k, v in losses.items() if not is_packnet(k)]
        pn = [v for k, v in losses.items() if is_packnet(k)]
        if dd and pn:
            better = min(pn) < min(dd)
            sentence += (f"; for that, its best mean training loss is {_fmt(min(pn))} against "
                         f"{_fmt(min(dd))} ({'better' if better else 'worse'})")
    return Answer("What does the extra capacity cost?", "measured", sentence + ".", COST_RULE, evidence)


def _latency_ms(m: dict[str, Any]) -> float | None:
    lat = m.get("latency") or {}
    for key in ("forward_backward_ms", "fwd_bwd_ms"):
        if isinstance(lat, dict) and lat.get(key) is not None:
            return float(lat[key])
    for key in ("forward_backward_ms", "latency_fwd_bwd_ms", "fwd_bwd_ms"):
        if m.get(key) is not None:
            return float(m[key])
    return None


def _experiment_losses(doc: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    if not isinstance(doc, dict):
        return out
    for e in doc.get("experiments") or []:
        loss = e.get("mean_epoch_loss")
        if isinstance(loss, list):
            loss = loss[-1] if loss else None
        if loss is not None:
            out[str(e.get("model"))] = min(float(loss), out.get(str(e.get("model")), float("inf")))
    return out


def answer_all(results: Results) -> list[tuple[str, str, Answer | None]]:
    """(key, question, answer or None when not run) for every registered question, in order."""
    return [(e.name, e.description, e.factory(results)) for e in QUESTIONS.entries()]
