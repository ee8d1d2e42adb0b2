"""Any folder of RGB images paired with depth files, found by glob patterns.

Options (all optional):

* ``image_glob`` (default ``"{split}/image/*"``) and ``depth_glob`` (default
  ``"{split}/depth/*"``): patterns relative to the root; ``{split}`` becomes
  ``train`` or ``test``.  Patterns without ``{split}`` read the same files for
  both splits.  ``**`` recurses.
* ``pair_by``: ``"stem"`` (default; ``a.jpg`` pairs with ``a.png``/``a.npy``)
  or ``"order"`` (the n-th image with the n-th depth file, both sorted).
  Under ``"order"`` unequal counts are a DataError naming both counts and the
  folder; under ``"stem"`` an image or depth file without a partner is an item
  whose loading raises a DataError naming it (``skip_bad`` skips it).
* ``depth_scale``: metres per PNG count for 8/16-bit PNG depth
  (metres = value x depth_scale; default 0.001, i.e. millimetres; KITTI-style
  files use 1/256).  ``.npy`` files hold metres and ignore it.  This is a
  unit, unrelated to ``DatasetInfo.depth_scale`` (target/input resolution,
  1.0 here: the target has the input's size).
* ``max_depth`` (default 10 m): depths beyond it, zero, NaN or inf are invalid.

Default input 240x320 (the synthetic data's and DenseDepth's half-resolution
NYU size); pass ``input_size`` for other aspect ratios.

    >>> ds = get_dataset("folder", "/data/mine", split="train", depth_glob="{split}/depth/*.npy")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from probe.data.base import DatasetInfo, DepthDataset, RawSample, check_list_path, register_dataset
from probe.data.images import DEPTH_FORMATS, read_depth_metres, read_rgb
from probe.errors import DataError, ProbeError
from probe.registry import Registry

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
DEFAULT_IMAGE_GLOB = "{split}/image/*"
DEFAULT_DEPTH_GLOB = "{split}/depth/*"

FOLDER_INFO = DatasetInfo(
    name="folder",
    description="your own folder: RGB files paired with depth files (16-bit PNG x depth_scale, or .npy metres)",
    min_depth=1e-3,
    max_depth=10.0,
    input_size=(240, 320),
    depth_scale=1.0,
    eval_protocol="none",
    source=(
        "your own files: image_glob / depth_glob patterns under --data-root (default {split}/image/*, {split}/depth/*)"
    ),
    expected=(DEFAULT_IMAGE_GLOB, DEFAULT_DEPTH_GLOB),
)

Pair = tuple[Path | None, Path | None]
Pairing = Callable[[list[Path], list[Path], Path, str, str], list[Pair]]
PAIRINGS: Registry[Pairing] = Registry("pairing")


@PAIRINGS.register("stem", description="image and depth files with the same file stem")
def pair_by_stem(images: list[Path], depths: list[Path], root: Path, image_glob: str, depth_glob: str) -> list[Pair]:
    by_stem_image = {p.stem: p for p in images}
    by_stem_depth = {p.stem: p for p in depths}
    if len(by_stem_image) != len(images) or len(by_stem_depth) != len(depths):
        raise DataError(
            f"{root}: several files share a stem under {image_glob!r} or {depth_glob!r}; "
            "use pair_by='order' or narrower globs"
        )
    stems = sorted(set(by_stem_image) | set(by_stem_depth))
    return [(by_stem_image.get(s), by_stem_depth.get(s)) for s in stems]


@PAIRINGS.register("order", description="n-th image with the n-th depth file, both sorted by path")
def pair_by_order(images: list[Path], depths: list[Path], root: Path, image_glob: str, depth_glob: str) -> list[Pair]:
    if len(images) != len(depths):
        raise DataError(
            f"{root}: {len(images)} images ({image_glob!r}) but {len(depths)} depth files "
            f"({depth_glob!r}); pair_by='order' needs equal counts"
        )
    return list(zip(images, depths))


def _glob(root: Path, pattern: str, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in suffixes)


def locate_folder(root: Path | None) -> bool:
    """True when the default globs find images under ``root`` for either split."""
    if root is None or not root.is_dir():
        return False
    return any(_glob(root, DEFAULT_IMAGE_GLOB.format(split=s), IMAGE_SUFFIXES) for s in ("train", "test"))


class FolderDataset(DepthDataset):
    """Image/depth pairs from glob patterns; see the module docstring for the options."""

    def __init__(
        self,
        root: Path,
        split: str = "train",
        image_glob: str = DEFAULT_IMAGE_GLOB,
        depth_glob: str = DEFAULT_DEPTH_GLOB,
        pair_by: str = "stem",
        depth_scale: float = 0.001,
        max_depth: float = FOLDER_INFO.max_depth,
        **options: Any,
    ) -> None:
        if not depth_scale > 0:
            raise ProbeError(
                f"depth_scale: expected metres per PNG count > 0 (e.g. 0.001 for millimetres), got {depth_scale}"
            )
        if not max_depth > 0:
            raise ProbeError(f"max_depth: expected a positive depth cap in metres, got {max_depth}")
        pairing = PAIRINGS.get(pair_by)
        super().__init__(dataclasses.replace(FOLDER_INFO, max_depth=float(max_depth)), split=split, **options)
        self.root = root
        self.depth_units = float(depth_scale)
        self.image_glob = check_list_path(image_glob.format(split=split), "image_glob")
        self.depth_glob = check_list_path(depth_glob.format(split=split), "depth_glob")
        images = _glob(root, self.image_glob, IMAGE_SUFFIXES)
        depths = _glob(root, self.depth_glob, tuple(DEPTH_FORMATS.names()))
        if not images and not depths:
            raise DataError(
                f"{root}: no images match {self.image_glob!r} and no depth files "
                f"({', '.join(DEPTH_FORMATS.names())}) match {self.depth_glob!r}"
            )
        self.pairs = pairing(images, depths, root, self.image_glob, self.depth_glob)

    def __len__(self) -> int:
        return len(self.pairs)

    def item_name(self, index: int) -> str:
        image, depth = self.pairs[index]
        named = image if image is not None else depth
        return str(named.relative_to(self.root)) if named is not None else f"{self.split}/{index}"

    def load_raw(self, index: int) -> RawSample:
        image_path, depth_path = self.pairs[index]
        if depth_path is None:
            raise DataError(f"{image_path}: no depth file with the same stem matches {self.depth_glob!r}")
        if image_path is None:
            raise DataError(f"{depth_path}: no image with the same stem matches {self.image_glob!r}")
        image = read_rgb(image_path)
        depth = read_depth_metres(depth_path, self.depth_units)
        return RawSample(
            image=image, depth=depth, name=self.item_name(index), files=f"{image_path} with depth {depth_path}"
        )


@register_dataset(FOLDER_INFO, locate=locate_folder)
def _build_folder(root: Path, split: str = "train", **options: Any) -> FolderDataset:
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of images and depth files")
    return FolderDataset(root, split=split, **options)
