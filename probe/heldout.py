"""One held-out score computed identically for every model, and the constant predictor it must beat.

Training losses of different models do not compare (PackNet's multi-scale loss
charges scales DenseDepth does not have; a model's training loss is measured on
batches it is fitting).  :func:`held_out_score` scores any model the same way
on held-out images:

1. predict depth in metres at the ground truth's resolution (eval mode, the
   finest output), each prediction clipped to the dataset protocol's range
   ``[min_depth, max_depth]`` (:func:`probe.depth_space.clip_depth`);
2. the pixels scored are the valid ones whose ground truth lies in that range;
3. ``loss``: the DenseDepth loss (SSIM + edges + 0.1 L1 on ``max_depth / depth``,
   the protocol's SSIM range) of that prediction, per image, then averaged;
4. ``metrics``: abs_rel ... delta3 pooled over pixels, and averaged over images;
5. ``per_image_abs_rel_median_scaled``: abs_rel after scaling each prediction by
   ``median(gt) / median(pred)`` (and clipping again): structure without scale.

The same numbers are computed for the **per-image-median constant predictor**,
which fills each image with the median of its own valid ground truth.  It knows
every image's scale and nothing of its structure, so a model that does not beat
it clearly has not learned depth from the image.

Beating it does not prove the converse where the scenes share a layout (a street's
ground plane, a room's floor at the bottom): a network can learn that average layout
and never read the image.  Given ``mean_map`` (:func:`training_mean_map`: the training
split's per-pixel geometric mean depth, Eigen et al. 2014's "Mean" baseline), the same
numbers are computed for that image-blind map too, and :data:`IMAGE_RULE` compares the
model's median-scaled abs_rel with the map's (``image_ratio``, ``reads_image``).

Rule (:data:`LEARNED_RULE`): the ratio ``r = mean_i abs_rel(model, i) / mean_i
abs_rel(constant, i)`` over the held-out images, with a paired bootstrap
interval over images; *learned* when the whole interval lies below
:data:`LEARNED_FRACTION`, *not learned* when it lies above, otherwise
*inconclusive*.  The constant predictor knows each image's scale, which is
the hard part of monocular depth; the *scale-matched* ratio gives the model the
same knowledge (its abs_rel after per-image median scaling, as self-supervised
evaluations such as PackNet's do, over the constant's), so it measures depth
structure alone; :func:`structure_verdict` applies the same threshold to it.  Over several seeds the
same rule applies to the per-seed ratios with a Student t interval (:func:`learned_over_seeds`).

>>> from probe.data import get_dataset                                    # doctest: +SKIP
>>> test = get_dataset("synthetic", split="test", input_size=(64, 96), length=32)  # doctest: +SKIP
>>> score = held_out_score(model, test)                                   # doctest: +SKIP
>>> score.learned.verdict, score.ratio.describe()                         # doctest: +SKIP
('learned', '0.52 ± 0.04 (paired bootstrap_95 over 32 images, 2000 resamples)')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from probe.depth_space import clip_depth, depth_range
from probe.errors import ProbeError
from probe.losses import build_loss, dataset_loss_options
from probe.mean_map import DEFAULT_MEAN_MAP_IMAGES, MeanDepthMap, mean_depth_map
from probe.metrics import MetricAccumulator, median_ratios
from probe.stats import DEFAULT_RESAMPLES, Estimate, Verdict, decide, paired_bootstrap_ratio, seed_interval

if TYPE_CHECKING:
    from probe.training import TrainConfig

__all__ = [
    "GATE_RULE",
    "IMAGE_FRACTION",
    "IMAGE_RULE",
    "LEARNED_FRACTION",
    "LEARNED_RULE",
    "HeldOutScore",
    "HeldOutSummary",
    "Scores",
    "Learned",
    "PredictorScore",
    "constant_median_prediction",
    "held_out_dataset",
    "held_out_score",
    "image_verdict",
    "learned_of",
    "learned_over_seeds",
    "learned_verdict",
    "run_mean_map",
    "score_predictions",
    "structure_verdict",
    "training_mean_map",
]

#: A model has learned when its held-out abs_rel is below this fraction of the constant predictor's,
#: interval included: a 20% cut of the error of a flat map at each image's true scale.  Measured on 64
#: synthetic test images at 64x96 (bench/standard_budget.py --learn, issue 10): the constant's abs_rel is
#: 0.222 and a dataset-wide constant's 0.567 (2.55x); after 1500 Adam steps (3e-3, batch 8, width 1/16)
#: DenseDepth reaches 1.4-2.2x raw and 0.75-0.80x scale-matched, the PackNet variants 2.1-2.8x and
#: 0.92-0.98x, a dead head 22x and 1.0x.  The bootstrap half-width over 64 images is about 0.08 on the
#: scale-matched ratio, so one run counts as learned from about 0.72.
LEARNED_FRACTION = 0.8
LEARNED_RULE = (
    "learned when the held-out abs_rel of the model, as a fraction of the per-image-median constant "
    f"predictor's on the same images (ratio of the per-image means), lies below {LEARNED_FRACTION:g} with its "
    "whole 95% interval (a paired bootstrap over images for one run, Student t over seeds for several); "
    f"not learned when the whole interval lies above {LEARNED_FRACTION:g}; inconclusive otherwise"
)
#: A model reads the image when its median-scaled abs_rel is below this fraction of the mean depth map's.  Other
#: image-blind maps score within 2 % of the 512-image map (measured on 64 test images at 64x96, rooms and streets:
#: the map resampled through a model's output path 0.999-1.000, blurred 5x5 1.002-1.003, from 64 other images
#: 0.997-1.012, from 2,048 images 0.993-1.000, whole 95 % intervals 0.984-1.021), so a margin of 5 % keeps them
#: out; a depth with every image's structure scores 0.
IMAGE_FRACTION = 0.95
IMAGE_RULE = (
    "reads the image when the model's held-out abs_rel after per-image median scaling, as a fraction of the same "
    "for the training split's mean depth map (every image given the per-pixel geometric mean depth of the first "
    f"{DEFAULT_MEAN_MAP_IMAGES} training images: a predictor that never reads the image), lies below "
    f"{IMAGE_FRACTION:g} with its whole 95% interval (a paired bootstrap over images for one run, Student t over "
    f"seeds for several); no better than the mean map when the whole interval lies above {IMAGE_FRACTION:g}; "
    "inconclusive otherwise. Other image-blind maps (resampled, blurred, from other or more training images) score "
    "within 2% of it. Where the scenes share no layout the map is nearly the constant predictor; where they do (a "
    "ground plane) it is far better, and beating the constant proves little"
)
#: The loss every model is scored with on held-out images (the seed's objective).
SCORE_LOSS = "densedepth"
#: When a model's numbers may carry a verdict (every question's rule applies it first).
GATE_RULE = (
    "A verdict is drawn only from models that learned: by the learned rule on the raw held-out abs_rel ratio, "
    "or on the scale-matched ratio (the model's abs_rel after per-image median scaling over the constant's, "
    "i.e. depth structure learned even where the scale is not); a model that did not learn, or whose "
    "learning is inconclusive or was not measured, is named and left out"
)


@dataclass
class PredictorScore:
    """One predictor on the held-out images: mean loss, pooled and per-image-mean metrics, per-image values."""

    loss: float
    loss_terms: dict[str, float]
    metrics: dict[str, float]
    metrics_image_mean: dict[str, float]
    per_image_abs_rel: list[float]
    per_image_loss: list[float]
    per_image_abs_rel_median_scaled: list[float]

    def to_json(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "loss_terms": self.loss_terms,
            "metrics": self.metrics,
            "metrics_image_mean": self.metrics_image_mean,
            "per_image_abs_rel": self.per_image_abs_rel,
            "per_image_loss": self.per_image_loss,
            "per_image_abs_rel_median_scaled": self.per_image_abs_rel_median_scaled,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PredictorScore":
        return cls(**data)


@dataclass
class HeldOutScore:
    """A model and the per-image-median constant predictor scored identically on the same held-out images."""

    dataset: str
    split: str
    n_images: int
    depth_range: tuple[float, float]
    model: PredictorScore
    constant: PredictorScore
    ratio: Estimate
    learned: Verdict
    scale_matched_ratio: Estimate
    structure_learned: Verdict
    method: str = field(default="")
    # the training split's mean depth map on the same images (None: not given), its images, and IMAGE_RULE
    mean_map: PredictorScore | None = None
    mean_map_images: int = 0
    image_ratio: Estimate | None = None
    reads_image: Verdict | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n_images": self.n_images,
            "depth_range": list(self.depth_range),
            "method": self.method,
            "loss": SCORE_LOSS,
            "model": self.model.to_json(),
            "constant_median": self.constant.to_json(),
            "abs_rel_ratio": self.ratio.to_json(),
            "learned": self.learned.to_json(),
            "rule": LEARNED_RULE,
            "scale_matched_abs_rel_ratio": self.scale_matched_ratio.to_json(),
            "structure_learned": self.structure_learned.to_json(),
            "mean_map": None if self.mean_map is None else self.mean_map.to_json(),
            "mean_map_images": self.mean_map_images,
            "image_ratio": None if self.image_ratio is None else self.image_ratio.to_json(),
            "reads_image": None if self.reads_image is None else self.reads_image.to_json(),
            "image_rule": IMAGE_RULE,
        }

    def summary(self) -> HeldOutSummary:
        """The part every result file keeps (per-image lists of the scores left out; the ratios keep theirs)."""
        return HeldOutSummary(
            n_images=self.n_images,
            loss=self.model.loss,
            abs_rel=self.model.metrics_image_mean.get("abs_rel", math.nan),
            delta1=self.model.metrics_image_mean.get("delta1", math.nan),
            constant_abs_rel=self.constant.metrics_image_mean.get("abs_rel", math.nan),
            ratio=self.ratio,
            scale_matched_ratio=self.scale_matched_ratio,
            learned=self.learned,
            structure_learned=self.structure_learned,
            per_image_loss=list(self.model.per_image_loss),
            per_image_abs_rel=list(self.model.per_image_abs_rel),
            mean_map_abs_rel=(None if self.mean_map is None else _mean(self.mean_map.per_image_abs_rel_median_scaled)),
            image_ratio=self.image_ratio,
            reads_image=self.reads_image,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "HeldOutScore":
        return cls(
            dataset=data["dataset"],
            split=data["split"],
            n_images=data["n_images"],
            depth_range=tuple(data["depth_range"]),
            model=PredictorScore.from_json(data["model"]),
            constant=PredictorScore.from_json(data["constant_median"]),
            ratio=Estimate.from_json(data["abs_rel_ratio"]),
            learned=Verdict.from_json(data["learned"]),
            scale_matched_ratio=Estimate.from_json(data["scale_matched_abs_rel_ratio"]),
            structure_learned=Verdict.from_json(data["structure_learned"]),
            method=data.get("method", ""),
            mean_map=None if data.get("mean_map") is None else PredictorScore.from_json(data["mean_map"]),
            mean_map_images=int(data.get("mean_map_images", 0)),
            image_ratio=None if data.get("image_ratio") is None else Estimate.from_json(data["image_ratio"]),
            reads_image=None if data.get("reads_image") is None else Verdict.from_json(data["reads_image"]),
        )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass
class HeldOutSummary:
    """What a result file keeps of one run's :class:`HeldOutScore`: the scores, both ratios and their verdicts."""

    n_images: int
    loss: float  # the DenseDepth loss on clipped metres, mean over images
    abs_rel: float  # mean over images
    delta1: float  # mean over images
    constant_abs_rel: float  # the per-image-median constant predictor's, same images
    ratio: Estimate  # abs_rel ratio (model / constant), paired bootstrap over images
    scale_matched_ratio: Estimate
    learned: Verdict
    structure_learned: Verdict
    per_image_loss: list[float]  # for an interval over images when there is one seed
    per_image_abs_rel: list[float]
    # the training split's mean depth map, median-scaled abs_rel (mean over images); the model's median-scaled
    # abs_rel over it (paired bootstrap) and IMAGE_RULE's verdict; None where no mean map was scored
    mean_map_abs_rel: float | None = None
    image_ratio: Estimate | None = None
    reads_image: Verdict | None = None


