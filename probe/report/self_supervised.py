"""The self-supervised study's two questions and their report sections (``probe experiment self-supervised``).

Both rules read ``self_supervised.json`` through its one schema
(:class:`probe.self_supervised_study.SelfSupervisedStudyResult`) and decide from
95 % t-intervals over seeds, never from single runs:

- "Does the velocity loss recover metric scale?": the scale factor
  ``median(gt) / median(pred)`` of the runs trained with the velocity loss on
  clean speeds (:func:`metric_scale_answer`);
- "Does PackNet beat DenseDepth in its own regime?": the per-seed difference of
  median-scaled abs_rel between each PackNet model and DenseDepth, trained
  self-supervised on the same data with the same seeds
  (:func:`packnet_vs_densedepth_answer`).

The verdict functions take the typed result, so the tests feed them made-up
results (positive and negative controls) without training anything.
"""

from __future__ import annotations

import math
from typing import Any

from probe.errors import ProbeError
from probe.report.answers import QUESTIONS, Answer, _fmt, is_packnet
from probe.report.collect import Results
from probe.report.document import AnswerBlock, Paragraph, Section, Table, figure_from_matplotlib
from probe.report.sections import SECTIONS
from probe.self_supervised_study import (METRIC_BAND, NO_VELOCITY_LABEL, ConditionSummary, Interval, NoiseLevel,
                                         SelfSupervisedStudyResult, plot_scale_vs_noise)

SCALE_QUESTION = "Does the velocity loss recover metric scale?"
SCALE_RULE = (
    "Per model, the runs trained with the velocity loss on clean speeds: each run's scale factor is the median over "
    "test images of median(gt) / median(pred); its mean and two-sided 95 % t-interval are taken over seeds. Yes when "
    f"the interval lies within [{METRIC_BAND[0]}, {METRIC_BAND[1]}] (within 10 % of 1), no when it lies entirely "
    "outside that band, inconclusive when it crosses a bound or fewer than two seeds ran. Over models: yes or no when "
    "every model gets it, partly when some get yes and others no, inconclusive otherwise."
)
BEATS_QUESTION = "Does PackNet beat DenseDepth in its own regime?"
BEATS_RULE = (
    "Both models trained self-supervised on the same video with the same seeds. For every condition (velocity loss "
    "or none; clean speeds) both ran, the per-seed difference of median-scaled abs_rel, PackNet minus DenseDepth, and "
    "its 95 % t-interval over the paired seeds. Yes when the interval lies below 0 in every condition, no when it lies "
    "above 0 in every condition, partly when the conditions disagree, inconclusive otherwise: an interval holding 0, "
    "fewer than two paired seeds, or neither model beating the median-scaled constant predictor (then neither has "
    "learnt depth and the comparison says nothing)."
)


def _combine(verdicts: list[str]) -> str:
    if verdicts and all(v == "yes" for v in verdicts):
        return "yes"
    if verdicts and all(v == "no" for v in verdicts):
        return "no"
    return "partly" if "yes" in verdicts and "no" in verdicts else "inconclusive"


def _interval_text(interval: Interval, digits: int = 3) -> str:
    if interval.n >= 2 and math.isfinite(interval.low):
        return f"{_fmt(interval.mean, digits)} [{_fmt(interval.low, digits)}, {_fmt(interval.high, digits)}]"
    return f"{_fmt(interval.mean, digits)} (n={interval.n}, no interval)"


def band_verdict(interval: Interval, band: tuple[float, float] = METRIC_BAND) -> str:
    """yes: the 95 % interval lies inside ``band``; no: entirely outside; inconclusive: crosses it or n < 2."""
    if interval.n < 2 or not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return "inconclusive"
    if band[0] <= interval.low and interval.high <= band[1]:
        return "yes"
    if interval.high < band[0] or interval.low > band[1]:
        return "no"
    return "inconclusive"


def _condition_label(c: ConditionSummary) -> str:
    return f"velocity {c.velocity_weight:g}, {c.noise.label}" if c.velocity_weight > 0 else NO_VELOCITY_LABEL


