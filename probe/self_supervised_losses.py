"""Self-supervised losses: photometric reprojection, edge-aware smoothness and the velocity loss (packnet-sfm).

Read from packnet-sfm (``losses/multiview_photometric_loss.py``,
``losses/velocity_loss.py``, ``utils/depth.py``, ``configs/default_config.py``
at HEAD de53b310); the numbers are theirs, the code is ours.

Photometric error of a synthesised view ``I'`` against the target ``I`` (per pixel)::

    pe = 0.85 * clamp((1 - SSIM(I', I)) / 2, 0, 1) + 0.15 * |I' - I|        (each averaged over RGB)

with SSIM over 3x3 windows (average pooling, stride 1, reflection padding of
one pixel, so the map keeps the image size) and ``C1 = 0.01^2``, ``C2 = 0.03^2``
(for images in [0, 1]); monodepth2 uses the same window and constants.

Reprojection (term ``reprojection``, weight 1).  Each source frame is warped
into the target view with the predicted depth and pose
(:func:`probe.geometry.inverse_warp`, bilinear ``grid_sample`` with zero
padding); the loss at a pixel is the **minimum** over sources of ``pe``
(occlusions are usually visible in one of them).  With **auto-masking**
(packnet-sfm's default) the errors of the *unwarped* sources join that
minimum, so pixels that do not change between frames (a static camera, objects
moving with it, textureless regions) are explained by the identity and give
the depth no gradient.  The minimum map is averaged over all pixels.
The option ``sources="mean"`` (monodepth2's ``avg_reprojection``) averages the
warped sources' errors instead and lets only that mean compete with the identity
candidates: a source the minimum would ignore (a badly posed frame) still gets a
gradient (:func:`combine_sources`; the self-supervised objective's
``source_average_steps`` uses it for the first steps).

Multi-scale: every depth scale the network emits is upsampled (nearest
neighbour) to the input resolution and warps the full-resolution images, as
packnet-sfm does with its default ``upsample_depth_maps=True`` (monodepth2 does
the same with bilinear upsampling).  The reprojection loss is the mean over
scales.  For a network with one half-resolution output (DenseDepth), its one
scale is upsampled the same way.

Smoothness (term ``smoothness``, weight 0.001, packnet-sfm's config default).
Per scale ``i``, with the inverse depth ``d`` divided by its own mean (so the
term cannot be lowered by shrinking the scene) and forward differences::

    mean |dx d| * exp(-mean_rgb |dx I|) + mean |dy d| * exp(-mean_rgb |dy I|)

divided by ``2^i`` and averaged over the scales.

Velocity (term ``velocity``, weight 0.1, packnet-sfm's ``velocity_loss_weight``):
``| ||t_hat|| - v |dt| |`` per source frame, where ``t_hat`` is the predicted
translation of ``T_target_to_source`` (its norm is the distance between the
camera centres) and ``v |dt|`` the distance the reported speed implies;
averaged over sources and over the items whose reading is present.
packnet-sfm compares with the ground-truth pose's translation norm, which is
the same quantity when the speed sensor is exact and the motion straight.

Every term sees the same :class:`ViewSynthesisInputs` and returns a scalar;
terms live in :data:`SELF_SUPERVISED_TERMS` (a registry separate from
:data:`probe.losses.LOSSES`, whose losses compare a prediction with ground
truth).  :class:`SelfSupervisedLoss` weighs them into a
:class:`~probe.losses.LossOutput`.  Everything runs in float32 with autocast off.

>>> loss = SelfSupervisedLoss({"reprojection": 1.0, "smoothness": 1e-3, "velocity": 0.1})  # doctest: +SKIP
>>> out = loss(inputs); out.total.backward(); out.terms                                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from probe.errors import ProbeError, ShapeError
from probe.geometry import inverse_warp
from probe.losses import LossOutput
from probe.registry import Registry

__all__ = [
    "DEFAULT_WEIGHTS",
    "SELF_SUPERVISED_TERMS",
    "SelfSupervisedLoss",
    "ViewSynthesisInputs",
    "combine_sources",
    "min_reprojection",
    "photometric_error",
    "reprojection_errors",
    "smoothness_loss",
    "ssim_map",
    "velocity_loss",
]

SSIM_WEIGHT = 0.85
C1, C2 = 0.01**2, 0.03**2
DEFAULT_WEIGHTS = {"reprojection": 1.0, "smoothness": 1e-3, "velocity": 0.1}


# ---------------------------------------------------------------------------------------------
# per-pixel pieces
# ---------------------------------------------------------------------------------------------


def ssim_map(x: torch.Tensor, y: torch.Tensor, *, c1: float = C1, c2: float = C2) -> torch.Tensor:
    """SSIM over 3x3 windows: ``[B,C,H,W]`` x2 -> ``[B,C,H,W]`` (reflection-padded average pooling)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ShapeError(f"ssim_map: x {tuple(x.shape)} and y {tuple(y.shape)} must be the same [B,C,H,W]")
    x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")

    def mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, 3, stride=1)

    mu_x, mu_y = mean(x), mean(y)
    var_x, var_y = mean(x * x) - mu_x * mu_x, mean(y * y) - mu_y * mu_y
    cov = mean(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))


