"""The dataset contract shared by the synthetic generator and every real-format reader.

A reader subclasses :class:`DepthDataset` and implements ``__len__`` and
``load_raw(index) -> RawSample`` (image at any resolution, depth in metres at
any resolution, NaN/0 for holes).  The base class turns that into the item
every consumer sees::

    {"image": float32 [3,H,W] in [0,1],      # H,W = input_size
     "depth": float32 [1,h,w] metres,         # h,w = input_size * info.depth_scale; 0 where invalid
                                               # (depth_resolution="full": the ground truth's own h,w)
     "valid": bool [1,h,w],
     "name": str,                              # stable id
     "skipped": str}                           # "" or the name of a bad item this one replaced

Readers register a factory with :data:`DATASETS`; ``get_dataset(name, ...)``
is the only door in.

Every raw sample is checked before it is resized (:meth:`DepthDataset.load_checked`):
an ``H x W x 3`` image, a non-empty real-valued ``h x w`` depth map, and, for
readers whose depth covers the image pixel for pixel, the same aspect ratio
within :data:`ASPECT_TOLERANCE`, so a mismatched or transposed pair is a named
DataError (or a reported skip under ``skip_bad``) instead of a silent stretch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from probe.data import transforms as T
from probe.errors import DataError, ProbeError
from probe.limits import check_size
from probe.registry import Registry


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, what resolution its protocol uses, and where to get it.

    ``min_depth``/``max_depth`` are the protocol's depth range in metres: ground truth lies inside it,
    predictions are clipped to it before any statistic (:func:`probe.depth_space.clip_depth`), and it sizes
    PackNet's inverse-depth head (:func:`probe.depth_space.head_min_depth`).
    """

    name: str
    description: str
    min_depth: float
    max_depth: float
    input_size: tuple[int, int]
    depth_scale: float
    eval_protocol: str
    source: str
    expected: tuple[str, ...] = ()
    needs_root: bool = True

    def depth_size(self, input_size: tuple[int, int] | None = None) -> tuple[int, int]:
        h, w = input_size or self.input_size
        return max(1, int(round(h * self.depth_scale))), max(1, int(round(w * self.depth_scale)))

    def missing_root_message(self, root: Path | None) -> str:
        where = f"under {root}" if root is not None else "(no --data-root given)"
        files = ", ".join(self.expected) or "the dataset files"
        return f"dataset {self.name!r}: files not found {where}; expected {files}. Get them from {self.source}"


ASPECT_TOLERANCE = 0.02
"""Largest relative difference between an image's and its depth map's width/height ratios (2%).
NYU, KITTI and the labeled set pair equal sizes; 2% absorbs a dropped border row or column."""

SKIP_SEPARATOR = "\n"
"""Joins the names in an item's ``skipped`` field when several bad items were passed over for it."""


@dataclass
class RawSample:
    """One sample as read from disk: ``image`` HxWx3 (uint8 or float in [0,1]), ``depth`` hxw metres.

    ``files`` says where it came from for error messages (e.g. ``"a.png with depth a.npy"``, full paths);
    ``name`` is the item's stable id.
    """

    image: np.ndarray
    depth: np.ndarray
    name: str
    files: str = ""


#: ``depth_resolution`` option: the training target size, or the ground truth as read (for evaluation).
DEPTH_RESOLUTIONS = ("target", "full")


