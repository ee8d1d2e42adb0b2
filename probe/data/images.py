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

Every reader validates before it allocates: a path must be a regular file
(a FIFO would block forever, a device never ends) of at most
:data:`~probe.limits.MAX_DATA_FILE_BYTES`; a ``.npy`` header is parsed first and
its shape (no zero-size axis), dtype (real numbers: no complex, object,
structured or string arrays) and element count (at most
:data:`~probe.limits.MAX_ARRAY_ELEMENTS`) checked against the bytes actually
present; a ``.mat`` variable's class and shape are read from its header
(``scipy.io.whosmat`` / the HDF5 dataset) before its data.  Decoders are
third-party parsers of untrusted bytes: any exception they raise on a corrupt
file becomes a DataError naming the file.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, TypeVar

import numpy as np
from PIL import Image

from probe.errors import DataError, reason
from probe.limits import MAX_ARRAY_ELEMENTS, MAX_DATA_FILE_BYTES
from probe.registry import Registry

Source = Path | bytes

# MATLAB v7.3 files are HDF5 files with a 512-byte text header in front.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512)

# MATLAB classes that hold plain real or complex numbers (complex is refused after loading).
MAT_NUMERIC_CLASSES = frozenset(
    {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
)


def _label(source: Source, name: str | None) -> str:
    if name:
        return name
    return str(source) if isinstance(source, Path) else "<bytes>"


def check_data_file(path: Path, label: str | None = None, max_bytes: int | None = MAX_DATA_FILE_BYTES) -> int:
    """The size of ``path`` if it is a readable regular file of at most ``max_bytes``, else a DataError.

    Checked with ``stat`` before opening: opening a FIFO blocks until a writer appears.
    ``max_bytes=None`` for containers read lazily (HDF5, zip), which may be larger.
    """
    label = label or str(path)
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"{label}: file not found") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise DataError(f"{label}: cannot read file ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, device or socket"
        raise DataError(f"{label}: is {kind}, not a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise DataError(f"{label}: {info.st_size:,} bytes, more than the {max_bytes:,} probe reads whole from one file")
    return info.st_size


def _open_bytes(source: Source, label: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    check_data_file(Path(source), label)
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
            # PIL's decompression-bomb guard is only a warning below 2x its limit; a depth
            # dataset has no business shipping such files, so treat the warning as corrupt
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()  # PIL decodes lazily: force truncation errors to surface here
    except Exception as exc:  # a parser of untrusted bytes: whatever it raises means a corrupt file
        raise DataError(f"{label}: cannot decode image ({reason(exc)})") from None
    if 0 in image.size:
        raise DataError(f"{label}: image has a zero-size side ({image.size[1]}x{image.size[0]})")
    return image


def read_image_size(path: Path) -> tuple[int, int]:
    """``(H, W)`` from an image file's header, without decoding its pixels: a cheap check before any work."""
    label = str(path)
    check_data_file(Path(path), label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Exception as exc:  # a parser of untrusted bytes
        raise DataError(f"{label}: cannot decode image ({reason(exc)})") from None
    if width <= 0 or height <= 0:
        raise DataError(f"{label}: image has a zero-size side ({height}x{width})")
    return height, width


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
    except Exception as exc:  # PIL's converters on odd modes of a corrupt file
        raise DataError(f"{label}: cannot convert image to RGB ({reason(exc)})") from None
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


def check_real_array(shape: tuple[int, ...], dtype: np.dtype, label: str, what: str = "array") -> int:
    """Element count of a ``shape``/``dtype`` about to be allocated, or a DataError: real numbers only,
    no zero-size axis, at most :data:`~probe.limits.MAX_ARRAY_ELEMENTS` elements."""
    if dtype.kind == "c":
        raise DataError(f"{label}: {what} holds complex values ({dtype}); expected real numbers")
    if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise DataError(f"{label}: {what} has dtype {dtype}; expected real numbers (integer or float)")
    if len(shape) == 0 or any(int(n) <= 0 for n in shape):
        raise DataError(f"{label}: {what} has shape {tuple(shape)}; expected no empty axis")
    count = math.prod(int(n) for n in shape)
    if count > MAX_ARRAY_ELEMENTS:
        raise DataError(
            f"{label}: {what} of shape {tuple(shape)} has {count:,} elements, more than the "
            f"{MAX_ARRAY_ELEMENTS:,} probe reads from one file"
        )
    return count


def read_npy(source: Source, name: str | None = None) -> np.ndarray:
    """Load a ``.npy`` array of real numbers (no pickles), checking its header before allocating."""
    label = _label(source, name)
    data = _open_bytes(source, label)
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as exc:  # numpy's header parser on untrusted bytes
        raise DataError(f"{label}: cannot read .npy header ({reason(exc)})") from None
    count = check_real_array(shape, dtype, label, ".npy array")
    present = len(data) - stream.tell()
    if present < count * dtype.itemsize:
        raise DataError(
            f"{label}: .npy header promises {count * dtype.itemsize:,} bytes of data, the file has "
            f"{present:,} (truncated)"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape, order="F" if fortran else "C").copy()


def is_mat_v73(path: Path) -> bool:
    """Whether ``path`` is a MATLAB v7.3 (HDF5) file rather than a v5 file."""
    check_data_file(path, max_bytes=None)
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HDF5_OFFSETS[-1] + len(_HDF5_SIGNATURE))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return any(head[o : o + len(_HDF5_SIGNATURE)] == _HDF5_SIGNATURE for o in _HDF5_OFFSETS)


def read_mat(path: Path, keys: Iterable[str], name: str | None = None) -> dict[str, np.ndarray]:
    """Read numeric variables ``keys`` from a v5 (scipy) or v7.3 (h5py) ``.mat`` file.

    Arrays come back in MATLAB's axis order for both versions: h5py exposes
    v7.3 arrays with their axes reversed, so those are transposed back here.
    A missing variable is a DataError naming the file and the variables present;
    so is a variable that is not a non-empty array of real numbers (text, cell,
    struct, complex), checked from its header before its data is read.
    """
    label = _label(path, name)
    keys = list(keys)
    if is_mat_v73(path):
        handle = open_mat_v73(path, label)
        try:
            _check_present(label, keys, mat_v73_variables(handle, label))
            return {k: _read_h5_variable(handle, k, label) for k in keys}
        finally:
            handle.close()
    return _read_mat_v5(path, keys, label)


def mat_v73_variables(handle: Any, label: str) -> list[str]:
    """The variable names of an open MATLAB v7.3 file (a corrupt HDF5 index is a DataError)."""
    try:
        return list(handle.keys())
    except Exception as exc:  # HDF5 on a corrupt file
        raise DataError(f"{label}: cannot list MATLAB v7.3 variables ({reason(exc)})") from None


def _shown_name(name: Any) -> str:
    """A variable name read from a file, safe for a one-line message (a corrupt file can hold any bytes)."""
    text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    return text if text.isprintable() and len(text) <= 64 else repr(text[:64])


def _check_present(label: str, keys: list[str], present: list[Any]) -> None:
    missing = [k for k in keys if k not in present]
    if missing:
        names = sorted({_shown_name(k) for k in present} - {"#refs#", "#subsystem#"})
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "") or "none"
        raise DataError(f"{label}: variable(s) {', '.join(missing)} not found; file has {shown}")


def _read_h5_variable(handle: Any, key: str, label: str) -> np.ndarray:
    """One MATLAB v7.3 variable, checked (class attribute, dtype, shape) before it is read."""
    import h5py

    what = f"variable {key!r}"
    try:
        node = handle[key]
        if not isinstance(node, h5py.Dataset):
            raise DataError(f"{label}: {what} is a MATLAB struct or group; expected a numeric array")
        matlab_class = node.attrs.get("MATLAB_class", b"")
        matlab_class = matlab_class.decode("ascii", "replace") if isinstance(matlab_class, bytes) else str(matlab_class)
        if matlab_class and matlab_class not in MAT_NUMERIC_CLASSES:
            raise DataError(f"{label}: {what} has MATLAB class {matlab_class!r}; expected a numeric array")
        if node.attrs.get("MATLAB_empty", 0):  # MATLAB stores [] as its dimensions, marked empty
            raise DataError(f"{label}: {what} is empty; expected a non-empty numeric array")
        check_real_array(tuple(node.shape), node.dtype, label, what)
        return np.asarray(node[()]).T
    except DataError:
        raise
    except Exception as exc:  # h5py on a corrupt file: any failure means the variable cannot be read
        raise DataError(f"{label}: cannot read MATLAB v7.3 {what} ({reason(exc)})") from None


def _read_mat_v5(path: Path, keys: list[str], label: str) -> dict[str, np.ndarray]:
    """Numeric variables of a v5 / v7 file through probe's bounds-checked reader (:mod:`probe.data.matv5`):
    SciPy's reader crashes the interpreter on a truncated file."""
    from probe.data.matv5 import byte_order, read_variables, to_array

    data = _open_bytes(path, label)
    variables = read_variables(data, set(keys), label, MAX_DATA_FILE_BYTES)
    _check_present(label, keys, list(variables))
    arrays = {}
    for key in keys:
        variable = variables[key]
        if variable.matlab_class not in MAT_NUMERIC_CLASSES:
            raise DataError(
                f"{label}: variable {key!r} has MATLAB class {variable.matlab_class!r}; expected a numeric array"
            )
        check_real_array(
            variable.shape, np.dtype(np.complex128 if variable.complex else np.float64), label, f"variable {key!r}"
        )
        arrays[key] = to_array(variable, label, byte_order(data))
    return arrays


def open_mat_v73(path: Path, name: str | None = None) -> Any:
    """Open a MATLAB v7.3 file read-only as an ``h5py.File`` (for lazy, per-item reads)."""
    import h5py

    label = _label(path, name)
    check_data_file(Path(path), label, max_bytes=None)
    try:
        return h5py.File(str(path), "r")
    except Exception as exc:  # HDF5's parser on untrusted bytes
        raise DataError(f"{label}: cannot open MATLAB v7.3 (HDF5) file ({reason(exc)})") from None


def _png_depth_metres(source: Source, label: str, png_scale: float) -> np.ndarray:
    return read_depth_png(source, label).astype(np.float32) * np.float32(png_scale)


def _npy_depth_metres(source: Source, label: str, png_scale: float) -> np.ndarray:
    arr = read_npy(source, label)  # real numbers, no empty axis: checked from the header
    if arr.ndim == 3 and 1 in (arr.shape[0], arr.shape[-1]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:-1])
    if arr.ndim != 2:
        raise DataError(f"{label}: expected a 2-D depth array in metres, got shape {arr.shape}")
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
