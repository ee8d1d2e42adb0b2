"""Transplants: PackNet's and DenseDepth's halves swapped, and their depth heads swapped.

Where inside PackNet does its failure to fit its own training images live (the
README's "PackNet fails to optimise, not to generalise")?  These factories cross the
two zoo networks part for part, so ``probe fit`` can score every combination by the
same protocol:

* :func:`packnet_encoder_densedepth_decoder`: PackNetSlim B's encoder (``pre_calc``,
  ``conv1``..``conv5`` and the five packing layers, Xavier-initialised as published)
  feeding DenseDepth's decoder: a 1x1 convolution of the bottleneck to DenseDepth's
  decoder width, four bilinear up-blocks over the packed skips at 1/16, 1/8, 1/4
  and 1/2, and DenseDepth's linear 3x3 head in its ``max_depth / depth`` space at
  half resolution.
* :func:`densedepth_encoder_packnet_decoder`: DenseNet-169 (DenseDepth's encoder)
  feeding PackNet's decoder: five unpacking layers, each stage concatenating its
  skip (version A: the DenseNet skips' channel counts differ from PackNet's), the
  coarser depth fed into stages 3..1, GroupNorm-ELU ``iconv`` layers and the sigmoid
  inverse-depth heads starting at 1 m, at full resolution.  DenseNet has no
  full-resolution feature, so skip 1 is PackNet's own ``pre_calc`` convolution of
  the image, as in PackNet.  ``stages`` sets the decoder's five widths (fine to
  coarse; default PackNetSlim's) and ``head="linear"`` swaps in DenseDepth's heads;
  :func:`densedepth_encoder_wide_packnet_decoder` and
  :func:`densedepth_encoder_packnet_decoder_linear_heads` name those two crosses.
* :func:`packnet_linear_heads`: PackNetSlim B whose four sigmoid heads are replaced
  by DenseDepth's head, a linear 3x3 convolution emitting ``max_depth / depth``,
  started at 1 m; every other option reaches PackNetSlim B (``upsample=nearest``).
* :func:`densedepth_sigmoid_head`: DenseDepth whose final convolution passes through
  PackNet's head, ``(max_depth / min_depth) * sigmoid(x)`` in the same space (the
  inverse depth of PackNet's head, scaled by ``max_depth``), started at 1 m.

Unlike ``examples/unet.py`` these are built from probe's own layers, so they track
the zoo exactly.  Every factory takes ``width`` (``--width``) and declares its
output space and the indoor range 0.1..10 m::

    probe check-model examples/transplants.py:densedepth_encoder_packnet_decoder
    probe fit --model examples/transplants.py:densedepth_encoder_packnet_decoder \\
        --model examples/transplants.py:packnet_encoder_densedepth_decoder \\
        --baseline densedepth --images 64 --steps 600 --seeds 3 --out runs/transplants
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.models.common import crop_to_scale, pad_to_multiple
from probe.models.densedepth import ENCODER_TAPS, DenseDepth, UpBlock
from probe.models.densenet import TORCH_BN_EPS, densenet169
from probe.models.packnet import Conv2D, DepthHead, PackNet, UnpackLayerConv3d, packnet_channels, packnet_slim_b

MIN_DEPTH = 0.1  # the indoor protocol's range (NYU, the synthetic rooms), metres
MAX_DEPTH = 10.0
START_DEPTH = 1.0  # every head starts here, as PackNet's published heads do
ENCODER_STAGES = ("pre_calc", *(f"{kind}{k}" for k in range(1, 6) for kind in ("conv", "pack")))


def _packnet(width: float, **options: Any) -> PackNet:
    """The donor: PackNetSlim B at ``width`` with the protocol's 0.1 m head."""
    return packnet_slim_b(width=width, min_depth=MIN_DEPTH, **options)


def _stage_channels(donor: PackNet) -> list[int]:
    """The donor's five encoder stage widths at its width, fine to coarse (what ``pack1``..``pack5`` emit)."""
    return [packnet_channels(c, donor.width) for c in donor.spec.channels]


def _start(conv: nn.Conv2d, bias: float) -> None:
    """Set ``conv``'s bias so that a zero input emits ``bias`` (a head's starting value)."""
    assert conv.bias is not None
    nn.init.constant_(conv.bias, bias)