@dataclass
class Learned:
    """Whether one model learned, over its seeds: both ratios with their intervals, and the two verdicts.

    One seed: that run's ratios and verdicts (paired bootstrap over its images); several: the per-seed ratios
    with a Student t interval over seeds (:func:`learned_over_seeds`).
    """

    seeds: list[int]
    ratio: Estimate
    scale_matched_ratio: Estimate
    learned: Verdict
    structure_learned: Verdict
    # IMAGE_RULE over the same seeds (None: a seed had no mean map scored)
    image_ratio: Estimate | None = None
    reads_image: Verdict | None = None

    @property
    def usable(self) -> bool:
        """:data:`GATE_RULE`: learned on the raw ratio, or depth structure learned on the scale-matched one."""
        return self.learned.verdict == "learned" or self.structure_learned.verdict == "structure learned"

    @property
    def status(self) -> str:
        """``learned``, ``structure only`` (scale not learned), ``not learned`` or ``inconclusive``."""
        if self.learned.verdict == "learned":
            return "learned"
        if self.structure_learned.verdict == "structure learned":
            return "structure only"
        if self.learned.verdict == "not learned" and self.structure_learned.verdict == "no structure learned":
            return "not learned"
        return "inconclusive"

    def describe(self) -> str:
        """``"did not learn: held-out abs_rel 1.9 ± 0.3 x the constant predictor's, scale-matched 0.97 ± 0.02 x"``."""
        phrase = {
            "learned": "learned",
            "structure only": "learned depth structure but not scale",
            "not learned": "did not learn",
        }.get(self.status, "was not shown to learn")
        text = (
            f"{phrase}: held-out abs_rel {_shown(self.ratio)} x the constant predictor's, "
            f"scale-matched {_shown(self.scale_matched_ratio)} x"
        )
        if self.image_ratio is not None and self.reads_image is not None:
            text += f"; median-scaled {_shown(self.image_ratio)} x the mean depth map's ({self.reads_image.verdict})"
        return text