def photometric_error(
    synthesised: torch.Tensor, target: torch.Tensor, *, ssim_weight: float = SSIM_WEIGHT
) -> torch.Tensor:
    """``ssim_weight * clamp((1 - SSIM)/2, 0, 1) + (1 - ssim_weight) * L1``, RGB-averaged.

    ``[B,3,H,W]`` x2 -> ``[B,1,H,W]``."""
    l1 = (synthesised - target).abs().mean(1, keepdim=True)
    if ssim_weight == 0:
        return l1
    dssim = ((1.0 - ssim_map(synthesised, target)) / 2.0).clamp(0.0, 1.0).mean(1, keepdim=True)
    return ssim_weight * dssim + (1.0 - ssim_weight) * l1


def min_reprojection(errors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum over candidates: ``[B,N,H,W]`` -> (``[B,1,H,W]`` minimum, ``[B,1,H,W]`` argmin)."""
    if errors.dim() != 4:
        raise ShapeError(f"min_reprojection: expected [B,N,H,W] errors, got {tuple(errors.shape)}")
    smallest, index = errors.min(dim=1, keepdim=True)
    return smallest, index


SOURCE_REDUCTIONS = ("min", "mean")


def combine_sources(errors: torch.Tensor, n_sources: int, reduction: str = "min") -> torch.Tensor:
    """The per-pixel loss from :func:`reprojection_errors`' candidates ``[B,N,H,W]`` -> ``[B,1,H,W]``.

    ``"min"`` (packnet-sfm, monodepth2): the minimum over every candidate.  ``"mean"`` (monodepth2's
    ``avg_reprojection``): the first ``n_sources`` channels (the warped sources) are averaged, and that mean
    joins the identity candidates (channels ``n_sources..``, present with auto-masking) in the minimum.
    """
    if errors.dim() != 4 or not 1 <= n_sources <= errors.shape[1]:
        raise ShapeError(f"combine_sources: expected [B,N,H,W] errors with N >= {n_sources}, got {tuple(errors.shape)}")
    if reduction == "min":
        return min_reprojection(errors)[0]
    if reduction != "mean":
        raise ProbeError(f"reprojection: sources must be one of {', '.join(SOURCE_REDUCTIONS)}, got {reduction!r}")
    averaged = errors[:, :n_sources].mean(dim=1, keepdim=True)
    return min_reprojection(torch.cat([averaged, errors[:, n_sources:]], dim=1))[0]


def reprojection_errors(
    target: torch.Tensor,
    sources: torch.Tensor,
    depth: torch.Tensor,
    poses: torch.Tensor,
    K: torch.Tensor,
    *,
    ssim_weight: float = SSIM_WEIGHT,
    automask: bool = True,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Photometric errors of every candidate explanation of the target: ``[B,N,H,W]``.

    ``target [B,3,H,W]``, ``sources [B,S,3,H,W]``, ``depth [B,1,H,W]`` (the target's),
    ``poses [B,S,4,4]`` ``T_target_to_source``, ``K [B,3,3]``.  Channels ``0..S-1``
    are the warped sources; with ``automask`` channels ``S..2S-1`` are the
    sources left unwarped (the identity explanation of a static pixel).
    """
    if sources.dim() != 5 or sources.shape[0] != target.shape[0] or sources.shape[2:] != target.shape[1:]:
        raise ShapeError(
            f"reprojection: sources {tuple(sources.shape)} must be [B,S,3,H,W] matching target {tuple(target.shape)}"
        )
    if poses.shape[:2] != sources.shape[:2]:
        raise ShapeError(
            f"reprojection: poses {tuple(poses.shape)} must be [B,S,4,4] for sources {tuple(sources.shape)}"
        )
    errors = []
    for s in range(sources.shape[1]):
        warped, _ = inverse_warp(sources[:, s], depth, poses[:, s], K, padding_mode=padding_mode)
        errors.append(photometric_error(warped, target, ssim_weight=ssim_weight))
    if automask:
        errors += [photometric_error(sources[:, s], target, ssim_weight=ssim_weight) for s in range(sources.shape[1])]
    return torch.cat(errors, dim=1)


def smoothness_loss(inv_depth: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of mean-normalised inverse depth: ``[B,1,H,W]``, ``[B,3,H,W]`` -> scalar.

    ``mean |dx d| exp(-|dx I|) + mean |dy d| exp(-|dy I|)`` with ``d`` divided by
    its per-image mean and ``|dx I|`` averaged over RGB (forward differences).
    """
    if inv_depth.dim() != 4 or inv_depth.shape[1] != 1 or image.shape[-2:] != inv_depth.shape[-2:]:
        raise ShapeError(
            f"smoothness: inverse depth {tuple(inv_depth.shape)} must be [B,1,H,W] at the image's size "
            f"{tuple(image.shape)}"
        )
    d = inv_depth / inv_depth.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    total = d.new_zeros(())
    for dim in (-1, -2):
        n = d.shape[dim]
        if n < 2:
            continue
        grad_d = d.narrow(dim, 0, n - 1) - d.narrow(dim, 1, n - 1)
        grad_i = (image.narrow(dim, 0, n - 1) - image.narrow(dim, 1, n - 1)).abs().mean(1, keepdim=True)
        total = total + (grad_d * torch.exp(-grad_i)).abs().mean()
    return total


def velocity_loss(translation: torch.Tensor, travelled: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """``mean | ||t_hat|| - v |dt| |``: ``translation [B,S,3]``, ``travelled [B,S]`` metres, ``present [B]`` -> scalar.

    Items whose reading is missing (``present`` False) are left out; none present gives 0 (still in the graph).
    """
    if translation.dim() != 3 or translation.shape[-1] != 3 or travelled.shape != translation.shape[:2]:
        raise ShapeError(
            f"velocity loss: translation {tuple(translation.shape)} must be [B,S,3] and travelled "
            f"{tuple(travelled.shape)} [B,S]"
        )
    error = (translation.norm(dim=-1) - travelled).abs()
    keep = present.bool()[:, None].expand_as(error)
    return torch.where(keep, error, torch.zeros_like(error)).sum() / keep.sum().clamp_min(1)


# ---------------------------------------------------------------------------------------------
# the terms
# ---------------------------------------------------------------------------------------------


@dataclass
class ViewSynthesisInputs:
    """Everything a self-supervised term may use, for one batch.

    ``target [B,3,H,W]``, ``sources [B,S,3,H,W]``; ``depths``: the network's
    scales, finest first, each already upsampled to ``H x W`` (metres up to the
    unknown scale); ``poses [B,S,4,4]`` predicted ``T_target_to_source``;
    ``K [B,3,3]`` at ``H x W``; ``travelled [B,S]`` the distances the reported
    speed implies (``v |offset| dt``) and ``speed_present [B]``, or None
    without speed readings.
    """

    target: torch.Tensor
    sources: torch.Tensor
    depths: list[torch.Tensor]
    poses: torch.Tensor
    K: torch.Tensor
    travelled: torch.Tensor | None = None
    speed_present: torch.Tensor | None = None


Term = Callable[[ViewSynthesisInputs], torch.Tensor]
SELF_SUPERVISED_TERMS: Registry[Callable[..., Term]] = Registry("self-supervised loss term")


@SELF_SUPERVISED_TERMS.register(
    "reprojection",
    description="min over sources of 0.85 SSIM(3x3) + 0.15 L1, auto-masked, mean over full-resolution scales",
)
def reprojection_term(
    ssim_weight: float = SSIM_WEIGHT, automask: bool = True, padding_mode: str = "zeros", sources: str = "min"
) -> Term:
    """The photometric reprojection loss (module docstring); ``automask=False`` drops the identity candidates.

    ``sources="mean"`` averages the warped sources' errors before the minimum with the identity candidates
    (:func:`combine_sources`), so every source frame's pose gets a gradient at every unmasked pixel.
    """
    if not 0.0 <= ssim_weight <= 1.0:
        raise ProbeError(f"reprojection: ssim_weight must be in [0, 1], got {ssim_weight}")
    if sources not in SOURCE_REDUCTIONS:
        raise ProbeError(f"reprojection: sources must be one of {', '.join(SOURCE_REDUCTIONS)}, got {sources!r}")

    def term(x: ViewSynthesisInputs) -> torch.Tensor:
        per_scale = [
            combine_sources(
                reprojection_errors(
                    x.target,
                    x.sources,
                    depth,
                    x.poses,
                    x.K,
                    ssim_weight=ssim_weight,
                    automask=automask,
                    padding_mode=padding_mode,
                ),
                x.sources.shape[1],
                sources,
            ).mean()
            for depth in x.depths
        ]
        return torch.stack(per_scale).mean()

    return term


@SELF_SUPERVISED_TERMS.register(
    "smoothness", description="edge-aware smoothness of mean-normalised inverse depth, scale i weighted 1/2^i"
)
def smoothness_term() -> Term:
    def term(x: ViewSynthesisInputs) -> torch.Tensor:
        per_scale = [smoothness_loss(1.0 / depth.clamp_min(1e-6), x.target) / 2**i for i, depth in enumerate(x.depths)]
        return torch.stack(per_scale).mean()

    return term


@SELF_SUPERVISED_TERMS.register("velocity", description="| ||t_hat|| - v |dt| |, averaged over sources and readings")
def velocity_term() -> Term:
    def term(x: ViewSynthesisInputs) -> torch.Tensor:
        if x.travelled is None or x.speed_present is None:
            raise ProbeError("velocity loss: the dataset gives no speed readings (needs a video dataset with speed)")
        return velocity_loss(x.poses[..., :3, 3], x.travelled, x.speed_present)

    return term


class SelfSupervisedLoss:
    """Weighted sum of registered terms -> :class:`~probe.losses.LossOutput` (terms unweighted, detached).

    ``weights`` maps term names to weights; a weight of 0 still computes and
    logs the term (the velocity error is worth watching without its loss).
    ``options`` maps a term name to its factory's keyword arguments.  The
    logged ``pose_scale`` (not part of the total) is ``sum ||t_hat|| / sum v|dt|``
    over present readings: 1 when the poses are metric.
    """

    def __init__(
        self, weights: dict[str, float] | None = None, options: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        options = options or {}
        for name in [*self.weights, *options]:
            SELF_SUPERVISED_TERMS.entry(name)
        bad = {k: w for k, w in self.weights.items() if not (isinstance(w, (int, float)) and w >= 0)}
        if bad:
            raise ProbeError(f"self-supervised loss: weights must be >= 0, got {bad}")
        self.terms = {name: SELF_SUPERVISED_TERMS.build(name, **options.get(name, {})) for name in self.weights}

    def __call__(self, inputs: ViewSynthesisInputs) -> LossOutput:
        with torch.autocast(device_type=inputs.target.device.type, enabled=False):
            x = _as_float(inputs)
            values = {
                name: term(x)
                for name, term in self.terms.items()
                if not (name == "velocity" and x.travelled is None and self.weights[name] == 0)
            }
            total = sum((self.weights[name] * value for name, value in values.items()), x.target.new_zeros(()))
            logged = {name: value.detach() for name, value in values.items()}
            if x.travelled is not None and x.speed_present is not None:
                logged["pose_scale"] = _pose_scale(x.poses, x.travelled, x.speed_present)
        return LossOutput(total=total, terms=logged)


def _as_float(x: ViewSynthesisInputs) -> ViewSynthesisInputs:
    def f(t: torch.Tensor) -> torch.Tensor:
        return t.float() if t.is_floating_point() else t

    travelled = None if x.travelled is None else f(x.travelled)
    return ViewSynthesisInputs(
        f(x.target), f(x.sources), [d.float() for d in x.depths], f(x.poses), f(x.K), travelled, x.speed_present
    )


def _pose_scale(poses: torch.Tensor, travelled: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    keep = present.bool()[:, None].expand_as(travelled)
    predicted = torch.where(keep, poses[..., :3, 3].detach().norm(dim=-1), torch.zeros_like(travelled)).sum()
    implied = torch.where(keep, travelled, torch.zeros_like(travelled)).sum()
    return predicted / implied.clamp_min(1e-9)
