"""PackNet01 and PackNetSlim01 (Guizilini et al., CVPR 2020), rebuilt from TRI's packnet-sfm.

The encoder halves the resolution five times with :class:`PackLayerConv3d` (pack, 3-D
conv, 2-D conv) instead of striding; the decoder doubles it five times with
:class:`UnpackLayerConv3d`, merges the encoder skip of the same resolution, and emits
depth at the four finest scales.  Channel counts, kernels and block depths follow the
published ``PackNet01`` / ``PackNetSlim01`` exactly at ``width=1.0``; module names follow
the published code too (``pre_calc``, ``pack1`` ... ``iconv1``, ``disp1_layer``).

Registered models (``probe.models.build_model(name, **options)``):

==================  =======================================================  =============
name                network                                                  parameters
==================  =======================================================  =============
``packnet_a``       PackNet01 version A (skips concatenated)                  128,294,020
``packnet_b``       PackNet01 version B (skips added)                         124,164,580
``packnet_c``       version B with every encoder skip multiplied by zero      124,164,580
``packnet_slim_a``  PackNetSlim01 version A                                    76,997,796
``packnet_slim_b``  PackNetSlim01 version B, ``slim_b_fix="unpack"``           71,899,908
                    ... ``slim_b_fix="skip"``                                  71,955,300
``packnet_slim_c``  slim version B with every skip multiplied by zero          71,899,908
==================  =======================================================  =============

``weights=PATH`` on every model loads a packnet-sfm checkpoint (``.ckpt``: its
``state_dict`` keys under ``model.depth_net.``, read without running the pickled
``config``; see :mod:`probe.models.weights`), a bare depth-net state dict, or
probe's own safetensors, strictly.

>>> import torch
>>> from probe.models import build_model
>>> model = build_model("packnet_b", width=0.0625).eval()
>>> model(torch.rand(1, 3, 64, 96)).shape
torch.Size([1, 1, 64, 96])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.depth_space import PUBLISHED_MIN_DEPTH
from probe.errors import ProbeError, ShapeError
from probe.limits import check_width
from probe.models import MODELS
from probe.models.common import crop_to_scale, pad_to_multiple, scale_channels
from probe.models.depth_conv import DepthConv3d, check_impl
from probe.models.weights import fit_state_dict, read_tensor_file, split_prefix, warn_ignored
from probe.ops import pack, unpack

#: GroupNorm groups used throughout the published network.
GROUPS = 16


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the published 16 groups, or fewer when ``channels`` is too small for them.

    Takes the largest of 16, 8, 4, 2, 1 that divides ``channels`` while leaving at least two
    channels per group: a group holding one value is normalised to a constant, and torch
    rejects it outright for batch 1 at 1x1 resolution (the bottleneck of a 32x32 input).
    Every published channel count is a multiple of 32, so ``width=1.0`` is exactly
    GroupNorm(16); the adaptation only concerns shrunken models.
    """
    groups = next(g for g in (GROUPS, 8, 4, 2, 1) if channels % g == 0 and (channels // g >= 2 or g == 1))
    return nn.GroupNorm(groups, channels)


def packnet_channels(base: int, width: float) -> int:
    """Published channel count ``base`` times ``width``, rounded to an even number >= 4.

    Even counts keep :class:`UnpackLayerConv3d` (which needs ``out * r * r`` divisible by
    ``d``) valid for ``d`` up to 8, and the floor of 4 leaves its inner convolution at
    least two channels; ``width == 1.0`` returns ``base`` unchanged.
    """
    return scale_channels(base, width, multiple=2, minimum=4)


# ------------------------------------------------------------------------------------------
# layers
# ------------------------------------------------------------------------------------------


class Conv2D(nn.Module):
    """Convolution with zero 'same' padding, GroupNorm(16) and ELU.

    ``[B,Cin,H,W] -> [B,Cout,H/stride,W/stride]`` (PackNet uses stride 1 throughout).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv_base = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.normalize: nn.Module = group_norm(out_channels)
        self.activ = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activ(self.normalize(self.conv_base(x)))


class ResidualConv(nn.Module):
    """Two 3x3 :class:`Conv2D` plus a 1x1 convolution shortcut, summed, then GroupNorm and ELU.

    ``[B,Cin,H,W] -> [B,Cout,H,W]``.  ``residual=False`` builds no shortcut at all (the
    block becomes two plain convolutions followed by GroupNorm and ELU).  ``dropout``
    applies ``Dropout2d`` to the shortcut branch, where the published code puts it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        dropout: Optional[float] = None,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = Conv2D(in_channels, out_channels, 3, stride)
        self.conv2 = Conv2D(out_channels, out_channels, 3, 1)
        self.conv3: Optional[nn.Module] = None
        if residual:
            shortcut: nn.Module = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride)
            self.conv3 = nn.Sequential(shortcut, nn.Dropout2d(dropout)) if dropout else shortcut
        self.normalize = group_norm(out_channels)
        self.activ = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if self.conv3 is not None:
            out = out + self.conv3(x)
        return self.activ(self.normalize(out))


def residual_block(
    in_channels: int,
    out_channels: int,
    num_blocks: int,
    stride: int = 1,
    dropout: Optional[float] = None,
    residual: bool = True,
) -> nn.Sequential:
    """``num_blocks`` :class:`ResidualConv` in sequence: ``[B,Cin,H,W] -> [B,Cout,H,W]``."""
    layers = [ResidualConv(in_channels, out_channels, stride, dropout, residual)]
    layers += [ResidualConv(out_channels, out_channels, 1, dropout, residual) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


class PackLayerConv3d(nn.Module):
    """Packing layer: :func:`probe.ops.pack`, a 3-D convolution over the packed channels, a 2-D conv.

    ``[B,C,H,W] -> pack -> [B,r*r*C,H/r,W/r] -> Conv3d(1->d) -> [B,d*r*r*C,H/r,W/r]
    -> Conv2D -> [B,C,H/r,W/r]``.  H and W must be divisible by ``r``.  ``depth_conv``
    picks the kernel of the 3-D convolution (:mod:`probe.models.depth_conv`).
    """

    def __init__(self, in_channels: int, kernel_size: int, r: int = 2, d: int = 8, depth_conv: str = "auto") -> None:
        super().__init__()
        self.r = r
        self.conv = Conv2D(in_channels * r * r * d, in_channels, kernel_size, 1)
        self.conv3d = DepthConv3d(d, kernel_size=3, impl=depth_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv3d(pack(x, self.r)))


class UnpackLayerConv3d(nn.Module):
    """Unpacking layer: a 2-D conv, a 3-D convolution, then :func:`probe.ops.unpack`.

    ``[B,Cin,H,W] -> Conv2D -> [B,Cout*r*r/d,H,W] -> Conv3d(1->d) -> [B,Cout*r*r,H,W]
    -> unpack -> [B,Cout,r*H,r*W]``.  ``Cout * r * r`` must be divisible by ``d``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, r: int = 2, d: int = 8, depth_conv: str = "auto"
    ) -> None:
        super().__init__()
        if (out_channels * r * r) % d:
            raise ShapeError(
                f"UnpackLayerConv3d: out_channels*r*r must be divisible by d={d}; "
                f"got out_channels={out_channels}, r={r}"
            )
        self.r = r
        self.conv = Conv2D(in_channels, out_channels * r * r // d, kernel_size, 1)
        self.conv3d = DepthConv3d(d, kernel_size=3, impl=depth_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unpack(self.conv3d(self.conv(x)), self.r)


class PoolLayer(nn.Module):
    """Ablation of :class:`PackLayerConv3d`: ``r x r`` average pooling, then the same-sized :class:`Conv2D`.

    ``[B,C,H,W] -> avg_pool(r) -> [B,C,H/r,W/r] -> Conv2D -> [B,C,H/r,W/r]``: the packing layer's shapes
    without its space-to-depth and 3-D convolution (``d`` and ``depth_conv`` are accepted and unused).
    """

    def __init__(self, in_channels: int, kernel_size: int, r: int = 2, d: int = 8, depth_conv: str = "auto") -> None:
        super().__init__()
        self.r = r
        self.conv = Conv2D(in_channels, in_channels, kernel_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.avg_pool2d(x, self.r))


class UpsampleLayer(nn.Module):
    """Ablation of :class:`UnpackLayerConv3d`: a :class:`Conv2D` to the output channels, then nearest ``r x``.

    ``[B,Cin,H,W] -> Conv2D -> [B,Cout,H,W] -> nearest -> [B,Cout,r*H,r*W]`` (``d`` and ``depth_conv`` unused).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, r: int = 2, d: int = 8, depth_conv: str = "auto"
    ) -> None:
        super().__init__()
        self.r = r
        self.conv = Conv2D(in_channels, out_channels, kernel_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=self.r, mode="nearest")


#: How the encoder halves the resolution: the published packing, or average pooling (an ablation).
DOWNSAMPLERS: dict[str, Callable[..., nn.Module]] = {"pack": PackLayerConv3d, "avgpool": PoolLayer}
#: How the decoder doubles it: the published unpacking, or nearest-neighbour upsampling (an ablation).
UPSAMPLERS: dict[str, Callable[..., nn.Module]] = {"unpack": UnpackLayerConv3d, "nearest": UpsampleLayer}


#: Depth-head activations: bounded (0, 1) as published, or unbounded (seed experiment 3's leaky ReLU, slope 0.01).
HEAD_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}

