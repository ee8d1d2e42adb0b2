"""DenseDepth (Alhashim & Wonka, 2018): DenseNet-169 encoder, light bilinear-upsampling decoder.

Shapes for a ``[B,3,H,W]`` input (H, W multiples of 32; other sizes are padded
and cropped back), width 1.0::

    encoder taps   relu0 [B,64,H/2]  pool0 [B,64,H/4]  transition1 [B,128,H/8]
                   transition2 [B,256,H/16]  norm5 [B,1664,H/32]
    conv2          1x1 conv on relu(norm5)                -> [B,1664,H/32,W/32]
    up1..up4       upsample to the skip, concat, 2 x (3x3 conv + LeakyReLU(0.2))
                   -> [B,832,H/16] -> [B,416,H/8] -> [B,208,H/4] -> [B,104,H/2]
    conv3          3x3 conv                               -> [B,out_channels,H/2,W/2]

42,657,689 parameters at width 1.0.  The network predicts DenseDepth's
*DepthNorm*, ``max_depth / depth`` (``output_space = "depthnorm"``).

Decoder modules carry the reference implementation's names (``conv2``,
``up1.convA`` ... ``conv3``) directly on the model, and the encoder is
``encoder.features.*`` in torchvision's layout, so ``weights=PATH`` accepts
probe's own state dicts, the reference PyTorch code's (``encoder.original_model.*``
and ``decoder.*`` keys) and a torchvision DenseNet-169 state dict (encoder only).
The reference PyTorch code leaves ``leakyreluA`` unused; here both convolutions
of an up block are followed by LeakyReLU(0.2), as in the paper and the Keras code.

>>> import torch
>>> from probe.models import build_model
>>> model = build_model("densedepth", width=0.0625).eval()
>>> model(torch.rand(2, 3, 48, 80)).shape
torch.Size([2, 1, 24, 40])
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.errors import ProbeError, ShapeError
from probe.models import MODELS
from probe.models.common import crop_to_scale, pad_to_multiple
from probe.models.densenet import DenseNet, densenet169

# Encoder stages that feed the decoder, finest first; the last one is the bottleneck.
ENCODER_TAPS: tuple[str, ...] = ("relu0", "pool0", "transition1", "transition2", "norm5")


class UpBlock(nn.Module):
    """Upsample to the skip's size (bilinear), concatenate it, then two 3x3 conv + LeakyReLU(0.2).

    ``x [B,Cx,h,w], skip [B,Cs,H,W] -> [B,out_channels,H,W]``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convA = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.leakyreluA = nn.LeakyReLU(0.2)
        self.convB = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.leakyreluB = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        y = self.leakyreluA(self.convA(torch.cat([up, skip], dim=1)))
        return self.leakyreluB(self.convB(y))


class DenseDepth(nn.Module):
    """DenseDepth: ``[B,3,H,W]`` in [0,1] -> DepthNorm ``[B,out_channels,H/2,W/2]`` (eval mode);
    training mode returns that tensor in a one-element list (the contract's list of scales).

    Args:
        width: channel multiplier for the encoder (growth rate, stem); the decoder
            follows the encoder's output width (1664 at 1.0) as in the reference.
        out_channels: channels of the final 3x3 convolution.
        skips: False multiplies every encoder->decoder skip by zero (parameters kept).
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
    checkpoint_stages = (*(f"encoder.features.{kind}{i}" for i in range(1, 5) for kind in ("denseblock", "transition")
                           if (kind, i) != ("transition", 4)), "up1", "up2", "up3", "up4")

    def __init__(self, width: float = 1.0, out_channels: int = 1, skips: bool = True) -> None:
        super().__init__()
        if not (isinstance(out_channels, int) and not isinstance(out_channels, bool) and out_channels >= 1):
            raise ProbeError(f"densedepth: out_channels must be an integer >= 1, got {out_channels!r}")
        if not isinstance(skips, bool):
            raise ProbeError(f"densedepth: skips expected true or false, got {skips!r}")
        self.width = width
        self.out_channels = out_channels
        self.skips = skips
        self.encoder: DenseNet = densenet169(width)
        ch = self.encoder.channels
        features = self.encoder.num_features
        self.conv2 = nn.Conv2d(features, features, kernel_size=1, stride=1, padding=0)
        self.up1 = UpBlock(features + ch["transition2"], features // 2)
        self.up2 = UpBlock(features // 2 + ch["transition1"], features // 4)
        self.up3 = UpBlock(features // 4 + ch["pool0"], features // 8)
        self.up4 = UpBlock(features // 8 + ch["relu0"], features // 16)
        self.conv3 = nn.Conv2d(features // 16, out_channels, kernel_size=3, stride=1, padding=1)

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
        y = self.conv2(F.relu(bottleneck))
        y = self.up1(y, sixteenth)
        y = self.up2(y, eighth)
        y = self.up3(y, quarter)
        y = self.up4(y, half)
        y = crop_to_scale(self.conv3(y), size, self.output_scale)
        return [y] if self.training else y

    def load_weights(self, path: str | Path) -> None:
        """Load a local state dict (``.pth``/``.pt``/``.safetensors``); see :func:`read_state_dict`.

        A torchvision DenseNet-169 state dict (``features.*``, ``classifier.*``) fills the
        encoder only; anything else must match the whole model key for key and shape for shape.
        """
        state = _canonical_keys(read_state_dict(path))
        target: nn.Module = self
        if all(k.startswith(("features.", "classifier.")) for k in state):
            state = {k: v for k, v in state.items() if k.startswith("features.")}
            target = self.encoder
        expected = target.state_dict()
        # Old torchvision checkpoints predate BatchNorm's step counter; it carries no weights.
        for key, value in expected.items():
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = value
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong_shape = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                       if k in state and state[k].shape != v.shape]
        if missing or unexpected or wrong_shape:
            parts = [f"{label} {items[:3]}" + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")
                     for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                          ("shape mismatches (file vs model)", wrong_shape)) if items]
            raise ProbeError(f"weights={path}: state dict does not fit densedepth(width={self.width}, "
                             f"out_channels={self.out_channels}): " + "; ".join(parts))
        target.load_state_dict(state, strict=True)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``).

    A torch file holding ``{"state_dict": ...}`` or ``{"model": ...}`` is unwrapped.
    Raises ProbeError naming the file when it is missing, unreadable or holds non-tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise ProbeError(f"weights={p}: file not found (expected a .pth, .pt or .safetensors state dict)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: object = load_file(str(p), device="cpu")
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a corrupt file
        raise ProbeError(f"weights={p}: cannot read a state dict ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ProbeError(f"weights={p}: expected a mapping of parameter names to tensors")
    return {str(k): v for k, v in obj.items()}


_OLD_TORCHVISION_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:1|2)\.(?:weight|bias|running_mean|running_var))$")


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


@MODELS.register("densedepth", description="DenseDepth: DenseNet-169 encoder + bilinear-upsampling decoder, half-resolution DepthNorm output",
                 family="densedepth")
def build_densedepth(width: float = 1.0, out_channels: int = 1, skips: bool = True,
                     weights: str | Path | None = None) -> DenseDepth:
    """DenseDepth, randomly initialised (as the seed trained it) or loaded from ``weights``.

    ``[B,3,H,W] -> [B,out_channels,H/2,W/2]``; see :class:`DenseDepth`.
    """
    model = DenseDepth(width=width, out_channels=out_channels, skips=skips)
    if weights is not None:
        model.load_weights(weights)
    return model
