"""NYU Depth v2 in its two published forms.

``nyu`` — DenseDepth's archive ``nyu_data.zip`` (the CS231A/DenseDepth 50K
subset), read in place without extracting, or its extracted folder::

    nyu_data.zip
      data/nyu2_train.csv          rows "rgb,depth" relative to the archive root
      data/nyu2_train/<scene>/<k>.jpg, <k>.png      8-bit depth: metres = value / 255 * 10
      data/nyu2_test.csv
      data/nyu2_test/<k>_colors.png, <k>_depth.png  16-bit depth: metres = value / 1000

The unit follows the PNG's bit depth (8-bit: 10 m / 255 per count, 16-bit:
millimetres), which is how DenseDepth's loader treats the two splits.  As in
DenseDepth, non-zero depths are clamped to 0.1-10 m; zero (no return) stays 0
and therefore invalid.  Input 480x640, target 240x320 (``depth_scale`` 0.5).

The root may be the zip itself, a folder holding ``nyu_data.zip``, or the
extracted folder that holds ``data/`` (preferred when both are present).

``nyu_labeled`` — ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5) with
the standard 795/654 split from ``splits.mat`` (1-based ``trainNdxs`` and
``testNdxs``).  h5py shows MATLAB arrays with reversed axes: ``images`` is
``N x 3 x W x H`` uint8 and ``depths`` ``N x W x H`` float32 metres, so items
are transposed back to ``H x W``.  The depths are the toolbox's in-painted
maps; they are not clamped (values beyond 10 m become invalid in the base class).

Both readers open their archive lazily, once per process, so they work with
forked or spawned DataLoader workers::

    >>> ds = get_dataset("nyu", "/data/nyu_data.zip", split="test")   # doctest: +SKIP
    >>> ds[0]["depth"].shape                                           # doctest: +SKIP
    torch.Size([1, 240, 320])
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from probe.data.base import DatasetInfo, DepthDataset, RawSample, check_list_path, register_dataset
from probe.data.images import (
    PerProcessHandle,
    check_data_file,
    mat_v73_variables,
    open_mat_v73,
    read_depth_png,
    read_mat,
    read_rgb,
)
from probe.errors import DataError, reason
from probe.limits import MAX_DATA_FILE_BYTES

NYU_ZIP = "nyu_data.zip"
NYU_CSV = {"train": "data/nyu2_train.csv", "test": "data/nyu2_test.csv"}
NYU_MIN_DEPTH = 0.1
NYU_MAX_DEPTH = 10.0
# metres per PNG count, keyed by the decoded dtype (DenseDepth's two conventions)
NYU_PNG_UNITS: dict[type, float] = {np.uint8: NYU_MAX_DEPTH / 255.0, np.uint16: 1.0 / 1000.0}

LABELED_MAT = "nyu_depth_v2_labeled.mat"
SPLITS_MAT = "splits.mat"
SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}

NYU_INFO = DatasetInfo(
    name="nyu",
    description="NYU Depth v2, DenseDepth's 50K training subset and 654 test pairs (nyu_data.zip)",
    min_depth=NYU_MIN_DEPTH,
    max_depth=NYU_MAX_DEPTH,
    input_size=(480, 640),
    depth_scale=0.5,
    eval_protocol="nyu",
    source="https://s3-eu-west-1.amazonaws.com/densedepth/nyu_data.zip (4.1 GB; `probe data download nyu`)",
    expected=(NYU_ZIP, f"or its extracted {NYU_CSV['train']}, {NYU_CSV['test']} and the files they list"),
)

LABELED_INFO = DatasetInfo(
    name="nyu_labeled",
    description="NYU Depth v2 labeled set (1449 pairs, .mat v7.3) with the standard 795/654 split",
    min_depth=NYU_MIN_DEPTH,
    max_depth=NYU_MAX_DEPTH,
    input_size=(480, 640),
    depth_scale=0.5,
    eval_protocol="nyu",
    source=(
        "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat and "
        "http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat (`probe data download nyu_labeled`)"
    ),
    expected=(LABELED_MAT, SPLITS_MAT),
)


# -- nyu_data.zip -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NyuLocation:
    """Where the DenseDepth files are: a zip archive or an extracted folder (the one holding ``data/``)."""

    path: Path
    is_zip: bool

    def label(self, member: str) -> str:
        return f"{self.path}:{member}" if self.is_zip else str(self.path / member)


def locate_nyu(root: Path | None) -> NyuLocation | None:
    """Resolve a root given as the zip, a folder holding it, or the extracted folder."""
    if root is None or not root.exists():
        return None
    if root.is_file():
        return NyuLocation(root, True) if zipfile.is_zipfile(root) else None
    if any((root / csv).is_file() for csv in NYU_CSV.values()):
        return NyuLocation(root, False)
    if root.name == "data" and any((root.parent / csv).is_file() for csv in NYU_CSV.values()):
        return NyuLocation(root.parent, False)
    if (root / NYU_ZIP).is_file() and zipfile.is_zipfile(root / NYU_ZIP):
        return NyuLocation(root / NYU_ZIP, True)
    return None


def parse_pair_csv(data: bytes, label: str) -> list[tuple[str, str]]:
    """``"rgb,depth"`` rows (UTF-8 text) -> pairs of relative paths inside the dataset root.

    Blank lines are ignored; binary content (a NUL byte, invalid UTF-8), a row without exactly two
    paths, an absolute or ``..`` path, and a list without any pair are DataErrors naming the file.
    """
    if b"\x00" in data:
        raise DataError(f"{label}: contains a NUL byte; expected a text CSV of 'rgb,depth' rows")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text (byte {exc.start}); expected a CSV of 'rgb,depth' rows") from None
    pairs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise DataError(f"{label}, line {lineno}: expected 'rgb,depth' (two paths), got {line.strip()[:200]!r}")
        where = f"{label}, line {lineno}"
        pairs.append((check_list_path(parts[0], where), check_list_path(parts[1], where)))
    if not pairs:
        raise DataError(f"{label}: lists no image/depth pairs (empty split); expected rows 'rgb,depth'")
    return pairs


def nyu_depth_metres(counts: np.ndarray, label: str) -> np.ndarray:
    """PNG counts -> metres (8-bit: x 10/255; 16-bit: x 1/1000), non-zero clamped to 0.1-10 m."""
    unit = NYU_PNG_UNITS.get(counts.dtype.type)
    if unit is None:
        raise DataError(f"{label}: expected an 8- or 16-bit depth PNG, got {counts.dtype}")
    metres = counts.astype(np.float32) * np.float32(unit)
    return np.where(counts > 0, np.clip(metres, NYU_MIN_DEPTH, NYU_MAX_DEPTH), 0.0).astype(np.float32)


def _open_zip(path: Path) -> zipfile.ZipFile:
    check_data_file(path, max_bytes=None)
    try:
        return zipfile.ZipFile(path)
    except Exception as exc:  # zipfile's parser on untrusted bytes
        raise DataError(f"{path}: cannot open zip archive ({reason(exc)})") from None


class NyuDenseDepth(DepthDataset):
    """DenseDepth's ``nyu_data.zip`` (or its extracted folder); see the module docstring."""

    def __init__(self, location: NyuLocation, split: str = "train", **options: Any) -> None:
        super().__init__(NYU_INFO, split=split, **options)
        self.location = location
        self._zip: PerProcessHandle[zipfile.ZipFile] | None = (
            PerProcessHandle(functools.partial(_open_zip, location.path)) if location.is_zip else None
        )
        csv = NYU_CSV[split]
        self.pairs = parse_pair_csv(self._read(csv), location.label(csv))

    def _read(self, member: str) -> bytes:
        label = self.location.label(member)
        if self._zip is None:
            path = self.location.path / member
            if not path.resolve().is_relative_to(self.location.path.resolve()):
                raise DataError(f"{label}: resolves outside the dataset root {self.location.path} (a symlink?)")
            check_data_file(path, label)
            try:
                return path.read_bytes()
            except OSError as exc:
                raise DataError(f"{label}: cannot read file ({exc.strerror or exc})") from None
        archive = self._zip.get()
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise DataError(f"{label}: file not found in the archive") from None
        if info.file_size > MAX_DATA_FILE_BYTES:
            raise DataError(
                f"{label}: {info.file_size:,} bytes uncompressed, more than the "
                f"{MAX_DATA_FILE_BYTES:,} probe reads whole from one file"
            )
        try:
            return archive.read(info)
        except Exception as exc:  # zipfile/zlib on a corrupt archive: any failure means a corrupt member
            raise DataError(f"{label}: corrupt archive member ({reason(exc)})") from None

    def __len__(self) -> int:
        return len(self.pairs)

    def item_name(self, index: int) -> str:
        return self.pairs[index][0]

    def load_raw(self, index: int) -> RawSample:
        rgb_member, depth_member = self.pairs[index]
        image = read_rgb(self._read(rgb_member), self.location.label(rgb_member))
        depth_label = self.location.label(depth_member)
        depth = nyu_depth_metres(read_depth_png(self._read(depth_member), depth_label), depth_label)
        return RawSample(
            image=image,
            depth=depth,
            name=rgb_member,
            files=f"{self.location.label(rgb_member)} with depth {depth_label}",
        )