class DepthDataset(Dataset):
    """Base class: lazy loading, resizing, validity mask, seeded augmentation, bad-item policy."""

    pair_aspect_tolerance: ClassVar[float | None] = ASPECT_TOLERANCE
    """None for readers whose depth samples the image anisotropically (Make3D's laser grid)."""

    def __init__(
        self,
        info: DatasetInfo,
        split: str = "train",
        input_size: tuple[int, int] | None = None,
        augment: bool = False,
        seed: int = 0,
        skip_bad: bool = False,
        normalize: str = "none",
        depth_resolution: str = "target",
    ) -> None:
        if split not in ("train", "test"):
            raise ProbeError(f"split: expected 'train' or 'test', got {split!r}")
        if depth_resolution not in DEPTH_RESOLUTIONS:
            raise ProbeError(
                f"depth_resolution: expected one of {', '.join(DEPTH_RESOLUTIONS)}, got {depth_resolution!r}"
            )
        # "full" keeps the ground truth as read (evaluation scores there); "target" resizes it for training.
        self.depth_resolution = depth_resolution
        self.info = info
        self.split = split
        self.input_size = check_size(tuple(input_size) if input_size else tuple(info.input_size))
        self.depth_size = info.depth_size(self.input_size)
        self.augment = augment
        self.seed = seed
        self.skip_bad = skip_bad
        self.epoch = 0
        self._normalize = T.NORMALIZATIONS.get(normalize)

    # -- to implement -------------------------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_raw(self, index: int) -> RawSample:  # pragma: no cover - abstract
        raise NotImplementedError

    def item_name(self, index: int) -> str:
        """Stable id of item ``index`` without loading it (used in error messages)."""
        return f"{self.info.name}/{self.split}/{index}"

    # -- shared pipeline ----------------------------------------------------------------------
    def load_checked(self, index: int) -> RawSample:
        """``load_raw(index)`` after the checks every consumer relies on (a DataError naming the item)."""
        raw = self.load_raw(index)
        check_raw_sample(raw, self.pair_aspect_tolerance)
        return raw

    def set_epoch(self, epoch: int) -> None:
        """Vary augmentation per epoch (called by the training loop, like DistributedSampler)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.info.name}: index {index} out of range 0..{len(self) - 1}")
        try:
            return self._finish(self.load_checked(index), index, skipped="")
        except DataError:
            if not self.skip_bad:
                raise
        # every item tried and failed is reported, not only the one asked for
        failed = [self.item_name(index)]
        for offset in range(1, len(self)):
            other = (index + offset) % len(self)
            try:
                return self._finish(self.load_checked(other), other, skipped=SKIP_SEPARATOR.join(failed))
            except DataError:
                failed.append(self.item_name(other))
        raise DataError(f"dataset {self.info.name!r} ({self.split}): every item failed to load")

    def _finish(self, raw: RawSample, index: int, skipped: str) -> dict[str, Any]:
        image = T.resize_image(T.image_to_tensor(raw.image), self.input_size)
        depth_np = np.asarray(raw.depth, dtype=np.float32)
        depth = torch.from_numpy(np.ascontiguousarray(depth_np))[None]
        if self.depth_resolution == "target":
            depth = T.resize_depth(depth, self.depth_size)
        valid = T.valid_mask(depth, self.info.max_depth)
        depth = torch.where(valid, depth, torch.zeros_like(depth))
        if self.augment:
            image, depth, valid = T.augment(image, depth, valid, T.sample_rng(self.seed, self.epoch, index))
        return {
            "image": self._normalize(image).contiguous(),
            "depth": depth.contiguous(),
            "valid": valid.contiguous(),
            "name": raw.name,
            "skipped": skipped,
        }


def check_raw_sample(raw: RawSample, aspect_tolerance: float | None = ASPECT_TOLERANCE) -> None:
    """Raise a DataError naming ``raw.name`` unless image and depth are well-formed and paired.

    Image ``[H,W,3]`` uint8 or real float; depth ``[h,w]`` real numeric, non-empty.  With
    ``aspect_tolerance`` the two must share their width/height ratio within it; a depth map
    whose rows and columns are swapped against the image is named as transposed.
    """
    image, depth = np.asarray(raw.image), np.asarray(raw.depth)
    where = raw.files or raw.name
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise DataError(f"{where}: image must be H x W x 3, got shape {image.shape}")
    if image.dtype != np.uint8 and image.dtype.kind != "f":
        raise DataError(f"{where}: image must be uint8 or float, got {image.dtype}")
    if depth.ndim != 2 or 0 in depth.shape:
        raise DataError(f"{where}: depth must be a non-empty H x W map, got shape {depth.shape}")
    if depth.dtype.kind not in "uif":
        raise DataError(f"{where}: depth must be real numbers, got {depth.dtype}")
    if aspect_tolerance is None:
        return
    (height, width), (rows, cols) = image.shape[:2], depth.shape
    image_ratio, depth_ratio = width / height, cols / rows
    if abs(depth_ratio / image_ratio - 1.0) <= aspect_tolerance:
        return
    if height != width and abs((rows / cols) / image_ratio - 1.0) <= aspect_tolerance:
        raise DataError(
            f"{where}: depth map {rows}x{cols} is transposed against its image {height}x{width} "
            "(rows and columns swapped)"
        )
    raise DataError(
        f"{where}: image {height}x{width} and depth map {rows}x{cols} differ in aspect ratio "
        f"({image_ratio:.3f} vs {depth_ratio:.3f}, tolerance {aspect_tolerance:.0%}); resizing would "
        "misalign them"
    )


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_list_path(text: str, label: str) -> str:
    """A path read from a dataset's list file, as a relative POSIX path that stays inside the dataset root.

    Refused with a DataError naming ``label`` (the list file and line): control characters (NUL...),
    absolute paths (``/x``, ``\\x``, ``C:x``) and ``..`` components.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise DataError(f"{label}: path {text!r} contains a control character; expected a plain relative path")
    posix = text.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise DataError(f"{label}: path {text!r} is absolute; list files may only name files inside the dataset root")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(
            f"{label}: path {text!r} climbs out with '..'; list files may only name files inside the dataset root"
        )
    if not parts:
        raise DataError(f"{label}: empty path")
    return "/".join(parts)


