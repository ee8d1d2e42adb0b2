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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn as nn

from analyses.probes import TRAIN_PROBES, TrainingProbe
from analyses.training_runs import TrainingRuns, train_with_hook
from probe.errors import ProbeError
from probe.models.spec import file_safe_name
from probe.options import out_option
from probe.report.answers import QUESTIONS, Answer, fmt
from probe.report.collect import Results
from probe.report.document import Block, Section, figure_from_matplotlib
from probe.report.guards import inconclusive, undefined_inputs
from probe.report.sections import SECTIONS, answer_section, embedded_figures
from probe.results import Result, register_result
from probe.roles import UNDER_STUDY, Roles
from probe.schema import encode

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


class GradientRecorder(TrainingProbe):
    """Records per-module gradient norm, weight norm and update ratio every ``every`` steps.

    Attach to a run: ``train(cfg, hooks=[rec := GradientRecorder()])``, then
    ``rec.result()`` -> :class:`ModelGradients`.  With ``out_dir`` set (as a
    ``probe train --probe gradients`` probe), :meth:`save` writes ``gradients.json``
    and the figures there.
    """

    analysis = "gradients"

    def __init__(
        self, every: int = 1, out_dir: str | Path | None = None, name: str | None = None, *, flag: str = "--every"
    ) -> None:
        super().__init__(every, out_dir, name, flag=flag)
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
        super().on_start(model, config)
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
        self._recording = self.due(step)
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
        given = [t.detach() for t in tensors if t is not None]
        per_module = torch.zeros(len(self._modules), dtype=torch.float32, device=self._owner.device)
        if not present:
            return per_module
        norms = torch._foreach_norm(given)
        values = torch.stack([n.float() for n in norms]).square()
        owner = self._owner if len(present) == len(tensors) else self._owner[present]
        return per_module.index_add_(0, owner, values)

    # -- results ----------------------------------------------------------------------------
    def result(self) -> "ModelGradients":
        """The recorded history as a :class:`ModelGradients` (one host copy, here)."""
        if not self._rows:
            raise ProbeError(
                f"gradients: no step was recorded for {self.name!r} (run more steps than every={self.every})"
            )
        history = torch.stack(self._rows).cpu().numpy().astype(np.float64)  # [steps, 3, modules]
        executed = set(self._order)
        layers = []
        for depth, index in enumerate(self._order):
            name, module = self._modules[index]
            params = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
            layers.append(
                LayerGradients.of(
                    name=name,
                    type=type(module).__name__,
                    depth=depth,
                    params=params,
                    grad_norm=history[:, 0, index].tolist(),
                    weight_norm=history[:, 1, index].tolist(),
                    update_ratio=history[:, 2, index].tolist(),
                )
            )
        not_executed = [self._modules[i][0] for i in range(len(self._modules)) if i not in executed]
        return ModelGradients.of(str(self.name), list(self._steps), layers, not_executed)

    def to_result(self) -> GradientsResult:
        return GradientsResult(models=[self.result()], roles=self.roles(), config={"every": self.every})


