"""Do PackNet's gradients vanish?  Per-layer gradient norms during training.

:class:`GradientRecorder` is a :class:`probe.training.TrainHook`.  For every
module that owns parameters directly (a conv, a norm layer, a linear layer),
ordered from input to output by the order in which the first forward pass
*executes* them (recorded with forward pre-hooks, not guessed from names), it
records per step:

- ``grad_norm``: L2 norm of the module's gradients after backward, before
  clipping and the optimiser step;
- ``weight_norm``: L2 norm of its weights before the step;
- ``update_ratio``: ``|w_after - w_before| / |w_before|``, the optimiser's actual
  relative update (for Adam this is what the learning rate really does to a layer).

Cost: one ``torch._foreach_norm`` over all gradients, one over all weights, one
fused copy and one fused subtract per recorded step; per-module sums are an
``index_add_``.  Nothing is copied to the host until the run ends.

:func:`run` trains each model for N steps on the *same* batches (same seed, same
loader order) with the seed's optimiser and loss via :func:`probe.training.train`,
and :class:`GradientsResult` judges each model by the rule in :data:`RULE`.

>>> from analyses.gradients import GradientsConfig, run                # doctest: +SKIP
>>> result = run(GradientsConfig(models=["packnet_c", "densedepth"], width=0.125,
...                              input_size=(64, 96), steps=20))       # doctest: +SKIP
>>> result.save("runs/grads")                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
import torch.nn as nn

from analyses.base import AnalysisResult
from probe.errors import ProbeError
from probe.io import ensure_dir
from probe.training import TrainConfig, TrainHook, train
from probe.training.checkpoint import copy_checkpoint, resolve_checkpoint, run_train_config

VANISH_BELOW = 1e-3
EXPLODE_ABOVE = 1e3
RULE = (
    "Each layer's size-normalised gradient is its median gradient L2 norm over the recorded steps divided by "
    "sqrt(number of parameters). Gradients flow backwards from the output, so a layer explodes when any recorded "
    f"gradient norm is non-finite or its normalised gradient exceeds {EXPLODE_ABOVE:g} x the largest among the layers "
    f"executed after it (nearer the output); a layer vanishes when its normalised gradient is below {VANISH_BELOW:g} x "
    "the largest non-exploding layer's."
)


def _owns_trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters(recurse=False))


class GradientRecorder(TrainHook):
    """Records per-module gradient norm, weight norm and update ratio every ``every`` steps.

    Attach to a run: ``train(cfg, hooks=[rec := GradientRecorder()])``, then
    ``rec.result()`` -> :class:`ModelGradients`.  With ``out_dir`` set (as a
    ``probe train --probe gradients`` probe), :meth:`save` writes ``gradients.json``
    and the figures there.
    """

    def __init__(self, every: int = 1, out_dir: str | Path | None = None, name: str | None = None) -> None:
        if every < 1:
            raise ProbeError(f"--probe-every: expected a positive integer, got {every}")
        self.every = every
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.name = name
        self._modules: list[tuple[str, nn.Module]] = []
        self._params: list[nn.Parameter] = []
        self._owner: torch.Tensor | None = None
        self._weights: list[torch.Tensor] = []
        self._before: list[torch.Tensor] = []
        self._order: list[int] = []
        self._order_handles: list[Any] = []
        self._recording = False
        self._rows: list[torch.Tensor] = []  # per recorded step: [3, modules] on the device
        self._steps: list[int] = []
        self._pending: torch.Tensor | None = None

    # -- TrainHook --------------------------------------------------------------------------
    def on_start(self, model: nn.Module, config: Any) -> None:
        if self.name is None:
            self.name = str(getattr(config, "model", None) or getattr(model, "model_name", type(model).__name__))
        self._modules = [(n or "<root>", m) for n, m in model.named_modules() if _owns_trainable(m)]
        if not self._modules:
            raise ProbeError(f"gradients: model {self.name!r} has no trainable parameters")
        self._params, self._rows, self._steps = [], [], []
        owner: list[int] = []
        for index, (_, module) in enumerate(self._modules):
            for p in module.parameters(recurse=False):
                if p.requires_grad:
                    self._params.append(p)
                    owner.append(index)
        device = self._params[0].device
        self._owner = torch.tensor(owner, dtype=torch.long, device=device)
        # views share storage with the parameters, which the optimiser updates in place
        self._weights = [p.detach() for p in self._params]
        self._before = [torch.empty_like(p) for p in self._params]
        self._order, seen = [], set()

        def _note(index: int):
            def hook(module: nn.Module, args: Any) -> None:
                if index not in seen:
                    seen.add(index)
                    self._order.append(index)
            return hook

        self._order_handles = [m.register_forward_pre_hook(_note(i)) for i, (_, m) in enumerate(self._modules)]

    def after_backward(self, step: int, model: nn.Module) -> None:
        if self._order_handles:  # the first forward pass has run: execution order is known
            for handle in self._order_handles:
                handle.remove()
            self._order_handles = []
        self._recording = step % self.every == 0
        if not self._recording:
            return
        grad_sq = self._per_module_sq([p.grad for p in self._params])
        weight_sq = self._per_module_sq(self._weights)
        torch._foreach_copy_(self._before, self._weights)
        self._pending = torch.stack([grad_sq.sqrt(), weight_sq.sqrt()])
        self._steps.append(step)

    def after_step(self, step: int, model: nn.Module, stats: Any) -> None:
        if not self._recording or self._pending is None:
            return
        torch._foreach_sub_(self._before, self._weights)
        update = self._per_module_sq(self._before).sqrt()
        grad, weight = self._pending
        self._rows.append(torch.stack([grad, weight, update / weight.clamp_min(1e-30)]))
        self._pending = None
        self._recording = False

    def on_end(self, model: nn.Module) -> None:
        for handle in self._order_handles:
            handle.remove()
        self._order_handles = []

    # -- internals --------------------------------------------------------------------------
    def _per_module_sq(self, tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Per-parameter tensors -> ``[modules]`` sums of squares; missing gradients count as 0."""
        assert self._owner is not None
        present = [i for i, t in enumerate(tensors) if t is not None]
        per_module = torch.zeros(len(self._modules), dtype=torch.float32, device=self._owner.device)
        if not present:
            return per_module
        norms = torch._foreach_norm([tensors[i].detach() for i in present])  # type: ignore[union-attr]
        values = torch.stack([n.float() for n in norms]).square()
        owner = self._owner if len(present) == len(tensors) else self._owner[present]
        return per_module.index_add_(0, owner, values)

    # -- results ----------------------------------------------------------------------------
    def result(self) -> "ModelGradients":
        """The recorded history as a :class:`ModelGradients` (one host copy, here)."""
        if not self._rows:
            raise ProbeError(f"gradients: no step was recorded for {self.name!r} (run more steps than --probe-every)")
        history = torch.stack(self._rows).cpu().numpy().astype(np.float64)  # [steps, 3, modules]
        executed = set(self._order)
        layers = []
        for depth, index in enumerate(self._order):
            name, module = self._modules[index]
            params = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
            layers.append(LayerGradients(
                name=name, type=type(module).__name__, depth=depth, params=params,
                grad_norm=history[:, 0, index].tolist(), weight_norm=history[:, 1, index].tolist(),
                update_ratio=history[:, 2, index].tolist()))
        not_executed = [self._modules[i][0] for i in range(len(self._modules)) if i not in executed]
        return ModelGradients(name=str(self.name), steps=list(self._steps), layers=layers, not_executed=not_executed)

    def save(self, out_dir: str | Path | None = None) -> list[Path]:
        """Write ``gradients.json`` and figures for this one model into ``out_dir`` (or the probe's folder)."""
        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise ProbeError("gradients: no output folder given to save the recording")
        return GradientsResult(models=[self.result()], config={"every": self.every}).save(target)


