"""Model SPECs: how ``--model`` names a network that is not in the zoo.

A SPEC is one of (tried in this order):

==================================  ===============================================================
SPEC                                meaning
==================================  ===============================================================
``packnet_b``                       a zoo name (:func:`probe.models.list_models`)
``my_unet``                         a name an installed package registers in the entry-point
                                    group ``probe.models`` (``probe models`` lists them)
``mypkg.nets:build_unet``           ``module:attribute`` of an importable module; the attribute
                                    may be dotted (``mypkg.nets:Zoo.unet``) and is any callable
                                    returning an ``nn.Module`` (a class works)
``path/to/my_unet.py:build``        a Python file outside any package (relative to the current
                                    folder), imported under a private module name
==================================  ===============================================================

Importing a module or a file runs its code: that is how a user brings a model,
so SPECs name code the user trusts.  A file is imported once per process, as
``probe_user_model_<hash of its path>``, with its own folder on ``sys.path``
only while it is being imported (so ``import blocks`` next to it works) and
removed again afterwards.

>>> resolve_spec("packnet_b").kind
'zoo'
>>> resolve_spec("examples/unet.py:build").kind, resolve_spec("examples/unet.py:build").name   # doctest: +SKIP
('file', 'unet')
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from probe.errors import ProbeError, one_line

#: The entry-point group installed packages register their model factories in.
ENTRY_POINT_GROUP = "probe.models"

#: A factory named ``build`` adds nothing to a display name: ``my_unet.py:build`` is shown as ``my_unet``.
_PLAIN_FACTORY = "build"

#: Characters a file or folder name derived from a model name may keep as they are.
_FILE_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
_FILE_NAME_MAX = 64


@dataclass(frozen=True)
class ResolvedSpec:
    """What a SPEC names: ``kind`` (zoo|entry_point|module|file), a display ``name``, where it came from.

    ``load()`` returns the factory; it imports the user's code, so it is called only when building.
    """

    spec: str
    kind: str
    name: str
    source: str
    load: Callable[[], Callable[..., Any]]


@dataclass(frozen=True)
class EntryPointModel:
    """One model an installed package registers under :data:`ENTRY_POINT_GROUP`."""

    name: str
    value: str  # "package.module:factory"
    distribution: str  # "name version", or "" when the metadata does not say
    shadowed: bool  # a zoo model of the same name wins

    @property
    def source(self) -> str:
        origin = f" from {self.distribution}" if self.distribution else ""
        return f"entry point {self.value}{origin}"


def resolve_spec(spec: str) -> ResolvedSpec:
    """Parse ``spec`` without importing anything; unknown or malformed SPECs are one-line ProbeErrors."""
    from probe.models import MODELS

    if not isinstance(spec, str) or not spec.strip():
        raise ProbeError(f"--model: expected a model name or SPEC, got {spec!r}")
    spec = spec.strip()
    if any(c in spec for c in "\r\n"):  # a name or path is one line; echoing several would break a one-line error
        raise ProbeError(f"--model: a SPEC is one line (a zoo name or path.py:factory), got {spec!r}")
    if spec in MODELS:
        return ResolvedSpec(spec, "zoo", spec, "probe zoo", lambda: MODELS.get(spec))
    target, sep, attribute = spec.rpartition(":")
    if not sep and (spec.endswith(".py") or "/" in spec):
        raise ProbeError(f"--model {spec}: name the factory after a colon, e.g. {spec}:build")
    if not sep:
        return _entry_point_spec(spec)
    if not target or not attribute or not all(part.isidentifier() for part in attribute.split(".")):
        raise ProbeError(
            f"--model {spec}: expected module:factory or path/to/file.py:factory, with a Python name after the colon"
        )
    if target.endswith(".py") or "/" in target or "\\" in target:
        return _file_spec(spec, Path(target), attribute)
    if not all(part.isidentifier() for part in target.split(".")):
        raise ProbeError(f"--model {spec}: {target!r} is neither an importable module name nor a .py file")
    name = target.rsplit(".", 1)[-1] if attribute == _PLAIN_FACTORY else f"{target.rsplit('.', 1)[-1]}.{attribute}"
    return ResolvedSpec(
        spec,
        "module",
        name,
        f"module {target}, attribute {attribute}",
        lambda: _attribute(spec, _import_module(spec, target), attribute, f"module {target}"),
    )


def file_safe_name(name: str) -> str:
    """The one file or folder name derived from a model name (a zoo name or a SPEC) anywhere in probe.

    Zoo names and other names made of letters, digits, ``_``, ``.`` and ``-`` are kept as they are.
    Any other name (SPECs contain ``/`` and ``:``) has each run of other characters replaced by ``_``
    and a hash of the whole name appended, so two different names never share a file: this is the
    only place that spells a model name as a path.  JSON and the report keep the name as given.

    >>> file_safe_name("packnet_b")
    'packnet_b'
    >>> file_safe_name("examples/unet.py:build")
    'examples_unet.py_build-b5f4e8f6'
    >>> file_safe_name("examples/unet.py:build") != file_safe_name("examples_unet.py_build")
    True
    """
    if _FILE_SAFE.fullmatch(name) and not name.startswith(".") and len(name) <= _FILE_NAME_MAX:
        return name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-")[: _FILE_NAME_MAX - 9] or "model"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def display_name(spec: str, options: Mapping[str, Any] | None = None) -> str:
    """The readable name a model goes by in sentences: ``--model-option name=...``, else the zoo or SPEC's name.

    Nothing is imported: ``examples/unet.py:build`` is ``unet``, ``mypkg.nets:build_unet`` is
    ``nets.build_unet``, a zoo or entry-point name is itself.

    >>> display_name("examples/unet.py:build"), display_name("densedepth"), display_name("x.py:build", {"name": "mine"})
    ('unet', 'densedepth', 'mine')
    """
    given = (options or {}).get("name")
    if isinstance(given, str) and given.strip():
        return given.strip()
    return resolve_spec(spec).name


def entry_point_models() -> list[EntryPointModel]:
    """Every model registered in the ``probe.models`` entry-point group, sorted by name (nothing imported)."""
    from probe.models import MODELS

    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"{dist.name} {dist.version}" if dist is not None else ""
        found.append(EntryPointModel(ep.name, ep.value, origin, ep.name in MODELS))
    return sorted(found, key=lambda e: (e.name, e.distribution))


def _entry_point_spec(spec: str) -> ResolvedSpec:
    from probe.models import list_models

    matches: list[EntryPoint] = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
    if not matches:
        plugins = sorted({e.name for e in entry_point_models()})
        known = ", ".join(list_models() + plugins)
        raise ProbeError(
            f"--model: unknown model {spec!r}; expected one of: {known}; or a SPEC package.module:factory "
            "or path/to/file.py:factory"
        )
    values = sorted({ep.value for ep in matches})
    if len(values) > 1:
        raise ProbeError(
            f"--model {spec}: registered by several installed packages ({', '.join(values)}); "
            "name the one you mean as package.module:factory"
        )
    ep = matches[0]
    listing = next(e for e in entry_point_models() if e.name == spec and e.value == ep.value)

    def load() -> Callable[..., Any]:
        try:
            return ep.load()
        except Exception as exc:  # the plugin's own import error, whatever its type
            raise ProbeError(
                f"--model {spec}: cannot load {listing.source}: {type(exc).__name__}: {one_line(exc)}"
            ) from None

    return ResolvedSpec(spec, "entry_point", spec, listing.source, load)


def _file_spec(spec: str, path: Path, attribute: str) -> ResolvedSpec:
    name = path.stem if attribute == _PLAIN_FACTORY else f"{path.stem}.{attribute}"
    return ResolvedSpec(
        spec,
        "file",
        name,
        f"file {path}, attribute {attribute}",
        lambda: _attribute(spec, _import_file(spec, path), attribute, str(path)),
    )


def _import_module(spec: str, module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ProbeError(
                f"--model {spec}: no module named {exc.name!r} (is its package installed, or its folder on PYTHONPATH?)"
            ) from None
        raise ProbeError(f"--model {spec}: importing {module} failed: {type(exc).__name__}: {one_line(exc)}") from None
    except Exception as exc:  # the user's module raised while importing
        raise ProbeError(f"--model {spec}: importing {module} failed: {type(exc).__name__}: {one_line(exc)}") from None


_IMPORTED_FILES: dict[Path, ModuleType] = {}


def _import_file(spec: str, path: Path) -> ModuleType:
    """Import a ``.py`` file under a private, unique module name; its folder is on ``sys.path`` only meanwhile."""
    resolved = path.expanduser().resolve()
    if resolved in _IMPORTED_FILES:
        return _IMPORTED_FILES[resolved]
    if path.suffix != ".py":
        raise ProbeError(f"--model {spec}: expected a .py file before the colon, got {path}")
    if not resolved.is_file():
        raise ProbeError(f"--model {spec}: file {path} not found")
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_name = f"probe_user_model_{digest}_{''.join(c if c.isalnum() else '_' for c in resolved.stem)}"
    module_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise ProbeError(f"--model {spec}: cannot import {path} as Python source")
    module = importlib.util.module_from_spec(module_spec)
    folder = str(resolved.parent)
    # Registered before running, as `import` does, so dataclasses and pickling inside the file find it.
    sys.modules[module_name] = module
    sys.path.insert(0, folder)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file raised while importing
        sys.modules.pop(module_name, None)
        raise ProbeError(f"--model {spec}: importing {path} failed: {type(exc).__name__}: {one_line(exc)}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    _IMPORTED_FILES[resolved] = module
    return module


def _attribute(spec: str, module: ModuleType, attribute: str, label: str) -> Callable[..., Any]:
    """``module.attribute`` (dotted), checked to be callable; ``label`` names the module or file in errors."""
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise ProbeError(
                f"--model {spec}: {label} has no attribute {attribute!r}; "
                f"callables there: {', '.join(public) or '(none)'}"
            )
        value = getattr(value, part)
    if not callable(value):
        raise ProbeError(
            f"--model {spec}: {attribute} is a {type(value).__name__}, not a callable returning an nn.Module"
        )
    return value
