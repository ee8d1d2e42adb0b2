"""Run the model contract (:mod:`probe.models.contract`) on a model, clause by clause.

:func:`check_model` builds the SPEC and runs every clause on a small batch of
synthetic images, returning a :class:`ContractReport`: one :class:`Clause` per
check, ``passed``, ``failed`` (with the fix) or ``skipped`` (a clause it depends
on failed).  The clauses, in order:

=====================  ====================================================================
clause                 passes when
=====================  ====================================================================
``build``              the SPEC imports and its factory returns an ``nn.Module``
``declaration``        output_space, min_depth < max_depth (and input_multiple, output_key) are valid
``weights``            (only with ``weights=``) the state dict fits the network key for key
``eval output``        eval mode gives ``[B,1,h,w]`` with one output scale on both axes
``odd input size``     an odd size (``H+3 x W-3``, 67x93 by default) gives the same output scale;
                       when it fails, the smallest input multiple that works is found and named
``output range``       outputs are finite, in the space's domain, and in metres inside the
                       declared range
``eval determinism``   repeated forwards agree, an image's output does not depend on its
                       batch, and no buffer changes in eval mode
``train output``       train mode gives a tensor or scales ``[B,1,h_i,w_i]``, finest first,
                       the finest of eval mode's shape
``gradients``          a random projection of the train outputs sends a finite, non-zero
                       gradient to every trainable parameter
``parameters``         the model has trainable parameters
=====================  ====================================================================

Eval-mode clauses run first, on the weights as built or loaded; the train-mode
forward comes last because it updates BatchNorm statistics.  Callers add clauses
with ``extra_checks`` (``probe check-model`` adds fvcore MACs from
:mod:`analyses.model_check`).

>>> report = check_model(CheckConfig("packnet_slim_b", width=0.0625, device="cpu"))   # doctest: +SKIP
>>> report.passed, [c.name for c in report.failed]                                    # doctest: +SKIP
(True, [])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.depth_space import to_depth
from probe.device import resolve_device
from probe.errors import ProbeError, one_line
from probe.limits import check_width
from probe.models import build_model, count_parameters
from probe.models.contract import (
    ModelAdapter,
    NetworkError,
    adapt,
    load_weights_option,
    make_network,
    read_declaration,
    spell_key,
)
from probe.models.spec import resolve_spec
from probe.options import device_option, input_size_option, option, parse_model_options, seed_option, width_option
from probe.schema import decode, encode
from probe.seeding import check_seed, seed_everything

#: Smallest side check-model accepts: the odd size is 3 pixels off, and tiny maps say little.
MIN_SIDE = 16
#: Input multiples tried when the odd size fails, smallest first.
MULTIPLES = (2, 4, 8, 16, 32, 64)
#: The dataset cap used to read ``direct``/``depthnorm`` outputs when neither the caller nor the model gives one
#: (the synthetic dataset's, whose images the check uses).
DEFAULT_CAP = 10.0

FIXES: dict[str, str] = {
    "build": "the SPEC must name an importable callable that returns an nn.Module (README: Bringing your own model)",
    "declaration": "declare the attributes on the network or pass them with --model-option KEY=VALUE",
    "weights": "give the network's own state dict (.safetensors, or .pt/.pth holding tensors only)",
    "eval output": "in eval mode return [B,1,h,w] (or [B,h,w]); a dict needs --model-option output_key=KEY",
    "odd input size": "handle any size (e.g. upsample to the skip's size) or declare input_multiple",
    "output range": "end the head with an activation that lands in the space's domain (sigmoid for disparity "
    "and direct, softplus or exp for metric and inverse), or declare the space and range it emits",
    "eval determinism": "make eval mode a function: no dropout or sampling, running statistics instead of batch "
    "statistics, no state updates",
    "train output": "in train mode return a tensor or a list of [B,1,h,w] scales, finest first",
    "gradients": "every trainable parameter must reach the train-mode output: return the scales that use it "
    "(output_key=PART,*), freeze it (requires_grad=False) or remove it",
    "parameters": "the model needs trainable parameters",
}


@dataclass
class Clause:
    """One contract clause: ``status`` is passed | failed | skipped; ``fix`` says what to change when failed."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self, spec: str) -> str:
        """One line: ``passed eval output: ...`` or ``FAILED SPEC: clause: detail; fix: ...``."""
        if self.status == "failed":
            return f"FAILED {spec}: {self.name}: {self.detail}; fix: {self.fix}"
        return f"{self.status} {self.name}: {self.detail}"