@dataclass
class StepSeries:
    """One quantity at every recorded step (``per_step``) and its summary over the finite values (NaN if none)."""

    per_step: list[float]
    mean: float
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> StepSeries:
        arr = np.asarray(values, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        if finite.size == 0:
            return cls(arr.tolist(), math.nan, math.nan, math.nan, math.nan)
        return cls(
            arr.tolist(), float(finite.mean()), float(np.median(finite)), float(finite.min()), float(finite.max())
        )


@dataclass
class LayerGradients:
    """One module's history: gradient norm, weight norm and update ratio at every recorded step."""

    name: str
    type: str
    depth: int
    params: int
    grad_norm: StepSeries
    normalised_grad: float  # median gradient norm per sqrt(parameter): the verdict's measure
    weight_norm: StepSeries
    update_ratio: StepSeries

    @classmethod
    def of(
        cls,
        name: str,
        type: str,
        depth: int,
        params: int,
        grad_norm: Sequence[float],
        weight_norm: Sequence[float],
        update_ratio: Sequence[float],
    ) -> LayerGradients:
        """From per-step values; ``normalised_grad`` makes a 3x3 conv comparable with a bias-only norm."""
        grads = StepSeries.of(grad_norm)
        return cls(
            name,
            type,
            depth,
            params,
            grads,
            grads.median / math.sqrt(max(1, params)),
            StepSeries.of(weight_norm),
            StepSeries.of(update_ratio),
        )

    @property
    def median_grad(self) -> float:
        return self.grad_norm.median


@dataclass
class GradientVerdict:
    """What :data:`RULE` says about one model's layers, and its first/last-layer gradient ratios."""

    rule: str
    vanishing: list[str]
    exploding: list[str]
    first_last_ratio: float  # median gradient norm of the first executed layer / the last's
    first_last_ratio_normalised: float
    summary: str
    first_layer: str
    last_layer: str


def judge(
    layers: Sequence[LayerGradients], vanish_below: float = VANISH_BELOW, explode_above: float = EXPLODE_ABOVE
) -> GradientVerdict:
    """Vanishing/exploding layers by :data:`RULE`, plus first/last-layer median gradient ratios."""
    norm = np.array([layer.normalised_grad for layer in layers], dtype=np.float64)
    nonfinite = [not np.all(np.isfinite(layer.grad_norm.per_step)) for layer in layers]
    exploding = []
    for i, bad in enumerate(nonfinite):
        later = norm[i + 1 :][np.isfinite(norm[i + 1 :])]
        exploding.append(bool(bad or (later.size > 0 and norm[i] > explode_above * later.max())))
    calm = [n for n, e in zip(norm, exploding) if not e and math.isfinite(n)]
    largest = max(calm) if calm else math.nan
    vanishing = [bool(not e and math.isfinite(largest) and n < vanish_below * largest) for n, e in zip(norm, exploding)]
    first, last = layers[0], layers[-1]
    ratio = first.median_grad / last.median_grad if last.median_grad > 0 else math.nan
    ratio_norm = first.normalised_grad / last.normalised_grad if last.normalised_grad > 0 else math.nan
    names_v = [layer.name for layer, v in zip(layers, vanishing) if v]
    names_e = [layer.name for layer, e in zip(layers, exploding) if e]
    if names_e or names_v:
        summary = f"{len(names_v)} vanishing and {len(names_e)} exploding of {len(layers)} layers"
    else:
        summary = f"no vanishing or exploding layer among {len(layers)}"
    summary += f"; first/last median gradient norm ratio {ratio:.3g}"
    return GradientVerdict(RULE, names_v, names_e, ratio, ratio_norm, summary, first.name, last.name)


@dataclass
class ModelGradients:
    """All layers of one model, input to output, and the verdict on them."""

    name: str
    steps: list[int]
    params: int
    verdict: GradientVerdict
    layers: list[LayerGradients]
    not_executed: list[str]

    @classmethod
    def of(
        cls, name: str, steps: list[int], layers: list[LayerGradients], not_executed: list[str] | None = None
    ) -> ModelGradients:
        """Judge ``layers`` by :data:`RULE` (:func:`judge`)."""
        return cls(name, steps, sum(layer.params for layer in layers), judge(layers), layers, not_executed or [])


@register_result
@dataclass
class GradientsResult(Result):
    """Per-model gradient histories and verdicts; ``save(DIR)`` writes ``gradients.json`` and the figures."""

    name: ClassVar[str] = "gradients"
    schema_version: ClassVar[int] = 2
    models: list[ModelGradients]
    roles: Roles  # which models are under study and which are baselines
    config: dict[str, Any] = field(default_factory=dict)  # the analysis config, or {"every": K} from a probe
    rule: str = RULE

    def figures(self, out_dir: Path) -> list[Path]:
        written = [heatmap_figure(m, out_dir / f"gradients_heatmap_{file_safe_name(m.name)}.png") for m in self.models]
        written.append(depth_figure(self.models, out_dir / "gradients_depth.png"))
        return written


def heatmap_figure(model: ModelGradients, path: Path) -> Path:
    """Layer (input at the top) x recorded step, gradient L2 norm on a log colour scale."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from probe.plotting import save_figure

    grid = np.array([layer.grad_norm.per_step for layer in model.layers], dtype=np.float64)  # [layers, steps]
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
    ax.set(
        xlabel="training step",
        ylabel="layer (input at top, execution order)",
        title=f"{model.name}: gradient L2 norm per layer",
    )
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
            rows.append(
                {
                    "model": m.name,
                    "relative depth": layer.depth / span,
                    "median gradient L2 norm": layer.median_grad,
                    "per sqrt(parameter)": layer.normalised_grad,
                }
            )
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
class GradientsConfig(TrainingRuns):
    """``probe gradients``: train each of ``models`` (or continue ``checkpoint``) ``steps`` steps, recording."""

    out: Path = out_option(Path("runs/gradients"))


def run(config: GradientsConfig) -> GradientsResult:
    """Train every model on the same batches with a :class:`GradientRecorder` attached."""
    config.validate()
    recorders = train_with_hook(config, GradientRecorder, "gradients")
    return GradientsResult(models=[r.result() for r in recorders], roles=config.trained_roles(), config=encode(config))


@TRAIN_PROBES.register("gradients", description="per-layer gradient/weight norms and update ratio -> gradients.json")
def gradients_probe(every: int, out_dir: Path) -> GradientRecorder:
    return GradientRecorder(every=every, out_dir=out_dir, flag="--probe-every")


# -- the report: the question this analysis answers, and its section --------------------------------------

VANISH_RULE = (
    "Yes when a model under study's gradient verdict flags at least one layer as vanishing "
    "(the rule recorded in gradients.json), or its first/last-layer median gradient ratio is below 1e-2; "
    "no when no layer of a model under study is flagged and every such ratio is at least 1e-2. "
    "The baselines' numbers are shown for reference."
)
VANISH_QUESTION = "Do PackNet's gradients vanish?"


def vanish_question(roles: Roles) -> str:
    """The question about the models under study: "Do PackNet's gradients vanish?" in the seed's comparison."""
    return f"Do {roles.phrase(UNDER_STUDY)}'s gradients vanish?"


@QUESTIONS.register("gradients", description=VANISH_QUESTION, order=10)
def gradients_vanish(results: Results) -> Answer | None:
    doc = results.first(GradientsResult)
    if doc is None or not doc.models:
        return None
    roles, question = doc.roles, vanish_question(doc.roles)
    evidence, flagged = [], []
    for m in doc.models:
        v = m.verdict
        evidence.append(
            {
                "model": m.name,
                **roles.evidence(m.name),
                "layers": len(m.layers),
                "vanishing layers": len(v.vanishing),
                "exploding layers": len(v.exploding),
                "first/last median grad": fmt(v.first_last_ratio),
            }
        )
        if roles.under_study(m.name) and (v.vanishing or v.first_last_ratio < 1e-2):  # NaN never counts as below
            flagged.append((m.name, len(v.vanishing), v.first_last_ratio))
    studied = [m for m in doc.models if roles.under_study(m.name)]
    if not studied:
        return Answer(
            question,
            "inconclusive",
            "No model under study was measured, so the question cannot be answered from these runs.",
            VANISH_RULE,
            evidence,
        )
    if flagged:
        parts = ", ".join(f"{n} ({k} layers flagged, first/last ratio {fmt(r)})" for n, k, r in flagged)
        return Answer(question, "yes", f"Yes: gradients vanish in {parts}.", VANISH_RULE, evidence)
    # "no" needs every studied model's ratio >= 1e-2: a missing or NaN ratio never counts as meeting it
    missing = undefined_inputs({f"{m.name}'s first/last ratio": m.verdict.first_last_ratio for m in studied})
    if missing:
        return inconclusive(question, VANISH_RULE, evidence, missing)
    ratios = ", ".join(f"{m.name} {fmt(m.verdict.first_last_ratio)}" for m in studied)
    return Answer(
        question,
        "no",
        f"No: no {roles.phrase(UNDER_STUDY)} layer meets the vanishing rule (first/last ratios: {ratios}).",
        VANISH_RULE,
        evidence,
    )


@SECTIONS.register("gradients", description=VANISH_QUESTION, needs=(GradientsResult,), order=30)
def gradients_section(results: Results) -> Section | None:
    import pandas as pd

    from probe.plotting import plt, sns

    doc = results.first(GradientsResult)
    frames = [
        {"model": m.name, "depth": layer.depth, "median gradient L2 norm": layer.median_grad}
        for m in (doc.models if doc else [])
        for layer in m.layers
        if math.isfinite(layer.median_grad) and layer.median_grad > 0
    ]
    extra: list[Block] = []
    if frames:
        fig, ax = plt.subplots(figsize=(9, 4))
        sns.lineplot(pd.DataFrame(frames), x="depth", y="median gradient L2 norm", hue="model", marker="o", ax=ax)
        ax.set_yscale("log")
        ax.set(xlabel="layer depth (0 = input side)", ylabel="median gradient L2 norm (log scale)")
        extra.append(figure_from_matplotlib(fig, "Median gradient norm per layer, input to output", "depth"))
    extra += embedded_figures(results, GradientsResult, "gradients_heatmap_*.png", "Gradient norm per layer and step")
    return answer_section("gradients", VANISH_QUESTION, results, extra)
