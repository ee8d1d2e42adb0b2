"""KITTI raw sequences: image windows with intrinsics, timestamps and the GPS/IMU speed (``kitti_raw``).

Layout under the root, as the KITTI raw release unpacks::

    <date>/calib_cam_to_cam.txt                          per-day calibration
    <date>/<date>_drive_<NNNN>_sync/image_02/data/<frame>.png      left colour camera (image_03: right)
    <date>/<date>_drive_<NNNN>_sync/image_02/timestamps.txt        one "YYYY-MM-DD hh:mm:ss.fffffffff" per frame
    <date>/<date>_drive_<NNNN>_sync/oxts/data/<frame>.txt          30 numbers per frame (OXTS RT3003)

Every item is a window around a target frame (default context ``-1,1``,
like packnet-sfm's back/forward context of 1), with the item keys of
:mod:`probe.data.sequence`:

- ``K``: the first three columns of the rectified projection ``P_rect_02``
  (``P_rect_03`` for image_03) from ``calib_cam_to_cam.txt``, whose image size
  ``S_rect_02`` must match the PNGs; scaled to ``input_size`` like the images;
- ``speed``: the norm of the OXTS velocity ``(vf, vl, vu)`` (fields 9-11:
  forward, leftward, upward, m/s) of the target frame;
- ``context_dt``: the camera timestamps' differences (about 0.1036 s between
  frames), ``dt`` their mean over the drive;
- ``depth``: the annotated ground truth (``data_depth_annotated``, value/256 m)
  where the root has it for the target frame, else no valid pixel; there are
  no ``poses``: KITTI raw gives none directly.

Frames come from ``split_file=`` (a split list in the Monodepth, Monodepth2 or
BTS format, see :mod:`probe.data.kitti`; packnet-sfm trains on
``eigen_zhou_files.txt``) or, without one, every frame of every drive under
the root whose whole window exists.  Default input 192x640, 80 m cap,
protocol ``kitti``.

    >>> ds = get_dataset("kitti_raw", "/data/kitti_raw", split_file="eigen_zhou_files.txt")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from probe.data.base import DatasetInfo, register_dataset
from probe.data.images import read_rgb
from probe.data.kitti import KITTI_MAX_DEPTH, KittiFrame, find_ground_truth, parse_split_list, read_ground_truth
from probe.data.sequence import RawWindow, SequenceDataset, parse_offsets
from probe.errors import DataError, ProbeError

OXTS_FIELDS = 30
VELOCITY_FIELDS = slice(8, 11)  # vf, vl, vu (m/s) in the OXTS record
CALIB_FILE = "calib_cam_to_cam.txt"

KITTI_RAW_INFO = DatasetInfo(
    name="kitti_raw",
    description="KITTI raw drives: image windows, P_rect intrinsics, OXTS speed, timestamps (no labels needed)",
    min_depth=1e-3,
    max_depth=KITTI_MAX_DEPTH,
    input_size=(192, 640),
    depth_scale=1.0,
    eval_protocol="kitti",
    source="registration required: http://www.cvlibs.net/datasets/kitti/raw_data.php ([synced+rectified data] and "
    "[calibration] of each drive)",
    expected=(
        "<date>/calib_cam_to_cam.txt",
        "<date>/<drive>_sync/image_02/data/*.png",
        "<date>/<drive>_sync/image_02/timestamps.txt",
        "<date>/<drive>_sync/oxts/data/*.txt",
    ),
)


def _read_text(path: Path, what: str) -> str:
    """The text of one KITTI raw file, or a one-line DataError naming it and ``what`` it should hold."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read {what} ({exc})") from None


def read_calibration(path: Path) -> dict[str, np.ndarray]:
    """``calib_cam_to_cam.txt`` -> ``{key: float64 array}`` for every numeric line (``calib_time`` is skipped)."""
    lines = _read_text(path, f"calibration (KITTI raw: <date>/{CALIB_FILE})").splitlines()
    values: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines, 1):
        key, sep, rest = line.partition(":")
        if not sep or key.strip() == "calib_time":
            continue
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            raise DataError(
                f"{path}, line {lineno}: expected numbers after {key.strip()!r}, got {rest.strip()!r}"
            ) from None
    return values


