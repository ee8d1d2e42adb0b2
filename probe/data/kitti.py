"""KITTI depth prediction: raw RGB frames with the annotated (densified lidar) ground truth.

Layout under the root::

    <date>/<drive>/image_02/data/<frame>.png                 RGB (KITTI raw release)
    data_depth_annotated/{train,val}/<drive>/proj_depth/groundtruth/image_02/<frame>.png
    eigen_train_files.txt, eigen_test_files.txt              split lists (or pass split_file=)

Ground truth is a 16-bit PNG: metres = value / 256, 0 = no lidar return
(invalid).  It is looked up, in this order, under ``data_depth_annotated/``,
``data_depth_annotated/train|val/``, ``train|val/``, the root itself, and next
to the RGB (``<date>/<drive>/proj_depth/...``).  A frame without ground truth
(45 of Eigen's 697 test frames have none) is an item that raises a DataError
naming the RGB file, so ``probe data check`` lists it and ``skip_bad`` skips it.

Split lists: one frame per line, in any of these three formats (the first
token decides; blank lines are ignored)::

    # Monodepth (eigen_*_files.txt)
    2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.jpg <right image>
    # Monodepth2 (l = image_02, r = image_03)
    2011_09_26/2011_09_26_drive_0002_sync 69 l
    # BTS
    2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png <gt path|None> 721.5377

Only the first image of a Monodepth line is used.  Monodepth's lists name
``.jpg`` files (its authors converted the PNGs); the listed path is tried
first, then the same frame as ``.png``.  A BTS line whose ground truth is
``None`` declares that the frame has none; such lines are dropped and counted
in ``dataset.dropped``.

Resolution: the default input is 192x640, the resolution of PackNet's and
Monodepth2's KITTI experiments (the full ~375x1242 frame resized, aspect
kept within 1%).  ``kb_crop=True`` applies the KITTI benchmark crop first
(bottom 352 rows, central 1216 columns) and defaults the input to 352x1216.
The target is at input resolution (``depth_scale`` 1.0), nearest-resized, so
sparse returns are subsampled, never blended.  Cap 80 m; the evaluation crop
belongs to the ``kitti`` metric protocol.

    >>> ds = get_dataset("kitti", "/data/kitti", split="test")   # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from probe.data.base import DatasetInfo, DepthDataset, RawSample, check_list_path, register_dataset
from probe.data.images import check_data_file, read_depth_png, read_rgb
from probe.errors import DataError, reason
from probe.registry import Registry

KITTI_MAX_DEPTH = 80.0
GT_UNITS_PER_METRE = 256.0
KB_CROP = (352, 1216)
SPLIT_FILES = {"train": "eigen_train_files.txt", "test": "eigen_test_files.txt"}
GT_BASES = ("data_depth_annotated", "data_depth_annotated/train", "data_depth_annotated/val", "train", "val", ".")
CAMERAS = {"l": "image_02", "r": "image_03"}
EIGEN_LISTS = "utils/filenames/eigen_{train,test}_files.txt in github.com/mrharicot/monodepth"

KITTI_INFO = DatasetInfo(
    name="kitti",
    description="KITTI raw frames with annotated depth (value/256 m), Eigen split lists, 80 m cap",
    min_depth=1e-3,
    max_depth=KITTI_MAX_DEPTH,
    input_size=(192, 640),
    depth_scale=1.0,
    eval_protocol="kitti",
    source=(
        "registration required: http://www.cvlibs.net/datasets/kitti/eval_depth.php?benchmark=depth_prediction "
        "(data_depth_annotated.zip) and the raw sequences from http://www.cvlibs.net/datasets/kitti/raw_data.php; "
        f"Eigen lists: {EIGEN_LISTS}"
    ),
    expected=(
        "eigen_train_files.txt",
        "eigen_test_files.txt",
        "<date>/<drive>/image_02/data/*.png",
        "data_depth_annotated/{train,val}/<drive>/proj_depth/groundtruth/image_02/*.png",
    ),
)


@dataclass(frozen=True)
class KittiFrame:
    """One listed frame: ``drive`` is ``<date>/<drive_sync>``; ``gt`` an explicit GT path (BTS lists)."""

    drive: str
    camera: str
    frame: str
    rgb: str | None = None
    gt: str | None = None

    @property
    def rgb_candidates(self) -> list[str]:
        listed = self.rgb or f"{self.drive}/{self.camera}/data/{self.frame}.png"
        png = str(Path(listed).with_suffix(".png"))
        return [listed] if png == listed else [listed, png]

    @property
    def gt_relative(self) -> list[str]:
        derived = f"{Path(self.drive).name}/proj_depth/groundtruth/{self.camera}/{self.frame}.png"
        return [self.gt, derived] if self.gt and self.gt != derived else [derived]


# A parser returns a frame, None when the line is not in its format, or DROP for a declared no-GT line.
DROP = KittiFrame("", "", "")
LineParser = Callable[[list[str]], KittiFrame | None]
LIST_FORMATS: Registry[LineParser] = Registry("KITTI split-list format")

_RGB_PATH = re.compile(r"^(?P<drive>[^/]+/[^/]+)/(?P<camera>image_0[23])/data/(?P<frame>\d+)\.(png|jpg|jpeg)$")


def _rgb_frame(token: str, gt: str | None = None) -> KittiFrame | None:
    match = _RGB_PATH.match(token.replace("\\", "/"))
    if match is None:
        return None
    return KittiFrame(match["drive"], match["camera"], match["frame"], rgb=token, gt=gt)


@LIST_FORMATS.register("bts", description="<rgb> <gt|None> <focal>")
def _parse_bts(tokens: list[str]) -> KittiFrame | None:
    if len(tokens) != 3 or not re.fullmatch(r"[0-9.eE+-]+", tokens[2]):
        return None
    frame = _rgb_frame(tokens[0], gt=None if tokens[1] == "None" else tokens[1])
    if frame is None:
        return None
    return DROP if tokens[1] == "None" else frame


@LIST_FORMATS.register("monodepth2", description="<date>/<drive> <frame index> l|r")
def _parse_monodepth2(tokens: list[str]) -> KittiFrame | None:
    if len(tokens) != 3 or not tokens[1].isdigit() or tokens[2] not in CAMERAS:
        return None
    return KittiFrame(tokens[0].strip("/"), CAMERAS[tokens[2]], f"{int(tokens[1]):010d}")


@LIST_FORMATS.register("monodepth", description="<left rgb> [<right rgb>]")
def _parse_monodepth(tokens: list[str]) -> KittiFrame | None:
    if len(tokens) not in (1, 2):
        return None
    return _rgb_frame(tokens[0])


def parse_split_list(path: Path) -> tuple[list[KittiFrame], int]:
    """Parse a split list -> ``(frames, dropped)``; a line in no known format is a DataError."""
    try:
        check_data_file(path)
        lines = path.read_text(encoding="utf-8").splitlines()
    except DataError as exc:
        if "file not found" in str(exc):
            raise DataError(f"{path}: split list not found; get Eigen's lists from {EIGEN_LISTS}") from None
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read split list ({reason(exc)})") from None
    frames, dropped = [], 0
    for lineno, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens:
            continue
        parsed = next((f for f in (e.factory(tokens) for e in LIST_FORMATS.entries()) if f is not None), None)
        if parsed is None:
            formats = "; ".join(f"{e.name}: {e.description}" for e in LIST_FORMATS.entries())
            raise DataError(
                f"{path}, line {lineno}: unrecognised entry {line.strip()[:200]!r}; expected one of {formats}"
            )
        if parsed is DROP:
            dropped += 1
        else:
            frames.append(_inside_root(parsed, f"{path}, line {lineno}"))
    if not frames:
        why = f" ({dropped} line(s) declare no ground truth)" if dropped else ""
        raise DataError(f"{path}: lists no frames{why}; an empty split cannot be trained or evaluated")
    return frames, dropped


def _inside_root(frame: KittiFrame, label: str) -> KittiFrame:
    """The frame with every listed path checked to stay inside the dataset root."""
    return KittiFrame(
        check_list_path(frame.drive, label),
        frame.camera,
        frame.frame,
        rgb=check_list_path(frame.rgb, label) if frame.rgb else None,
        gt=check_list_path(frame.gt, label) if frame.gt else None,
    )


def benchmark_crop(image: np.ndarray, depth: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """KITTI benchmark crop: bottom 352 rows, central 1216 columns, on image and depth alike."""
    height, width = image.shape[:2]
    if height < KB_CROP[0] or width < KB_CROP[1] or depth.shape != (height, width):
        raise DataError(
            f"{label}: kb_crop needs image and depth of the same size >= {KB_CROP[0]}x{KB_CROP[1]}, "
            f"got image {height}x{width}, depth {depth.shape[0]}x{depth.shape[1]}"
        )
    top, left = height - KB_CROP[0], (width - KB_CROP[1]) // 2
    return (image[top:, left : left + KB_CROP[1]], depth[top:, left : left + KB_CROP[1]])


def find_ground_truth(root: Path, frame: KittiFrame) -> Path | None:
    """The annotated depth PNG of ``frame`` under ``root`` (the places listed in the module docstring), or None."""
    candidates = [root / base / rel for rel in frame.gt_relative for base in GT_BASES]
    candidates.append(root / frame.drive / "proj_depth" / "groundtruth" / frame.camera / f"{frame.frame}.png")
    return next((path for path in candidates if path.is_file()), None)


def read_ground_truth(path: Path) -> np.ndarray:
    """Metres from a KITTI 16-bit depth PNG (value / 256; 0 = no return)."""
    counts = read_depth_png(path)
    if counts.dtype != np.uint16:
        raise DataError(f"{path}: expected a 16-bit depth PNG (value/256 m), got {counts.dtype}")
    return counts.astype(np.float32) / np.float32(GT_UNITS_PER_METRE)


def locate_kitti(root: Path | None) -> bool:
    return root is not None and root.is_dir() and any((root / f).is_file() for f in SPLIT_FILES.values())


class Kitti(DepthDataset):
    """KITTI frames listed in a split file; see the module docstring."""

    def __init__(
        self,
        root: Path,
        split: str = "train",
        split_file: str | Path | None = None,
        kb_crop: bool = False,
        input_size: tuple[int, int] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(KITTI_INFO, split=split, input_size=input_size or (KB_CROP if kb_crop else None), **options)
        self.root = root
        self.kb_crop = kb_crop
        self.split_file = Path(split_file).expanduser() if split_file else root / SPLIT_FILES[split]
        if not self.split_file.is_file():
            raise DataError(
                f"kitti ({split}): split list {self.split_file} not found; pass split_file= or put "
                f"{SPLIT_FILES[split]} under {root} (from {EIGEN_LISTS})"
            )
        self.frames, self.dropped = parse_split_list(self.split_file)

    def __len__(self) -> int:
        return len(self.frames)

    def item_name(self, index: int) -> str:
        frame = self.frames[index]
        return f"{frame.drive}/{frame.camera}/{frame.frame}"

    def _find_rgb(self, frame: KittiFrame) -> Path:
        for rel in frame.rgb_candidates:
            if (self.root / rel).is_file():
                return self.root / rel
        raise DataError(f"{self.root / frame.rgb_candidates[0]}: RGB file not found (listed in {self.split_file})")

    def _find_gt(self, frame: KittiFrame, rgb: Path) -> Path:
        found = find_ground_truth(self.root, frame)
        if found is not None:
            return found
        raise DataError(
            f"{rgb}: no ground truth {frame.gt_relative[-1]} under {self.root} ({', '.join(GT_BASES[:-1])} or the root)"
        )

    def load_raw(self, index: int) -> RawSample:
        frame = self.frames[index]
        rgb = self._find_rgb(frame)
        gt = self._find_gt(frame, rgb)
        image = read_rgb(rgb)
        depth = read_ground_truth(gt)
        if self.kb_crop:
            image, depth = benchmark_crop(image, depth, str(rgb))
        return RawSample(image=image, depth=depth, name=self.item_name(index), files=f"{rgb} with depth {gt}")


@register_dataset(KITTI_INFO, locate=locate_kitti)
def _build_kitti(root: Path, split: str = "train", **options: Any) -> Kitti:
    if options.get("split_file") is None and not locate_kitti(root):
        raise DataError(KITTI_INFO.missing_root_message(root))
    return Kitti(root, split=split, **options)