def _shown(estimate: Estimate) -> str:
    if estimate.half_width is None:
        return f"{estimate.mean:.3g} (no interval)"
    return f"{estimate.mean:.3g} ± {estimate.half_width:.2g}"


def learned_of(seeds: Sequence[int], runs: Sequence[HeldOutSummary]) -> Learned:
    """:class:`Learned` from one :class:`HeldOutSummary` per seed (the same order as ``seeds``)."""
    if not runs or len(runs) != len(seeds):
        raise ProbeError(f"learned rule: expected one held-out score per seed, got {len(runs)} for {len(seeds)}")
    if len(runs) == 1:
        run = runs[0]
        return Learned(
            list(seeds),
            run.ratio,
            run.scale_matched_ratio,
            run.learned,
            run.structure_learned,
            run.image_ratio,
            run.reads_image,
        )
    learned = learned_over_seeds([r.ratio.mean for r in runs])
    assert learned.estimate is not None  # seed_interval of finite ratios
    scaled = seed_interval([r.scale_matched_ratio.mean for r in runs])
    image_ratios = [r.image_ratio.mean for r in runs if r.image_ratio is not None]
    image = seed_interval(image_ratios) if len(image_ratios) == len(runs) else None
    return Learned(
        list(seeds),
        learned.estimate,
        scaled,
        learned,
        structure_verdict(scaled),
        image,
        None if image is None else image_verdict(image),
    )


