"""A tiny name -> factory registry shared by models, datasets, losses and analyses.

Extending probe means registering a function, never adding an ``if`` branch::

    >>> from probe.registry import Registry
    >>> shapes = Registry("shape")
    >>> @shapes.register("square", description="four equal sides")
    ... def square(side=1.0):
    ...     return side * side
    >>> shapes.build("square", side=2.0)
    4.0
    >>> shapes.names()
    ['square']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from probe.errors import ProbeError

F = TypeVar("F")  # what is registered: usually a factory, sometimes a plain value (a crop, a download plan)


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    factory: F
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[F]):
    """Maps names to factories; unknown names raise a ProbeError listing the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}

    def register(self, name: str, description: str = "", **meta: Any) -> Callable[[F], F]:
        def decorator(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
            desc = doc if isinstance(doc, str) else (doc[0] if doc else "")
            self._entries[name] = Entry(name, factory, desc, dict(meta))
            return factory

        return decorator

    def entry(self, name: str) -> Entry[F]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none registered)"
            raise ProbeError(f"unknown {self.kind} {name!r}; expected one of: {known}") from None

    def get(self, name: str) -> F:
        return self.entry(name).factory

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the factory registered as ``name`` (for registries of callables)."""
        factory: Any = self.get(name)
        return factory(*args, **kwargs)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> Iterator[Entry[F]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
