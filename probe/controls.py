"""Controls every verdict rule must get right: models and data whose true answer is known.

A rule that has not been shown to say "yes" on a case known to be yes, and "no"
on a case known to be no, is an opinion.  Each control here has a known
answer; the tests run every rule on its controls (``tests/test_controls.py``)
and each rule's text names them (:data:`CONTROLS`).

=============  =====================================================================  ====================
rule           control                                                                must conclude
=============  =====================================================================  ====================
gradients      :func:`plain_sigmoid_cnn`: 24 conv + sigmoid layers, PyTorch's default  vanishing
               init, no normalisation, no skip
gradients      :func:`residual_norm_cnn`: the same 24 convolutions as pre-activation   not vanishing
               residual blocks with GroupNorm
collapse       :func:`collapse_predictions` ``mean``: each image's mean depth          collapsed
collapse       ``oracle``: the ground truth                                           not collapsed
collapse       ``scaled``: the ground truth x 2 (right structure, wrong scale)        scale, not collapsed
image          :func:`image_predictions` ``fixed_map``: one depth map (the images'    ignores the image
               geometric mean per pixel) for every image
image          ``oracle``, ``mean`` (each image's mean depth: the per-image kind),    depends on the image
               ``scaled`` (the ground truth x 2), on the synthetic rooms
image          :class:`FadingNet`: the image passes two convolutions, then a block    fades at that block
               keeps 1e-4 of it over a fixed map of position
packing        :func:`packing_control_images` through :func:`pack_autoencoder` (one       near-lossless (PSNR
               level of space-to-depth) vs :func:`pool_autoencoder` (one 2x2 max-pool  >= 35 dB), max-pool
               and bilinear upsampling) of matched size                               not; "packing better"
fit            :func:`fit_predictions` ``oracle``: the training images' ground truth  fits
fit            ``constant`` (each image's median depth), ``fixed_map`` (one map for   does not fit
               every image, the images' geometric mean per pixel)
noise          :func:`injected_scatter_run`: a real training run whose logged loss     detrended CV within
               carries a known per-batch scatter                                      10% of the truth
=============  =====================================================================  ====================

>>> model = plain_sigmoid_cnn(depth=6, channels=4)
>>> model(torch.rand(2, 3, 8, 8)).shape
torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "CONTROLS",
    "CONTROL_DEPTH",
    "FadingNet",
    "NoiseControl",
    "collapse_predictions",
    "fit_predictions",
    "fit_regression",
    "image_predictions",
    "injected_scatter_run",
    "pack_autoencoder",
    "packing_control_images",
    "plain_sigmoid_cnn",
    "pool_autoencoder",
    "regression_task",
    "residual_norm_cnn",
]

#: Convolutions in each gradient control: deep enough that sigmoid derivatives (<= 1/4) compound to
#: vanishing, shallow enough to train in a test.
CONTROL_DEPTH = 24

#: The controls of each rule, as the report names them.
CONTROLS: dict[str, str] = {
    "gradients": (
        f"flags a {CONTROL_DEPTH}-layer plain sigmoid CNN without normalisation or skips (vanishing) "
        f"and not a {CONTROL_DEPTH}-layer residual CNN with GroupNorm, nor DenseDepth and PackNet "
        "after a short training run"
    ),
    "collapse": (
        "calls a per-image mean-depth predictor collapsed, the ground truth not, and the ground truth "
        "x 2 'scale' but not collapsed"
    ),
    "image": (
        "calls a model emitting one fixed depth map for every image 'ignores the image', and the ground truth, "
        "each image's mean depth (the per-image kind) and the ground truth x 2 'depends on the image'; in a "
        "network whose third block keeps 1e-4 of its input over a fixed map, the image fades at that block"
    ),
    "packing": (
        "one level of space-to-depth packing reconstructs held-out images near-losslessly "
        "(>= 35 dB) where one 2x2 max-pool cannot; unconverged runs are reported as such"
    ),
    "fit": (
        "calls the ground truth of the training images 'fits', and each image's median depth (the constant "
        "predictor itself) and one fixed depth map for every image 'does not fit'"
    ),
    "noise": "recovers a known injected per-batch loss scatter within 10% of its true detrended CV",
    "learned": (
        "a model at 0.4x the constant predictor's error is learned, at 2x not learned, and around "
        "the threshold with a wide spread inconclusive"
    ),
}


# -- gradients ------------------------------------------------------------------------------------


def plain_sigmoid_cnn(depth: int = CONTROL_DEPTH, channels: int = 8) -> nn.Sequential:
    """``depth`` 3x3 convolutions, a sigmoid after each but the last; no normalisation, no skip.

    ``[B,3,H,W] -> [B,1,H,W]``.  PyTorch's default (Kaiming-uniform, a = sqrt 5) init gives each layer a
    backward gain well below 1 and the sigmoid's derivative is at most 1/4, so the gradient shrinks
    geometrically towards the input: the textbook vanishing-gradient network.
    """
    layers: list[nn.Module] = []
    for i in range(depth - 1):
        layers += [nn.Conv2d(3 if i == 0 else channels, channels, 3, padding=1), nn.Sigmoid()]
    layers.append(nn.Conv2d(channels, 1, 3, padding=1))
    return nn.Sequential(*layers)


class _PreActBlock(nn.Module):
    """``x + conv(relu(groupnorm(x)))``: ``[B,C,H,W] -> [B,C,H,W]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(2, channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.relu(self.norm(x)))


