"""A bounds-checked reader of numeric variables in MATLAB v5 / v7 (compressed) ``.mat`` files.

SciPy's reader trusts the byte counts inside the file: a truncated Make3D grid (the most common
corruption) makes ``scipy.io.loadmat`` read past its buffer and kill the interpreter with a
segmentation fault or bus error, which no ``except`` can catch.  This reader walks the format
itself and checks every count against the bytes present before it reads, so any corrupt file is
a :class:`~probe.errors.DataError`.  It reads what probe needs, real numeric matrices (double,
single, integers); it names the class of anything else (char, cell, struct, sparse, logical,
complex) so the caller can refuse it.

The format (MathWorks, "MAT-File Format", v5): a 128-byte header whose last two bytes give the
byte order, then data elements.  A data element is an 8-byte tag (type, byte count) and its data,
padded to 8 bytes; or, when the upper half of the first word is non-zero, a "small" element
holding up to 4 bytes in the tag itself.  A variable is an ``miMATRIX`` element (possibly inside an
``miCOMPRESSED`` zlib stream) whose sub-elements are the array flags (class, complex and logical
bits), the dimensions, the name and the real part, stored in any numeric type and converted
to the class's type, in column-major order.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np

from probe.errors import DataError

HEADER_BYTES = 128
MI_MATRIX, MI_COMPRESSED = 14, 15
MI_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
MX_CLASSES = {
    6: ("double", "f8"),
    7: ("single", "f4"),
    8: ("int8", "i1"),
    9: ("uint8", "u1"),
    10: ("int16", "i2"),
    11: ("uint16", "u2"),
    12: ("int32", "i4"),
    13: ("uint32", "u4"),
    14: ("int64", "i8"),
    15: ("uint64", "u8"),
}
MX_OTHER = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 16: "function_handle", 17: "opaque"}
COMPLEX_FLAG, LOGICAL_FLAG = 0x0800, 0x0200

ByteOrder = Literal["<", ">"]
#: the header's byte-order mark (bytes 126-127): "IM" little-endian, "MI" big-endian
BYTE_ORDER_MARKS: dict[bytes, ByteOrder] = {b"IM": "<", b"MI": ">"}


@dataclass(frozen=True)
class MatVariable:
    """A variable's header, and where its real part is (``data`` None for non-numeric classes)."""

    name: str
    matlab_class: str
    shape: tuple[int, ...]
    complex: bool
    data_type: str | None = None
    data: bytes | None = None


class _Corrupt(Exception):
    """Raised inside the walk; the caller turns it into a DataError naming the file."""


