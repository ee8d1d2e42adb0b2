"""The corrupt dataset files of issue 16, each as a tiny dataset root, with the message a reader must give.

Shared by ``tests/data/test_attacks.py`` (each must be a one-line DataError naming the file) and
``bench/reliability.py`` (which prints what ``probe data check`` says for each)::

    root = ATTACKS["complex-valued .npy depth"].build(tmp_path)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tests.data.fixtures import encode_png, make_make3d, make_nyu_labeled, make_nyu_zip, write, write_mat_v5


@dataclass(frozen=True)
class Attack:
    """One corrupt input: which dataset reads it, how to build its root, and the message expected (a regex)."""

    dataset: str
    split: str
    build: Callable[[Path], Path]
    expected: str
    options: dict = field(default_factory=dict)


def _folder_pair(root: Path, image_shape: tuple[int, int], depth: np.ndarray | None, depth_bytes: bytes | None = None) -> Path:
    """``root/test/image/a.png`` with ``root/test/depth/a.npy`` (the ``folder`` reader's default globs)."""
    write(root / "test" / "image" / "a.png", encode_png(np.full((*image_shape, 3), 128, np.uint8)))
    if depth_bytes is None:
        import io

        buffer = io.BytesIO()
        np.save(buffer, depth, allow_pickle=False)
        depth_bytes = buffer.getvalue()
    write(root / "test" / "depth" / "a.npy", depth_bytes)
    return root


def _npy_header_only(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()  # the writer puts the magic string in front


def _nyu_with_test_csv(root: Path, csv: bytes) -> Path:
    fx = make_nyu_zip(root, n_train=1, n_test=1, extracted=True)
    (fx.root / "data" / "nyu2_test.csv").write_bytes(csv)
    return fx.root


def _labeled_with_text_split(root: Path) -> Path:
    make_nyu_labeled(root)
    write_mat_v5(root / "splits.mat", {"trainNdxs": "1 3 5", "testNdxs": "2 4 6"})
    return root


def _make3d_with_empty_mat(root: Path, content: bytes | None) -> Path:
    fx = make_make3d(root)
    stem = fx.stems["test"][0]
    path = fx.depth_paths[stem]
    if content is None:
        write_mat_v5(path, {"Position3DGrid": np.zeros((0, 0))})
    else:
        path.write_bytes(content)
    return fx.root


ATTACKS: dict[str, Attack] = {
    ".npy depth with a zero-size dimension": Attack(
        "folder", "test", lambda r: _folder_pair(r, (16, 20), np.zeros((0, 20), np.float32)),
        r"a\.npy: \.npy array has shape \(0, 20\); expected no empty axis"),
    ".npy header claiming 10^12 elements": Attack(
        "folder", "test", lambda r: _folder_pair(r, (16, 20), None, _npy_header_only((10**6, 10**6))),
        r"a\.npy: \.npy array of shape \(1000000, 1000000\) has 1,000,000,000,000 elements, more than"),
    "truncated .npy data": Attack(
        "folder", "test", lambda r: _folder_pair(r, (16, 20), None, _npy_header_only((16, 20)) + b"\x00" * 100),
        r"a\.npy: \.npy header promises 1,280 bytes of data, the file has 100 \(truncated\)"),
    "complex-valued .npy depth": Attack(
        "folder", "test", lambda r: _folder_pair(r, (16, 20), np.ones((16, 20), np.complex64)),
        r"a\.npy: \.npy array holds complex values \(complex64\); expected real numbers"),
    "image aspect differs from its depth map's": Attack(
        "folder", "test", lambda r: _folder_pair(r, (16, 20), np.ones((16, 40), np.float32)),
        r"a\.png with depth .*a\.npy: image 16x20 and depth map 16x40 differ in aspect ratio"),
    "depth map transposed against its image": Attack(
        "folder", "test", lambda r: _folder_pair(r, (16, 20), np.ones((20, 16), np.float32)),
        r"a\.png with depth .*a\.npy: depth map 20x16 is transposed against its image 16x20"),
    "NUL byte in the NYU CSV": Attack(
        "nyu", "test", lambda r: _nyu_with_test_csv(r, b"data/nyu2_test/00000_colors.png,data/\x00.png\n"),
        r"nyu2_test\.csv: contains a NUL byte; expected a text CSV"),
    "empty nyu2_test.csv": Attack(
        "nyu", "test", lambda r: _nyu_with_test_csv(r, b""),
        r"nyu2_test\.csv: lists no image/depth pairs \(empty split\)"),
    "NYU CSV row with an absolute path": Attack(
        "nyu", "test", lambda r: _nyu_with_test_csv(r, b"/etc/hostname,data/nyu2_test/00000_depth.png\n"),
        r"nyu2_test\.csv, line 1: path '/etc/hostname' is absolute"),
    "NYU CSV row with a ../ path": Attack(
        "nyu", "test", lambda r: _nyu_with_test_csv(r, b"../../x.png,data/nyu2_test/00000_depth.png\n"),
        r"nyu2_test\.csv, line 1: path '\.\./\.\./x\.png' climbs out with '\.\.'"),
    "string-typed splits.mat": Attack(
        "nyu_labeled", "test", _labeled_with_text_split,
        r"splits\.mat: variable 'testNdxs' has MATLAB class 'char'; expected a numeric array"),
    "empty (0-byte) Make3D .mat": Attack(
        "make3d", "test", lambda r: _make3d_with_empty_mat(r, b""),
        r"depth_sph_corr-.*\.mat: cannot read MATLAB v5 file \(0 bytes, shorter than its 128-byte header\)"),
    "Make3D .mat whose grid is an empty array": Attack(
        "make3d", "test", lambda r: _make3d_with_empty_mat(r, None),
        r"depth_sph_corr-.*\.mat: variable 'Position3DGrid' has shape \(0, 0\); expected no empty axis"),
}


def first_error(attack: Attack, root: Path) -> str:
    """What ``probe data check`` reports first for ``root``: the split's error, else its first bad item."""
    from probe.data.check import check_dataset
    from probe.errors import DataError

    try:
        report = check_dataset(attack.dataset, root, split=attack.split, progress=False, **attack.options)
    except DataError as exc:
        return str(exc)
    return report.bad[0] if report.bad else ""
