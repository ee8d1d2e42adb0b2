"""What does a model cost? Parameters, MACs, activations, latency and memory, per model and per block.

For each model at one input size ``[H, W]`` (batch of ``batch_size`` random images):

- ``params`` / ``trainable_params``;
- ``macs``: fvcore's ``FlopCountAnalysis`` total, one multiply-add = one, with the
  extra operator handlers in :data:`MAC_HANDLERS`; operators that still have no
  handler (elementwise activations, pooling by max, padding, pixel shuffles...) add
  nothing and are listed with their call counts in ``unsupported_ops``;
- ``flops_torch``: ``torch.utils.flop_counter.FlopCounterMode`` on the same input
  (it counts a multiply-add as two FLOPs and only matmul/convolution-like ops);
- ``by_module``: params and MACs per block (see :func:`report_blocks`), plus a
  ``(top level)`` entry for work done in the model's own ``forward``, so the
  entries sum to the totals;
- ``activation_count``: fvcore's ``ActivationCountAnalysis`` (outputs of convolutions and matmuls);
- ``latency``: median wall time of ``repeats`` runs after ``warmup`` runs, synchronised:
  forward in eval mode without autograd, forward+backward in training mode (a
  training step without the optimizer);
- ``peak_memory_bytes``: on CUDA, the allocator's peak during one forward+backward
  (``peak_memory_forward_bytes`` for an eval forward); null on CPU with ``peak_memory_reason``;
- ``training_memory``: the memory one Adam training step of ``batch_size`` images needs, estimated
  without allocating it (:func:`probe.memory.estimate_training_memory`: activations autograd saves
  for these images, weights, gradients, Adam's two states, the input), for CPU-only users who plan
  a GPU run; on CUDA it is set against the measured peak (:class:`TrainingMemory`).

``precision`` and ``activation_checkpointing`` describe the training step: they apply to the
forward+backward timing, its CUDA peak and the estimate (the eval forward stays fp32, plain).

>>> from analyses.complexity import ComplexityConfig, run
>>> result = run(ComplexityConfig(models=["densedepth"], input_size=(64, 64), width=0.0625,
...                               repeats=1, warmup=0))          # doctest: +SKIP
>>> result.models[0].params                                     # doctest: +SKIP
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
import torch.nn as nn
from rich.progress import Progress
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

with warnings.catch_warnings():
    # fvcore scripts its loss functions at import time, which torch now flags as deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
    from fvcore.nn.jit_handles import elementwise_flop_counter

from probe.device import device_description, resolve_device, synchronize
from probe.errors import ProbeError, one_line
from probe.limits import (
    MAX_BATCH_SIZE,
    MAX_REPEATS,
    check_count,
    check_int,
    check_optional_count,
    check_size,
    check_width,
)
from probe.memory import ACTIVATION_SCALE, GIB, MemoryEstimate, check_training_fits, estimate_training_memory
from probe.models import MODELS, build_model, count_parameters, list_models
from probe.models.common import output_scales
from probe.models.recompute import checkpoint_stages, enable_activation_checkpointing
from probe.options import device_option, input_size_option, model_options_option, option, seed_option, width_option
from probe.registry import Registry
from probe.report import document
from probe.report.collect import Results
from probe.report.sections import SECTIONS, embedded_figures
from probe.results import Result, register_result
from probe.roles import ModelSelection, Roles, baselines_option
from probe.seeding import check_seed, seed_everything

TOP_LEVEL = "(top level)"

# Operators fvcore's default table lacks but that do arithmetic worth counting.  Convolutions of
# any dimension (conv2d, conv3d, transposed) already go through fvcore's ``aten::_convolution``.
MAC_HANDLERS: Registry[Callable[..., Any]] = Registry("MAC handler")
MAC_HANDLERS.register("aten::avg_pool2d", description="one per input element, as fvcore's adaptive_avg_pool2d")(
    elementwise_flop_counter(1, 0)
)
MAC_HANDLERS.register("aten::avg_pool3d", description="one per input element, as fvcore's adaptive_avg_pool2d")(
    elementwise_flop_counter(1, 0)
)


@dataclass
class ComplexityConfig(ModelSelection):
    """What to measure. ``repeats``/``warmup`` default to 3/1 on CPU and 20/5 on CUDA.

    Models are zoo names or SPECs (``--model``, then ``--baseline``); ``model_options`` reach every model,
    ``MODEL:KEY`` ones only that model.
    """

    models: list[str] = option(
        default_factory=list_models,
        flag="--model",
        shown="the zoo",
        help="model under study: a zoo name or SPEC (repeat; default: every zoo depth model)",
    )
    baselines: list[str] = baselines_option()
    model_options: dict[str, Any] = model_options_option(scoped=True)
    input_size: tuple[int, int] = input_size_option((192, 640), help="HxW of the measured input")
    width: float = width_option()
    batch_size: int = option(1, help="images per measured forward, and of the training-memory estimate")
    precision: str = option(
        "fp32", help="fp32|bf16|fp16: the training step's autocast (fwd+bwd timing, CUDA peak, memory estimate)"
    )
    activation_checkpointing: bool = option(
        False, flag="--activation-checkpointing", help="the training step recomputes the model's stages in backward"
    )
    device: str = device_option()
    repeats: int | None = option(None, help="timed runs, median reported (default 3 on CPU, 20 on CUDA)")
    warmup: int | None = option(None, help="untimed warm-up runs (default 1 on CPU, 5 on CUDA)")
    seed: int = seed_option()

    def validate(self) -> None:
        if not self.models:
            raise ProbeError("--model: give at least one model name")
        self.validate_models()
        check_count("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        check_optional_count("--repeats", self.repeats, MAX_REPEATS)
        if self.warmup is not None:
            check_int("--warmup", self.warmup, 0, MAX_REPEATS, "untimed warm-up runs")
        check_width(self.width)
        check_size(self.input_size)
        check_seed(self.seed)
        if self.precision not in ACTIVATION_SCALE:
            raise ProbeError(f"--precision: expected one of {', '.join(ACTIVATION_SCALE)}, got {self.precision!r}")
        if self.activation_checkpointing:  # a model without checkpoint stages fails before anything is measured
            for name in self.compared():
                with torch.device("meta"):
                    checkpoint_stages(build_model(name, width=self.width, **self.options_for(name)))
        self.check_memory()

    def check_memory(self) -> None:
        """Refuse, before any model is built, a model whose timed training step cannot fit the free memory."""
        device = resolve_device(self.device)
        for name in self.compared():
            check_training_fits(
                name,
                input_size=self.input_size,
                batch_size=self.batch_size,
                width=self.width,
                model_options=self.options_for(name),
                precision=self.precision,
                activation_checkpointing=self.activation_checkpointing,
                device=device,
                optimizer=False,  # the timed step is forward and backward, no optimizer
            )


@dataclass
class TrainingMemory:
    """Bytes one Adam training step needs, estimated on the ``meta`` device (:mod:`probe.memory`).

    ``total_bytes`` = weights + gradients + Adam states (what does not grow with the batch)
    + ``batch_size`` x ``activation_bytes_per_image`` + the input batch.  The backward pass's
    transient buffers and the loss are not counted.  ``peak_over_estimate`` (CUDA only): the
    measured peak of the forward+backward step (no optimizer) over the estimate's part of it
    (total less Adam's states); above 1 by the transient buffers, None where nothing was measured.
    """

    batch_size: int
    precision: str
    activation_checkpointing: bool
    parameters: int
    weight_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    activation_bytes_per_image: float
    input_bytes: int
    total_bytes: int
    total_gb: float  # GiB, as the table shows it
    peak_over_estimate: float | None

    @classmethod
    def of(cls, estimate: MemoryEstimate, activation_checkpointing: bool, peak: int | None) -> "TrainingMemory":
        without_optimizer = estimate.total_bytes - estimate.optimizer_bytes
        return cls(
            batch_size=estimate.batch_size,
            precision=estimate.precision,
            activation_checkpointing=activation_checkpointing,
            parameters=estimate.parameters,
            weight_bytes=estimate.weight_bytes,
            gradient_bytes=estimate.gradient_bytes,
            optimizer_bytes=estimate.optimizer_bytes,
            activation_bytes=estimate.activation_bytes,
            activation_bytes_per_image=estimate.activation_bytes / estimate.batch_size,
            input_bytes=estimate.input_bytes,
            total_bytes=estimate.total_bytes,
            total_gb=estimate.total_bytes / GIB,
            peak_over_estimate=peak / without_optimizer if peak is not None else None,
        )


@dataclass
class BlockCost:
    """Parameters and MACs of one block (a module path inside the model)."""

    name: str
    params: int
    macs: int


@dataclass
class Latency:
    """Median wall time per call in milliseconds: eval forward, and a training-mode forward+backward."""

    device: str
    forward_ms: float
    forward_backward_ms: float
    repeats: int
    warmup: int
    batch_size: int


@dataclass
class ModelComplexity:
    """Everything measured for one model at one input size."""

    name: str
    input_size: list[int]
    options: dict[str, Any]
    params: int
    trainable_params: int
    macs: int
    macs_by_operator: dict[str, int]
    unsupported_ops: dict[str, int]
    flops_torch: int
    by_module: list[BlockCost]
    activation_count: int
    latency: Latency
    peak_memory_bytes: int | None
    peak_memory_forward_bytes: int | None
    peak_memory_reason: str | None
    training_memory: TrainingMemory
    measure_seconds: float


@register_result
@dataclass
class ComplexityResult(Result):
    """``complexity.json`` (``{"models": [...]}``) and ``complexity_blocks.png``."""

    name: ClassVar[str] = "complexity"
    # 2: config.precision, config.activation_checkpointing, training_memory; 3: roles, config.model_options
    schema_version: ClassVar[int] = 3
    config: ComplexityConfig
    device: str
    device_name: str
    models: list[ModelComplexity]
    roles: Roles  # which models are under study and which are baselines

    def figures(self, out_dir: Path) -> list[Path]:
        return [plot_blocks(self.models, Path(out_dir) / "complexity_blocks.png")]

    def table(self) -> Table:
        """A rich table of the totals, one row per model, with operators lacking a MAC handler as a caption."""
        caption = "\n".join(filter(None, [self.memory_caption(), self.unhandled_caption()]))
        table = Table(title=f"complexity on {self.device_name}", caption=caption)
        table.add_column("model", no_wrap=True)
        for column in (
            "input",
            "params",
            "GMACs",
            "torch GFLOPs",
            "activ. (M)",
            "fwd ms",
            "fwd+bwd ms",
            "peak MiB",
            "train GB (est.)",
        ):
            table.add_column(column, justify="right")
        for m in self.models:
            peak = f"{m.peak_memory_bytes / 2**20:,.0f}" if m.peak_memory_bytes is not None else "-"
            table.add_row(
                m.name,
                "x".join(map(str, m.input_size)),
                f"{m.params:,}",
                f"{m.macs / 1e9:,.2f}",
                f"{m.flops_torch / 1e9:,.2f}",
                f"{m.activation_count / 1e6:,.1f}",
                f"{m.latency.forward_ms:,.1f}",
                f"{m.latency.forward_backward_ms:,.1f}",
                peak,
                f"{m.training_memory.total_gb:,.2f}",
            )
        return table

    def memory_caption(self) -> str:
        """What the "train GB (est.)" column assumed."""
        c = self.config
        return (
            f"train GB (est.): estimated training memory (GiB) of one Adam step at batch {c.batch_size}, "
            f"{c.precision}{', activation checkpointing' if c.activation_checkpointing else ''}: weights, "
            "gradients, Adam states, saved activations, input (probe.memory)"
        )

    def unhandled_caption(self) -> str:
        """``model: op xN, ...`` for operators counted as zero MACs because no handler knows them."""
        parts = [
            f"{m.name}: " + ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in m.unsupported_ops.items())
            for m in self.models
            if m.unsupported_ops
        ]
        return ("0 MACs (no handler): " + "; ".join(parts)) if parts else ""


@dataclass
class ModelSummary:
    """One row of ``probe models``."""

    name: str
    family: str
    params: int
    description: str


def model_summaries(width: float = 1.0) -> list[ModelSummary]:
    """Every registered model with its parameter count at ``width``.

    Models are built on the ``meta`` device (shapes, no storage), so even the
    128 M-parameter PackNet is counted instantly.

    >>> [s.params for s in model_summaries(1.0) if s.name == "densedepth"]
    [42657689]
    """
    summaries = []
    for entry in MODELS.entries():
        with torch.device("meta"):
            model = entry.factory(width=width)
        summaries.append(
            ModelSummary(entry.name, str(entry.meta.get("family", "")), count_parameters(model), entry.description)
        )
    return summaries


def model_table(summaries: list[ModelSummary], width: float) -> Table:
    """A rich table of :func:`model_summaries`."""
    table = Table(title=f"registered models (width {width:g})")
    table.add_column("name")
    table.add_column("family")
    table.add_column("parameters", justify="right")
    table.add_column("description")
    for s in summaries:
        table.add_row(s.name, s.family, f"{s.params:,}", s.description)
    return table


@dataclass
class MacCount:
    """fvcore MACs of one forward: the total, per operator, per module path, and unhandled operators."""

    total: int
    by_operator: dict[str, int]
    by_module: dict[str, int]
    unsupported_ops: dict[str, int]


def count_macs(model: nn.Module, inputs: torch.Tensor) -> MacCount:
    """MACs of ``model(inputs)`` by fvcore tracing, with :data:`MAC_HANDLERS` added.

    >>> count_macs(nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.rand(1, 3, 4, 4)).total
    3456
    """
    analysis = FlopCountAnalysis(model, inputs)
    for entry in MAC_HANDLERS.entries():
        analysis.set_op_handle(entry.name, entry.factory)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        total = int(analysis.total())
        return MacCount(
            total=total,
            by_operator={k: int(v) for k, v in analysis.by_operator().items()},
            by_module={k: int(v) for k, v in analysis.by_module().items()},
            unsupported_ops=dict(sorted(analysis.unsupported_ops().items())),
        )


def count_activations(model: nn.Module, inputs: torch.Tensor) -> int:
    """fvcore's activation count of ``model(inputs)`` (elements output by convolutions and matmuls)."""
    analysis = ActivationCountAnalysis(model, inputs)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    with torch.no_grad():
        return int(analysis.total())


def count_torch_flops(model: nn.Module, inputs: torch.Tensor) -> int:
    """``torch.utils.flop_counter`` FLOPs of one forward (a multiply-add counts two)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(inputs)
    return int(counter.get_total_flops())


def report_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The blocks costs are reported for: the model's named children, where a child that only
    wraps one module (e.g. DenseDepth's ``encoder`` -> ``features``) is replaced by that module's children.

    >>> blocks = report_blocks(nn.Sequential(nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU()), nn.Conv2d(1, 1, 1)))
    >>> [name for name, _ in blocks]
    ['0', '1']
    """

    def unwrap(path: str, module: nn.Module) -> tuple[str, nn.Module]:
        while len(children := list(module.named_children())) == 1:
            name, module = children[0]
            path = f"{path}.{name}" if path else name
        return path, module

    root_path, root = unwrap("", model)
    blocks: list[tuple[str, nn.Module]] = []
    for name, child in root.named_children():
        path, inner = unwrap(f"{root_path}.{name}" if root_path else name, child)
        grandchildren = list(inner.named_children())
        if inner is child or not grandchildren:
            blocks.append((path, inner))
        else:
            blocks.extend((f"{path}.{n}", m) for n, m in grandchildren)
    return blocks


def block_costs(model: nn.Module, macs: MacCount) -> list[BlockCost]:
    """Params and MACs per :func:`report_blocks` block plus a ``(top level)`` remainder; sums to the totals."""
    seen: set[int] = set()
    costs: list[BlockCost] = []
    for name, module in report_blocks(model):
        params = 0
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params += p.numel()
        costs.append(BlockCost(name, params, macs.by_module.get(name, 0)))
    rest_params = count_parameters(model) - sum(c.params for c in costs)
    rest_macs = macs.total - sum(c.macs for c in costs)
    if rest_params or rest_macs or not costs:
        costs.append(BlockCost(TOP_LEVEL, rest_params, rest_macs))
    return costs


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``fn`` over ``repeats`` synchronised calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _training_step(model: nn.Module, inputs: torch.Tensor) -> None:
    torch.stack([o.float().mean() for o in output_scales(model(inputs))]).sum().backward()
    model.zero_grad(set_to_none=True)


def _forward(model: nn.Module, inputs: torch.Tensor) -> None:
    with torch.no_grad():
        model(inputs)


def measure_model(
    name: str, config: ComplexityConfig, device: torch.device, repeats: int, warmup: int
) -> ModelComplexity:
    """Build ``name`` on ``device`` and measure it (see the module docstring)."""
    started = time.perf_counter()
    options = {"width": config.width, **config.options_for(name)}
    seed_everything(config.seed)
    model = build_model(name, **options).to(device)
    h, w = config.input_size
    inputs = torch.rand(config.batch_size, 3, h, w, device=device)

    model.eval()
    try:
        macs = count_macs(model, inputs)
    except ProbeError:
        raise
    except Exception as exc:  # fvcore's tracer raises many types for an untraceable forward
        raise ProbeError(
            f"{name}: MACs: fvcore cannot trace the eval forward ({type(exc).__name__}: {one_line(exc)[:200]}); "
            f"`probe check-model {name}` shows the fix"
        ) from exc
    activations = count_activations(model, inputs)
    flops = count_torch_flops(model, inputs)
    forward_s = median_seconds(lambda: _forward(model, inputs), repeats, warmup, device)
    if config.activation_checkpointing:  # stages run plainly under no_grad: the eval forward is unchanged
        enable_activation_checkpointing(model)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[config.precision]

    def train_step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            _training_step(model.train(), inputs)

    train_s = median_seconds(train_step, repeats, warmup, device)

    peak = peak_forward = None
    reason: str | None = f"not measured on {device.type}: torch tracks allocator peaks only on CUDA"
    if device.type == "cuda":
        peak_forward = _cuda_peak(lambda: _forward(model.eval(), inputs), device)
        peak = _cuda_peak(train_step, device)
        reason = None
    estimate = estimate_training_memory(
        name,
        input_size=(h, w),
        batch_size=config.batch_size,
        width=config.width,
        model_options=config.options_for(name),
        precision=config.precision,
        activation_checkpointing=config.activation_checkpointing,
        device=device,
    )

    return ModelComplexity(
        name=name,
        input_size=[h, w],
        options=options,
        params=count_parameters(model),
        trainable_params=count_parameters(model, trainable_only=True),
        macs=macs.total,
        macs_by_operator=macs.by_operator,
        unsupported_ops=macs.unsupported_ops,
        flops_torch=flops,
        by_module=block_costs(model, macs),
        activation_count=activations,
        latency=Latency(str(device), forward_s * 1e3, train_s * 1e3, repeats, warmup, config.batch_size),
        peak_memory_bytes=peak,
        peak_memory_forward_bytes=peak_forward,
        peak_memory_reason=reason,
        training_memory=TrainingMemory.of(estimate, config.activation_checkpointing, peak),
        measure_seconds=time.perf_counter() - started,
    )


def _cuda_peak(fn: Callable[[], object], device: torch.device) -> int:
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


def run(config: ComplexityConfig, progress: Progress | None = None) -> ComplexityResult:
    """Measure every model in ``config.models``; see the module docstring for the fields."""
    config.validate()
    device = resolve_device(config.device)
    repeats = config.repeats if config.repeats is not None else (20 if device.type == "cuda" else 3)
    warmup = config.warmup if config.warmup is not None else (5 if device.type == "cuda" else 1)

    task = progress.add_task("complexity", total=len(config.compared())) if progress is not None else None
    measured = []
    for name in config.compared():
        if progress is not None and task is not None:
            progress.update(task, description=f"complexity: {name}")
        measured.append(measure_model(name, config, device, repeats, warmup))
        if progress is not None and task is not None:
            progress.advance(task)
    return ComplexityResult(
        config=config, device=str(device), device_name=device_description(device), models=measured, roles=config.roles()
    )


def plot_blocks(models: list[ModelComplexity], path: Path) -> Path:
    """Horizontal bars of GMACs and millions of parameters per block, one row of panels per model.

    Blocks with neither parameters nor MACs (activations, max-pooling) are left out of the figure.
    """
    import pandas as pd

    from probe.plotting import plt, save_figure, sns

    heights = []
    frames = []
    for m in models:
        rows = [
            {"block": b.name, "GMACs": b.macs / 1e9, "parameters (M)": b.params / 1e6}
            for b in m.by_module
            if b.params or b.macs
        ]
        frames.append(pd.DataFrame(rows or [{"block": "(none)", "GMACs": 0.0, "parameters (M)": 0.0}]))
        heights.append(1.2 + 0.22 * len(frames[-1]))
    fig, axes = plt.subplots(
        len(models), 2, figsize=(12, sum(heights)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for row, (m, frame) in enumerate(zip(models, frames)):
        for col, metric in enumerate(("GMACs", "parameters (M)")):
            ax = axes[row][col]
            sns.barplot(frame, y="block", x=metric, ax=ax, color=sns.color_palette()[col], orient="h")
            ax.set_ylabel(m.name if col == 0 else "")
            ax.tick_params(axis="y", labelsize=7)
            if col == 1:
                ax.tick_params(axis="y", labelleft=False)
            total = m.macs / 1e9 if col == 0 else m.params / 1e6
            ax.set_title(f"{m.name}: {metric} per block (total {total:,.2f})", fontsize=9)
    fig.suptitle(f"Cost per block at {'x'.join(map(str, models[0].input_size))}" if models else "Cost per block")
    fig.tight_layout()
    return save_figure(fig, path)


# -- the report: the models section -----------------------------------------------------------------------


def _memory_header(memory: TrainingMemory) -> str:
    """The estimated-training-memory column's header, naming what the estimate assumed."""
    assumed = f"batch {memory.batch_size}, {memory.precision}" + (
        ", checkpointed" if memory.activation_checkpointing else ""
    )
    return f"est. training memory (GiB; {assumed})"


@SECTIONS.register(
    "models", description="The models: parameters, MACs, latency, memory", needs=(ComplexityResult,), order=10
)
def models_section(results: Results) -> document.Section | None:
    import pandas as pd

    from probe.plotting import plt, sns

    doc = results.first(ComplexityResult)
    if doc is None or not doc.models:
        return None
    rows = [
        {
            "model": m.name,
            **doc.roles.evidence(m.name),
            "input (HxW)": "x".join(str(v) for v in m.input_size),
            "params": m.params,
            "MACs (G)": m.macs / 1e9,
            "FLOPs torch (G)": m.flops_torch / 1e9,
            "activations (M)": m.activation_count / 1e6,
            "forward (ms)": m.latency.forward_ms,
            "fwd+bwd (ms)": m.latency.forward_backward_ms,
            "peak memory (MiB)": m.peak_memory_bytes / 2**20 if m.peak_memory_bytes else None,
            _memory_header(m.training_memory): m.training_memory.total_gb,
        }
        for m in doc.models
    ]
    df = pd.DataFrame(
        {
            "model": [m.name for m in doc.models],
            "parameters (millions)": [m.params / 1e6 for m in doc.models],
            "GMACs per image": [m.macs / 1e9 for m in doc.models],
        }
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.barplot(df, x="model", y="parameters (millions)", ax=axes[0])
    sns.barplot(df, x="model", y="GMACs per image", ax=axes[1])
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Model size and compute")
    blocks: list[document.Block] = [
        document.Table(rows, "complexity.json"),
        document.figure_from_matplotlib(fig, "Parameters (millions) and multiply-accumulates (G) per model", "size"),
    ]
    blocks += embedded_figures(results, ComplexityResult, "complexity_*.png", "Per-block MACs and parameters")
    return document.Section("models", "The models", blocks)
