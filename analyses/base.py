"""The contract every analysis module follows.

::

    @dataclass
    class GradientsConfig:          # everything the analysis needs, typed
        models: list[str]
        steps: int = 50
        ...

    @dataclass
    class GradientsResult(AnalysisResult):
        name = "gradients"          # -> DIR/gradients.json
        ...
        def to_json(self) -> dict: ...
        def figures(self, out_dir) -> list[Path]: ...

    def run(config: GradientsConfig, progress: Progress | None = None) -> GradientsResult: ...

``AnalysisResult.save(out_dir)`` writes ``out_dir/<name>.json`` atomically and
then the figures; it returns every path written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from probe.io import ensure_dir, write_json
from probe.runs import prepare_run_dir, run_folder_lock


class AnalysisResult:
    """Mixin for analysis results: subclasses set ``name`` and implement ``to_json``/``figures``."""

    name: ClassVar[str] = "analysis"

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def figures(self, out_dir: Path) -> list[Path]:
        return []

    def save(self, out_dir: str | Path) -> list[Path]:
        out = ensure_dir(out_dir, "--out")
        with run_folder_lock(out, self.name):  # one writer per run folder
            written = [write_json(out / f"{self.name}.json", {"analysis": self.name, **self.to_json()})]
            written.extend(self.figures(out))
        return written

    def save_run(self, out_dir: str | Path, *, device: Any = None, seed: int | None = None) -> list[Path]:
        """Record this analysis's config and provenance in ``out_dir/config.json``, then :meth:`save`."""
        with run_folder_lock(out_dir, self.name):
            prepare_run_dir(out_dir, self.name, self.to_json().get("config", {}), device=device, seed=seed)
            return self.save(out_dir)
