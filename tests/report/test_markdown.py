"""report.md shows every string as text: no HTML, link, emphasis, code span, math or table structure slips through.

Checked by rendering with a CommonMark parser (markdown-it-py, raw HTML enabled as in most viewers).
"""

from __future__ import annotations

import html
import re
import shutil

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from probe.report.build import build_report
from probe.report.document import Paragraph, Section, Table, md_text, render_markdown
from tests import result_examples as ex
from tests.report import fixtures as fx
from tests.report.mutations import PAYLOADS

RENDER = MarkdownIt("commonmark", {"html": True}).enable("table")
TAGS = re.compile(r"<(/?)([a-z0-9]+)[^>]*>")


def _tags(rendered: str) -> set[str]:
    return {m.group(2) for m in TAGS.finditer(rendered)}


def _text(rendered: str) -> str:
    return html.unescape(TAGS.sub("", rendered)).strip()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f")
               | st.sampled_from(["\n", "\t", "<", ">", "`", "|", "$", "*", "_", "[", "]", "&", "\\", "#"]),
               max_size=40))
def test_any_text_renders_as_itself_in_one_paragraph(text) -> None:
    rendered = RENDER.render(md_text(text))
    expected = " ".join(text.split())
    assert _tags(rendered) <= {"p"}, rendered
    assert _text(rendered) == expected


def test_every_payload_renders_as_its_text() -> None:
    for payload in PAYLOADS:
        rendered = RENDER.render(md_text(payload))
        assert _tags(rendered) == {"p"} and _text(rendered) == " ".join(payload.split()), rendered


def test_a_table_cell_with_pipes_and_html_stays_one_cell(tmp_path) -> None:
    rows = [{"model": payload, "value": 1.5} for payload in PAYLOADS]
    section = Section("s", "a <b>title</b> | with | pipes", [Paragraph("1. not a list"), Table(rows, "cap `x`")])
    markdown = render_markdown("t <i>", [section], ["a <script>x</script> line"], tmp_path, "figs")
    rendered = RENDER.render(markdown)
    assert _tags(rendered) <= {"h1", "h2", "p", "em", "table", "thead", "tbody", "tr", "th", "td", "ul", "li"}
    assert rendered.count("<tr>") == len(rows) + 1 and rendered.count("<td>") == 2 * len(rows)
    for payload in PAYLOADS:
        assert html.escape(" ".join(payload.split()), quote=False) in rendered


def test_a_report_of_hostile_names_renders_as_text_with_its_figures(tmp_path) -> None:
    """Model and run-folder names with HTML, Markdown and matplotlib math ($...$) reach report.md and figures."""
    name = "<img src=x onerror=alert(1)> $a_b$ `c` | $\\frac{$"  # the second $...$ is broken math
    run = fx.full_run(tmp_path / "runs" / "run $x$ <b>")
    ex.write(ex.gradients({f"packnet_b {name}": [1e-4, 1e-6, 1e-6, 1.0], "densedepth": [1.0] * 4}), run)
    ex.write(ex.collapse({f"packnet_b {name}": [0.0, 0.0, 0.0, 1.0]}), run)
    shutil.copytree(run / "densedepth", run / f"train {name}")
    out = build_report([run], tmp_path / "report.md", fmt="md")
    markdown = out.read_text()
    rendered = RENDER.render(markdown)
    assert "<img src=x" not in rendered and "<b>" not in rendered and "<script" not in rendered
    assert html.escape(name.strip(), quote=False) in rendered  # shown, as text
    assert "could not" not in markdown and "internal error" not in markdown
    figures = list((tmp_path / "report_figures").glob("*.png"))
    assert any("gradients" in f.name for f in figures) and any("evaluation" in f.name for f in figures)
    html_out = build_report([run], tmp_path / "report.html").read_text()
    assert "<img src=x" not in html_out and "could not" not in html_out
