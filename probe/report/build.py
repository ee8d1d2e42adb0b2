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
from typing import Callable, Sequence, TypeVar

import analyses  # noqa: F401  (registers every analysis' questions and sections)
import probe.experiments  # noqa: F401  (registers the experiment matrix' and the cost question's)
import probe.self_supervised_study  # noqa: F401  (registers the self-supervised study's questions)
from probe.errors import ProbeError, one_line
from probe.io import atomic_write
from probe.registry import Entry
from probe.report.answers import Answer, answer_all
from probe.report.collect import Results, collect_results
from probe.report.document import Section, Table, render_html, render_markdown
from probe.report.sections import SECTIONS, Builder
from probe.roles import BASELINE, UNDER_STUDY, Roles

FORMATS = ("html", "md")
TITLE = "probe report: why does PackNet under-perform DenseDepth?"
SUMMARY_TITLE = "The seed's questions at a glance"


def study_roles(results: Results) -> Roles | None:
    """The roles of a result comparing other models than the seed's, one with baselines first (None: the seed's)."""
    found = [getattr(item.result, "roles", None) for loaded in results.found.values() for item in loaded]
    studies = [r for r in found if isinstance(r, Roles) and r.of(UNDER_STUDY) and not r.seed_comparison]
    return next((r for r in studies if r.of(BASELINE)), studies[0] if studies else None)


def report_title(results: Results) -> tuple[str, str]:
    """(title, summary heading): the seed's for its own comparison, else naming the models under study."""
    roles = study_roles(results)
    if roles is None:
        return TITLE, SUMMARY_TITLE
    against = f" against {roles.phrase(BASELINE)}" if roles.of(BASELINE) else ""
    return f"probe report: {roles.phrase(UNDER_STUDY)}{against}", "The questions at a glance"


T = TypeVar("T")


def build_sections(results: Results) -> tuple[list[Section], list[str]]:
    """(sections with results, one line per section not shown and why)."""
    summary = Section("summary", report_title(results)[1])
    sections, not_run = [summary], []
    named: set[str] = set()  # unreadable files already named by a section's line: one line names each file
    for entry in sorted(SECTIONS.entries(), key=lambda e: e.meta.get("order", 1000)):
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