def metric_scale_answer(result: SelfSupervisedStudyResult) -> Answer:
    """The rule :data:`SCALE_RULE` on ``result`` (see the module docstring)."""
    evidence = [{"model": c.model, "condition": _condition_label(c), "seeds": len(c.seeds),
                 "scale factor, mean [95 % CI]": _interval_text(c.scale_ratio),
                 "images within 10 %": _fmt(c.within_10_percent.mean),
                 "within 10 % of 1": band_verdict(c.scale_ratio) if c.velocity_weight > 0 else "n/a",
                 "PoseNet |t| / distance": _interval_text(c.translation_ratio),
                 "PoseNet t angle, worse source (deg)": _interval_text(c.translation_angle, 2)}
                for c in result.conditions]
    clean = [c for c in result.conditions if c.velocity_weight > 0 and c.noise == NoiseLevel()]
    if not clean:
        return Answer(SCALE_QUESTION, "inconclusive", "Inconclusive: the study trained no model with the velocity loss "
                      "on clean speeds, so the question cannot be answered from it.", SCALE_RULE, evidence)
    verdicts = [band_verdict(c.scale_ratio) for c in clean]
    verdict = _combine(verdicts)
    lead = {"yes": "Yes", "no": "No", "partly": "Partly", "inconclusive": "Inconclusive"}[verdict]
    parts = [f"{c.model} {_interval_text(c.scale_ratio)} over {len(c.seeds)} seed(s) ({v})"
             for c, v in zip(clean, verdicts)]
    sentence = f"{lead}: with the velocity loss on clean speeds the scale factor is " + "; ".join(parts) + "."
    noisy = [c for c in result.conditions if c.velocity_weight > 0 and c.noise != NoiseLevel()]
    if noisy:
        sentence += " Under speed noise: " + "; ".join(f"{c.model} {c.noise.label} {_interval_text(c.scale_ratio)}"
                                                       for c in noisy) + "."
    return Answer(SCALE_QUESTION, verdict, sentence, SCALE_RULE, evidence)


def _paired_differences(result: SelfSupervisedStudyResult, a: str, b: str, weight: float) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per seed both ran (clean speeds, ``weight``): abs_rel differences a - b, a's, b's and the constant's."""
    def runs(model: str) -> dict[int, Any]:
        return {r.seed: r for r in result.runs if r.model == model and r.velocity_weight == weight
                and (weight == 0 or r.noise == NoiseLevel())}

    ra, rb = runs(a), runs(b)
    seeds = sorted(set(ra) & set(rb))
    scaled = {m: [r[s].scale.metrics_median_scaled["abs_rel"] for s in seeds] for m, r in (("a", ra), ("b", rb))}
    constant = [ra[s].scale.constant_median_scaled["abs_rel"] for s in seeds]
    return [x - y for x, y in zip(scaled["a"], scaled["b"])], scaled["a"], scaled["b"], constant


def packnet_vs_densedepth_answer(result: SelfSupervisedStudyResult) -> Answer:
    """The rule :data:`BEATS_RULE` on ``result`` (see the module docstring)."""
    models = list(dict.fromkeys(r.model for r in result.runs))
    packnets = [m for m in models if is_packnet(m)]
    baselines = [m for m in models if "densedepth" in m.lower()]
    weights = sorted({r.velocity_weight for r in result.runs})
    evidence, verdicts, parts = [], [], []
    for p in packnets:
        for d in baselines:
            for weight in weights:
                diffs, pa, da, constant = _paired_differences(result, p, d, weight)
                if not diffs:
                    continue
                interval = Interval.of(diffs)
                floor = Interval.of(constant).mean
                learnt = min(Interval.of(pa).mean, Interval.of(da).mean) < floor
                if interval.n < 2 or not learnt or not math.isfinite(interval.low):
                    verdict = "inconclusive"
                else:
                    verdict = "yes" if interval.high < 0 else "no" if interval.low > 0 else "inconclusive"
                label = NO_VELOCITY_LABEL if weight == 0 else f"velocity {weight:g}, clean"
                verdicts.append(verdict)
                parts.append(f"{p} minus {d}, {label}: {_interval_text(interval)} ({verdict}"
                             + ("" if learnt else ", neither beats the constant predictor") + ")")
                evidence.append({"condition": label, "PackNet": p, "DenseDepth": d, "paired seeds": interval.n,
                                 f"{p} abs_rel (scaled)": _interval_text(Interval.of(pa)),
                                 f"{d} abs_rel (scaled)": _interval_text(Interval.of(da)),
                                 "constant predictor": _fmt(floor),
                                 "difference, mean [95 % CI]": _interval_text(interval), "verdict": verdict})
    if not verdicts:
        return Answer(BEATS_QUESTION, "inconclusive", "Inconclusive: the study did not train both a PackNet model and "
                      "DenseDepth on a common condition, so they cannot be compared.", BEATS_RULE, evidence)
    verdict = _combine(verdicts)
    lead = {"yes": "Yes", "no": "No", "partly": "Partly", "inconclusive": "Inconclusive"}[verdict]
    sentence = (f"{lead}: median-scaled abs_rel differences (negative: PackNet better) are " + "; ".join(parts) + ".")
    return Answer(BEATS_QUESTION, verdict, sentence, BEATS_RULE, evidence)