def _elements(buf: bytes, start: int, end: int, order: ByteOrder) -> Iterator[tuple[int, bytes]]:
    """``(type, data)`` of each data element in ``buf[start:end]``, every byte count checked."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise _Corrupt(f"element tag cut off at byte {pos}")
        first = int(np.frombuffer(buf, f"{order}u4", 1, pos)[0])
        if first >> 16:  # small data element: type and count in one word, data in the next
            mtype, count = first & 0xFFFF, first >> 16
            if count > 4:
                raise _Corrupt(f"small element at byte {pos} claims {count} bytes")
            yield mtype, buf[pos + 4 : pos + 4 + count]
            pos += 8
            continue
        count = int(np.frombuffer(buf, f"{order}u4", 1, pos + 4)[0])
        if count > end - pos - 8:
            raise _Corrupt(f"element at byte {pos} claims {count:,} bytes, {end - pos - 8:,} remain (truncated)")
        yield first, buf[pos + 8 : pos + 8 + count]
        pos += 8 + count
        if first != MI_COMPRESSED:
            pos += -count % 8


def _matrix(payload: bytes, order: ByteOrder, wanted: set[str]) -> MatVariable:
    parts = list(_elements(payload, 0, len(payload), order))
    if len(parts) < 3:
        raise _Corrupt("matrix without flags, dimensions and name")
    (flags_type, flags), (dims_type, dims), (name_type, name) = parts[:3]
    if flags_type != 6 or len(flags) < 4 or dims_type not in (5, 6) or len(dims) % 4 or not dims:
        raise _Corrupt("malformed matrix header")
    word = int(np.frombuffer(flags, f"{order}u4", 1)[0])
    shape = tuple(int(n) for n in np.frombuffer(dims, f"{order}i4"))
    text = name.decode("ascii", "replace") if name_type in (1, 2) else ""
    code = word & 0xFF
    if code not in MX_CLASSES:
        return MatVariable(text, MX_OTHER.get(code, f"class {code}"), shape, False)
    matlab_class = "logical" if word & LOGICAL_FLAG else MX_CLASSES[code][0]
    if text not in wanted or matlab_class == "logical":
        return MatVariable(text, matlab_class, shape, bool(word & COMPLEX_FLAG))
    if len(parts) < 4 or parts[3][0] not in MI_TYPES:
        raise _Corrupt(f"variable {text!r} has no numeric data element")
    data_type, data = parts[3]
    return MatVariable(text, matlab_class, shape, bool(word & COMPLEX_FLAG), MI_TYPES[data_type], data)


def _inflate(payload: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, limit)
    except zlib.error as exc:
        raise _Corrupt(f"compressed variable: {exc}") from None
    if inflater.unconsumed_tail:
        raise _Corrupt(f"a compressed variable expands beyond {limit:,} bytes")
    return out


def read_variables(buf: bytes, wanted: set[str], label: str, limit: int) -> dict[str, MatVariable]:
    """Every variable's header in a v5 file's bytes, with the data of those named in ``wanted``."""
    if len(buf) < HEADER_BYTES:
        raise DataError(f"{label}: cannot read MATLAB v5 file ({len(buf)} bytes, shorter than its 128-byte header)")
    order = BYTE_ORDER_MARKS.get(bytes(buf[126:128]))
    if order is None:
        raise DataError(
            f"{label}: cannot read MATLAB v5 file (no byte-order mark in its header; v4 files are not read)"
        )
    found: dict[str, MatVariable] = {}
    try:
        for mtype, payload in _elements(buf, HEADER_BYTES, len(buf), order):
            if mtype == MI_COMPRESSED:
                inner = _inflate(payload, limit)
                items = [p for t, p in _elements(inner, 0, len(inner), order) if t == MI_MATRIX]
            else:
                items = [payload] if mtype == MI_MATRIX else []
            for item in items:
                variable = _matrix(item, order, wanted)
                found.setdefault(variable.name, variable)
    except _Corrupt as exc:
        raise DataError(f"{label}: cannot read MATLAB v5 file (corrupt: {exc})") from None
    return found


def to_array(variable: MatVariable, label: str, order: ByteOrder = "<") -> np.ndarray:
    """The variable's real part as an array of its class's dtype, in MATLAB's (column-major) shape."""
    assert variable.data is not None and variable.data_type is not None
    stored = np.dtype(variable.data_type).newbyteorder(order)
    count = math.prod(variable.shape)
    if len(variable.data) != count * stored.itemsize:
        raise DataError(
            f"{label}: variable {variable.name!r} of shape {variable.shape} holds "
            f"{len(variable.data):,} data bytes, expected {count * stored.itemsize:,} (corrupt)"
        )
    target = np.dtype(MX_CLASSES_BY_NAME[variable.matlab_class])
    values = np.frombuffer(variable.data, stored, count).astype(target)
    return values.reshape(variable.shape, order="F")


MX_CLASSES_BY_NAME = {name: dtype for name, dtype in MX_CLASSES.values()}


def byte_order(buf: bytes) -> ByteOrder:
    """The byte order of a v5 file whose header :func:`read_variables` accepted."""
    return BYTE_ORDER_MARKS.get(bytes(buf[126:128]), "<")
