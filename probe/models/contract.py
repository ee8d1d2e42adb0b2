"""The model contract: what a network must do for every probe command to analyse it.

A user model is any ``nn.Module`` returned by a factory that ``--model SPEC`` names
(:mod:`probe.models.spec`).  The contract, checked clause by clause by
``probe check-model SPEC`` (:func:`probe.models.check.check_model`):

1. **Input** ``[B,3,H,W]`` float in [0, 1] (RGB, no normalisation: a model that wants
   ImageNet statistics applies them itself).
2. **Eval mode** returns ``[B,1,h,w]`` (``[B,h,w]`` is accepted and given its channel);
   a list of scales, or a dict (below), is reduced to its finest scale.
3. **Train mode** returns a tensor or a list of scales ``[B,1,h_i,w_i]``, finest first.
4. **Output space**: the model declares ``output_space``, one of
   :func:`probe.depth_space.output_spaces` (``inverse``, ``direct``, ``depthnorm``,
   ``metric``, ``log_depth``, ``disparity``; their conversions to metres are in
   :mod:`probe.depth_space`), and its **depth range** ``min_depth`` < ``max_depth``
   in metres, as attributes of the module or as
   ``--model-option output_space=disparity min_depth=0.1 max_depth=100``.
5. **Dict outputs** (Monodepth2's decoder returns ``{("disp", 0): ..., ("disp", 1): ...}``)
   need ``output_key``: ``output_key=depth`` names a string key, ``output_key=disp,0``
   the tuple key ``("disp", 0)`` (comma-separated parts, integers read as integers), and
   ``output_key=disp,*`` every scale ``("disp", 0), ("disp", 1), ...`` finest first,
   so that training supervises all of them.
6. **Any input size**: the model handles any ``H, W`` itself, or declares
   ``input_multiple`` (attribute or option); probe then pads inputs (replicate, bottom
   and right) to that multiple and crops every output back.
7. **Gradients** reach every trainable parameter from the train-mode outputs.
8. **Outputs lie in the space's domain** (positive for ``inverse``, ``direct``,
   ``depthnorm`` and ``metric``; [0, 1] for ``disparity``; finite for all), and
   in metres inside the declared range.
9. **Eval mode is a function**: the same input gives the same output, an image's
   output does not depend on the rest of its batch, and no buffer changes.

:class:`ModelAdapter` is the one place user models are normalised: it wraps the
network and gives it the attributes every zoo model carries (``output_space``,
``min_depth``, ``output_scale``, ``input_multiple``, ``family``, ``model_name``;
see docs/CONTRACTS.md), so the rest of probe treats both alike.  Options that
belong to the adapter (:data:`ADAPTER_OPTIONS`) are separated from the factory's
keyword arguments; one the factory's signature names explicitly reaches it too
(a factory taking ``min_depth`` gets the same value probe uses), except ``weights``,
which probe always loads itself without running code
(:func:`probe.models.user_weights.load_user_weights`).

>>> import torch, torch.nn as nn
>>> class Tiny(nn.Module):
...     output_space, min_depth, max_depth = "log_depth", 0.1, 100.0
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv2d(3, 1, 3, padding=1)
...     def forward(self, x):
...         return self.conv(x)
>>> model = ModelAdapter(Tiny(), read_declaration(Tiny(), {}, "tiny"), spec="tiny", model_name="tiny")
>>> model.eval()(torch.rand(2, 3, 20, 30)).shape, model.output_space, model.output_scale
(torch.Size([2, 1, 20, 30]), 'log_depth', 1.0)
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn as nn

from probe.depth_space import MODEL_RANGE_SPACES, output_spaces
from probe.errors import ProbeError, ShapeError, one_line
from probe.models.common import pad_to_multiple
from probe.models.spec import ResolvedSpec
from probe.models.user_weights import load_user_weights

#: Options that configure probe's adapter rather than the network, with what they mean.
ADAPTER_OPTIONS: dict[str, str] = {
    "output_space": "what the output means: " + ", ".join(output_spaces()),
    "min_depth": "smallest depth the model predicts, metres",
    "max_depth": "largest depth the model predicts, metres",
    "output_key": "which entry of a dict output is depth: KEY, PART,PART (tuple key) or PART,* (all scales)",
    "input_multiple": "inputs are padded to a multiple of this and outputs cropped back",
    "weights": "a .safetensors or .pt/.pth state dict of the network, loaded without running code",
    "name": "the display name in tables and reports",
    "checkpoint_stages": "submodule paths of the network recomputed in backward (--activation-checkpointing): "
    "PATH,PATH,...",
}


class NetworkError(ProbeError):
    """The user's network raised in its forward; ``__cause__`` is its own exception."""


