"""Options declared once: config fields that are also CLI flags, and the one parser of each shared flag.

A config dataclass declares each of its options with :func:`option`: the default,
the help text, the flag (default ``--field-name``) and, for flags given as text, the
parser that turns the text into the field's value.  The CLI builds its options
from these fields (``cli.config_command``), so a default or a help text is written
once, in the config::

    @dataclass
    class NoiseConfig(TrainingRuns):
        small_batch: int = option(2, help="B_small of the noise-scale estimator")

The shared flags (``--device``, ``--seed``, ``--width``, ``--dataset``, ``--data-root``,
``--input-size``, ``--out``) have one constructor each below, so every config spells
them alike; ``--width`` is checked by :func:`probe.limits.check_width` and ``--input-size`` parsed by
:func:`parse_size` (and bounded by :func:`probe.limits.check_input_size`), each in one place with one message.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable

from probe.errors import ProbeError

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX,]\s*(\d+)\s*$")


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    parse: Callable[[Any], Any] | None = None,
    shown: str | None = None,
    argument: bool = False,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field that is also a CLI option (or, with ``argument``, a positional argument).

    ``flag``: the option's names (``"--model"``, ``"--augment/--no-augment"``; default ``--field-name``).
    ``parse``: the flag is given as text and ``parse`` turns it into the field's value (a dict-typed field takes
    the flag repeated, as a list of texts); ``shown`` is the default as the help shows it.
    A field without a default is a required option.
    """
    metadata = {"help": help, "flag": flag, "parse": parse, "shown": shown, "argument": argument}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def is_option(f: dataclasses.Field[Any]) -> bool:
    """Whether a dataclass field was declared with :func:`option`."""
    return "help" in f.metadata


# -- the shared flags -------------------------------------------------------------------------------------


def device_option() -> Any:
    return option("auto", help="auto|cpu|cuda|cuda:N")


def seed_option() -> Any:
    return option(0, help="random seed (0 to 2**63-1)")


def width_option(default: float = 1.0) -> Any:
    return option(default, help="channel multiplier (1.0 = published widths)")


def dataset_option(default: str = "synthetic") -> Any:
    return option(default, help="dataset name (see `probe datasets`)")


def data_root_option() -> Any:
    return option(None, help="folder (or archive) holding the dataset")


def input_size_option(default: tuple[int, int] | None = None, help: str = "") -> Any:
    shown = None if default is None else f"{default[0]}x{default[1]}"
    return option(
        default, parse=parse_size, shown=shown, help=help or "HxW, e.g. 240x320 (default: the dataset protocol's)"
    )


def seeds_option() -> Any:
    return option(
        None,
        parse=parse_seeds,
        help="N (N seeds from --seed on) or a list 0,1,2: one run folder per seed (DIR/seed_S), statistics over seeds",
    )


def out_option(default: Path | None = None) -> Any:
    return option(default, help="run folder: DIR/<analysis>.json, PNG figures, DIR/config.json")


def model_options_option(scoped: bool = False) -> Any:
    """``--model-option KEY=VALUE``; with ``scoped`` (commands naming several models) also ``MODEL:KEY=VALUE``."""
    scope = " for every --model; MODEL:KEY=VALUE for that --model or --baseline only" if scoped else ""
    return option(
        default_factory=dict,
        flag="--model-option",
        parse=parse_model_options,
        help=f"KEY=VALUE model option, repeatable (activation, target, output_scale, ...){scope}",
    )


# -- checks and parsers -----------------------------------------------------------------------------------


def parse_size(text: str, flag: str = "--input-size") -> tuple[int, int]:
    """``"192x640"`` -> ``(192, 640)`` as (H, W).

    >>> parse_size("240x320")
    (240, 320)
    """
    match = _SIZE_RE.match(text)
    if not match:
        raise ProbeError(f"{flag}: expected HxW with positive integers (e.g. 192x640), got {text!r}")
    h, w = int(match.group(1)), int(match.group(2))
    if h <= 0 or w <= 0:
        raise ProbeError(f"{flag}: height and width must be positive, got {text!r}")
    return h, w


