"""DenseDepth's NYU Depth v2 test archive ``nyu_test.zip``, read in place (the ``nyu_densedepth`` protocol's data).

Layout (what DenseDepth's ``evaluate.py`` loads with ``np.load``)::

    nyu_test.zip
      eigen_test_rgb.npy     654 x 480 x 640 x 3 uint8
      eigen_test_depth.npy   654 x 480 x 640 float, metres
      eigen_test_crop.npy    4 integers: row start, row end, col start, col end, *inclusive*
                             (DenseDepth slices [crop[0]:crop[1]+1, crop[2]:crop[3]+1])

The root may be the zip, a folder holding it, or a folder holding the three
extracted ``.npy`` files.  Arrays are never loaded whole: each item is read at
its byte offset inside the ``.npy`` member (the header gives shape, dtype and
order), through one archive handle per process, so DataLoader workers are safe.
A crop file with other than four integers inside the 480x640 map is an error;
without the crop file the protocol keeps its default, DenseDepth's
(20, 459, 24, 615), and ``eval.json`` records where the crop came from
(``protocol_choices.crop.from``).

Items follow :class:`~probe.data.base.DepthDataset`: input 480x640 (the RGB as
stored), target 240x320 for training-style use, and the full 480x640 ground truth
when evaluating.  Only ``split="test"`` exists.

    >>> ds = get_dataset("nyu_test", "/data/nyu_test.zip", split="test")   # doctest: +SKIP
    >>> len(ds), ds.crop                                                    # doctest: +SKIP
    (654, (20, 459, 24, 615))
"""

from __future__ import annotations

import functools
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from probe.data.base import DatasetInfo, DepthDataset, RawSample, register_dataset
from probe.data.images import PerProcessHandle
from probe.data.nyu import NyuLocation, _open_zip  # the same archive-or-folder handling as nyu_data.zip
from probe.errors import DataError
from probe.metrics import DENSEDEPTH_NYU_CROP, NYU_SIZE, EvalProtocol

NYU_TEST_ZIP = "nyu_test.zip"
RGB_NPY, DEPTH_NPY, CROP_NPY = "eigen_test_rgb.npy", "eigen_test_depth.npy", "eigen_test_crop.npy"

NYU_TEST_INFO = DatasetInfo(
    name="nyu_test",
    description="DenseDepth's NYU v2 test archive (654 Eigen test pairs as .npy, metres) for its evaluation recipe",
    min_depth=0.1,
    max_depth=10.0,
    input_size=NYU_SIZE,
    depth_scale=0.5,
    eval_protocol="nyu_densedepth",
    source="https://s3-eu-west-1.amazonaws.com/densedepth/nyu_test.zip (DenseDepth's README, 'Evaluation')",
    expected=(NYU_TEST_ZIP, f"or its extracted {RGB_NPY}, {DEPTH_NPY} (and {CROP_NPY})"),
)


@dataclass(frozen=True)
class NpyLayout:
    """Where item ``i`` of a C-ordered ``.npy`` array lies: ``offset + i * item_bytes``, shape ``item_shape``."""

    count: int
    item_shape: tuple[int, ...]
    dtype: np.dtype
    offset: int

    @property
    def item_bytes(self) -> int:
        return int(np.prod(self.item_shape)) * self.dtype.itemsize


def read_npy_layout(handle: IO[bytes], label: str) -> NpyLayout:
    """Parse a ``.npy`` header at the start of ``handle`` (no pickles, C order only)."""
    try:
        version = np.lib.format.read_magic(handle)
        reader = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = reader(handle)
    except (ValueError, KeyError, OSError, EOFError) as exc:
        raise DataError(f"{label}: not a readable .npy array ({exc})") from None
    if fortran or dtype.hasobject or not shape:
        raise DataError(
            f"{label}: expected a C-ordered numeric array, got shape {shape}, dtype {dtype}, fortran_order={fortran}"
        )
    return NpyLayout(int(shape[0]), tuple(int(s) for s in shape[1:]), dtype, handle.tell())


def locate_nyu_test(root: Path | None) -> NyuLocation | None:
    """Resolve a root given as the zip, a folder holding it, or a folder of the extracted arrays."""
    if root is None or not root.exists():
        return None
    if root.is_file():
        return NyuLocation(root, True) if zipfile.is_zipfile(root) else None
    if (root / RGB_NPY).is_file() and (root / DEPTH_NPY).is_file():
        return NyuLocation(root, False)
    if (root / NYU_TEST_ZIP).is_file() and zipfile.is_zipfile(root / NYU_TEST_ZIP):
        return NyuLocation(root / NYU_TEST_ZIP, True)
    return None