def held_out_dataset(name: str, root: Any, input_size: tuple[int, int] | None, count: int | None) -> Dataset:
    """The held-out images a trained run is scored on: the first ``count`` items of the test split (all: None).

    Generated datasets (no ``--data-root``) render exactly ``count`` items; a dataset on disk is cut to them.
    """
    from probe.data import dataset_info, get_dataset

    generated = not dataset_info(name).needs_root
    extra = {"length": count} if generated and count is not None else {}
    dataset = get_dataset(name, root, split="test", input_size=input_size, **extra)
    if count is None or generated or count >= len(dataset):
        return dataset
    return _FirstItems(dataset, count)


def training_mean_map(
    name: str,
    root: Any,
    input_size: tuple[int, int] | None,
    *,
    options: dict[str, Any] | None = None,
    length: int | None = None,
    images: int = DEFAULT_MEAN_MAP_IMAGES,
) -> MeanDepthMap:
    """The mean depth map (:mod:`probe.mean_map`) of the first ``images`` items of a run's training split.

    ``options`` are the run's dataset options (with its ``seed`` where generated items depend on it) and ``length``
    its training split's length; augmentation is off.  A generated split renders only the items averaged.
    """
    from probe.data import dataset_info, get_dataset

    extra: dict[str, Any] = {**(options or {}), "augment": False}
    if not dataset_info(name).needs_root:
        extra["length"] = min(images, length) if length is not None else images
    dataset = get_dataset(name, root, split="train", input_size=input_size, **extra)
    return mean_depth_map(dataset, images)


def run_mean_map(config: TrainConfig) -> MeanDepthMap:
    """:func:`training_mean_map` of the training split one run of ``config`` trained on (its options and seed)."""
    return training_mean_map(
        config.dataset,
        config.data_root,
        config.input_size,
        options={**config.dataset_options, "seed": config.seed},
        length=config.dataset_length,
    )


class _FirstItems(Dataset):
    """The first ``count`` items of a dataset, keeping its ``info`` and ``split``."""

    def __init__(self, dataset: Any, count: int) -> None:
        self.dataset, self.count = dataset, count
        self.info, self.split = dataset.info, getattr(dataset, "split", "test")

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.dataset[index]