def parse_int_tuple(text: str, n: int, flag: str, example: str) -> tuple[int, ...]:
    """``"10,20"`` -> ``(10, 20)``; exactly ``n`` comma-separated non-negative integers."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != n or any(v < 0 for v in values):
        raise ProbeError(f"{flag}: expected {n} comma-separated non-negative integers (e.g. {example}), got {text!r}")
    return values


def parse_seeds(text: str, flag: str = "--seeds") -> int | list[int]:
    """``"3"`` -> 3 (three seeds from ``--seed`` on); ``"0,4,7"`` -> ``[0, 4, 7]`` (a list names them).

    >>> parse_seeds("3"), parse_seeds("0,4,7")
    (3, [0, 4, 7])
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts if p]
    except ValueError:
        values = []
    if not values or (len(parts) == 1 and values[0] < 1) or any(v < 0 for v in values):
        raise ProbeError(f"{flag}: expected a number of seeds (e.g. 3) or a list of seeds (e.g. 0,1,2), got {text!r}")
    return values[0] if len(parts) == 1 else values


def parse_name_list(text: str, flag: str, allowed: list[str]) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, each checked against ``allowed``."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in allowed]
    if not names or bad:
        raise ProbeError(f"{flag}: expected a comma-separated list from {', '.join(allowed)}, got {text!r}")
    return names


def parse_option_value(text: str) -> Any:
    """``"true"`` -> True, ``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"none"`` -> None, else the string."""
    lowered = text.strip().lower()
    literals = {"true": True, "false": False, "none": None, "null": None}
    if lowered in literals:
        return literals[lowered]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text.strip()


def parse_key_values(items: list[str] | tuple[str, ...], flag: str, example: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; an item without ``=`` is an error naming ``flag``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ProbeError(f"{flag}: expected KEY=VALUE (e.g. {example}), got {item!r}")
        options[key.strip()] = parse_option_value(value)
    return options


def parse_model_options(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--model-option`` values: ``["activation=leaky_relu", "skips=false"]`` -> ``{"activation": ...}``.

    >>> parse_model_options(["output_scale=half", "min_depth=0.5"])
    {'output_scale': 'half', 'min_depth': 0.5}
    """
    return parse_key_values(items, "--model-option", "activation=leaky_relu")


def parse_data_options(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--data-option`` values (dataset reader options), e.g. ``["split_file=eigen_test_files.txt"]``."""
    return parse_key_values(items, "--data-option", "split_file=eigen_test_files.txt")


def split_scoped_key(key: str) -> tuple[str | None, str]:
    """``"examples/unet.py:build:max_depth"`` -> ``("examples/unet.py:build", "max_depth")``; ``"skips"``: no scope.

    A model option's own name is a Python identifier, so everything before its last colon names the model.
    """
    scope, sep, name = key.rpartition(":")
    return (scope, name) if sep else (None, key)


def check_model_options(options: dict[str, Any], models: list[str], flag: str = "--model-option") -> None:
    """Each option is ``KEY`` or ``MODEL:KEY`` with MODEL one of ``models`` and KEY a name; else one ProbeError."""
    for key in options:
        scope, name = split_scoped_key(key)
        if not name.isidentifier():
            raise ProbeError(f"{flag} {key}: expected KEY=VALUE or MODEL:KEY=VALUE with KEY a name like max_depth")
        if scope is not None and scope not in models:
            raise ProbeError(
                f"{flag} {key}: {scope!r} is not one of the compared models ({', '.join(models) or 'none'}); "
                "scope an option as MODEL:KEY=VALUE with MODEL exactly as given to --model/--baseline"
            )


def options_for(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """The model options that reach ``model``: every unscoped ``KEY`` and its own ``MODEL:KEY`` (which win).

    >>> options_for("a.py:build", {"skips": False, "a.py:build:max_depth": 20, "densedepth:variant": "keras"})
    {'skips': False, 'max_depth': 20}
    """
    common = {k: v for k, v in options.items() if split_scoped_key(k)[0] is None}
    own = {split_scoped_key(k)[1]: v for k, v in options.items() if split_scoped_key(k)[0] == model}
    return {**common, **own}
