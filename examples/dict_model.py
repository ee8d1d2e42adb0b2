"""A small encoder-decoder that returns a dict keyed like Monodepth2's decoder.

Written for probe's examples; it depends on torch only.  The forward pass returns
``{("disp", 0): [B,1,H,W], ("disp", 1): [B,1,H/2,W/2], ("disp", 2): [B,1,H/4,W/4]}``
in both train and eval mode, as Monodepth2's ``DepthDecoder`` does, so probe must be
told which entry is depth:

    probe check-model examples/dict_model.py:build --model-option output_key=disp,0
    probe train --model examples/dict_model.py:build --model-option output_key=disp,* ...

``output_key=disp,*`` hands every scale to training (finest first); ``disp,0`` only the finest.

The decoder upsamples by a fixed factor of two and adds the encoder feature of the same
size, so H and W must be multiples of 8; the class says so (``input_multiple = 8``) and
probe pads other sizes and crops the outputs back.
"""

from __future__ import annotations

import torch
import torch.nn as nn

LEVELS = 3


class DictDepthNet(nn.Module):
    """``[B,3,H,W]`` (H, W multiples of 8) -> ``{("disp", i): sigmoid disparity [B,1,H/2^i,W/2^i]}``, i = 0..2."""

    output_space = "disparity"
    input_multiple = 8

    def __init__(self, width: float = 1.0, min_depth: float = 0.1, max_depth: float = 10.0) -> None:
        super().__init__()
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        ch = [max(4, int(round(c * width))) for c in (32, 64, 128, 256)]
        self.stem = nn.Sequential(nn.Conv2d(3, ch[0], 3, padding=1), nn.ReLU())
        self.down = nn.ModuleList(nn.Sequential(nn.Conv2d(ch[i], ch[i + 1], 3, stride=2, padding=1), nn.ReLU())
                                  for i in range(LEVELS))
        self.up = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(ch[i + 1], ch[i], 3, padding=1), nn.ReLU())
                                for i in range(LEVELS))
        self.heads = nn.ModuleList(nn.Conv2d(ch[i], 1, 3, padding=1) for i in range(LEVELS))

    def forward(self, rgb: torch.Tensor) -> dict[tuple[str, int], torch.Tensor]:
        skips = [self.stem(rgb)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips[-1]
        outputs: dict[tuple[str, int], torch.Tensor] = {}
        for i in range(LEVELS - 1, -1, -1):
            x = self.up[i](x) + skips[i]
            outputs[("disp", i)] = torch.sigmoid(self.heads[i](x))
        return outputs


def build(width: float = 1.0, min_depth: float = 0.1, max_depth: float = 10.0) -> DictDepthNet:
    """The factory probe calls: ``--width`` and ``--model-option min_depth=... max_depth=...`` reach it."""
    return DictDepthNet(width=width, min_depth=min_depth, max_depth=max_depth)
