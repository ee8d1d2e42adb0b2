"""PoseNet: 6-DoF camera motion from a stack of frames (packnet-sfm's pose network, after SfMLearner).

The target frame and its ``n_sources`` context frames are concatenated along
the channels and go through seven stride-2 convolutions (kernels 7, 5, 3, 3,
3, 3, 3; 16, 32, 64, 128, 256, 256, 256 channels), each followed by
GroupNorm(16) and ReLU; a 1x1 convolution gives ``6 * n_sources`` channels,
averaged over the remaining pixels and multiplied by 0.01 (the published
output scaling, which starts training from near-identity motion).  Weights are
Xavier-uniform, biases zero, as published.  1,592,684 parameters for two
sources at width 1.0.

``translation_scale`` (default the published 0.01) multiplies the translation
outputs alone; the rotations keep 0.01.  Under Adam every weight moves by
about the learning rate per step whatever its gradient's size, so this factor
sets how fast the predicted translation can change, in metres per step: at
0.01 a translation that varies by metres from window to window (a car's
0.5-1.5 m per frame) needs weights a hundred times larger than the turns do,
and PoseNet, regressing the exact motion, learns the speed thousands of steps
late (``bench/pose_speed.py``; in the self-supervised study a larger scale did
not make it follow the speed, see the README).  The translation rows of the
last convolution start scaled by ``0.01 / translation_scale``, so the initial
motion is the published one and only the speed of learning changes.

Each source's 6 numbers are ``(tx, ty, tz, rx, ry, rz)``: a translation in
metres *up to the depth network's scale* and Euler angles in radians, turned
into ``T_target_to_source`` by :func:`probe.geometry.pose_vec_to_matrix`
(rotation ``Rx Ry Rz``), the transform packnet-sfm's photometric loss uses to
warp each source into the target view.

``inputs="pairs"`` (monodepth2's pose input, not packnet-sfm's) runs the same
network on one (earlier, later) pair of frames per source: ``(t, t+k)`` for a
later source, ``(t-k, t)`` for an earlier one, whose predicted transform is
then inverted.  Every source is thus predicted as the motion from an earlier
to a later frame by one 6-channel network, so forward motion looks the same
whichever side of the target a source lies on; with stacked frames each source
has its own output channels and can learn its direction on its own (and a
wrong one, see the README's self-supervised study).  The output is the same
``[B, S, 6]`` ``T_target_to_source`` either way.  ``offsets`` (the sources'
frame offsets from the target, e.g. ``(-1, 1)``) say which side each lies on.

>>> import torch
>>> from probe.models import build_model
>>> net = build_model("posenet", width=0.25)
>>> net(torch.rand(2, 9, 64, 96)).shape
torch.Size([2, 2, 6])
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from probe.errors import ProbeError, ShapeError
from probe.geometry import invert_pose, matrix_to_pose_vec, pose_vec_to_matrix
from probe.models import MODELS

CHANNELS = (16, 32, 64, 128, 256, 256, 256)
KERNELS = (7, 5, 3, 3, 3, 3, 3)
OUTPUT_SCALE = 0.01
INPUTS = ("stack", "pairs")


def _channels(base: int, width: float) -> int:
    """Published channels times ``width``, rounded to a multiple of 4 and at least 4 (GroupNorm-friendly)."""
    return base if width == 1.0 else max(4, 4 * round(base * width / 4))


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm(16) as published, or the largest of 8, 4, 2, 1 groups dividing a shrunken channel count."""
    return nn.GroupNorm(next(g for g in (16, 8, 4, 2, 1) if channels % g == 0), channels)


