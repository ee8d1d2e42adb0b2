"""Dataclasses <-> JSON, checked against the field annotations: the one schema of every result file.

A result file is written and read by the same dataclass.  :func:`encode` turns a
dataclass into plain JSON (non-finite floats become ``null``, tuples lists, paths
strings); :func:`decode` rebuilds the dataclass from JSON by its field annotations
and refuses anything else with one line naming the key::

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Layer:
    ...     name: str
    ...     grad_norm: list[float]
    >>> decode(Layer, {"name": "conv1", "grad_norm": [1.0, None]})
    Layer(name='conv1', grad_norm=[1.0, nan])
    >>> decode(Layer, {"name": "conv1", "grad_norm": "big"})
    Traceback (most recent call last):
    ...
    probe.schema.SchemaError: grad_norm: expected a list of numbers, got a string

Supported annotations: ``int``, ``float``, ``str``, ``bool``, ``None``, ``Any``,
``Path``, ``Literal[...]``, ``X | None`` (and other unions), ``list[X]``,
``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]`` and nested dataclasses.
A ``float`` field reads ``null`` as NaN (JSON has no NaN: it was written as
``null``); a ``float | None`` field reads it as ``None``.  Every key a dataclass
declares must be present and no other key may be: a renamed key is an error,
never a silently empty value.  Fields made with :func:`transient` (tensors and
arrays kept only for figures) are neither written nor read.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

from probe.errors import ProbeError

T = TypeVar("T")

_JSON = "json"
_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number", type(None): "null"}


class SchemaError(ProbeError):
    """A JSON value does not match the dataclass field it is read into (message: ``key: expected ..., got ...``)."""


def transient(**kwargs: Any) -> Any:
    """A dataclass field kept in memory only (figure data): not written, not read, not compared."""
    return dataclasses.field(default=None, compare=False, repr=False, metadata={_JSON: False}, **kwargs)


def json_fields(cls_or_obj: Any) -> list[dataclasses.Field[Any]]:
    """The fields of a dataclass that go to JSON (all but :func:`transient` ones), in order."""
    return [f for f in dataclasses.fields(cls_or_obj) if f.metadata.get(_JSON, True)]


# -- writing --------------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """A dataclass (or any value inside one) as plain JSON types.

    Non-finite floats become ``None``; tuples and sets lists; paths strings; numpy and
    torch scalars plain numbers.  :func:`transient` fields are left out.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in json_fields(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [encode(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "tolist", None) or getattr(value, "item", None)  # numpy / torch, not imported here
    if callable(item):
        return encode(item())
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


# -- reading --------------------------------------------------------------------------------------


def decode(annotation: Any, value: Any, where: str = "") -> Any:
    """``value`` (parsed JSON) read as ``annotation``; a mismatch raises :class:`SchemaError` naming ``where``."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        return _decode_union(typing.get_args(annotation), value, where, annotation)
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            _fail(where, annotation, value)
        return value
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        if not isinstance(value, list):
            _fail(where, annotation, value)
        return [decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        return _decode_tuple(annotation, value, where)
    if origin is dict:
        _, item = typing.get_args(annotation) or (str, Any)
        if not isinstance(value, dict):
            _fail(where, annotation, value)
        return {k: decode(item, v, _join(where, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return _decode_dataclass(annotation, value, where)
    return _decode_leaf(annotation, value, where)


def _decode_leaf(annotation: Any, value: Any, where: str) -> Any:
    if annotation is float:
        if value is None:
            return math.nan  # written from a non-finite float
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is bool or annotation is str:
        if isinstance(value, annotation):
            return value
    elif annotation is Path:
        if isinstance(value, str):
            return Path(value)
    elif annotation is type(None) or annotation is None:
        if value is None:
            return None
    else:
        raise TypeError(f"{where or 'value'}: probe.schema cannot read the annotation {annotation!r}")
    _fail(where, annotation, value)


def _decode_union(options: tuple[Any, ...], value: Any, where: str, annotation: Any) -> Any:
    if value is None:
        if type(None) in options:
            return None
        if float in options:
            return math.nan
        _fail(where, annotation, value)
    for option in (o for o in options if o is not type(None)):
        try:
            return decode(option, value, where)
        except SchemaError:
            if _shape_matches(option, value):  # the right kind of value with a wrong part: report that part
                raise
    _fail(where, annotation, value)


def _shape_matches(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if dataclasses.is_dataclass(origin) or origin is dict:
        return isinstance(value, dict)
    return origin in (list, tuple) and isinstance(value, list)


def _decode_tuple(annotation: Any, value: Any, where: str) -> tuple[Any, ...]:
    args = typing.get_args(annotation)
    if not isinstance(value, list):
        _fail(where, annotation, value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise SchemaError(f"{where or 'value'}: expected a list of {len(args)} values, got {len(value)}")
    return tuple(decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))


def _decode_dataclass(cls: type[T], value: Any, where: str) -> T:
    if not isinstance(value, dict):
        _fail(where, cls, value)
    hints = _hints(cls)
    declared = json_fields(cls)
    names = {f.name for f in declared}
    unexpected = sorted(k for k in value if k not in names)
    if unexpected:
        raise SchemaError(f"{_join(where, unexpected[0])}: unexpected key (this {cls.__name__} has no such field)")
    missing = [f.name for f in declared if f.name not in value]
    if missing:
        raise SchemaError(f"{_join(where, missing[0])}: missing key (expected {_describe(hints[missing[0]])})")
    values = {f.name: decode(hints[f.name], value[f.name], _join(where, f.name)) for f in declared}
    return cls(**values)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


# -- messages -------------------------------------------------------------------------------------


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _fail(where: str, annotation: Any, value: Any) -> typing.NoReturn:
    raise SchemaError(f"{where or 'value'}: expected {_describe(annotation)}, got {_json_kind(value)}")


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return _NAMES.get(type(value), type(value).__name__)


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return "any value"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return f"a list of {_plural(args[0]) if args else 'values'}"
    if origin is tuple:
        return f"a list of {len(args)} values"
    if origin is dict:
        return f"an object of {_plural(args[1])}" if args else "an object"
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return f"an object ({annotation.__name__})"
    if annotation is Path:
        return "a path"
    return _NAMES.get(annotation, repr(annotation))


def _plural(annotation: Any) -> str:
    plurals = {
        float: "numbers",
        int: "integers",
        str: "strings",
        bool: "booleans",
        Any: "values",
        type(None): "nulls",
        Path: "paths",
    }
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return " or ".join(_plural(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return f"objects ({annotation.__name__})"
    if typing.get_origin(annotation) in (list, tuple):
        return "lists"
    if typing.get_origin(annotation) is dict:
        return "objects"
    return plurals.get(annotation, _describe(annotation))


# -- documentation ----------------------------------------------------------------------------------------


def type_name(annotation: Any) -> str:
    """A short name for a field type: ``int``, ``[float]``, ``{str: any}``, ``(int, int)``, ``float | null``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return "any"
    if annotation is type(None) or annotation is None:
        return "null"
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is list:
        return f"[{type_name(args[0]) if args else 'any'}]"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"[{type_name(args[0])}]"
        return "(" + ", ".join(type_name(a) for a in args) + ")"
    if origin is dict:
        return "{str: " + (type_name(args[1]) if args else "any") + "}"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", repr(annotation))


def schema_classes(cls: type) -> list[type]:
    """``cls`` and every dataclass its JSON fields contain, depth first, each once."""
    seen: list[type] = []

    def visit(annotation: Any) -> None:
        if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
            if annotation in seen:
                return
            seen.append(annotation)
            hints = _hints(annotation)
            for f in json_fields(annotation):
                visit(hints[f.name])
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(cls)
    return seen


def describe(cls: type) -> list[str]:
    """One line per dataclass of ``cls``'s schema: ``Name: field type, field type, ...`` (the JSON keys in order)."""
    return [
        f"{c.__name__}: " + ", ".join(f"{f.name} {type_name(_hints(c)[f.name])}" for f in json_fields(c))
        for c in schema_classes(cls)
    ]
