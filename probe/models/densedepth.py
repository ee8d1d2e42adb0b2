"""DenseDepth (Alhashim & Wonka, 2018): DenseNet-169 encoder, light bilinear-upsampling decoder.

Two published versions exist and differ in the decoder; ``variant`` picks one:

================  ==========================================  =========================================
                  ``"pytorch"`` (default)                     ``"keras"``
================  ==========================================  =========================================
source            ialhashim/DenseDepth ``PyTorch/model.py``   ``model.py`` + ``layers.py`` (the paper's
                                                              Keras code, ``is_halffeatures=True``)
decoder width     1664 (= encoder features)                   832 (half the encoder features)
up-block          convA, convB, LeakyReLU(0.2) after convB    LeakyReLU(0.2) after convA and convB
                  only (``leakyreluA`` is defined, unused)
upsampling        bilinear, ``align_corners=True``            ``tf.image.resize`` bilinear = half-pixel
                                                              centres = ``align_corners=False``
encoder BN eps    1e-5 (torchvision)                          1.001e-5 (``keras.applications``)
parameters        42,657,689                                  21,365,405
================  ==========================================  =========================================

The default is the PyTorch port: it is the code a PyTorch study such as the
seed's would have started from.  ``align_corners`` overrides the variant's
upsampling (the Keras code used ``tf.image.resize_images(align_corners=True)``
until September 2020, see the README).

Shapes for a ``[B,3,H,W]`` input (H, W multiples of 32; other sizes are padded
and cropped back), width 1.0, decoder width ``F`` (1664 or 832)::

    encoder taps   relu0 [B,64,H/2]  pool0 [B,64,H/4]  transition1 [B,128,H/8]
                   transition2 [B,256,H/16]  norm5 [B,1664,H/32]
    conv2          1x1 conv on relu(norm5)                -> [B,F,H/32,W/32]
    up1..up4       upsample to the skip, concat, convA, convB (+ LeakyReLU(0.2))
                   -> [B,F/2,H/16] -> [B,F/4,H/8] -> [B,F/8,H/4] -> [B,F/16,H/2]
    conv3          3x3 conv                               -> [B,out_channels,H/2,W/2]

The network predicts DenseDepth's *DepthNorm*, ``max_depth / depth``
(``output_space = "depthnorm"``).

Weights.  Decoder modules carry the reference names (``conv2``, ``up1.convA`` ...
``conv3``) directly on the model and the encoder is ``encoder.features.*`` in
torchvision's layout.  ``weights=PATH`` loads a whole model: probe's own
safetensors, a state dict of the PyTorch port (``encoder.original_model.*`` and
``decoder.*``; its unused ``classifier`` is ignored and reported) or a Keras HDF5
file such as the published ``nyu.h5`` (layer names mapped by
:func:`keras_layer_table`, kernels HWIO -> OIHW).  ``pretrained=PATH`` loads
ImageNet DenseNet-169 weights in torchvision's layout into the encoder only.

>>> import torch
>>> from probe.models import build_model
>>> model = build_model("densedepth", width=0.0625).eval()
>>> model(torch.rand(2, 3, 48, 80)).shape
torch.Size([2, 1, 24, 40])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.errors import ProbeError, ShapeError
from probe.models import MODELS
from probe.models.common import crop_to_scale, pad_to_multiple
from probe.models.densenet import DENSENET169_BLOCKS, KERAS_BN_EPS, TORCH_BN_EPS, DenseNet, densenet169
from probe.models.weights import fit_state_dict, read_tensor_file, warn_ignored

# Encoder stages that feed the decoder, finest first; the last one is the bottleneck.
ENCODER_TAPS: tuple[str, ...] = ("relu0", "pool0", "transition1", "transition2", "norm5")


@dataclass(frozen=True)
class Variant:
    """What distinguishes the two published DenseDepth decoders (see the module docstring)."""

    decoder_divisor: int  # decoder width = encoder features // decoder_divisor
    leaky_after_conv_a: bool  # LeakyReLU(0.2) after the first convolution of each up-block too
    align_corners: bool  # bilinear upsampling convention
    bn_eps: float  # encoder BatchNorm epsilon
    source: str


VARIANTS: dict[str, Variant] = {
    "pytorch": Variant(1, False, True, TORCH_BN_EPS, "ialhashim/DenseDepth PyTorch/model.py"),
    "keras": Variant(2, True, False, KERAS_BN_EPS, "ialhashim/DenseDepth model.py + layers.py (Keras)"),
}


class UpBlock(nn.Module):
    """Upsample to the skip's size (bilinear), concatenate it, convA 3x3, convB 3x3, LeakyReLU(0.2).

    ``x [B,Cx,h,w], skip [B,Cs,H,W] -> [B,out_channels,H,W]``.  ``leaky_after_conv_a``
    also applies LeakyReLU(0.2) between the two convolutions (the Keras decoder).
    """

    def __init__(self, in_channels: int, out_channels: int, *, leaky_after_conv_a: bool, align_corners: bool) -> None:
        super().__init__()
        self.convA = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.leakyreluA = nn.LeakyReLU(0.2) if leaky_after_conv_a else nn.Identity()
        self.convB = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.leakyreluB = nn.LeakyReLU(0.2)
        self.align_corners = align_corners

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=self.align_corners)
        y = self.leakyreluA(self.convA(torch.cat([up, skip], dim=1)))
        return self.leakyreluB(self.convB(y))


class DenseDepth(nn.Module):
    """DenseDepth: ``[B,3,H,W]`` in [0,1] -> DepthNorm ``[B,out_channels,H/2,W/2]`` (eval mode);
    training mode returns that tensor in a one-element list (the contract's list of scales).

    Args:
        width: channel multiplier for the encoder (growth rate, stem); the decoder
            follows the encoder's output width as in the reference.
        out_channels: channels of the final 3x3 convolution.
        skips: False multiplies every encoder->decoder skip by zero (parameters kept).
        variant: ``"pytorch"`` (the PyTorch port) or ``"keras"`` (the paper's Keras model).
        align_corners: overrides the variant's upsampling convention when not None.
    """

    output_space = "depthnorm"
    # DenseDepth's NYU range starts at 0.1 m (DepthNorm 10..1000 cm); it does not enter the forward pass.
    min_depth = 0.1
    output_scale = 0.5
    input_multiple = 32
    family = "densedepth"
    model_name = "densedepth"
    # Recomputed in backward under --activation-checkpointing (probe.models.recompute): the DenseNet
    # blocks and transitions, then the decoder's up blocks.
    checkpoint_stages = (
        *(
            f"encoder.features.{kind}{i}"
            for i in range(1, 5)
            for kind in ("denseblock", "transition")
            if (kind, i) != ("transition", 4)
        ),
        "up1",
        "up2",
        "up3",
        "up4",
    )

    def __init__(
        self,
        width: float = 1.0,
        out_channels: int = 1,
        skips: bool = True,
        variant: str = "pytorch",
        align_corners: bool | None = None,
    ) -> None:
        super().__init__()
        if not (isinstance(out_channels, int) and not isinstance(out_channels, bool) and out_channels >= 1):
            raise ProbeError(f"densedepth: out_channels must be an integer >= 1, got {out_channels!r}")
        if not isinstance(skips, bool):
            raise ProbeError(f"densedepth: skips expected true or false, got {skips!r}")
        if not isinstance(variant, str) or variant not in VARIANTS:
            raise ProbeError(f"densedepth: variant expected one of {', '.join(VARIANTS)}, got {variant!r}")
        if align_corners is not None and not isinstance(align_corners, bool):
            raise ProbeError(f"densedepth: align_corners expected true or false, got {align_corners!r}")
        spec = VARIANTS[variant]
        self.width, self.out_channels, self.skips, self.variant = width, out_channels, skips, variant
        self.align_corners = spec.align_corners if align_corners is None else align_corners
        self.encoder: DenseNet = densenet169(width, bn_eps=spec.bn_eps)
        ch = self.encoder.channels
        features = max(1, self.encoder.num_features // spec.decoder_divisor)
        widths = [features] + [max(1, features // 2**k) for k in range(1, 5)]
        skip_channels = [ch["transition2"], ch["transition1"], ch["pool0"], ch["relu0"]]
        self.conv2 = nn.Conv2d(self.encoder.num_features, features, kernel_size=1, stride=1, padding=0)
        for k in range(1, 5):
            self.add_module(
                f"up{k}",
                UpBlock(
                    widths[k - 1] + skip_channels[k - 1],
                    widths[k],
                    leaky_after_conv_a=spec.leaky_after_conv_a,
                    align_corners=self.align_corners,
                ),
            )
        self.conv3 = nn.Conv2d(widths[4], out_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ShapeError(f"densedepth: expected a float input [B,3,H,W], got {x.dtype} {tuple(x.shape)}")
        padded, (h, w) = pad_to_multiple(x, self.input_multiple)
        # int(): under jit tracing (fvcore's MAC count) sizes come back as 0-d tensors, which round() rejects.
        size = (int(h), int(w))
        *skips, bottleneck = self.encoder.forward_taps(padded, ENCODER_TAPS)
        if not self.skips:
            skips = [s * 0 for s in skips]
        half, quarter, eighth, sixteenth = skips
        # Both versions decode relu(norm5): the port applies F.relu, Keras's DenseNet ends in a ReLU layer.
        y = self.conv2(F.relu(bottleneck))
        y = self.get_submodule("up1")(y, sixteenth)
        y = self.get_submodule("up2")(y, eighth)
        y = self.get_submodule("up3")(y, quarter)
        y = self.get_submodule("up4")(y, half)
        y = crop_to_scale(self.conv3(y), size, self.output_scale)
        return [y] if self.training else y

    def describe(self) -> str:
        return (
            f"densedepth(variant={self.variant}, width={self.width}, out_channels={self.out_channels}, "
            f"decoder width {self.conv2.out_channels})"
        )

    def load_weights(self, path: str | Path) -> None:
        """Load a whole model: probe safetensors, a PyTorch-port state dict, or Keras HDF5 (see the module doc)."""
        label = f"weights={path}"
        file = read_tensor_file(path, label)
        ignored: list[str] = []
        if file.kind == "keras_h5":
            state = keras_state_dict(file.tensors, label)
        else:
            state, ignored = _split_classifier(file.tensors)
        fit_state_dict(self, state, label=label, target=self.describe(), hint=self._hint(state))
        warn_ignored(label, ignored, "the classifier of torchvision's DenseNet is not part of DenseDepth")

    def load_pretrained(self, path: str | Path) -> None:
        """Load ImageNet DenseNet-169 weights in torchvision's layout (``features.*``) into the encoder."""
        label = f"pretrained={path}"
        file = read_tensor_file(path, label)
        if file.kind == "keras_h5":
            raise ProbeError(f"{label}: expected torchvision's DenseNet-169 state dict (features.*), got a Keras file")
        state, ignored = _split_classifier(file.tensors)
        state = {k.removeprefix("encoder."): v for k, v in state.items()}
        fit_state_dict(
            self.encoder,
            state,
            label=label,
            target=f"the DenseNet-169 encoder (width {self.width})",
            hint="expected torchvision's densenet169 state dict (features.*, classifier.*)",
        )
        warn_ignored(label, ignored, "ImageNet classifier weights are not part of DenseDepth")

    def _hint(self, state: Mapping[str, Any]) -> str:
        """Point at ``pretrained=`` for an encoder-only file, or at the variant whose decoder width the file has."""
        if state and all(k.startswith("features.") for k in state):
            return "this is a DenseNet encoder alone: load it with pretrained=PATH"
        conv2 = state.get("conv2.weight")
        if conv2 is None or conv2.shape[0] == self.conv2.out_channels:
            return ""
        fits = [
            name
            for name, spec in VARIANTS.items()
            if conv2.shape[0] == self.encoder.num_features // spec.decoder_divisor
        ]
        return (
            f"the file's decoder is {conv2.shape[0]} wide: use variant={fits[0]}"
            if fits
            else f"the file's decoder is {conv2.shape[0]} wide"
        )


# Old torchvision DenseNet files (the released ImageNet weights among them) spell `norm1` as `norm.1`;
# torchvision's own loader renames them with this pattern.
_OLD_TORCHVISION_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:1|2)\.(?:weight|bias|running_mean|running_var))$"
)


