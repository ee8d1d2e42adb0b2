"""The one loader for image and depth files, used by every dataset reader.

Every decoder here turns a failure into a :class:`~probe.errors.DataError`
whose message starts with the file's name, so a reader never has to catch
PIL, NumPy, SciPy or h5py exceptions itself (and ``skip_bad`` can count it).

A *source* is either a path or the raw bytes of a file (e.g. a member of a
zip archive); ``name`` is what error messages call it::

    >>> rgb = read_rgb(Path("img-1.jpg"))                       # doctest: +SKIP
    >>> counts = read_depth_png(zip_bytes, "nyu_data.zip:data/nyu2_test/00000_depth.png")  # doctest: +SKIP

Shapes: ``read_rgb -> uint8 [H,W,3]``; ``read_depth_png -> uint8|uint16 [H,W]``
(raw counts: the caller knows the dataset's unit); ``read_npy -> ndarray``;
``read_depth_metres -> float32 [H,W]``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, TypeVar

import numpy as np
from PIL import Image

from probe.errors import DataError
from probe.registry import Registry

Source = Path | bytes

# MATLAB v7.3 files are HDF5 files with a 512-byte text header in front.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512)

# PIL's decompression-bomb guard is a warning below 2x the limit; a depth
# dataset has no business shipping such files, so treat the warning as corrupt.
_PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def _label(source: Source, name: str | None) -> str:
    if name:
        return name
    return str(source) if isinstance(source, Path) else "<bytes>"


def _open_bytes(source: Source, label: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{label}: file not found") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot read file ({exc.strerror or exc})") from None


def _decode_pil(source: Source, label: str) -> Image.Image:
    data = _open_bytes(source, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()  # PIL decodes lazily: force truncation errors to surface here
    except (*_PIL_ERRORS, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{label}: cannot decode image ({type(exc).__name__}: {exc})") from None
    return image


def read_rgb(source: Source, name: str | None = None) -> np.ndarray:
    """Decode an RGB image (JPEG, PNG, ...) -> ``uint8 [H,W,3]``.

    Greyscale and palette images are converted to RGB; an alpha channel is dropped.
    """
    label = _label(source, name)
    image = _decode_pil(source, label)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise DataError(f"{label}: expected an 8-bit colour image, got a {image.mode} (depth-like) image")
    try:
        arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except _PIL_ERRORS as exc:
        raise DataError(f"{label}: cannot convert image to RGB ({exc})") from None
    return np.ascontiguousarray(arr)


def read_depth_png(source: Source, name: str | None = None) -> np.ndarray:
    """Decode a single-channel 8- or 16-bit PNG -> raw counts ``uint8|uint16 [H,W]``.

    The unit is the dataset's business (NYU test: millimetres; KITTI: 1/256 m;
    DenseDepth's training PNGs: 10 m / 255), so no scaling happens here.
    """
    label = _label(source, name)
    image = _decode_pil(source, label)
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8).copy()
    if image.mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    if image.mode == "I":
        arr = np.asarray(image)
        if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.uint16).max):
            raise DataError(f"{label}: 32-bit PNG values outside the 16-bit range; expected a 16-bit depth PNG")
        return arr.astype(np.uint16)
    raise DataError(f"{label}: expected a single-channel 8- or 16-bit depth PNG, got PIL mode {image.mode!r}")


def read_npy(source: Source, name: str | None = None) -> np.ndarray:
    """Load a ``.npy`` array (no pickles)."""
    label = _label(source, name)
    data = _open_bytes(source, label)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{label}: cannot read .npy array ({exc})") from None


def is_mat_v73(path: Path) -> bool:
    """Whether ``path`` is a MATLAB v7.3 (HDF5) file rather than a v5 file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HDF5_OFFSETS[-1] + len(_HDF5_SIGNATURE))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return any(head[o : o + len(_HDF5_SIGNATURE)] == _HDF5_SIGNATURE for o in _HDF5_OFFSETS)


