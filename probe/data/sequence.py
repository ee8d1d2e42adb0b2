"""Video datasets: a target frame with its temporal context, intrinsics and motion.

A sequence reader subclasses :class:`SequenceDataset` and returns a
:class:`RawWindow` from ``load_raw(index)``: the target frame as a
:class:`~probe.data.base.RawSample` (so ``probe data check`` and every
single-image consumer keep working) plus the context frames, the intrinsics
of the raw images and what is known about the motion.  The base class turns
it into an item that extends the single-image contract::

    image  float32 [3,H,W]       the target frame t (normalised as the dataset's images)
    depth  float32 [1,H,W]       its z-depth in metres (0 where invalid); valid bool [1,H,W]
    name, skipped                as every dataset
    context          float32 [S,3,H,W]  source frames, in the order of context_offsets
    context_offsets  int64 [S]          frame offsets from t, e.g. (-1, +1)
    K                float32 [3,3]      intrinsics of the H x W images (pixel-centre convention,
                                        probe.geometry), identical for every frame
    dt               float32 []         seconds between consecutive frames (nominal)
    context_dt       float32 [S]        seconds from t to each source (signed; from timestamps where the
                                        dataset has them, else context_offsets * dt)
    speed            float32 []         reported speed at t in m/s (noisy where the dataset says so;
                                        0 where speed_valid is False)
    speed_valid      bool []            False where the reading is missing (sensor dropout)

and, where the dataset knows them (synthetic video: always; KITTI raw: never)::

    poses            float32 [S,4,4]    exact T_target_to_source (X_s = T X_t; probe.geometry)
    context_depth    float32 [S,1,H,W]  and context_valid bool [S,1,H,W]
    moving           bool [1,H,W]       target pixels on independently moving objects
    speed_true       float32 []         the exact speed at t, m/s

Resizing maps the raw images to ``input_size`` (bilinear, antialiased), the
depths by nearest neighbour, and ``K`` by :func:`probe.geometry.scale_intrinsics`.
Augmentation (``augment=True``) applies *one* draw of the seed's flip and
channel swap to every frame of the window; a flip also mirrors ``K``
(``cx -> W - 1 - cx``) and the poses (``M T M`` with ``M = diag(-1, 1, 1, 1)``),
so the geometry stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from probe.data import transforms as T
from probe.data.base import DepthDataset, RawSample
from probe.errors import DataError, ProbeError
from probe.geometry import scale_intrinsics

MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=torch.float64))


@dataclass
class RawWindow(RawSample):
    """The target frame (``image``, ``depth``, ``name``) with its context and motion, at the raw resolution.

    ``context`` holds the source images in the order of ``offsets``; the
    optional fields are None where the reader does not know them.  ``K`` is
    the intrinsics of the raw images, ``poses`` ``[S,4,4]`` float64
    ``T_target_to_source``.
    """

    context: tuple[np.ndarray, ...] = ()
    offsets: tuple[int, ...] = ()
    K: np.ndarray | None = None
    dt: float = math.nan
    context_dt: tuple[float, ...] | None = None
    speed: float = math.nan
    speed_valid: bool = True
    speed_true: float | None = None
    poses: np.ndarray | None = None
    context_depth: tuple[np.ndarray, ...] | None = None
    moving: np.ndarray | None = None


def parse_offsets(value: Any, label: str) -> tuple[int, ...]:
    """``"-1,1"``, ``(-1, 1)`` or ``-1`` -> distinct non-zero frame offsets, e.g. ``(-1, 1)``."""
    items = (
        value.split(",") if isinstance(value, str) else (list(value) if isinstance(value, (list, tuple)) else [value])
    )
    try:
        offsets = tuple(int(str(v).strip()) for v in items)
    except ValueError:
        raise ProbeError(f"{label}: context must be frame offsets like -1,1, got {value!r}") from None
    if not offsets or 0 in offsets or len(set(offsets)) != len(offsets):
        raise ProbeError(f"{label}: context must be distinct non-zero frame offsets like -1,1, got {value!r}")
    return offsets


class SequenceDataset(DepthDataset):
    """Base class of video datasets: ``load_raw(index) -> RawWindow``; items per the module docstring.

    Subclasses set ``context_offsets`` (the source frames' offsets from the target, e.g. ``(-1, 1)``).
    """

    context_offsets: tuple[int, ...] = ()

    def _finish(self, raw: RawSample, index: int, skipped: str) -> dict[str, Any]:
        if not isinstance(raw, RawWindow):
            raise TypeError(f"{type(self).__name__}.load_raw must return a RawWindow")
        height, width = self.input_size
        raw_h, raw_w = raw.image.shape[:2]
        frames = [self._image(raw.image), *(self._image(c) for c in raw.context)]
        for c in raw.context:
            if c.shape[:2] != (raw_h, raw_w):
                raise DataError(
                    f"{raw.name}: context frame of size {c.shape[:2]} differs from the target's {(raw_h, raw_w)}"
                )
        pairs = [self._depth(d, raw.name) for d in (raw.depth, *(raw.context_depth or ()))]
        depths, valids = [d for d, _ in pairs], [v for _, v in pairs]
        K = _scaled_K(raw.K, raw.name, width / raw_w, height / raw_h)
        poses = torch.from_numpy(np.asarray(raw.poses, dtype=np.float64)) if raw.poses is not None else None
        moving = (
            torch.from_numpy(np.ascontiguousarray(raw.moving, dtype=bool))[None] if raw.moving is not None else None
        )
        depth_size = (int(depths[0].shape[-2]), int(depths[0].shape[-1]))
        if moving is not None and tuple(moving.shape[-2:]) != depth_size:
            moving = T.resize_depth(moving.float(), depth_size).bool()

        if self.augment:
            flip, perm = T.augment_choice(T.sample_rng(self.seed, self.epoch, index))
            if flip:
                frames, depths, valids = ([t.flip(-1) for t in ts] for ts in (frames, depths, valids))
                moving = moving.flip(-1) if moving is not None else None
                K[0, 2] = (width - 1) - K[0, 2]
                poses = MIRROR @ poses @ MIRROR if poses is not None else None
            if perm is not None:
                frames = [f[perm] for f in frames]

        frames = [self._normalize(f).contiguous() for f in frames]
        item: dict[str, Any] = {
            "image": frames[0],
            "depth": depths[0].contiguous(),
            "valid": valids[0].contiguous(),
            "name": raw.name,
            "skipped": skipped,
            "context": torch.stack(frames[1:]),
            "context_offsets": torch.tensor(raw.offsets, dtype=torch.int64),
            "K": K,
            "dt": torch.tensor(raw.dt, dtype=torch.float32),
            "context_dt": torch.tensor(
                raw.context_dt if raw.context_dt is not None else [o * raw.dt for o in raw.offsets], dtype=torch.float32
            ),
            "speed": torch.tensor(raw.speed if raw.speed_valid else 0.0, dtype=torch.float32),
            "speed_valid": torch.tensor(bool(raw.speed_valid)),
        }
        if poses is not None:
            item["poses"] = poses.float()
        if raw.context_depth is not None:
            item["context_depth"] = torch.stack(depths[1:]).contiguous()
            item["context_valid"] = torch.stack(valids[1:]).contiguous()
        if moving is not None:
            item["moving"] = moving.contiguous()
        if raw.speed_true is not None:
            item["speed_true"] = torch.tensor(raw.speed_true, dtype=torch.float32)
        return item

    def _image(self, image: np.ndarray) -> torch.Tensor:
        return T.resize_image(T.image_to_tensor(image), self.input_size)

    def _depth(self, depth: np.ndarray, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw depth -> (metres ``[1,h,w]``, 0 where invalid; valid ``[1,h,w]``), as the base class does.

        The mask is computed in NumPy (``0 < d <= max_depth``, which also rejects
        NaN and inf): on one core it is ten times faster than the same torch ops
        on these small maps, and a window has three of them.
        """
        depth_np = np.asarray(depth, dtype=np.float32)
        if depth_np.ndim != 2:
            raise DataError(f"{name}: depth must be a 2-D map, got shape {depth_np.shape}")
        if self.depth_resolution == "target" and depth_np.shape != tuple(self.depth_size):
            depth_np = T.resize_depth(torch.from_numpy(np.ascontiguousarray(depth_np))[None], self.depth_size)[
                0
            ].numpy()
        with np.errstate(invalid="ignore"):
            valid = (depth_np > 0) & (depth_np <= self.info.max_depth)
        clean = np.zeros(depth_np.shape, np.float32)
        np.copyto(clean, depth_np, where=valid)
        return torch.from_numpy(clean)[None], torch.from_numpy(valid)[None]


def _scaled_K(K: np.ndarray | None, name: str, sx: float, sy: float) -> torch.Tensor:
    if K is None or np.shape(K) != (3, 3):
        raise DataError(f"{name}: the reader gave no 3x3 intrinsics K")
    return scale_intrinsics(torch.as_tensor(np.asarray(K, dtype=np.float64)), sx, sy).float()