#: The family every adapted user model reports (zoo models say "packnet" or "densedepth").
USER_FAMILY = "user"

_ALL_SCALES = "*"


@dataclass(frozen=True)
class OutputKey:
    """Which entry of a dict output is depth, as spelt by the user (see the module docstring, clause 5)."""

    spelling: Any

    @property
    def all_scales(self) -> bool:
        return isinstance(self.spelling, str) and self.spelling.replace(" ", "").endswith("," + _ALL_SCALES)

    def candidates(self) -> list[Any]:
        """Keys this spelling may mean, most literal first: the value itself, its text, its tuple reading."""
        if isinstance(self.spelling, tuple):
            return [self.spelling]
        text = str(self.spelling)
        found: list[Any] = [self.spelling] if not isinstance(self.spelling, str) else []
        found.append(text)
        if "," in text:
            found.append(tuple(_key_part(p) for p in text.split(",")))
        return found

    def select(self, outputs: Mapping[Any, Any], label: str) -> list[Any]:
        """The selected entries, finest first (several only for ``PART,*``)."""
        if self.all_scales:
            prefix = tuple(_key_part(p) for p in str(self.spelling).split(",")[:-1])
            scales: list[Any] = []
            while (prefix + (len(scales),)) in outputs:  # (*prefix, n) needs Python 3.11; probe supports 3.10
                scales.append(outputs[prefix + (len(scales),)])
            if scales:
                return scales
        else:
            for key in self.candidates():
                if _hashable(key) and key in outputs:
                    return [outputs[key]]
        raise ShapeError(
            f"{label}: output_key={self.spelling} matches no key of the model's dict output; "
            f"keys: {', '.join(spell_key(k) for k in outputs)}"
        )


def _key_part(text: str) -> Any:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def spell_key(key: Any) -> str:
    """How a dict key is written in ``output_key=...``: ``("disp", 0)`` -> ``disp,0``."""
    return ",".join(str(k) for k in key) if isinstance(key, tuple) else str(key)


@dataclass(frozen=True)
class Declaration:
    """What a model declares about its output (contract clauses 4-6), from attributes or options.

    ``problems`` lists every missing or invalid entry; :func:`build_user_model` refuses a
    declaration with problems, ``check-model`` reports them and checks the other clauses.
    """

    output_space: str | None
    min_depth: float | None
    max_depth: float | None
    input_multiple: int = 1
    output_key: OutputKey | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def probe_space(self) -> str | None:
        """The space probe's losses and metrics see: ``disparity`` becomes ``inverse`` (probe.depth_space)."""
        if self.output_space in MODEL_RANGE_SPACES:
            return MODEL_RANGE_SPACES[self.output_space][0]
        return self.output_space


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_declaration(net: nn.Module, options: Mapping[str, Any], spec: str) -> Declaration:
    """The declaration of ``net``: each of ``options`` overrides the attribute of the same name.

    Never raises: problems are collected, each naming the option that fixes it.
    """

    def value(key: str) -> Any:
        return options[key] if key in options else getattr(net, key, None)

    problems = []
    space = value("output_space")
    if space is None:
        problems.append(
            f"the model declares no output_space; set the attribute or --model-option "
            f"output_space=NAME ({', '.join(output_spaces())})"
        )
    elif space not in output_spaces():
        problems.append(f"output_space={space!r} is not one of {', '.join(output_spaces())}")
        space = None
    depths = {}
    for key in ("min_depth", "max_depth"):
        depths[key] = value(key)
        if depths[key] is None:
            problems.append(f"the model declares no {key}; set the attribute or --model-option {key}=METRES")
        elif not (_is_number(depths[key]) and depths[key] > 0):
            problems.append(f"{key}={depths[key]!r}: expected a positive number of metres")
            depths[key] = None
    low, high = depths["min_depth"], depths["max_depth"]
    if low is not None and high is not None and not low < high:
        problems.append(f"min_depth={low} must be below max_depth={high}")
    multiple = value("input_multiple")
    if multiple is None:
        multiple = 1
    elif not (isinstance(multiple, int) and not isinstance(multiple, bool) and multiple >= 1):
        problems.append(f"input_multiple={multiple!r}: expected an integer >= 1")
        multiple = 1
    output_key = value("output_key")
    if output_key is not None and not (isinstance(output_key, (str, int, tuple)) and not isinstance(output_key, bool)):
        problems.append(f"output_key={output_key!r}: expected KEY, PART,PART or PART,*")
        output_key = None
    return Declaration(
        space,
        float(low) if low is not None else None,
        float(high) if high is not None else None,
        multiple,
        OutputKey(output_key) if output_key is not None else None,
        tuple(f"{spec}: declaration: {p}" for p in problems),
    )