def _summary(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return {"per_step": arr.tolist(), "mean": math.nan, "median": math.nan, "min": math.nan, "max": math.nan}
    return {"per_step": arr.tolist(), "mean": float(finite.mean()), "median": float(np.median(finite)),
            "min": float(finite.min()), "max": float(finite.max())}


@dataclass
class LayerGradients:
    """One module's history; lists have one entry per recorded step."""

    name: str
    type: str
    depth: int
    params: int
    grad_norm: list[float]
    weight_norm: list[float]
    update_ratio: list[float]

    @property
    def median_grad(self) -> float:
        return _summary(self.grad_norm)["median"]

    @property
    def normalised_grad(self) -> float:
        """Median gradient norm per sqrt(parameter): comparable between a 3x3 conv and a bias-only norm."""
        return self.median_grad / math.sqrt(max(1, self.params))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "depth": self.depth, "params": self.params,
                "grad_norm": _summary(self.grad_norm), "normalised_grad": self.normalised_grad,
                "weight_norm": _summary(self.weight_norm), "update_ratio": _summary(self.update_ratio)}


@dataclass
class ModelGradients:
    """All layers of one model, input to output."""

    name: str
    steps: list[int]
    layers: list[LayerGradients]
    not_executed: list[str] = field(default_factory=list)

    def verdict(self, vanish_below: float = VANISH_BELOW, explode_above: float = EXPLODE_ABOVE) -> dict[str, Any]:
        """Vanishing/exploding layers by :data:`RULE`, plus first/last-layer median gradient ratios."""
        norm = np.array([layer.normalised_grad for layer in self.layers], dtype=np.float64)
        nonfinite = [not np.all(np.isfinite(layer.grad_norm)) for layer in self.layers]
        exploding = []
        for i, bad in enumerate(nonfinite):
            later = norm[i + 1:][np.isfinite(norm[i + 1:])]
            exploding.append(bool(bad or (later.size > 0 and norm[i] > explode_above * later.max())))
        calm = [n for n, e in zip(norm, exploding) if not e and math.isfinite(n)]
        largest = max(calm) if calm else math.nan
        vanishing = [bool(not e and math.isfinite(largest) and n < vanish_below * largest)
                     for n, e in zip(norm, exploding)]
        first, last = self.layers[0], self.layers[-1]
        ratio = first.median_grad / last.median_grad if last.median_grad > 0 else math.nan
        ratio_norm = first.normalised_grad / last.normalised_grad if last.normalised_grad > 0 else math.nan
        names_v = [layer.name for layer, v in zip(self.layers, vanishing) if v]
        names_e = [layer.name for layer, e in zip(self.layers, exploding) if e]
        if names_e or names_v:
            summary = f"{len(names_v)} vanishing and {len(names_e)} exploding of {len(self.layers)} layers"
        else:
            summary = f"no vanishing or exploding layer among {len(self.layers)}"
        summary += f"; first/last median gradient norm ratio {ratio:.3g}"
        return {"rule": RULE, "vanishing": names_v, "exploding": names_e, "first_last_ratio": ratio,
                "first_last_ratio_normalised": ratio_norm, "summary": summary,
                "first_layer": first.name, "last_layer": last.name}

    def to_json(self) -> dict[str, Any]:
        verdict = self.verdict()
        return {"name": self.name, "steps": self.steps, "n_layers": len(self.layers),
                "params": sum(layer.params for layer in self.layers),
                "first_last_ratio": verdict["first_last_ratio"], "verdict": verdict,
                "layers": [layer.to_json() for layer in self.layers], "not_executed": self.not_executed}


