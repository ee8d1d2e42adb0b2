"""Evaluate a depth model on a dataset protocol, and write depth predictions for images.

The path from a raw network output to a metric, in order:

1. ``model(image)`` in eval mode -> ``[B,1,h',w']`` in the model's ``output_space``;
2. metres via :func:`probe.depth_space.to_depth` with the dataset's ``max_depth``;
3. the protocol's per-pass clip, if any (DenseDepth clips each pass to [0.1, 10] m);
4. optional flip test-time augmentation (on when the protocol prescribes it): the
   mean, in metres, of the prediction and the mirrored prediction of the mirrored image;
5. bilinear upsampling (``align_corners=False``) to the ground truth's own
   resolution: the dataset is read with ``depth_resolution="full"``, so the ground
   truth is never resampled, and each image is scored at its own size;
6. the protocol (:mod:`probe.metrics`): crop, depth range, optional per-image
   median scaling, clamping to the protocol's range;
7. metrics pooled over all evaluated pixels (``metrics``) and averaged over
   images (``metrics_image_mean``), plus each image's own metrics.

>>> from probe.models import build_model                                     # doctest: +SKIP
>>> from probe.data import get_dataset                                       # doctest: +SKIP
>>> ds = get_dataset("synthetic", split="test", input_size=(48, 64), length=4)  # doctest: +SKIP
>>> result = evaluate(build_model("densedepth", width=0.0625), ds, batch_size=2)  # doctest: +SKIP
>>> result.metrics["abs_rel"], result.save("runs/x")                         # doctest: +SKIP
"""

from __future__ import annotations

import copy
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence, Sized, cast

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from probe.data import transforms as T
from probe.data.images import read_image_size, read_rgb
from probe.depth_space import clip_depth, to_depth
from probe.device import resolve_device, synchronize
from probe.errors import ProbeError, ShapeError
from probe.io import atomic_write
from probe.limits import MAX_BATCH_SIZE, MAX_ITEMS, check_count, check_input_size, check_optional_count, check_workers
from probe.metrics import METRIC_NAMES, EvalProtocol, MetricAccumulator, abs_rel_as_published_sums, get_protocol
from probe.models.common import output_space_of
from probe.options import data_root_option, device_option, input_size_option, option, out_option
from probe.progress import progress_bar
from probe.results import Result, register_result
from probe.runs import run_folder_lock

__all__ = [
    "EvalOptions",
    "EvalResult",
    "ImagePrediction",
    "PredictOptions",
    "depth_to_rgb",
    "evaluate",
    "evaluate_checkpoint",
    "parse_depth_range",
    "predict_checkpoint",
    "predict_depth",
    "predict_images",
    "print_eval_table",
]


def _as_device(device: torch.device | str) -> torch.device:
    return device if isinstance(device, torch.device) else resolve_device(device)