def _xavier(module: nn.Module) -> None:
    """PackNet's published initialisation for the parts taken from it: Xavier weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():  # after the loop above, which would zero a head's bias visited before its conv
        if isinstance(m, DepthHead) and m.conv1.bias is not None:
            nn.init.constant_(m.conv1.bias, m.start_bias())
        if isinstance(m, LinearHead):
            _start(m.conv1, MAX_DEPTH / START_DEPTH)


class PackNetEncoderDenseDepthDecoder(nn.Module):
    """``[B,3,H,W]`` in [0,1] -> ``max_depth / depth`` ``[B,1,H/2,W/2]`` (eval); a one-element list in training.

    ``encoder`` holds PackNet's stages under their PackNet names; ``conv2``, ``up1``..``up4`` and ``conv3``
    are DenseDepth's decoder under its names.
    """

    output_space = "depthnorm"
    min_depth = MIN_DEPTH
    max_depth = MAX_DEPTH
    input_multiple = 32

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        donor = _packnet(width)
        self.encoder = nn.ModuleDict({name: donor.get_submodule(name) for name in ENCODER_STAGES})
        packed = _stage_channels(donor)
        # DenseDepth's decoder width follows DenseNet-169's features at this width, not PackNet's bottleneck.
        features = densenet169(width).num_features
        widths = [features] + [max(1, features // 2**k) for k in range(1, 5)]
        skips = [packed[3], packed[2], packed[1], packed[0]]  # 1/16, 1/8, 1/4, 1/2
        self.conv2 = nn.Conv2d(packed[4], features, kernel_size=1)
        for k in range(1, 5):
            up = UpBlock(widths[k - 1] + skips[k - 1], widths[k], leaky_after_conv_a=False, align_corners=True)
            self.add_module(f"up{k}", up)
        self.conv3 = nn.Conv2d(widths[4], 1, kernel_size=3, padding=1)
        _start(self.conv3, MAX_DEPTH / START_DEPTH)

    def encode(self, padded: torch.Tensor) -> list[torch.Tensor]:
        """PackNet's encoder: ``[B,3,H,W]`` -> the packed features at 1/2, 1/4, 1/8, 1/16, 1/32."""
        x = self.encoder["pre_calc"](padded)
        features = []
        for k in range(1, 6):
            x = self.encoder[f"pack{k}"](self.encoder[f"conv{k}"](x))
            features.append(x)
        return features

    def forward(self, rgb: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        padded, size = pad_to_multiple(rgb, self.input_multiple)
        x1p, x2p, x3p, x4p, x5p = self.encode(padded)
        y = self.conv2(x5p)
        for k, skip in zip(range(1, 5), (x4p, x3p, x2p, x1p)):
            y = self.get_submodule(f"up{k}")(y, skip)
        out = crop_to_scale(self.conv3(y), size, 0.5)
        return [out] if self.training else out


class DenseDepthEncoderPackNetDecoder(nn.Module):
    """``[B,3,H,W]`` in [0,1] -> inverse depth ``[B,1,H,W]`` (eval); four scales, finest first, in training.

    ``encoder`` is DenseDepth's DenseNet-169; ``pre_calc``, ``unpack1``..``unpack5``, ``iconv1``..``iconv5`` and
    ``disp1_layer``..``disp4_layer`` are PackNet's decoder under its names.
    """

    output_space = "inverse"
    min_depth = MIN_DEPTH
    max_depth = MAX_DEPTH
    input_multiple = 32

    def __init__(self, width: float = 1.0, stages: tuple[int, ...] | str | None = None, head: str = "sigmoid") -> None:
        super().__init__()
        if head not in ("sigmoid", "linear"):
            raise ValueError(f"head: expected sigmoid (PackNet's) or linear (DenseDepth's), got {head!r}")
        donor = _packnet(width)
        self.encoder = densenet169(width, bn_eps=TORCH_BN_EPS)
        taps = self.encoder.channels
        pre = packnet_channels(donor.spec.pre_channels, donor.width)
        self.pre_calc = Conv2D(3, pre, 5, 1)
        if isinstance(stages, str):  # --model-option stages=6,14,26,52,104
            stages = tuple(int(c) for c in stages.split(","))
        if stages is None:
            stages = tuple(_stage_channels(donor))
        if len(stages) != 5 or any(int(c) < 2 or int(c) % 2 for c in stages):
            raise ValueError(f"stages: expected five even widths >= 2, fine to coarse, got {stages!r}")
        width_of = dict(zip(range(1, 6), (int(c) for c in stages)))
        skip_of = {1: pre, 2: taps["relu0"], 3: taps["pool0"], 4: taps["transition1"], 5: taps["transition2"]}
        input_of = {5: taps["norm5"], 4: width_of[5], 3: width_of[4], 2: width_of[3], 1: width_of[2]}
        spec = donor.spec
        for k in range(5, 0, -1):
            kernel = 5 - k
            coarser = 1 if k <= 3 else 0  # stages 3..1 also take the coarser stage's depth
            self.add_module(
                f"unpack{k}", UnpackLayerConv3d(input_of[k], width_of[k], spec.unpack_kernels[kernel], d=spec.d)
            )
            self.add_module(
                f"iconv{k}", Conv2D(width_of[k] + skip_of[k] + coarser, width_of[k], spec.iconv_kernels[kernel])
            )
        for k in range(4, 0, -1):
            layer = DepthHead(width_of[k], min_depth=MIN_DEPTH) if head == "sigmoid" else LinearHead(width_of[k])
            self.add_module(f"disp{k}_layer", layer)
        if head == "linear":
            self.output_space = "depthnorm"
        decoder = [self.pre_calc, *(self.get_submodule(f"{n}{k}") for k in range(1, 6) for n in ("unpack", "iconv"))]
        for part in (*decoder, *(self.get_submodule(f"disp{k}_layer") for k in range(1, 5))):
            _xavier(part)

    def _stage(self, k: int, x: torch.Tensor, skip: torch.Tensor, coarser: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder stage ``k``: unpack ``x`` (doubling H, W), concatenate ``skip`` and the coarser depth, refine."""
        merged = [self.get_submodule(f"unpack{k}")(x), skip]
        if coarser is not None:
            merged.append(F.interpolate(coarser, scale_factor=2, mode="nearest"))
        return self.get_submodule(f"iconv{k}")(torch.cat(merged, 1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        padded, size = pad_to_multiple(rgb, self.input_multiple)
        half, quarter, eighth, sixteenth, bottleneck = self.encoder.forward_taps(padded, ENCODER_TAPS)
        iconv4 = self._stage(4, self._stage(5, F.relu(bottleneck), sixteenth), eighth)
        disp4 = self.get_submodule("disp4_layer")(iconv4)
        iconv3 = self._stage(3, iconv4, quarter, disp4)
        disp3 = self.get_submodule("disp3_layer")(iconv3)
        iconv2 = self._stage(2, iconv3, half, disp3)
        disp2 = self.get_submodule("disp2_layer")(iconv2)
        disp1 = self.get_submodule("disp1_layer")(self._stage(1, iconv2, self.pre_calc(padded), disp2))
        outputs = [crop_to_scale(d, size, 1.0 / 2**i) for i, d in enumerate((disp1, disp2, disp3, disp4))]
        return outputs if self.training else outputs[0]


class LinearHead(nn.Module):
    """DenseDepth's head: a linear 3x3 convolution, ``[B,C,H,W] -> [B,1,H,W]`` in ``max_depth / depth``."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 1, kernel_size=3, padding=1)
        nn.init.xavier_uniform_(self.conv1.weight)
        _start(self.conv1, MAX_DEPTH / START_DEPTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)


class SigmoidHead(nn.Module):
    """PackNet's head on a DenseDepth convolution: ``(max_depth / min_depth) * sigmoid(conv(x))``.

    That is PackNet's inverse depth ``sigmoid / min_depth`` times ``max_depth``, i.e. DenseDepth's
    ``max_depth / depth``; bounded to ``(0, max_depth / min_depth)`` as PackNet's head is.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        start = MIN_DEPTH / START_DEPTH  # the sigmoid's value at 1 m
        _start(self.conv, math.log(start / (1 - start)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (MAX_DEPTH / MIN_DEPTH) * torch.sigmoid(self.conv(x))


def packnet_encoder_densedepth_decoder(width: float = 1.0) -> PackNetEncoderDenseDepthDecoder:
    """PackNetSlim B's encoder, DenseDepth's decoder and linear head (half resolution)."""
    return PackNetEncoderDenseDepthDecoder(width)


def densedepth_encoder_packnet_decoder(
    width: float = 1.0, stages: tuple[int, ...] | str | None = None, head: str = "sigmoid"
) -> DenseDepthEncoderPackNetDecoder:
    """DenseNet-169 and PackNet's decoder (full resolution); ``stages`` sets its widths, ``head`` its heads."""
    return DenseDepthEncoderPackNetDecoder(width, stages, head)


def packnet_linear_heads(width: float = 1.0, **options: Any) -> PackNet:
    """PackNetSlim B with DenseDepth's linear head at each of its four scales.

    Every other ``--model-option`` reaches PackNetSlim B (``upsample=nearest``, ``downsample=avgpool``, ...).
    """
    model = _packnet(width, **options)
    for k in range(1, 5):
        name = f"disp{k}_layer"
        head = model.get_submodule(name)
        assert isinstance(head, DepthHead)
        model.add_module(name, LinearHead(head.conv1.in_channels))
    model.output_space = "depthnorm"
    # The adapter reads the range from the network; setattr, because nn.Module types attributes as tensors.
    setattr(model, "max_depth", MAX_DEPTH)  # noqa: B010
    return model


def densedepth_sigmoid_head(width: float = 1.0) -> DenseDepth:
    """DenseDepth with PackNet's bounded sigmoid head on its final convolution."""
    model = DenseDepth(width=width)
    model.conv3 = SigmoidHead(model.conv3)  # type: ignore[assignment]
    setattr(model, "max_depth", MAX_DEPTH)  # noqa: B010
    return model


def densedepth_encoder_wide_packnet_decoder(width: float = 1.0) -> DenseDepthEncoderPackNetDecoder:
    """:func:`densedepth_encoder_packnet_decoder` at DenseDepth's own decoder widths.

    DenseDepth's decoder halves DenseNet-169's features at each of its stages (104, 52, 26, 13, 6 at width
    1/16); here rounded up to even counts (the unpacking layers need them), fine to coarse.
    """
    features = densenet169(width).num_features
    stages = tuple(max(2, -(-(features // 2**k) // 2) * 2) for k in range(4, -1, -1))
    return DenseDepthEncoderPackNetDecoder(width, stages)


def densedepth_encoder_packnet_decoder_linear_heads(width: float = 1.0) -> DenseDepthEncoderPackNetDecoder:
    """:func:`densedepth_encoder_packnet_decoder` with DenseDepth's linear head at each of the four scales."""
    return DenseDepthEncoderPackNetDecoder(width, head="linear")
