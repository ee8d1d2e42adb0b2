"""Builders of tiny datasets in each real on-disk format, for tests anywhere in the suite.

Each builder writes into a folder (usually pytest's ``tmp_path``) exactly the
files the published dataset has — same names, containers, dtypes and units —
only with tiny images, and returns what a correct reader must load (depth in
metres, at the file's own resolution)::

    from tests.data.fixtures import make_nyu_zip
    fx = make_nyu_zip(tmp_path)
    ds = get_dataset("nyu", fx.root, split="test", input_size=(24, 32))
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# -- encoders -----------------------------------------------------------------------------------


def encode_png(array: np.ndarray) -> bytes:
    """uint8 [H,W] / [H,W,3] -> 8-bit PNG; uint16 [H,W] -> 16-bit greyscale PNG."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def random_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth-ish uint8 [H,W,3] image (JPEG keeps smooth images close to the original)."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                     np.full_like(x, int(rng.integers(0, 256)))], axis=-1)
    return base.astype(np.uint8)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def corrupt_bytes(data: bytes) -> bytes:
    """A truncated copy: the header survives, decoding fails."""
    return data[: max(8, len(data) // 3)]


# -- NYU: nyu_data.zip ---------------------------------------------------------------------------

NYU_TRAIN_UNIT = 10.0 / 255.0
NYU_TEST_UNIT = 1.0 / 1000.0


def nyu_expected_metres(counts: np.ndarray, unit: float) -> np.ndarray:
    """DenseDepth's conversion: counts x unit, non-zero clamped to 0.1-10 m, zero stays 0."""
    metres = counts.astype(np.float32) * np.float32(unit)
    return np.where(counts > 0, np.clip(metres, 0.1, 10.0), 0.0).astype(np.float32)


@dataclass
class NyuFixture:
    root: Path                    # the zip file (or the extracted folder)
    pairs: dict[str, list[tuple[str, str]]]
    depth: dict[str, list[np.ndarray]]   # expected metres per split, CSV order
    counts: dict[str, list[np.ndarray]]  # raw PNG counts per split
    bad: dict[str, str] = field(default_factory=dict)  # member -> why it is bad


def make_nyu_zip(folder: Path, n_train: int = 3, n_test: int = 2, size: tuple[int, int] = (24, 32),
                 seed: int = 0, extracted: bool = False, broken: bool = False) -> NyuFixture:
    """DenseDepth's ``nyu_data.zip`` (or, ``extracted=True``, its extracted folder).

    Training pairs: ``data/nyu2_train/<scene>/<k>.jpg`` + 8-bit ``<k>.png``;
    test pairs: ``data/nyu2_test/<k>_colors.png`` + 16-bit ``<k>_depth.png``
    (millimetres).  Depth has holes (0).  ``broken=True`` adds one training row
    whose depth file is missing and one whose JPEG is truncated.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    files: dict[str, bytes] = {}
    pairs: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    depth: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    counts_out: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for k in range(n_train):
        rgb, dep = f"data/nyu2_train/room_{k % 2:04d}_out/{k + 1}.jpg", f"data/nyu2_train/room_{k % 2:04d}_out/{k + 1}.png"
        counts = rng.integers(0, 256, size=(h, w)).astype(np.uint8)
        counts[0, :3] = 0  # holes
        counts[1, 0] = 1   # 0.039 m: clamped up to 0.1 m
        files[rgb], files[dep] = encode_jpeg(random_rgb(rng, h, w)), encode_png(counts)
        pairs["train"].append((rgb, dep))
        depth["train"].append(nyu_expected_metres(counts, NYU_TRAIN_UNIT))
        counts_out["train"].append(counts)
    for k in range(n_test):
        rgb, dep = f"data/nyu2_test/{k:05d}_colors.png", f"data/nyu2_test/{k:05d}_depth.png"
        counts = rng.integers(0, 12000, size=(h, w)).astype(np.uint16)
        counts[0, :3] = 0
        counts[1, 1] = 50      # 0.05 m: clamped up to 0.1 m
        counts[1, 2] = 11000   # 11 m: clamped down to 10 m
        files[rgb], files[dep] = encode_png(random_rgb(rng, h, w)), encode_png(counts)
        pairs["test"].append((rgb, dep))
        depth["test"].append(nyu_expected_metres(counts, NYU_TEST_UNIT))
        counts_out["test"].append(counts)
    bad: dict[str, str] = {}
    train_rows = list(pairs["train"])
    if broken:
        missing = ("data/nyu2_train/room_0009_out/1.jpg", "data/nyu2_train/room_0009_out/1.png")
        files[missing[0]] = encode_jpeg(random_rgb(rng, h, w))
        truncated = ("data/nyu2_train/room_0009_out/2.jpg", "data/nyu2_train/room_0009_out/2.png")
        files[truncated[0]] = corrupt_bytes(encode_jpeg(random_rgb(rng, h, w)))
        files[truncated[1]] = encode_png(np.full((h, w), 100, np.uint8))
        train_rows += [missing, truncated]
        bad = {missing[1]: "missing", truncated[0]: "truncated"}
    files["data/nyu2_train.csv"] = "".join(f"{a},{b}\n" for a, b in train_rows).encode()
    files["data/nyu2_test.csv"] = "".join(f"{a},{b}\r\n" for a, b in pairs["test"]).encode()  # Windows line ends
    if extracted:
        root = folder / "nyu_data"
        for name, data in files.items():
            write(root / name, data)
    else:
        root = folder / "nyu_data.zip"
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(root, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    return NyuFixture(root, {"train": train_rows, "test": pairs["test"]}, depth, counts_out, bad)


# -- NYU: labeled .mat (v7.3) + splits.mat (v5) --------------------------------------------------

MATLAB_V73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


@dataclass
class LabeledFixture:
    root: Path
    images: np.ndarray   # [N,H,W,3] uint8, image orientation
    depths: np.ndarray   # [N,H,W] float32 metres
    train: tuple[int, ...]
    test: tuple[int, ...]


def write_mat_v73(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A MATLAB v7.3 file: HDF5 behind MATLAB's 512-byte text header, arrays stored as given (h5py order)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    header = MATLAB_V73_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
    with open(path, "r+b") as handle:
        handle.write(header.ljust(512, b"\x00"))
    return path


def write_mat_v5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    import scipy.io

    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), arrays)
    return path


def make_nyu_labeled(folder: Path, n: int = 6, size: tuple[int, int] = (12, 16), train: tuple[int, ...] = (1, 3, 5),
                     test: tuple[int, ...] = (2, 4, 6), seed: int = 0) -> LabeledFixture:
    """``nyu_depth_v2_labeled.mat`` (v7.3; images N x 3 x W x H, depths N x W x H as h5py sees them)
    and ``splits.mat`` (v5; 1-based column vectors ``trainNdxs``/``testNdxs`` of doubles)."""
    rng = np.random.default_rng(seed)
    h, w = size
    images = rng.integers(0, 256, size=(n, h, w, 3)).astype(np.uint8)
    depths = rng.uniform(0.5, 9.5, size=(n, h, w)).astype(np.float32)
    depths[:, 0, 0] = 12.0  # beyond the 10 m cap
    write_mat_v73(folder / "nyu_depth_v2_labeled.mat", {
        "images": images.transpose(0, 3, 2, 1),  # N x 3 x W x H
        "depths": depths.transpose(0, 2, 1),     # N x W x H
    })
    write_mat_v5(folder / "splits.mat", {"trainNdxs": np.array(train, np.float64)[:, None],
                                         "testNdxs": np.array(test, np.float64)[:, None]})
    return LabeledFixture(folder, images, depths, tuple(train), tuple(test))


# -- Make3D ------------------------------------------------------------------------------------

@dataclass
class Make3DFixture:
    root: Path
    images: dict[str, np.ndarray]  # stem -> RGB as written (before JPEG)
    grids: dict[str, np.ndarray]   # stem -> depth channel [rows, cols] metres
    image_paths: dict[str, Path]
    depth_paths: dict[str, Path]
    stems: dict[str, list[str]]    # split -> stems, sorted like the reader's items


def make_make3d(folder: Path, train: tuple[str, ...] = ("op1-p-108t000", "op2-p-015t000"),
                test: tuple[str, ...] = ("10.21op2-p-139t000",), image_size: tuple[int, int] = (64, 48),
                grid: tuple[int, int] = (16, 24), test_depth_folder: str = "Gridlaserdata", seed: int = 0) -> Make3DFixture:
    """Make3D folders: ``Train400Img/img-<stem>.jpg`` + ``Train400Depth/depth_sph_corr-<stem>.mat`` and
    ``Test134/`` + ``test_depth_folder``; ``Position3DGrid`` rows x cols x 4 (double), depth in channel 4,
    values 1-81 m (some beyond the 70 m cap).  ``image_size`` is (H, W), portrait like the real 2272x1704."""
    rng = np.random.default_rng(seed)
    images, grids, image_paths, depth_paths = {}, {}, {}, {}
    layout = {"train": ("Train400Img", "Train400Depth", train), "test": ("Test134", test_depth_folder, test)}
    for image_dir, depth_dir, stems in layout.values():
        for stem in stems:
            rgb = random_rgb(rng, *image_size)
            position = rng.uniform(-5, 5, size=(*grid, 4))
            position[:, :, 3] = rng.uniform(1.0, 81.0, size=grid)
            position[0, 0, 3] = 75.0  # beyond 70 m
            images[stem], grids[stem] = rgb, position[:, :, 3].astype(np.float32)
            image_paths[stem] = write(folder / image_dir / f"img-{stem}.jpg", encode_jpeg(rgb))
            depth_paths[stem] = write_mat_v5(folder / depth_dir / f"depth_sph_corr-{stem}.mat",
                                             {"Position3DGrid": position})
    return Make3DFixture(folder, images, grids, image_paths, depth_paths,
                         {"train": sorted(train), "test": sorted(test)})


# -- KITTI -------------------------------------------------------------------------------------

KITTI_FRAMES = (("2011_09_26", "2011_09_26_drive_0001_sync", 5), ("2011_09_26", "2011_09_26_drive_0001_sync", 6),
                ("2011_09_28", "2011_09_28_drive_0002_sync", 12))


@dataclass
class KittiFixture:
    root: Path
    depth: dict[str, np.ndarray]   # "<date>/<drive>/image_02/<frame>" -> metres
    counts: dict[str, np.ndarray]
    lines: dict[str, list[str]]


def kitti_list_line(date: str, drive: str, frame: int, fmt: str) -> str:
    """One split-list line for a left-camera frame in Monodepth, Monodepth2 or BTS format."""
    rgb = f"{date}/{drive}/image_02/data/{frame:010d}"
    lines = {
        "monodepth": f"{rgb}.jpg {date}/{drive}/image_03/data/{frame:010d}.jpg",
        "monodepth2": f"{date}/{drive} {frame} l",
        "bts": f"{rgb}.png {drive}/proj_depth/groundtruth/image_02/{frame:010d}.png 721.5377",
    }
    return lines[fmt]


def make_kitti(folder: Path, frames: tuple[tuple[str, str, int], ...] = KITTI_FRAMES, size: tuple[int, int] = (20, 64),
               fmt: str = "monodepth", test_frames: int = 1, seed: int = 0, gt_subset: str = "train") -> KittiFixture:
    """KITTI raw RGB PNGs + annotated 16-bit ground truth (value/256 m, 0 = no return) under
    ``data_depth_annotated/<gt_subset>/``; the last ``test_frames`` frames go to ``eigen_test_files.txt``."""
    rng = np.random.default_rng(seed)
    h, w = size
    depth, counts_out = {}, {}
    for date, drive, frame in frames:
        write(folder / date / drive / "image_02" / "data" / f"{frame:010d}.png", encode_png(random_rgb(rng, h, w)))
        counts = rng.integers(0, 90 * 256, size=(h, w)).astype(np.uint16)
        counts[rng.random((h, w)) < 0.5] = 0  # sparse lidar
        write(folder / "data_depth_annotated" / gt_subset / drive / "proj_depth" / "groundtruth" / "image_02"
              / f"{frame:010d}.png", encode_png(counts))
        key = f"{date}/{drive}/image_02/{frame:010d}"
        depth[key], counts_out[key] = counts.astype(np.float32) / 256.0, counts
    lines = [kitti_list_line(d, dr, f, fmt) for d, dr, f in frames]
    split_lines = {"train": lines[:len(lines) - test_frames], "test": lines[len(lines) - test_frames:]}
    for split, rows in split_lines.items():
        write(folder / f"eigen_{split}_files.txt", ("\n".join(rows) + "\n").encode())
    return KittiFixture(folder, depth, counts_out, split_lines)


# -- KITTI raw sequences -------------------------------------------------------------------------

P_RECT_02 = (721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791, 0.0, 0.0, 1.0, 0.002745884)


@dataclass
class KittiRawFixture:
    root: Path
    drive: str                       # "<date>/<date>_drive_<NNNN>_sync"
    stamps: list[float]              # seconds since the first frame
    velocity: np.ndarray             # [n, 3] vf, vl, vu (m/s)
    K: np.ndarray                    # 3x3 at the PNGs' size
    size: tuple[int, int]


def make_kitti_raw(folder: Path, n: int = 5, size: tuple[int, int] = (12, 40), seed: int = 0,
                   date: str = "2011_09_26", drive_number: int = 1) -> KittiRawFixture:
    """One KITTI raw drive in the release's layout: calib_cam_to_cam.txt (P_rect_02 scaled to ``size`` from
    the real 375x1242), image_02 PNGs + timestamps.txt with slightly irregular intervals, oxts/data records."""
    rng = np.random.default_rng(seed)
    h, w = size
    drive = f"{date}/{date}_drive_{drive_number:04d}_sync"
    p = np.array(P_RECT_02).reshape(3, 4)
    p[0] *= w / 1242.0
    p[1] *= h / 375.0
    calib = ["calib_time: 09-Jan-2012 13:57:47", "corner_dist: 9.950000e-02",
             "S_rect_00: 1.242000e+03 3.750000e+02",
             "P_rect_00: " + " ".join(f"{v:.6e}" for v in np.array(P_RECT_02)),
             f"S_rect_02: {w:.6e} {h:.6e}", "P_rect_02: " + " ".join(f"{v:.6e}" for v in p.ravel())]
    write(folder / date / "calib_cam_to_cam.txt", ("\n".join(calib) + "\n").encode())
    stamps = list(np.cumsum([0.0] + list(0.1036 + rng.uniform(-0.002, 0.002, n - 1))))
    lines = [f"2011-09-26 13:02:{25 + s:012.9f}" for s in stamps]
    write(folder / drive / "image_02" / "timestamps.txt", ("\n".join(lines) + "\n").encode())
    velocity = rng.uniform(-1.0, 12.0, size=(n, 3))
    for k in range(n):
        write(folder / drive / "image_02" / "data" / f"{k:010d}.png", encode_png(random_rgb(rng, h, w)))
        record = np.concatenate([[49.0, 8.4, 116.0, 0.01, 0.02, 1.5, 3.0, 4.0], velocity[k], rng.normal(size=19)])
        write(folder / drive / "oxts" / "data" / f"{k:010d}.txt", (" ".join(f"{v:.12f}" for v in record) + "\n").encode())
    return KittiRawFixture(folder, drive, [float(s) for s in stamps], velocity, p[:, :3].copy(), size)


# -- folder ------------------------------------------------------------------------------------

@dataclass
class FolderFixture:
    root: Path
    depth: dict[str, list[np.ndarray]]  # split -> expected metres, sorted by stem


def make_folder(folder: Path, n: int = 3, size: tuple[int, int] = (16, 20), depth_format: str = ".png",
                depth_scale: float = 0.001, seed: int = 0) -> FolderFixture:
    """``<split>/image/<k>.jpg`` with ``<split>/depth/<k>.png`` (16-bit, metres = value x depth_scale)
    or ``<k>.npy`` (float32 metres, NaN holes)."""
    rng = np.random.default_rng(seed)
    h, w = size
    expected: dict[str, list[np.ndarray]] = {}
    for split in ("train", "test"):
        expected[split] = []
        for k in range(n):
            write(folder / split / "image" / f"{k:03d}.jpg", encode_jpeg(random_rgb(rng, h, w)))
            if depth_format == ".png":
                counts = rng.integers(0, 12000, size=(h, w)).astype(np.uint16)
                counts[0, 0] = 0
                write(folder / split / "depth" / f"{k:03d}.png", encode_png(counts))
                expected[split].append(counts.astype(np.float32) * np.float32(depth_scale))
            else:
                metres = rng.uniform(0.2, 9.0, size=(h, w)).astype(np.float32)
                metres[0, 0] = np.nan
                path = folder / split / "depth" / f"{k:03d}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, metres)
                expected[split].append(metres)
    return FolderFixture(folder, expected)


# -- archives (for download / extraction tests) --------------------------------------------------

def write_tar(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None, mode: str = "w:gz") -> Path:
    """A tar archive with regular ``members`` and ``symlinks`` (name -> link target), names taken verbatim."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip archive whose member names are written verbatim (``../evil`` included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path