def intrinsics(calibration: dict[str, np.ndarray], camera: str, path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """``(K 3x3, (height, width))`` of ``image_0X`` from ``P_rect_0X`` and ``S_rect_0X``."""
    index = camera[-2:]
    p, size = calibration.get(f"P_rect_{index}"), calibration.get(f"S_rect_{index}")
    if p is None or p.size != 12 or size is None or size.size != 2:
        raise DataError(f"{path}: needs P_rect_{index} (12 numbers) and S_rect_{index} (width height) for {camera}")
    return p.reshape(3, 4)[:, :3].copy(), (int(round(size[1])), int(round(size[0])))


def read_timestamps(path: Path) -> list[float]:
    """KITTI ``timestamps.txt`` -> seconds since the first line (nanosecond strings kept exact to the microsecond)."""
    text = _read_text(path, "timestamps (KITTI raw: <drive>/image_02/timestamps.txt)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    stamps = []
    for lineno, line in enumerate(lines, 1):
        day, _, clock = line.partition(" ")
        whole, _, fraction = clock.partition(".")
        try:
            base = datetime.strptime(f"{day} {whole}", "%Y-%m-%d %H:%M:%S").timestamp()
            stamps.append(base + float(f"0.{fraction or '0'}"))
        except ValueError:
            raise DataError(f"{path}, line {lineno}: expected 'YYYY-MM-DD hh:mm:ss.fffffffff', got {line!r}") from None
    return [s - stamps[0] for s in stamps] if stamps else []


def read_speed(path: Path) -> float:
    """Norm of the OXTS velocity ``(vf, vl, vu)`` in m/s from one ``oxts/data/<frame>.txt``."""
    fields = _read_text(path, "OXTS record (needed for the speed)").split()
    try:
        values = [float(v) for v in fields]
    except ValueError:
        raise DataError(f"{path}: OXTS record must hold {OXTS_FIELDS} numbers") from None
    if len(values) != OXTS_FIELDS:
        raise DataError(f"{path}: OXTS record must hold {OXTS_FIELDS} numbers, got {len(values)}")
    return float(np.linalg.norm(values[VELOCITY_FIELDS]))


class KittiRaw(SequenceDataset):
    """Windows of KITTI raw frames; see the module docstring."""

    def __init__(
        self,
        root: Path,
        split: str = "train",
        split_file: str | Path | None = None,
        context: Any = "-1,1",
        input_size: tuple[int, int] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(KITTI_RAW_INFO, split=split, input_size=input_size, **options)
        self.root = root
        self.context_offsets = parse_offsets(context, "kitti_raw: option context")
        self._files: dict[Path, Any] = {}
        listed = self._listed(split_file) if split_file is not None else self._every_frame()
        self.frames = [f for f in listed if self._window_exists(f)]
        if not self.frames:
            where = f"the frames of {split_file}" if split_file is not None else f"the drives under {root}"
            raise DataError(f"kitti_raw: no frame of {where} has its whole window {self.context_offsets} on disk")

    def _listed(self, split_file: str | Path) -> list[KittiFrame]:
        frames, _ = parse_split_list(Path(split_file).expanduser())
        return frames

    def _every_frame(self) -> list[KittiFrame]:
        frames = []
        for images in sorted(self.root.glob("*/*_sync/image_02/data")):
            drive = f"{images.parents[2].name}/{images.parents[1].name}"
            frames += [KittiFrame(drive, "image_02", png.stem) for png in sorted(images.glob("*.png"))]
        return frames

    def _frame_path(self, frame: KittiFrame, offset: int = 0) -> Path:
        return self.root / frame.drive / frame.camera / "data" / f"{int(frame.frame) + offset:010d}.png"

    def _window_exists(self, frame: KittiFrame) -> bool:
        return int(frame.frame) + min(self.context_offsets) >= 0 and all(
            self._frame_path(frame, o).is_file() for o in self.context_offsets
        )

    def __len__(self) -> int:
        return len(self.frames)

    def _read_once(self, path: Path, reader: Any) -> Any:
        """Per-day calibration and per-drive timestamps, read once per dataset (and per worker)."""
        if path not in self._files:
            self._files[path] = reader(path)
        return self._files[path]

    def item_name(self, index: int) -> str:
        frame = self.frames[index]
        return f"{frame.drive}/{frame.camera}/{frame.frame}"

    def load_raw(self, index: int) -> RawWindow:
        frame = self.frames[index]
        images = [read_rgb(self._frame_path(frame, o)) for o in (0, *self.context_offsets)]
        calib_path = self.root / Path(frame.drive).parent / CALIB_FILE
        K, size = intrinsics(self._read_once(calib_path, read_calibration), frame.camera, calib_path)
        for offset, image in zip((0, *self.context_offsets), images):
            if image.shape[:2] != size:
                raise DataError(
                    f"{self._frame_path(frame, offset)}: image is {image.shape[0]}x{image.shape[1]}, "
                    f"but {calib_path} gives S_rect {size[0]}x{size[1]}"
                )
        stamps = self._read_once(self.root / frame.drive / frame.camera / "timestamps.txt", read_timestamps)
        t = int(frame.frame)
        if t + max(self.context_offsets) >= len(stamps):
            raise DataError(
                f"{self.root / frame.drive / frame.camera / 'timestamps.txt'}: no timestamp for frame "
                f"{t + max(self.context_offsets)}"
            )
        speed = read_speed(self.root / frame.drive / "oxts" / "data" / f"{t:010d}.txt")
        gt_path = find_ground_truth(self.root, frame)
        depth = read_ground_truth(gt_path) if gt_path is not None else np.full(size, np.nan, np.float32)
        return RawWindow(
            image=images[0],
            depth=depth,
            name=self.item_name(index),
            context=tuple(images[1:]),
            offsets=self.context_offsets,
            K=K,
            dt=_mean_interval(stamps),
            context_dt=tuple(stamps[t + o] - stamps[t] for o in self.context_offsets),
            speed=speed,
            speed_valid=math.isfinite(speed),
        )


def _mean_interval(stamps: list[float]) -> float:
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else math.nan


def locate_kitti_raw(root: Path | None) -> bool:
    return root is not None and root.is_dir() and any(root.glob(f"*/{CALIB_FILE}"))


@register_dataset(KITTI_RAW_INFO, locate=locate_kitti_raw)
def _build_kitti_raw(root: Path, split: str = "train", **options: Any) -> KittiRaw:
    if options.get("split_file") is None and not locate_kitti_raw(root):
        raise DataError(KITTI_RAW_INFO.missing_root_message(root))
    unknown = sorted(
        set(options)
        - {"split_file", "context", "input_size", "augment", "seed", "skip_bad", "normalize", "depth_resolution"}
    )
    if unknown:
        raise ProbeError(
            f"kitti_raw: unknown option(s) {', '.join(unknown)}; expected split_file, context, augment, "
            "seed, skip_bad, normalize"
        )
    return KittiRaw(root, split=split, **options)