@register_dataset(NYU_INFO, locate=lambda root: locate_nyu(root) is not None)
def _build_nyu(root: Path, split: str = "train", **options: Any) -> NyuDenseDepth:
    location = locate_nyu(root)
    if location is None and root.is_file():
        raise DataError(f"{root}: not a readable zip archive; expected DenseDepth's {NYU_ZIP} from {NYU_INFO.source}")
    if location is None:
        raise DataError(NYU_INFO.missing_root_message(root))
    return NyuDenseDepth(location, split=split, **options)


# -- nyu_depth_v2_labeled.mat -------------------------------------------------------------------


def locate_labeled(root: Path | None) -> tuple[Path, Path] | None:
    """``(labeled .mat, splits.mat)`` from a folder holding both, or from the labeled .mat itself."""
    if root is None or not root.exists():
        return None
    folder = root.parent if root.is_file() else root
    mat = root if root.is_file() else root / LABELED_MAT
    splits = folder / SPLITS_MAT
    return (mat, splits) if mat.is_file() and splits.is_file() else None


def read_split_indices(splits: Path, split: str, count: int) -> np.ndarray:
    """1-based MATLAB indices of ``split`` from ``splits.mat``, checked against the ``count`` items."""
    key = SPLIT_KEYS[split]
    indices = read_mat(splits, [key])[key].reshape(-1)
    if indices.size == 0 or not np.all(np.isfinite(indices)) or np.any(indices != np.round(indices)):
        raise DataError(f"{splits}: {key} must be a non-empty list of integer indices")
    indices = indices.astype(np.int64)
    if indices.min() < 1 or indices.max() > count:
        raise DataError(
            f"{splits}: {key} holds indices {indices.min()}..{indices.max()}, "
            f"expected 1-based indices within 1..{count} (the items in {LABELED_MAT})"
        )
    return indices