class ModelAdapter(nn.Module):
    """A user network under probe's internal contract: ``[B,3,H,W] -> [B,1,h,w]`` (eval) or scales (train).

    In order, ``forward`` pads the input to ``input_multiple``, runs the network, picks
    ``output_key`` from a dict, turns a tensor / list into scales ``[B,1,h_i,w_i]`` finest
    first (checking shapes), crops them back, and maps model-range spaces (``disparity``)
    to probe's (``inverse``).  The network is ``self.net``: checkpoints hold ``net.*`` keys.
    """

    def __init__(
        self,
        net: nn.Module,
        declaration: Declaration,
        *,
        spec: str,
        model_name: str,
        source: str = "",
        checkpoint_stages: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.net = net
        self.declaration = declaration
        self.spec = spec
        self.model_name = model_name
        self.source = source
        self.family = USER_FAMILY
        self.output_space = declaration.probe_space
        self.declared_space = declaration.output_space
        self.min_depth = declaration.min_depth
        self.max_depth = declaration.max_depth
        self.input_multiple = declaration.input_multiple
        # The network's stages as paths inside the adapter (probe.models.recompute resolves them from here).
        self.checkpoint_stages = tuple(f"net.{path}" for path in checkpoint_stages)
        self._output_scale: float | None = None

    @property
    def output_scale(self) -> float:
        """Output resolution / input resolution, measured once by :meth:`measure_output_scale`."""
        if self._output_scale is None:
            self._output_scale = self.measure_output_scale()
        return self._output_scale

    def measure_output_scale(self) -> float:
        """Eval-mode output height / input height on a grey image; modes and RNG are left as they were."""
        side = math.lcm(self.input_multiple, 32)
        size = (2 * side, 3 * side)
        param = next(self.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        modes = {m: m.training for m in self.modules()}
        self.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                out = self(torch.full((1, 3, *size), 0.5, device=device, dtype=dtype))
        finally:
            for module, training in modes.items():
                module.training = training
        return out.shape[-2] / size[0]

    def forward(self, rgb: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """``[B,3,H,W]`` -> ``[B,1,h,w]`` in eval mode, a list of scales finest first in train mode."""
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ShapeError(f"{self.spec}: input: expected [B,3,H,W], got {list(rgb.shape)}")
        padded, size = pad_to_multiple(rgb, self.input_multiple) if self.input_multiple > 1 else (rgb, None)
        scales = self._scales(self._run_network(padded), rgb.shape[0])
        if size is not None:
            scales = [_crop_back(s, size, padded.shape[-2:]) for s in scales]
        if self.declared_space in MODEL_RANGE_SPACES:
            to_probe = MODEL_RANGE_SPACES[self.declared_space][1]
            low, high = self.min_depth, self.max_depth
            if low is None or high is None:  # read_declaration refuses a range space without both
                raise ProbeError(f"{self.model_name}: output_space={self.declared_space} needs min_depth and max_depth")
            scales = [to_probe(s, low, high) for s in scales]
        return scales if self.training else scales[0]

    def _run_network(self, rgb: torch.Tensor) -> Any:
        """The user's forward; its own errors become one line naming the SPEC (running out of memory excepted)."""
        try:
            return self.net(rgb)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # the user's code failed: name the SPEC, keep the cause for PROBE_DEBUG
            raise NetworkError(
                f"{self.spec}: the network's forward failed on input {list(rgb.shape)} "
                f"({'train' if self.training else 'eval'} mode): {type(exc).__name__}: "
                f"{one_line(exc)}; `probe check-model {self.spec}` checks every clause of the "
                "contract"
            ) from exc

    def _scales(self, raw: Any, batch: int) -> list[torch.Tensor]:
        """The network's output as depth maps finest first; violations name the clause (eval/train output)."""
        where = f"{self.spec}: {'train' if self.training else 'eval'} output"
        key = self.declaration.output_key
        if isinstance(raw, Mapping):
            if key is None:
                raise ShapeError(
                    f"{where}: the model returns a dict (keys {', '.join(spell_key(k) for k in raw)}); "
                    "name the depth entry with --model-option output_key=KEY"
                )
            raw = key.select(raw, where)
        elif key is not None:
            raise ShapeError(
                f"{where}: output_key={key.spelling} is set but the model returns a {type(raw).__name__}, not a dict"
            )
        items = list(raw) if isinstance(raw, (list, tuple)) else [raw]
        if not items:
            raise ShapeError(f"{where}: the model returned an empty {type(raw).__name__}")
        scales = [_depth_map(item, batch, where) for item in items]
        heights = [s.shape[-2] for s in scales]
        if any(later > earlier for earlier, later in zip(heights, heights[1:])):
            raise ShapeError(
                f"{where}: scales must be finest first, got heights "
                f"{', '.join(map(str, heights))}; return them in the other order"
            )
        return scales

    def extra_repr(self) -> str:
        return (
            f"spec={self.spec!r}, output_space={self.declared_space!r}, depth {self.min_depth}..{self.max_depth} m"
            f", input_multiple={self.input_multiple}"
        )


def _depth_map(item: Any, batch: int, where: str) -> torch.Tensor:
    """``[B,1,h,w]`` as is, ``[B,h,w]`` given its channel; anything else is a ShapeError naming ``where``."""
    if isinstance(item, torch.Tensor) and item.is_floating_point() and item.dim() == 3:
        item = item.unsqueeze(1)
    if not (
        isinstance(item, torch.Tensor)
        and item.is_floating_point()
        and item.dim() == 4
        and item.shape[0] == batch
        and item.shape[1] == 1
    ):
        # int(): under torch.jit.trace (fvcore's MAC counter) sizes arrive as 0-d tensors
        got = f"{item.dtype} {[int(n) for n in item.shape]}" if isinstance(item, torch.Tensor) else type(item).__name__
        raise ShapeError(f"{where}: expected a float [B,1,h,w] (or [B,h,w]) with B={batch}, got {got}")
    return item


def _crop_back(out: torch.Tensor, size: tuple[int, int], padded: torch.Size) -> torch.Tensor:
    """Crop an output computed on a padded input to the unpadded input's share, per axis."""
    # float(): under torch.jit.trace (fvcore's MAC counter) sizes arrive as 0-d tensors.
    h = max(1, int(round(float(size[0]) * float(out.shape[-2]) / float(padded[0]))))
    w = max(1, int(round(float(size[1]) * float(out.shape[-1]) / float(padded[1]))))
    return out[..., :h, :w]


# ------------------------------------------------------------------------------------------
# building
# ------------------------------------------------------------------------------------------


def split_options(resolved: ResolvedSpec, factory: Any, options: Mapping[str, Any]) -> tuple[dict, dict]:
    """``options`` -> (factory keyword arguments, adapter options); unknown names are one ProbeError.

    ``width`` (``--width``) reaches a factory that takes it; for one that does not, only the
    default 1.0 is allowed (it means "as the factory builds it").
    """
    spec = resolved.spec
    try:
        params = dict(inspect.signature(factory).parameters)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):  # a builtin or C callable without a signature: pass what it is given
        params, takes_any = {}, True
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    adapter = {k: v for k, v in options.items() if k in ADAPTER_OPTIONS}
    factory_kwargs = {
        k: v for k, v in options.items() if k != "weights" and (k not in ADAPTER_OPTIONS or k in named) and k != "width"
    }
    width = options.get("width", 1.0)
    if "width" in named or (takes_any and "width" in options and width != 1.0):
        factory_kwargs["width"] = width
    elif width != 1.0:
        raise ProbeError(
            f"--width: the factory of {spec} takes no width argument; size it with its own "
            f"--model-option (it takes: {', '.join(sorted(named)) or 'nothing'})"
        )
    unknown = sorted(k for k in factory_kwargs if k not in named) if not takes_any else []
    if unknown:
        raise ProbeError(
            f"{spec}: unknown option(s) {', '.join(unknown)}; the factory takes "
            f"{', '.join(sorted(named)) or 'nothing'}, probe's adapter takes {', '.join(ADAPTER_OPTIONS)}"
        )
    return factory_kwargs, adapter


def make_network(resolved: ResolvedSpec, options: Mapping[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """Call the SPEC's factory with its options: (the network, the adapter's options)."""
    factory = resolved.load()
    kwargs, adapter_options = split_options(resolved, factory, options)
    try:
        net = factory(**kwargs)
    except ProbeError:
        raise
    except Exception as exc:  # the user's factory failed: name the SPEC, keep its message
        raise ProbeError(f"{resolved.spec}: the factory raised {type(exc).__name__}: {one_line(exc)}") from exc
    if not isinstance(net, nn.Module):
        raise ProbeError(f"{resolved.spec}: the factory returned a {type(net).__name__}, not an nn.Module")
    return net, adapter_options


def adapt(
    resolved: ResolvedSpec, net: nn.Module, adapter_options: Mapping[str, Any], declaration: Declaration
) -> ModelAdapter:
    """Wrap ``net`` (weights already loaded) with its declaration and display name."""
    name = adapter_options.get("name")
    if name is not None and not (isinstance(name, str) and name.strip()):
        raise ProbeError(f"{resolved.spec}: --model-option name: expected a non-empty name, got {name!r}")
    return ModelAdapter(
        net,
        declaration,
        spec=resolved.spec,
        model_name=name or resolved.name,
        source=resolved.source,
        checkpoint_stages=read_checkpoint_stages(resolved.spec, net, adapter_options),
    )


def read_checkpoint_stages(spec: str, net: nn.Module, options: Mapping[str, Any]) -> tuple[str, ...]:
    """The stages ``--activation-checkpointing`` recomputes: the option, else ``net.checkpoint_stages``, else none.

    Each is a submodule path of the network (``encoder``, ``decoder.up1``); a path that names no submodule
    is a ProbeError naming the SPEC.  The option is written ``checkpoint_stages=encoder,decoder``.
    """
    given = options["checkpoint_stages"] if "checkpoint_stages" in options else getattr(net, "checkpoint_stages", None)
    if given is None:
        return ()
    paths = [p.strip() for p in given.split(",")] if isinstance(given, str) else given
    if not isinstance(paths, (list, tuple)) or not all(isinstance(p, str) and p for p in paths):
        raise ProbeError(f"{spec}: checkpoint_stages={given!r}: expected submodule paths, e.g. encoder,decoder")
    for path in paths:
        try:
            net.get_submodule(path)
        except AttributeError:
            raise ProbeError(
                f"{spec}: checkpoint_stages names {path!r}, which is not a submodule of the network"
            ) from None
    return tuple(paths)


def load_weights_option(resolved: ResolvedSpec, net: nn.Module, adapter_options: Mapping[str, Any]) -> None:
    """``weights=PATH``: the network's own state dict (or probe's checkpoint of it), read without running code."""
    path = adapter_options.get("weights")
    if path is not None:
        load_user_weights(net, str(path), label=f"{resolved.spec}: --model-option weights={path}")


def build_user_model(resolved: ResolvedSpec, options: Mapping[str, Any]) -> ModelAdapter:
    """The SPEC's network, weights loaded, wrapped in :class:`ModelAdapter`; bad input is one ProbeError."""
    net, adapter_options = make_network(resolved, options)
    declaration = read_declaration(net, adapter_options, resolved.spec)
    if declaration.problems:
        raise ProbeError(declaration.problems[0])
    load_weights_option(resolved, net, adapter_options)
    return adapt(resolved, net, adapter_options, declaration)
