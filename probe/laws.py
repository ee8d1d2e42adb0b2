"""The laws of pack/unpack, as plain checks and as Hypothesis properties.

Each law is a function ``law_*(...) -> bool`` that checks one concrete case, registered
in :data:`LAWS` with a one-sentence statement and a Hypothesis strategy that generates
cases (random B, C, H, W, ratio r in {2, 3, 4}, and the dtypes in :data:`DTYPES`; tensor
elements are arbitrary bit patterns, so NaN, infinities, -0.0 and subnormals occur).
``tests/test_ops.py`` asserts the same functions under the same strategies, and
:func:`run_laws` (``probe properties``: :func:`run_properties`) runs them programmatically and reports
counterexamples, so the test suite and the CLI check the same laws.

>>> results = run_laws(max_examples=5, seed=0)      # doctest: +SKIP
>>> all(r.passed for r in results)                   # doctest: +SKIP
True
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar, Iterator, Optional, Sequence, TypeGuard, cast

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.reporting import with_reporter

from probe.errors import ShapeError
from probe.limits import MAX_EXAMPLES, check_count
from probe.ops import pack, unpack
from probe.options import option, seed_option
from probe.registry import Registry
from probe.results import Result, register_result
from probe.seeding import check_seed

PackFn = Callable[[torch.Tensor, int], torch.Tensor]

#: dtypes every tensor law is checked over.
DTYPES: tuple[torch.dtype, ...] = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.uint8,
)
#: packing ratios the laws draw from.
RATIOS: tuple[int, ...] = (2, 3, 4)
# Same-width integer types: laws compare bit patterns, so NaN == NaN and -0.0 != 0.0.
_BIT_DTYPES_TORCH = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_BIT_DTYPES_NUMPY = {1: np.uint8, 2: np.int16, 4: np.int32, 8: np.int64}
_MAX_DIM = 3  # B, C and the packed H/W stay tiny so 200 examples run in seconds


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def bit_pattern(x: torch.Tensor) -> torch.Tensor:
    """The elements of ``x`` as same-width integers (flattened): equal iff bitwise equal."""
    return x.contiguous().reshape(-1).view(_BIT_DTYPES_TORCH[x.element_size()])


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape, same dtype, same bits (NaN payloads and signed zeros included)."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(bit_pattern(a), bit_pattern(b))


def describe(value: Any) -> str:
    """Short text for a counterexample: tensors as shape, dtype and their first elements."""
    if isinstance(value, torch.Tensor):
        head = value.reshape(-1)[:6].tolist()
        return f"tensor(shape={tuple(value.shape)}, dtype={str(value.dtype).replace('torch.', '')}, first={head})"
    if isinstance(value, tuple):
        return "(" + ", ".join(describe(v) for v in value) + ")"
    return repr(value)


# ------------------------------------------------------------------------------------------
# the laws (plain checks)
# ------------------------------------------------------------------------------------------


def law_unpack_inverts_pack(x: torch.Tensor, r: int, *, pack_fn: PackFn = pack, unpack_fn: PackFn = unpack) -> bool:
    """``unpack(pack(x, r), r)`` equals ``x`` bit for bit."""
    return bitwise_equal(unpack_fn(pack_fn(x, r), r), x)


def law_pack_inverts_unpack(y: torch.Tensor, r: int, *, pack_fn: PackFn = pack, unpack_fn: PackFn = unpack) -> bool:
    """``pack(unpack(y, r), r)`` equals ``y`` bit for bit."""
    return bitwise_equal(pack_fn(unpack_fn(y, r), r), y)


def law_pack_is_a_permutation(x: torch.Tensor, r: int, *, pack_fn: PackFn = pack) -> bool:
    """``pack(x, r)`` holds exactly the elements of ``x`` (same sorted bit patterns, same count)."""
    out = pack_fn(x, r)
    if out.dtype != x.dtype or out.numel() != x.numel():
        return False
    return torch.equal(torch.sort(bit_pattern(out)).values, torch.sort(bit_pattern(x)).values)


def law_pack_adjoint_is_unpack(
    x: torch.Tensor, y: torch.Tensor, r: int, *, pack_fn: PackFn = pack, unpack_fn: PackFn = unpack
) -> bool:
    """``<pack(x), y> == <x, unpack(y)>`` in float64, and autograd's gradient of pack is unpack.

    Cases are integer-valued float64 tensors, so both inner products are exact and the
    comparison is equality, not a tolerance.
    """
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    lhs = torch.sum(pack_fn(x, r) * y)
    rhs = torch.sum(x * unpack_fn(y, r))
    if not bool(lhs == rhs):
        return False
    leaf = x.clone().requires_grad_(True)
    pack_fn(leaf, r).backward(y)
    return leaf.grad is not None and bitwise_equal(leaf.grad, unpack_fn(y, r))


def law_pack_matches_pixel_unshuffle(
    x: torch.Tensor, r: int, *, pack_fn: PackFn = pack, unpack_fn: PackFn = unpack
) -> bool:
    """``pack`` is ``F.pixel_unshuffle`` and ``unpack`` is ``F.pixel_shuffle``, bit for bit (channel order)."""
    packed = pack_fn(x, r)
    return bitwise_equal(packed, F.pixel_unshuffle(x, r)) and bitwise_equal(
        unpack_fn(packed, r), F.pixel_shuffle(packed, r)
    )


def _valid_ratio(r: object) -> TypeGuard[int]:
    return isinstance(r, int) and not isinstance(r, bool) and r >= 1


def _raises_shape_error(fn: Callable[[], torch.Tensor]) -> tuple[bool, Optional[torch.Tensor]]:
    try:
        return False, fn()
    except ShapeError as exc:
        message = str(exc)
        # The contract is stated on one line and ShapeError is also a ValueError.
        return ("\n" not in message and isinstance(exc, ValueError) and message != ""), None


def law_non_divisible_shapes_raise(
    shape: tuple[int, ...], r: object, *, pack_fn: PackFn = pack, unpack_fn: PackFn = unpack
) -> bool:
    """pack/unpack raise a one-line ShapeError (a ValueError) exactly when the shape contract fails.

    pack needs a 4-D input with H and W divisible by an integer ``r >= 1``; unpack needs
    channels divisible by ``r*r``.  Valid inputs must not raise and must give the
    documented output shape.
    """
    x = torch.zeros(shape, dtype=torch.uint8)
    given = cast(int, r)  # any object on purpose: an invalid ratio must raise, not be rejected by a type
    ratio = r if _valid_ratio(r) else None
    is_4d = len(shape) == 4
    raised, out = _raises_shape_error(lambda: pack_fn(x, given))
    if ratio is not None and is_4d and shape[2] % ratio == 0 and shape[3] % ratio == 0:
        b, c, h, w = shape
        if out is None or tuple(out.shape) != (b, c * ratio * ratio, h // ratio, w // ratio):
            return False
    elif not raised:
        return False
    raised, out = _raises_shape_error(lambda: unpack_fn(x, given))
    if ratio is not None and is_4d and shape[1] % (ratio * ratio) == 0:
        b, c, h, w = shape
        return out is not None and tuple(out.shape) == (b, c // (ratio * ratio), h * ratio, w * ratio)
    return raised


def law_pack_layers_return_documented_shapes(
    b: int, c: int, h: int, w: int, r: int, out_channels: int, d: int, kernel: int
) -> bool:
    """PackLayerConv3d maps [B,C,H,W] -> [B,C,H/r,W/r] and UnpackLayerConv3d [B,C,H,W] -> [B,Cout,rH,rW]."""
    from probe.models.packnet import PackLayerConv3d, UnpackLayerConv3d

    x = torch.rand(b, c, h * r, w * r)
    with torch.no_grad():
        packed = PackLayerConv3d(c, kernel, r=r, d=d)(x)
        unpacked = UnpackLayerConv3d(c, out_channels, kernel, r=r, d=d)(packed)
    return (
        tuple(packed.shape) == (b, c, h, w)
        and tuple(unpacked.shape) == (b, out_channels, h * r, w * r)
        and bool(torch.isfinite(packed).all())
        and bool(torch.isfinite(unpacked).all())
    )


# ------------------------------------------------------------------------------------------
# strategies (shared with tests/test_ops.py)
# ------------------------------------------------------------------------------------------


def tensors(shape: tuple[int, ...], dtype: torch.dtype) -> st.SearchStrategy[torch.Tensor]:
    """Tensors of ``shape`` and ``dtype`` whose elements are arbitrary bit patterns."""
    size = torch.empty((), dtype=dtype).element_size()
    bits = hnp.arrays(_BIT_DTYPES_NUMPY[size], shape)
    return bits.map(lambda a: torch.from_numpy(np.ascontiguousarray(a)).view(dtype))


@st.composite
def packable(draw: st.DrawFn, dtypes: Sequence[torch.dtype] = DTYPES) -> tuple[torch.Tensor, int]:
    """``(x, r)`` with ``x: [B,C,H,W]``, H and W divisible by ``r``."""
    r = draw(st.sampled_from(RATIOS))
    b, c, hq, wq = (draw(st.integers(1, _MAX_DIM)) for _ in range(4))
    dtype = draw(st.sampled_from(dtypes))
    return draw(tensors((b, c, hq * r, wq * r), dtype)), r


@st.composite
def unpackable(draw: st.DrawFn) -> tuple[torch.Tensor, int]:
    """``(y, r)`` with ``y: [B,r*r*C,H,W]``."""
    r = draw(st.sampled_from(RATIOS))
    b, c, h, w = (draw(st.integers(1, _MAX_DIM)) for _ in range(4))
    dtype = draw(st.sampled_from(DTYPES))
    return draw(tensors((b, c * r * r, h, w), dtype)), r


@st.composite
def adjoint_pairs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(x, y, r)``: integer-valued float64 ``x: [B,C,H,W]`` and ``y`` shaped like ``pack(x, r)``."""
    r = draw(st.sampled_from(RATIOS))
    b, c, hq, wq = (draw(st.integers(1, _MAX_DIM)) for _ in range(4))
    values = st.integers(-1024, 1024)
    x = draw(hnp.arrays(np.int64, (b, c, hq * r, wq * r), elements=values))
    y = draw(hnp.arrays(np.int64, (b, c * r * r, hq, wq), elements=values))
    return torch.from_numpy(x).double(), torch.from_numpy(y).double(), r


