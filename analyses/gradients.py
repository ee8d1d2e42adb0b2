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
on every seed of ``--seeds`` (one run folder each), scores each trained model on
held-out images (did it learn?), and :class:`GradientsResult` judges each run by
:data:`probe.rules.GRADIENT_RULE` (|g|/|w| against the model's median) and each
model over its seeds by :data:`probe.rules.GRADIENT_SEEDS_RULE`.

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

from analyses.probes import TRAIN_PROBES, TrainingProbe, by_name, learned_over_runs
from analyses.training_runs import TrainingRuns, runs_over_seeds, train_with_hook
from probe.errors import ProbeError
from probe.heldout import HeldOutSummary, Learned
from probe.models.spec import file_safe_name
from probe.options import out_option
from probe.report.answers import (
    QUESTIONS,
    Answer,
    excluded_sentence,
    gate,
    model_columns,
    shown,
    verdict_cell,
    with_controls,
)
from probe.report.collect import Results
from probe.report.document import Block, Section, Table, figure_from_matplotlib
from probe.report.guards import inconclusive, undefined_inputs
from probe.report.sections import SECTIONS, answer_section, embedded_figures
from probe.results import Result, register_result
from probe.roles import UNDER_STUDY, Roles
from probe.rules import (
    GRADIENT_RULE,
    GRADIENT_SEEDS_RULE,
    GradientVerdict,
    gradient_margin,
    gradient_weight_ratio,
    vanishing_gradients,
    vanishing_verdict,
)
from probe.schema import encode
from probe.stats import Estimate, Verdict, seed_estimate

RULE = f"{GRADIENT_RULE} {GRADIENT_SEEDS_RULE}"


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
        return ModelGradients.of(str(self.name), list(self._steps), layers, not_executed, self.seed, self.held_out)

    def to_result(self) -> GradientsResult:
        return GradientsResult.of([self.result()], self.roles(), config={"every": self.every})


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
    grad_weight_ratio: float  # median over the recorded steps of |g| / |w|: the rule's measure
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
        """From per-step values; ``grad_weight_ratio`` is dimensionless, so a bias compares with a 3x3 conv."""
        grads, weights = StepSeries.of(grad_norm), StepSeries.of(weight_norm)
        layer = cls(name, type, depth, params, grads, math.nan, weights, StepSeries.of(update_ratio))
        layer.grad_weight_ratio = gradient_weight_ratio(layer)
        return layer

    @property
    def median_grad(self) -> float:
        return self.grad_norm.median


@dataclass
class ModelGradients:
    """All layers of one model on one seed, input to output, the rule's verdict on them and the held-out score."""

    name: str
    seed: int
    steps: list[int]
    params: int
    verdict: GradientVerdict  # probe.rules.GRADIENT_RULE on these layers
    margin: float  # log10(weakest layer's ratio / median ratio): what the verdict over seeds reads
    layers: list[LayerGradients]
    not_executed: list[str]
    held_out: HeldOutSummary | None  # did this run learn? (None: not measured)

    @classmethod
    def of(
        cls,
        name: str,
        steps: list[int],
        layers: list[LayerGradients],
        not_executed: list[str] | None = None,
        seed: int = 0,
        held_out: HeldOutSummary | None = None,
    ) -> ModelGradients:
        """Judge ``layers`` by :data:`probe.rules.GRADIENT_RULE`."""
        if not layers:
            raise ProbeError(f"gradients: model {name!r} has no recorded layer")
        verdict = vanishing_gradients(layers)
        params = sum(layer.params for layer in layers)
        return cls(name, seed, steps, params, verdict, gradient_margin(verdict), layers, not_executed or [], held_out)


@dataclass
class GradientSummary:
    """One model over its seeds: flagged layers per seed, the weakest layer's margin with its interval, learned."""

    name: str
    seeds: list[int]
    layers: int
    vanishing_layers: list[int]  # per seed
    exploding_layers: list[int]  # per seed
    margin: Estimate | None  # log10(min ratio / median ratio) over seeds (None: a seed had no finite ratio)
    spread_decades: Estimate | None
    learned: Learned | None  # None: a seed has no held-out score

    @classmethod
    def of(cls, name: str, runs: list[ModelGradients]) -> GradientSummary:
        return cls(
            name=name,
            seeds=[r.seed for r in runs],
            layers=len(runs[0].layers),
            vanishing_layers=[len(r.verdict.vanishing) for r in runs],
            exploding_layers=[len(r.verdict.exploding) for r in runs],
            margin=seed_estimate([r.margin for r in runs]),
            spread_decades=seed_estimate([r.verdict.spread_decades for r in runs]),
            learned=learned_over_runs(runs),
        )


@register_result
@dataclass
class GradientsResult(Result):
    """Gradient histories and verdicts per model and seed, and each model over its seeds.

    ``save(DIR)`` writes ``gradients.json`` and the figures."""

    name: ClassVar[str] = "gradients"
    schema_version: ClassVar[int] = 3  # 3: held-out scores and learned verdicts with the mean depth map's fields
    models: list[ModelGradients]  # every (model, seed) run
    summaries: list[GradientSummary]  # every model over its seeds
    roles: Roles  # which models are under study and which are baselines
    config: dict[str, Any] = field(default_factory=dict)  # the analysis config, or {"every": K} from a probe
    rule: str = RULE

    @classmethod
    def of(cls, models: list[ModelGradients], roles: Roles, config: dict[str, Any] | None = None) -> GradientsResult:
        """The runs and their summaries over seeds (grouped by model name, in first-seen order)."""
        summaries = [GradientSummary.of(name, runs) for name, runs in by_name(models).items()]
        return cls(models=models, summaries=summaries, roles=roles, config=config or {})

    def figures(self, out_dir: Path) -> list[Path]:
        first = {m.name: m for m in reversed(self.models)}  # each model's first seed
        written = [
            heatmap_figure(m, out_dir / f"gradients_heatmap_{file_safe_name(m.name)}.png") for m in first.values()
        ]
        written.append(depth_figure(self.models, out_dir / "gradients_depth.png"))
        return written


def heatmap_figure(model: ModelGradients, path: Path) -> Path:
    """Layer (input at the top) x recorded step, gradient L2 norm on a log colour scale."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from probe.plotting import save_figure

    grid = np.array([layer.grad_norm.per_step for layer in model.layers], dtype=np.float64)  # [layers, steps]
    shown_grid = np.ma.masked_where(~np.isfinite(grid) | (grid <= 0), grid)
    positive = shown_grid.compressed()
    fig, ax = plt.subplots(figsize=(min(14.0, 4 + 0.08 * grid.shape[1]), min(18.0, 2.5 + 0.12 * grid.shape[0])))
    norm = LogNorm(vmin=float(positive.min()), vmax=float(positive.max())) if positive.size else None
    image = ax.imshow(shown_grid, aspect="auto", interpolation="nearest", cmap="viridis", norm=norm)
    tick_every = max(1, len(model.layers) // 40)
    ticks = list(range(0, len(model.layers), tick_every))
    ax.set_yticks(ticks, [model.layers[i].name for i in ticks], fontsize=6)
    step_ticks = list(range(0, len(model.steps), max(1, len(model.steps) // 10)))
    ax.set_xticks(step_ticks, [str(model.steps[i]) for i in step_ticks])
    ax.set(
        xlabel="training step",
        ylabel="layer (input at top, execution order)",
        title=f"{model.name} (seed {model.seed}): gradient L2 norm per layer",
    )
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="gradient L2 norm (log scale)")
    return save_figure(fig, path)


def ratio_frame(models: Sequence[ModelGradients]) -> Any:
    """One row per (model, seed, layer): relative depth and |g|/|w| over the model's median (the rule's measure)."""
    import pandas as pd

    rows = []
    for m in models:
        span = max(1, len(m.layers) - 1)
        for layer in m.layers:
            r = layer.grad_weight_ratio / m.verdict.median_ratio if m.verdict.median_ratio > 0 else math.nan
            if math.isfinite(r) and r > 0:
                rows.append(
                    {
                        "model": m.name,
                        "seed": m.seed,
                        "relative depth": round(layer.depth / span, 3),
                        "|g|/|w| over the median": r,
                        "median gradient L2 norm": layer.median_grad,
                    }
                )
    return pd.DataFrame(rows)


def depth_figure(models: Sequence[ModelGradients], path: Path) -> Path:
    """|g|/|w| over the model's median (the rule's measure) and the raw median gradient norm against relative
    depth; each model's line is the mean over seeds, the band the range over seeds."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from probe.plotting import log_axis, save_figure
    from probe.rules import VANISH_BELOW

    frame = ratio_frame(models)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    if not frame.empty:
        for ax, column in zip(axes, ("|g|/|w| over the median", "median gradient L2 norm")):
            sns.lineplot(frame, x="relative depth", y=column, hue="model", errorbar=("pi", 100), ax=ax)
            log_axis(ax)
            ax.set(xlabel="relative depth (0 = first layer executed, 1 = last)", ylabel=f"{column} (log)")
    axes[0].axhline(VANISH_BELOW, ls="--", c="grey")
    axes[0].set_title("the rule's measure (dashed: vanishing threshold; band: range over seeds)")
    axes[1].set_title("median gradient norm per layer (band: range over seeds)")
    return save_figure(fig, path)


