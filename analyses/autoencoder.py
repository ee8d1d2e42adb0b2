"""Does packing preserve information?  Autoencoders with no skips, same images, same budget.

PackNet's paper shows an autoencoder whose packing/unpacking layers reconstruct
the input far better than max-pooling and bilinear upsampling.  This analysis
re-runs that comparison on any dataset: every architecture reconstructs the RGB
input through a bottleneck with **no skip connection** (all information passes
the bottleneck), trains on the same cached images with the same batch order,
steps, batch size and Adam learning rate, and is scored on held-out (test
split) images with MSE, PSNR and SSIM (:mod:`probe.image_quality`).

Architectures (``ARCHITECTURES`` registry):

* ``pack3d``  space-to-depth + 3-D conv + 2-D conv / 2-D conv + 3-D conv + depth-to-space (PackNet's layers),
* ``pack2d``  space-to-depth + 2-D conv / 2-D conv + depth-to-space (pixel (un)shuffle, no 3-D conv),
* ``maxpool`` 2x2 max-pool / bilinear x2 upsampling (the paper's baseline),
* ``strided`` stride-2 3x3 conv / stride-2 4x4 transposed conv,
* ``zoo_packnet``, ``zoo_densedepth``: the zoo encoder-decoders with their skips cut;
* any model's own encoder (``--model SPEC --encoder-module encoder``): that submodule of the
  network, trained as it is built, followed by max-pool's decoder (:class:`EncoderAutoencoder`),
  recorded under the model's name and compared with max-pool at the same depth.

The generic four share one skeleton, one block type and one channel budget,
swept over 1..5 levels: a stem to ``c0 = max(4, 2*round(16*width))`` channels,
then per level the architecture's 2x down-sampler (channels kept) and a 3x3 conv
to ``c_i = min(c0 * 2**i, 16 * c0)`` channels (doubling, capped like PackNet's
512), mirrored in the decoder, and a linear 3x3 head to RGB.  At width 1 this is
PackNet's 32-64-128-256-512-512 encoder progression.  Every convolution is
PackNet's conv-norm-ELU block, and ``pack3d`` uses PackNet's own
``PackLayerConv3d`` / ``UnpackLayerConv3d`` from :mod:`probe.models.packnet`.
The norm is ``none`` by default (``NORMS``; ``group`` restores PackNet's
GroupNorm): per-image normalisation itself discards information.
The bottleneck therefore holds the same number of values in every generic
architecture at a given level; only the way information is folded into it
differs.  Parameters and MACs (fvcore) are reported next to each score.

>>> from analyses.autoencoder import AutoencoderConfig, run
>>> result = run(AutoencoderConfig(archs=["pack2d", "maxpool"], levels=[1, 2], steps=20,
...                                input_size=(32, 32), width=0.125))   # doctest: +SKIP
>>> result.save("runs/ae")                                                # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.data import dataset_info
from probe.data.samples import load_first_samples
from probe.device import resolve_device, synchronize
from probe.errors import ProbeError, ShapeError, one_line, warn
from probe.image_quality import SSIM_WINDOW, ImageQuality, image_quality, to_uint8_rgb
from probe.jobs import Job, Launch, run_jobs, torch_threads
from probe.limits import (
    MAX_BATCH_SIZE,
    MAX_ITEMS,
    MAX_STEPS,
    check_count,
    check_input_size,
    check_positive_float,
    check_width,
)
from probe.memory import check_host_memory, estimate_module_training_memory, refuse_if_over
from probe.models import build_model, check_options
from probe.models.common import finest_scale, pad_to_multiple
from probe.models.contract import ModelAdapter
from probe.models.packnet import PackLayerConv3d, UnpackLayerConv3d, group_norm
from probe.models.spec import file_safe_name, resolve_spec
from probe.ops import pack, unpack
from probe.options import (
    check_model_options,
    data_root_option,
    dataset_option,
    device_option,
    input_size_option,
    model_options_option,
    option,
    options_for,
    seed_option,
    seeds_option,
    width_option,
)
from probe.registry import Registry
from probe.report.answers import QUESTIONS, Answer, shown, with_controls
from probe.report.collect import Results
from probe.report.document import AnswerBlock, Block, Paragraph, Section, Table, figure_from_matplotlib
from probe.report.sections import SECTIONS, answer_section, embedded_figures
from probe.results import Result, register_result
from probe.roles import UNDER_STUDY, Roles, assign_roles
from probe.rules import NEAR_LOSSLESS_MSE, PACKING_RULE, PackingRun, packing_comparison, plateaued
from probe.schema import transient
from probe.seeding import check_seed, seed_everything, seed_folder, seed_list
from probe.stats import Estimate, seed_estimate

MAX_LEVELS = 5


# -- building blocks ----------------------------------------------------------------------------

Norm = Callable[[int], nn.Module]
#: Normalisation after every convolution of the generic architectures.  ``none`` is the
#: default: a per-image normalisation discards each group's mean and scale, i.e. information,
#: which would blur the comparison of resamplers; ``group`` is PackNet's GroupNorm(16).
NORMS: dict[str, Norm] = {"none": lambda channels: nn.Identity(), "group": group_norm}


class ConvBlock(nn.Sequential):
    """k x k conv, norm, ELU (PackNet's ``Conv2D``, any norm): ``[B,Cin,H,W] -> [B,Cout,H/s,W/s]``."""

    def __init__(self, c_in: int, c_out: int, norm: Norm, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, kernel_size, stride, padding=kernel_size // 2), norm(c_out), nn.ELU())


class PackDown2d(nn.Module):
    """Space-to-depth then a 3x3 conv back to C: ``[B,C,H,W] -> [B,4C,H/2,W/2] -> [B,C,H/2,W/2]``."""

    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.conv = ConvBlock(4 * channels, channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(pack(x, 2))


class UnpackUp2d(nn.Module):
    """A 3x3 conv to 4C then depth-to-space: ``[B,C,H,W] -> [B,4C,H,W] -> [B,C,2H,2W]``."""

    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.conv = ConvBlock(channels, 4 * channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unpack(self.conv(x), 2)


def pack_down_3d(channels: int, norm: Norm) -> nn.Module:
    """PackNet's ``PackLayerConv3d`` (3x3 2-D conv, d = 8 3-D features): ``[B,C,H,W] -> [B,C,H/2,W/2]``."""
    layer = PackLayerConv3d(channels, 3)
    layer.conv.normalize = norm(channels)
    return layer


def unpack_up_3d(channels: int, norm: Norm) -> nn.Module:
    """PackNet's ``UnpackLayerConv3d`` (C -> C): ``[B,C,H,W] -> [B,C,2H,2W]``."""
    layer = UnpackLayerConv3d(channels, channels, 3)
    layer.conv.normalize = norm(layer.conv.conv_base.out_channels)
    return layer


class TransposedUp(nn.Sequential):
    """Stride-2 4x4 transposed conv, normalisation, ELU: ``[B,C,H,W] -> [B,C,2H,2W]``."""

    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__(nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1), norm(channels), nn.ELU())


def level_channels(levels: int, width: float) -> list[int]:
    """Channels ``[c0, c1, ..., cL]``: ``c0 = max(4, 2*round(16*width))``, doubling per level, capped at 16*c0.

    >>> level_channels(5, 1.0)
    [32, 64, 128, 256, 512, 512]
    """
    c0 = max(4, 2 * round(16 * width))
    return [min(c0 * 2**i, 16 * c0) for i in range(levels + 1)]


Resampler = Callable[[int, Norm], nn.Module]


class LevelAutoencoder(nn.Module):
    """Encoder-decoder without skips: ``[B,3,H,W] -> bottleneck [B,c_L,H/2^L,W/2^L] -> [B,3,H,W]``.

    ``down(c, norm)`` and ``up(c, norm)`` build the architecture's 2x resamplers
    (channels kept); any H, W is padded (replicate) to a multiple of ``2**levels``
    and cropped back.
    """

    def __init__(self, levels: int, width: float, down: Resampler, up: Resampler, norm: Norm) -> None:
        super().__init__()
        if not 1 <= levels <= MAX_LEVELS:
            raise ProbeError(f"--levels: expected levels between 1 and {MAX_LEVELS}, got {levels}")
        ch = level_channels(levels, width)
        self.levels, self.channels = levels, ch
        self.input_multiple = 2**levels
        self.stem = ConvBlock(3, ch[0], norm)
        self.encoder = nn.Sequential(
            *[nn.Sequential(down(ch[i], norm), ConvBlock(ch[i], ch[i + 1], norm)) for i in range(levels)]
        )
        self.decoder = nn.Sequential(
            *[nn.Sequential(up(ch[i + 1], norm), ConvBlock(ch[i + 1], ch[i], norm)) for i in reversed(range(levels))]
        )
        # Linear head: the identity must be reachable, and a sigmoid would need its logit inverse.
        self.head = nn.Conv2d(ch[0], 3, 3, padding=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, _ = pad_to_multiple(x, self.input_multiple)
        return self.head(self.decoder(self.encode(padded)))[..., : x.shape[-2], : x.shape[-1]]

    def bottleneck_shape(self, size: tuple[int, int]) -> tuple[int, int, int]:
        """``(C, h, w)`` of the code for an input of ``size`` (after padding)."""
        h = math.ceil(size[0] / self.input_multiple)
        w = math.ceil(size[1] / self.input_multiple)
        return self.channels[-1], h, w


class ZooAutoencoder(nn.Module):
    """A zoo depth network used as an RGB autoencoder: ``[B,3,H,W] -> [B,3,H,W]``.

    Training-mode zoo models return a list of scales (finest first); only the
    finest is used.  Outputs below input resolution (DenseDepth: half) are
    upsampled bilinearly to the input size.
    """

    def __init__(self, model: nn.Module, levels: int) -> None:
        super().__init__()
        self.model, self.levels = model, levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = finest_scale(self.model(x))
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


class EncoderAutoencoder(nn.Module):
    """A model's own encoder, then max-pool's decoder: ``[B,3,H,W] -> code [B,C,H/s,W/s] -> [B,3,H,W]``.

    The code is the encoder's deepest output (of a tensor, list, tuple or dict of ``[B,C,h,w]``
    features, the one with the fewest pixels, the last on ties), at output stride ``s = 2**levels``.
    The decoder is the ``maxpool`` architecture's (per level bilinear x2 upsampling and a conv block,
    channels :func:`level_channels`), whose first block takes the code's own C channels, so nothing
    but the encoder narrows the information.  Inputs are padded (replicate) to a multiple of ``s``
    and the reconstruction is cropped back.
    """

    def __init__(self, encoder: nn.Module, code: tuple[int, int, int], stride: int, width: float, norm: Norm) -> None:
        super().__init__()
        self.encoder, self.code, self.input_multiple = encoder, code, stride
        self.levels = stride.bit_length() - 1
        ch = level_channels(self.levels, width)
        ch[-1] = code[0]
        self.decoder = nn.Sequential(
            *[
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), ConvBlock(ch[i + 1], ch[i], norm)
                )
                for i in reversed(range(self.levels))
            ]
        )
        self.head = nn.Conv2d(ch[0], 3, 3, padding=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return deepest_feature(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, _ = pad_to_multiple(x, self.input_multiple)
        out = self.head(self.decoder(self.encode(padded)))
        if out.shape[-2:] != padded.shape[-2:]:  # an encoder whose stride is not exact on this size
            out = F.interpolate(out, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return out[..., : x.shape[-2], : x.shape[-1]]

    def bottleneck_shape(self, size: tuple[int, int]) -> tuple[int, int, int]:
        """``(C, h, w)`` of the code for an input of ``size`` (after padding)."""
        return self.code[0], math.ceil(size[0] / self.input_multiple), math.ceil(size[1] / self.input_multiple)


def deepest_feature(output: Any) -> torch.Tensor:
    """The ``[B,C,h,w]`` feature with the fewest pixels in an encoder's output (the last on ties)."""
    items = list(output.values()) if isinstance(output, dict) else output
    items = list(items) if isinstance(items, (list, tuple)) else [items]
    features = [t for t in items if isinstance(t, torch.Tensor) and t.dim() == 4 and t.is_floating_point()]
    if not features:
        kinds = ", ".join(type(t).__name__ for t in items) or "nothing"
        raise ShapeError(f"--encoder-module: expected the encoder to return [B,C,h,w] features, got {kinds}")
    fewest = min(t.shape[-2] * t.shape[-1] for t in features)
    return [t for t in features if t.shape[-2] * t.shape[-1] == fewest][-1]


def model_encoder(spec: str, path: str, width: float, options: dict[str, Any]) -> nn.Module:
    """Submodule ``path`` of the network ``spec`` builds (a user model's own network, not probe's adapter)."""
    model = build_model(spec, width=width, **options)
    net = model.net if isinstance(model, ModelAdapter) else model
    try:
        return net.get_submodule(path)
    except AttributeError:
        top = ", ".join(name for name, _ in net.named_children()) or "none"
        raise ProbeError(
            f"--encoder-module {path}: {spec} has no submodule {path!r}; its top-level modules: {top}"
        ) from None


def encoder_autoencoder(spec: str, config: AutoencoderConfig) -> EncoderAutoencoder:
    """The autoencoder of ``spec``'s ``config.encoder_module``, its output stride measured on a 64x64 image."""
    encoder = model_encoder(spec, str(config.encoder_module), config.width, config.options_for(spec))
    side = 2 ** (MAX_LEVELS + 1)
    modes = {m: m.training for m in encoder.modules()}
    encoder.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng():
            code = deepest_feature(encoder(torch.full((1, 3, side, side), 0.5)))
    except ProbeError as exc:
        raise ProbeError(f"{spec}: {exc}") from None
    except Exception as exc:  # the user's encoder failed on a plain image
        raise ProbeError(
            f"--encoder-module {config.encoder_module}: {spec}'s encoder failed on a [1, 3, {side}, {side}] image: "
            f"{type(exc).__name__}: {one_line(exc)}"
        ) from exc
    finally:
        for module, training in modes.items():
            module.training = training
    h, w = code.shape[-2:]
    stride = side // h if h and side % h == 0 else 0
    if not (h == w and stride >= 2 and stride & (stride - 1) == 0 and stride <= 2**MAX_LEVELS):
        raise ProbeError(
            f"--encoder-module {config.encoder_module}: {spec}'s deepest feature is {h}x{w} for a {side}x{side} "
            f"image; expected an output stride of 2, 4, ... {2**MAX_LEVELS} in both directions"
        )
    return EncoderAutoencoder(encoder, (int(code.shape[1]), h, w), stride, config.width, NORMS[config.norm])


# -- registry -----------------------------------------------------------------------------------

ArchFactory = Callable[[int, float, str], nn.Module]
ARCHITECTURES: Registry[ArchFactory] = Registry("autoencoder architecture")


def _register_resampling(name: str, down: Resampler, up: Resampler, description: str) -> None:
    def factory(levels: int, width: float, norm: str) -> nn.Module:
        return LevelAutoencoder(levels, width, down, up, NORMS[norm])

    ARCHITECTURES.register(name, description=description, sweeps_levels=True)(factory)


_register_resampling(
    "pack3d", pack_down_3d, unpack_up_3d, "packing + 3-D conv / 3-D conv + unpacking (PackNet's layers)"
)
_register_resampling("pack2d", PackDown2d, UnpackUp2d, "pixel unshuffle + 2-D conv / 2-D conv + pixel shuffle")
_register_resampling(
    "maxpool",
    lambda c, norm: nn.MaxPool2d(2),
    lambda c, norm: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
    "2x2 max-pool / bilinear upsampling (the paper's baseline)",
)
_register_resampling(
    "strided",
    lambda c, norm: ConvBlock(c, c, norm, stride=2),
    TransposedUp,
    "stride-2 3x3 conv / stride-2 4x4 transposed conv",
)


@ARCHITECTURES.register(
    "zoo_packnet",
    description="PackNet-B encoder-decoder, skips cut, RGB head (own GroupNorm)",
    sweeps_levels=False,
    fixed_levels=5,
)
def _zoo_packnet(levels: int, width: float, norm: str) -> nn.Module:
    """The zoo network as published (``norm`` does not apply: it keeps its own GroupNorm)."""
    model = build_model("packnet_b", width=width, skips=False, out_channels=3, target="direct", output_scale="full")
    return ZooAutoencoder(model, levels)


@ARCHITECTURES.register(
    "zoo_densedepth",
    description="DenseDepth encoder-decoder, skips cut, RGB head, x2 upsampled",
    sweeps_levels=False,
    fixed_levels=5,
)
def _zoo_densedepth(levels: int, width: float, norm: str) -> nn.Module:
    """The zoo network as published (``norm`` does not apply: it keeps its own BatchNorm)."""
    return ZooAutoencoder(build_model("densedepth", width=width, skips=False, out_channels=3), levels)


def levels_for(arch: str, levels: list[int]) -> list[int]:
    """The levels an architecture is trained at: the sweep, or its one built-in depth (zoo models)."""
    meta = ARCHITECTURES.entry(arch).meta
    return list(levels) if meta["sweeps_levels"] else [int(meta["fixed_levels"])]


def build_autoencoder(arch: str, levels: int, width: float, norm: str = "none") -> nn.Module:
    """Build architecture ``arch`` with ``levels`` 2x down-samplings: ``[B,3,H,W] -> [B,3,H,W]``.

    >>> build_autoencoder("pack2d", 2, 0.125)(torch.rand(1, 3, 16, 24)).shape   # doctest: +SKIP
    torch.Size([1, 3, 16, 24])
    """
    if norm not in NORMS:
        raise ProbeError(f"--norm: unknown autoencoder normalisation {norm!r}; expected one of {', '.join(NORMS)}")
    return ARCHITECTURES.build(arch, levels, width, norm)


def parse_arch_widths(items: list[str] | tuple[str, ...]) -> dict[str, list[float]]:
    """``["maxpool=0.25,0.5", "pack2d=0.25"]`` -> ``{"maxpool": [0.25, 0.5], "pack2d": [0.25]}``.

    >>> parse_arch_widths(["maxpool=0.25,0.5"])
    {'maxpool': [0.25, 0.5]}
    """
    out: dict[str, list[float]] = {}
    for item in items:
        arch, sep, text = str(item).partition("=")
        try:
            widths = [float(w) for w in text.split(",")] if sep and arch.strip() else []
        except ValueError:
            widths = []
        if not widths:
            raise ProbeError(f"--arch-width: expected ARCH=WIDTH[,WIDTH...] (e.g. maxpool=0.25,0.5), got {item!r}")
        out.setdefault(arch.strip(), []).extend(w for w in widths if w not in out.get(arch.strip(), []))
    return out


_LEVELS_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")


def parse_levels(text: str, flag: str = "--levels") -> list[int]:
    """``"1..5"`` -> ``[1, 2, 3, 4, 5]``; ``"1,3"`` -> ``[1, 3]``; each between 1 and 5.

    >>> parse_levels("2..4")
    [2, 3, 4]
    """
    match = _LEVELS_RANGE.match(text)
    try:
        values = (
            list(range(int(match.group(1)), int(match.group(2)) + 1))
            if match
            else [int(p) for p in text.split(",") if p.strip()]
        )
    except ValueError:
        values = []
    if not values or any(not 1 <= v <= MAX_LEVELS for v in values):
        raise ProbeError(
            f"{flag}: expected a range like 1..5 or a list like 1,2,3 with levels in 1..{MAX_LEVELS}, got {text!r}"
        )
    return sorted(set(values))


# -- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCost:
    """Size and compute of one architecture: parameters and fvcore MACs of a ``[1,3,H,W]`` forward."""

    params: int
    macs: int


def model_cost(model: nn.Module, input_size: tuple[int, int], device: torch.device) -> ModelCost:
    """Parameters and MACs (:func:`analyses.complexity.count_macs`: fvcore, one multiply-add = one)."""
    from analyses.complexity import count_macs

    was_training = model.training
    model.eval()
    try:
        macs = count_macs(model, torch.zeros(1, 3, *input_size, device=device)).total
    finally:
        model.train(was_training)
    return ModelCost(params=sum(p.numel() for p in model.parameters()), macs=macs)


def batch_schedule(n_images: int, steps: int, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Indices of each training batch: seeded epochs of permutations, identical for every architecture."""
    gen = torch.Generator().manual_seed(seed)
    pool = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        while pool.numel() < batch_size:
            pool = torch.cat([pool, torch.randperm(n_images, generator=gen)])
        yield pool[:batch_size]
        pool = pool[batch_size:]


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor) -> float:
    """One Adam step on the pixel MSE between the reconstruction and the input ``[B,3,H,W]``."""
    model.train()
    loss = F.mse_loss(model(images), images)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    """Eval-mode reconstructions of ``[N,3,H,W]`` on the CPU, clamped to the valid image range [0, 1]."""
    model.eval()
    parts = [model(images[i : i + batch_size].to(device)).clamp(0, 1).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(parts)


# -- the analysis -------------------------------------------------------------------------------

DEFAULT_ARCHS = ("pack3d", "pack2d", "maxpool", "strided", "zoo_packnet", "zoo_densedepth")


@dataclass
class AutoencoderConfig:
    """Everything the study needs; every architecture gets the same data and budget."""

    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    archs: list[str] = option(
        default_factory=lambda: list(DEFAULT_ARCHS),
        flag="--arch",
        shown="all",
        help="architecture (repeat; default: all)",
    )
    levels: list[int] = option(
        default_factory=lambda: list(range(1, MAX_LEVELS + 1)),
        parse=parse_levels,
        shown=f"1..{MAX_LEVELS}",
        help="downsampling levels: 1..5 or 1,2,3",
    )
    arch_widths: dict[str, list[float]] = option(
        default_factory=dict,
        flag="--arch-width",
        parse=parse_arch_widths,
        help="ARCH=W[,W...]: train ARCH at these widths instead of --width (repeatable; a matched-size sweep)",
    )
    steps: int = option(200, help="training steps per architecture and level")
    batch_size: int = option(8, help="images per step")
    lr: float = option(1e-3, help="Adam learning rate")
    width: float = width_option(0.25)
    norm: str = option("none", help="normalisation in the generic architectures: none|group")
    input_size: tuple[int, int] | None = input_size_option()
    train_images: int = option(256, help="training images cached and cycled")
    eval_images: int = option(32, help="held-out (test split) images scored")
    figure_level: int | None = option(
        None, help="level shown in the reconstruction grid (default: middle of the sweep)"
    )
    figure_examples: int = 4
    models: list[str] = option(
        default_factory=list,
        flag="--model",
        help="also train this model's own encoder (zoo name or SPEC, repeat; needs --encoder-module)",
    )
    encoder_module: str | None = option(None, help="the --model's encoder: a submodule path such as encoder")
    model_options: dict[str, Any] = model_options_option(scoped=True)
    device: str = device_option()
    seed: int = seed_option()
    seeds: int | list[int] | None = seeds_option()

    def configurations(self, levels: list[int] | None = None) -> list[tuple[str, float, int]]:
        """Every (architecture, width, levels) of the sweep (``levels``: default ``--levels``): ``--arch-width``
        widths where given, else ``--width``."""
        return [
            (arch, width, lv)
            for arch in self.archs
            for width in self.arch_widths.get(arch, [self.width])
            for lv in levels_for(arch, levels or self.levels)
        ]

    def options_for(self, model: str) -> dict[str, Any]:
        return options_for(model, self.model_options)

    def validate(self) -> None:
        if not self.archs and not self.models:
            raise ProbeError("--arch: expected at least one architecture")
        for name in self.archs:
            ARCHITECTURES.entry(name)
        self._validate_models()
        for name, widths in self.arch_widths.items():
            if name not in self.archs:
                raise ProbeError(f"--arch-width {name}: not among the trained --arch {', '.join(self.archs)}")
            for w in widths:
                check_width(w)
        seed_list(self.seeds, self.seed)
        if self.norm not in NORMS:
            raise ProbeError(
                f"--norm: unknown autoencoder normalisation {self.norm!r}; expected one of {', '.join(NORMS)}"
            )
        check_count("--steps", self.steps, MAX_STEPS)
        check_count("--train-images", self.train_images, MAX_ITEMS)
        check_count("--eval-images", self.eval_images, MAX_ITEMS)
        check_count("--batch-size", self.batch_size, min(MAX_BATCH_SIZE, self.train_images), "at most --train-images")
        check_positive_float("--lr", self.lr, what="a positive learning rate")
        check_width(self.width)
        check_input_size(self.input_size)
        parse_levels(",".join(str(v) for v in self.levels))
        check_seed(self.seed)
        if self.figure_level is not None and self.figure_level not in self.levels:
            raise ProbeError(
                f"--figure-level: expected one of the trained --levels {self.levels}, got {self.figure_level}"
            )
        if self.input_size is not None and min(self.input_size) < SSIM_WINDOW:
            raise ProbeError(
                f"--input-size: expected at least {SSIM_WINDOW}x{SSIM_WINDOW} (the SSIM window), "
                f"got {self.input_size[0]}x{self.input_size[1]}"
            )
        self.check_memory()

    def check_memory(self) -> None:
        """Refuse, before any image is loaded or model built, a sweep that cannot fit: the cached
        training and held-out images in host memory, each architecture's training step on the device."""
        device = resolve_device(self.device)
        height, width = self.input_size or dataset_info(self.dataset).input_size
        images = (self.train_images + self.eval_images) * 3 * height * width * 4  # float32, kept for the run
        check_host_memory(
            "caching the images",
            images,
            f"--train-images {self.train_images} --eval-images {self.eval_images} --input-size {height}x{width}",
        )
        for arch in self.archs:
            for levels in levels_for(arch, self.levels):
                estimate = estimate_module_training_memory(
                    f"{arch}@{levels}",
                    lambda: build_autoencoder(arch, levels, self.width, self.norm),  # noqa: B023  (called at once)
                    input_size=(height, width),
                    batch_size=self.batch_size,
                    width=self.width,
                )
                refuse_if_over(estimate, device)

    def _validate_models(self) -> None:
        """--model needs --encoder-module and vice versa; SPECs parse; options reach a model that takes them."""
        if self.models and not self.encoder_module:
            raise ProbeError("--model: the autoencoder trains a model's encoder; name it with --encoder-module PATH")
        if self.encoder_module and not self.models:
            raise ProbeError("--encoder-module: give the model it belongs to with --model SPEC")
        parts = (self.encoder_module or "").split(".")
        if self.encoder_module is not None and not all(p.isidentifier() or p.isdigit() for p in parts):
            raise ProbeError(
                f"--encoder-module: expected a submodule path such as encoder, got {self.encoder_module!r}"
            )
        if len(set(self.models)) != len(self.models):
            raise ProbeError("--model: each model once")
        check_model_options(self.model_options, self.models)
        for name in self.models:
            resolve_spec(name)
            check_options(name, {"width": self.width, **self.options_for(name)})


@dataclass
class AutoencoderRun:
    """One trained architecture at one depth, width and seed, scored on held-out images (MSE, PSNR, SSIM as in
    ImageQuality), with its training loss at every step (the convergence rule reads it)."""

    arch: str
    levels: int
    width: float
    seed: int
    params: int
    macs: int
    bottleneck: tuple[int, int, int] | None  # (C, h, w) of the code; None for the zoo models
    bottleneck_ratio: float | None  # code values / input values
    mse: float
    psnr: float  # inf when an image is reconstructed exactly (JSON: null with psnr_infinite true)
    psnr_infinite: bool
    ssim: float
    images: int
    steps: int
    train_seconds: float
    final_train_loss: float
    loss_curve: list[float]

    def __post_init__(self) -> None:
        if self.psnr_infinite:  # JSON stores +inf as null
            self.psnr = math.inf

    @classmethod
    def of(
        cls,
        arch: str,
        levels: int,
        cost: ModelCost,
        bottleneck: tuple[int, int, int] | None,
        ratio: float | None,
        quality: ImageQuality,
        steps: int,
        seconds: float,
        losses: list[float],
        width: float = 0.25,
        seed: int = 0,
    ) -> AutoencoderRun:
        return cls(
            arch,
            levels,
            width,
            seed,
            cost.params,
            cost.macs,
            bottleneck,
            ratio,
            quality.mse,
            quality.psnr,
            quality.psnr_infinite,
            quality.ssim,
            quality.images,
            steps,
            seconds,
            losses[-1] if losses else math.nan,
            list(losses),
        )

    @property
    def quality(self) -> ImageQuality:
        return ImageQuality(mse=self.mse, psnr=self.psnr, ssim=self.ssim, images=self.images)

    @property
    def key(self) -> tuple[str, float, int]:
        """(architecture, width, levels): the runs of one configuration over seeds share it."""
        return self.arch, self.width, self.levels


@dataclass
class AutoencoderSummary:
    """One configuration (architecture, width, levels) over its seeds: PSNR and SSIM with their intervals and how
    many seeds converged (:func:`probe.rules.plateaued`)."""

    arch: str
    width: float
    levels: int
    params: int
    seeds: list[int]
    psnr: Estimate | None  # None: a seed's PSNR is undefined or infinite (exact)
    ssim: Estimate | None
    converged: int  # seeds whose training loss plateaued (or is below the 35 dB MSE)

    @classmethod
    def of(cls, runs: list[AutoencoderRun]) -> AutoencoderSummary:
        first = runs[0]
        converged = sum(1 for r in runs if converged_run(r.loss_curve))
        return cls(
            first.arch,
            first.width,
            first.levels,
            first.params,
            [r.seed for r in runs],
            seed_estimate([r.psnr for r in runs]),
            seed_estimate([r.ssim for r in runs]),
            converged,
        )


def converged_run(losses: list[float]) -> bool:
    """The training loss plateaued (:func:`probe.rules.plateaued`, floor: the MSE of 35 dB); fewer than 8 finite
    losses cannot show it."""
    return sum(1 for x in losses if math.isfinite(x)) >= 8 and plateaued(losses, floor=NEAR_LOSSLESS_MSE).converged


def group_runs(runs: list[AutoencoderRun]) -> dict[tuple[str, float, int], list[AutoencoderRun]]:
    """Runs by configuration, in first-seen order, each group in seed order as given."""
    groups: dict[tuple[str, float, int], list[AutoencoderRun]] = {}
    for r in runs:
        groups.setdefault(r.key, []).append(r)
    return groups


LOSS = "pixel MSE on [0,1] RGB"
CHANNELS = "c0 = max(4, 2*round(16*width)), doubling per level, capped at 16*c0; same for every generic architecture"


@register_result
@dataclass
class AutoencoderResult(Result):
    """Reconstruction quality per architecture, width, level and seed, and each configuration over its seeds.

    A few reconstructions are kept in memory for the figure."""

    name: ClassVar[str] = "autoencoder"
    # 2: roles (a model's own encoder under study); 3: runs per width and seed with their loss curves, summaries
    schema_version: ClassVar[int] = 3
    config: AutoencoderConfig
    device: str
    input_size: tuple[int, int]
    metrics_on: str  # which images were scored
    architectures: dict[str, str]  # arch (a registered name, or the model whose encoder was trained) -> description
    runs: list[AutoencoderRun]  # every (architecture, width, levels, seed)
    roles: Roles  # the models whose encoders were trained are under study (empty: none)
    summaries: list[AutoencoderSummary] = field(default_factory=list)
    loss: str = LOSS
    channels: str = CHANNELS
    originals: np.ndarray | None = transient()  # uint8 [N,H,W,3]
    reconstructions: dict[str, np.ndarray] | None = transient()  # "arch@L" -> uint8 [N,H,W,3]

    def __post_init__(self) -> None:
        if not self.summaries and self.runs:
            self.summaries = [AutoencoderSummary.of(group) for group in group_runs(self.runs).values()]

    def run_for(self, arch: str, levels: int) -> AutoencoderRun:
        """The first run (first width, first seed) of ``arch`` at ``levels``."""
        for r in self.runs:
            if r.arch == arch and r.levels == levels:
                return r
        raise KeyError(f"{arch}@{levels}")

    def figures(self, out_dir: Path) -> list[Path]:
        written = [psnr_figure(self, out_dir / "autoencoder_psnr.png")]
        if self.originals is not None and self.reconstructions is not None:
            written.append(
                reconstruction_figure(
                    self, self.originals, self.reconstructions, out_dir / "autoencoder_reconstructions.png"
                )
            )
        return written


def fit_autoencoder(
    arch: str,
    levels: int,
    train: torch.Tensor,
    test: torch.Tensor,
    config: AutoencoderConfig,
    device: torch.device,
    on_step: Callable[[float], None] | None = None,
    cost: ModelCost | None = None,
    build: Callable[[], nn.Module] | None = None,
    width: float | None = None,
) -> tuple[AutoencoderRun, torch.Tensor]:
    """Train ``arch`` at ``levels`` (and ``width``, default ``config.width``) on ``train [N,3,H,W]`` with
    ``config.seed`` and score it on ``test [M,3,H,W]``.

    Returns the scored run and the clamped reconstructions of ``test`` (on the CPU).
    ``cost`` is measured here unless already known; ``build`` makes the model (default: the registered ``arch``),
    after the seed is set.
    """
    width = config.width if width is None else width
    seed_everything(config.seed)
    model = (build or (lambda: build_autoencoder(arch, levels, width, config.norm)))().to(device)
    size = (int(train.shape[-2]), int(train.shape[-1]))
    cost = cost or model_cost(model, size, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses: list[float] = []
    synchronize(device)
    start = time.perf_counter()
    for idx in batch_schedule(len(train), config.steps, config.batch_size, config.seed):
        losses.append(train_step(model, optimizer, train[idx].to(device)))
        if on_step is not None:
            on_step(losses[-1])
    synchronize(device)
    seconds = time.perf_counter() - start
    recon = reconstruct(model, test, device, config.batch_size)
    bottleneck = model.bottleneck_shape(size) if isinstance(model, (LevelAutoencoder, EncoderAutoencoder)) else None
    ratio = math.prod(bottleneck) / (3 * size[0] * size[1]) if bottleneck else None
    run_ = AutoencoderRun.of(
        arch,
        levels,
        cost,
        bottleneck,
        ratio,
        image_quality(recon, test),
        config.steps,
        seconds,
        losses,
        width,
        config.seed,
    )
    return run_, recon


#: One run of the sweep: ``(architecture or --model SPEC, width, levels, is the --model's encoder)``.
SweepJob = tuple[str, float, int, bool]


def sweep_images(config: AutoencoderConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The sweep's training images ``[N,3,H,W]`` and held-out test images ``[M,3,H,W]``: the first items of each
    split, the same in every process."""

    def first(split: str, count: int) -> torch.Tensor:
        return load_first_samples(
            config.dataset, config.data_root, split=split, input_size=config.input_size, count=count
        ).image

    return first("train", config.train_images), first("test", config.eval_images)


def build_job(config: AutoencoderConfig, job: SweepJob) -> nn.Module:
    """The untrained autoencoder of one sweep job (the caller seeds first)."""
    arch, width, levels, encoder = job
    return encoder_autoencoder(arch, config) if encoder else build_autoencoder(arch, levels, width, config.norm)


def job_label(job: SweepJob, seed: int) -> str:
    arch, width, levels, _ = job
    return f"{arch}@{levels} w{width:g} seed {seed}"


def autoencoder_one(
    config: AutoencoderConfig,
    job: SweepJob,
    seed: int,
    cost: ModelCost,
    figure_examples: int,
    on_step: Callable[[float], None] | None = None,
    images: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[AutoencoderRun, np.ndarray]:
    """Train and score one sweep job on ``seed``: the scored run and the first ``figure_examples`` test
    reconstructions as uint8 RGB.  A module-level function, so :func:`probe.jobs.run_jobs` can run it in a
    worker process (which reads :func:`sweep_images` itself; ``images`` passes them in this process); the
    numbers depend only on its arguments and the torch thread count."""
    arch, width, levels, _ = job
    train, test = images if images is not None else sweep_images(config)
    run_, recon = fit_autoencoder(
        arch,
        levels,
        train,
        test,
        replace(config, seed=seed, seeds=None),
        resolve_device(config.device),
        on_step,
        cost,
        functools.partial(build_job, config, job),
        width,
    )
    return run_, to_uint8_rgb(recon[:figure_examples])


def run(
    config: AutoencoderConfig, progress: Any | None = None, out: Path | None = None, launch: Launch | None = None
) -> AutoencoderResult:
    """Train and score every (architecture, width, levels) of the sweep, and each model's encoder, on the same
    data, on every seed.

    A model's encoder is compared at its own depth: the generic architectures are also trained at that
    number of levels when the sweep lacks it (with a warning saying so).  With several seeds and ``out``,
    each seed's result is also saved as an ordinary run folder ``out/seed_<s>``.  The (job, seed) runs go
    one after another here (default), or as ``launch`` says: ``--parallel N`` runs them side by side, each
    in its own folder ``out/runs/<arch>@<levels>_w<width>/seed_<s>`` (``job.json``), with the numbers of
    sequential runs on the same ``--threads-per-run``.
    """
    config.validate()
    launch = launch if launch is not None else Launch()
    launch.validate()
    if not launch.in_process and out is None:
        raise ProbeError("autoencoder: runs side by side (--parallel, --launcher) need an output folder (--out)")
    seeds = seed_list(config.seeds, config.seed)
    device = resolve_device(config.device)
    train, test = sweep_images(config)
    size = (int(train.shape[-2]), int(train.shape[-1]))
    descriptions = {a: ARCHITECTURES.entry(a).description for a in config.archs}
    encoders: list[SweepJob] = []
    for spec in config.models:
        seed_everything(config.seed)
        model = encoder_autoencoder(spec, config)
        encoders.append((spec, config.width, model.levels, True))
        descriptions[spec] = (
            f"{spec}'s {config.encoder_module} (output stride {model.input_multiple}, code of "
            f"{model.code[0]} channels) + max-pool's decoder"
        )
    sweep = sorted(set(config.levels) | {levels for _, _, levels, _ in encoders})
    added = sorted(set(sweep) - set(config.levels))
    if added and any(ARCHITECTURES.entry(a).meta["sweeps_levels"] for a in config.archs):
        warn(
            f"autoencoder: also training the architectures at {', '.join(map(str, added))} level(s), the depth of "
            "the --model's encoder, to compare at equal depth"
        )
    jobs: list[SweepJob] = [(arch, width, levels, False) for arch, width, levels in config.configurations(sweep)]
    jobs += encoders

    # Build and measure every model before training any, so a model that cannot run fails in seconds.
    costs = {job: model_cost(build_job(config, job).to(device), size, device) for job in jobs}
    n_fig = min(config.figure_examples, len(test))
    cells = [(seed, job) for seed in seeds for job in jobs]
    task = progress.add_task("autoencoder", total=len(cells) * config.steps) if progress else None
    done: list[tuple[AutoencoderRun, np.ndarray]] = []
    if launch.in_process:  # here, one after another: the bar moves every step and names the run
        with torch_threads(launch.threads):
            for seed, job in cells:

                def on_step(loss: float, label: str = job_label(job, seed)) -> None:
                    if progress is not None and task is not None:
                        progress.update(task, advance=1, description=f"{label} loss {loss:.4f}")

                done.append(autoencoder_one(config, job, seed, costs[job], n_fig, on_step, (train, test)))
    else:  # side by side: the bar moves once, at the end
        if progress is not None and task is not None:
            progress.update(task, description=f"autoencoder: {len(cells)} runs, {launch.parallel or 'all'} at once")
        assert out is not None  # refused above: side by side needs its run folders
        root = Path(out) / "runs"
        done = run_jobs(
            [
                Job(
                    f"autoencoder {job_label(job, seed)}",
                    root / f"{file_safe_name(job[0])}@{job[2]}_w{job[1]:g}" / f"seed_{seed}",
                    autoencoder_one,
                    (config, job, seed, costs[job], n_fig),
                )
                for seed, job in cells
            ],
            launch,
            device=config.device,
            out=out,
            what="autoencoder",
        )
        if progress is not None and task is not None:
            progress.update(task, advance=len(cells) * config.steps)
    roles = assign_roles(config.models, options={m: config.options_for(m) for m in config.models})
    per_seed = []
    for seed in seeds:
        cfg = replace(config, seed=seed, seeds=None)
        mine = [(job, result) for (s, job), result in zip(cells, done) if s == seed]
        runs = [run_ for _, (run_, _) in mine]
        reconstructions: dict[str, np.ndarray] = {}
        for (arch, _, levels, _), (_, recon) in mine:
            reconstructions.setdefault(f"{arch}@{levels}", recon)
        result = _result(cfg, str(device), size, test[:n_fig], runs, reconstructions, descriptions, roles)
        if len(seeds) > 1 and out is not None:  # each seed an ordinary run folder
            result.save_run(seed_folder(out, seed, seeds), device=device, seed=seed)
        per_seed.append(result)
    if len(per_seed) == 1:
        return per_seed[0]
    first = per_seed[0]
    runs = [r for result in per_seed for r in result.runs]
    return _result(config, first.device, size, test[:n_fig], runs, first.reconstructions or {}, descriptions, roles)


def _result(
    config: AutoencoderConfig,
    device: str,
    size: tuple[int, int],
    originals: torch.Tensor,
    runs: list[AutoencoderRun],
    reconstructions: dict[str, np.ndarray],
    descriptions: dict[str, str],
    roles: Roles,
) -> AutoencoderResult:
    return AutoencoderResult(
        config=config,
        device=device,
        input_size=size,
        metrics_on=f"{config.dataset} test split",
        architectures=descriptions,
        runs=runs,
        roles=roles,
        summaries=[AutoencoderSummary.of(group) for group in group_runs(runs).values()],
        originals=to_uint8_rgb(originals),
        reconstructions=reconstructions,
    )


# -- figures ------------------------------------------------------------------------------------


def frontier_axes(summaries: list[AutoencoderSummary], axes: Any) -> None:
    """Held-out PSNR against parameters (log), one panel per level, one colour per architecture: each point is a
    configuration's mean over seeds with its 95% Student t interval; a hollow marker has not converged on every
    seed.  ``axes``: one matplotlib axis per level, in level order."""
    from matplotlib.ticker import NullFormatter

    from probe.plotting import sns

    levels = sorted({s.levels for s in summaries})
    palette = dict(zip(dict.fromkeys(s.arch for s in summaries), sns.color_palette()))
    for ax, level in zip(axes, levels):
        for s in summaries:
            psnr = s.psnr
            if s.levels != level or psnr is None:
                continue
            colour = palette[s.arch]
            err = None
            if psnr.low is not None and psnr.high is not None:
                err = [[psnr.mean - psnr.low], [psnr.high - psnr.mean]]
            converged = s.converged == len(s.seeds)
            ax.errorbar(
                s.params,
                psnr.mean,
                yerr=err,
                fmt="o",
                color=colour,
                mfc=colour if converged else "white",
                capsize=4,
                label=s.arch,
            )
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize="small")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log axis overlap
        ax.set(xlabel="parameters (log)", ylabel="held-out PSNR (dB)", title=f"{level} level(s)")


def psnr_figure(result: AutoencoderResult, path: Path) -> Path:
    """Held-out PSNR against parameters per level, with intervals over seeds (:func:`frontier_axes`)."""
    from probe.plotting import plt, save_figure

    levels = sorted({s.levels for s in result.summaries}) or [1]
    fig, axes = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 4.2), squeeze=False)
    frontier_axes(result.summaries, axes[0])
    cfg = result.config
    fig.suptitle(
        f"Autoencoder reconstruction, {cfg.dataset} test split, {cfg.steps} steps x batch {cfg.batch_size}, "
        f"{result.input_size[0]}x{result.input_size[1]} (bars: 95% interval over seeds; hollow: not converged)"
    )
    return save_figure(fig, path)


def reconstruction_figure(
    result: AutoencoderResult, originals: np.ndarray, reconstructions: dict[str, np.ndarray], path: Path
) -> Path:
    """Originals (top row) and each architecture's reconstructions at the figure level (zoo: its own depth).

    The default level is the middle of the sweep: the deepest codes of a short run are often a flat mean image.
    """
    from probe.plotting import plt, save_figure

    sweep = sorted(result.config.levels)
    level = result.config.figure_level or sweep[len(sweep) // 2]
    keys = []
    for arch in result.architectures:  # the registered ones, then the models' encoders at their own depth
        trained = sorted(r.levels for r in result.runs if r.arch == arch)
        lv = level if level in trained else (trained[-1] if trained else level)
        if f"{arch}@{lv}" in reconstructions:
            keys.append((arch, lv))
    n = len(originals)
    fig, axes = plt.subplots(len(keys) + 1, n, figsize=(2.4 * n, 2.0 * (len(keys) + 1)), squeeze=False)
    rows = [("original", originals, None)] + [
        (f"{a} (L={lv})", reconstructions[f"{a}@{lv}"], result.run_for(a, lv)) for a, lv in keys
    ]
    for r, (label, images, run_) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(images[c])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        if run_ is not None:
            q = run_.quality
            label += "\n" + ("PSNR inf" if q.psnr_infinite else f"{q.psnr:.1f} dB") + f", SSIM {q.ssim:.2f}"
        axes[r][0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"Held-out reconstructions ({result.config.dataset}); metrics are means over the test images")
    return save_figure(fig, path)


# -- the report: the question this analysis answers, and its section --------------------------------------

PACKING_QUESTION = "Does packing preserve information?"
PSNR_CAP_DB = 100.0  # an exact reconstruction's PSNR is infinite; the rule compares it as 100 dB
PACKING_ANSWER_RULE = (
    f"{PACKING_RULE} An exact reconstruction (infinite PSNR) counts as {PSNR_CAP_DB:g} dB; a configuration with an "
    "undefined PSNR on a seed is left out and named. Yes when packing is better at every matched level, no when "
    "worse at every one, partly when mixed, inconclusive otherwise."
)


def packing_runs(doc: AutoencoderResult) -> tuple[list[PackingRun], list[str]]:
    """The autoencoder runs as the packing rule reads them (PSNR and loss curve per seed, in seed order), and the
    configurations left out because a seed's PSNR is undefined."""
    runs, undefined = [], []
    for (arch, width, levels), group in group_runs(doc.runs).items():
        group = sorted(group, key=lambda r: r.seed)
        if any(math.isnan(r.psnr) for r in group):
            undefined.append(f"{arch}@{levels} width {width:g}")
            continue
        psnr = [min(r.psnr, PSNR_CAP_DB) for r in group]
        runs.append(PackingRun(arch, levels, group[0].params, group[0].macs, psnr, [r.loss_curve for r in group]))
    return runs, undefined


def matched_answer(
    doc: AutoencoderResult, question: str, rule: str, subject: Callable[[PackingRun], bool], label: str
) -> Answer:
    """The packing rule (matched size, converged runs, interval over seeds) on the ``subject`` runs of ``doc``."""
    runs, undefined = packing_runs(doc)
    comparison = packing_comparison(runs, subject=subject, label=label)
    evidence = [
        {
            "levels": c.levels,
            label: doc.roles.display(c.packing),
            "params": c.packing_params,
            "compared with": c.reference,
            "PSNR difference (dB)": shown(c.difference),
            "verdict": c.verdict.verdict if c.verdict is not None else c.note,
        }
        for c in comparison.levels
    ]
    left_out = ""
    if comparison.unconverged:
        left_out += f" Unconverged (not compared): {', '.join(comparison.unconverged)}."
    if undefined:
        left_out += f" Undefined PSNR (not compared): {', '.join(undefined)}."
    if comparison.verdict.startswith("inconclusive"):
        return Answer(question, "inconclusive", f"No verdict: {comparison.verdict[14:]}.{left_out}", rule, evidence)
    decided = "; ".join(
        f"{doc.roles.display(c.packing)}@{c.levels} vs {c.reference}: {c.verdict.sentence}"
        for c in comparison.levels
        if c.verdict
    )
    lead = {"yes": "Yes", "no": "No", "partly": "Partly"}[comparison.verdict]
    return Answer(question, comparison.verdict, f"{lead}: {decided}.{left_out}", rule, evidence)


@QUESTIONS.register("packing", description=PACKING_QUESTION, order=30)
def packing_preserves(results: Results) -> Answer | None:
    doc = results.first(AutoencoderResult)
    if doc is None or not doc.runs:
        return None
    rule = with_controls(PACKING_ANSWER_RULE, "packing", gated=False)
    return matched_answer(
        doc, PACKING_QUESTION, rule, lambda r: r.arch in ARCHITECTURES and r.arch.startswith("pack"), "packing"
    )


ENCODER_RULE = (
    "The packing rule with each model's own encoder (followed by max-pool's decoder) in place of packing: compared "
    "with max-pool + bilinear upsampling at the same number of levels and matched size, converged runs only, a "
    "verdict only when the 95% interval over seeds excludes 0 dB."
)
ENCODER_QUESTION = "Does the model's encoder preserve information?"


@QUESTIONS.register("encoder", description=ENCODER_QUESTION, order=35)
def encoder_preserves(results: Results) -> Answer | None:
    """Answered only when the autoencoder study trained a model's encoder (``--model --encoder-module``)."""
    doc = results.first(AutoencoderResult)
    if doc is None or not doc.roles.of(UNDER_STUDY):
        return None
    question = f"Does {doc.roles.phrase(UNDER_STUDY)}'s encoder preserve information?"
    rule = f"{ENCODER_RULE} {PACKING_ANSWER_RULE}"
    return matched_answer(doc, question, rule, lambda r: doc.roles.under_study(r.arch), "encoder")


@SECTIONS.register("packing", description=PACKING_QUESTION, needs=(AutoencoderResult,), order=50)
def packing_section(results: Results) -> Section | None:
    from probe.plotting import plt

    doc = results.first(AutoencoderResult)
    extra: list[Block] = []
    if doc is not None and doc.summaries:
        levels = sorted({s.levels for s in doc.summaries})
        fig, axes = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 4.2), squeeze=False)
        frontier_axes(doc.summaries, axes[0])
        extra.append(
            figure_from_matplotlib(
                fig,
                "Held-out PSNR against parameters per level: mean and 95% interval over seeds (hollow: not "
                "converged on every seed); packing is compared with max-pool at its own size",
                "psnr",
            )
        )
        extra.append(
            Table(
                [
                    {
                        "arch": s.arch,
                        "width": s.width,
                        "levels": s.levels,
                        "params": s.params,
                        "PSNR (dB)": shown(s.psnr),
                        "SSIM": shown(s.ssim),
                        "converged seeds": f"{s.converged} of {len(s.seeds)}",
                    }
                    for s in doc.summaries
                ],
                f"autoencoder.json: {doc.config.steps} steps, batch {doc.config.batch_size}, "
                f"{doc.input_size[0]}x{doc.input_size[1]}",
            )
        )
    extra += embedded_figures(
        results, AutoencoderResult, "autoencoder_reconstructions*.png", "Reconstructions next to originals"
    )
    encoder = encoder_preserves(results)
    if encoder is not None:  # a model's own encoder was trained: its answer follows the packing one
        extra[:0] = [Paragraph(encoder.question), AnswerBlock(encoder)]
    return answer_section("packing", PACKING_QUESTION, results, extra)