def constant_median_prediction(depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each image filled with the median of its own ground truth over ``mask``: ``[B,1,h,w]`` -> ``[B,1,h,w]``.

    An image without a scored pixel gets 1 m (it is never scored).  The median is NumPy's (mean of the
    middle two).
    """
    out = torch.ones_like(depth)
    for i in range(depth.shape[0]):
        values = depth[i][mask[i]]
        if values.numel():
            out[i] = torch.quantile(values.double(), 0.5).to(depth.dtype)
    return out


class _Scorer:
    """Accumulates one predictor's per-image loss and metrics over batches."""

    def __init__(self, loss_fn: Any, max_depth: float) -> None:
        self.loss_fn, self.max_depth = loss_fn, max_depth
        self.metrics = MetricAccumulator()
        self.losses: list[float] = []
        self.terms: dict[str, float] = {}
        self.abs_rel: list[float] = []
        self.abs_rel_scaled: list[float] = []

    def update(self, pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, bounds: tuple[float, float]) -> None:
        """``pred`` metres (already clipped), ``gt``, ``mask`` ``[B,1,h,w]``; images without scored pixels skipped."""
        per_image = self.metrics.update(pred, gt, mask)
        scaled = clip_depth(
            pred * median_ratios(pred, gt, mask).nan_to_num(1.0).to(pred.dtype).view(-1, 1, 1, 1), bounds
        )
        for i, m in enumerate(per_image):
            if m is None:
                continue
            self.abs_rel.append(m["abs_rel"])
            self.abs_rel_scaled.append(float(((scaled[i] - gt[i]).abs() / gt[i])[mask[i]].double().mean()))
            out = self.loss_fn(
                self.max_depth / pred[i : i + 1],
                gt[i : i + 1],
                mask[i : i + 1],
                output_space="depthnorm",
                max_depth=self.max_depth,
            )
            self.losses.append(float(out.total))
            for name, value in out.terms.items():
                self.terms[name] = self.terms.get(name, 0.0) + float(value)

    def result(self) -> PredictorScore:
        n = len(self.losses)
        return PredictorScore(
            loss=sum(self.losses) / n,
            loss_terms={k: v / n for k, v in self.terms.items()},
            metrics=self.metrics.pooled(),
            metrics_image_mean=self.metrics.image_mean(),
            per_image_abs_rel=list(self.abs_rel),
            per_image_loss=list(self.losses),
            per_image_abs_rel_median_scaled=list(self.abs_rel_scaled),
        )


