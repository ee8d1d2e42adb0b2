"""The base class of every result file: ``DIR/<name>.json`` is written and read by one dataclass.

::

    @register_result
    @dataclass
    class GradientsResult(Result):
        name: ClassVar[str] = "gradients"       # -> DIR/gradients.json
        schema_version: ClassVar[int] = 1       # bump when a field is renamed, removed or changes meaning
        config: GradientsConfig
        models: list[ModelGradients]

        def figures(self, out_dir: Path) -> list[Path]: ...

- ``to_json()`` is ``{"analysis": name, "schema_version": N, <every field>}`` (:func:`probe.schema.encode`);
- ``from_json(data)`` reads it back by the field annotations (:func:`probe.schema.decode`) and raises
  one line naming the key; ``read(path)`` adds the file;
- ``save(DIR)`` writes the JSON atomically, then the figures; ``save_run`` first records the
  config and provenance in ``DIR/config.json``.

:data:`RESULTS` maps each file name to its class (``@register_result``); the report
finds and reads result files through it, so a new result type is reported on by
registering it and a report section (see ``docs/CONTRACTS.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

from probe.io import ensure_dir, read_json, write_json
from probe.registry import Registry
from probe.runs import prepare_run_dir, run_folder_lock
from probe.schema import SchemaError, decode, encode

R = TypeVar("R", bound="Result")

#: Keys every result file carries besides its dataclass fields.
ENVELOPE = ("analysis", "schema_version")


class Result:
    """Base of result dataclasses: subclasses set ``name`` and ``schema_version`` and may add ``figures``."""

    name: ClassVar[str] = "result"
    schema_version: ClassVar[int] = 1

    def to_json(self) -> dict[str, Any]:
        """The envelope (``analysis``, ``schema_version``) and every field, as plain JSON types."""
        return {"analysis": self.name, "schema_version": self.schema_version, **encode(self)}

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        """Rebuild the result from :meth:`to_json`'s form; anything else raises a one-line SchemaError."""
        if not isinstance(data, dict):
            raise SchemaError(f"expected a JSON object (a result written by probe), got {type(data).__name__}")
        fields = dict(data)
        kind = fields.pop("analysis", None)
        version = fields.pop("schema_version", None)
        if kind != cls.name:
            raise SchemaError(f"analysis: expected {cls.name!r}, got {kind!r}")
        if version != cls.schema_version:
            raise SchemaError(
                f"schema_version: this probe reads version {cls.schema_version} of {cls.name}.json, got {version!r}"
            )
        return decode(cls, fields)

    @classmethod
    def read(cls: type[R], path: str | Path) -> R:
        """Load ``path`` (a file written by :meth:`save`); errors name the file and the key."""
        data = read_json(path)  # refuses deep nesting, huge integers and out-of-range numbers with one line
        try:
            return cls.from_json(data)
        except SchemaError as exc:
            raise SchemaError(f"{path}: {exc}") from None
        except RecursionError:
            raise SchemaError(f"{path}: nested too deeply to be a result written by probe") from None

    def figures(self, out_dir: Path) -> list[Path]:
        """PNG figures of this result written into ``out_dir`` (none by default)."""
        return []

    def save(self, out_dir: str | Path, *, figures: bool = True) -> list[Path]:
        """Write ``out_dir/<name>.json`` atomically, then (unless ``figures`` is False) the figures; return every
        path written."""
        out = ensure_dir(out_dir, "--out")
        with run_folder_lock(out, self.name):  # one writer per run folder
            written = [write_json(out / f"{self.name}.json", self.to_json())]
            if figures:
                written.extend(self.figures(out))
        return written

    def save_run(self, out_dir: str | Path, *, device: Any = None, seed: int | None = None) -> list[Path]:
        """Record this result's ``config`` field and provenance in ``out_dir/config.json``, then :meth:`save`."""
        config = encode(getattr(self, "config", None)) or {}  # results without a config record an empty one
        with run_folder_lock(out_dir, self.name):  # re-entrant: save() takes it again in this process
            prepare_run_dir(out_dir, self.name, config, device=device, seed=seed)
            return self.save(out_dir)


#: file name (without ``.json``) -> the Result class that writes and reads it
RESULTS: Registry[type[Result]] = Registry("result file")


def register_result(cls: type[R]) -> type[R]:
    """Class decorator: ``DIR/<cls.name>.json`` is read by ``cls`` wherever results are collected."""
    RESULTS.register(cls.name, description=(cls.__doc__ or "").strip().split("\n")[0])(cls)
    return cls
