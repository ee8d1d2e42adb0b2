"""Does the prediction collapse to one value per image?

The seed study noticed that PackNet's predicted depths "all hovered around one
singular value - for the entire image".  :func:`collapse_statistics` turns that
impression into numbers per image, all computed over valid ground-truth pixels:

- ``std_ratio``: spatial std of the prediction / spatial std of the ground truth.
  A network that predicts the image mean has ``std_ratio`` near 0; ``collapsed``
  is ``std_ratio < 0.1``.
- ``pearson`` / ``spearman``: does the prediction at least *order* the pixels
  like the ground truth?  (Undefined, NaN, for a constant prediction.)
- ``r2``: ``1 - SSE(pred) / SSE(per-image mean of gt)``.  0 means "no better
  than an oracle that knows each image's mean depth"; below 0 is worse than it.
- ``scale_ratio``: mean prediction / mean ground truth, flagged outside
  [0.8, 1.25] (the delta-1 band), so a right shape at a wrong scale is not
  mistaken for collapse.

A prediction can also collapse the other way: to one dataset-wide depth map
that no longer depends on the image.  Every per-image statistic above can look
healthy then (the map has structure), so :func:`image_dependence` measures it
over the batch: at each pixel, how much log depth varies *across images*
(:class:`ImageDependence`), next to the same number of the ground truth; the
rule is :data:`probe.rules.IMAGE_RULE`.  At the end of a tracked run,
:func:`image_fade` hooks the model's blocks and names the one from which on
every activation has lost the image (:class:`ImageFade`).

:func:`run` measures a trained checkpoint, or trains a model through
:func:`probe.training.train` and measures it every K steps on a fixed held-out
batch (:class:`CollapseTracker`, also available as ``probe train --probe collapse``).

>>> import torch
>>> gt = torch.rand(2, 1, 8, 8) + 1.0
>>> stats = collapse_statistics(torch.full_like(gt, 1.5), gt, torch.ones_like(gt, dtype=torch.bool))
>>> stats.collapsed, stats.collapsed_share
([True, True], 1.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from analyses.probes import TRAIN_PROBES, TrainingProbe, by_name, learned_over_runs
from analyses.training_runs import TrainingRuns, runs_over_seeds, score_model, train_with_hook
from probe.controls import CONTROLS
from probe.data.samples import Samples, load_first_samples
from probe.device import resolve_device
from probe.errors import ProbeError, ShapeError
from probe.evaluate import predict_depth
from probe.heldout import GATE_RULE, HeldOutSummary, Learned
from probe.limits import MAX_ANALYSIS_STEPS, MAX_HELD_OUT_IMAGES, check_count
from probe.options import option, out_option
from probe.report.answers import QUESTIONS, Answer, excluded_sentence, fmt, gate, model_columns, shown, verdict_cell
from probe.report.collect import Results
from probe.report.document import Block, Section, Table, figure_from_matplotlib
from probe.report.guards import inconclusive, undefined_inputs
from probe.report.sections import SECTIONS, answer_section, embedded_figures
from probe.results import Result, register_result
from probe.roles import UNDER_STUDY, Roles, assign_roles
from probe.rules import (
    COLLAPSE_RULE,
    IGNORES_IMAGE_BELOW,
    IMAGE_RULE,
    RATIO_FLOOR,
    ImageCall,
    collapse_call,
    image_call,
    interval_text,
)
from probe.schema import encode, transient
from probe.seeding import seed_everything
from probe.stats import (
    DEFAULT_RESAMPLES,
    Estimate,
    geometric_seed_estimate,
    percentile_interval,
    resample_counts,
    seed_estimate,
    seeds_or_images,
)
from probe.training import TrainConfig, load_checkpoint
from probe.training.checkpoint import resolve_checkpoint

COLLAPSE_BELOW = 0.1
SCALE_BAND = (0.8, 1.25)


@dataclass
class CollapseStatistics:
    """Per-image collapse statistics of one batch (lists have one entry per image).

    NaN marks an undefined value: fewer than two valid pixels, a flat ground
    truth (``std_ratio``, ``r2``), or a constant prediction (correlations).
    ``collapsed_share`` and ``scale_flagged_share`` count only images whose
    ground truth varies (``defined``).
    """

    n_valid: list[int]
    std_ratio: list[float]
    pearson: list[float]
    spearman: list[float]
    r2: list[float]
    scale_ratio: list[float]
    collapsed: list[bool]
    scale_flagged: list[bool]
    defined: list[bool]
    collapsed_share: float
    scale_flagged_share: float
    image_dependence: ImageDependence  # over the whole batch: how much the prediction varies with the image
    collapse_below: float = COLLAPSE_BELOW
    scale_band: tuple[float, float] = SCALE_BAND

    def summary(self, step: int) -> CollapseSummary:
        """Batch-level numbers at ``step``: shares plus median/mean of each statistic over defined images."""
        keep = np.asarray(self.defined, dtype=bool)

        def _agg(values: list[float], how: str) -> float:
            arr = np.asarray(values, dtype=np.float64)[keep]
            arr = arr[np.isfinite(arr)]
            if arr.size == 0:
                return math.nan
            return float(np.median(arr) if how == "median" else arr.mean())

        return CollapseSummary(
            step=step,
            n_images=len(self.std_ratio),
            n_defined=int(keep.sum()),
            collapsed_share=self.collapsed_share,
            scale_flagged_share=self.scale_flagged_share,
            median_std_ratio=_agg(self.std_ratio, "median"),
            mean_std_ratio=_agg(self.std_ratio, "mean"),
            mean_pearson=_agg(self.pearson, "mean"),
            mean_spearman=_agg(self.spearman, "mean"),
            mean_r2=_agg(self.r2, "mean"),
            median_r2=_agg(self.r2, "median"),
            median_scale_ratio=_agg(self.scale_ratio, "median"),
            image_dependence=self.image_dependence,
        )


@dataclass
class CollapseSummary:
    """One measurement of one model: shares of collapsed / scale-flagged images and per-image aggregates."""

    step: int
    n_images: int
    n_defined: int
    collapsed_share: float
    scale_flagged_share: float
    median_std_ratio: float
    mean_std_ratio: float
    mean_pearson: float
    mean_spearman: float
    mean_r2: float
    median_r2: float
    median_scale_ratio: float
    image_dependence: ImageDependence


def _check_shapes(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> None:
    if pred.ndim != 4 or pred.shape[1] != 1:
        raise ShapeError(f"collapse_statistics: pred must be [B,1,H,W], got {tuple(pred.shape)}")
    if gt.shape != pred.shape or valid.shape != pred.shape:
        raise ShapeError(
            "collapse_statistics: pred, gt and valid must share one [B,1,H,W] shape, got "
            f"{tuple(pred.shape)}, {tuple(gt.shape)}, {tuple(valid.shape)}"
        )


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks of a 1-D tensor, ties sharing their average rank (0-based): ``[N] -> [N]`` float64."""
    sorted_vals, order = torch.sort(x)
    _, inverse, counts = torch.unique_consecutive(sorted_vals, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0)
    starts = ends - counts
    group_rank = (starts + ends - 1).to(torch.float64) / 2.0
    ranks = torch.empty(x.shape, dtype=torch.float64, device=x.device)
    ranks[order] = group_rank[inverse]
    return ranks


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    if denom == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float((da * db).sum()) / denom))