class NyuTest(DepthDataset):
    """``nyu_test.zip`` (or its extracted arrays); see the module docstring."""

    def __init__(self, location: NyuLocation, split: str = "test", **options: Any) -> None:
        if split != "test":
            raise DataError(f"nyu_test: holds the test split only, got split={split!r}")
        super().__init__(NYU_TEST_INFO, split=split, **options)
        self.location = location
        self._zip: PerProcessHandle[zipfile.ZipFile] | None = (
            PerProcessHandle(functools.partial(_open_zip, location.path)) if location.is_zip else None
        )
        # Open member streams, one set per process: a compressed member is read forward from where the
        # last item ended (evaluation reads in order), not decompressed again from its start per item.
        self._streams: PerProcessHandle[dict[str, IO[bytes]]] = PerProcessHandle(dict)
        self.rgb_layout = self._layout(RGB_NPY)
        self.depth_layout = self._layout(DEPTH_NPY)
        self._check_layouts()
        self.crop, self.crop_source = self._read_crop()

    def _open(self, member: str) -> IO[bytes]:
        label = self.location.label(member)
        try:
            if self._zip is None:
                return open(self.location.path / member, "rb")
            return self._zip.get().open(member)
        except (FileNotFoundError, KeyError):
            raise DataError(f"{label}: file not found{' in the archive' if self._zip else ''}") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{label}: cannot open ({exc})") from None

    def _has(self, member: str) -> bool:
        if self._zip is None:
            return (self.location.path / member).is_file()
        return member in self._zip.get().namelist()

    def _layout(self, member: str) -> NpyLayout:
        with self._open(member) as handle:
            return read_npy_layout(handle, self.location.label(member))

    def _check_layouts(self) -> None:
        rgb, depth = self.rgb_layout, self.depth_layout
        if len(rgb.item_shape) != 3 or rgb.item_shape[2] != 3 or rgb.dtype != np.uint8:
            raise DataError(
                f"{self.location.label(RGB_NPY)}: expected N x H x W x 3 uint8, "
                f"got {(rgb.count, *rgb.item_shape)} {rgb.dtype}"
            )
        if depth.item_shape != rgb.item_shape[:2] or depth.count != rgb.count or depth.dtype.kind != "f":
            raise DataError(
                f"{self.location.label(DEPTH_NPY)}: expected {rgb.count} x {rgb.item_shape[0]} x "
                f"{rgb.item_shape[1]} float metres matching the RGB, got {(depth.count, *depth.item_shape)} "
                f"{depth.dtype}"
            )

    def _read_crop(self) -> tuple[tuple[int, int, int, int], str]:
        """DenseDepth's inclusive crop from ``eigen_test_crop.npy``, else its known value."""
        if not self._has(CROP_NPY):
            return DENSEDEPTH_NYU_CROP, "default (no eigen_test_crop.npy in the archive)"
        label = self.location.label(CROP_NPY)
        with self._open(CROP_NPY) as handle:
            try:
                values = np.load(handle, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise DataError(f"{label}: cannot read .npy array ({exc})") from None
        flat = np.asarray(values).reshape(-1)
        h, w = self.depth_layout.item_shape
        if flat.size != 4 or not np.all(np.isfinite(flat)) or np.any(flat != np.round(flat)):
            raise DataError(
                f"{label}: expected 4 integers (row start, row end, col start, col end), got {flat.tolist()}"
            )
        r0, r1, c0, c1 = (int(v) for v in flat)
        if not (0 <= r0 <= r1 < h and 0 <= c0 <= c1 < w):
            raise DataError(f"{label}: crop {[r0, r1, c0, c1]} (inclusive) lies outside the {h}x{w} ground truth")
        return (r0, r1, c0, c1), f"file {label}"

    def protocol_override(self, protocol: EvalProtocol) -> EvalProtocol:
        """The ``nyu_densedepth`` protocol with this archive's crop (other protocols unchanged)."""
        if protocol.name != "nyu_densedepth":
            return protocol
        return protocol.with_pixel_crop(self.crop, self.depth_layout.item_shape, source=self.crop_source)  # type: ignore[arg-type]

    def _item(self, member: str, layout: NpyLayout, index: int) -> np.ndarray:
        label = f"{self.location.label(member)}[{index}]"
        streams = self._streams.get()
        try:
            if member not in streams:
                streams[member] = self._open(member)
            handle = streams[member]
            handle.seek(layout.offset + index * layout.item_bytes)
            data = handle.read(layout.item_bytes)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise DataError(f"{label}: corrupt archive member ({exc})") from None
        if len(data) != layout.item_bytes:
            raise DataError(f"{label}: truncated (expected {layout.item_bytes} bytes, got {len(data)})")
        return np.frombuffer(data, dtype=layout.dtype).reshape(layout.item_shape)

    def __len__(self) -> int:
        return self.rgb_layout.count

    def item_name(self, index: int) -> str:
        return f"{NYU_TEST_ZIP}#{index}"

    def load_raw(self, index: int) -> RawSample:
        image = self._item(RGB_NPY, self.rgb_layout, index)
        depth = self._item(DEPTH_NPY, self.depth_layout, index).astype(np.float32)
        return RawSample(image=image.copy(), depth=depth, name=self.item_name(index))


@register_dataset(NYU_TEST_INFO, locate=lambda root: locate_nyu_test(root) is not None)
def _build(root: Path, split: str = "test", **options: Any) -> NyuTest:
    location = locate_nyu_test(root)
    if location is None and root.is_file():
        raise DataError(
            f"{root}: not a readable zip archive; expected DenseDepth's {NYU_TEST_ZIP} from {NYU_TEST_INFO.source}"
        )
    if location is None:
        raise DataError(NYU_TEST_INFO.missing_root_message(root))
    return NyuTest(location, split=split, **options)