def study_result(results: Results) -> SelfSupervisedStudyResult | None:
    """The first ``self_supervised.json`` read through its dataclass (None when the study was not run)."""
    found = results.all("self_supervised")
    if not found:
        return None
    try:
        return SelfSupervisedStudyResult.from_json(found[0].data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProbeError(f"{found[0].path}: not a self-supervised study result ({type(exc).__name__}: {exc})") from None


@QUESTIONS.register("self_supervised_scale", description=SCALE_QUESTION, order=60)
def velocity_gives_metric_scale(results: Results) -> Answer | None:
    result = study_result(results)
    return None if result is None else metric_scale_answer(result)


@QUESTIONS.register("self_supervised_models", description=BEATS_QUESTION, order=61)
def packnet_beats_densedepth(results: Results) -> Answer | None:
    result = study_result(results)
    return None if result is None else packnet_vs_densedepth_answer(result)


def _conditions_table(result: SelfSupervisedStudyResult) -> Table:
    rows = [{"model": c.model, "condition": _condition_label(c), "seeds": ",".join(str(s) for s in c.seeds),
             "scale factor": _interval_text(c.scale_ratio), "abs_rel, metric": _interval_text(c.abs_rel_metric),
             "abs_rel, median-scaled": _interval_text(c.abs_rel_median_scaled),
             "delta1, median-scaled": _interval_text(c.delta1_median_scaled),
             "constant predictor abs_rel": _interval_text(c.constant_abs_rel),
             "PoseNet |t| / distance": _interval_text(c.translation_ratio),
             "PoseNet t angle (deg)": _interval_text(c.translation_angle, 2)} for c in result.conditions]
    return Table(rows, "self_supervised.json: mean [95 % t-interval] over seeds per condition")


@SECTIONS.register("self_supervised_scale", description=SCALE_QUESTION, needs=("self_supervised",), order=80)
def scale_section(results: Results) -> Section | None:
    result = study_result(results)
    if result is None:
        return None
    blocks: list[Any] = [AnswerBlock(metric_scale_answer(result))]
    if result.runs:
        blocks.append(figure_from_matplotlib(plot_scale_vs_noise(result), "Scale factor per velocity-noise level "
                                             "(dots: seeds; diamonds: mean and 95 % t-interval; band: within 10 % "
                                             "of 1)", "scale_noise"))
    blocks.append(Paragraph("Noise acts on the reported speed of the training split only; every run is scored on "
                            "the clean test split. Without the velocity loss nothing ties depth to metres, so its "
                            "scale factor is shown for contrast. The velocity loss fixes the length of PoseNet's "
                            "translation; the depth follows it only where the translation also points the right way "
                            "(the angle column: the worse of the source frames, median over test windows)."))
    blocks.append(_conditions_table(result))
    return Section("self_supervised_scale", SCALE_QUESTION, blocks)


@SECTIONS.register("self_supervised_models", description=BEATS_QUESTION, needs=("self_supervised",), order=81)
def models_section(results: Results) -> Section | None:
    result = study_result(results)
    if result is None:
        return None
    cfg = result.config
    budget = (f"Budget per run: {cfg.get('max_steps') or cfg.get('epochs')} "
              f"{'steps' if cfg.get('max_steps') else 'epoch(s)'}, batch {cfg.get('batch_size')}, width "
              f"{cfg.get('width')}, input {cfg.get('input_size') or 'the dataset default'}, on {cfg.get('dataset')}.")
    runs = [{"run": r.id, "params": r.params, "steps": r.steps, "reprojection first -> last":
             f"{_fmt(r.reprojection_first, 4)} -> {_fmt(r.reprojection_last, 4)}",
             "abs_rel, median-scaled": r.scale.metrics_median_scaled["abs_rel"],
             "constant predictor": r.scale.constant_median_scaled["abs_rel"], "scale factor": r.scale.ratio["median"]}
            for r in result.runs]
    return Section("self_supervised_models", BEATS_QUESTION,
                   [AnswerBlock(packnet_vs_densedepth_answer(result)), Paragraph(budget),
                    Table(runs, "every run of self_supervised.json")])