@st.composite
def any_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], object]:
    """``(shape, r)``: mostly 4-D shapes with dims 1..9, sometimes other ranks; r valid or not."""
    rank = draw(st.sampled_from((4, 4, 4, 4, 1, 2, 3, 5)))
    shape = tuple(draw(st.integers(1, 9)) for _ in range(rank))
    r = draw(st.one_of(st.sampled_from(RATIOS), st.sampled_from((-1, 0, 1, 2.0, True, "2"))))
    return shape, r


@st.composite
def layer_cases(draw: st.DrawFn) -> tuple[int, int, int, int, int, int, int, int]:
    """``(b, c, h, w, r, out_channels, d, kernel)`` for the pack/unpack layers (h, w: packed size).

    Every convolution inside emits at least two channels, so no GroupNorm group is a single
    value (torch rejects those for batch 1 at 1x1 resolution).
    """
    r = draw(st.sampled_from(RATIOS))
    b, c, h, w = draw(st.integers(1, 2)), draw(st.integers(2, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    out_channels = draw(st.integers(1, 4))
    d = draw(
        st.sampled_from([d for d in (1, 2, 4, 8) if (out_channels * r * r) % d == 0 and out_channels * r * r // d >= 2])
    )
    kernel = draw(st.sampled_from((1, 3, 5)))
    return b, c, h, w, r, out_channels, d, kernel


# ------------------------------------------------------------------------------------------
# registry and runner
# ------------------------------------------------------------------------------------------

#: law name -> check function; ``description`` is the statement, ``meta["cases"]`` the strategy.
LAWS: Registry[Callable[..., bool]] = Registry("law")

LAWS.register("unpack_inverts_pack", "unpack(pack(x, r), r) == x bit for bit, for every dtype", cases=packable)(
    law_unpack_inverts_pack
)
LAWS.register("pack_inverts_unpack", "pack(unpack(y, r), r) == y bit for bit, for every dtype", cases=unpackable)(
    law_pack_inverts_unpack
)
LAWS.register(
    "pack_is_a_permutation", "pack(x, r) holds exactly the elements of x (same sorted bit patterns)", cases=packable
)(law_pack_is_a_permutation)
LAWS.register(
    "pack_adjoint_is_unpack",
    "<pack(x), y> == <x, unpack(y)> exactly in float64, and autograd's gradient of pack is unpack",
    cases=adjoint_pairs,
)(law_pack_adjoint_is_unpack)
LAWS.register(
    "pack_matches_pixel_unshuffle",
    "pack == F.pixel_unshuffle and unpack == F.pixel_shuffle bit for bit (same channel order)",
    cases=packable,
)(law_pack_matches_pixel_unshuffle)
LAWS.register(
    "non_divisible_shapes_raise",
    "pack/unpack raise a one-line ShapeError exactly when rank, divisibility or r >= 1 fails",
    cases=any_shapes,
)(law_non_divisible_shapes_raise)
LAWS.register(
    "pack_layers_return_documented_shapes",
    "PackLayerConv3d: [B,C,H,W] -> [B,C,H/r,W/r]; UnpackLayerConv3d: [B,C,H,W] -> [B,Cout,rH,rW]",
    cases=layer_cases,
)(law_pack_layers_return_documented_shapes)


@dataclass
class LawResult:
    """Outcome of one law under Hypothesis."""

    name: str
    statement: str
    examples: int  # cases evaluated (generation and, after a failure, shrinking)
    passed: bool
    counterexample: Optional[str] = None
    seconds: float = 0.0


class _LawViolated(AssertionError):
    pass


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the previous count.

    Law cases are tiny tensors: extra threads only add synchronisation, which on a busy
    machine made the layer law ten times slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_law(
    name: str,
    check: Callable[..., bool],
    cases: st.SearchStrategy[Any],
    statement: str = "",
    *,
    max_examples: int = 200,
    seed: int = 0,
) -> LawResult:
    """Run ``check(*case)`` on Hypothesis-generated ``cases``; a False or an exception is a failure.

    The counterexample is the last failing case Hypothesis tried, i.e. the shrunk one.
    """
    evaluated = 0
    failures: list[str] = []

    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @hypothesis_seed(seed)
    @given(cases)
    def run(case: Any) -> None:
        nonlocal evaluated
        evaluated += 1
        case = case if isinstance(case, tuple) else (case,)
        try:
            holds = bool(check(*case))
        except Exception as exc:  # a crash on a valid case breaks the law as much as a False
            failures.append(f"{describe(case)} raised {type(exc).__name__}: {exc}")
            raise _LawViolated(failures[-1]) from exc
        if not holds:
            failures.append(describe(case))
            raise _LawViolated(failures[-1])

    start = time.perf_counter()
    try:
        with with_reporter(lambda message: None), single_thread():
            run()
        passed = True
    except _LawViolated:
        passed = False
    return LawResult(
        name,
        statement,
        evaluated,
        passed,
        failures[-1] if failures and not passed else None,
        time.perf_counter() - start,
    )


def run_laws(max_examples: int, seed: int, laws: Optional[Registry] = None) -> list[LawResult]:
    """Check every law in ``laws`` (default :data:`LAWS`) on ``max_examples`` generated cases each.

    >>> [r.passed for r in run_laws(3, seed=0)][:2]     # doctest: +SKIP
    [True, True]
    """
    PropertiesConfig(max_examples, seed).validate()
    registry = laws if laws is not None else LAWS
    return [
        check_law(e.name, e.factory, e.meta["cases"](), e.description, max_examples=max_examples, seed=seed)
        for e in registry.entries()
    ]


@dataclass
class PropertiesConfig:
    """``probe properties``: how many Hypothesis examples per law, from which seed."""

    examples: int = option(200, help="Hypothesis examples per law")
    seed: int = seed_option()

    def validate(self) -> None:
        check_count("--examples", self.examples, MAX_EXAMPLES)
        check_seed(self.seed)


@register_result
@dataclass
class PropertiesResult(Result):
    """``properties.json``: every law with its example count, verdict and (shrunk) counterexample."""

    name: ClassVar[str] = "properties"
    schema_version: ClassVar[int] = 1
    max_examples: int
    seed: int
    passed: bool  # every law held
    laws: list[LawResult]

    @classmethod
    def of(cls, results: Sequence[LawResult], *, max_examples: int, seed: int) -> PropertiesResult:
        laws = [replace(r, seconds=round(r.seconds, 3)) for r in results]
        return cls(max_examples, seed, all(r.passed for r in laws), laws)

    @property
    def config(self) -> PropertiesConfig:
        """What ran (recorded in config.json by ``save_run``)."""
        return PropertiesConfig(self.max_examples, self.seed)


def run_properties(config: PropertiesConfig) -> PropertiesResult:
    """Check every law of :data:`LAWS` under Hypothesis (``probe properties``)."""
    config.validate()
    return PropertiesResult.of(run_laws(config.examples, config.seed), max_examples=config.examples, seed=config.seed)


def law_table(results: Sequence[LawResult]) -> Any:
    """A rich table: law, examples, whether it holds, and counterexamples when any law fails.

    The law names state the laws; the full statements are in ``properties.json``.
    """
    from rich.table import Table

    failed = any(not r.passed for r in results)
    table = Table(title="pack/unpack laws")
    table.add_column("law", no_wrap=True)
    table.add_column("examples", justify="right")
    table.add_column("holds")
    if failed:
        table.add_column("counterexample", overflow="fold")
    for r in results:
        row = [r.name, str(r.examples), "[green]yes[/green]" if r.passed else "[bold red]NO[/bold red]"]
        table.add_row(*row, *([r.counterexample or ""] if failed else []))
    return table
