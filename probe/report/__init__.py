"""The report generator: run folders in, one self-contained HTML (or Markdown) file out.

>>> from probe.report import build_report
>>> build_report(["runs/study"], "runs/study/report.html")   # doctest: +SKIP

It reads the JSON results only (``probe.report.collect``); every answer comes from a
stated rule (``probe.report.answers``); every section is a registered builder
(``probe.report.sections``) shown only when its results exist, otherwise listed as not run.
"""

from __future__ import annotations

from pathlib import Path

from probe.errors import ProbeError
from probe.io import atomic_write
from probe.report.answers import QUESTIONS, Answer, answer_all  # noqa: F401
from probe.report.collect import Results, collect_results  # noqa: F401
from probe.report.document import Section, Table, render_html, render_markdown
from probe.report.sections import SECTIONS
from probe.report import self_supervised as _self_supervised  # noqa: F401,E402  (registers its questions, sections)

FORMATS = ("html", "md")
TITLE = "probe report: why does PackNet under-perform DenseDepth?"


def build_sections(results: Results) -> tuple[list[Section], list[str]]:
    """(sections with results, descriptions of sections not run)."""
    summary = Section("summary", "The seed's questions at a glance")
    sections, not_run = [summary], []
    for entry in SECTIONS.entries():
        section = entry.factory(results)
        if section is None:
            needs = ", ".join(f"{n}.json" for n in entry.meta.get("needs", ())) or "results"
            not_run.append(f"{entry.description} (needs {needs})")
        else:
            sections.append(section)
    rows = [{"question": question, "answer": answer.verdict, "why": answer.sentence}
            for _, question, answer in answer_all(results) if answer is not None]
    if rows:
        summary.blocks.append(Table(rows, "Each answer is derived by the rule printed in its section"))
    else:
        sections.remove(summary)
    return sections, not_run


def build_report(run_dirs: list[str | Path], out: str | Path, fmt: str = "html") -> Path:
    """Write the report for ``run_dirs`` to ``out`` (atomically) and return its path."""
    if fmt not in FORMATS:
        raise ProbeError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    results = collect_results(list(run_dirs))
    sections, not_run = build_sections(results)
    target = Path(out)
    if fmt == "html":
        atomic_write(target, render_html(TITLE, sections, not_run))
    else:
        fig_dir = target.with_name(target.stem + "_figures")
        atomic_write(target, render_markdown(TITLE, sections, not_run, fig_dir, fig_dir.name))
    return target