def read_mat(path: Path, keys: Iterable[str], name: str | None = None) -> dict[str, np.ndarray]:
    """Read variables ``keys`` from a v5 (scipy) or v7.3 (h5py) ``.mat`` file.

    Arrays come back in MATLAB's axis order for both versions: h5py exposes
    v7.3 arrays with their axes reversed, so those are transposed back here.
    A missing variable is a DataError naming the file and the variables present.
    """
    label = _label(path, name)
    keys = list(keys)
    if is_mat_v73(path):
        handle = open_mat_v73(path, label)
        try:
            missing = [k for k in keys if k not in handle]
            if missing:
                raise DataError(
                    f"{label}: variable(s) {', '.join(missing)} not found; "
                    f"file has {', '.join(sorted(handle.keys())) or 'none'}"
                )
            try:
                return {k: np.asarray(handle[k][()]).T for k in keys}
            except (OSError, KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{label}: cannot read MATLAB v7.3 variable ({exc})") from None
        finally:
            handle.close()
    return _read_mat_v5(path, keys, label)


def _read_mat_v5(path: Path, keys: list[str], label: str) -> dict[str, np.ndarray]:
    import scipy.io

    try:
        content = scipy.io.loadmat(str(path), variable_names=keys)
    except FileNotFoundError:
        raise DataError(f"{label}: file not found") from None
    except (ValueError, OSError, TypeError, EOFError, NotImplementedError, IndexError, UnicodeDecodeError) as exc:
        raise DataError(f"{label}: cannot read MATLAB v5 file ({type(exc).__name__}: {exc})") from None
    missing = [k for k in keys if k not in content]
    if missing:
        present = sorted(k for k in content if not k.startswith("__"))
        raise DataError(f"{label}: variable(s) {', '.join(missing)} not found; file has {', '.join(present) or 'none'}")
    return {k: np.asarray(content[k]) for k in keys}


def open_mat_v73(path: Path, name: str | None = None) -> Any:
    """Open a MATLAB v7.3 file read-only as an ``h5py.File`` (for lazy, per-item reads)."""
    import h5py

    label = _label(path, name)
    if not Path(path).is_file():
        raise DataError(f"{label}: file not found")
    try:
        return h5py.File(str(path), "r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{label}: cannot open MATLAB v7.3 (HDF5) file ({exc})") from None


def _png_depth_metres(source: Source, label: str, png_scale: float) -> np.ndarray:
    return read_depth_png(source, label).astype(np.float32) * np.float32(png_scale)


def _npy_depth_metres(source: Source, label: str, png_scale: float) -> np.ndarray:
    arr = read_npy(source, label)
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:-1])
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{label}: expected a 2-D numeric depth array in metres, got {arr.dtype} {arr.shape}")
    return arr.astype(np.float32)


DepthDecoder = Callable[[Source, str, float], np.ndarray]
DEPTH_FORMATS: Registry[DepthDecoder] = Registry("depth file format")
DEPTH_FORMATS.register(".png", description="8/16-bit PNG counts x png_scale metres")(_png_depth_metres)
DEPTH_FORMATS.register(".npy", description="float array, metres")(_npy_depth_metres)


def read_depth_metres(path: Path, png_scale: float, name: str | None = None) -> np.ndarray:
    """Depth in metres ``float32 [H,W]`` from a ``.png`` (counts x ``png_scale``) or ``.npy`` (metres) file."""
    label = _label(path, name)
    suffix = Path(path).suffix.lower()
    if suffix not in DEPTH_FORMATS:
        raise DataError(
            f"{label}: unsupported depth file type {suffix!r}; expected one of {', '.join(DEPTH_FORMATS.names())}"
        )
    return DEPTH_FORMATS.get(suffix)(path, label, png_scale)


H = TypeVar("H")


class PerProcessHandle(Generic[H]):
    """A lazily opened file handle that is never shared across processes.

    DataLoader workers are forked (or spawned) copies of the dataset; a
    ``ZipFile`` or ``h5py.File`` opened in the parent and used from several
    children reads from one shared file offset and returns garbage.  This
    wrapper opens the handle on first use in each process (keyed by PID) and
    drops it when pickled, so every worker gets its own.
    """

    def __init__(self, opener: Callable[[], H]) -> None:
        self._opener = opener
        self._handle: H | None = None
        self._pid: int | None = None

    def get(self) -> H:
        pid = os.getpid()
        if self._handle is None or self._pid != pid:
            self._handle = self._opener()
            self._pid = pid
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            close = getattr(self._handle, "close", None)
            if callable(close):
                close()
        self._handle, self._pid = None, None

    def __getstate__(self) -> dict[str, Any]:
        return {"_opener": self._opener, "_handle": None, "_pid": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