class PoseNet(nn.Module):
    """``[B, 3 (1 + S), H, W]`` (target first, then the sources) -> ``[B, S, 6]`` pose vectors.

    :meth:`poses` returns the matching ``[B, S, 4, 4]`` ``T_target_to_source`` matrices.
    """

    def __init__(
        self,
        n_sources: int = 2,
        width: float = 1.0,
        inputs: str = "stack",
        offsets: tuple[int, ...] | None = None,
        translation_scale: float = OUTPUT_SCALE,
    ) -> None:
        super().__init__()
        if not (isinstance(n_sources, int) and not isinstance(n_sources, bool) and n_sources >= 1):
            raise ProbeError(f"posenet: n_sources must be a positive integer, got {n_sources!r}")
        if not (isinstance(width, (int, float)) and width > 0):
            raise ProbeError(f"posenet: width must be a positive number, got {width!r}")
        if not isinstance(inputs, str) or inputs not in INPUTS:
            raise ProbeError(f"posenet: inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
        if inputs == "pairs" and (
            offsets is None or len(offsets) != n_sources or any(not isinstance(o, int) or o == 0 for o in offsets)
        ):
            raise ProbeError(
                f"posenet: inputs='pairs' needs {n_sources} non-zero integer source offsets, got {offsets!r}"
            )
        if not (
            isinstance(translation_scale, (int, float))
            and not isinstance(translation_scale, bool)
            and math.isfinite(translation_scale)
            and translation_scale > 0
        ):
            raise ProbeError(f"posenet: translation_scale must be a positive number, got {translation_scale!r}")
        self.n_sources = n_sources
        self.inputs = inputs
        self.translation_scale = float(translation_scale)
        self.offsets = tuple(offsets) if offsets is not None else None
        self.model_name = "posenet"
        self.family = "pose"
        self.input_channels = 3 * (1 + n_sources)
        layers: list[nn.Module] = []
        cin = 6 if inputs == "pairs" else self.input_channels
        for base, k in zip(CHANNELS, KERNELS):
            cout = _channels(base, width)
            layers += [
                nn.Conv2d(cin, cout, k, stride=2, padding=(k - 1) // 2),
                _group_norm(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.encoder = nn.Sequential(*layers)
        self.pose_pred = nn.Conv2d(cin, 6 if inputs == "pairs" else 6 * n_sources, kernel_size=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # (tx, ty, tz, rx, ry, rz) per source: the translations scaled by translation_scale, the rotations by 0.01
        scales = torch.tensor([self.translation_scale] * 3 + [OUTPUT_SCALE] * 3)
        self.register_buffer("output_scales", scales, persistent=False)
        if self.translation_scale != OUTPUT_SCALE:  # the published initial motion, whatever the scale
            with torch.no_grad():
                rows = self.pose_pred.weight.view(-1, 6, *self.pose_pred.weight.shape[1:])
                rows[:, :3] *= OUTPUT_SCALE / self.translation_scale

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 4 or frames.shape[1] != self.input_channels:
            raise ShapeError(
                f"posenet: expected [B,{self.input_channels},H,W] (target + {self.n_sources} sources "
                f"stacked on channels), got {tuple(frames.shape)}"
            )
        if self.inputs == "pairs":
            return self._pairs(frames)
        out = self.pose_pred(self.encoder(frames)).mean(dim=(2, 3))
        return out.view(-1, self.n_sources, 6) * self.output_scales

    def _pairs(self, frames: torch.Tensor) -> torch.Tensor:
        """One (earlier, later) pair per source through the shared network; earlier sources' motion inverted."""
        assert self.offsets is not None
        b, s = frames.shape[0], self.n_sources
        target, sources = frames[:, :3], frames[:, 3:].unflatten(1, (s, 3))
        pairs = [
            torch.cat([target, sources[:, i]] if offset > 0 else [sources[:, i], target], dim=1)
            for i, offset in enumerate(self.offsets)
        ]
        stacked = torch.stack(pairs, dim=1).flatten(0, 1)  # [B*S, 6, H, W], item-major
        vectors = self.pose_pred(self.encoder(stacked)).mean(dim=(2, 3)).view(b, s, 6) * self.output_scales
        earlier = torch.tensor([o < 0 for o in self.offsets], device=frames.device)
        if not bool(earlier.any()):
            return vectors
        # an earlier source's network output is T_source_to_target: invert it (exactly, through the matrix)
        inverted = matrix_to_pose_vec(invert_pose(pose_vec_to_matrix(vectors.reshape(-1, 6)))).view(b, s, 6)
        return torch.where(earlier[None, :, None], inverted, vectors)

    def poses(self, target: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
        """``target [B,3,H,W]``, ``sources [B,S,3,H,W]`` -> ``T_target_to_source [B,S,4,4]``."""
        if sources.dim() != 5 or sources.shape[1] != self.n_sources:
            raise ShapeError(f"posenet: sources must be [B,{self.n_sources},3,H,W], got {tuple(sources.shape)}")
        b = target.shape[0]
        vectors = self(torch.cat([target, sources.flatten(1, 2)], dim=1))
        return pose_vec_to_matrix(vectors.reshape(-1, 6)).view(b, self.n_sources, 4, 4)


@MODELS.register(
    "posenet",
    description="pose network: 6-DoF per source frame from stacked frames (packnet-sfm)",
    family="pose",
    task="pose",
)
def posenet(
    n_sources: int = 2,
    width: float = 1.0,
    inputs: str = "stack",
    offsets: tuple[int, ...] | None = None,
    translation_scale: float = OUTPUT_SCALE,
) -> PoseNet:
    """packnet-sfm's PoseNet (1,592,684 parameters for two sources at width 1.0); ``inputs="pairs"``: monodepth2's.

    ``translation_scale``: the translations' output factor (published 0.01; see :class:`PoseNet`)."""
    return PoseNet(
        n_sources=n_sources, width=width, inputs=inputs, offsets=offsets, translation_scale=translation_scale
    )