# -- the analysis -------------------------------------------------------------------------------


@dataclass
class GradientsConfig(TrainingRuns):
    """``probe gradients``: train each of ``models`` (or continue ``checkpoint``) ``steps`` steps, recording."""

    out: Path = out_option(Path("runs/gradients"))


def run(config: GradientsConfig) -> GradientsResult:
    """Train every model on the same batches with a :class:`GradientRecorder` attached, on every seed."""
    config.validate()

    def one(cfg: GradientsConfig) -> GradientsResult:
        recorders = train_with_hook(cfg, GradientRecorder, "gradients")
        return GradientsResult.of([r.result() for r in recorders], cfg.trained_roles(), encode(cfg))

    per_seed = runs_over_seeds(config, one)
    return GradientsResult.of([m for r in per_seed for m in r.models], config.trained_roles(), encode(config))


@TRAIN_PROBES.register("gradients", description="per-layer gradient/weight norms and update ratio -> gradients.json")
def gradients_probe(every: int, out_dir: Path) -> GradientRecorder:
    return GradientRecorder(every=every, out_dir=out_dir, flag="--probe-every")


# -- the report: the question this analysis answers, and its section --------------------------------------

VANISH_RULE = (
    f"{GRADIENT_RULE} {GRADIENT_SEEDS_RULE} Yes when a model under study's verdict is 'vanishing', no when every "
    "judged model under study's is 'not vanishing', inconclusive otherwise; the baselines' numbers are the reference."
)
VANISH_QUESTION = "Do PackNet's gradients vanish?"