@dataclass
class GradientsResult(AnalysisResult):
    """Per-model gradient histories; ``save(DIR)`` writes ``gradients.json`` and the figures."""

    name = "gradients"
    models: list[ModelGradients]
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"rule": RULE, "config": self.config, "models": [m.to_json() for m in self.models]}

    def figures(self, out_dir: Path) -> list[Path]:
        written = [heatmap_figure(m, out_dir / f"gradients_heatmap_{m.name}.png") for m in self.models]
        written.append(depth_figure(self.models, out_dir / "gradients_depth.png"))
        return written


def heatmap_figure(model: ModelGradients, path: Path) -> Path:
    """Layer (input at the top) x recorded step, gradient L2 norm on a log colour scale."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from probe.plotting import save_figure

    grid = np.array([layer.grad_norm for layer in model.layers], dtype=np.float64)  # [layers, steps]
    shown = np.ma.masked_where(~np.isfinite(grid) | (grid <= 0), grid)
    positive = shown.compressed()
    fig, ax = plt.subplots(figsize=(min(14.0, 4 + 0.08 * grid.shape[1]), min(18.0, 2.5 + 0.12 * grid.shape[0])))
    norm = LogNorm(vmin=float(positive.min()), vmax=float(positive.max())) if positive.size else None
    image = ax.imshow(shown, aspect="auto", interpolation="nearest", cmap="viridis", norm=norm)
    tick_every = max(1, len(model.layers) // 40)
    ticks = list(range(0, len(model.layers), tick_every))
    ax.set_yticks(ticks, [model.layers[i].name for i in ticks], fontsize=6)
    step_ticks = list(range(0, len(model.steps), max(1, len(model.steps) // 10)))
    ax.set_xticks(step_ticks, [str(model.steps[i]) for i in step_ticks])
    ax.set(xlabel="training step", ylabel="layer (input at top, execution order)",
           title=f"{model.name}: gradient L2 norm per layer")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="gradient L2 norm (log scale)")
    return save_figure(fig, path)


def depth_figure(models: Sequence[ModelGradients], path: Path) -> Path:
    """Median gradient norm (raw and per sqrt(parameter)) against relative depth, all models overlaid."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from probe.plotting import save_figure

    rows = []
    for m in models:
        span = max(1, len(m.layers) - 1)
        for layer in m.layers:
            rows.append({"model": m.name, "relative depth": layer.depth / span,
                         "median gradient L2 norm": layer.median_grad,
                         "per sqrt(parameter)": layer.normalised_grad})
    frame = pd.DataFrame(rows)
    frame = frame[(frame["median gradient L2 norm"] > 0) & np.isfinite(frame["median gradient L2 norm"])]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, column in zip(axes, ("median gradient L2 norm", "per sqrt(parameter)")):
        sns.lineplot(frame, x="relative depth", y=column, hue="model", marker="o", markersize=3, ax=ax)
        ax.set_yscale("log")
        ax.set(xlabel="relative depth (0 = first layer executed, 1 = last)", ylabel=f"{column} (log)")
    axes[0].set_title("median gradient norm per layer")
    axes[1].set_title("normalised by layer size (the verdict's measure)")
    return save_figure(fig, path)


