"""Supervised depth losses: DenseDepth's (the seed's), L1 on inverse depth, SILog and BerHu.

Every loss is called the same way (docs/CONTRACTS.md)::

    loss_fn = build_loss("densedepth")
    out = loss_fn(outputs, depth, valid, output_space=model.output_space, max_depth=10.0)
    out.total.backward(); out.terms   # {"ssim": ..., "edges": ..., "l1": ...}

``outputs`` is the raw model output ``[B,1,h',w']`` or a list of them (one per
scale, finest first, as PackNet returns in training mode).  ``depth`` is the
ground truth in metres ``[B,1,h,w]`` and ``valid`` its boolean mask ``[B,1,h,w]``.

Which scales are charged is the ``scales`` setting (:data:`LOSS_SCALES`):

* ``finest`` (the default): only the first, finest output.  Every model then pays
  the same loss on the same resolution (DenseDepth has one output; the seed
  trained PackNet on one output too), so losses of different models compare.
* ``all``: every scale is resized bilinearly (``align_corners=False``) *in the raw
  output space* to ``h x w`` and converted; the total and every term are
  averaged over the scales (PackNet's own multi-scale protocol).  A perfect
  finest prediction is still charged for its coarser scales here.

A finest-only output below the target resolution is resized the same way.
Losses run in float32 with autocast disabled, so a bf16 training step does
not compute SSIM statistics (values up to 1e4) in bf16.

Masking: every term is a mean over valid pixels only (or over pairs / windows
built from valid pixels, see below); invalid pixels enter no sum, so changing
the prediction there changes neither the loss nor its gradient.  A batch with
no valid pixel gives ``total == 0`` and every term 0, still connected to the
graph so ``backward()`` works and yields zero gradients.

How model outputs reach each loss's space (via :mod:`probe.depth_space`)
-----------------------------------------------------------------------
``densedepth`` works in DenseDepth's normalised space ``y = max_depth / depth``
(1..100 on NYU's 0.1..10 m), through ``depth_space.to_depthnorm``:

* ``inverse`` heads (PackNet: ``sigmoid(x) / min_depth``, or the leaky-ReLU
  variant of seed experiment 3): ``y = max_depth * out``, a linear map, so the
  loss sees the network's own quantity scaled by a constant; a leaky-ReLU
  output below zero stays negative here (no clamp) and is penalised linearly.
* ``direct`` heads (seed experiment 4, ``sigmoid(x)`` = depth / max_depth):
  ``y = 1 / max(out, 1e-6)``; the clamp keeps a leaky-ReLU head that strays
  below zero finite (huge ``y``, zero gradient there) instead of NaN.
* ``depthnorm`` heads (DenseDepth's decoder): ``y = out`` unchanged.

``l1_inverse`` uses inverse depth in 1/m, ``to_depthnorm(out) / max_depth``
(exactly ``out`` for inverse heads).  ``silog`` and ``berhu`` use depth in
metres, ``depth_space.to_depth`` (clamped to >= 1e-6 before the division or
the logarithm).

The DenseDepth loss, exactly
----------------------------
``L = 1.0 * L_ssim + 1.0 * L_edges + 0.1 * L_l1`` (Alhashim & Wonka 2018, eq. 1-4
with lambda = 0.1; the weights w1 = w2 = 1, w3 = theta = 0.1 of ``Tensorflow/loss.py``
in ``ialhashim/DenseDepth``; that repository's PyTorch port drops the edge term,
which ``edge_weight=0`` reproduces).

* ``L_ssim = clamp((1 - mean SSIM) / 2, 0, 1)`` with an 11x11 Gaussian window
  (sigma 1.5, :func:`probe.image_quality.gaussian_window`; ``min(11, h, w)`` on tiny maps), no padding
  ("valid" windows as in the reference), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` and dynamic range
  ``L = max_depth / min_depth`` (100 for NYU's 10 m / 0.1 m, the reference's
  ``1000 / 10``).  Masking: the local means and (co)variances are computed by
  normalised convolution over the valid pixels of each window only, and the
  SSIM map is averaged over windows whose centre pixel is valid.  With every
  pixel valid this is exactly the reference SSIM.
* ``L_edges = mean(|dx pred - dx y| + |dy pred - dy y|)`` exactly as Keras computes
  it with TensorFlow's ``tf.image.image_gradients``: forward differences
  (``x[i+1] - x[i]``) whose last row (dy) and last column (dx) are zero padding,
  so the sum of the H-1 x W and H x W-1 differences is divided by H x W per image,
  not by the number of pairs.  Masking: a difference counts only when both of its
  pixels are valid, and the mean is over the valid pixels (H x W x B when all are
  valid, which is Keras's value).
* ``L_l1 = mean |pred - y|`` over valid pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from probe.depth_space import to_depth, to_depthnorm
from probe.errors import ProbeError, ShapeError
from probe.image_quality import gaussian_window
from probe.models.common import output_scales
from probe.registry import Registry

__all__ = [
    "DEFAULT_LOSS_SCALES",
    "LOSSES",
    "LOSS_SCALES",
    "LossOutput",
    "DepthLoss",
    "build_loss",
    "check_loss_scales",
    "dataset_loss_options",
    "list_losses",
    "masked_mean",
    "masked_ssim_map",
    "select_scales",
]

#: Which outputs of a multi-scale model the loss charges (see the module docstring).
LOSS_SCALES: dict[str, str] = {
    "finest": "the finest output only: the same objective for every model (the seed trained one output)",
    "all": "the mean over every output scale, each resized to the target (PackNet's multi-scale protocol)",
}
DEFAULT_LOSS_SCALES = "finest"


def check_loss_scales(scales: str, flag: str = "--loss-scales") -> str:
    """``scales`` if it is a key of :data:`LOSS_SCALES`, else a one-line ProbeError naming ``flag``."""
    if scales not in LOSS_SCALES:
        raise ProbeError(f"{flag}: expected one of {', '.join(LOSS_SCALES)}, got {scales!r}")
    return scales


@dataclass
class LossOutput:
    """``total``: the scalar to back-propagate; ``terms``: each unweighted component (detached, for logging)."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is True; 0 (still in the graph) when the mask is empty."""
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / mask.sum().clamp_min(1)