#: What the head's activation is scaled into: inverse depth in 1/m (``activation / min_depth``) or depth as a
#: fraction of the dataset cap (``activation``, seed experiment 4).
TARGETS = ("inverse", "direct")


#: The published sigmoid head (min_depth PUBLISHED_MIN_DEPTH = 0.5 m, zero bias) starts at sigmoid(0) / 0.5 m,
#: i.e. at 1 m.
PUBLISHED_START_DEPTH = 1.0


class DepthHead(nn.Module):
    """3x3 convolution, activation, scale: ``[B,Cin,H,W] -> [B,out_channels,H,W]``.

    The published ``InvDepth`` head is ``sigmoid(conv(x)) / min_depth`` (inverse depth in
    ``(0, 1/min_depth)``).  ``target="direct"`` emits ``activation(conv(x))`` (depth as a
    fraction of the dataset cap, see :mod:`probe.depth_space`); ``activation="leaky_relu"``
    makes either range unbounded.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        min_depth: float = 0.5,
        activation: str = "sigmoid",
        target: str = "inverse",
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.activ = HEAD_ACTIVATIONS[activation]()
        self.scale = 1.0 / min_depth if target == "inverse" else 1.0
        self.min_depth, self.activation, self.target = min_depth, activation, target

    def start_bias(self) -> float:
        """The bias at which a zero input predicts the published head's starting depth (1 m).

        ``logit(min_depth / 1 m)``: 0 for the published 0.5 m, so the published network is unchanged; a head
        widened to the protocol's 0.1 m starts at 1 m too (a zero bias would start it at 0.2 m, and measured
        on one synthetic batch it fits 7x worse in 400 steps at width 1/4).  Other heads start at zero.
        """
        if self.activation != "sigmoid" or self.target != "inverse":
            return 0.0
        start = min(self.min_depth, PUBLISHED_MIN_DEPTH) / PUBLISHED_START_DEPTH  # sigmoid value at 1 m
        return math.log(start / (1 - start))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activ(self.conv1(x))
        return out * self.scale if self.scale != 1.0 else out


# ------------------------------------------------------------------------------------------
# skip merges: version A concatenates, version B adds
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkipMerge:
    """How a decoder stage combines its unpacked features with the encoder skip.

    ``unpack_channels(stage, skip)`` is what the unpack layer must emit and
    ``merged_channels(stage, skip)`` what the merge yields, given the stage's decoder width
    and the skip's channel count.
    """

    unpack_channels: Callable[[int, int], int]
    merged_channels: Callable[[int, int], int]
    merge: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


SKIP_MERGES: dict[str, SkipMerge] = {
    "A": SkipMerge(
        unpack_channels=lambda stage, skip: stage,
        merged_channels=lambda stage, skip: stage + skip,
        merge=lambda unpacked, skip: torch.cat((unpacked, skip), 1),
    ),
    # Version B adds, so the unpack layer must emit the skip's channel count.  In the published
    # PackNet01 this equals the literal values (n3//2, n4//2, ...) for every stage.
    "B": SkipMerge(
        unpack_channels=lambda stage, skip: skip,
        merged_channels=lambda stage, skip: skip,
        merge=lambda unpacked, skip: unpacked + skip,
    ),
}


# ------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackNetSpec:
    """Published hyper-parameters of one PackNet family member (channels at ``width=1.0``)."""

    name: str
    pre_channels: int  # ni: pre_calc output, also skip1
    channels: tuple[int, int, int, int, int]  # n1..n5: encoder stage / decoder stage widths
    d: int  # 3-D features in the pack/unpack layers
    num_blocks: tuple[int, int, int, int] = (2, 2, 3, 3)
    pack_kernels: tuple[int, int, int, int, int] = (5, 3, 3, 3, 3)
    unpack_kernels: tuple[int, int, int, int, int] = (3, 3, 3, 3, 3)
    iconv_kernels: tuple[int, int, int, int, int] = (3, 3, 3, 3, 3)


PACKNET01 = PackNetSpec("PackNet01", 64, (64, 64, 128, 256, 512), d=8)
PACKNET_SLIM01 = PackNetSpec("PackNetSlim01", 32, (32, 64, 128, 256, 512), d=4)

_OUTPUT_SCALES = {"full": 1.0, "half": 0.5}


class PackNet(nn.Module):
    """PackNet01 / PackNetSlim01 encoder-decoder: ``[B,3,H,W]`` in [0,1] -> depth maps.

    Eval mode returns ``[B,out_channels,H*s,W*s]`` with ``s = output_scale`` (1.0, or 0.5
    for ``output_scale="half"``); training mode returns a list of scales, finest first:
    4 scales (``s, s/2, s/4, s/8``) at full output, 3 (``s/2 .. s/8`` relative to the input,
    i.e. ``0.5, 0.25, 0.125``) at half output.  Any H, W works: the input is padded
    (replicate) to a multiple of 32 and every output cropped back.

    Versions: ``A`` concatenates each encoder skip to the unpacked features, ``B`` adds it
    (the unpack layer then emits the skip's channel count).  ``skips=False`` multiplies
    every encoder->decoder skip (skip1..skip5) by zero, keeping all parameters (the seed's
    version C).  ``output_scale="half"`` stops after the second-to-last decoder stage and
    does not build ``unpack1``/``iconv1``/``disp1_layer``.  ``depth_conv`` (``auto``,
    ``conv3d``, ``conv2d``) picks the kernel of the packing layers' 3-D convolutions
    (:mod:`probe.models.depth_conv`); it changes no parameter.  ``downsample="avgpool"`` and
    ``upsample="nearest"`` are ablations, not published: every packing layer becomes average pooling
    plus a Conv2D of the same kernel (:class:`PoolLayer`), every unpacking layer a Conv2D plus
    nearest upsampling (:class:`UpsampleLayer`), so the rest of PackNet can be trained without them.

    Slim version B fix: the published PackNetSlim01 version B does not run because skip2
    (the packed output of ``conv1``) has ``n1 = 32`` channels while ``unpack2`` emits
    ``n2 = 64`` and adds them.  Two one-line fixes make it run, and the seed's text
    ("72 million parameters", version B) fits both; it does not say which it used:

    * ``skip2="pack1"`` (``slim_b_fix="unpack"``): skip2 stays the packed ``conv1``
      output and ``unpack2`` emits its 32 channels (``iconv2`` takes 32 + out_channels),
      the rule by which every other version-B stage is sized.  71,899,908 parameters.
    * ``skip2="conv2"`` (``slim_b_fix="skip"``): skip2 is ``conv2``'s 64-channel output
      (same resolution), so every published layer keeps its published shape.
      71,955,300 parameters, the published count.

    PackNet01 is unaffected (there n1 = n2 = 64 and skip2 is the published one).
    """

    input_multiple = 32
    family = "packnet"

    def __init__(
        self,
        spec: PackNetSpec,
        version: str,
        *,
        model_name: str,
        width: float = 1.0,
        activation: str = "sigmoid",
        target: str = "inverse",
        output_scale: str = "full",
        residual: bool = True,
        skips: bool = True,
        min_depth: float = 0.5,
        out_channels: int = 1,
        dropout: Optional[float] = None,
        skip2: str = "pack1",
        depth_conv: str = "auto",
        downsample: str = "pack",
        upsample: str = "unpack",
    ) -> None:
        super().__init__()
        _validate_options(width, output_scale, min_depth, out_channels, dropout, residual, skips)
        check_impl(depth_conv)
        _validate_choice("activation", activation, HEAD_ACTIVATIONS)
        _validate_choice("target", target, TARGETS)
        _validate_choice("downsample", downsample, DOWNSAMPLERS)
        _validate_choice("upsample", upsample, UPSAMPLERS)
        self.downsample, self.upsample = downsample, upsample
        self.model_name = model_name
        self.spec, self.version, self.width = spec, version, width
        self.activation, self.target, self.residual, self.skips = activation, target, residual, skips
        self.output_space = target
        self.min_depth = float(min_depth)
        self.output_scale = _OUTPUT_SCALES[output_scale]
        self.out_channels = out_channels
        self.merge = SKIP_MERGES[version]
        if skip2 not in _SKIP2_SOURCES:
            raise ProbeError(f"{model_name}: skip2 source expected one of {', '.join(_SKIP2_SOURCES)}, got {skip2!r}")
        self.skip2 = skip2

        ni = packnet_channels(spec.pre_channels, width)
        n1, n2, n3, n4, n5 = (packnet_channels(c, width) for c in spec.channels)
        no, d = out_channels, spec.d
        blocks: dict[str, Any] = dict(dropout=dropout, residual=residual)
        packing: dict[str, Any] = dict(d=d, depth_conv=depth_conv)

        down, up = DOWNSAMPLERS[downsample], UPSAMPLERS[upsample]
        self.pre_calc = Conv2D(3, ni, 5, 1)
        # encoder
        self.conv1 = Conv2D(ni, n1, 7, 1)
        self.pack1 = down(n1, spec.pack_kernels[0], **packing)
        self.conv2 = residual_block(n1, n2, spec.num_blocks[0], **blocks)
        self.pack2 = down(n2, spec.pack_kernels[1], **packing)
        self.conv3 = residual_block(n2, n3, spec.num_blocks[1], **blocks)
        self.pack3 = down(n3, spec.pack_kernels[2], **packing)
        self.conv4 = residual_block(n3, n4, spec.num_blocks[2], **blocks)
        self.pack4 = down(n4, spec.pack_kernels[3], **packing)
        self.conv5 = residual_block(n4, n5, spec.num_blocks[3], **blocks)
        self.pack5 = down(n5, spec.pack_kernels[4], **packing)

        # decoder: stage k unpacks to the resolution of skip k, merges it, refines with iconv k.
        # Stages 1-3 also concatenate the upsampled depth of the coarser stage (+no channels).
        skip_ch = {1: ni, 2: n1 if skip2 == "pack1" else n2, 3: n2, 4: n3, 5: n4}
        stage_ch = {1: n1, 2: n2, 3: n3, 4: n4, 5: n5}
        stage_in = {5: n5, 4: n5, 3: n4, 2: n3, 1: n2}
        last_stage = 2 if output_scale == "half" else 1
        m = self.merge
        for k in range(5, last_stage - 1, -1):
            kernel = 5 - k
            unpack_out = m.unpack_channels(stage_ch[k], skip_ch[k])
            iconv_in = m.merged_channels(stage_ch[k], skip_ch[k]) + (no if k <= 3 else 0)
            setattr(self, f"unpack{k}", up(stage_in[k], unpack_out, spec.unpack_kernels[kernel], **packing))
            setattr(self, f"iconv{k}", Conv2D(iconv_in, stage_ch[k], spec.iconv_kernels[kernel], 1))
        head: dict[str, Any] = dict(out_channels=no, min_depth=min_depth, activation=activation, target=target)
        for k in range(4, last_stage - 1, -1):
            setattr(self, f"disp{k}_layer", DepthHead(stage_ch[k], **head))
        # Recomputed in backward under --activation-checkpointing (probe.models.recompute): every encoder
        # and decoder stage that was built, in forward order.
        self.checkpoint_stages = (
            "pre_calc",
            *(f"{kind}{k}" for k in range(1, 6) for kind in ("conv", "pack")),
            *(f"{kind}{k}" for k in range(5, last_stage - 1, -1) for kind in ("unpack", "iconv")),
        )

        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform convolution weights and zero biases, as published; depth heads start at 1 m."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, DepthHead) and module.conv1.bias is not None:
                nn.init.constant_(module.conv1.bias, module.start_bias())

    def _decode(
        self, k: int, x: torch.Tensor, skip: torch.Tensor, coarser_depth: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Decoder stage ``k``: unpack ``x`` (doubling H, W), merge ``skip``, append depth, refine."""
        merged = self.merge.merge(getattr(self, f"unpack{k}")(x), skip)
        if coarser_depth is not None:
            merged = torch.cat((merged, F.interpolate(coarser_depth, scale_factor=2, mode="nearest")), 1)
        return getattr(self, f"iconv{k}")(merged)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """``[B,3,H,W] -> [B,C,H*s,W*s]`` (eval) or a list of scales finest first (training)."""
        if rgb.dim() != 4 or rgb.shape[1] != 3:
            raise ShapeError(f"{self.model_name}: expected input [B,3,H,W], got {tuple(rgb.shape)}")
        padded, size = pad_to_multiple(rgb, self.input_multiple)

        x = self.pre_calc(padded)
        x1p = self.pack1(self.conv1(x))
        x2 = self.conv2(x1p)
        x2p = self.pack2(x2)
        x3p = self.pack3(self.conv3(x2p))
        x4p = self.pack4(self.conv4(x3p))
        x5p = self.pack5(self.conv5(x4p))

        skip1, skip2, skip3, skip4, skip5 = x, (x1p if self.skip2 == "pack1" else x2), x2p, x3p, x4p
        if not self.skips:
            # Multiplied rather than replaced, as the seed did: same graph, zero contribution.
            skip1, skip2, skip3, skip4, skip5 = (s * 0.0 for s in (skip1, skip2, skip3, skip4, skip5))

        iconv4 = self._decode(4, self._decode(5, x5p, skip5), skip4)
        disp4 = self.get_submodule("disp4_layer")(iconv4)
        iconv3 = self._decode(3, iconv4, skip3, disp4)
        disp3 = self.get_submodule("disp3_layer")(iconv3)
        iconv2 = self._decode(2, iconv3, skip2, disp3)
        disp2 = self.get_submodule("disp2_layer")(iconv2)
        if self.output_scale == 1.0:
            disp1 = self.get_submodule("disp1_layer")(self._decode(1, iconv2, skip1, disp2))
            scales = [disp1, disp2, disp3, disp4]
        else:
            scales = [disp2, disp3, disp4]

        outputs = [crop_to_scale(out, size, self.output_scale / 2**i) for i, out in enumerate(scales)]
        return outputs if self.training else outputs[0]


def _validate_choice(option: str, value: object, choices: Collection[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ProbeError(f"{option}: expected one of {', '.join(choices)}, got {value!r}")


#: Where skip2 comes from: the published packed conv1 output, or conv2's output (the slim B "skip" fix).
_SKIP2_SOURCES = ("pack1", "conv2")
#: packnet_slim_b's two fixes (see :class:`PackNet`) -> skip2 source.
SLIM_B_FIXES = {"unpack": "pack1", "skip": "conv2"}


def _validate_options(
    width: float,
    output_scale: str,
    min_depth: float,
    out_channels: int,
    dropout: Optional[float],
    residual: bool,
    skips: bool,
) -> None:
    check_width(width)
    if not isinstance(output_scale, str) or output_scale not in _OUTPUT_SCALES:
        raise ProbeError(f"output_scale: expected one of {', '.join(_OUTPUT_SCALES)}, got {output_scale!r}")
    if not (_is_number(min_depth) and min_depth > 0):
        raise ProbeError(f"min_depth: expected a positive depth in metres, got {min_depth!r}")
    if not (isinstance(out_channels, int) and not isinstance(out_channels, bool) and out_channels >= 1):
        raise ProbeError(f"out_channels: expected an integer >= 1, got {out_channels!r}")
    for key, value in (("residual", residual), ("skips", skips)):
        if not isinstance(value, bool):
            raise ProbeError(f"{key}: expected true or false, got {value!r}")
    if dropout is not None and not (_is_number(dropout) and 0.0 <= dropout < 1.0):
        raise ProbeError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
    if dropout and not residual:
        raise ProbeError("dropout: acts on the residual shortcut as published, so it needs residual=True")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------------------------------
# registered models
# ------------------------------------------------------------------------------------------


OPTIONS = (
    "width",
    "activation",
    "target",
    "output_scale",
    "residual",
    "skips",
    "min_depth",
    "out_channels",
    "dropout",
    "weights",
    "depth_conv",
    "downsample",
    "upsample",
)

#: Where packnet-sfm's checkpoints keep the depth network (its ModelWrapper -> SfmModel -> depth_net).
PACKNET_SFM_PREFIX = "model.depth_net."


def _build(name: str, spec: PackNetSpec, version: str, options: dict, skip2: str = "pack1") -> PackNet:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        extra = ", slim_b_fix" if spec is PACKNET_SLIM01 and version == "B" else ""
        raise ProbeError(
            f"{name}: unknown option(s) {', '.join(unknown)}; expected some of {', '.join(OPTIONS)}{extra}"
        )
    options = dict(options)
    weights = options.pop("weights", None)
    model = PackNet(spec, version, model_name=name, skip2=skip2, **options)
    if weights is not None:
        load_packnet_weights(model, weights)
    return model


def load_packnet_weights(model: PackNet, path: str | Path) -> None:
    """Load a packnet-sfm ``.ckpt``, a bare depth-net state dict or probe safetensors into ``model``, strictly.

    A checkpoint's keys outside ``model.depth_net.`` (the pose network) are ignored
    and reported.  When the checkpoint's config names its depth network, a mismatch
    error quotes it (e.g. ``PackNet01 version 1A`` belongs in ``packnet_a``).
    """
    label = f"weights={path}"
    file = read_tensor_file(path, label)
    if file.kind == "keras_h5":
        raise ProbeError(f"{label}: a Keras file holds no PackNet; expected a packnet-sfm .ckpt or a state dict")
    state, ignored = split_prefix(file.tensors, PACKNET_SFM_PREFIX)
    target = f"{model.model_name}(width={model.width}, version {model.version})"
    fit_state_dict(model, state, label=label, target=target, hint=_checkpoint_network(file.config))
    warn_ignored(label, ignored, f"only the depth network ({PACKNET_SFM_PREFIX}*) is loaded")


def _checkpoint_network(config: object) -> str:
    """``"the checkpoint's config names depth_net PackNet01 version 1A"`` from a packnet-sfm config, else ``""``."""
    try:
        depth_net = config["model"]["depth_net"]  # type: ignore[index]
        return f"the checkpoint's config names depth_net {depth_net['name']} version {depth_net['version']}"
    except (TypeError, KeyError):
        return ""


def _version_c(name: str, spec: PackNetSpec, skips: bool, options: dict, skip2: str = "pack1") -> PackNet:
    if skips:
        raise ProbeError(f"{name}: is version B with skips=False by definition; use the version-B model for skips")
    return _build(name, spec, "B", {**options, "skips": False}, skip2)


def _skip2_source(name: str, slim_b_fix: str) -> str:
    if not isinstance(slim_b_fix, str) or slim_b_fix not in SLIM_B_FIXES:
        raise ProbeError(f"{name}: slim_b_fix expected one of {', '.join(SLIM_B_FIXES)}, got {slim_b_fix!r}")
    return SLIM_B_FIXES[slim_b_fix]


@MODELS.register("packnet_a", description="PackNet01 version A: skips concatenated", family="packnet")
def packnet_a(**options) -> PackNet:
    """PackNet01 version A (128,294,020 parameters at width 1.0)."""
    return _build("packnet_a", PACKNET01, "A", options)


@MODELS.register("packnet_b", description="PackNet01 version B: skips added", family="packnet")
def packnet_b(**options) -> PackNet:
    """PackNet01 version B (124,164,580 parameters at width 1.0)."""
    return _build("packnet_b", PACKNET01, "B", options)


@MODELS.register("packnet_c", description="PackNet01 version B, every encoder skip x 0 (seed's C)", family="packnet")
def packnet_c(skips: bool = False, **options) -> PackNet:
    """The seed's version C: version B with skip1..skip5 multiplied by zero (same parameters as B)."""
    return _version_c("packnet_c", PACKNET01, skips, options)


@MODELS.register("packnet_slim_a", description="PackNetSlim01 version A: skips concatenated", family="packnet")
def packnet_slim_a(**options) -> PackNet:
    """PackNetSlim01 version A."""
    return _build("packnet_slim_a", PACKNET_SLIM01, "A", options)


@MODELS.register(
    "packnet_slim_b",
    description="PackNetSlim01 version B (skip2 channel fix: slim_b_fix=unpack|skip)",
    family="packnet",
)
def packnet_slim_b(slim_b_fix: str = "unpack", **options) -> PackNet:
    """PackNetSlim01 version B, made to run by one of two fixes (see :class:`PackNet`).

    ``slim_b_fix="unpack"`` (default, 71,899,908 parameters): unpack2 emits skip2's 32
    channels.  ``"skip"`` (71,955,300, the published count): skip2 is conv2's 64-channel
    output.  Both fit the seed's description; the seed does not say which it used.
    """
    return _build("packnet_slim_b", PACKNET_SLIM01, "B", options, _skip2_source("packnet_slim_b", slim_b_fix))


@MODELS.register("packnet_slim_c", description="PackNetSlim01 version B, every encoder skip x 0", family="packnet")
def packnet_slim_c(skips: bool = False, slim_b_fix: str = "unpack", **options) -> PackNet:
    """Slim version C: fixed slim version B (``slim_b_fix`` as there) with skip1..skip5 multiplied by zero."""
    return _version_c("packnet_slim_c", PACKNET_SLIM01, skips, options, _skip2_source("packnet_slim_c", slim_b_fix))
