"""Training probes: analyses that ride along inside a training run (``probe train --probe collapse,gradients``).

A probe is a :class:`probe.training.TrainHook` that measures every ``every``
steps and, when training ends, saves its analysis' result file into a run
folder.  :class:`TrainingProbe` holds what every probe shares: the every-K
schedule, the run's name, the output folder and :meth:`~TrainingProbe.save`.
A subclass implements the hook methods it needs and :meth:`~TrainingProbe.to_result`.

``TRAIN_PROBES`` maps a probe name to ``factory(every, out_dir) -> TrainingProbe``;
each analysis module registers its own probe next to it::

    @TRAIN_PROBES.register("gradients", description="... -> gradients.json")
    def gradients_probe(every: int, out_dir: Path) -> GradientRecorder:
        return GradientRecorder(every=every, out_dir=out_dir, flag="--probe-every")

>>> import analyses
>>> sorted(TRAIN_PROBES.names())
['collapse', 'gradients', 'noise']
>>> hook = TRAIN_PROBES.build("gradients", 10, "runs/x")     # doctest: +SKIP
>>> train(config, hooks=[hook]); hook.save()                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar

import torch.nn as nn

from probe.errors import ProbeError
from probe.heldout import HeldOutSummary, Learned, learned_of
from probe.limits import MAX_STEPS, check_count
from probe.registry import Registry
from probe.results import Result
from probe.roles import Roles, assign_roles
from probe.training import TrainHook


class TrainingProbe(TrainHook):
    """A hook that measures on steps ``every, 2*every, ...`` and saves one result file for its run.

    ``flag`` names the option ``every`` came from in error messages (``--every`` on an
    analysis command, ``--probe-every`` on ``probe train``); ``name`` labels the run
    (default: the trained model's name, set at :meth:`on_start`).
    """

    #: the analysis this probe feeds (used in messages)
    analysis = "probe"

    def __init__(
        self, every: int = 1, out_dir: str | Path | None = None, name: str | None = None, *, flag: str = "--every"
    ) -> None:
        check_count(flag, every, MAX_STEPS)
        self.every = every
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.name = name
        self.seed = 0  # the run's seed, read at on_start
        #: the run's held-out score against the constant predictor, when whoever trained it measured one
        self.held_out: HeldOutSummary | None = None
        self.model_options: dict[str, Any] = {}

    def due(self, step: int) -> bool:
        """Whether ``step`` is a measuring step (a multiple of ``every``)."""
        return step % self.every == 0

    def on_start(self, model: nn.Module, config: Any) -> None:
        if self.name is None:
            self.name = run_name(model, config)
        self.seed = int(getattr(config, "seed", 0) or 0)
        self.model_options = dict(getattr(config, "model_options", None) or {})

    def roles(self) -> Roles:
        """The one run's role (probe.roles' default rules: a user model or PackNet is under study)."""
        return assign_roles([str(self.name)], options={str(self.name): self.model_options})

    def to_result(self) -> Result:
        """The result file of this one run (what :meth:`save` writes)."""
        raise NotImplementedError

    def save(self, out_dir: str | Path | None = None, *, figures: bool = True) -> list[Path]:
        """Write the result file and (unless ``figures`` is False) its figures into ``out_dir`` (default: the
        probe's folder)."""
        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise ProbeError(f"{self.analysis}: no output folder given to save the measurements")
        return self.to_result().save(target, figures=figures)


def run_name(model: nn.Module, config: Any) -> str:
    """The name a probe reports a run under: the config's model name, else the model's own."""
    return str(getattr(config, "model", None) or getattr(model, "model_name", type(model).__name__))


ProbeFactory = Callable[[int, Path], TrainingProbe]
TRAIN_PROBES: Registry[ProbeFactory] = Registry("training probe")


class SeedRun(Protocol):
    """One model's measurement on one seed (``ModelGradients``, ``ModelNoise``, ``ModelCollapse``)."""

    name: str
    seed: int
    held_out: HeldOutSummary | None


S = TypeVar("S", bound=SeedRun)


def by_name(runs: Sequence[S]) -> dict[str, list[S]]:
    """Runs grouped by model name, names in first-seen order, each group in seed order as given."""
    groups: dict[str, list[S]] = {}
    for run in runs:
        groups.setdefault(run.name, []).append(run)
    return groups


def learned_over_runs(runs: Sequence[SeedRun]) -> Learned | None:
    """Whether the model learned over its seeds; None when a seed's run has no held-out score."""
    scores = [r.held_out for r in runs]
    if not scores or any(s is None for s in scores):
        return None
    return learned_of([r.seed for r in runs], [s for s in scores if s is not None])