def collapse_statistics(
    pred: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor,
    *,
    collapse_below: float = COLLAPSE_BELOW,
    scale_band: tuple[float, float] = SCALE_BAND,
) -> CollapseStatistics:
    """Per-image collapse statistics of depth predictions (metres) against the ground truth.

    ``pred``, ``gt``: ``[B,1,H,W]`` float; ``valid``: ``[B,1,H,W]`` bool.  Only valid
    pixels where both tensors are finite count.  Example::

        stats = collapse_statistics(pred_m, batch["depth"], batch["valid"])
        stats.collapsed_share, stats.summary()["mean_r2"]
    """
    _check_shapes(pred, gt, valid)
    p_all = pred.detach().to(torch.float64).flatten(1).cpu()
    g_all = gt.detach().to(torch.float64).flatten(1).cpu()
    m_all = valid.detach().to(torch.bool).flatten(1).cpu() & torch.isfinite(p_all) & torch.isfinite(g_all)
    lo, hi = scale_band
    out: dict[str, list[Any]] = {
        k: []
        for k in (
            "n_valid",
            "std_ratio",
            "pearson",
            "spearman",
            "r2",
            "scale_ratio",
            "collapsed",
            "scale_flagged",
            "defined",
        )
    }
    for p_row, g_row, m_row in zip(p_all, g_all, m_all):
        p, g = p_row[m_row], g_row[m_row]
        n = int(p.numel())
        std_p = float(p.std(unbiased=False)) if n >= 2 else math.nan
        std_g = float(g.std(unbiased=False)) if n >= 2 else math.nan
        defined = n >= 2 and std_g > 0.0
        std_ratio = std_p / std_g if defined else math.nan
        sse_mean = float(((g - g.mean()) ** 2).sum()) if n else math.nan
        r2 = 1.0 - float(((p - g) ** 2).sum()) / sse_mean if defined else math.nan
        mean_g = float(g.mean()) if n else math.nan
        scale_ratio = float(p.mean()) / mean_g if n and mean_g != 0.0 else math.nan
        out["n_valid"].append(n)
        out["std_ratio"].append(std_ratio)
        out["pearson"].append(_pearson(p, g) if n >= 2 else math.nan)
        out["spearman"].append(_pearson(average_ranks(p), average_ranks(g)) if n >= 2 else math.nan)
        out["r2"].append(r2)
        out["scale_ratio"].append(scale_ratio)
        out["collapsed"].append(bool(defined and std_ratio < collapse_below))
        out["scale_flagged"].append(bool(defined and not lo <= scale_ratio <= hi))
        out["defined"].append(bool(defined))
    n_defined = sum(out["defined"])

    def share(flags: list[bool]) -> float:
        return sum(flags) / n_defined if n_defined else math.nan

    return CollapseStatistics(
        **out,
        collapsed_share=share(out["collapsed"]),
        scale_flagged_share=share(out["scale_flagged"]),
        image_dependence=image_dependence(pred, gt, valid),
        collapse_below=collapse_below,
        scale_band=(lo, hi),
    )


# -- image dependence: does the prediction change with the image? ---------------------------------


@dataclass
class ImageDependence:
    """How much of the log depth varies with the image, over one batch of held-out images.

    Computed on log metres at the ground truth's valid pixels (where both depths are finite and positive), at the
    pixel positions valid in at least two images (``n_pixels``):

    - ``*_cross_std``: at each pixel, the std of log depth across the images; averaged over the pixels;
    - ``*_image_share``: the variance across images at each pixel, averaged over the pixels, over the variance of
      every valid (image, pixel) value: the share of the variation that changes with the image (the rest is a map
      of position shared by every image);
    - ``*_within_std``: the spatial std of log depth within each image, averaged over the images;
    - ``cross_std_ratio``: ``pred_cross_std / gt_cross_std``, what :data:`probe.rules.IMAGE_RULE` judges.

    NaN marks an undefined value: fewer than two images, or a ground truth that does not vary.
    """

    n_images: int
    n_pixels: int
    pred_cross_std: float
    gt_cross_std: float
    cross_std_ratio: float
    pred_image_share: float
    gt_image_share: float
    pred_within_std: float
    gt_within_std: float


