"""Make3D (Saxena et al.) in its published layout, with the Monodepth evaluation crop.

Layout under the root (as the four archives extract)::

    Train400Img/img-<stem>.jpg                 Train400Depth/depth_sph_corr-<stem>.mat
    Test134/img-<stem>.jpg  (or Test134Img/)   Test134Depth/ or Gridlaserdata/ depth_sph_corr-<stem>.mat

Files are found recursively inside those folders and paired by ``<stem>``;
an image without its ``.mat`` (or the reverse) is an item whose loading raises
a DataError naming the file, so ``probe data check`` lists it and ``skip_bad``
skips it.

Depth: the v5 ``.mat`` variable ``Position3DGrid`` is ``55 x 305 x 4``;
channel 4 (index 3) is the laser depth in metres (the laser saturates near
81 m).  Orientation: Saxena's own code declares the grid as
``VertYNuDepth = 55`` rows by ``HoriXNuDepth = 305`` columns for an image of
``VertYImg = 2272`` rows by ``HoriXImg = 1704`` columns (portrait).  So the
array as loaded is already in image orientation (55 high, 305 wide) and is not
transposed; the grid samples the image anisotropically (one row per ~41 image
rows, one column per ~5.6 image columns), and the base class's nearest resize
stretches it over the image.

Crops (option ``crop``):

* ``"monodepth"`` (default) — the evaluation used by Monodepth and Monodepth2
  (their published Make3D script): the image keeps its width and is centre
  cropped in height to ``width / 2`` rows (2:1; 852 of 2272 rows), and the
  depth grid keeps the same central fraction of its rows, rounded
  (``round(55 * 852 / 2272) = 21`` rows, rows 17..37).  Default input 256x512
  as in Monodepth's Make3D experiment.
* ``"full"`` — the full portrait image and full grid (the framing of Saxena et
  al. and Liu et al.); default input 320x240.

Cap: the C1 protocol keeps ground truth below 70 m (``max_depth`` 70), so the
base class marks laser returns beyond 70 m invalid (it keeps ``<= 70``; the
published scripts use ``< 70``, which differs only at exactly 70.0 m).

The target is at input resolution (``depth_scale`` 1.0): the 21x305 grid is
nearest-upsampled to 256x512, each laser sample covering 12-13 rows and 1-2
columns, so per-pixel metrics weight samples slightly unequally compared with
scoring on the 21x305 grid itself.  The original test set contains one
unreadable file; ``skip_bad=True`` skips it and names it.

    >>> ds = get_dataset("make3d", "/data/make3d", split="test")   # doctest: +SKIP
    >>> ds[0]["depth"].shape                                        # doctest: +SKIP
    torch.Size([1, 256, 512])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from probe.data.base import DatasetInfo, DepthDataset, RawSample, register_dataset
from probe.data.images import read_mat, read_rgb
from probe.errors import DataError
from probe.registry import Registry

IMAGE_PREFIX = "img-"
DEPTH_PREFIX = "depth_sph_corr-"
DEPTH_VARIABLE = "Position3DGrid"
DEPTH_CHANNEL = 3  # MATLAB's 4th channel
MAKE3D_MAX_DEPTH = 70.0

# folders that may hold each split, in the names the published archives extract to
SPLIT_FOLDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (("Train400Img",), ("Train400Depth",)),
    "test": (("Test134", "Test134Img"), ("Test134Depth", "Gridlaserdata")),
}

MAKE3D_INFO = DatasetInfo(
    name="make3d",
    description="Make3D: 400 train / 134 test outdoor images with laser depth grids (C1: < 70 m)",
    min_depth=1e-3,
    max_depth=MAKE3D_MAX_DEPTH,
    input_size=(256, 512),
    depth_scale=1.0,
    eval_protocol="make3d",
    source=(
        "http://cs.stanford.edu/group/reconstruction3d/Train400Img.tar.gz, Train400Depth.tgz, "
        "http://www.cs.cornell.edu/~asaxena/learningdepth/Test134.tar.gz, Test134Depth.tar.gz "
        "(`probe data download make3d`)"
    ),
    expected=(
        "Train400Img/img-*.jpg",
        "Train400Depth/depth_sph_corr-*.mat",
        "Test134/img-*.jpg",
        "Test134Depth/ (or Gridlaserdata/) depth_sph_corr-*.mat",
    ),
)


@dataclass(frozen=True)
class Make3DCrop:
    """A framing of image and grid: ``apply(image [H,W,3], depth [h,w]) -> (image, depth)``."""

    apply: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    input_size: tuple[int, int]


MAKE3D_CROPS: Registry[Make3DCrop] = Registry("make3d crop")


def monodepth_crop(image: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre crop the image to 2:1 (rows = width // 2) and the grid to the same row fraction."""
    height, width = image.shape[:2]
    keep = min(height, width // 2)
    top = (height - keep) // 2
    grid_rows = depth.shape[0]
    grid_keep = max(1, int(round(grid_rows * keep / height)))
    grid_top = (grid_rows - grid_keep) // 2
    return image[top : top + keep], depth[grid_top : grid_top + grid_keep]


MAKE3D_CROPS.register("monodepth", description="2:1 centre crop (Monodepth/Monodepth2 evaluation)")(
    Make3DCrop(monodepth_crop, (256, 512))
)
MAKE3D_CROPS.register("full", description="full portrait image and grid")(
    Make3DCrop(lambda image, depth: (image, depth), (320, 240))
)


def _stem(path: Path, prefix: str) -> str | None:
    return path.stem[len(prefix) :] if path.stem.startswith(prefix) else None


def _find(root: Path, folders: tuple[str, ...], prefix: str, suffixes: tuple[str, ...]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob(f"{prefix}*")):
            stem = _stem(path, prefix)
            if stem and path.is_file() and path.suffix.lower() in suffixes:
                found.setdefault(stem, path)
    return found


def locate_make3d(root: Path | None) -> bool:
    """True when the image and depth folders of at least one split exist under ``root``."""
    if root is None or not root.is_dir():
        return False
    return any(
        any((root / f).is_dir() for f in images) and any((root / f).is_dir() for f in depths)
        for images, depths in SPLIT_FOLDERS.values()
    )


@dataclass(frozen=True)
class Make3DPair:
    stem: str
    image: Path | None
    depth: Path | None


class Make3D(DepthDataset):
    """Make3D image / laser-grid pairs; see the module docstring for layout, crop and cap."""

    # the 55 x 305 grid samples the portrait image anisotropically: no common aspect ratio to check;
    # its orientation is checked instead (load_raw)
    pair_aspect_tolerance = None

    def __init__(
        self,
        root: Path,
        split: str = "train",
        crop: str = "monodepth",
        input_size: tuple[int, int] | None = None,
        **options: Any,
    ) -> None:
        self.crop = MAKE3D_CROPS.get(crop)
        super().__init__(MAKE3D_INFO, split=split, input_size=input_size or self.crop.input_size, **options)
        self.root = root
        image_dirs, depth_dirs = SPLIT_FOLDERS[split]
        images = _find(root, image_dirs, IMAGE_PREFIX, (".jpg", ".jpeg"))
        depths = _find(root, depth_dirs, DEPTH_PREFIX, (".mat",))
        if not images and not depths:
            raise DataError(
                f"make3d ({split}): no {IMAGE_PREFIX}*.jpg in {' or '.join(image_dirs)} and no "
                f"{DEPTH_PREFIX}*.mat in {' or '.join(depth_dirs)} under {root}; "
                f"get them from {MAKE3D_INFO.source}"
            )
        self.depth_dirs = depth_dirs
        self.pairs = [Make3DPair(s, images.get(s), depths.get(s)) for s in sorted(set(images) | set(depths))]

    def __len__(self) -> int:
        return len(self.pairs)

    def item_name(self, index: int) -> str:
        return f"make3d/{self.split}/{self.pairs[index].stem}"

    def load_raw(self, index: int) -> RawSample:
        pair = self.pairs[index]
        if pair.depth is None:
            raise DataError(f"{pair.image}: no partner {DEPTH_PREFIX}{pair.stem}.mat in {' or '.join(self.depth_dirs)}")
        if pair.image is None:
            raise DataError(f"{pair.depth}: no partner {IMAGE_PREFIX}{pair.stem}.jpg for this depth grid")
        image = read_rgb(pair.image)
        grid = read_mat(pair.depth, [DEPTH_VARIABLE])[DEPTH_VARIABLE]
        if grid.ndim != 3 or grid.shape[2] <= DEPTH_CHANNEL:
            raise DataError(f"{pair.depth}: {DEPTH_VARIABLE} must be rows x cols x 4, got shape {grid.shape}")
        if grid.shape[0] > grid.shape[1]:
            raise DataError(
                f"{pair.depth}: {DEPTH_VARIABLE} is {grid.shape[0]} x {grid.shape[1]} x "
                f"{grid.shape[2]}, transposed (the published grids are 55 rows x 305 columns)"
            )
        depth = np.asarray(grid[:, :, DEPTH_CHANNEL], dtype=np.float32)
        image, depth = self.crop.apply(image, depth)
        return RawSample(
            image=np.ascontiguousarray(image),
            depth=np.ascontiguousarray(depth),
            name=self.item_name(index),
            files=f"{pair.image} with depth {pair.depth}",
        )


@register_dataset(MAKE3D_INFO, locate=locate_make3d)
def _build_make3d(root: Path, split: str = "train", **options: Any) -> Make3D:
    if not locate_make3d(root):
        raise DataError(MAKE3D_INFO.missing_root_message(root))
    return Make3D(root, split=split, **options)
