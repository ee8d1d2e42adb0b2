"""A Monodepth2-style ResNet U-Net: a user model written for probe's examples.

It depends on torch only and knows nothing of probe, as a user's own network would.

* Encoder: ResNet-18 layout.  A 7x7 stride-2 stem, 3x3 max-pooling, then four
  stages of two residual basic blocks, with 64, 64, 128, 256 and 512 channels at
  ``width=1.0``.  The five features sit at H/2, H/4, H/8, H/16 and H/32.
* Decoder: for each level i = 4..0, a 3x3 conv + ELU, nearest upsampling to the
  size of the encoder feature i-1 (to the input size at i = 0), concatenation
  with that feature (none at i = 0), and another 3x3 conv + ELU.  The decoder has
  16, 32, 64, 128 and 256 channels at ``width=1.0``.
* Heads: a 3x3 conv + sigmoid emits disparity at levels 0..3 (H, H/2, H/4, H/8).

Upsampling to the skip's size, rather than by a fixed factor of two, lets any
input size through without padding.

Contract, read by probe from the attributes:

* ``output_space = "disparity"``: the sigmoid ``s`` means inverse depth
  ``1/max_depth + (1/min_depth - 1/max_depth) * s``, as in Monodepth2;
* ``min_depth``, ``max_depth``: indoor defaults (0.1..10 m).  Monodepth2's KITTI
  setting is ``min_depth=0.1 max_depth=100``;
* ``checkpoint_stages``: the stages ``--activation-checkpointing`` recomputes in backward.

In train mode the network returns the four disparities, finest first; in eval mode
it returns the finest.

    probe check-model examples/unet.py:build
    probe gradients --model examples/unet.py:build --model densedepth --width 0.0625 --input-size 64x96 --steps 10
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ENCODER_CHANNELS = (64, 64, 128, 256, 512)
DECODER_CHANNELS = (16, 32, 64, 128, 256)
SCALES = 4


def scaled(channels: int, width: float) -> int:
    """Channels times ``width``, at least 4."""
    return max(4, int(round(channels * width)))


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm with an identity (or 1x1 projection) shortcut: ``[B,Ci,H,W] -> [B,Co,H/s,W/s]``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """``[B,3,H,W] -> [f0 (H/2), f1 (H/4), f2 (H/8), f3 (H/16), f4 (H/32)]``."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 7, 2, 3, bias=False), nn.BatchNorm2d(channels[0]),
                                  nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList(
            nn.Sequential(BasicBlock(channels[i], channels[i + 1], stride=1 if i == 0 else 2),
                          BasicBlock(channels[i + 1], channels[i + 1]))
            for i in range(4))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]
        y = self.pool(features[0])
        for stage in self.stages:
            y = stage(y)
            features.append(y)
        return features


def conv_elu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 conv, then ELU (Monodepth2's ``ConvBlock``).

    Monodepth2 pads by reflection; replication pads the same border pixels and also works on the
    1-pixel bottleneck of a tiny input, where reflection is undefined.
    """
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="replicate"), nn.ELU())


class DisparityDecoder(nn.Module):
    """Encoder features -> sigmoid disparities ``[B,1,H/2^i,W/2^i]`` for i = 0..3, finest first."""

    def __init__(self, encoder_channels: tuple[int, ...], decoder_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.reduce = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for i in range(4, -1, -1):
            below = encoder_channels[-1] if i == 4 else decoder_channels[i + 1]
            self.reduce.append(conv_elu(below, decoder_channels[i]))
            skip = encoder_channels[i - 1] if i > 0 else 0
            self.fuse.append(conv_elu(decoder_channels[i] + skip, decoder_channels[i]))
        self.heads = nn.ModuleList(nn.Conv2d(decoder_channels[i], 1, 3, padding=1, padding_mode="replicate")
                                   for i in range(SCALES))

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> list[torch.Tensor]:
        x = features[-1]
        disparities: list[torch.Tensor] = []
        for level, reduce, fuse in zip(range(4, -1, -1), self.reduce, self.fuse):
            x = reduce(x)
            target = features[level - 1].shape[-2:] if level > 0 else size
            x = F.interpolate(x, size=target, mode="nearest")
            if level > 0:
                x = torch.cat([x, features[level - 1]], dim=1)
            x = fuse(x)
            if level < SCALES:
                disparities.insert(0, torch.sigmoid(self.heads[level](x)))
        return disparities


class ResNetUNet(nn.Module):
    """``[B,3,H,W]`` in [0,1] -> disparity: four scales finest first (train), the finest ``[B,1,H,W]`` (eval)."""

    output_space = "disparity"
    checkpoint_stages = ("encoder.stem", "encoder.stages.0", "encoder.stages.1", "encoder.stages.2",
                         "encoder.stages.3", "decoder")

    def __init__(self, width: float = 1.0, min_depth: float = 0.1, max_depth: float = 10.0) -> None:
        super().__init__()
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        enc = tuple(scaled(c, width) for c in ENCODER_CHANNELS)
        dec = tuple(scaled(c, width) for c in DECODER_CHANNELS)
        self.encoder = ResNetEncoder(enc)
        self.decoder = DisparityDecoder(enc, dec)
        # ImageNet statistics, as a ResNet encoder expects; the input itself stays in [0, 1].
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        features = self.encoder((rgb - self.mean) / self.std)
        disparities = self.decoder(features, rgb.shape[-2:])
        return disparities if self.training else disparities[0]


def build(width: float = 1.0, min_depth: float = 0.1, max_depth: float = 10.0) -> ResNetUNet:
    """The factory probe calls: ``--width`` and ``--model-option min_depth=... max_depth=...`` reach it."""
    return ResNetUNet(width=width, min_depth=min_depth, max_depth=max_depth)