class NyuLabeled(DepthDataset):
    """``nyu_depth_v2_labeled.mat`` + ``splits.mat``; see the module docstring."""

    def __init__(self, mat: Path, splits: Path, split: str = "train", **options: Any) -> None:
        super().__init__(LABELED_INFO, split=split, **options)
        self.mat = mat
        handle = open_mat_v73(mat)
        try:
            count = self._check_layout(handle)
        finally:
            handle.close()
        self.indices = read_split_indices(splits, split, count)
        self._h5 = PerProcessHandle(functools.partial(open_mat_v73, mat))

    def _check_layout(self, handle: Any) -> int:
        present = mat_v73_variables(handle, str(self.mat))
        for key in ("images", "depths"):
            if key not in present:
                raise DataError(f"{self.mat}: variable {key!r} not found; expected 'images' and 'depths'")
        try:
            images, depths = handle["images"].shape, handle["depths"].shape
            kinds = handle["images"].dtype.kind, handle["depths"].dtype.kind
        except Exception as exc:  # h5py on a corrupt file, or groups where datasets belong
            raise DataError(f"{self.mat}: cannot read 'images' / 'depths' ({reason(exc)})") from None
        if any(kind not in "uif" for kind in kinds):
            raise DataError(
                f"{self.mat}: 'images' and 'depths' must be real numbers, got dtypes "
                f"{handle['images'].dtype} and {handle['depths'].dtype}"
            )
        if len(images) != 4 or images[1] != 3 or len(depths) != 3 or depths[0] != images[0] or depths[1:] != images[2:]:
            raise DataError(
                f"{self.mat}: expected images N x 3 x W x H and depths N x W x H (h5py order), "
                f"got images {images} and depths {depths}"
            )
        return int(images[0])

    def __len__(self) -> int:
        return len(self.indices)

    def item_name(self, index: int) -> str:
        return f"{LABELED_MAT}#{int(self.indices[index])}"

    def load_raw(self, index: int) -> RawSample:
        name = self.item_name(index)
        row = int(self.indices[index]) - 1
        try:
            handle = self._h5.get()
            image = np.asarray(handle["images"][row], dtype=np.uint8).transpose(2, 1, 0)
            depth = np.asarray(handle["depths"][row], dtype=np.float32).T
        except Exception as exc:  # h5py on a corrupt file: any failure means this item cannot be read
            raise DataError(f"{name}: cannot read item from {self.mat} ({reason(exc)})") from None
        return RawSample(image=np.ascontiguousarray(image), depth=np.ascontiguousarray(depth), name=name)


@register_dataset(LABELED_INFO, locate=lambda root: locate_labeled(root) is not None)
def _build_labeled(root: Path, split: str = "train", **options: Any) -> NyuLabeled:
    found = locate_labeled(root)
    if found is None:
        raise DataError(LABELED_INFO.missing_root_message(root))
    return NyuLabeled(*found, split=split, **options)
