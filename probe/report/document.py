"""A tiny document model (paragraphs, tables, figures, answers) with HTML and Markdown writers.

Sections build blocks; the writers never look at analysis results, so the same
report renders identically in both formats.
"""

from __future__ import annotations

import base64
import html
import io
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from probe.report.answers import Answer


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    rows: list[dict[str, Any]]
    caption: str = ""


@dataclass
class Figure:
    png: bytes
    caption: str
    slug: str


@dataclass
class AnswerBlock:
    answer: Answer


@dataclass
class Notice:
    """A banner the reader must not miss (e.g. "smoke scale: verdicts describe untrained networks")."""

    text: str


Block = Union[Paragraph, Table, Figure, AnswerBlock, Notice]


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)


def figure_from_matplotlib(fig: Any, caption: str, slug: str) -> Figure:
    """Render a matplotlib figure to PNG bytes (closing it) for inlining."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Figure(buf.getvalue(), caption, slug)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,}"
    return "" if value is None else str(value)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols.extend(k for k in row if k not in cols)
    return cols


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2330;line-height:1.45}
h1{border-bottom:3px solid #3b6ea5;padding-bottom:.3em}
h2{margin-top:2em;border-bottom:1px solid #ccd;padding-bottom:.2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef2f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
.answer{border-left:6px solid #888;background:#f6f7f9;padding:.6em 1em;margin:1em 0}
.answer.yes{border-color:#c0392b}.answer.no{border-color:#27ae60}.answer.partly{border-color:#e67e22}
.rule{font-size:.85em;color:#555}.badge{font-weight:bold;text-transform:uppercase}
.notrun{color:#777}
.notice{border:2px solid #c0392b;background:#fdf2f0;padding:.6em 1em;margin:1em 0;font-weight:bold}
"""


def render_html(title: str, sections: list[Section], not_run: list[str]) -> str:
    """A self-contained HTML page: CSS inline, figures as data URIs, no scripts or network."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<nav><ul>",
    ]
    for s in sections:
        out.append(f'<li><a href="#{s.key}">{html.escape(s.title)}</a></li>')
    out.append("</ul></nav>")
    for s in sections:
        out.append(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>')
        for block in s.blocks:
            out.append(_html_block(block))
        out.append("</section>")
    if not_run:
        out.append('<section id="not-run"><h2>Not run</h2><ul class="notrun">')
        out.extend(f"<li>{html.escape(n)}</li>" for n in not_run)
        out.append("</ul></section>")
    out.append("</body></html>")
    return "\n".join(out)


def _html_cell(value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{_cell(value)}</td>' if numeric else f"<td>{html.escape(_cell(value))}</td>"


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Notice):
        return f'<div class="notice">{html.escape(block.text)}</div>'
    if isinstance(block, Table):
        if not block.rows:
            return ""
        cols = _columns(block.rows)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(_html_cell(r.get(c)) for c in cols) + "</tr>" for r in block.rows)
        cap = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        cap = html.escape(block.caption)
        return f'<figure><img src="data:image/png;base64,{data}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
    a = block.answer
    rule = f'<p class="rule">Rule: {html.escape(a.rule)}</p>'
    table = _html_block(Table(a.evidence, "Evidence")) if a.evidence else ""
    return (
        f'<div class="answer {html.escape(a.verdict)}"><p><span class="badge">{html.escape(a.verdict)}</span> '
        f"{html.escape(a.sentence)}</p>{rule}</div>{table}"
    )


def render_markdown(title: str, sections: list[Section], not_run: list[str], figure_dir: Path, link_prefix: str) -> str:
    """Markdown with figures written as PNG files into ``figure_dir`` (linked relatively).

    Every text that comes from results, names or files goes through :func:`md_text`, so a
    Markdown viewer shows it as text: no HTML, link, emphasis, code span, math or table
    structure can be injected through a model name, a run folder or a result string.
    """
    from probe.io import atomic_write

    out = [f"# {md_text(title)}", ""]
    for s in sections:
        out += [f"## {md_text(s.title)}", ""]
        for block in s.blocks:
            if isinstance(block, Paragraph):
                out += [md_text(block.text), ""]
            elif isinstance(block, Notice):
                out += [f"> **{md_text(block.text)}**", ""]
            elif isinstance(block, Table):
                out += _md_table(block.rows, block.caption) + [""]
            elif isinstance(block, Figure):
                name = f"{_slug(s.key)}_{_slug(block.slug)}.png"
                atomic_write(figure_dir / name, block.png)
                link = urllib.parse.quote(f"{link_prefix}/{name}")
                caption = md_text(block.caption)
                out += [f"![{caption}]({link})", "", f"*{caption}*", ""]
            else:
                a = block.answer
                verdict = md_text(a.verdict.upper())
                out += [f"> **{verdict}** {md_text(a.sentence)}", ">", f"> Rule: {md_text(a.rule)}", ""]
                out += _md_table(a.evidence) + [""]
    if not_run:
        out += ["## Not run", ""] + [f"- {md_text(n)}" for n in not_run] + [""]
    return "\n".join(out)


# Characters with an inline meaning in CommonMark / GitHub Markdown (code, emphasis, links, images, raw HTML,
# entities, table cells, math, strikethrough, autolinked URLs): each is backslash-escaped, which CommonMark
# defines for every ASCII punctuation character.
_MD_INLINE = re.compile(r"([\\`*_{}\[\]()<>#!|$~&:])")
# What starts a block at the beginning of a line: a list item, a setext underline or thematic break ("---"), an
# ordered list.
_MD_LINE_START = re.compile(r"^(-(?=-)|[-+]|\d{1,9}(?=[.)]))(?=[-.)]?(\s|$|-))")


def md_text(text: Any) -> str:
    r"""``text`` as one line of inline Markdown that every viewer renders literally.

    Line breaks become spaces (a new line could start a heading, a list, a quote or a code
    block), and every character that Markdown, its HTML or its math would interpret is
    backslash-escaped: ``<script>`` stays visible text, ``$x$`` is not typeset, ``a|b`` does not
    split a table cell.  Digits and dots are left alone, so numbers stay readable.

    >>> print(md_text("<img onerror=alert(1)> | $x$"))
    \<img onerror=alert\(1\)\> \| \$x\$
    """
    line = " ".join(str(text).split())  # every run of whitespace, newlines included, is one space
    line = _MD_INLINE.sub(r"\\\1", line)
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" if m.group(1).isdigit() else "\\" + m.group(1), line)


def _slug(text: str) -> str:
    """A file-name part made of letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text) or "figure"


def _md_table(rows: list[dict[str, Any]], caption: str = "") -> list[str]:
    if not rows:
        return []
    cols = _columns(rows)
    lines = [f"*{md_text(caption)}*", ""] if caption else []
    lines += ["| " + " | ".join(md_text(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(md_text(_cell(r.get(c))) for c in cols) + " |" for r in rows]
    return lines