def residual_norm_cnn(depth: int = CONTROL_DEPTH, channels: int = 8) -> nn.Sequential:
    """The same ``depth`` 3x3 convolutions as :func:`plain_sigmoid_cnn`, as pre-activation residual blocks with
    GroupNorm (He et al. 2016): ``[B,3,H,W] -> [B,1,H,W]``.  The identity path carries the gradient to every layer.
    """
    blocks = [_PreActBlock(channels) for _ in range(depth - 2)]
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1),
        *blocks,
        nn.GroupNorm(2, channels),
        nn.ReLU(),
        nn.Conv2d(channels, 1, 3, padding=1),
    )


def regression_task(n: int = 64, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x [n,3,size,size], y [n,1,size,size])``: smooth random images and a fixed smooth function of them.

    The target is a frozen random 5x5 convolution of the input followed by a tanh, so every network above
    can fit it and the loss keeps a gradient for every layer to carry.
    """
    g = torch.Generator().manual_seed(seed)
    x = F.avg_pool2d(torch.rand(n, 3, size + 2, size + 2, generator=g), 3, stride=1)
    teacher = torch.randn(1, 3, 5, 5, generator=g) / 5.0
    y = torch.tanh(F.conv2d(x - 0.5, teacher, padding=2) * 3.0)
    return x, y


def fit_regression(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 8,
    seed: int = 0,
    after_backward: Callable[[int, nn.Module], None] | None = None,
    after_step: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Adam on the MSE of ``model(x)`` against ``y`` for ``steps`` seeded mini-batches; returns the losses.

    ``after_backward(step, model)`` sees the gradients before the step (where a gradient recorder hooks in),
    ``after_step(step, model)`` the updated weights; steps count from 1.
    """
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (batch_size,), generator=order)
        loss = F.mse_loss(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if after_backward is not None:
            after_backward(step, model)
        optimizer.step()
        if after_step is not None:
            after_step(step, model)
        losses.append(float(loss.detach()))
    return losses


# -- collapse -------------------------------------------------------------------------------------


def collapse_predictions(depth: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """The collapse controls for ground truth ``depth``/``valid`` ``[B,1,h,w]``: name -> prediction ``[B,1,h,w]``.

    ``mean``: every pixel the image's mean valid depth (collapsed); ``oracle``: the ground truth (not);
    ``scaled``: the ground truth x 2 (right structure, wrong scale: flagged "scale", not collapsed).
    """
    counts = valid.flatten(1).sum(1).clamp_min(1).view(-1, 1, 1, 1)
    means = torch.where(valid, depth, torch.zeros_like(depth)).flatten(1).sum(1).view(-1, 1, 1, 1) / counts
    return {"mean": means.expand_as(depth).clone(), "oracle": depth.clone(), "scaled": depth * 2.0}


# -- image dependence -----------------------------------------------------------------------------


def image_predictions(depth: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """The image-dependence controls for ground truth ``depth``/``valid`` ``[B,1,h,w]``: name -> prediction.

    ``fixed_map``: at every pixel the geometric mean over the images of the valid depths there, the same map for
    every image (the best a network that ignores the image can do on log error): it ignores the image;
    ``oracle``, ``scaled`` (x 2) and ``mean`` (each image's mean depth) change with the image.  ``mean`` depends
    on the image only as far as the images' mean depths differ, so the controls run on data whose scenes differ
    in size (the synthetic rooms), as real ones do.
    """
    m = valid.to(depth.dtype)
    logs = torch.where(valid, depth.clamp_min(1e-6).log(), torch.zeros_like(depth))
    per_pixel = (logs.sum(0, keepdim=True) / m.sum(0, keepdim=True).clamp_min(1)).exp()
    return {"fixed_map": per_pixel.expand_as(depth).clone(), **collapse_predictions(depth, valid)}


# -- fit ------------------------------------------------------------------------------------------


def fit_predictions(depth: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """The fit controls for the ground truth ``depth``/``valid`` ``[B,1,h,w]`` of training images: name -> prediction.

    ``oracle``: the ground truth (a network that memorised its images: fits); ``constant``: each image filled with
    the median of its valid depth (the reference predictor itself: does not fit); ``fixed_map``: one depth map for
    every image (:func:`image_predictions`' geometric mean per pixel: structure that ignores the image, does not
    fit).
    """
    from probe.heldout import constant_median_prediction

    return {
        "oracle": depth.clone(),
        "constant": constant_median_prediction(depth, valid),
        "fixed_map": image_predictions(depth, valid)["fixed_map"],
    }


class FadingNet(nn.Module):
    """A control for where the image fades: ``[B,3,H,W] -> [B,1,H,W]`` positive depth.

    ``stem`` and ``body`` (convolutions with ReLU) carry the image; with ``fade`` the block ``fade`` keeps 1e-4
    of its input and adds a fixed map of position, so from there on every activation is that map; ``head`` turns
    it into depth.  Without ``fade`` the same block passes its input unchanged and nothing fades.
    """

    output_space = "depth"

    def __init__(self, height: int, width: int, fade: bool = True, channels: int = 4) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        position_map = torch.rand(1, channels, height, width, generator=g)
        self.fade = _Fade(1e-4, position_map) if fade else _Fade(1.0, torch.zeros_like(position_map))
        self.head = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Softplus())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fade(self.body(self.stem(x)))) + 0.1


class _Fade(nn.Module):
    """``keep * x + map``: ``[B,C,H,W] -> [B,C,H,W]`` (the map broadcast over the batch)."""

    def __init__(self, keep: float, position_map: torch.Tensor) -> None:
        super().__init__()
        self.keep = keep
        self.position_map: torch.Tensor
        self.register_buffer("position_map", position_map)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.keep * x + self.position_map


# -- packing --------------------------------------------------------------------------------------


class _Packed(nn.Module):
    """Space-to-depth, a linear 1x1 map on the 12 packed channels, depth-to-space: ``[B,3,H,W] -> [B,3,H,W]``."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(12, 12, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.mix(F.pixel_unshuffle(x, 2)), 2)


def pack_autoencoder() -> nn.Module:
    """One level of packing: space-to-depth, one linear 1x1 map on the 12 channels at H/2, depth-to-space.

    156 parameters.  Space-to-depth is a permutation and the code holds as many values as the input, so the
    identity is reachable, and fitting one linear map is a convex problem: training must reach near-lossless
    reconstruction.  ``[B,3,H,W] -> [B,3,H,W]`` (H, W even).
    """
    return _Packed()


def pool_autoencoder(channels: int = 22) -> nn.Module:
    """One 2x2 max-pool: a linear 1x1 map to ``channels``, max-pool, bilinear x2, a linear 1x1 map back to RGB.

    ``7 * channels + 3`` parameters (157 at the default 22, matching :func:`pack_autoencoder`).  A maximum over
    each 2x2 window is not invertible, so reconstruction stays lossy at any width.
    """
    return nn.Sequential(
        nn.Conv2d(3, channels, 1),
        nn.MaxPool2d(2),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(channels, 3, 1),
    )


def packing_control_images(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """``[n,3,size,size]`` in [0,1]: independent pixel noise over a smooth colour field.

    Fine detail is everywhere (each pixel's value is its own), so whatever a 2x2 max-pool discards is lost,
    while space-to-depth keeps every value.
    """
    g = torch.Generator().manual_seed(seed)
    field = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear", align_corners=False)
    return (0.6 * field + 0.4 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


# -- noise ----------------------------------------------------------------------------------------


@dataclass
class NoiseControl:
    """A training run's logged per-batch losses and the detrended CV the injected scatter implies."""

    losses: list[float]
    clean_losses: list[float]
    sigma: float
    true_cv_detrended: float


def injected_scatter_run(steps: int = 600, sigma: float = 0.2, seed: int = 0) -> NoiseControl:
    """A real training run (a linear model fitted full-batch with Adam) whose logged loss carries known scatter.

    Each step's logged loss is ``L_t + sigma * e_t`` with ``e_t`` i.i.d. N(0, 1) (seeded): the offset is a
    per-batch constant that moves the value but not the gradient, so training follows the clean, falling
    curve ``L_t``.  The batch-to-batch scatter is then exactly ``sigma``, and the true detrended coefficient
    of variation is ``sigma / mean(logged losses)``.  The trend is real (the loss falls from about 9 to about 1
    as Adam, lr 2e-3, fits the weights from zero), so a plain std / mean over the run overstates the scatter
    tenfold; the estimator must remove it.  The clean curve falls by at most about 0.03 per step, which adds
    under 1% to a first-difference estimate of ``sigma`` = 0.2; the rest of its error is sampling (about 4%
    relative standard error at 600 steps).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.5 * torch.randn(256, 1, generator=g)
    model = nn.Linear(8, 1)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    noise = torch.randn(steps, generator=g)
    losses, clean = [], []
    for step in range(steps):
        fit = F.mse_loss(model(x), y)
        logged = fit + sigma * noise[step]  # a constant offset: no gradient, known scatter
        optimizer.zero_grad(set_to_none=True)
        logged.backward()
        optimizer.step()
        clean.append(float(fit.detach()))
        losses.append(float(logged.detach()))
    mean = sum(losses) / len(losses)
    return NoiseControl(losses=losses, clean_losses=clean, sigma=sigma, true_cv_detrended=sigma / mean)
