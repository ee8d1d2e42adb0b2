"""Build the report: run folders in, one self-contained HTML (or Markdown) file out.

>>> from probe.report.build import build_report
>>> build_report(["runs/study"], "runs/study/report.html")   # doctest: +SKIP

This module is orchestration: it imports every module that registers a question or
a section (the analyses and the experiment matrix), then reads the result files
(:mod:`probe.report.collect`), answers every registered question and builds every
registered section in order.  A section whose results are missing is listed under
"Not run"; one whose files cannot be read, or that fails, is listed with the one-line
reason while the other sections still render.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import analyses  # noqa: F401  (registers every analysis' questions and sections)
import probe.experiments  # noqa: F401  (registers the experiment matrix' and the cost question's)
import probe.self_supervised_study  # noqa: F401  (registers the self-supervised study's questions)
from probe.errors import ProbeError, one_line
from probe.io import atomic_write
from probe.registry import Entry
from probe.report.answers import Answer, answer_all
from probe.report.collect import Results, collect_results
from probe.report.document import Block, Notice, Paragraph, Section, Table, render_html, render_markdown
from probe.report.sections import SECTIONS, Builder
from probe.roles import BASELINE, UNDER_STUDY, Roles

FORMATS = ("html", "md")
TITLE = "probe report: why does PackNet under-perform DenseDepth?"
SUMMARY_TITLE = "The seed's questions at a glance"


def study_roles(results: Results) -> Roles | None:
    """The roles of a result comparing other models than the seed's, one with baselines first (None: the seed's)."""
    found = [getattr(item.result, "roles", None) for loaded in results.found.values() for item in loaded]
    subjects = [r for r in found if isinstance(r, Roles) and r.of(UNDER_STUDY)]
    # Comparing results decide: a single model's probe inside one training run of the study (its own
    # gradients.json, say) names that model "under study" but compares nothing.
    comparing = [r for r in subjects if r.of(BASELINE)]
    if comparing:
        return next((r for r in comparing if not r.seed_comparison), None)
    if any(r.seed_comparison for r in subjects):
        return None
    return subjects[0] if subjects else None


def report_title(results: Results) -> tuple[str, str]:
    """(title, summary heading): the seed's for its own comparison, else naming the models under study."""
    roles = study_roles(results)
    if roles is None:
        return TITLE, SUMMARY_TITLE
    against = f" against {roles.phrase(BASELINE)}" if roles.of(BASELINE) else ""
    return f"probe report: {roles.phrase(UNDER_STUDY)}{against}", "The questions at a glance"


T = TypeVar("T")


# -- the regime: where the numbers come from (the report's first section) ------------------------

SMOKE_BANNER = "Smoke scale: verdicts describe untrained networks."


def _size(size: Any) -> str:
    return f"{size[0]}x{size[1]}" if size else "the dataset protocol's"


def regime_section(results: Results) -> Section:
    """The regime every number comes from: the study's budget, widths, input size, steps, dataset, seeds and device
    as its ``config.json`` recorded them; a smoke-scale budget gets a banner saying its verdicts describe untrained
    networks.  Without a study record, the experiment matrix's config, else a line saying the regime is unknown."""
    study = next((records["study"] for _, records in results.records if "study" in records), None)
    if study is not None and isinstance(study.config.get("budget"), dict):
        return _study_regime(study)
    doc = results.first(probe.experiments.SeedStudyResult)
    if doc is not None:
        c = doc.config
        steps = f"{c.max_steps:,} steps" if c.max_steps is not None else f"{c.epochs} epoch(s)"
        rows = [
            {
                "budget": "not a study (probe experiment seed-study)",
                "width": c.width,
                "input size": _size(c.input_size),
                "steps": steps,
                "batch, lr": f"{c.batch_size}, {c.lr:g}",
                "dataset": c.dataset,
                "seeds": ", ".join(str(r.seed) for r in doc.experiments[0].runs) if doc.experiments else "",
                "device": c.device,
            }
        ]
        return Section("regime", "Regime: where these numbers come from", [Table(rows, "experiments.json config")])
    text = (
        "These folders hold no probe study record (config.json of `probe study`): each section states the "
        "settings of its own analysis."
    )
    return Section("regime", "Regime: where these numbers come from", [Paragraph(text)])


def _study_regime(study: Any) -> Section:
    config, prov = study.config, study.provenance
    b = config["budget"]
    device = prov.device or config.get("device", "?")
    kind = "GPU" if str(device).startswith("cuda") else "CPU"
    host = config.get("host") or {}
    cores = f", {host['cpu_count']} CPU cores" if host.get("cpu_count") else ""
    steps = "one epoch" if b.get("experiment_steps") is None else f"{b['experiment_steps']:,} steps"
    seeds = config.get("seed_list") or []
    row = {
        "budget": b.get("name", "?"),
        "widths": f"{b['width']:g} (autoencoders: "
        + ", ".join(f"{a} {w:g}" for a, w in b.get("autoencoder_runs", []))
        + ")",
        "input size": f"{_size(b.get('input_size'))} (autoencoders {_size(b.get('autoencoder_input'))})",
        "steps": f"{steps} per experiment ({_fit_steps(b)}autoencoders: {b.get('autoencoder_steps', '?'):,})",
        "batch, lr": f"{b.get('batch_size')}, {b.get('lr', 0):g}",
        "loss scales": b.get("loss_scales", "?"),
        "dataset": config.get("dataset", "?"),
        "seeds": ", ".join(map(str, seeds)),
        "device": f"{prov.device_name or device} ({kind}{cores})",
        "runs side by side": config.get("parallel_runs", 1),
    }
    blocks: list[Block] = [Notice(SMOKE_BANNER)] if b.get("smoke") else []
    blocks += [
        Paragraph(f"Budget {b.get('name')}: {b.get('purpose', '')}."),
        Table([row], "the study's config.json (probe study)"),
    ]
    return Section("regime", "Regime: where these numbers come from", blocks)


