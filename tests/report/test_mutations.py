"""Random schema mutations of every result file: one line per malformed file, every other section renders.

Each example copies a full run folder, mutates about half of its result files (and config.json)
at a random key (``tests/report/mutations.py``: an object where a number belongs, null, deep
nesting, a 5001-digit number, the wrong type, HTML / Markdown / math payloads) and builds the report
in both formats.  ``bench/reliability.py report`` runs the same check 150 times per file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.report import fixtures as fx
from tests.report import mutations as mx


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return fx.full_run(tmp_path_factory.mktemp("template") / "run")


def _files(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*.json"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_file_is_one_line_naming_it_and_every_other_section_renders(template, tmp_path_factory, data):
    run = tmp_path_factory.mktemp("mutated") / "run"
    shutil.copytree(template, run)
    chosen = data.draw(mx.mutations(_files(run)))
    for mutation in chosen:
        mutation.file = run / mutation.file.relative_to(run)
        mx.apply(mutation)
    outcome = mx.report_of(run, chosen, run.parent / "report_figures")
    assert not outcome.problems, "\n".join([*outcome.problems, *(m.describe() for m in chosen)])


def test_the_contract_check_catches_raw_html_in_markdown(template, tmp_path, monkeypatch):
    """The check above can fail: Markdown that copies a result string raw (as report.md did) is a problem."""
    from probe.report import document

    run = tmp_path / "run"
    shutil.copytree(template, run)
    payload = mx.Mutation(run / "properties.json", ("laws", 0, "statement"), "<img src=x onerror=alert(1)>")
    mx.apply(payload)
    assert not mx.report_of(run, [payload], tmp_path / "figs").problems
    monkeypatch.setattr(document, "md_text", lambda text: str(text))
    assert any(p.startswith("raw '<' in report.md") for p in mx.report_of(run, [payload], tmp_path / "f").problems)


def test_the_contract_check_catches_a_failing_section(template, tmp_path, monkeypatch):
    from probe.report import sections

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a section")

    monkeypatch.setattr(sections, "Table", broken)
    assert any(p.startswith("a section failed") for p in mx.report_of(template, [], tmp_path / "figs").problems)