def learned_verdict(
    model_abs_rel: Sequence[float],
    constant_abs_rel: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[Estimate, Verdict]:
    """:data:`LEARNED_RULE` for one run: per-image abs_rel of the model and of the constant predictor.

    >>> ratio, verdict = learned_verdict([0.1, 0.12, 0.09, 0.11], [0.3, 0.28, 0.33, 0.31])
    >>> verdict.verdict, round(ratio.mean, 3)
    ('learned', 0.344)
    """
    ratio = paired_bootstrap_ratio(model_abs_rel, constant_abs_rel, resamples=resamples, seed=seed)
    return ratio, decide(ratio, threshold=LEARNED_FRACTION, below="learned", above="not learned")


def structure_verdict(ratio: Estimate) -> Verdict:
    """The same threshold on the scale-matched ratio: the model's depth structure beats a flat map at equal scale."""
    return decide(ratio, threshold=LEARNED_FRACTION, below="structure learned", above="no structure learned")


def image_verdict(ratio: Estimate) -> Verdict:
    """:data:`IMAGE_RULE` on the ratio of median-scaled abs_rel, model over the training split's mean depth map."""
    return decide(ratio, threshold=IMAGE_FRACTION, below="reads the image", above="no better than the mean map")


def learned_over_seeds(ratios: Sequence[float]) -> Verdict:
    """:data:`LEARNED_RULE` over seeds: each seed's abs_rel ratio (model / constant), Student t over seeds.

    >>> learned_over_seeds([0.52, 0.55, 0.5]).verdict, learned_over_seeds([0.7, 0.95, 0.6]).verdict
    ('learned', 'inconclusive')
    """
    return decide(seed_interval(ratios), threshold=LEARNED_FRACTION, below="learned", above="not learned")


class Scores(NamedTuple):
    """What :func:`score_predictions` returns: the model, the constant predictor and the mean map (None: not given)."""

    model: PredictorScore
    constant: PredictorScore
    mean_map: PredictorScore | None = None


def score_predictions(
    batches: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    *,
    bounds: tuple[float, float],
    loss_fn: Any,
    max_depth: float,
    mean_map: MeanDepthMap | None = None,
) -> Scores:
    """Scores of ``(pred metres, gt, valid)`` batches ``[B,1,h,w]``: the pure part of the score.

    ``pred`` is clipped to ``bounds`` here; scored pixels are valid with ``bounds[0] <= gt <= bounds[1]``.  The
    constant predictor and, when given, ``mean_map`` (resized to each ground truth) are scored on the same pixels.
    """
    model, constant = _Scorer(loss_fn, max_depth), _Scorer(loss_fn, max_depth)
    blind = _Scorer(loss_fn, max_depth) if mean_map is not None else None
    low, high = bounds
    for pred, gt, valid in batches:
        mask = valid.bool() & (gt >= low) & (gt <= high)
        model.update(clip_depth(pred, bounds), gt, mask, bounds)
        constant.update(constant_median_prediction(gt, mask), gt, mask, bounds)
        if blind is not None and mean_map is not None:
            layout = mean_map.log_at((gt.shape[-2], gt.shape[-1])).exp().to(gt.dtype).expand_as(gt)
            blind.update(clip_depth(layout, bounds), gt, mask, bounds)
    if not model.losses:
        raise ProbeError("held-out score: no image has a valid ground-truth pixel inside the protocol's range")
    return Scores(model.result(), constant.result(), None if blind is None else blind.result())


@torch.no_grad()
def held_out_score(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    mean_map: MeanDepthMap | None = None,
) -> HeldOutScore:
    """Score ``model`` and the per-image-median constant predictor on every item of ``dataset`` (see module doc).

    ``dataset`` is a :mod:`probe.data` dataset (items with ``image``, ``depth``, ``valid``; ``.info``).  The model
    is put in eval mode.  ``resamples``/``seed`` set the bootstrap of the learned verdict.  ``mean_map`` (the
    training split's, :func:`training_mean_map`) is scored alongside and judged by :data:`IMAGE_RULE`.
    """
    from probe.evaluate import predict_depth

    info = getattr(dataset, "info", None)
    if info is None:
        raise ProbeError("held-out score: the dataset has no .info (protocol range unknown)")
    bounds = depth_range(info)
    loss_fn = build_loss(SCORE_LOSS, **dataset_loss_options(SCORE_LOSS, info))
    dev = torch.device(device)
    model = model.to(dev).eval()

    def batches() -> Any:
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            gt, valid = batch["depth"].float(), batch["valid"].bool()
            pred = predict_depth(
                model, batch["image"].to(dev), max_depth=info.max_depth, size=tuple(gt.shape[-2:]), clip=bounds
            ).cpu()
            yield pred, gt, valid

    scored, constant, blind = score_predictions(
        batches(), bounds=bounds, loss_fn=loss_fn, max_depth=info.max_depth, mean_map=mean_map
    )
    ratio, verdict = learned_verdict(
        scored.per_image_abs_rel, constant.per_image_abs_rel, resamples=resamples, seed=seed
    )
    scale_matched = paired_bootstrap_ratio(
        scored.per_image_abs_rel_median_scaled, constant.per_image_abs_rel, resamples=resamples, seed=seed
    )
    image = None
    if blind is not None:
        image = paired_bootstrap_ratio(
            scored.per_image_abs_rel_median_scaled,
            blind.per_image_abs_rel_median_scaled,
            resamples=resamples,
            seed=seed,
        )
    return HeldOutScore(
        dataset=info.name,
        split=getattr(dataset, "split", "unknown"),
        n_images=len(scored.per_image_loss),
        depth_range=bounds,
        model=scored,
        constant=constant,
        ratio=ratio,
        learned=verdict,
        scale_matched_ratio=scale_matched,
        structure_learned=structure_verdict(scale_matched),
        mean_map=blind,
        mean_map_images=0 if mean_map is None else mean_map.images,
        image_ratio=image,
        reads_image=None if image is None else image_verdict(image),
        method=(
            f"eval-mode finest output in metres at the ground truth's resolution, clipped to "
            f"[{bounds[0]:g}, {bounds[1]:g}] m; valid pixels with ground truth in that range; "
            f"{SCORE_LOSS} loss per image (SSIM range max/min depth), metrics pooled over pixels and "
            "averaged over images"
        ),
    )