def vanish_question(roles: Roles) -> str:
    """The question about the models under study: "Do PackNet's gradients vanish?" in the seed's comparison."""
    return f"Do {roles.phrase(UNDER_STUDY)}'s gradients vanish?"


def _margin_text(margin: Estimate | None) -> str:
    return "n/a" if margin is None else f"10^{shown(margin)}"


@QUESTIONS.register("gradients", description=VANISH_QUESTION, order=10)
def gradients_vanish(results: Results) -> Answer | None:
    doc = results.first(GradientsResult)
    if doc is None or not doc.summaries:
        return None
    roles, question = doc.roles, vanish_question(doc.roles)
    rule = with_controls(VANISH_RULE, "gradients")
    judged, excluded = gate(doc.summaries, roles)
    verdicts = {s.name: vanishing_verdict(s.margin) for s in judged}
    evidence = [
        {
            **model_columns(s, roles),
            "layers": s.layers,
            "vanishing layers per seed": ", ".join(map(str, s.vanishing_layers)),
            "exploding layers per seed": ", ".join(map(str, s.exploding_layers)),
            "weakest layer / median |g|/|w|": _margin_text(s.margin),
            "verdict": verdict_cell(s, vanishing_verdict(s.margin).verdict),
        }
        for s in doc.summaries
    ]
    if not any(roles.under_study(s.name) for s in doc.summaries):
        sentence = "No model under study was measured, so the question cannot be answered from these runs."
        return Answer(question, "inconclusive", sentence, rule, evidence)
    left_out = excluded_sentence(excluded)
    if not verdicts:
        sentence = (
            f"No verdict: no model under study was shown to learn, and a network that has not learned says "
            f"nothing about training.{left_out}"
        )
        return Answer(question, "inconclusive", sentence, rule, evidence)
    parts = "; ".join(_phrase(roles.display(name), v) for name, v in verdicts.items())
    found = [v.verdict for v in verdicts.values()]
    # "no" needs every judged model's margin: a missing or non-finite one never counts as above the threshold
    missing = undefined_inputs(
        {f"{roles.display(s.name)}'s weakest-layer margin": s.margin.mean if s.margin else None for s in judged}
    )
    if "vanishing" in found:
        verdict, lead = "yes", "Yes"
    elif missing:
        return inconclusive(question, rule, evidence, missing)
    elif all(v == "not vanishing" for v in found):
        verdict, lead = "no", "No"
    else:
        verdict, lead = "inconclusive", "Inconclusive"
    return Answer(question, verdict, f"{lead}: {parts}.{left_out}", rule, evidence)