def _canonical_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the key spellings of DataParallel, the reference code and old torchvision to probe's."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("encoder.original_model."):
            key = "encoder." + key.removeprefix("encoder.original_model.")
        key = key.removeprefix("decoder.")
        key = _OLD_TORCHVISION_KEY.sub(r"\1\2", key)
        renamed[key] = value
    return renamed


_CLASSIFIER_KEY = re.compile(r"(^|\.)classifier\.")


def _split_classifier(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Drop torchvision's ImageNet classifier (``classifier.*`` under any prefix), returned by its names in the
    file, and bring the other keys to probe's spelling (:func:`_canonical_keys`)."""
    ignored = [k for k in state if _CLASSIFIER_KEY.search(k)]
    return _canonical_keys({k: v for k, v in state.items() if not _CLASSIFIER_KEY.search(k)}), ignored


#: Keras weight names -> torch parameter/buffer names (BatchNormalization and Conv2D).
KERAS_WEIGHT_NAMES: dict[str, str] = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def keras_layer_table(blocks: tuple[int, ...] = DENSENET169_BLOCKS) -> dict[str, str]:
    """Keras layer name -> probe module path, for ``keras.applications.DenseNet169`` + DenseDepth's decoder.

    Keras names its DenseNet blocks ``conv2`` .. ``conv5`` and its transitions
    ``pool2`` .. ``pool4``: block ``b`` here is Keras's ``conv{b+1}``.

    >>> table = keras_layer_table()
    >>> table["conv1/bn"], table["conv2_block1_1_conv"]
    ('encoder.features.norm0', 'encoder.features.denseblock1.denselayer1.conv1')
    >>> table["pool3_conv"], table["up4_convB"]
    ('encoder.features.transition2.conv', 'up4.convB')
    """
    features = "encoder.features"
    table = {
        "conv1/conv": f"{features}.conv0",
        "conv1/bn": f"{features}.norm0",
        "bn": f"{features}.norm5",
        "conv2": "conv2",
        "conv3": "conv3",
    }
    for b, layers in enumerate(blocks, start=1):
        for i in range(1, layers + 1):
            keras, ours = f"conv{b + 1}_block{i}", f"{features}.denseblock{b}.denselayer{i}"
            table.update(
                {
                    f"{keras}_0_bn": f"{ours}.norm1",
                    f"{keras}_1_conv": f"{ours}.conv1",
                    f"{keras}_1_bn": f"{ours}.norm2",
                    f"{keras}_2_conv": f"{ours}.conv2",
                }
            )
        if b < len(blocks):
            table.update(
                {
                    f"pool{b + 1}_bn": f"{features}.transition{b}.norm",
                    f"pool{b + 1}_conv": f"{features}.transition{b}.conv",
                }
            )
    for k in range(1, 5):
        table.update({f"up{k}_convA": f"up{k}.convA", f"up{k}_convB": f"up{k}.convB"})
    return table


def keras_state_dict(arrays: Mapping[str, np.ndarray], label: str) -> dict[str, torch.Tensor]:
    """Keras ``{"<layer>/<weight>": array}`` (see :func:`probe.models.weights.read_keras_h5`) -> probe's state dict.

    Kernels go from Keras's HWIO to torch's OIHW; a layer or weight name outside
    the table keeps its Keras name, so it shows up as an unexpected key.
    """
    table = keras_layer_table()
    state: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        layer, weight = name.rsplit("/", 1)
        if layer not in table or weight not in KERAS_WEIGHT_NAMES:
            state[f"keras:{name}"] = torch.from_numpy(np.ascontiguousarray(array))
            continue
        value = np.asarray(array)
        if value.dtype.kind != "f":
            raise ProbeError(f"{label}: {name} should hold floating-point weights, got {value.dtype}")
        if weight == "kernel":
            if value.ndim != 4:
                raise ProbeError(f"{label}: {name} should be a 4-D HWIO convolution kernel, got shape {value.shape}")
            value = value.transpose(3, 2, 0, 1)
        state[f"{table[layer]}.{KERAS_WEIGHT_NAMES[weight]}"] = torch.from_numpy(np.ascontiguousarray(value))
    return state


@MODELS.register(
    "densedepth",
    description="DenseDepth: DenseNet-169 encoder + bilinear-upsampling decoder, half-resolution DepthNorm output",
    family="densedepth",
)
def build_densedepth(
    width: float = 1.0,
    out_channels: int = 1,
    skips: bool = True,
    variant: str = "pytorch",
    align_corners: bool | None = None,
    weights: str | Path | None = None,
    pretrained: str | Path | None = None,
) -> DenseDepth:
    """DenseDepth, randomly initialised (as the seed trained it), ImageNet-``pretrained``, or loaded from ``weights``.

    ``[B,3,H,W] -> [B,out_channels,H/2,W/2]``; see :class:`DenseDepth`.
    """
    if weights is not None and pretrained is not None:
        raise ProbeError("densedepth: give weights= (a whole model) or pretrained= (the encoder), not both")
    model = DenseDepth(
        width=width, out_channels=out_channels, skips=skips, variant=variant, align_corners=align_corners
    )
    if pretrained is not None:
        model.load_pretrained(pretrained)
    if weights is not None:
        model.load_weights(weights)
    return model
