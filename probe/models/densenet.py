"""DenseNet (Huang et al., CVPR 2017) written for probe: the DenseDepth encoder.

Module names follow torchvision's layout (``features.conv0``, ``features.norm0``,
``features.denseblock1.denselayer1.conv1``, ``features.transition1.conv``, ...,
``features.norm5``) so a torchvision-style ``state_dict`` loads by name; the
classifier is not built because DenseDepth only uses the feature extractor.

``bn_eps`` is BatchNorm's epsilon: 1e-5 in torchvision (``nn.BatchNorm2d``'s
default) and 1.001e-5 in ``keras.applications.DenseNet169`` (every
``BatchNormalization`` there sets it), so Keras weights run with Keras's value.

Stages of DenseNet-169 for a ``[B,3,H,W]`` input (width 1.0)::

    conv0/norm0/relu0   [B,64,H/2,W/2]
    pool0               [B,64,H/4,W/4]
    denseblock1         [B,256,H/4,W/4]     -> transition1 [B,128,H/8,W/8]
    denseblock2         [B,512,H/8,W/8]     -> transition2 [B,256,H/16,W/16]
    denseblock3         [B,1280,H/16,W/16]  -> transition3 [B,640,H/32,W/32]
    denseblock4         [B,1664,H/32,W/32]  -> norm5       [B,1664,H/32,W/32]

>>> import torch
>>> net = densenet169(width=0.0625)
>>> net(torch.rand(1, 3, 64, 64)).shape
torch.Size([1, 104, 2, 2])
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn as nn

from probe.errors import ProbeError
from probe.models.common import scale_channels

DENSENET169_BLOCKS: tuple[int, ...] = (6, 12, 32, 32)
#: BatchNorm epsilon of torchvision's DenseNet (PyTorch's default) and of Keras's DenseNet.
TORCH_BN_EPS = 1e-5
KERAS_BN_EPS = 1.001e-5


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck) then BN-ReLU-3x3 conv: ``[B,C,H,W] -> [B,growth,H,W]``.

    The block concatenates this output onto its input, so a layer only emits the
    ``growth`` new channels.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, bn_eps: float = TORCH_BN_EPS) -> None:
        super().__init__()
        bottleneck = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels, eps=bn_eps)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bottleneck, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck, eps=bn_eps)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bottleneck, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each fed every earlier output:
    ``[B,C,H,W] -> [B,C + num_layers*growth,H,W]``."""

    def __init__(
        self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int, bn_eps: float = TORCH_BN_EPS
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, bn_eps)
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv-2x2 average pool: ``[B,C,H,W] -> [B,C_out,H/2,W/2]``."""

    def __init__(self, in_channels: int, out_channels: int, bn_eps: float = TORCH_BN_EPS) -> None:
        super().__init__(
            OrderedDict(
                [
                    ("norm", nn.BatchNorm2d(in_channels, eps=bn_eps)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=False)),
                    ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
                ]
            )
        )


class DenseNet(nn.Module):
    """DenseNet-BC feature extractor: ``[B,3,H,W] -> [B,num_features,H/32,W/32]`` (after ``norm5``).

    ``width`` multiplies the growth rate and the stem's channel count; transitions
    halve the channels (compression 0.5). ``num_features`` is the output channel
    count and ``channels[name]`` the channel count after each ``features`` child.
    """

    def __init__(
        self,
        block_config: Sequence[int] = DENSENET169_BLOCKS,
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        width: float = 1.0,
        bn_eps: float = TORCH_BN_EPS,
    ) -> None:
        super().__init__()
        growth = scale_channels(growth_rate, width)
        channels = scale_channels(num_init_features, width)
        self.channels: dict[str, int] = {}
        layers: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv2d(3, channels, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(channels, eps=bn_eps)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]
        self.channels.update({name: channels for name, _ in layers})
        for i, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth, bn_size, bn_eps)
            channels = block.out_channels
            layers.append((f"denseblock{i}", block))
            self.channels[f"denseblock{i}"] = channels
            if i != len(block_config):
                reduced = max(1, int(channels * compression))
                layers.append((f"transition{i}", Transition(channels, reduced, bn_eps)))
                channels = reduced
                self.channels[f"transition{i}"] = channels
        layers.append(("norm5", nn.BatchNorm2d(channels, eps=bn_eps)))
        self.channels["norm5"] = channels
        self.features = nn.Sequential(OrderedDict(layers))
        self.num_features = channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random initialisation as torchvision's DenseNet: He-normal convs, unit BN scale, zero bias."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_taps(self, x: torch.Tensor, taps: Sequence[str]) -> list[torch.Tensor]:
        """Run the features and return the outputs of the named ``features`` children, in ``taps`` order.

        ``[B,3,H,W] -> [[B,channels[t],H/s_t,W/s_t] for t in taps]``; stops after the last tap.
        """
        unknown = [t for t in taps if t not in self.channels]
        if unknown:
            raise ProbeError(f"DenseNet taps: unknown stage(s) {unknown}; expected names from {list(self.channels)}")
        wanted = set(taps)
        outputs: dict[str, torch.Tensor] = {}
        for name, module in self.features.named_children():
            x = module(x)
            if name in wanted:
                outputs[name] = x
                if len(outputs) == len(wanted):
                    break
        return [outputs[t] for t in taps]


def densenet169(width: float = 1.0, bn_eps: float = TORCH_BN_EPS) -> DenseNet:
    """DenseNet-169 features (growth 32, blocks 6/12/32/32, bn_size 4, 64 stem channels): 1664 outputs at width 1."""
    return DenseNet(DENSENET169_BLOCKS, growth_rate=32, num_init_features=64, bn_size=4, width=width, bn_eps=bn_eps)
