"""One schema per result file: every Result class survives JSON, and bad JSON is one line naming file and key."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

import analyses  # noqa: F401  (every analysis registers its result class)
import probe.experiments  # noqa: F401
import probe.study  # noqa: F401
from probe.errors import ProbeError
from probe.results import RESULTS, Result
from probe.schema import SchemaError, decode, json_fields, transient
from tests.result_examples import EXAMPLES, write


def _all_result_classes() -> list[type[Result]]:
    found, todo = [], list(Result.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN, over the JSON fields of dataclasses (transient ones are not stored)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in json_fields(a))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def test_every_result_class_has_an_example() -> None:
    assert set(_all_result_classes()) == set(EXAMPLES)
    for entry in RESULTS.entries():
        assert entry.name == entry.factory.name


@pytest.mark.parametrize("cls", sorted(EXAMPLES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_to_json_write_read_from_json_gives_the_same_result(cls: type[Result], tmp_path: Path) -> None:
    original = EXAMPLES[cls]()
    path = write(original, tmp_path)
    assert path.name == f"{cls.name}.json"
    loaded = cls.read(path)
    assert type(loaded) is cls and same(loaded, original)
    assert loaded.to_json() == json.loads(path.read_text())


def test_same_notices_a_difference() -> None:
    result = EXAMPLES[EXAMPLES.__iter__().__next__()]()
    other = EXAMPLES[EXAMPLES.__iter__().__next__()]()
    assert same(result, other)
    other.models[0].name = "renamed"  # type: ignore[attr-defined]
    assert not same(result, other)


@dataclasses.dataclass
class _Inner:
    value: float
    count: int | None


@dataclasses.dataclass
class _Outer:
    name: str
    size: tuple[int, int]
    inner: list[_Inner]
    scores: dict[str, float]
    figure: Any = transient()


def test_decode_reads_nulls_as_the_annotation_says() -> None:
    got = decode(_Outer, {"name": "a", "size": [1, 2], "inner": [{"value": None, "count": None}], "scores": {}})
    assert math.isnan(got.inner[0].value) and got.inner[0].count is None and got.size == (1, 2)
    assert got.figure is None


@pytest.mark.parametrize("data, message", [
    ({"name": 1, "size": [1, 2], "inner": [], "scores": {}}, "name: expected a string, got an integer"),
    ({"name": "a", "size": [1], "inner": [], "scores": {}}, "size: expected a list of 2 values, got 1"),
    ({"name": "a", "size": [1, 2], "inner": [{"value": "x", "count": 1}], "scores": {}},
     "inner[0].value: expected a number, got a string"),
    ({"name": "a", "size": [1, 2], "inner": [{"value": 1.0}], "scores": {}}, "inner[0].count: missing key"),
    ({"name": "a", "size": [1, 2], "inner": [], "scores": {"x": True}},
     "scores.x: expected a number, got true or false"),
    ({"name": "a", "size": [1, 2], "inner": [], "scores": {}, "extra": 1}, "extra: unexpected key"),
    ({"name": "a", "size": [1, 2], "inner": None, "scores": {}}, "inner: expected a list of objects (_Inner)"),
    ([], "value: expected an object (_Outer), got a list"),
])
def test_decode_names_the_key_that_does_not_match(data: Any, message: str) -> None:
    with pytest.raises(SchemaError) as error:
        decode(_Outer, data)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_wrong_schema_version_or_file_kind_is_refused(tmp_path: Path) -> None:
    cls = next(iter(EXAMPLES))
    doc = EXAMPLES[cls]().to_json()
    with pytest.raises(ProbeError, match=f"schema_version: this probe reads version {cls.schema_version}"):
        cls.from_json({**doc, "schema_version": 99})
    with pytest.raises(ProbeError, match="analysis: expected"):
        cls.from_json({**doc, "analysis": "something else"})
    path = tmp_path / f"{cls.name}.json"
    path.write_text(json.dumps({**doc, "models": "none"}))
    with pytest.raises(ProbeError, match=rf"^{path}: models: expected a list"):
        cls.read(path)