def masked_ssim_map(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor,
    *,
    val_range: float,
    window_size: int = 11,
    sigma: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM per window from valid pixels only: ``[B,1,h,w]`` x2 + mask -> (map, centre mask) ``[B,1,h-k+1,w-k+1]``.

    Local statistics are normalised convolutions (``conv(m*x) / conv(m)``), so
    pixels outside ``valid`` contribute nothing; with an all-valid mask the map
    equals the usual Gaussian-window SSIM with "valid" (unpadded) windows.
    """
    k = min(window_size, pred.shape[-2], pred.shape[-1])
    window = gaussian_window(k, sigma).to(device=pred.device, dtype=pred.dtype)[None, None]
    m = valid.to(pred.dtype)
    x = torch.where(valid, pred, torch.zeros_like(pred))
    y = torch.where(valid, target, torch.zeros_like(target))

    weight = F.conv2d(m, window)
    norm = weight.clamp_min(1e-12)

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window) / norm

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x * mu_x
    var_y = local_mean(y * y) - mu_y * mu_y
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * val_range) ** 2, (0.03 * val_range) ** 2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    r = (k - 1) // 2
    centre = valid[..., r : r + ssim.shape[-2], r : r + ssim.shape[-1]] & (weight > 0)
    return ssim, centre


def _check_target(depth: torch.Tensor, valid: torch.Tensor) -> None:
    if depth.dim() != 4 or depth.shape[1] != 1:
        raise ShapeError(f"loss: depth must be [B,1,h,w], got {tuple(depth.shape)}")
    if tuple(valid.shape) != tuple(depth.shape):
        raise ShapeError(f"loss: valid {tuple(valid.shape)} must match depth {tuple(depth.shape)}")


def select_scales(
    outputs: torch.Tensor | Sequence[torch.Tensor], scales: str = DEFAULT_LOSS_SCALES
) -> list[torch.Tensor]:
    """The outputs the loss charges: a tensor or a list of scales (finest first) -> ``[finest]`` or all of them."""
    check_loss_scales(scales, "loss scales")
    chosen = output_scales(outputs)
    return chosen[:1] if scales == "finest" else chosen


class DepthLoss:
    """Shared machinery: shape checks, float32, scale selection, per-scale resize, masking, averaging over scales.

    Subclasses set ``weights`` (term name -> weight in the total) and implement
    :meth:`scale_terms`, which sees one scale already resized to the target.
    """

    weights: dict[str, float] = {}

    def scale_terms(
        self, out: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, *, output_space: str, max_depth: float
    ) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def __call__(
        self,
        outputs: torch.Tensor | Sequence[torch.Tensor],
        depth: torch.Tensor,
        valid: torch.Tensor,
        *,
        output_space: str,
        max_depth: float,
        scales: str = DEFAULT_LOSS_SCALES,
    ) -> LossOutput:
        """``outputs`` ``[B,1,h',w']`` or a list of them; ``depth``/``valid`` ``[B,1,h,w]`` -> :class:`LossOutput`.

        ``scales``: ``"finest"`` charges ``outputs[0]`` only, ``"all"`` averages over every scale.
        """
        _check_target(depth, valid)
        charged = select_scales(outputs, scales)
        valid = valid.bool()
        with torch.autocast(device_type=depth.device.type, enabled=False):
            depth = depth.float()
            totals: list[torch.Tensor] = []
            sums: dict[str, torch.Tensor] = {}
            for i, out in enumerate(charged):
                if out.dim() != 4 or out.shape[0] != depth.shape[0] or out.shape[1] != 1:
                    raise ShapeError(
                        f"loss: output scale {i} must be [B,1,h,w] with B={depth.shape[0]}, got {tuple(out.shape)}"
                    )
                out = out.float()
                if out.shape[-2:] != depth.shape[-2:]:
                    out = F.interpolate(out, size=depth.shape[-2:], mode="bilinear", align_corners=False)
                terms = self.scale_terms(out, depth, valid, output_space=output_space, max_depth=max_depth)
                totals.append(torch.stack([self.weights[name] * value for name, value in terms.items()]).sum())
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value.detach()
            n = len(charged)
            return LossOutput(total=torch.stack(totals).mean(), terms={k: v / n for k, v in sums.items()})


LOSSES: Registry[Callable[..., DepthLoss]] = Registry("loss")


@LOSSES.register(
    "densedepth",
    description="SSIM + image gradients + 0.1 L1 on max_depth/depth (DenseDepth, the seed's)",
    depth_range_option="min_depth",
)
class DenseDepthLoss(DepthLoss):
    """DenseDepth's loss on ``y = max_depth / depth``: see the module docstring for the exact definition.

    ``min_depth`` (m) sets the SSIM dynamic range ``max_depth / min_depth``
    unless ``val_range`` is given; the default 0.1 m is DenseDepth's 10 cm.
    """

    def __init__(
        self,
        *,
        ssim_weight: float = 1.0,
        edge_weight: float = 1.0,
        l1_weight: float = 0.1,
        min_depth: float = 0.1,
        val_range: float | None = None,
        window_size: int = 11,
        sigma: float = 1.5,
    ) -> None:
        if min_depth <= 0 or (val_range is not None and val_range <= 0):
            raise ProbeError(f"densedepth loss: min_depth and val_range must be positive, got {min_depth}, {val_range}")
        self.weights = {"ssim": ssim_weight, "edges": edge_weight, "l1": l1_weight}
        self.min_depth = min_depth
        self.val_range = val_range
        self.window_size = window_size
        self.sigma = sigma

    def scale_terms(
        self, out: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, *, output_space: str, max_depth: float
    ) -> dict[str, torch.Tensor]:
        pred = to_depthnorm(out, output_space, max_depth)
        target = torch.where(valid, max_depth / depth.clamp_min(1e-6), torch.zeros_like(depth))
        val_range = self.val_range if self.val_range is not None else max_depth / self.min_depth
        ssim, centre = masked_ssim_map(
            pred, target, valid, val_range=val_range, window_size=self.window_size, sigma=self.sigma
        )
        ssim_term = masked_mean((1.0 - ssim) * 0.5, centre).clamp(0.0, 1.0)
        return {
            "ssim": ssim_term,
            "edges": _edge_term(pred, target, valid),
            "l1": masked_mean((pred - target).abs(), valid),
        }


def _edge_term(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Keras's ``l_edges``: ``[B,1,h,w]`` x2 + mask -> scalar.

    ``sum |forward diff of pred - that of target|`` over x and y, over pairs of two
    valid pixels, divided by the number of valid pixels: TF's ``image_gradients``
    pads the last row/column with zeros, so its mean runs over H x W (0 when no
    pixel is valid, still in the graph).
    """
    total = pred.new_zeros(())
    for dim in (-1, -2):
        n = pred.shape[dim]
        if n < 2:  # the whole gradient is TF's zero padding
            continue
        d_pred = pred.narrow(dim, 1, n - 1) - pred.narrow(dim, 0, n - 1)
        d_target = target.narrow(dim, 1, n - 1) - target.narrow(dim, 0, n - 1)
        pair_valid = valid.narrow(dim, 1, n - 1) & valid.narrow(dim, 0, n - 1)
        diff = (d_pred - d_target).abs()
        total = total + torch.where(pair_valid, diff, torch.zeros_like(diff)).sum()
    return total / valid.sum().clamp_min(1)


@LOSSES.register("l1_inverse", description="mean |1/pred - 1/gt| in 1/m over valid pixels")
class InverseL1Loss(DepthLoss):
    """L1 between predicted and true inverse depth (1/m)."""

    weights = {"l1_inverse": 1.0}

    def scale_terms(
        self, out: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, *, output_space: str, max_depth: float
    ) -> dict[str, torch.Tensor]:
        inv_pred = to_depthnorm(out, output_space, max_depth) / max_depth
        inv_gt = torch.where(valid, 1.0 / depth.clamp_min(1e-6), torch.zeros_like(depth))
        return {"l1_inverse": masked_mean((inv_pred - inv_gt).abs(), valid)}


@LOSSES.register(
    "silog", description="scale-invariant log error, scale*sqrt(mean d^2 - lambda mean(d)^2) (BTS/AdaBins)"
)
class SILogLoss(DepthLoss):
    """Eigen et al. (2014) scale-invariant log loss in the BTS/AdaBins form.

    With ``d = log(pred) - log(gt)`` over the valid pixels of the whole batch:
    ``scale * sqrt(mean(d^2) - variance_focus * mean(d)^2)``; the defaults
    ``variance_focus=0.85`` and ``scale=10`` are BTS's (AdaBins writes the same
    quantity as ``10 sqrt(Var d + 0.15 mean(d)^2)``).  With ``variance_focus=1``
    it is ``scale * std(d)``, invariant to any global scaling of the prediction.
    The square root is evaluated as ``sqrt(v + 1e-12) - 1e-6`` so that a perfect
    prediction gives exactly 0 with finite gradients (plain sqrt has an infinite
    derivative at 0).
    """

    _EPS = 1e-12

    def __init__(self, *, variance_focus: float = 0.85, scale: float = 10.0) -> None:
        if not 0.0 <= variance_focus <= 1.0:
            raise ProbeError(f"silog loss: variance_focus must be in [0, 1], got {variance_focus}")
        self.variance_focus = variance_focus
        self.scale = scale
        self.weights = {"silog": 1.0}

    def scale_terms(
        self, out: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, *, output_space: str, max_depth: float
    ) -> dict[str, torch.Tensor]:
        log_pred = torch.log(to_depth(out, output_space, max_depth))
        log_gt = torch.log(torch.where(valid, depth, torch.ones_like(depth)).clamp_min(1e-6))
        d = log_pred - log_gt
        mean_d = masked_mean(d, valid)
        mean_d2 = masked_mean(d * d, valid)
        v = (mean_d2 - self.variance_focus * mean_d * mean_d).clamp_min(0.0)
        return {"silog": self.scale * (torch.sqrt(v + self._EPS) - math.sqrt(self._EPS))}


@LOSSES.register("berhu", description="reverse Huber on metres, c = 0.2 max residual per batch (Laina et al. 2016)")
class BerHuLoss(DepthLoss):
    """Reverse Huber (Laina et al. 2016) on depth in metres.

    ``|r|`` where ``|r| <= c`` and ``(r^2 + c^2) / (2c)`` beyond, with
    ``c = threshold * max |r|`` over the valid pixels of the batch (not
    back-propagated; ``threshold`` = 0.2 as published).  ``c`` is floored at
    1e-6 so the unused branch never divides by zero.
    """

    def __init__(self, *, threshold: float = 0.2) -> None:
        if threshold <= 0:
            raise ProbeError(f"berhu loss: threshold must be positive, got {threshold}")
        self.threshold = threshold
        self.weights = {"berhu": 1.0}

    def scale_terms(
        self, out: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, *, output_space: str, max_depth: float
    ) -> dict[str, torch.Tensor]:
        residual = (to_depth(out, output_space, max_depth) - depth).abs()
        residual = torch.where(valid, residual, torch.zeros_like(residual))
        c = (self.threshold * residual.detach().max()).clamp_min(1e-6) if residual.numel() else residual.new_ones(())
        berhu = torch.where(residual <= c, residual, (residual * residual + c * c) / (2 * c))
        return {"berhu": masked_mean(berhu, valid)}


def build_loss(name: str = "densedepth", **options: Any) -> DepthLoss:
    """Build a registered loss; ``options`` are its keyword arguments.

    >>> loss = build_loss("silog", variance_focus=1.0)
    >>> sorted(list_losses())
    ['berhu', 'densedepth', 'l1_inverse', 'silog']
    """
    factory = LOSSES.get(name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise ProbeError(f"loss {name!r}: bad option ({exc})") from None


def dataset_loss_options(name: str, info: Any) -> dict[str, Any]:
    """Options the dataset protocol ``info`` implies for loss ``name``.

    The DenseDepth loss's SSIM dynamic range ``max_depth / min_depth`` spans the protocol's DepthNorm targets
    (1..100 on NYU and the synthetic rooms) when ``min_depth`` is the protocol minimum
    (:func:`probe.depth_space.head_min_depth`); other losses take none.

    >>> from probe.data import dataset_info
    >>> outdoor, nyu = dataset_info("synthetic_outdoor"), dataset_info("nyu")
    >>> dataset_loss_options("densedepth", outdoor), dataset_loss_options("silog", nyu)
    ({'min_depth': 1.0}, {})
    """
    from probe.depth_space import head_min_depth

    option = LOSSES.entry(name).meta.get("depth_range_option")
    return {option: head_min_depth(info)} if option else {}


def list_losses() -> list[str]:
    """Registered loss names, in registration order."""
    return LOSSES.names()