def _phrase(name: str, verdict: Verdict) -> str:
    if not verdict.conclusive:
        return f"{name}: {verdict.sentence}"
    assert verdict.estimate is not None
    return (
        f"{name} {verdict.verdict} (its weakest layer's |g|/|w| is 10^{shown(verdict.estimate)} x its median, "
        f"{verdict.estimate.method}; threshold 10^-4)"
    )


@SECTIONS.register("gradients", description=VANISH_QUESTION, needs=(GradientsResult,), order=30)
def gradients_section(results: Results) -> Section | None:
    from probe.plotting import log_axis, plt, sns
    from probe.rules import VANISH_BELOW

    doc = results.first(GradientsResult)
    extra: list[Block] = []
    frame = ratio_frame(doc.models if doc else [])
    if not frame.empty:
        fig, ax = plt.subplots(figsize=(9, 4))
        sns.lineplot(frame, x="relative depth", y="|g|/|w| over the median", hue="model", errorbar=("pi", 100), ax=ax)
        log_axis(ax)
        ax.axhline(VANISH_BELOW, ls="--", c="grey")
        ax.set(xlabel="relative depth (0 = input side)", ylabel="|g|/|w| over the model's median (log)")
        extra.append(
            figure_from_matplotlib(
                fig,
                "The rule's measure per layer, input to output: mean over seeds, band = range over seeds "
                "(dashed: vanishing threshold)",
                "depth",
            )
        )
    if doc is not None and doc.summaries:
        extra.append(Table([_seed_row(m) for m in doc.models], "Per seed (gradients.json)"))
    extra += embedded_figures(results, GradientsResult, "gradients_heatmap_*.png", "Gradient norm per layer and step")
    return answer_section("gradients", VANISH_QUESTION, results, extra)


def _seed_row(m: ModelGradients) -> dict[str, Any]:
    return {
        "model": m.name,
        "seed": m.seed,
        "steps recorded": len(m.steps),
        "vanishing layers": len(m.verdict.vanishing),
        "exploding layers": len(m.verdict.exploding),
        "|g|/|w| spread (decades)": m.verdict.spread_decades,
        "weakest / median (log10)": m.margin,
        "held-out abs_rel / constant": m.held_out.ratio.mean if m.held_out else None,
    }