@dataclass
class CheckConfig:
    """``probe check-model``: the SPEC, its options, and the batch the clauses run on."""

    spec: str = option(
        argument=True, help="zoo name, entry-point name, package.module:factory or path/to/file.py:factory"
    )
    options: dict[str, Any] = option(
        default_factory=dict,
        flag="--model-option",
        parse=parse_model_options,
        help="KEY=VALUE, repeatable: factory keyword arguments and output_space, "
        "min_depth, max_depth, output_key, input_multiple, weights, name",
    )
    width: float = width_option()
    input_size: tuple[int, int] = input_size_option(
        (64, 96), help="HxW of the checked batch (the odd size is H+3 x W-3)"
    )
    batch_size: int = option(2, help="images per checked batch (at least 2)")
    device: str = device_option()
    seed: int = seed_option()
    max_depth: float | None = option(
        None, help="dataset cap for direct/depthnorm outputs (default: the model's max_depth, else 10 m)"
    )

    def validate(self) -> None:
        check_width(self.width)
        if min(self.input_size) < MIN_SIDE:
            raise ProbeError(
                f"--input-size: expected both sides >= {MIN_SIDE}, got {self.input_size[0]}x{self.input_size[1]}"
            )
        if self.batch_size < 2:
            raise ProbeError(
                f"--batch-size: expected at least 2 (batch independence is a clause), got {self.batch_size}"
            )
        if self.max_depth is not None and not self.max_depth > 0:
            raise ProbeError(f"--max-depth: expected a positive depth in metres, got {self.max_depth}")
        if "width" in self.options:
            raise ProbeError("--model-option width: set the channel multiplier with --width")
        check_seed(self.seed)

    @property
    def odd_size(self) -> tuple[int, int]:
        """Both sides made odd and different from the input's: 64x96 -> 67x93."""
        h, w = self.input_size
        return (h + 3 if h % 2 == 0 else h + 2, w - 3 if w % 2 == 0 else w - 2)