def _log_pixels(
    pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[B,1,H,W]`` x3 -> (log pred, log gt, usable) as ``[B,P]`` float64 / bool on the CPU."""
    p = pred.detach().to(torch.float64).flatten(1).cpu()
    g = gt.detach().to(torch.float64).flatten(1).cpu()
    ok = valid.detach().to(torch.bool).flatten(1).cpu() & torch.isfinite(p) & torch.isfinite(g) & (p > 0) & (g > 0)
    one = torch.ones_like(p)
    return torch.where(ok, p, one).log(), torch.where(ok, g, one).log(), ok


def _cross_image_std(x: torch.Tensor, ok: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Std and variance across images at each pixel, averaged over pixels, for each row of image ``weights``.

    ``x`` ``[B,P]`` float64, ``ok`` ``[B,P]`` bool, ``weights`` ``[R,B]`` (how often each image counts: ones for
    the batch itself, bootstrap counts for resamples) -> ``([R], [R])``.  Only pixels valid in at least two images
    of the batch count; a resample that drew none of a pixel's images leaves that pixel out.
    """
    m = ok.to(torch.float64)
    used = ok.sum(0) >= 2
    centre = (m * x).sum(0) / m.sum(0).clamp_min(1)  # centring first keeps E[x^2] - E[x]^2 exact in float64
    xc = (x - centre) * m
    count = weights @ m
    s1, s2 = weights @ xc, weights @ (xc * xc)
    present = used & (count > 0)
    safe = count.clamp_min(1)
    var = (s2 / safe - (s1 / safe) ** 2).clamp_min(0.0)
    n = present.sum(1).to(torch.float64)
    mean_std = torch.where(present, var.sqrt(), torch.zeros_like(var)).sum(1) / n
    mean_var = torch.where(present, var, torch.zeros_like(var)).sum(1) / n
    return mean_std, mean_var


def _total_var(x: torch.Tensor, ok: torch.Tensor) -> float:
    """Variance of every usable value at the pixels valid in at least two images."""
    keep = ok & (ok.sum(0, keepdim=True) >= 2)
    values = x[keep]
    return float(values.var(unbiased=False)) if values.numel() >= 2 else math.nan


def _within_std(x: torch.Tensor, ok: torch.Tensor) -> float:
    """Spatial std of each image's usable values, averaged over the images with at least two."""
    stds = [float(row[keep].std(unbiased=False)) for row, keep in zip(x, ok) if int(keep.sum()) >= 2]
    return sum(stds) / len(stds) if stds else math.nan


def _share(part: float, total: float) -> float:
    return part / total if math.isfinite(part) and math.isfinite(total) and total > 0 else math.nan


def image_dependence(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> ImageDependence:
    """:class:`ImageDependence` of depth predictions (metres) against the ground truth over a batch.

    ``pred``, ``gt``: ``[B,1,H,W]`` float; ``valid``: ``[B,1,H,W]`` bool.

    >>> gt = torch.rand(6, 1, 4, 5) + 1.0
    >>> fixed = gt.log().mean(0, keepdim=True).exp().expand_as(gt)     # one map for every image
    >>> image_dependence(fixed, gt, torch.ones_like(gt, dtype=torch.bool)).cross_std_ratio < 1e-6
    True
    """
    _check_shapes(pred, gt, valid)
    lp, lg, ok = _log_pixels(pred, gt, valid)
    n_images, n_pixels = int(pred.shape[0]), int(((ok.sum(0)) >= 2).sum())
    if n_pixels == 0:
        nan = math.nan
        return ImageDependence(n_images, 0, nan, nan, nan, nan, nan, _within_std(lp, ok), _within_std(lg, ok))
    ones = torch.ones(1, n_images, dtype=torch.float64)
    p_std, p_var = (float(v[0]) for v in _cross_image_std(lp, ok, ones))
    g_std, g_var = (float(v[0]) for v in _cross_image_std(lg, ok, ones))
    return ImageDependence(
        n_images=n_images,
        n_pixels=n_pixels,
        pred_cross_std=p_std,
        gt_cross_std=g_std,
        cross_std_ratio=p_std / g_std if g_std > 0 else math.nan,
        pred_image_share=_share(p_var, _total_var(lp, ok)),
        gt_image_share=_share(g_var, _total_var(lg, ok)),
        pred_within_std=_within_std(lp, ok),
        gt_within_std=_within_std(lg, ok),
    )


def cross_std_ratio_interval(
    pred: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    chunk: int = 250,
) -> Estimate | None:
    """The cross-image std ratio of one batch with a percentile bootstrap over its images (both stds recomputed on
    each resample); None when the ratio is undefined.  A batch of fewer than 4 images, or one where more than 10%
    of the resamples leave the ratio undefined, gives the value without an interval."""
    _check_shapes(pred, gt, valid)
    value = image_dependence(pred, gt, valid).cross_std_ratio
    if not math.isfinite(value):
        return None
    n = int(pred.shape[0])
    no_interval = Estimate(value, None, n, None, None, f"{n} images: too few for a bootstrap", "images", [value])
    if n < 4:
        return no_interval
    lp, lg, ok = _log_pixels(pred, gt, valid)
    counts = torch.from_numpy(resample_counts(n, resamples, seed)).to(torch.float64)
    ratios = []
    for start in range(0, resamples, chunk):  # chunks keep the [R,P] moments small
        w = counts[start : start + chunk]
        ratios.append(_cross_image_std(lp, ok, w)[0] / _cross_image_std(lg, ok, w)[0])
    resampled = torch.cat(ratios).numpy()
    # a resample that drew one image only has no variation across images: the ratio is undefined there and the
    # resample is left out (about 1.6% of them at 4 images, none in practice at 16); more than 10% leaves none
    defined = resampled[np.isfinite(resampled)]
    if defined.size < 0.9 * resamples:
        return no_interval
    return percentile_interval(value, defined.tolist(), n)


# -- where the image fades inside the model -------------------------------------------------------


@dataclass
class LayerShare:
    """One block's output on the held-out images: the share of its variance that changes with the image."""

    name: str  # the module's path; "image" for the input, "depth" for the prediction (log metres)
    kind: str  # the module's class
    shape: list[int]  # one image's activation, e.g. [C, H, W]
    image_share: float  # NaN: the activation does not vary at all


@dataclass
class ImageFade:
    """Each block's image share of activation variance, input to prediction, and where it is first lost.

    ``layers`` run in execution order from the input image to the prediction; ``threshold`` is
    :data:`probe.rules.IGNORES_IMAGE_BELOW` times the input image's share; ``fades_at`` names the first block
    from which every later block's share, the prediction's included, lies below it (:func:`fades_at`; None: the
    prediction keeps more).
    """

    step: int
    layers: list[LayerShare]
    threshold: float
    fades_at: str | None


def activation_image_share(x: torch.Tensor) -> float:
    """``[B,C,...]`` -> the variance across the B images at each (channel, position), averaged, over the variance
    of each channel's values around the channel's own mean, averaged over channels (``[B,D]``: over all values).
    NaN when nothing varies or a value is not finite.

    What remains is a fixed map of position that every image shares.  Each channel's own offset (its bias) is
    taken out of the total: a constant per channel neither carries nor hides the image, and counting it would
    make a layer with large biases look as if it had lost the image.

    >>> activation_image_share(torch.arange(6.0).view(1, 6).expand(4, 6))      # a fixed map of position
    0.0
    >>> round(activation_image_share(torch.randn(64, 2, 8) + torch.tensor([[0.0], [100.0]])), 1)   # offsets
    1.0
    """
    values = x.detach().to(torch.float64)
    if values.shape[0] < 2 or not bool(torch.isfinite(values).all()):
        return math.nan
    cross = float(values.flatten(1).var(0, unbiased=False).mean())
    if values.dim() >= 3:
        per_channel = values.transpose(0, 1).flatten(1)  # [C, B*positions]
        return _share(cross, float(per_channel.var(1, unbiased=False).mean()))
    return _share(cross, float(values.var(unbiased=False)))


def _is_container(module: nn.Module, children: list[nn.Module]) -> bool:
    """Whether a module that ran is read through its children: a wrapper around one module, or a Sequential of
    blocks (a Sequential of plain layers, conv-norm-activation, is one block).  A module that never ran as a whole
    (a ModuleList, an encoder returning a list) is always read through its children."""
    if len(children) == 1:
        return True
    return isinstance(module, nn.Sequential) and any(next(c.children(), None) is not None for c in children)


#: Fewer readable blocks than this and each is read through its children (a user model wrapping one network).
MIN_BLOCKS = 4


def _blocks(root: nn.Module, recorded: set[str]) -> list[str]:
    """The readable blocks of ``root``: from the top, a module that returned one batch tensor is kept unless it is
    a container; other modules (the model itself, an encoder returning a list of features) are read through
    their children.  While fewer than :data:`MIN_BLOCKS` are kept, every kept block is read through its children
    once more (a network wrapped in one module would otherwise be a single block)."""
    modules = dict(root.named_modules())

    def through_children(name: str) -> list[str]:
        return [
            block
            for child_name, child in modules[name].named_children()
            for block in visit(f"{name}.{child_name}" if name else child_name, child)
        ]

    def visit(name: str, module: nn.Module) -> list[str]:
        children = [c for _, c in module.named_children()]
        if name in recorded and not _is_container(module, children):
            return [name]
        return through_children(name)

    kept = through_children("")
    while len(kept) < MIN_BLOCKS:
        finer = [block for name in kept for block in (through_children(name) or [name])]
        if finer == kept:
            break
        kept = finer
    return kept


def layer_image_shares(model: nn.Module, images: torch.Tensor) -> list[LayerShare]:
    """Forward ``images`` ``[B,3,H,W]`` once in eval mode (then restore the mode) with a hook on every module, and
    return each readable block's :class:`LayerShare` in execution order (a block run twice: its first call).

    The hooks reduce each output to one number as it is produced, so no activation is kept.
    """
    root: nn.Module = getattr(model, "_orig_mod", model)  # hooks on the module torch.compile wraps
    batch = int(images.shape[0])
    recorded: dict[str, tuple[int, str, list[int], float]] = {}

    def hook(name: str) -> Any:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if name in recorded or not isinstance(output, torch.Tensor) or not output.is_floating_point():
                return
            if output.dim() < 2 or output.shape[0] != batch:
                return
            share = activation_image_share(output)
            recorded[name] = (len(recorded), type(module).__name__, list(output.shape[1:]), share)

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in root.named_modules() if name]
    was_training = root.training
    root.eval()
    try:
        with torch.no_grad():
            root(images)
    finally:
        for handle in handles:
            handle.remove()
        root.train(was_training)
    names = sorted(_blocks(root, set(recorded)), key=lambda n: recorded[n][0])
    return [LayerShare(n, recorded[n][1], recorded[n][2], recorded[n][3]) for n in names]


def image_fade(model: nn.Module, images: torch.Tensor, depth_share: float, step: int) -> ImageFade:
    """:class:`ImageFade` of ``model`` on ``images`` ``[B,3,H,W]``: the input image's share, every block's
    (:func:`layer_image_shares`), then ``depth_share``, the prediction's (log metres, from
    :class:`ImageDependence`)."""
    source = LayerShare("image", "input", list(images.shape[1:]), activation_image_share(images))
    blocks = layer_image_shares(model, images)
    depth = LayerShare("depth", "prediction (log metres)", [], depth_share)
    threshold = IGNORES_IMAGE_BELOW * source.image_share
    return ImageFade(step, [source, *blocks, depth], threshold, fades_at([*blocks, depth], threshold))


def fades_at(layers: list[LayerShare], threshold: float) -> str | None:
    """The first of ``layers`` (execution order, the prediction last) from which every later one keeps an image
    share below ``threshold``: where the image is lost for good.  A block whose activation does not vary at all
    (share NaN) keeps none of the image.  None when the last one (the prediction) keeps more, or ``threshold`` is
    undefined.  A dip that a later block recovers from (a skip connection bringing the image back) is no fade.

    >>> shares = [LayerShare(n, "", [], v) for n, v in [("a", 0.9), ("b", 0.01), ("c", 0.5), ("d", 0.02), ("e", 0.0)]]
    >>> fades_at(shares, 0.1), fades_at(shares[:3], 0.1)
    ('d', None)
    """
    if not math.isfinite(threshold):
        return None
    first = None
    for layer in reversed(layers):
        if math.isfinite(layer.image_share) and layer.image_share >= threshold:
            break
        first = layer.name
    return first


# -- measuring a model ------------------------------------------------------------------------


@dataclass
class Measurement:
    """Collapse statistics of one model at one step, with the predictions behind them (kept for figures)."""

    step: int
    stats: CollapseStatistics
    pred: torch.Tensor  # [B,1,h,w] metres, on the CPU

    def summary(self) -> CollapseSummary:
        return self.stats.summary(self.step)


def measure(model: nn.Module, batch: Samples, step: int) -> Measurement:
    """Predict ``batch`` in eval mode (then restore the mode) and compute :func:`collapse_statistics`."""
    was_training = model.training
    model.eval()
    try:
        pred = predict_depth(
            model,
            batch.image,
            max_depth=batch.max_depth,
            size=(int(batch.depth.shape[-2]), int(batch.depth.shape[-1])),
            clip=batch.depth_range,
        )
    finally:
        model.train(was_training)
    return measure_prediction(pred, batch, step)


def measure_prediction(pred: torch.Tensor, batch: Samples, step: int) -> Measurement:
    """Collapse statistics of a prediction ``[B,1,h,w]`` (metres) of ``batch`` at ``step``."""
    return Measurement(step, collapse_statistics(pred, batch.depth, batch.valid), pred.cpu())


@dataclass
class ModelCollapse:
    """One model's collapse history on one held-out batch and one seed; ``final`` holds the per-image statistics of
    the last measurement, ``held_out`` the run's score against the constant predictor (did it learn?)."""

    name: str
    seed: int
    source: str
    images: list[str]  # the held-out images, in the order of every per-image list
    history: list[CollapseSummary]  # one per measurement, in step order
    final: CollapseStatistics
    held_out: HeldOutSummary | None  # None: not measured
    # the last measurement's cross-image std ratio with a bootstrap over its images (None: undefined)
    cross_std_ratio: Estimate | None
    fade: ImageFade | None  # where the image fades inside the model, at the last step (None: not measured)
    batch: Samples | None = transient()  # for the example figure only
    final_pred: torch.Tensor | None = transient()  # [B,1,h,w] metres at the last measurement

    @classmethod
    def of(
        cls,
        name: str,
        source: str,
        batch: Samples,
        measurements: list[Measurement],
        seed: int = 0,
        held_out: HeldOutSummary | None = None,
        fade: ImageFade | None = None,
    ) -> ModelCollapse:
        earlier = [m.summary() for m in measurements[:-1]]
        return cls.of_history(name, source, batch, earlier, measurements[-1], seed, held_out, fade)

    @classmethod
    def of_history(
        cls,
        name: str,
        source: str,
        batch: Samples,
        earlier: list[CollapseSummary],
        last: Measurement,
        seed: int = 0,
        held_out: HeldOutSummary | None = None,
        fade: ImageFade | None = None,
    ) -> ModelCollapse:
        """From the summaries of the earlier measurements and the last measurement (its predictions kept)."""
        history = [*earlier, last.summary()]
        ratio = cross_std_ratio_interval(last.pred, batch.depth.cpu(), batch.valid.cpu(), seed=seed)
        return cls(name, seed, source, list(batch.names), history, last.stats, held_out, ratio, fade, batch, last.pred)

    @property
    def last(self) -> CollapseSummary:
        return self.history[-1]

    def defined(self, values: list[Any]) -> list[float]:
        """The final per-image ``values`` of the images whose ground truth varies (as floats)."""
        return [float(v) for v, ok in zip(values, self.final.defined) if ok]


@dataclass
class CollapseOverSeeds:
    """One model over its seeds: shares of collapsed and scale-flagged images and the median std ratio, each with
    its interval (Student t over seeds; one seed: a bootstrap over its images), and whether it learned."""

    name: str
    seeds: list[int]
    collapsed_share: Estimate | None  # None: undefined (no image with varying ground truth) on a seed
    scale_flagged_share: Estimate | None
    median_std_ratio: Estimate | None
    learned: Learned | None
    # the prediction's cross-image std over the ground truth's: geometric mean with a Student t interval on log10
    # over seeds (probe.rules.IMAGE_RULE); one seed: its bootstrap over the images
    cross_std_ratio: Estimate | None
    image_share: Estimate | None  # share of the log prediction's variance that changes with the image
    gt_image_share: Estimate | None  # the same of the ground truth
    fades_at: list[str | None]  # per seed: where the image is lost for good (ImageFade.fades_at)

    @classmethod
    def of(cls, name: str, runs: list[ModelCollapse]) -> CollapseOverSeeds:
        one = runs[0]
        dependence = [r.final.image_dependence for r in runs]
        return cls(
            name=name,
            seeds=[r.seed for r in runs],
            collapsed_share=seeds_or_images(
                [r.final.collapsed_share for r in runs], one.defined(one.final.collapsed) or None
            ),
            scale_flagged_share=seeds_or_images(
                [r.final.scale_flagged_share for r in runs], one.defined(one.final.scale_flagged) or None
            ),
            median_std_ratio=seeds_or_images(
                [r.last.median_std_ratio for r in runs], one.defined(one.final.std_ratio) or None, np.median
            ),
            learned=learned_over_runs(runs),
            cross_std_ratio=(
                geometric_seed_estimate([d.cross_std_ratio for d in dependence], RATIO_FLOOR)
                if len(runs) > 1
                else one.cross_std_ratio
            ),
            image_share=seed_estimate([d.pred_image_share for d in dependence]),
            gt_image_share=seed_estimate([d.gt_image_share for d in dependence]),
            fades_at=[r.fade.fades_at if r.fade is not None else None for r in runs],
        )


class CollapseTracker(TrainingProbe):
    """Measures collapse on a fixed held-out batch before training and every ``every`` steps.

    The held-out batch is the first ``n_images`` items of the run's dataset, test
    split, at the run's input size.  Use inside
    ``train(cfg, hooks=[tracker])``; ``tracker.result()`` -> :class:`ModelCollapse`.
    """

    analysis = "collapse"

    def __init__(
        self,
        every: int = 5,
        out_dir: str | Path | None = None,
        n_images: int = 8,
        batch: Samples | None = None,
        *,
        flag: str = "--every",
    ) -> None:
        super().__init__(every, out_dir, flag=flag)
        self.n_images = n_images
        self.batch = batch
        # summaries of the earlier measurements and the newest in full: memory does not grow with
        # the steps by a prediction per measurement
        self.history: list[CollapseSummary] = []
        self.latest: Measurement | None = None
        self.fade: ImageFade | None = None  # measured once, at the end of the run
        self._last_step: int | None = None

    def on_start(self, model: nn.Module, config: Any) -> None:
        super().on_start(model, config)
        if self.batch is None:
            self.batch = held_out_samples(config, self.n_images).to(next(model.parameters()).device)
        self._record(model, 0)

    def _record(self, model: nn.Module, step: int) -> None:
        assert self.batch is not None
        if self.latest is not None:
            self.history.append(self.latest.summary())
        self.latest = measure(model, self.batch, step)

    def after_step(self, step: int, model: nn.Module, stats: Any) -> None:
        self._last_step = step
        if self.due(step):
            self._record(model, step)

    def on_end(self, model: nn.Module) -> None:
        if self._last_step is not None and self.latest is not None and self.latest.step != self._last_step:
            self._record(model, self._last_step)
        if self.batch is not None and self.latest is not None:
            share = self.latest.stats.image_dependence.pred_image_share
            self.fade = image_fade(model, self.batch.image, share, self.latest.step)

    @property
    def steps_trained(self) -> int:
        """Training steps this tracker saw (0 before the first)."""
        return self._last_step or 0

    def result(self, source: str = "") -> ModelCollapse:
        if self.batch is None or self.latest is None:
            raise ProbeError("collapse: the tracker never ran (was it passed to train()?)")
        return ModelCollapse.of_history(
            str(self.name),
            source or f"trained {self.steps_trained} steps",
            self.batch,
            list(self.history),
            self.latest,
            self.seed,
            self.held_out,
            self.fade,
        )

    def to_result(self) -> CollapseResult:
        return CollapseResult.of([self.result()], self.roles(), config={"every": self.every})


@TRAIN_PROBES.register("collapse", description="collapse statistics on a fixed held-out batch -> collapse.json")
def collapse_probe(every: int, out_dir: Path) -> CollapseTracker:
    return CollapseTracker(every=every, out_dir=out_dir, flag="--probe-every")


def held_out_samples(config: Any, count: int) -> Samples:
    """The first ``count`` test items of the run's dataset at the run's input size, without augmentation."""
    return load_first_samples(config.dataset, config.data_root, split="test", input_size=config.input_size, count=count)


# -- the analysis -------------------------------------------------------------------------------


@dataclass
class CollapseConfig(TrainingRuns):
    """``probe collapse``: train ``models`` for ``steps`` (measuring every ``every``) or measure ``checkpoint``."""

    checkpoint: Path | None = option(None, help="measure this trained run (folder or .safetensors) instead of training")
    steps: int = option(20, help="training steps per model")
    every: int = option(5, help="measure every K steps")
    n_images: int = option(8, flag="--images", help="held-out images measured (first N of the test split)")
    out: Path = out_option(Path("runs/collapse"))

    def validate(self) -> None:
        check_count("--every", self.every, MAX_ANALYSIS_STEPS)
        check_count("--images", self.n_images, MAX_HELD_OUT_IMAGES, "predicted together as one batch")
        super().validate()


RULE = (
    f"an image is collapsed when std(pred)/std(gt) over valid pixels < {COLLAPSE_BELOW}; "
    f"its scale is flagged when mean(pred)/mean(gt) is outside [{SCALE_BAND[0]}, {SCALE_BAND[1]}]; "
    f"a model ignores the image when the std of log pred across images per pixel (averaged) is below "
    f"{IGNORES_IMAGE_BELOW:g} of the ground truth's (interval over seeds or images)"
)


@register_result
@dataclass
class CollapseResult(Result):
    """Collapse histories per model and seed, and each model over its seeds.

    ``save(DIR)`` writes ``collapse.json`` and figures."""

    name: ClassVar[str] = "collapse"
    schema_version: ClassVar[int] = 4  # 4: held-out scores and learned verdicts with the mean depth map's fields
    models: list[ModelCollapse]  # every (model, seed) run
    summaries: list[CollapseOverSeeds]
    roles: Roles  # which models are under study and which are baselines
    config: dict[str, Any] = field(default_factory=dict)  # the analysis config, or {"every": K} from a probe
    rule: str = RULE

    @classmethod
    def of(cls, models: list[ModelCollapse], roles: Roles, config: dict[str, Any] | None = None) -> CollapseResult:
        summaries = [CollapseOverSeeds.of(name, runs) for name, runs in by_name(models).items()]
        return cls(models=models, summaries=summaries, roles=roles, config=config or {})

    def figures(self, out_dir: Path) -> list[Path]:
        return [
            histogram_figure(self.models, out_dir / "collapse_hist.png"),
            over_steps_figure(self.models, out_dir / "collapse_over_steps.png"),
            examples_figure(self.models, out_dir / "collapse_examples.png"),
            image_fade_figure(self.models, out_dir / "collapse_image_fade.png"),
        ]


def run(config: CollapseConfig) -> CollapseResult:
    """Measure a checkpoint, or train each model (same batches, same seed) and measure every K steps.

    >>> result = run(CollapseConfig(models=["packnet_b"], steps=20, every=5, width=0.125,
    ...                             input_size=(64, 96), device="cpu"))          # doctest: +SKIP
    >>> result.save("runs/collapse")                                            # doctest: +SKIP
    """
    config.validate()
    if config.checkpoint is not None:
        return measure_checkpoint(config)

    def one(cfg: CollapseConfig) -> CollapseResult:
        seed_everything(cfg.seed)
        trackers = train_with_hook(cfg, lambda: CollapseTracker(every=cfg.every, n_images=cfg.n_images), "collapse")
        models = [t.result(f"trained {t.steps_trained} steps from initialisation") for t in trackers]
        return CollapseResult.of(models, cfg.trained_roles(), encode(cfg))

    per_seed = runs_over_seeds(config, one)
    return CollapseResult.of([m for r in per_seed for m in r.models], config.trained_roles(), encode(config))


def measure_checkpoint(config: CollapseConfig) -> CollapseResult:
    """Measure the trained run ``config.checkpoint`` once (at its step) and score it on held-out images."""
    device = resolve_device(config.device)
    seed_everything(config.seed)
    assert config.checkpoint is not None
    found = resolve_checkpoint(config.checkpoint)
    model, run_config = load_checkpoint(found, device)
    run_cfg = TrainConfig.from_json(run_config)
    batch = held_out_samples(run_cfg, config.n_images).to(device)
    step = found.step
    if step is None:  # a .safetensors file not written by `probe train`: the history needs a step
        raise ProbeError(f"--checkpoint {config.checkpoint}: its weights record no training step (metadata 'step')")
    measurement = measure(model, batch, step=step)
    share = measurement.stats.image_dependence.pred_image_share
    measured = ModelCollapse.of(
        str(run_cfg.model),
        f"checkpoint {config.checkpoint} (step {step})",
        batch,
        [measurement],
        run_cfg.seed,
        score_model(model, run_cfg, config.eval_images),
        image_fade(model, batch.image, share, step),
    )
    roles = assign_roles([str(run_cfg.model)], options={str(run_cfg.model): run_cfg.model_options})
    return CollapseResult.of([measured], roles, encode(config))


# -- figures ------------------------------------------------------------------------------------


def histogram_figure(models: list[ModelCollapse], path: Path) -> Path:
    """Histogram of the final per-image std ratios, one colour per model; dashed line at the threshold."""
    import pandas as pd

    from probe.plotting import plt, save_figure, sns

    rows = [
        {"model": m.name, "std(pred) / std(gt)": r}
        for m in models
        for r, ok in zip(m.final.std_ratio, m.final.defined)
        if ok
    ]
    fig, ax = plt.subplots(figsize=(7, 4))
    if rows:
        frame = pd.DataFrame(rows)
        frame["log10 std ratio"] = np.log10(frame["std(pred) / std(gt)"].clip(lower=1e-6))
        sns.histplot(frame, x="log10 std ratio", hue="model", bins=20, element="step", ax=ax)
    ax.axvline(math.log10(COLLAPSE_BELOW), ls="--", c="grey")
    ax.set(
        xlabel="log10 of std(prediction) / std(ground truth) per image (dashed: collapse threshold)",
        ylabel="images",
        title="How much of each image's depth variation the prediction keeps",
    )
    return save_figure(fig, path)


def over_steps_figure(models: list[ModelCollapse], path: Path) -> Path:
    """Median std ratio, collapsed share, mean Pearson r and mean R^2 against the training step."""
    import pandas as pd

    from probe.plotting import plt, save_figure, sns

    frame = pd.DataFrame(
        [
            {"model": m.name, **asdict(row), "cross_std_ratio": row.image_dependence.cross_std_ratio}
            for m in models
            for row in m.history
        ]
    )
    panels = [
        ("median_std_ratio", "median std(pred) / std(gt)"),
        ("collapsed_share", "share of collapsed images"),
        ("mean_pearson", "mean Pearson r (pred, gt)"),
        ("median_r2", "median R² vs per-image mean"),
        ("cross_std_ratio", "cross-image std of log pred / of log gt"),
    ]
    fig, axes = plt.subplots(1, 5, figsize=(23, 4))
    for ax, (column, title) in zip(axes, panels):
        sns.lineplot(frame, x="step", y=column, hue="model", marker="o", ax=ax, legend=ax is axes[0])
        ax.set(xlabel="training step", ylabel="", title=title)
    axes[0].axhline(COLLAPSE_BELOW, ls="--", c="grey")
    axes[1].set_ylim(-0.05, 1.05)
    axes[2].set_ylim(-1.05, 1.05)
    axes[3].axhline(0.0, ls="--", c="grey")
    axes[4].axhline(IGNORES_IMAGE_BELOW, ls="--", c="grey")
    fig.subplots_adjust(wspace=0.25)
    return save_figure(fig, path)


def examples_figure(models: list[ModelCollapse], path: Path, per_model: int = 3) -> Path:
    """Image, ground truth and prediction (shared colour scale) for each model's most collapsed images.

    Models read back from JSON carry no images or predictions and are left out.
    """

    from probe.plotting import plt, save_figure

    rows, named = [], set()
    for m in models:
        if m.batch is None or m.final_pred is None or m.name in named:  # each model's first seed
            continue
        named.add(m.name)
        ratios = np.asarray(m.final.std_ratio, dtype=np.float64)
        order = [i for i in np.argsort(np.where(np.isfinite(ratios), ratios, np.inf)) if np.isfinite(ratios[i])]
        rows += [(m, m.batch, m.final_pred, int(i)) for i in order[:per_model]]
    fig, axes = plt.subplots(max(1, len(rows)), 3, figsize=(10, 2.6 * max(1, len(rows))), squeeze=False)
    for (m, batch, final_pred, i), row in zip(rows, axes):
        valid = batch.valid[i, 0].cpu().numpy()
        gt = np.where(valid, batch.depth[i, 0].cpu().numpy(), np.nan)
        pred = final_pred[i, 0].numpy()
        lo, hi = np.nanmin(gt), np.nanmax(gt)
        row[0].imshow(batch.image[i, :3].permute(1, 2, 0).cpu().clamp(0, 1).numpy())
        row[1].imshow(gt, cmap="magma_r", vmin=lo, vmax=hi)
        shown = row[2].imshow(pred, cmap="magma_r", vmin=lo, vmax=hi)
        row[0].set_title(f"{m.name}: {m.images[i]}", fontsize=8)
        row[1].set_title("ground truth (m)", fontsize=8)
        row[2].set_title(f"prediction: std ratio {m.final.std_ratio[i]:.3f}, r {m.final.pearson[i]:.2f}", fontsize=8)
        fig.colorbar(shown, ax=row[2], fraction=0.046)
    for ax in axes.flat:
        ax.axis("off")
    return save_figure(fig, path)


FADE_FLOOR = 1e-8  # shares are drawn on a log axis: an exact 0 (a fixed map) is drawn at this floor


def image_fade_frame(models: list[ModelCollapse]) -> Any:
    """One row per (model, seed, block) with a measured fade: its order, relative depth and image share."""
    import pandas as pd

    rows = [
        {
            "model": m.name,
            "seed": m.seed,
            "order": i,
            "relative depth": i / max(1, len(m.fade.layers) - 1),
            "block": layer.name,
            "image share": max(layer.image_share, FADE_FLOOR) if math.isfinite(layer.image_share) else math.nan,
        }
        for m in models
        if m.fade is not None
        for i, layer in enumerate(m.fade.layers)
    ]
    return pd.DataFrame(rows)


def draw_image_fade(ax: Any, models: list[ModelCollapse]) -> bool:
    """Image share against block order (0 = the input image, 1 = the prediction), one line per model, mean and
    range over seeds; each seed's fading block marked and named.  False when no model has a measured fade."""
    from probe.plotting import log_axis, sns

    frame = image_fade_frame(models)
    if frame.empty or not frame["image share"].notna().any():
        return False
    sns.lineplot(frame, x="relative depth", y="image share", hue="model", marker="o", errorbar=("pi", 100), ax=ax)
    log_axis(ax)
    thresholds = [m.fade.threshold for m in models if m.fade is not None and math.isfinite(m.fade.threshold)]
    if thresholds:
        ax.axhline(float(np.mean(thresholds)), ls="--", c="grey")
    named = set()
    for m in models:
        if m.fade is None or m.fade.fades_at is None or (m.name, m.fade.fades_at) in named:
            continue
        named.add((m.name, m.fade.fades_at))
        row = frame[(frame["model"] == m.name) & (frame["seed"] == m.seed) & (frame["block"] == m.fade.fades_at)]
        if not row.empty and math.isfinite(float(row["image share"].iloc[0])):
            x, y = float(row["relative depth"].iloc[0]), float(row["image share"].iloc[0])
            ax.annotate(f"{m.name}: {m.fade.fades_at}", (x, y), fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax.set(
        xlabel="block, input image (0) to prediction (1), in execution order",
        ylabel="share of variance that changes with the image",
        title=f"Where the image fades (dashed: {IGNORES_IMAGE_BELOW:g} x the input image's share)",
    )
    return True


def image_fade_figure(models: list[ModelCollapse], path: Path) -> Path:
    """:func:`draw_image_fade` as a PNG (an empty frame with a note when no fade was measured)."""
    from probe.plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(10, 4.5))
    if not draw_image_fade(ax, models):
        ax.text(0.5, 0.5, "no model's blocks were measured", ha="center", va="center", transform=ax.transAxes)
        ax.axis("off")
    return save_figure(fig, path)


# -- the report: the question this analysis answers, and its section --------------------------------------

COLLAPSE_QUESTION = "Does the prediction collapse to the mean?"
COLLAPSE_ANSWER_RULE = (
    f"Two kinds of collapse. Per image: {COLLAPSE_RULE} Across images: {IMAGE_RULE} Yes when a model under study "
    "is 'collapsed' (judged only for models shown to learn) or 'ignores the image'; no when every judged model "
    "under study is 'not collapsed' or 'scale' and 'depends on the image'; inconclusive otherwise. The baselines "
    "are shown for reference. Where the image fades: the first block from which every later block, the prediction "
    f"included, keeps less than {IGNORES_IMAGE_BELOW:g} of the input image's share of activation variance that "
    "changes with the image (a dip that a skip connection recovers from is no fade)."
)


def collapse_question(roles: Roles) -> str:
    """The seed's wording for its own comparison; else the question names the models under study."""
    if roles.seed_comparison:
        return COLLAPSE_QUESTION
    if roles.plural(UNDER_STUDY):
        return f"Do {roles.phrase(UNDER_STUDY)}'s predictions collapse to the mean?"
    return f"Does {roles.phrase(UNDER_STUDY)}'s prediction collapse to the mean?"


def collapse_rule_text() -> str:
    """The rule as the report prints it: both kinds, the controls of each, the learned gate."""
    return (
        f"{COLLAPSE_ANSWER_RULE} Controls (tests/test_controls.py): per image, {CONTROLS['collapse']}; across "
        f"images, {CONTROLS['image']}. {GATE_RULE} (per-image kind)."
    )


def fades_text(fades_at: list[str | None], seeds: list[int]) -> str:
    """``"conv1 (2 of 2 seeds)"``, ``"conv1 (seed 0), nowhere (seed 1)"``, ``"nowhere"``, or ``"n/a"``.

    >>> fades_text(["conv1", "conv1"], [0, 1]), fades_text(["conv1", None], [3, 4]), fades_text([None], [0])
    ('conv1 (2 of 2 seeds)', 'conv1 (seed 3), nowhere (seed 4)', 'nowhere')
    """
    named = [f for f in fades_at if f is not None]
    if not fades_at:
        return "n/a"
    if not named:
        return "nowhere"
    if len(named) == len(fades_at) and len(set(named)) == 1:
        return f"{named[0]} ({len(named)} of {len(fades_at)} seeds)"
    return ", ".join(f"{f or 'nowhere'} (seed {s})" for f, s in zip(fades_at, seeds))


def _mean(estimate: Estimate | None) -> float | None:
    return estimate.mean if estimate is not None else None


def _image_phrase(name: str, call: ImageCall, s: CollapseOverSeeds) -> str:
    where = fades_text(s.fades_at, s.seeds)
    if call.verdict == "ignores the image" and where not in ("n/a", "nowhere"):
        return f"{name} {call.sentence}; the image fades from its activations at {where}"
    return f"{name} {call.sentence}"


@QUESTIONS.register("collapse", description=COLLAPSE_QUESTION, order=20)
def prediction_collapses(results: Results) -> Answer | None:
    doc = results.first(CollapseResult)
    if doc is None or not doc.summaries:
        return None
    roles, question = doc.roles, collapse_question(doc.roles)
    rule = collapse_rule_text()
    judged, excluded = gate(doc.summaries, roles)
    calls = {s.name: collapse_call(s.collapsed_share, s.scale_flagged_share) for s in judged}
    studied = [s for s in doc.summaries if roles.under_study(s.name)]
    images = {s.name: image_call(s.cross_std_ratio) for s in studied}
    evidence = [
        {
            **model_columns(s, roles),
            "collapsed share": shown(s.collapsed_share),
            "scale-flagged share": shown(s.scale_flagged_share),
            "median std ratio": shown(s.median_std_ratio),
            "verdict": verdict_cell(s, collapse_call(s.collapsed_share, s.scale_flagged_share).verdict),
            "cross-image std / gt's": interval_text(s.cross_std_ratio),
            "image share of variance (gt)": f"{shown(s.image_share)} ({shown(s.gt_image_share)})",
            "image fades at": fades_text(s.fades_at, s.seeds),
            "image": image_call(s.cross_std_ratio).verdict,
        }
        for s in doc.summaries
    ]
    left_out = excluded_sentence(excluded)
    if not studied:
        sentence = "No model under study was measured, so the question cannot be answered from these runs."
        return Answer(question, "inconclusive", sentence, rule, evidence)
    ignoring = [name for name, c in images.items() if c.verdict == "ignores the image"]
    image_parts = "; ".join(_image_phrase(roles.display(s.name), images[s.name], s) for s in studied)
    collapse_parts = "; ".join(f"{roles.display(name)} {c.sentence}" for name, c in calls.items())
    found = {c.verdict for c in calls.values()}
    per_image_no = bool(calls) and found <= {"not collapsed", "scale"}
    if "collapsed" in found or ignoring:
        verdict, lead = "yes", "Yes"
    elif per_image_no and all(images[n].verdict == "depends on the image" for n in calls):
        verdict, lead = "no", "No"
    else:
        # "no" needs every judged model's image-dependence number: a missing one never counts as depending on it
        missing = undefined_inputs(
            {f"{roles.display(s.name)}'s cross-image std ratio": _mean(s.cross_std_ratio) for s in judged}
        )
        if per_image_no and missing:
            return inconclusive(question, rule, evidence, missing)
        verdict, lead = "inconclusive", "Inconclusive"
    per_image = (
        collapse_parts
        if calls
        else "no per-image verdict, because no model under study was shown to learn and an untrained prediction "
        "says nothing about a trained one"
    )
    if ignoring and "collapsed" not in found:  # the kind that decided comes first
        sentence = f"{lead}: across images, {image_parts}. Per image: {per_image}.{left_out}"
    else:
        sentence = f"{lead}: {per_image}. Across images: {image_parts}.{left_out}"
    return Answer(question, verdict, sentence, rule, evidence)


@SECTIONS.register("collapse", description=COLLAPSE_QUESTION, needs=(CollapseResult,), order=40)
def collapse_section(results: Results) -> Section | None:
    import pandas as pd

    from probe.plotting import IntervalPanel, interval_figure, plt, sns

    doc = results.first(CollapseResult)
    rows = [
        {
            "model": m.name,
            "seed": m.seed,
            "step": h.step,
            "median std ratio": h.median_std_ratio,
            "collapsed share": h.collapsed_share,
            "cross-image std ratio": h.image_dependence.cross_std_ratio,
        }
        for m in (doc.models if doc else [])
        for h in m.history
    ]
    extra: list[Block] = []
    if doc is not None and doc.summaries:
        fig = interval_figure(
            [
                IntervalPanel(
                    [(s.name, s.name, s.collapsed_share) for s in doc.summaries],
                    "share of collapsed images (dashed: the rule's 0.5)",
                    0.5,
                ),
                IntervalPanel(
                    [(s.name, s.name, s.median_std_ratio) for s in doc.summaries],
                    "median std(pred) / std(gt) (dashed: collapse threshold)",
                    COLLAPSE_BELOW,
                    log=True,
                ),
            ]
        )
        extra.append(
            figure_from_matplotlib(
                fig, "Collapse at the last measurement: mean and 95% interval per model (x: each seed)", "intervals"
            )
        )
    if rows:
        df = pd.DataFrame(rows)
        fig, axes = plt.subplots(1, 3, figsize=(18, 4))
        sns.lineplot(df, x="step", y="median std ratio", hue="model", marker="o", errorbar=("pi", 100), ax=axes[0])
        axes[0].axhline(COLLAPSE_BELOW, ls="--", c="grey")
        axes[0].set(xlabel="training step", ylabel="prediction std / ground-truth std")
        sns.lineplot(df, x="step", y="collapsed share", hue="model", marker="o", errorbar=("pi", 100), ax=axes[1])
        axes[1].set(xlabel="training step", ylabel="share of collapsed images", ylim=(-0.05, 1.05))
        sns.lineplot(df, x="step", y="cross-image std ratio", hue="model", marker="o", errorbar=("pi", 100), ax=axes[2])
        axes[2].axhline(IGNORES_IMAGE_BELOW, ls="--", c="grey")
        axes[2].set(xlabel="training step", ylabel="cross-image std of log pred / of log gt")
        extra.append(
            figure_from_matplotlib(
                fig, "Collapse statistics over training: mean over seeds, band = range over seeds", "steps"
            )
        )
    if doc is not None and any(m.fade is not None for m in doc.models):
        fig, ax = plt.subplots(figsize=(10, 4.5))
        if draw_image_fade(ax, doc.models):
            extra.append(
                figure_from_matplotlib(
                    fig,
                    "Where the image fades: each block's share of activation variance that changes with the image, "
                    "input image to prediction; mean over seeds, band = range over seeds",
                    "fade",
                )
            )
        else:
            plt.close(fig)
        extra.append(Table([_fade_row(m) for m in doc.models if m.fade is not None], "Where the image fades, per seed"))
    # collapse_image_fade.png is drawn above from the JSON; the analysis' other figures are embedded as written
    extra += embedded_figures(results, CollapseResult, "collapse_[!i]*.png", "Collapse analysis figure")
    return answer_section("collapse", COLLAPSE_QUESTION, results, extra)


def _fade_row(m: ModelCollapse) -> dict[str, Any]:
    assert m.fade is not None
    layers = m.fade.layers
    at = next((layer for layer in layers if layer.name == m.fade.fades_at), None)
    dependence = m.final.image_dependence
    return {
        "model": m.name,
        "seed": m.seed,
        "step": m.fade.step,
        "blocks": max(0, len(layers) - 2),
        "input image share": fmt(layers[0].image_share) if layers else "n/a",
        "fades at": m.fade.fades_at or "nowhere",
        "share there": fmt(at.image_share) if at is not None else "n/a",
        "prediction share (gt)": f"{fmt(dependence.pred_image_share)} ({fmt(dependence.gt_image_share)})",
        "cross-image std of log depth, pred / gt": f"{fmt(dependence.pred_cross_std)} / {fmt(dependence.gt_cross_std)}",
        "within-image std, pred / gt": f"{fmt(dependence.pred_within_std)} / {fmt(dependence.gt_within_std)}",
    }
