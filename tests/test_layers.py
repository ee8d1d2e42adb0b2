"""Imports point down only: entry points -> orchestration -> analyses -> core (checked on every module's AST)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The layer of every module, declared once (longest matching prefix wins); README's "Layers" table shows it.
LAYERS: dict[str, int] = {
    "cli": 4,
    "probe.__main__": 4,
    "probe.study": 3,
    "probe.experiments": 3,
    "probe.self_supervised_study": 3,
    "probe.report.build": 3,
    "analyses": 2,
    "probe": 1,
}
LAYER_NAMES = {4: "entry points", 3: "orchestration", 2: "analyses", 1: "core"}
SOURCES = [ROOT / "cli.py", *sorted((ROOT / "probe").rglob("*.py")), *sorted((ROOT / "analyses").rglob("*.py"))]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SOURCES}


def layer(module: str) -> int:
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} has no layer in LAYERS")
    return LAYERS[max(matches, key=len)]


def _with_parents(module: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a/__init__``, ``a/b/__init__`` and ``a/b/c``: each must be allowed."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES]


def imported_modules(path: Path) -> set[str]:
    """The project modules ``path`` imports anywhere (top level, inside functions, under TYPE_CHECKING)."""
    return imports_of(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imports_of(source: str, this: str, is_package: bool = False) -> set[str]:
    package = this if is_package else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.update(_with_parents(base))
            for alias in node.names:  # `from probe import laws` imports the module probe.laws
                if f"{base}.{alias.name}" in MODULES:
                    found.update(_with_parents(f"{base}.{alias.name}"))
    found.discard(this)
    return found


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        assert layer(module) in LAYER_NAMES


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module: str) -> None:
    here = layer(module)
    bad = upward(module, imported_modules(MODULES[module]))
    assert not bad, f"{module} ({LAYER_NAMES[here]}) imports {', '.join(bad)} ({', '.join(LAYER_NAMES[layer(m)] for m in bad)})"


def upward(module: str, imports: set[str]) -> list[str]:
    return sorted(m for m in imports if layer(m) > layer(module))


def test_an_upward_import_is_caught_wherever_it_stands() -> None:
    lazy = "def f():\n    from probe.study import run_study\n"
    assert upward("analyses.fake", imports_of(lazy, "analyses.fake")) == ["probe.study"]
    relative = "from ..study import StudyConfig\n"
    assert upward("probe.report.fake", imports_of(relative, "probe.report.fake")) == ["probe.study"]
    assert upward("probe.fake", imports_of("import analyses.gradients\n", "probe.fake")) == [
        "analyses", "analyses.gradients"]
    assert upward("analyses.fake", imports_of("from probe import laws, study\n", "analyses.fake")) == ["probe.study"]
    assert upward("probe.study", imports_of("from analyses import gradients\n", "probe.study")) == []


#: the one module that imports by name: a user's model named on the command line (module:factory, file.py:factory)
IMPORTS_USER_CODE = {ROOT / "probe" / "models" / "spec.py"}


def test_no_module_imports_by_string() -> None:
    """Steps, sections and analyses are found through registries or explicit imports, never by name."""
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        if path not in IMPORTS_USER_CODE:
            assert "importlib" not in text and "__import__(" not in text, path


def test_the_layer_check_reads_the_real_files() -> None:
    assert "probe.results" in imported_modules(ROOT / "analyses" / "gradients.py")
    assert "probe.study" in imported_modules(ROOT / "cli.py")  # imported lazily inside the study command


def test_readme_shows_the_layer_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^\| (\d) [^\n]*", readme, flags=re.M)}
    for prefix, number in LAYERS.items():
        path = prefix.replace(".", "/") + (".py" if prefix in MODULES and not MODULES[prefix].name == "__init__.py"
                                           else "/")
        assert number in rows and f"`{path}`" in rows[number], f"README's layer table lacks {path} in layer {number}"