def _fit_steps(b: dict[str, Any]) -> str:
    """The fit step's size, "fit: S on N images; " (empty for a study recorded before the step existed)."""
    if b.get("fit_steps") is None or not b.get("fit_images"):
        return ""
    images = ", ".join(str(n) for n in b["fit_images"])
    return f"fit: {b['fit_steps']:,} on the first {images} training images; "


def build_sections(results: Results) -> tuple[list[Section], list[str]]:
    """(sections with results, one line per section not shown and why)."""
    summary = Section("summary", report_title(results)[1])
    regime, failure = _guarded(regime_section, results, "regime")
    sections, not_run = [*([regime] if regime else []), summary], [failure] if failure else []
    named: set[str] = set()  # unreadable files already named by a section's line: one line names each file
    for entry in sorted(SECTIONS.entries(), key=lambda e: e.meta.get("order", 1000)):
        if _optional_and_absent(entry, results):
            continue
        reason = _missing(entry, results, named)
        section = None
        if reason is None:
            section, reason = _guarded(entry.factory, results, entry.description)
        if section is not None:
            sections.append(section)
        else:
            not_run.append(reason or f"{entry.description} (its results hold nothing to show)")
    answers, failures = _guarded(answer_all, results, "summary")
    rows = [
        {"question": answer.question or question, "answer": answer.verdict, "why": answer.sentence}
        for _, question, answer in (answers or [])
        if answer is not None
    ]
    if rows:
        summary.blocks.append(Table(rows, "Each answer is derived by the rule printed in its section"))
    else:
        sections.remove(summary)
    return sections, not_run + ([failures] if failures else [])


def _optional_and_absent(entry: Entry[Builder], results: Results) -> bool:
    """A section registered ``optional=True`` (an experiment outside `probe study`'s steps) whose result files are
    neither found nor unreadable: left out of the report, not listed under "Not run"."""
    needs = entry.meta.get("needs", ())
    return bool(entry.meta.get("optional")) and not any(results.has(c.name) or results.errors(c.name) for c in needs)


def _missing(entry: Entry[Builder], results: Results, named: set[str]) -> str | None:
    """Why a section cannot be built from ``results`` (None when at least one result it needs was read).

    A file that could not be read is named with its error once; a later section needing the same
    file (one result answering two questions) points back to that line.
    """
    needs = entry.meta.get("needs", ())
    if not needs or any(results.has(cls.name) for cls in needs):
        return None
    errors = [line for cls in needs for line in results.errors(cls.name)]
    if errors and errors[0] in named:
        return f"{entry.description} (could not read {', '.join(f'{cls.name}.json' for cls in needs)}: see above)"
    if errors:
        named.add(errors[0])
        return f"{entry.description} (could not read: {errors[0]})"
    return f"{entry.description} (needs {', '.join(f'{cls.name}.json' for cls in needs)})"


def _guarded(build: Callable[[Results], T], results: Results, what: str) -> tuple[T | None, str | None]:
    """Run one builder on ``results``; a failure costs its own section only (PROBE_DEBUG=1 re-raises it)."""
    try:
        return build(results), None
    except ProbeError as exc:
        return None, f"{what} (could not be built: {one_line(exc)})"
    except Exception as exc:  # a bug or a value no rule foresaw: keep the rest of the report
        if os.environ.get("PROBE_DEBUG"):
            raise
        return None, f"{what} (could not be built: internal error: {type(exc).__name__}: {one_line(exc)})"


def report_contents(results: Results) -> tuple[list[Section], list[str]]:
    """The sections to show and every "Not run" line: sections not shown, then files no section named."""
    sections, not_run = build_sections(results)
    not_run += [
        f"could not read {line}"
        for lines in results.unreadable.values()
        for line in lines
        if not any(line in reason for reason in not_run)
    ]
    return sections, not_run


def build_report(run_dirs: Sequence[str | Path], out: str | Path, fmt: str = "html") -> Path:
    """Write the report for ``run_dirs`` to ``out`` (atomically) and return its path."""
    if fmt not in FORMATS:
        raise ProbeError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    results = collect_results(list(run_dirs))
    sections, not_run = report_contents(results)
    target = Path(out)
    title = report_title(results)[0]
    if fmt == "html":
        atomic_write(target, render_html(title, sections, not_run))
    else:
        fig_dir = target.with_name(target.stem + "_figures")
        atomic_write(target, render_markdown(title, sections, not_run, fig_dir, fig_dir.name))
    return target


__all__ = ["FORMATS", "TITLE", "Answer", "build_report", "build_sections", "report_contents", "report_title"]