# -- the analysis -------------------------------------------------------------------------------

@dataclass
class TrainingRuns:
    """Which models to train and how: the part of the config shared by the analyses that watch training.

    Every model trains with the same seed, hence on the same batches in the same
    order, with the seed's protocol (Adam, lr 1e-4, the DenseDepth loss).  With
    ``checkpoint`` a copy of that run is continued instead (:func:`continue_run`).
    """

    models: list[str] = field(default_factory=list)
    checkpoint: Path | None = None
    steps: int = 50
    batch_size: int = 4
    width: float = 1.0
    dataset: str = "synthetic"
    data_root: Path | None = None
    input_size: tuple[int, int] | None = None
    device: str = "auto"
    seed: int = 0
    out: Path = Path("runs")

    def train_configs(self, workdir: Path) -> list[TrainConfig]:
        """One :class:`~probe.training.TrainConfig` per model, each training into its own folder under ``workdir``."""
        if self.steps < 1:
            raise ProbeError(f"--steps: expected a positive integer, got {self.steps}")
        if self.checkpoint is not None and self.models:
            raise ProbeError("--model/--checkpoint: give model names to train or one run to continue, not both")
        if self.checkpoint is not None:
            return [continue_run(self.checkpoint, workdir / "continued", steps=self.steps, device=self.device)]
        if not self.models:
            raise ProbeError("--model: give at least one model name (or --checkpoint RUN)")
        return [TrainConfig(model=name, width=self.width, dataset=self.dataset, data_root=self.data_root,
                            input_size=self.input_size, max_steps=self.steps, batch_size=self.batch_size,
                            device=self.device, seed=self.seed, out=workdir / name)
                for name in self.models]


H = TypeVar("H", bound=TrainHook)


def train_with_hook(runs: TrainingRuns, make_hook: Callable[[], H], analysis: str) -> list[H]:
    """Train every run of ``runs`` with a fresh ``make_hook()`` attached; return the hooks, in order.

    The training runs go to a temporary folder inside ``runs.out`` (deleted
    afterwards): the analysis keeps only its own JSON and figures.
    """
    out = ensure_dir(runs.out, "--out")
    hooks = []
    with tempfile.TemporaryDirectory(prefix=f".{analysis}-train-", dir=out) as tmp:
        for train_config in runs.train_configs(Path(tmp)):
            hook = make_hook()
            train(train_config, hooks=[hook])
            hooks.append(hook)
    return hooks


@dataclass
class GradientsConfig(TrainingRuns):
    """``probe gradients``: train each of ``models`` (or continue ``checkpoint``) ``steps`` steps, recording."""

    out: Path = Path("runs/gradients")


def continue_run(checkpoint: Path, workdir: Path, *, steps: int, device: str) -> TrainConfig:
    """A config that resumes a *copy* of the run at ``checkpoint`` for ``steps`` more steps.

    The copy (config.json plus the verified checkpoint folder) goes to ``workdir``, so the
    user's run folder is never written; the optimiser state, RNG and batch order
    continue exactly where the run stopped.  ``checkpoint`` is anything
    :func:`~probe.training.checkpoint.resolve_checkpoint` accepts (a run folder, a
    ``checkpoints/step_N`` folder or its weights file).
    """
    found = resolve_checkpoint(checkpoint, with_state=True)
    saved = TrainConfig.from_json(run_train_config(found.run_dir))
    done = copy_checkpoint(found, workdir).step or 0
    return replace(saved, out=workdir, resume=True, max_steps=done + steps, epochs=saved.epochs + steps,
                   device=device, precision=None, channels_last=None, checkpoint_every=None, tensorboard=False)


def run(config: GradientsConfig) -> GradientsResult:
    """Train every model on the same batches with a :class:`GradientRecorder` attached."""
    recorders = train_with_hook(config, GradientRecorder, "gradients")
    return GradientsResult(models=[r.result() for r in recorders], config=asdict(config))