@dataclass
class ContractReport:
    """Every clause of the contract for one model; ``passed`` when none failed."""

    spec: str
    model_name: str | None
    input_size: tuple[int, int]
    odd_size: tuple[int, int]
    clauses: list[Clause] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[Clause]:
        return [c for c in self.clauses if c.status == "failed"]

    def clause(self, name: str) -> Clause:
        return next(c for c in self.clauses if c.name == name)

    def lines(self) -> list[str]:
        return [c.line(self.spec) for c in self.clauses]

    def add(self, name: str, status: str, detail: str, fix: str | None = None) -> Clause:
        clause = Clause(name, status, detail, (fix or FIXES.get(name, "")) if status == "failed" else "")
        self.clauses.append(clause)
        return clause

    def to_json(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_json(cls, data: Any) -> ContractReport:
        """Read :meth:`to_json`'s form back by the field annotations (a wrong key is one SchemaError line)."""
        return decode(cls, data)


#: An extra clause: ``(model in eval mode, images [B,3,H,W]) -> Clause``; exceptions become a failed clause.
ExtraCheck = Callable[[nn.Module, torch.Tensor], Clause]


def check_model(config: CheckConfig, extra_checks: Mapping[str, ExtraCheck] | None = None) -> ContractReport:
    """Build ``config.spec`` and run every clause (see the module docstring) on synthetic images.

    ``extra_checks`` maps clause names to checks run last, on a model whose eval output passed.
    """
    config.validate()
    device = resolve_device(config.device)
    report = ContractReport(config.spec, None, config.input_size, config.odd_size)
    seed_everything(config.seed)
    model = _build(config, report)
    if model is None:
        return report
    report.model_name = str(getattr(model, "model_name", type(model).__name__))
    model = model.to(device)
    images = synthetic_images(config.input_size, config.batch_size, config.seed).to(device)
    eval_out = _eval_output(model, images, report)
    _odd_size(model, images, config.odd_size, eval_out, report)
    _output_range(model, eval_out, config.max_depth, report)
    _eval_determinism(model, images, eval_out, report)
    _train_output(model, images, eval_out, report)
    _gradients(model, images, config.seed, report)
    _parameters(model, report)
    for name, check in (extra_checks or {}).items():
        if eval_out is None:
            report.add(name, "skipped", "needs a passing eval output")
            continue
        try:
            report.clauses.append(check(model.eval(), images))
        except Exception as exc:  # an extra check's own failure is reported, not raised
            report.add(name, "failed", _describe_error(exc), fix="see the message")
    return report


def synthetic_images(size: tuple[int, int], count: int, seed: int) -> torch.Tensor:
    """``count`` images ``[count,3,H,W]`` in [0,1] from probe's synthetic test split (rendered, exact)."""
    from probe.data import get_dataset

    dataset = get_dataset("synthetic", split="test", input_size=size, length=count, seed=seed)
    return torch.stack([dataset[i]["image"] for i in range(count)])


# ------------------------------------------------------------------------------------------
# building: build, declaration, weights
# ------------------------------------------------------------------------------------------


def _build(config: CheckConfig, report: ContractReport) -> nn.Module | None:
    try:
        resolved = resolve_spec(config.spec)
        if resolved.kind == "zoo":
            model = build_model(config.spec, width=config.width, **config.options)
            report.add("build", "passed", f"zoo model {config.spec}")
            report.add("declaration", "passed", _declared(model))
            return model
        net, adapter_options = make_network(resolved, {**config.options, "width": config.width})
    except ProbeError as exc:
        report.add("build", "failed", _strip_spec(one_line(exc), config.spec))
        return None
    report.add("build", "passed", f"{resolved.source} returned a {type(net).__name__}")
    declaration = read_declaration(net, adapter_options, config.spec)
    if declaration.problems:
        report.add(
            "declaration",
            "failed",
            "; ".join(_strip_spec(p, config.spec).removeprefix("declaration: ") for p in declaration.problems),
        )
    if "weights" in adapter_options:
        try:
            load_weights_option(resolved, net, adapter_options)
            report.add("weights", "passed", f"loaded {adapter_options['weights']}")
        except ProbeError as exc:
            report.add("weights", "failed", _strip_spec(one_line(exc), config.spec))
    try:
        model = adapt(resolved, net, adapter_options, declaration)
    except ProbeError as exc:
        report.add("build", "failed", _strip_spec(one_line(exc), config.spec))
        return None
    if not declaration.problems:
        report.add("declaration", "passed", _declared(model))
    return model


def _declared(model: nn.Module) -> str:
    space = getattr(model, "declared_space", None) or getattr(model, "output_space", None)
    low, high = getattr(model, "min_depth", None), getattr(model, "max_depth", None)
    upper = f"{high:g} m" if high is not None else "the dataset's cap"
    text = f"output_space {space}, depth {low if low is not None else 0:g} m..{upper}"
    multiple = getattr(model, "input_multiple", 1)
    return text + (f", input_multiple {multiple}" if multiple and multiple > 1 else "")


def _strip_spec(message: str, spec: str) -> str:
    """Messages of the builders and the adapter start with the SPEC (and the clause); the report's lines name both."""
    for prefix in (f"--model {spec}: ", f"{spec}: "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
            break
    for clause in ("eval output: ", "train output: "):
        message = message.removeprefix(clause)
    return message


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, NetworkError) and exc.__cause__ is not None:
        exc = exc.__cause__
    elif isinstance(exc, ProbeError):
        return one_line(exc)
    return f"{type(exc).__name__}: {one_line(exc)}"


# ------------------------------------------------------------------------------------------
# eval-mode clauses
# ------------------------------------------------------------------------------------------


def describe_output(raw: Any) -> str:
    """A short description of what a network returned: tensor shapes, list lengths, dict keys."""
    if isinstance(raw, torch.Tensor):
        return f"a tensor {list(raw.shape)}"
    if isinstance(raw, (list, tuple)):
        return f"a {type(raw).__name__} of {len(raw)}: " + ", ".join(
            describe_output(r).removeprefix("a tensor ") for r in raw[:6]
        )
    if isinstance(raw, dict):
        return "a dict with keys " + ", ".join(spell_key(k) for k in list(raw)[:8]) + (" ..." if len(raw) > 8 else "")
    return f"a {type(raw).__name__}"


def _forward(model: nn.Module, images: torch.Tensor, training: bool) -> tuple[Any, str]:
    """Model output and, for adapted user models, what the network itself returned."""
    model.train(training)
    seen: list[str] = []
    hook = None
    if isinstance(model, ModelAdapter):
        hook = model.net.register_forward_hook(lambda _m, _i, out: seen.append(describe_output(out)))
    try:
        return model(images), (seen[0] if seen else "")
    finally:
        if hook is not None:
            hook.remove()


def _is_depth_map(out: Any, batch: int) -> bool:
    return isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[0] == batch and out.shape[1] == 1


def _eval_output(model: nn.Module, images: torch.Tensor, report: ContractReport) -> torch.Tensor | None:
    b, _, h, w = images.shape
    try:
        with torch.no_grad():
            out, raw = _forward(model, images, training=False)
    except Exception as exc:  # the model's own error is the finding
        report.add("eval output", "failed", _strip_spec(_describe_error(exc), report.spec))
        return None
    if not _is_depth_map(out, b):
        report.add("eval output", "failed", f"expected [{b},1,h,w], got {describe_output(out)}")
        return None
    oh, ow = out.shape[-2:]
    if abs(oh / h - ow / w) > 1.0 / min(oh, ow):
        report.add(
            "eval output",
            "failed",
            f"output {oh}x{ow} for input {h}x{w}: the two axes are scaled differently",
            fix="return one output scale on both axes (crop or resize the head's output)",
        )
        return None
    returned = f"; the network returns {raw}" if raw else ""
    report.add(
        "eval output", "passed", f"{list(out.shape)} for input {list(images.shape)} (output scale {oh / h:g}){returned}"
    )
    return out


def _fits(out_size: int, in_size: int, scale: float) -> bool:
    return math.floor(in_size * scale) <= out_size <= math.ceil(in_size * scale)


def _eval_shape(model: nn.Module, images: torch.Tensor) -> tuple[int, int]:
    with torch.no_grad():
        out, _ = _forward(model, images, training=False)
    if not _is_depth_map(out, images.shape[0]):
        raise ProbeError(f"expected [B,1,h,w], got {describe_output(out)}")
    return tuple(out.shape[-2:])


def _odd_size(
    model: nn.Module, images: torch.Tensor, odd: tuple[int, int], eval_out: torch.Tensor | None, report: ContractReport
) -> None:
    if eval_out is None:
        report.add("odd input size", "skipped", "needs a passing eval output")
        return
    scale = eval_out.shape[-2] / images.shape[-2]
    odd_images = F.interpolate(images, size=odd, mode="bilinear", align_corners=False)
    expected = (
        f"{math.floor(odd[0] * scale)}..{math.ceil(odd[0] * scale)} x "
        f"{math.floor(odd[1] * scale)}..{math.ceil(odd[1] * scale)}"
    )
    try:
        oh, ow = _eval_shape(model, odd_images)
        problem = (
            None
            if _fits(oh, odd[0], scale) and _fits(ow, odd[1], scale)
            else f"{odd[0]}x{odd[1]} gives {oh}x{ow}, expected {expected} at output scale {scale:g}"
        )
    except Exception as exc:  # the model's own error is the finding
        problem = f"{odd[0]}x{odd[1]} fails: {_strip_spec(_describe_error(exc), report.spec)}"
    if problem is None:
        multiple = getattr(model, "input_multiple", 1)
        how = f" (probe pads to a multiple of {multiple} and crops back)" if multiple > 1 else ""
        report.add("odd input size", "passed", f"{odd[0]}x{odd[1]} -> {oh}x{ow}{how}")
        return
    report.add("odd input size", "failed", problem, fix=_multiple_fix(model, odd_images, odd, scale))


def _multiple_fix(model: nn.Module, odd_images: torch.Tensor, odd: tuple[int, int], scale: float) -> str:
    """Find the smallest input multiple under which the odd size works, and say how to declare it."""
    if not isinstance(model, ModelAdapter):
        return FIXES["odd input size"]
    for multiple in MULTIPLES:
        if multiple <= model.input_multiple:
            continue
        trial = ModelAdapter(
            model.net, replace(model.declaration, input_multiple=multiple), spec=model.spec, model_name=model.model_name
        )
        try:
            oh, ow = _eval_shape(trial, odd_images)
        except Exception:  # this multiple does not work either; try the next
            continue
        if _fits(oh, odd[0], scale) and _fits(ow, odd[1], scale):
            return (
                f"the network needs sizes divisible by {multiple}: declare input_multiple = {multiple} on it or "
                f"pass --model-option input_multiple={multiple}; probe then pads inputs and crops outputs back"
            )
    return f"no input multiple up to {MULTIPLES[-1]} works; " + FIXES["odd input size"]


def _output_range(
    model: nn.Module, eval_out: torch.Tensor | None, max_depth: float | None, report: ContractReport
) -> None:
    space = getattr(model, "output_space", None)
    if eval_out is None or space is None:
        report.add("output range", "skipped", "needs a passing eval output and a valid output_space")
        return
    out = eval_out.detach().float()
    declared = getattr(model, "declared_space", None) or space
    if declared != space:
        declared = f"{declared} (as {space})"
    if not torch.isfinite(out).all():
        report.add(
            "output range",
            "failed",
            f"{(~torch.isfinite(out)).float().mean().item():.1%} of outputs are NaN or infinite",
        )
        return
    if space != "log_depth" and (out <= 0).any():
        share = (out <= 0).float().mean().item()
        report.add(
            "output range",
            "failed",
            f"{share:.1%} of {declared} outputs are <= 0 (min {out.min().item():.3g}): "
            "not a depth; converting to metres clamps them to 1e-6, and through the clamp they get no gradient",
        )
        return
    cap = max_depth or getattr(model, "max_depth", None) or DEFAULT_CAP
    low = getattr(model, "min_depth", None) or 0.0
    high = getattr(model, "max_depth", None) or cap
    bounds = (
        f"the declared range {low:g}..{high:g} m"
        if getattr(model, "max_depth", None)
        else f"{low:g} m (declared)..{cap:g} m (cap)"
    )
    metres = to_depth(out, space, cap)
    lo, hi = metres.min().item(), metres.max().item()
    outside = ((metres < low * (1 - 1e-3)) | (metres > high * (1 + 1e-3))).float().mean().item()
    detail = f"{declared} outputs {out.min().item():.3g}..{out.max().item():.3g} are {lo:.3g}..{hi:.3g} m"
    if outside:
        report.add("output range", "failed", f"{detail}: {outside:.1%} outside {bounds}")
    else:
        report.add("output range", "passed", f"{detail}, inside {bounds}")


def _eval_determinism(
    model: nn.Module, images: torch.Tensor, eval_out: torch.Tensor | None, report: ContractReport
) -> None:
    if eval_out is None:
        report.add("eval determinism", "skipped", "needs a passing eval output")
        return
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            again, _ = _forward(model, images, training=False)
            alone, _ = _forward(model, images[:1], training=False)
    except Exception as exc:  # e.g. a model that fails for batch 1
        report.add("eval determinism", "failed", _strip_spec(_describe_error(exc), report.spec))
        return
    size = eval_out.abs().max().item() + 1e-12
    repeat = (again - eval_out).abs().max().item()
    batch = (alone - eval_out[:1]).abs().max().item()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    problems = []
    if repeat > 1e-6 * size:
        problems.append(f"two forwards of one batch differ by up to {repeat:.3g} (dropout or sampling in eval mode?)")
    if batch > 1e-4 * size:
        problems.append(
            f"an image's output changes by up to {batch:.3g} with the rest of its batch "
            "(batch statistics in eval mode?)"
        )
    if changed:
        problems.append(f"eval forwards changed {len(changed)} buffer(s): {', '.join(changed[:3])}")
    if problems:
        report.add("eval determinism", "failed", "; ".join(problems))
    else:
        report.add(
            "eval determinism",
            "passed",
            f"repeat difference {repeat:.2g}, batch-of-one difference {batch:.2g}, no state change",
        )


# ------------------------------------------------------------------------------------------
# train-mode clauses
# ------------------------------------------------------------------------------------------


def _train_output(
    model: nn.Module, images: torch.Tensor, eval_out: torch.Tensor | None, report: ContractReport
) -> None:
    b = images.shape[0]
    try:
        with torch.no_grad():
            outs, raw = _forward(model, images, training=True)
    except Exception as exc:  # the model's own error is the finding
        report.add("train output", "failed", _strip_spec(_describe_error(exc), report.spec))
        return
    scales = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    if not scales or not all(_is_depth_map(s, b) for s in scales):
        report.add("train output", "failed", f"expected a tensor or a list of [{b},1,h,w], got {describe_output(outs)}")
        return
    sizes = [tuple(s.shape[-2:]) for s in scales]
    text = ", ".join(f"{h}x{w}" for h, w in sizes)
    if any(later[0] > earlier[0] for earlier, later in zip(sizes, sizes[1:])):
        report.add("train output", "failed", f"scales {text} are not finest first")
    elif eval_out is not None and sizes[0] != tuple(eval_out.shape[-2:]):
        report.add(
            "train output",
            "failed",
            f"the finest train scale is {sizes[0][0]}x{sizes[0][1]} but eval "
            f"mode returns {eval_out.shape[-2]}x{eval_out.shape[-1]}",
        )
    else:
        returned = f"; the network returns {raw}" if raw else ""
        report.add("train output", "passed", f"{len(sizes)} scale(s) {text}{returned}")


def _gradients(model: nn.Module, images: torch.Tensor, seed: int, report: ContractReport) -> None:
    if report.clause("train output").status != "passed":
        report.add("gradients", "skipped", "needs a passing train output")
        return
    model.zero_grad(set_to_none=True)
    outs, _ = _forward(model, images, training=True)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    # A random projection rather than a plain mean: a mean can cancel exactly for weights before a normalisation.
    generator = torch.Generator().manual_seed(seed)
    loss = sum((o.float() * torch.randn(o.shape, generator=generator).to(o.device)).mean() for o in outs)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    bad = [n for n, p in trainable if p.grad is not None and not torch.isfinite(p.grad).all()]
    zero = [n for n, p in trainable if p.grad is not None and not p.grad.any()]
    model.zero_grad(set_to_none=True)
    problems = [
        f"{len(names)} parameter(s) {what} ({', '.join(names[:3])}{' ...' if len(names) > 3 else ''})"
        for what, names in (
            ("get no gradient", missing),
            ("get a non-finite gradient", bad),
            ("get an exactly zero gradient", zero),
        )
        if names
    ]
    if problems:
        report.add("gradients", "failed", "; ".join(problems))
    else:
        report.add("gradients", "passed", f"all {len(trainable)} trainable tensors get a finite, non-zero gradient")


def _parameters(model: nn.Module, report: ContractReport) -> None:
    total, trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    status = "passed" if trainable else "failed"
    report.add("parameters", status, f"{total:,} parameters, {trainable:,} trainable")
