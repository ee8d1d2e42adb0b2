"""Analyses that ride along inside a normal training run: ``probe train --probe collapse,gradients``.

``TRAIN_PROBES`` maps a probe name to ``factory(every, out_dir) -> hook``; the hook
is a :class:`probe.training.TrainHook` with a ``save()`` that writes the
analysis' JSON and figures into the run folder (``out_dir``) once training ends.

>>> from analyses.probes import TRAIN_PROBES
>>> sorted(TRAIN_PROBES.names())
['collapse', 'gradients', 'noise']
>>> hook = TRAIN_PROBES.build("gradients", 10, "runs/x")     # doctest: +SKIP
>>> train(config, hooks=[hook]); hook.save()                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from analyses.collapse import CollapseTracker
from analyses.gradients import GradientRecorder
from analyses.noise import NoiseProbe
from probe.registry import Registry
from probe.training import TrainHook

ProbeFactory = Callable[[int, Path], TrainHook]
TRAIN_PROBES: Registry[ProbeFactory] = Registry("training probe")


@TRAIN_PROBES.register("gradients", description="per-layer gradient/weight norms and update ratio -> gradients.json")
def gradients_probe(every: int, out_dir: Path) -> GradientRecorder:
    return GradientRecorder(every=every, out_dir=out_dir)


@TRAIN_PROBES.register("collapse", description="collapse statistics on a fixed held-out batch -> collapse.json")
def collapse_probe(every: int, out_dir: Path) -> CollapseTracker:
    return CollapseTracker(every=every, out_dir=out_dir)


@TRAIN_PROBES.register("noise", description="gradient noise scale (batch sizes 2 and 8) and loss spread -> noise.json")
def noise_probe(every: int, out_dir: Path) -> NoiseProbe:
    return NoiseProbe(every=every, out_dir=out_dir)