Factory = Callable[..., DepthDataset]
DATASETS: Registry[Factory] = Registry("dataset")


def register_dataset(
    info: DatasetInfo, locate: Callable[[Path | None], bool] | None = None
) -> Callable[[Factory], Factory]:
    """Register ``factory(root, split, input_size, **options)`` under ``info.name``.

    ``locate(root) -> bool`` says whether the files are present (for ``probe datasets``).
    """
    return DATASETS.register(
        info.name,
        description=info.description,
        info=info,
        locate=locate or (lambda root: root is not None and Path(root).exists()),
    )


def get_dataset(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    input_size: tuple[int, int] | None = None,
    **options: Any,
) -> DepthDataset:
    """Build dataset ``name`` from ``root`` (None for the built-in synthetic data).

    >>> ds = get_dataset("synthetic", split="test", input_size=(48, 64), length=4)  # doctest: +SKIP
    >>> ds[0]["depth"].shape                                                       # doctest: +SKIP
    torch.Size([1, 24, 32])
    """
    entry = DATASETS.entry(name)
    info: DatasetInfo = entry.meta["info"]
    root_path = Path(root).expanduser() if root is not None else None
    if info.needs_root and (root_path is None or not root_path.exists()):
        raise DataError(info.missing_root_message(root_path))
    dataset = entry.factory(root_path, split=split, input_size=input_size, **options)
    if len(dataset) == 0:  # readers name their list file; this catches any that does not
        raise DataError(f"dataset {name!r} ({split}) under {root_path}: the split has no items")
    return dataset


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.entry(name).meta["info"]


def dataset_present(name: str, root: str | Path | None) -> bool:
    """Whether ``name``'s files are found under ``root`` (always True for generated data)."""
    entry = DATASETS.entry(name)
    if not entry.meta["info"].needs_root:
        return True
    return bool(entry.meta["locate"](Path(root).expanduser() if root is not None else None))


@dataclass
class BadItemLog:
    """Collects the names of bad items replaced under ``skip_bad`` (from batches' ``skipped`` field)."""

    names: list[str] = field(default_factory=list)

    def update(self, batch: dict[str, Any]) -> None:
        for joined in batch.get("skipped", []):
            self.names.extend(n for n in joined.split(SKIP_SEPARATOR) if n)

    def summary(self) -> str:
        if not self.names:
            return "no bad items"
        names = sorted(set(self.names))
        more = f" and {len(names) - 10} more (all listed in train.json)" if len(names) > 10 else ""
        return f"{len(names)} bad item(s) skipped: {', '.join(names[:10])}{more}"