@torch.no_grad()
def predict_depth(
    model: nn.Module,
    images: torch.Tensor,
    *,
    max_depth: float,
    flip_tta: bool = False,
    size: tuple[int, int] | None = None,
    clip: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Depth in metres: ``[B,3,H,W]`` -> ``[B,1,h,w]`` (``h,w`` = ``size`` or the model's output size).

    Uses ``model.output_space`` to convert; ``clip`` = ``(min, max)`` bounds each pass
    (:func:`probe.depth_space.clip_depth`, before averaging), as every published evaluation does;
    with ``flip_tta`` averages (in metres) the prediction and the mirrored prediction of the
    mirrored image; then upsamples bilinearly.  The model must already be in eval mode on
    ``images.device``.
    """
    space = output_space_of(model)

    def once(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        if isinstance(out, (list, tuple)):  # a model left in training mode returns its scales
            raise ProbeError("predict_depth: the model returned several scales; call model.eval() first")
        if out.dim() != 4 or out.shape[1] != 1:
            raise ShapeError(f"predict_depth: expected a [B,1,h,w] depth output, got {tuple(out.shape)}")
        depth = to_depth(out.float(), space, max_depth)
        return clip_depth(depth, clip) if clip is not None else depth

    depth = once(images)
    if flip_tta:
        depth = 0.5 * (depth + once(images.flip(-1)).flip(-1))
    if size is not None and tuple(depth.shape[-2:]) != tuple(size):
        depth = F.interpolate(depth, size=size, mode="bilinear", align_corners=False)
    return depth


@register_result
@dataclass
class EvalResult(Result):
    """What ``probe eval`` measured; ``save(dir)`` writes ``dir/eval.json``.

    ``metrics`` pools every evaluated pixel of the split; ``metrics_image_mean``
    averages per-image metrics (the two conventions found in papers).
    ``median_ratio`` summarises the per-image scale factors (mean, std, median,
    min, max) when median scaling was on; ``per_image`` lists each image's
    name, evaluated pixels, scale ratio and metrics (``None`` metrics for an
    image with no evaluated pixel).
    """

    name: ClassVar[str] = "eval"
    schema_version: ClassVar[int] = 1

    dataset: str
    split: str
    protocol: str
    protocol_description: str
    model: str
    output_space: str
    max_depth: float
    n_images: int
    n_images_without_pixels: int
    n_pixels: int
    metrics: dict[str, float]
    metrics_image_mean: dict[str, float]
    options: dict[str, Any]
    protocol_choices: dict[str, Any]
    median_ratio: dict[str, float] | None
    per_image: list[dict[str, str | int | float | None]]
    seconds: float
    checkpoint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _ratio_summary(ratios: list[float]) -> dict[str, float] | None:
    values = np.asarray([r for r in ratios if math.isfinite(r)], dtype=np.float64)
    if values.size == 0:
        return None
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "median": float(np.median(values)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _check_loader_args(batch_size: int, workers: int) -> None:
    check_count("--batch-size", batch_size, MAX_BATCH_SIZE)
    check_workers(workers)


def full_resolution(dataset: Dataset) -> Dataset:
    """``dataset`` delivering its ground truth as read (a shallow copy when it was set to resize it)."""
    if getattr(dataset, "depth_resolution", "full") == "full":
        return dataset
    full = copy.copy(dataset)
    full.depth_resolution = "full"  # type: ignore[attr-defined]
    return full


def resolve_protocol(dataset: Dataset, protocol: str | EvalProtocol | None) -> EvalProtocol:
    """The protocol to score ``dataset`` with (default: the dataset's), adjusted by the dataset, checked to fit.

    Reads the first item's ground truth, so a protocol whose crop is defined on
    another size (``nyu_densedepth`` on 480x640) fails here, before any work.
    """
    info = getattr(dataset, "info", None)
    name = protocol or (info.eval_protocol if info is not None else None)
    if name is None:
        raise ProbeError("evaluate: the dataset has no .info; pass protocol= and max_depth= explicitly")
    chosen = name if isinstance(name, EvalProtocol) else get_protocol(name)
    override = getattr(dataset, "protocol_override", None)
    if callable(override):
        chosen = override(chosen)
    if len(dataset) > 0:  # type: ignore[arg-type]
        height, width = full_resolution(dataset)[0]["depth"].shape[-2:]
        try:
            chosen.crop_box(int(height), int(width))
        except ShapeError as exc:
            raise ProbeError(
                f"--protocol {chosen.name}: does not fit dataset {getattr(info, 'name', '?')!r} ({exc})"
            ) from None
    return chosen


def collate_keep_sizes(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the images (all at the input size); keep each ground truth at its own size in a list."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "depth": [it["depth"] for it in items],
        "valid": [it["valid"] for it in items],
        "name": [it["name"] for it in items],
    }


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    protocol: str | EvalProtocol | None = None,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    median_scaling: bool = False,
    flip_tta: bool = False,
    max_depth: float | None = None,
    clamp: bool = True,
    workers: int = 0,
    show_progress: bool | None = None,
) -> EvalResult:
    """Evaluate ``model`` on every item of ``dataset`` (items per docs/CONTRACTS.md) under ``protocol``.

    ``protocol`` (a name or an :class:`~probe.metrics.EvalProtocol`) and
    ``max_depth`` default to the dataset's ``info.eval_protocol`` and
    ``info.max_depth``.  Scoring happens at the ground truth's own resolution.
    ``median_scaling`` and ``flip_tta`` add to what the protocol prescribes;
    ``clamp=False`` turns off its final clamping.  A dataset with
    ``protocol_override(protocol)`` (``nyu_test``: the crop from its archive)
    adjusts the protocol first.

    >>> result = evaluate(model, get_dataset("nyu", root, split="test"), protocol="nyu_eigen")  # doctest: +SKIP
    """
    _check_loader_args(batch_size, workers)
    info = getattr(dataset, "info", None)
    depth_cap = max_depth if max_depth is not None else (info.max_depth if info is not None else None)
    if depth_cap is None:
        raise ProbeError("evaluate: the dataset has no .info; pass protocol= and max_depth= explicitly")
    count = len(cast(Sized, dataset))  # torch's Dataset declares no __len__; every probe dataset has one
    if count == 0:
        raise ProbeError(f"evaluate: dataset {getattr(info, 'name', dataset)!r} is empty")
    chosen = resolve_protocol(dataset, protocol)
    tta = flip_tta or chosen.flip_tta
    scaling = True if median_scaling else None  # None: the protocol's own setting
    clamping = None if clamp else False

    dev = _as_device(device)
    model = model.to(dev).eval()
    loader = DataLoader(
        full_resolution(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=dev.type == "cuda",
        collate_fn=collate_keep_sizes,
    )
    acc = MetricAccumulator()
    per_image: list[dict[str, Any]] = []
    ratios: list[float] = []
    swapped = [0.0, 0]
    gt_sizes: set[tuple[int, int]] = set()
    start = time.perf_counter()
    with progress_bar(disable=None if show_progress is None else not show_progress) as bar:
        task = bar.add_task("eval", total=count)
        for batch in loader:
            pred_batch = predict_depth(
                model, batch["image"].to(dev, non_blocking=True), max_depth=depth_cap, flip_tta=tta, clip=chosen.clip
            ).cpu()
            for i, name in enumerate(batch["name"]):
                gt, valid = batch["depth"][i][None].float(), batch["valid"][i][None].bool()
                gt_sizes.add(tuple(gt.shape[-2:]))
                pred = F.interpolate(pred_batch[i : i + 1], size=gt.shape[-2:], mode="bilinear", align_corners=False)
                prepared = chosen.apply(pred, gt, valid, median_scaling=scaling, clamp=clamping)
                metrics = acc.update(prepared.pred, gt, prepared.mask)[0]
                if chosen.swapped_abs_rel and prepared.mask.any():
                    total, count = abs_rel_as_published_sums(prepared.pred, gt, prepared.mask)
                    swapped[0] += total
                    swapped[1] += count
                ratio = float(prepared.ratios[0]) if prepared.ratios is not None else None
                if ratio is not None:
                    ratios.append(ratio)
                per_image.append(
                    {
                        "name": name,
                        "n_pixels": int(prepared.mask.sum()),
                        "median_ratio": ratio,
                        **(metrics or {m: None for m in METRIC_NAMES}),
                    }
                )
            bar.advance(task, len(batch["name"]))
    synchronize(dev)
    seconds = time.perf_counter() - start
    pooled = acc.pooled()
    if chosen.swapped_abs_rel and swapped[1]:
        pooled["abs_rel_as_published"] = swapped[0] / swapped[1]
    size = next(iter(gt_sizes)) if len(gt_sizes) == 1 else (None, None)
    choices = chosen.choices(
        height=size[0], width=size[1], median_scaling=bool(scaling) or None, clamp=clamping, flip_tta=tta
    )
    choices["ground_truth_sizes"] = sorted([list(s) for s in gt_sizes])[:5]
    return EvalResult(
        dataset=getattr(info, "name", type(dataset).__name__),
        split=getattr(dataset, "split", "unknown"),
        protocol=chosen.name,
        protocol_description=chosen.description,
        model=str(getattr(model, "model_name", type(model).__name__)),
        output_space=output_space_of(model),
        max_depth=depth_cap,
        n_images=acc.n_images,
        n_images_without_pixels=acc.n_empty,
        n_pixels=acc.n_pixels,
        metrics=pooled,
        metrics_image_mean=acc.image_mean(),
        options={
            "median_scaling": choices["median_scaling"],
            "flip_tta": tta,
            "clamp": choices["clamp_m"] is not None,
            "batch_size": batch_size,
            "device": str(dev),
        },
        protocol_choices=choices,
        median_ratio=_ratio_summary(ratios) if choices["median_scaling"] else None,
        per_image=per_image,
        seconds=seconds,
    )


def depth_to_rgb(depth: np.ndarray, depth_range: tuple[float, float], colormap: str = "magma") -> np.ndarray:
    """``[h,w]`` metres -> ``uint8 [h,w,3]`` through a matplotlib colormap over ``depth_range`` (near = dark).

    Depths outside the range saturate at the colormap's ends.
    """
    from matplotlib import colormaps

    low, high = depth_range
    if not high > low:
        raise ProbeError(f"--range: expected MIN < MAX metres, got {low}, {high}")
    try:
        cmap = colormaps[colormap]
    except KeyError:
        raise ProbeError(f"--colormap: unknown matplotlib colormap {colormap!r} (e.g. magma, viridis)") from None
    scaled = np.clip((depth.astype(np.float64) - low) / (high - low), 0.0, 1.0)
    return (cmap(scaled)[..., :3] * 255.0 + 0.5).astype(np.uint8)


@dataclass
class ImagePrediction:
    """One predicted image: its source, the files written, and the depth statistics in metres."""

    source: str
    png: str
    npy: str
    height: int
    width: int
    min_depth: float
    median_depth: float
    max_depth: float


def output_stems(paths: Sequence[Path]) -> list[str]:
    """One distinct output stem per input image, in input order.

    The rule: the first image with a given file stem keeps it (``x/room.jpg`` -> ``room``);
    each later image with the same stem (``y/room.png``) gets the smallest suffix
    ``_2``, ``_3``, ... that no input's own stem and no earlier output uses, so
    ``a.png``, ``b/a.png``, ``a_2.png`` give ``a``, ``a_3``, ``a_2``.  The same file
    given twice is an error (it would be written twice).
    """
    resolved = [p.resolve() for p in paths]
    for index, path in enumerate(resolved):
        if path in resolved[:index]:
            raise ProbeError(f"{paths[index]}: given twice; each IMAGE is predicted once")
    taken = {p.stem for p in paths}
    used: set[str] = set()
    stems = []
    for path in paths:
        stem = path.stem
        if stem in used:
            stem = next(f"{path.stem}_{n}" for n in range(2, len(paths) + 2) if f"{path.stem}_{n}" not in taken | used)
        used.add(stem)
        stems.append(stem)
    return stems


def predict_images(
    model: nn.Module,
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    max_depth: float,
    input_size: tuple[int, int],
    device: torch.device | str = "cpu",
    flip_tta: bool = False,
    normalize: str = "none",
    colormap: str = "magma",
    depth_range: tuple[float, float] | None = None,
    force: bool = False,
) -> list[ImagePrediction]:
    """Predict each image at ``input_size`` and write ``<stem>_depth.png`` and ``<stem>_depth.npy`` to ``out_dir``.

    The depth is upsampled bilinearly to the image's own resolution; the
    ``.npy`` holds float32 metres ``[H,W]``; the PNG maps ``depth_range``
    (default ``0..max_depth`` metres) through ``colormap``.  Every path is
    checked before any work; an undecodable image raises :class:`ProbeError`
    naming it.  Output names follow :func:`output_stems` (distinct per input).
    An output file that already exists is refused before any work unless
    ``force``: a call never overwrites a file it did not write itself.  Both
    files are written atomically, under ``out_dir``'s writer lock.

    >>> predict_images(model, ["room.jpg"], "preds", max_depth=10.0, input_size=(240, 320))  # doctest: +SKIP
    """
    sources = [Path(p) for p in paths]
    if not sources:
        raise ProbeError("predict: no IMAGE given")
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise ProbeError(
            f"{missing[0]}: image file not found" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    value_range = depth_range or (0.0, max_depth)
    depth_to_rgb(np.zeros((1, 1)), value_range, colormap)  # bad range / colormap fails before any work
    for source in sources:  # headers only: a non-image fails before anything is written
        read_image_size(source)
    normalise = T.NORMALIZATIONS.get(normalize)
    out = Path(out_dir)
    stems = output_stems(sources)
    targets = [out / f"{stem}_depth{suffix}" for stem in stems for suffix in (".png", ".npy")]
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if existing and not force:
        raise ProbeError(
            f"{existing[0]}: already exists"
            + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
            + "; predict does not overwrite files it did not write; pass --force or another --out"
        )
    dev = _as_device(device)
    model = model.to(dev).eval()
    with run_folder_lock(out, "predict"):
        return [
            _predict_one(
                model,
                source,
                out,
                stem,
                max_depth=max_depth,
                input_size=input_size,
                device=dev,
                flip_tta=flip_tta,
                normalise=normalise,
                colormap=colormap,
                value_range=value_range,
            )
            for source, stem in zip(sources, stems)
        ]


def _predict_one(
    model: nn.Module,
    source: Path,
    out: Path,
    stem: str,
    *,
    max_depth: float,
    input_size: tuple[int, int],
    device: torch.device,
    flip_tta: bool,
    normalise: Any,
    colormap: str,
    value_range: tuple[float, float],
) -> ImagePrediction:
    """Predict one image and write its two files (see :func:`predict_images`)."""
    rgb = read_rgb(source)
    height, width = rgb.shape[:2]
    image = normalise(T.resize_image(T.image_to_tensor(rgb), input_size))[None].to(device)
    depth = predict_depth(model, image, max_depth=max_depth, flip_tta=flip_tta, size=(height, width))
    metres = depth[0, 0].cpu().numpy().astype(np.float32)
    png_path, npy_path = out / f"{stem}_depth.png", out / f"{stem}_depth.npy"
    atomic_write(npy_path, _npy_bytes(metres))
    atomic_write(png_path, _png_bytes(depth_to_rgb(metres, value_range, colormap)))
    return ImagePrediction(
        source=str(source),
        png=str(png_path),
        npy=str(npy_path),
        height=height,
        width=width,
        min_depth=float(metres.min()),
        median_depth=float(np.median(metres)),
        max_depth=float(metres.max()),
    )


def parse_depth_range(text: str, flag: str = "--range") -> tuple[float, float]:
    """``"0.5,10"`` -> ``(0.5, 10.0)`` metres, MIN < MAX.

    >>> parse_depth_range("0,10")
    (0.0, 10.0)
    """
    parts = text.split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ProbeError(f"{flag}: expected MIN,MAX in metres (e.g. 0,10), got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ProbeError(f"{flag}: expected finite MIN < MAX metres, got {text!r}")
    return low, high


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class EvalOptions:
    """What ``probe eval`` was asked; ``None`` fields default to the training run's settings."""

    checkpoint: Path = option(help="run folder (uses checkpoints/last) or a .safetensors file")
    out: Path = out_option(Path("runs/eval"))
    dataset: str | None = option(None, help="dataset name (default: the run's)")
    data_root: Path | None = data_root_option()
    split: str = option("test", help="train|test")
    input_size: tuple[int, int] | None = input_size_option(help="HxW (default: the run's)")
    dataset_length: int | None = option(None, help="number of generated samples (synthetic data)")
    protocol: str | None = option(
        None,
        help="nyu_densedepth|nyu_eigen|kitti_eigen|kitti_eigen_median|make3d_c1|none "
        "(old names nyu, kitti, make3d still work; default: the dataset's)",
    )
    median_scaling: bool = option(
        False, flag="--median-scaling", help="scale each prediction by median(gt)/median(pred)"
    )
    flip_tta: bool = option(False, flag="--flip-tta", help="average with the mirrored prediction of the mirrored image")
    clamp: bool = option(True, flag="--clamp/--no-clamp", help="clamp predictions to the protocol's depth range")
    batch_size: int = option(4, help="images per forward pass")
    device: str = device_option()
    workers: int = option(0, help="data-loading worker processes (0: main process)")

    def validate(self) -> None:
        _check_loader_args(self.batch_size, self.workers)
        check_optional_count("--dataset-length", self.dataset_length, MAX_ITEMS)
        check_input_size(self.input_size)
        if self.protocol is not None:
            get_protocol(self.protocol)  # a misspelt --protocol fails before the model is loaded


def _run_dataset_settings(
    run_config: dict[str, Any], dataset: str | None, data_root: Path | None, input_size: tuple[int, int] | None
) -> tuple[str, Path | None, tuple[int, int] | None]:
    """The dataset to use: the one asked for, else the run's; root and input size follow the run's when it matches."""
    name = dataset or run_config.get("dataset")
    if not name:
        raise ProbeError("--dataset: the checkpoint's run config names no dataset; pass --dataset")
    same = name == run_config.get("dataset")
    root = data_root if data_root is not None else (run_config.get("data_root") if same else None)
    size = input_size or (tuple(run_config["input_size"]) if same and run_config.get("input_size") else None)
    return name, Path(root) if root is not None else None, size


def evaluate_checkpoint(options: EvalOptions) -> EvalResult:
    """Load ``options.checkpoint``, evaluate it, and write ``out/eval.json`` (+ ``out/config.json``).

    The dataset, its root and the input size default to those of the training
    run; ``dataset_length`` applies to generated datasets only.

    >>> evaluate_checkpoint(EvalOptions(Path("runs/x"), Path("runs/x/eval"), median_scaling=True))  # doctest: +SKIP
    """
    from probe.data import dataset_info, get_dataset
    from probe.runs import prepare_run_dir
    from probe.training import load_checkpoint

    options.validate()
    device = resolve_device(options.device)
    model, run_config = load_checkpoint(options.checkpoint, device)
    name, root, size = _run_dataset_settings(run_config, options.dataset, options.data_root, options.input_size)
    extra: dict[str, Any] = {}
    if options.dataset_length is not None:
        if dataset_info(name).needs_root:
            raise ProbeError(f"--dataset-length: only for generated datasets (e.g. synthetic), not {name!r}")
        extra["length"] = options.dataset_length
    dataset = get_dataset(name, root, split=options.split, input_size=size, **extra)
    resolve_protocol(dataset, options.protocol)  # a protocol that does not fit the data fails before any write
    config = {**asdict(options), "dataset": name, "data_root": root, "input_size": dataset.input_size}
    with run_folder_lock(options.out, "eval"):
        prepare_run_dir(options.out, "eval", config, device=device)
        result = evaluate(
            model,
            dataset,
            protocol=options.protocol,
            batch_size=options.batch_size,
            device=device,
            median_scaling=options.median_scaling,
            flip_tta=options.flip_tta,
            clamp=options.clamp,
            workers=options.workers,
        )
        result.checkpoint = str(options.checkpoint)
        result.extra = {
            "input_size": list(dataset.input_size),
            "train_model": run_config.get("model"),
            "train_model_options": run_config.get("model_options"),
            "train_width": run_config.get("width"),
        }
        result.save(options.out)
    return result


@dataclass
class PredictOptions:
    """What ``probe predict`` was asked: images, the trained run, and how to draw the depth."""

    images: list[Path] = option(argument=True, help="image files (JPEG, PNG, ...)")
    checkpoint: Path = option(help="run folder (uses checkpoints/last) or a .safetensors file")
    input_size: tuple[int, int] | None = input_size_option(help="HxW (default: the run's)")
    flip_tta: bool = option(False, flag="--flip-tta", help="average with the mirrored prediction of the mirrored image")
    colormap: str = option("magma", help="matplotlib colormap for the PNG")
    depth_range: tuple[float, float] | None = option(
        None,
        flag="--range",
        parse=parse_depth_range,
        help="MIN,MAX metres mapped by the colormap (default 0,max depth)",
    )
    force: bool = option(False, help="overwrite prediction files that already exist in --out")
    device: str = device_option()
    out: Path = out_option(Path("runs/predict"))

    def validate(self) -> None:
        if not self.images:
            raise ProbeError("predict: no IMAGE given")
        check_input_size(self.input_size)


def predict_checkpoint(options: PredictOptions) -> list[ImagePrediction]:
    """Load ``options.checkpoint`` and run :func:`predict_images` with the run's dataset depth cap and input size."""
    from probe.data import dataset_info
    from probe.training import load_checkpoint

    options.validate()
    sources = [Path(p) for p in options.images]
    dev = resolve_device(options.device)
    model, run_config = load_checkpoint(options.checkpoint, dev)
    if not run_config.get("dataset"):
        raise ProbeError(
            f"--checkpoint {options.checkpoint}: its run config names no dataset (needed for the depth cap)"
        )
    info = dataset_info(run_config["dataset"])
    size = options.input_size or (tuple(run_config["input_size"]) if run_config.get("input_size") else info.input_size)
    return predict_images(
        model,
        sources,
        options.out,
        max_depth=info.max_depth,
        input_size=size,
        device=dev,
        flip_tta=options.flip_tta,
        colormap=options.colormap,
        depth_range=options.depth_range,
        force=options.force,
    )


def print_eval_table(result: EvalResult, console: Any = None) -> None:
    """A rich table: one row per metric, pooled over pixels and averaged over images."""
    from rich.console import Console
    from rich.table import Table

    lower_better = {"abs_rel", "sq_rel", "rmse", "rmse_log", "log10"}
    table = Table(
        title=f"eval {result.model} on {result.dataset}/{result.split} "
        f"(protocol {result.protocol}, {result.n_images} images)"
    )
    table.add_column("metric")
    table.add_column("pooled over pixels", justify="right")
    table.add_column("mean over images", justify="right")
    for name in METRIC_NAMES:
        arrow = "lower better" if name in lower_better else "higher better"
        table.add_row(f"{name} ({arrow})", f"{result.metrics[name]:.4f}", f"{result.metrics_image_mean[name]:.4f}")
    if result.median_ratio is not None:
        table.caption = f"median scaling: ratio {result.median_ratio['mean']:.3f} +- {result.median_ratio['std']:.3f}"
    (console or Console()).print(table)
