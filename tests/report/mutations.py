"""Random schema mutations of the result files of a run folder, and what a report of them must show.

A mutation replaces the value at one key path of one JSON file (or deletes the key) by what a
hostile or damaged file holds: an object where a number belongs, ``null``, nesting 100 or
100,000 levels deep, a 5,001-digit number, a huge float, the wrong type, or a string payload
for Markdown, HTML and matplotlib (``<script>``, ``<img onerror=...>``, backticks, pipes,
newlines, ``$...$``).  Shared by ``tests/report/test_mutations.py`` (a few examples) and
``bench/reliability.py report`` (150 per file).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from hypothesis import strategies as st

from probe.report.build import report_contents
from probe.report.collect import collect_results
from probe.report.document import render_html, render_markdown
from probe.report.sections import SECTIONS

BIG_INT = "1" + "0" * 5000
DEEP = "[" * 100_000 + "]" * 100_000
_BIG_MARK, _DEEP_MARK = "\u0000big-int\u0000", "\u0000deep\u0000"

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "`code` and ``more``",
    "a | b | c",
    "line one\n# heading\n- item\n<b>bold</b>",
    "$x$ and $\\frac{1}{0}$ and $unbalanced",
    "[link](javascript:alert(1))",
    "**strong** _em_ ~~gone~~",
]

def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


POOL: list[Any] = [
    {"x": 1},  # an object where a number (or anything else) belongs
    None,
    _nested(100),
    _DEEP_MARK,
    _BIG_MARK,
    *PAYLOADS,
    "",
    [],
    [1],
    ["a"],
    {},
    True,
    False,
    1e308,
    -1e308,
    0.0,
    -1.0,
    3.5,
    0,
    -1,
    10**30,
    2**63,
    "<delete>",
]
REPLACEMENTS = st.one_of(st.sampled_from(POOL), st.text(max_size=12))


@dataclass
class Mutation:
    file: Path
    path: tuple[Any, ...]
    value: Any

    def describe(self) -> str:
        return f"{self.file.name}:{render_path(self.path)} <- {str(self.value)[:40]!r}"


def key_paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a JSON document (items of a list: the first two and the last)."""
    if path:
        yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from key_paths(value, (*path, key))
    elif isinstance(doc, list):
        for i in sorted({0, 1, len(doc) - 1} & set(range(len(doc)))):
            yield from key_paths(doc[i], (*path, i))


def render_path(path: tuple[Any, ...]) -> str:
    """``("models", 0, "name")`` -> ``models[0].name``: how probe's schema errors name a key."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def mutations(files: list[Path]) -> st.SearchStrategy[list[Mutation]]:
    """For each file, maybe (one chance in two) one mutation at a random key path."""

    @st.composite
    def draw(draw_: Any) -> list[Mutation]:
        chosen = []
        for file in files:
            if not draw_(st.booleans()):
                continue
            doc = json.loads(file.read_text())
            paths = [p for p in key_paths(doc) if p[0] not in ("analysis", "schema_version")]
            path = draw_(st.sampled_from(paths))
            value = draw_(REPLACEMENTS)
            if value == "<delete>" and isinstance(path[-1], int):
                value = None
            chosen.append(Mutation(file, path, value))
        return chosen

    return draw()


def random_mutations(files: list[Path], rng: random.Random, share: float = 0.5) -> list[Mutation]:
    """:func:`mutations` drawn with ``rng`` instead of Hypothesis (the benchmark counts outcomes, never shrinks)."""
    chosen = []
    for file in files:
        if rng.random() >= share:
            continue
        doc = json.loads(file.read_text())
        path = rng.choice([p for p in key_paths(doc) if p[0] not in ("analysis", "schema_version")])
        value = rng.choice(POOL) if rng.random() < 0.9 else "".join(rng.choice("ab$<|`_*\n") for _ in range(6))
        chosen.append(Mutation(file, path, None if value == "<delete>" and isinstance(path[-1], int) else value))
    return chosen


def apply(mutation: Mutation) -> None:
    doc = json.loads(mutation.file.read_text())
    parent = doc
    for part in mutation.path[:-1]:
        parent = parent[part]
    if mutation.value == "<delete>":
        del parent[mutation.path[-1]]
    else:
        parent[mutation.path[-1]] = mutation.value
    text = json.dumps(doc, indent=1)
    text = text.replace(json.dumps(_BIG_MARK), BIG_INT).replace(json.dumps(_DEEP_MARK), DEEP)
    mutation.file.write_text(text)


_UNESCAPED_LT = re.compile(r"(?<!\\)<")


@dataclass
class Outcome:
    html: str
    markdown: str
    sections: list[str]  # keys of the sections shown
    not_run: list[str]
    problems: list[str]  # what breaks the contract (empty: the report held)


def report_of(run: Path, mutated: list[Mutation], figure_dir: Path) -> Outcome:
    """Build the report of ``run`` (both formats) and list every way it breaks the contract.

    The contract: each mutated file is named on at most one line, and that line names the key
    (or says why the file is not JSON); no line reports a section that failed or an internal
    error; every section whose results were read is shown; no raw HTML reaches the Markdown.
    """
    results = collect_results([run])
    sections, not_run = report_contents(results)
    html = render_html("report", sections, not_run)
    markdown = render_markdown("report", sections, not_run, figure_dir, figure_dir.name)
    problems = []
    for m in mutated:
        lines = [line for line in not_run if str(m.file) in line]
        if len(lines) > 1:
            problems.append(f"{m.describe()}: {len(lines)} lines name the file: {lines}")
        parent = render_path(m.path[:-1]) if len(m.path) > 1 else str(m.path[-1])
        for line in lines:
            if parent not in line and "not valid JSON" not in line:
                problems.append(f"{m.describe()}: the line does not name the key {parent!r}: {line}")
    for line in not_run:
        if "could not be built" in line or "internal error" in line:
            problems.append(f"a section failed: {line}")
    shown = {s.key for s in sections}
    for entry in SECTIONS.entries():
        needs = entry.meta.get("needs", ())
        read = not needs or any(results.has(cls.name) for cls in needs)
        if read and entry.name not in shown and not any(entry.description in line for line in not_run):
            problems.append(f"section {entry.name} was read but neither shown nor listed")
    raw_tag = _UNESCAPED_LT.search(markdown)
    if raw_tag:
        problems.append(f"raw '<' in report.md near {markdown[raw_tag.start():][:60]!r}")
    for raw in ("<script", "<img src=x"):  # the payloads; probe's own figures are <img src="data:...
        if raw in html:
            problems.append(f"raw {raw!r} in the HTML")
    return Outcome(html, markdown, sorted(shown), not_run, problems)
