"""DenseDepth's ``nyu_test.zip`` layout, small: three ``.npy`` members written with ``np.save``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def make_nyu_test_zip(path: Path, rgb: np.ndarray, depth: np.ndarray, crop: np.ndarray | None = None,
                      compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """``eigen_test_rgb.npy`` (N,H,W,3 uint8), ``eigen_test_depth.npy`` (N,H,W metres) and, if given,
    ``eigen_test_crop.npy`` (4 inclusive bounds) in one archive."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("eigen_test_rgb.npy", npy_bytes(rgb))
        archive.writestr("eigen_test_depth.npy", npy_bytes(depth))
        if crop is not None:
            archive.writestr("eigen_test_crop.npy", npy_bytes(crop))
    return path


def random_nyu_test(path: Path, n: int = 3, size: tuple[int, int] = (24, 32), seed: int = 0,
                    crop: tuple[int, int, int, int] | None = (2, 20, 3, 28), **kwargs) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(n, *size, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 9.5, size=(n, *size)).astype(np.float32)
    return make_nyu_test_zip(path, rgb, depth, None if crop is None else np.array(crop), **kwargs), rgb, depth
