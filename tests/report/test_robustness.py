"""Malformed result files: every wrong type, missing key or null is one line naming file and key, never a crash."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from analyses.noise import NoiseResult
from probe.report.build import build_report
from probe.schema import SchemaError
from tests.result_examples import EXAMPLES
from tests.report import fixtures as fx

WRONG = {"a string": "surprise", "an object": {"x": 1}, "a list": [1], "a number": 3.5, "true": True}


def _paths(doc: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every key path of a JSON document (the first two items of each list)."""
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc[:2]):
            yield from _paths(value, (*path, i))


def _render(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _mutated(doc: Any, path: tuple, how: str) -> Any:
    copy = json.loads(json.dumps(doc))
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    if how == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = None if how == "null" else WRONG[how]
    return copy


@pytest.mark.parametrize("cls", sorted(EXAMPLES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_mutation_is_read_or_refused_naming_its_key(cls) -> None:
    doc = EXAMPLES[cls]().to_json()
    tried = refused = 0
    for path in (p for p in _paths(doc) if p and p[0] not in ("analysis", "schema_version")):
        container_is_dict = not isinstance(path[-1], int)
        for how in ("null", "delete", *WRONG) if container_is_dict else ("null", *WRONG):
            tried += 1
            try:
                cls.from_json(_mutated(doc, path, how))
            except SchemaError as exc:
                refused += 1
                message = str(exc)
                assert "\n" not in message
                assert message.startswith(_render(path)), (path, how, message)
    assert refused > tried // 2  # most mutations break the schema; the rest (e.g. null for a number) are valid


def test_a_report_of_unknown_numbers_renders_every_section(tmp_path) -> None:
    """Every number of every result file null (read back as NaN or None): sections show n/a, nothing fails."""
    run = fx.full_run(tmp_path / "run")
    for file in run.rglob("*.json"):
        if file.name != "config.json":
            file.write_text(json.dumps(_nulled(json.loads(file.read_text()))))
    html = build_report([run], tmp_path / "r.html").read_text()
    assert "could not" not in html and "internal error" not in html


def _nulled(doc: Any) -> Any:
    """Floats become null; integers, strings and structure stay (JSON null is how probe writes NaN)."""
    if isinstance(doc, dict):
        return {k: _nulled(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_nulled(v) for v in doc]
    return None if isinstance(doc, float) else doc


def test_report_lists_every_unreadable_file_and_keeps_the_rest(tmp_path) -> None:
    run = fx.full_run(tmp_path / "run")
    (run / "noise.json").write_text(json.dumps({"analysis": "noise", "schema_version": NoiseResult.schema_version}))
    (run / "densedepth" / "train.json").write_text("[]")
    (run / "autoencoder.json").write_text('{"a": ' * 100_000 + "}" * 100_000)
    html = build_report([run], tmp_path / "r.html").read_text()
    not_run = html.split('id="not-run"')[1]
    assert f"{run / 'noise.json'}: models: missing key" in not_run
    assert f"{run / 'densedepth' / 'train.json'}: expected a JSON object" in not_run
    assert f"{run / 'autoencoder.json'}: not valid JSON" in not_run
    assert "<h2>Do PackNet&#x27;s gradients vanish?</h2>" in html and "<h2>The models</h2>" in html
