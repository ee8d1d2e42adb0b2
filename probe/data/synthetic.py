"""Built-in synthetic scenes: a vectorised ray caster that renders RGB and exact z-depth.

Two datasets are registered, both generated on the fly (no files, no root):

- ``synthetic`` (indoor, like NYU Depth v2): a box room 3-8 m wide and 2.4-3.2 m
  high with floor, ceiling and four walls; 2-8 axis-aligned boxes, spheres and
  vertical cylinders standing on the floor; a point light under the ceiling with
  Lambertian shading, distance fall-off and an ambient term; a camera 1-1.8 m
  above the floor, any yaw, pitch -15..+5 degrees, roll +-5 degrees, 60 degree
  horizontal FoV, at least 0.5 m from every surface.  Depth cap 10 m (deeper
  corners of big rooms are invalid, like a sensor out of range), eval protocol ``nyu``.
- ``synthetic_outdoor`` (like Make3D / KITTI): a ground plane, building-like
  boxes along both sides of a street, parked cars and trees, lit by a sun; sky
  pixels have no surface, so their depth is +inf and the base class marks them
  invalid, as it does ground beyond the 80 m cap.  Eval protocol ``kitti``.

Depth convention: ``depth`` is **z-depth**, the coordinate of the hit point
along the camera's optical axis, not the length of the ray.  Each ray is
``o + t d`` with ``d = R (x/z, y/z, 1)`` (unit camera-z component), so the ray
parameter ``t`` of the first hit *is* the z-depth, with no division afterwards.

Resolution: the depth is cast through the pixel centres of the depth grid
itself (``input_size * depth_scale``, 120x160 by default), so every target pixel
holds the exact analytic depth of the ray through its centre and the base
class's nearest resize is a no-op; the RGB image is cast separately through
the pixel centres of the input grid.  Both grids span the same field of view.

Textures are procedural (checkers, stripes, value noise) in surface
coordinates measured in metres, so they shrink with distance like real ones
(texture gradient).  There are no cast shadows: a shadow ray per pixel against
every object would double the cost, which the 200 images/s budget does not allow.

Speed comes from testing each primitive only inside the pixel rectangle its
bounding box projects to, and from doing all per-pixel work in whole-array
NumPy operations (``bench/data_synthetic.py`` measures it).

Every scene is a pure function of ``(seed, split, index)``: its generator is
seeded with the entropy tuple ``(seed, scene kind, split, index)``, so the same
index gives the same bytes in every process and DataLoader worker, and the
train and test splits draw from disjoint streams.

    >>> ds = get_dataset("synthetic", split="test", input_size=(48, 64), length=4)  # doctest: +SKIP
    >>> ds[0]["image"].shape, ds[0]["depth"].shape                                   # doctest: +SKIP
    (torch.Size([3, 48, 64]), torch.Size([1, 24, 32]))
"""

from __future__ import annotations

import colorsys
import ctypes
import functools
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from probe.data.base import DatasetInfo, DepthDataset, RawSample, register_dataset
from probe.errors import ProbeError
from probe.registry import Registry

NO_SURFACE = 255
"""Face id of a ray that hits nothing (outdoor sky)."""

NEAR = 0.05
"""Metres: the caster ignores surfaces closer than this along the optical axis (scenes keep >= 0.4 m)."""

SPLIT_STREAM = {"train": 0, "test": 1}

Region = tuple[slice, slice]
Vec3 = tuple[float, float, float]
Arrays3 = tuple[np.ndarray, np.ndarray, np.ndarray]


# ---------------------------------------------------------------------------------------------
# camera and rays
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rays:
    """Pixel-centre rays of one grid: ``o + t d`` with ``d`` of unit camera-z component.

    ``d`` and ``inv`` (``1 / d``, +-inf where a component is 0) are three
    float32 ``[h,w]`` arrays each; indexing with a region gives views.
    """

    origin: Vec3
    d: Arrays3
    inv: Arrays3

    def __getitem__(self, region: Region) -> "Rays":
        d, inv = self.d, self.inv
        return Rays(
            self.origin, (d[0][region], d[1][region], d[2][region]), (inv[0][region], inv[1][region], inv[2][region])
        )


_CORNERS = np.array(list(itertools.product((0, 1), repeat=3)), dtype=bool)  # [8,3]: take hi on this axis?
_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1])  # [12,2]


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole camera with square pixels and a centred principal point.

    World frame: metres, ``y`` up.  Camera frame: OpenCV (x right, y down, z
    forward).  ``rotation`` maps camera to world (columns: right, down, forward);
    ``focal`` is the focal length divided by the image width, so intrinsics
    scale with any image size: ``fx = fy = focal * W``, ``cx = W/2``, ``cy = H/2``.
    """

    position: Vec3
    rotation: np.ndarray
    focal: float

    @classmethod
    def looking(cls, position: Vec3, yaw: float, pitch: float, roll: float, hfov_deg: float) -> "PinholeCamera":
        """Camera at ``position``; yaw about world y from +z towards +x, pitch > 0 looks up (radians)."""
        sy, cy, sp, cp = math.sin(yaw), math.cos(yaw), math.sin(pitch), math.cos(pitch)
        forward = np.array([sy * cp, sp, cy * cp])
        right = np.array([-cy, 0.0, sy])  # forward x world-up, normalised
        down = np.array([sp * sy, -cp, sp * cy])  # forward x right
        c, s = math.cos(roll), math.sin(roll)
        right, down = c * right + s * down, -s * right + c * down
        focal = 0.5 / math.tan(math.radians(hfov_deg) / 2.0)
        origin = (float(position[0]), float(position[1]), float(position[2]))
        return cls(origin, np.stack([right, down, forward], axis=1), focal)

    def rays(self, size: tuple[int, int], frame: tuple[int, int]) -> Rays:
        """Rays through the pixel centres of an ``h x w`` grid laid over the ``frame`` (H, W) image."""
        h, w = size
        xs = (((np.arange(w) + 0.5) / w - 0.5) / self.focal).astype(np.float32)
        ys = (((np.arange(h) + 0.5) / h - 0.5) * (frame[0] / frame[1]) / self.focal).astype(np.float32)
        rot = self.rotation.astype(np.float32)
        d = tuple((rot[k, 0] * xs)[None, :] + (rot[k, 1] * ys + rot[k, 2])[:, None] for k in range(3))
        with np.errstate(divide="ignore"):
            inv = tuple(np.float32(1.0) / a for a in d)
        return Rays(self.position, d, inv)

    def view_bounds(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image extents and nearest z-depth of the boxes ``[lo, hi]`` (``[n,3]`` each) beyond NEAR.

        Returns ``[n,4]`` (x/z min, x/z max, y/z min, y/z max) and ``[n]`` minimum
        camera z.  The part of a box with z >= NEAR is a convex solid whose vertices
        are the box corners beyond NEAR and the points where box edges cross
        z = NEAR, so their projections bound its image.  Rows are NaN for boxes
        entirely nearer than NEAR.
        """
        corners = np.where(_CORNERS[None], hi[:, None, :], lo[:, None, :])
        cam = (corners - np.asarray(self.position)) @ self.rotation  # [n,8,3] camera coordinates
        a, b = cam[:, _EDGES[:, 0]], cam[:, _EDGES[:, 1]]
        za, zb = a[..., 2], b[..., 2]
        crosses = (za - NEAR) * (zb - NEAR) < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            cut = a + ((NEAR - za) / (zb - za))[..., None] * (b - a)
        points = np.concatenate([cam, cut], axis=1)
        keep = np.concatenate([cam[..., 2] >= NEAR, crosses], axis=1)
        z = np.where(keep, points[..., 2], 1.0)
        x, y = points[..., 0] / z, points[..., 1] / z
        inf = np.inf
        bounds = np.stack(
            [
                np.where(keep, x, inf).min(1),
                np.where(keep, x, -inf).max(1),
                np.where(keep, y, inf).min(1),
                np.where(keep, y, -inf).max(1),
            ],
            axis=1,
        )
        nearest = np.where(keep, z, inf).min(1)
        hidden = ~keep.any(1)
        bounds[hidden] = np.nan
        nearest[hidden] = np.nan
        return bounds, nearest

    def regions(self, bounds: np.ndarray, size: tuple[int, int], frame: tuple[int, int]) -> list[Region | None]:
        """Pixel rectangles of an ``h x w`` grid that can see each box of :meth:`view_bounds`; None: none."""
        h, w = size
        cols = (bounds[:, :2] * self.focal + 0.5) * w - 0.5
        rows = (bounds[:, 2:] * self.focal * frame[1] / frame[0] + 0.5) * h - 0.5
        # one pixel of margin absorbs float32 rounding of the rays at the rectangle's edge
        with np.errstate(invalid="ignore"):
            j0 = np.clip(np.floor(cols[:, 0]) - 1, 0, w)
            j1 = np.clip(np.ceil(cols[:, 1]) + 2, 0, w)
            i0 = np.clip(np.floor(rows[:, 0]) - 1, 0, h)
            i1 = np.clip(np.ceil(rows[:, 1]) + 2, 0, h)
        visible = (j0 < j1) & (i0 < i1)  # False for NaN rows
        return [
            (slice(int(i0[k]), int(i1[k])), slice(int(j0[k]), int(j1[k]))) if visible[k] else None
            for k in range(len(bounds))
        ]


# ---------------------------------------------------------------------------------------------
# shapes: intersection (t, face) and surface attributes (normal, texture coordinates)
# ---------------------------------------------------------------------------------------------


class Shape(Protocol):
    """A primitive the caster knows.  Arrays are float32 over one pixel region.

    ``intersect(rays, faces) -> (t, face)``: z-depth of the first hit in front of
    the camera (+inf on a miss) and, if ``faces``, the face hit (uint8 array or int).
    ``attributes(p, face) -> (normal, u, v)``: unit normal and texture
    coordinates in metres at hit points ``p`` (meaningful where the shape was hit).
    ``bounds``: ``(lo, hi)`` world box, or None for shapes that may cover the whole image.
    """

    @property
    def n_faces(self) -> int: ...

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None: ...

    def intersect(self, rays: Rays, faces: bool) -> tuple[np.ndarray, np.ndarray | int | None]: ...

    def attributes(self, p: Arrays3, face: np.ndarray) -> tuple[Arrays3, np.ndarray, np.ndarray]: ...


_AXIS_NORMALS = np.repeat(np.eye(3, dtype=np.float32), 2, axis=1) * np.tile(np.array([-1.0, 1.0], dtype=np.float32), 3)
"""``[3,6]``: outward normal components of the faces ``2*axis + side`` of an axis-aligned box (side 1: high face)."""


def _axis_face_attributes(p: Arrays3, face: np.ndarray, outward: bool) -> tuple[Arrays3, np.ndarray, np.ndarray]:
    """Normals and texture coordinates of axis-aligned faces numbered ``2*axis + side``.

    Texture coordinates are (x, z) on horizontal faces and (x + z, y) on walls:
    on a wall one of x, z is constant, so ``x + z`` runs along it.
    """
    table = _AXIS_NORMALS if outward else -_AXIS_NORMALS
    normal = tuple(np.take(table[k], face, mode="clip") for k in range(3))  # ids of other shapes: masked later
    wall = 1.0 - np.abs(normal[1])
    px, py, pz = p
    return normal, px + pz * wall, pz + (py - pz) * wall  # type: ignore[return-value]


@dataclass(frozen=True)
class Room:
    """The inside of the box ``[0,W] x [0,H] x [0,D]``; the camera must be inside.

    Faces: 0 wall x=0, 1 wall x=W, 2 floor, 3 ceiling, 4 wall z=0, 5 wall z=D.
    """

    size: Vec3
    n_faces: int = 6

    @property
    def bounds(self) -> None:
        return None

    def intersect(self, rays: Rays, faces: bool) -> tuple[np.ndarray, np.ndarray | None]:
        t = face = None
        for k in range(3):
            o, inv = rays.origin[k], rays.inv[k]
            # exactly one of the two walls of this axis is ahead of the camera: the larger t
            tk = np.maximum((0.0 - o) * inv, (self.size[k] - o) * inv)
            if t is None:
                t = tk
                face = (rays.d[k] > 0).view(np.uint8) + np.uint8(2 * k) if faces else None
                continue
            if face is not None:
                np.copyto(face, (rays.d[k] > 0).view(np.uint8) + np.uint8(2 * k), where=tk < t)
            np.minimum(t, tk, out=t)
        return t, face  # type: ignore[return-value]

    def attributes(self, p: Arrays3, face: np.ndarray) -> tuple[Arrays3, np.ndarray, np.ndarray]:
        return _axis_face_attributes(p, face, outward=False)


@dataclass(frozen=True)
class GroundPlane:
    """The plane y = 0 seen from above."""

    n_faces: int = 1

    @property
    def bounds(self) -> None:
        return None

    def intersect(self, rays: Rays, faces: bool) -> tuple[np.ndarray, int]:
        with np.errstate(invalid="ignore"):
            t = -rays.origin[1] * rays.inv[1]
        t[~(t > 0)] = np.inf
        return t, 0

    def attributes(self, p: Arrays3, face: np.ndarray) -> tuple[Arrays3, np.ndarray, np.ndarray]:
        zero = np.zeros_like(p[0])
        return (zero, zero + 1.0, zero), p[0], p[2]


@dataclass(frozen=True)
class Box:
    """Solid axis-aligned box ``[lo, hi]`` seen from outside; faces ``2*axis + side``."""

    lo: Vec3
    hi: Vec3
    n_faces: int = 6

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.lo), np.asarray(self.hi)

    def intersect(self, rays: Rays, faces: bool) -> tuple[np.ndarray, np.ndarray | int | None]:
        # Slab test specialised to the camera's side of each slab: outside a slab the
        # entry plane is known (the low one if o < lo), so no per-pixel min/max is needed.
        entries: list[tuple[np.ndarray, int]] = []  # (t entering the slab, face id of that plane)
        far = None
        with np.errstate(invalid="ignore"):
            for k in range(3):
                o, inv, lo, hi = rays.origin[k], rays.inv[k], self.lo[k], self.hi[k]
                if o < lo:
                    entries.append(((lo - o) * inv, 2 * k))
                    leave = (hi - o) * inv
                elif o > hi:
                    entries.append(((hi - o) * inv, 2 * k + 1))
                    leave = (lo - o) * inv
                else:
                    leave = np.maximum((lo - o) * inv, (hi - o) * inv)
                far = leave if far is None else np.minimum(far, leave)
            if not entries:
                raise ValueError(f"Box {self.lo}..{self.hi}: the camera is inside it")
            near = entries[0][0]
            face: np.ndarray | int = entries[0][1]
            for enter, plane in entries[1:]:
                if faces:
                    face = np.where(enter > near, np.uint8(plane), face)
                near = np.maximum(near, enter)
            t = np.where((near <= far) & (near > 0), near, np.float32(np.inf))
        return t, (face if faces else None)

    def attributes(self, p: Arrays3, face: np.ndarray) -> tuple[Arrays3, np.ndarray, np.ndarray]:
        return _axis_face_attributes(p, face, outward=True)


@dataclass(frozen=True)
class Sphere:
    """Solid sphere seen from outside."""

    centre: Vec3
    radius: float
    n_faces: int = 1

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(self.centre)
        return c - self.radius, c + self.radius

    def intersect(self, rays: Rays, faces: bool) -> tuple[np.ndarray, int]:
        dx, dy, dz = rays.d
        ox, oy, oz = (rays.origin[k] - self.centre[k] for k in range(3))
        a = dx * dx + dy * dy + dz * dz
        b = dx * ox + dy * oy + dz * oz
        c = ox * ox + oy * oy + oz * oz - self.radius**2
        disc = b * b - a * c
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(disc)) / a
        t[~((disc >= 0) & (t > 0))] = np.inf
        return t, 0

    def attributes(self, p: Arrays3, face: np.ndarray) -> tuple[Arrays3, np.ndarray, np.ndarray]:
        inv_r = 1.0 / self.radius
        n = tuple((p[k] - self.centre[k]) * inv_r for k in range(3))
        return n, np.arctan2(n[2], n[0]) * self.radius, p[1]  # type: ignore[return-value]


@dataclass(frozen=True)
class Cylinder:
    """Solid vertical cylinder standing on y = ``base``; face 0 the side, face 1 the top cap."""

    centre_xz: tuple[float, float]
    radius: float
    height: float
    base: float = 0.0
    n_faces: int = 2

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        cx, cz = self.centre_xz
        r = self.radius
        return np.array([cx - r, self.base, cz - r]), np.array([cx + r, self.base + self.height, cz + r])

    def intersect(self, rays: Rays, faces: bool) -> tuple[np.ndarray, np.ndarray | None]:
        dx, dy, dz = rays.d
        ox, oz = rays.origin[0] - self.centre_xz[0], rays.origin[2] - self.centre_xz[1]
        oy = rays.origin[1]
        top = self.base + self.height
        a = dx * dx + dz * dz
        b = dx * ox + dz * oz
        c = ox * ox + oz * oz - self.radius**2
        disc = b * b - a * c
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (-b - np.sqrt(disc)) / a
            y = oy + t * dy
        side = (disc >= 0) & (t > 0) & (y >= self.base) & (y <= top)
        t[~side] = np.inf
        face = np.zeros(t.shape, dtype=np.uint8) if faces else None
        if oy > top:  # the cap is visible only from above
            with np.errstate(invalid="ignore"):
                tc = (top - oy) * rays.inv[1]
                xc, zc = ox + tc * dx, oz + tc * dz
            cap = ~side & (tc > 0) & (xc * xc + zc * zc <= self.radius**2)
            t[cap] = tc[cap]
            if faces:
                face[cap] = 1  # type: ignore[index]
        return t, face

    def attributes(self, p: Arrays3, face: np.ndarray) -> tuple[Arrays3, np.ndarray, np.ndarray]:
        inv_r = 1.0 / self.radius
        side = (face == 0).astype(np.float32)
        nx = (p[0] - self.centre_xz[0]) * (inv_r * side)
        nz = (p[2] - self.centre_xz[1]) * (inv_r * side)
        u = np.where(side > 0, np.arctan2(nz, nx) * self.radius, p[0])
        v = np.where(side > 0, p[1], p[2])
        return (nx, 1.0 - side, nz), u, v


# ---------------------------------------------------------------------------------------------
# materials, textures and lights
# ---------------------------------------------------------------------------------------------


def _periodic_value_noise(rng: np.random.Generator, size: int, octaves: tuple[int, ...]) -> np.ndarray:
    """A ``size x size`` tileable value-noise image in [0,1]: smoothstep-interpolated random lattices."""
    out = np.zeros((size, size))
    weight_sum = 0.0
    for cells in octaves:
        lattice = rng.random((cells, cells))
        x = np.arange(size) * cells / size
        i0 = np.floor(x).astype(int)
        f = x - i0
        f = f * f * (3 - 2 * f)
        i1 = (i0 + 1) % cells
        rows = lattice[i0] * (1 - f)[:, None] + lattice[i1] * f[:, None]
        layer = rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]
        out += layer / cells
        weight_sum += 1.0 / cells
    out /= weight_sum
    return ((out - out.min()) / (out.max() - out.min())).astype(np.float32)


NOISE_TILE_CELLS = 8
NOISE_TILE = _periodic_value_noise(np.random.default_rng(0x5EED), 128, octaves=(4, 8, 16))
"""One fixed tile for every process; a texture cell spans 128/8 = 16 texels, so nearest look-up looks smooth."""

TEXTURES: Registry[Callable[[np.ndarray, np.ndarray], np.ndarray]] = Registry("texture")
"""Pattern functions ``(u, v) -> [0,1]`` of texture coordinates in cells (float32 arrays)."""


def _cell_index(x: np.ndarray) -> np.ndarray:
    """``floor(x)`` as int32 (the cell a coordinate falls in)."""
    return np.floor(x).astype(np.int32)


@TEXTURES.register("checkers", description="alternating squares (tiles)")
def checkers(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return ((_cell_index(u) + _cell_index(v)) & 1).astype(np.float32)


@TEXTURES.register("stripes", description="bands across u (wallpaper, floor planks)")
def stripes(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (_cell_index(u) & 1).astype(np.float32)


_NOISE_FLAT = NOISE_TILE.ravel()
_NOISE_SHIFT = int(math.log2(NOISE_TILE.shape[1]))


@TEXTURES.register("noise", description="smooth value noise (plaster, carpet, asphalt)")
def value_noise(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    texels = NOISE_TILE.shape[0] // NOISE_TILE_CELLS
    mask = NOISE_TILE.shape[0] - 1
    row = _cell_index(v * texels) & mask
    col = _cell_index(u * texels) & mask
    return _NOISE_FLAT.take((row << _NOISE_SHIFT) | col)


@dataclass(frozen=True)
class Material:
    """Albedo ``colour * (1 - contrast * pattern(u / cell, v / cell))``, ``pattern`` a name in TEXTURES."""

    colour: Vec3
    pattern: str
    cell: float
    contrast: float

    def albedo_factor(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        scale = 1.0 / self.cell
        return 1.0 - self.contrast * TEXTURES.get(self.pattern)(u * scale, v * scale)


@dataclass(frozen=True)
class PointLight:
    """Isotropic light; irradiance falls off as ``1 / (1 + (r / falloff)^2)`` (no singularity at r = 0)."""

    position: Vec3
    power: float
    falloff: float

    def diffuse(self, p: Arrays3, n: Arrays3) -> np.ndarray:
        lx, ly, lz = (self.position[k] - p[k] for k in range(3))
        dist2 = lx * lx + ly * ly + lz * lz
        cos = (n[0] * lx + n[1] * ly + n[2] * lz) / np.sqrt(dist2)
        np.maximum(cos, 0.0, out=cos)
        return cos * (self.power / (1.0 + dist2 * (1.0 / self.falloff**2)))


@dataclass(frozen=True)
class SunLight:
    """Directional light; ``direction`` points from the scene towards the sun (unit)."""

    direction: Vec3
    power: float

    def diffuse(self, p: Arrays3, n: Arrays3) -> np.ndarray:
        s = self.direction
        cos = n[0] * s[0] + n[1] * s[1] + n[2] * s[2]
        return np.maximum(cos, 0.0) * self.power


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one sample.

    Faces are numbered globally in shape order (shape ``k``'s faces follow those
    of shapes ``0..k-1``); ``materials`` has one entry per face.
    """

    camera: PinholeCamera
    shapes: tuple[Shape, ...]
    materials: tuple[Material, ...]
    light: PointLight | SunLight
    ambient: float
    sky: tuple[Vec3, Vec3] | None = None  # (horizon, zenith) colours where no surface is hit

    def __post_init__(self) -> None:
        n_faces = sum(s.n_faces for s in self.shapes)
        if len(self.materials) != n_faces:
            raise ValueError(f"Scene: {len(self.materials)} materials for {n_faces} faces")
        if n_faces >= NO_SURFACE:
            raise ValueError(f"Scene: {n_faces} faces; at most {NO_SURFACE - 1} fit the uint8 face ids")


# ---------------------------------------------------------------------------------------------
# casting and shading
# ---------------------------------------------------------------------------------------------


@dataclass
class Hits:
    """First hits of one grid: z-depth ``t`` (+inf: nothing) and global face id ``surface`` (uint8).

    ``regions[k]`` is the pixel rectangle shape ``k`` was tested in (None: not visible),
    ``first_face[k]`` its first global face id.
    """

    rays: Rays
    t: np.ndarray
    surface: np.ndarray | None
    regions: list[Region | None]
    first_face: list[int]


def cast(scene: Scene, size: tuple[int, int], frame: tuple[int, int], faces: bool = True) -> Hits:
    """Closest hit of every pixel-centre ray of an ``h x w`` grid laid over the ``frame`` (H, W) image.

    Each bounded shape is tested only inside the pixel rectangle its bounding
    box projects to, shrunk to the pixels whose current hit lies beyond the box's
    nearest point; shapes go nearest first so that occluded ones shrink to
    nothing.  This is what makes a few dozen primitives affordable.
    """
    h, w = size
    rays = scene.camera.rays(size, frame)
    full = (slice(0, h), slice(0, w))
    regions: list[Region | None] = [full] * len(scene.shapes)
    nearest = np.zeros(len(scene.shapes))
    bounded = [k for k, s in enumerate(scene.shapes) if s.bounds is not None]
    if bounded:
        boxes = [box for box in (scene.shapes[k].bounds for k in bounded) if box is not None]
        lo = np.array([box[0] for box in boxes], dtype=np.float64)
        hi = np.array([box[1] for box in boxes], dtype=np.float64)
        extents, nearest[bounded] = scene.camera.view_bounds(lo, hi)
        for k, region in zip(bounded, scene.camera.regions(extents, size, frame)):
            regions[k] = region
    t = np.full((h, w), np.inf, dtype=np.float32)
    surface = np.full((h, w), NO_SURFACE, dtype=np.uint8) if faces else None
    first_face = list(itertools.accumulate((s.n_faces for s in scene.shapes[:-1]), initial=0))
    for k in sorted(range(len(scene.shapes)), key=lambda k: nearest[k]):
        region = regions[k]
        if region is not None and region is not full and _area(region) > 1024:  # smaller: not worth the test
            region = regions[k] = _within(region, _bounding_rectangle(t[region] > nearest[k]))
        if region is None:
            continue
        t_shape, face = scene.shapes[k].intersect(rays[region], faces)
        t_view = t[region]
        if faces:
            closer = t_shape < t_view
            np.copyto(surface[region], np.asarray(face, dtype=np.uint8) + np.uint8(first_face[k]), where=closer)  # type: ignore[index]
        np.minimum(t_view, t_shape, out=t_view)
    return Hits(rays, t, surface, regions, first_face)


def _area(region: Region) -> int:
    return (region[0].stop - region[0].start) * (region[1].stop - region[1].start)


def _bounding_rectangle(mask: np.ndarray) -> Region | None:
    """The smallest rectangle of the ``[h,w]`` ``mask`` holding all its True pixels (None: there are none)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))


def _within(region: Region, part: Region | None) -> Region | None:
    """``part``, given relative to ``region``, in the coordinates of the grid ``region`` is in."""
    if part is None:
        return None
    i0, j0 = region[0].start, region[1].start
    return (slice(i0 + part[0].start, i0 + part[0].stop), slice(j0 + part[1].start, j0 + part[1].stop))


def render_depth(scene: Scene, size: tuple[int, int], frame: tuple[int, int]) -> np.ndarray:
    """float32 ``[h,w]`` z-depth (metres) of the pixel-centre rays of an ``h x w`` grid; +inf where nothing is hit."""
    return cast(scene, size, frame, faces=False).t


def render_image(scene: Scene, size: tuple[int, int]) -> np.ndarray:
    """float32 ``[H,W,3]`` RGB in [0,1] (a view of a channels-first array): albedo x (ambient + diffuse)."""
    return shade(scene, cast(scene, size, size), size)


def shade(scene: Scene, hits: Hits, size: tuple[int, int]) -> np.ndarray:
    """RGB of the ``size`` grid whose hits (with face ids) :func:`cast` found: see :func:`render_image`.

    Shading is view-independent (Lambertian albedo times irradiance from the
    light, textures fixed to the surfaces), so one surface point has the same
    colour seen from any camera: what the video datasets' reprojection law needs.
    """
    surface, rays = hits.surface, hits.rays
    assert surface is not None
    with np.errstate(invalid="ignore"):
        p: Arrays3 = (
            rays.origin[0] + hits.t * rays.d[0],
            rays.origin[1] + hits.t * rays.d[1],
            rays.origin[2] + hits.t * rays.d[2],
        )
    image = np.zeros((3, *size), np.float32)  # albedo first, multiplied by irradiance at the end
    normal: Arrays3 = (np.zeros(size, np.float32), np.zeros(size, np.float32), np.zeros(size, np.float32))
    for shape, region, first in zip(scene.shapes, hits.regions, hits.first_face):
        if region is not None:
            visible = _within(region, _bounding_rectangle((surface[region] - np.uint8(first)) < shape.n_faces))
            _shade_shape(
                shape, scene.materials[first : first + shape.n_faces], visible, surface, first, p, image, normal
            )
    with np.errstate(invalid="ignore"):
        irradiance = scene.ambient + scene.light.diffuse(p, normal)
    sky_region = _bounding_rectangle(surface == NO_SURFACE)
    if sky_region is not None:
        sky = surface[sky_region] == NO_SURFACE
        np.copyto(irradiance[sky_region], 1.0, where=sky)
        sky_rgb = _sky_colour(scene.sky, rays[sky_region]) if scene.sky is not None else np.zeros(3, np.float32)
        for c in range(3):
            np.copyto(image[c][sky_region], sky_rgb[c], where=sky)
    image *= irradiance
    np.clip(image, 0.0, 1.0, out=image)
    return image.transpose(1, 2, 0)


def _shade_shape(
    shape: Shape,
    materials: tuple[Material, ...],
    region: Region | None,
    surface: np.ndarray,
    first: int,
    p: Arrays3,
    image: np.ndarray,
    normal: Arrays3,
) -> None:
    """Write albedo and normals of the pixels in ``region`` whose nearest face belongs to ``shape``."""
    if region is None:
        return
    local = surface[region] - np.uint8(first)  # other shapes' ids wrap to >= n_faces
    mine = local < shape.n_faces
    with np.errstate(invalid="ignore"):  # pixels of other shapes (even sky: p = inf) are computed, then masked
        n_r, u, v = shape.attributes((p[0][region], p[1][region], p[2][region]), local)
        for dst, src in zip(normal, n_r):
            np.copyto(dst[region], src, where=mine)
        groups = _material_groups(materials)
        if len(groups) == 1:
            _paint(image, region, mine, u, v, groups[0][0])
            return
        group_of_face = np.array([g for f in range(shape.n_faces) for g, (_, faces) in enumerate(groups) if f in faces])
        group = np.take(group_of_face, local, mode="clip")
        for g, (material, _) in enumerate(groups):
            sel = mine & (group == g)
            part = _bounding_rectangle(sel)  # a face group (e.g. the floor) covers part of the rectangle only
            if part is not None:
                _paint(image, _within(region, part), sel[part], u[part], v[part], material)  # type: ignore[arg-type]


def _paint(
    image: np.ndarray, region: Region, sel: np.ndarray, u: np.ndarray, v: np.ndarray, material: Material
) -> None:
    """Write ``material``'s albedo at texture coordinates ``u, v`` into the ``sel`` pixels of ``image[:, region]``."""
    factor = material.albedo_factor(u, v)
    for c in range(3):
        np.copyto(image[c][region], factor * material.colour[c], where=sel)


def _material_groups(materials: tuple[Material, ...]) -> list[tuple[Material, list[int]]]:
    """Distinct materials of one shape's faces (by identity) with the faces using each."""
    if all(m is materials[0] for m in materials):
        return [(materials[0], list(range(len(materials))))]
    groups: dict[int, tuple[Material, list[int]]] = {}
    for face, material in enumerate(materials):
        groups.setdefault(id(material), (material, []))[1].append(face)
    return list(groups.values())


def _sky_colour(sky: tuple[Vec3, Vec3], rays: Rays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel sky colours of ``rays``: horizon -> zenith with the square root of the elevation's sine."""
    dx, dy, dz = rays.d
    elevation = np.sqrt(np.clip(dy / np.sqrt(dx * dx + dy * dy + dz * dz), 0.0, 1.0))
    return tuple(sky[0][c] + (sky[1][c] - sky[0][c]) * elevation for c in range(3))


@functools.cache
def retain_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS (once per process).

    A 240x320 render allocates about a hundred 0.3 MB temporaries.  With glibc's
    defaults freed blocks of that size are unmapped or trimmed, and every new
    one is page-faulted in again, which costs more than the arithmetic (about
    2x the render time, measured by ``bench/data_synthetic.py``).  Raising
    M_MMAP_THRESHOLD to 16 MiB and M_TRIM_THRESHOLD to 64 MiB keeps them in the
    heap.  Process-wide; returns False (nothing changed) where mallopt is absent.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 16 << 20)) and bool(mallopt(m_trim_threshold, 64 << 20))


# ---------------------------------------------------------------------------------------------
# scene generators
# ---------------------------------------------------------------------------------------------


def _colour(rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]) -> Vec3:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return (r, g, b)


def _material(
    rng: np.random.Generator,
    patterns: tuple[str, ...],
    cell: tuple[float, float],
    saturation: tuple[float, float] = (0.1, 0.7),
    value: tuple[float, float] = (0.45, 0.95),
    contrast: tuple[float, float] = (0.15, 0.5),
) -> Material:
    return Material(
        _colour(rng, saturation, value),
        patterns[int(rng.integers(len(patterns)))],
        float(rng.uniform(*cell)),
        float(rng.uniform(*contrast)),
    )


def _footprint_distance(x: float, z: float, lo_x: float, hi_x: float, lo_z: float, hi_z: float) -> float:
    """Distance in the floor plane from (x, z) to a rectangle (0 inside)."""
    return math.hypot(max(lo_x - x, 0.0, x - hi_x), max(lo_z - z, 0.0, z - hi_z))


INDOOR_HFOV_DEG = 60.0  # fx = 0.866 W; NYU's Kinect: fx = 518.9 px at W = 640, i.e. 0.81 W (63 degrees)
OUTDOOR_HFOV_DEG = 70.0
CLEARANCE = 0.5  # metres between the camera and any surface; z-depth >= CLEARANCE / |d| > 0.4 m


def _furniture(rng: np.random.Generator, width: float, length: float) -> tuple[Shape, tuple[float, ...]]:
    """One random box, sphere or cylinder standing on the floor, and its floor footprint rectangle."""
    kind = int(rng.integers(3))
    if kind == 0:
        sx, sz, sy = (
            rng.uniform(0.3, min(1.5, width - 0.1)),
            rng.uniform(0.3, min(1.5, length - 0.1)),
            rng.uniform(0.3, 2.0),
        )
        x, z = rng.uniform(0.05, width - sx - 0.05), rng.uniform(0.05, length - sz - 0.05)
        return Box((x, 0.0, z), (x + sx, sy, z + sz)), (x, x + sx, z, z + sz)
    r = rng.uniform(0.15, 0.6) if kind == 1 else rng.uniform(0.1, 0.5)
    x, z = rng.uniform(r + 0.05, width - r - 0.05), rng.uniform(r + 0.05, length - r - 0.05)
    shape: Shape = Sphere((x, r, z), r) if kind == 1 else Cylinder((x, z), r, rng.uniform(0.3, 2.2))
    return shape, (x - r, x + r, z - r, z + r)


def indoor_scene(rng: np.random.Generator) -> Scene:
    """A furnished box room lit by one point light, seen from a random pose inside it."""
    width, height, length = rng.uniform(3.0, 8.0), rng.uniform(2.4, 3.2), rng.uniform(3.0, 8.0)
    cam_x = rng.uniform(CLEARANCE + 0.1, width - CLEARANCE - 0.1)
    cam_z = rng.uniform(CLEARANCE + 0.1, length - CLEARANCE - 0.1)
    camera = PinholeCamera.looking(
        (cam_x, rng.uniform(1.0, 1.8), cam_z),
        yaw=rng.uniform(0.0, 2 * math.pi),
        pitch=math.radians(rng.uniform(-15.0, 5.0)),
        roll=math.radians(rng.uniform(-5.0, 5.0)),
        hfov_deg=INDOOR_HFOV_DEG,
    )
    # textures of typical physical sizes (wallpaper bands, floor tiles): their apparent size is a depth cue
    wall = _material(rng, ("stripes", "noise"), (0.2, 0.4), saturation=(0.05, 0.5), value=(0.55, 0.95))
    floor = _material(rng, ("checkers", "stripes", "noise"), (0.3, 0.5), value=(0.35, 0.85))
    ceiling = Material(_colour(rng, (0.0, 0.1), (0.8, 0.95)), "noise", float(rng.uniform(0.5, 1.5)), 0.1)
    shapes: list[Shape] = [Room((width, height, length))]
    materials: list[Material] = [wall, wall, floor, ceiling, wall, wall]
    wanted = int(rng.integers(2, 9))
    for _ in range(50):
        if len(shapes) - 1 == wanted:
            break
        shape, footprint = _furniture(rng, width, length)
        if _footprint_distance(cam_x, cam_z, *footprint) < CLEARANCE:
            continue
        shapes.append(shape)
        materials.extend([_material(rng, ("checkers", "stripes", "noise"), (0.08, 0.2))] * shape.n_faces)
    light = PointLight(
        (rng.uniform(0.3, width - 0.3), height - 0.25, rng.uniform(0.3, length - 0.3)),
        power=float(rng.uniform(1.4, 2.2)),
        falloff=float(rng.uniform(2.5, 4.5)),
    )
    return Scene(camera, tuple(shapes), tuple(materials), light, ambient=float(rng.uniform(0.15, 0.3)))


def outdoor_scene(rng: np.random.Generator) -> Scene:
    """A street: ground plane, rows of buildings on both sides, parked cars and trees, under a sun."""
    half_width = rng.uniform(6.0, 10.0)
    camera = PinholeCamera.looking(
        (rng.uniform(-2.5, 2.5), rng.uniform(1.5, 1.8), 0.0),
        yaw=math.radians(rng.uniform(-20.0, 20.0)),
        pitch=math.radians(rng.uniform(-6.0, 2.0)),
        roll=math.radians(rng.uniform(-2.0, 2.0)),
        hfov_deg=OUTDOOR_HFOV_DEG,
    )
    shapes: list[Shape] = [GroundPlane()]
    materials: list[Material] = [
        _material(rng, ("noise", "checkers"), (0.8, 2.5), saturation=(0.0, 0.1), value=(0.35, 0.6), contrast=(0.2, 0.4))
    ]

    def add(shape: Shape, material: Material) -> None:
        shapes.append(shape)
        materials.extend([material] * shape.n_faces)

    for side in (-1.0, 1.0):
        front = half_width + rng.uniform(0.0, 2.0)
        z = rng.uniform(-30.0, -10.0)
        for _ in range(8):
            if z >= 130.0:
                break
            span, depth, tall = rng.uniform(12.0, 35.0), rng.uniform(8.0, 20.0), rng.uniform(4.0, 35.0)
            x0, x1 = sorted((side * front, side * (front + depth)))
            add(
                Box((x0, 0.0, z), (x1, tall, z + span)),
                _material(rng, ("checkers", "stripes", "noise"), (1.0, 3.5), saturation=(0.05, 0.4), value=(0.4, 0.9)),
            )
            z += span + rng.uniform(0.0, 8.0)
    for _ in range(int(rng.integers(0, 4))):
        x = rng.choice([-1.0, 1.0]) * rng.uniform(2.5, half_width - 2.5)
        z = rng.uniform(6.0, 60.0)
        add(Box((x - 0.9, 0.0, z), (x + 0.9, 1.5, z + 4.5)), _material(rng, ("noise",), (0.5, 1.0), value=(0.2, 0.9)))
    for _ in range(int(rng.integers(0, 5))):
        x = rng.choice([-1.0, 1.0]) * (half_width - rng.uniform(0.5, 1.5))
        z, trunk, crown = rng.uniform(4.0, 80.0), rng.uniform(2.0, 4.0), rng.uniform(1.2, 2.5)
        add(
            Cylinder((x, z), float(rng.uniform(0.15, 0.3)), trunk),
            _material(rng, ("stripes",), (0.1, 0.3), value=(0.2, 0.4)),
        )
        add(
            Sphere((x, trunk + 0.6 * crown, z), crown),
            _material(rng, ("noise",), (0.3, 0.8), saturation=(0.4, 0.8), value=(0.25, 0.6), contrast=(0.3, 0.6)),
        )
    elevation, azimuth = math.radians(rng.uniform(25.0, 65.0)), rng.uniform(0.0, 2 * math.pi)
    sun = SunLight(
        (math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)),
        power=float(rng.uniform(0.6, 0.9)),
    )
    horizon = _colour(rng, (0.05, 0.2), (0.85, 0.98))
    zenith = (0.25 + 0.2 * rng.random(), 0.45 + 0.2 * rng.random(), 0.85 + 0.1 * rng.random())
    return Scene(
        camera, tuple(shapes), tuple(materials), sun, ambient=float(rng.uniform(0.3, 0.45)), sky=(horizon, zenith)
    )


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------

DEFAULT_LENGTH = {"train": 2000, "test": 200}


class SyntheticDataset(DepthDataset):
    """Scenes ray cast on demand; item ``i`` is a pure function of ``(seed, split, i)``.

    Options: ``length`` (default 2000 train / 200 test), ``seed`` and the base
    options (``augment``, ``skip_bad``, ``normalize``).
    """

    OPTIONS = ("length", "seed", "augment", "skip_bad", "normalize")

    def __init__(
        self,
        info: DatasetInfo,
        build: Callable[[np.random.Generator], Scene],
        stream: int,
        split: str = "train",
        input_size: tuple[int, int] | None = None,
        length: int | None = None,
        seed: int = 0,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise ProbeError(f"{info.name}: unknown option(s) {', '.join(unknown)}; expected {', '.join(self.OPTIONS)}")
        if not _is_int(seed):
            raise ProbeError(f"{info.name}: seed must be an integer, got {seed!r}")
        super().__init__(info, split=split, input_size=input_size, seed=int(seed), **options)
        length = DEFAULT_LENGTH[split] if length is None else length
        if not _is_int(length) or length < 1:
            raise ProbeError(f"{info.name}: length must be a positive integer, got {length!r}")
        self.length = int(length)
        self.build = build
        self.stream = stream

    def __len__(self) -> int:
        return self.length

    def item_name(self, index: int) -> str:
        return f"{self.info.name}/{self.split}/seed{self.seed}/{index}"

    def scene(self, index: int) -> Scene:
        """The scene of item ``index``: its own generator, seeded by (seed, kind, split, index)."""
        entropy = [self.seed & 0xFFFFFFFFFFFFFFFF, self.stream, SPLIT_STREAM[self.split], index]
        return self.build(np.random.default_rng(entropy))

    def load_raw(self, index: int) -> RawSample:
        retain_freed_memory()
        scene = self.scene(index)
        image = render_image(scene, self.input_size)
        depth = render_depth(scene, self.depth_size, self.input_size)
        return RawSample(image, depth, self.item_name(index))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# The rooms imitate NYU and are scored by its protocol, so they share its 0.1-10 m range (rendered depth
# starts near 0.5 m: the camera never stands closer to a wall or an object).
INDOOR = DatasetInfo(
    name="synthetic",
    description="procedural furnished rooms (NYU-like), ray cast on the fly",
    min_depth=0.1,
    max_depth=10.0,
    input_size=(240, 320),
    depth_scale=0.5,
    eval_protocol="nyu",
    source="built in",
    needs_root=False,
)
OUTDOOR = DatasetInfo(
    name="synthetic_outdoor",
    description="procedural streets (KITTI/Make3D-like), sky invalid",
    min_depth=1.0,
    max_depth=80.0,
    input_size=(240, 320),
    depth_scale=0.5,
    eval_protocol="kitti",
    source="built in",
    needs_root=False,
)


@register_dataset(INDOOR)
def synthetic_indoor(
    root: Path | None = None, split: str = "train", input_size: tuple[int, int] | None = None, **options: Any
) -> SyntheticDataset:
    """Indoor scenes; ``root`` is ignored (nothing to read)."""
    return SyntheticDataset(INDOOR, indoor_scene, 0, split=split, input_size=input_size, **options)


@register_dataset(OUTDOOR)
def synthetic_outdoor(
    root: Path | None = None, split: str = "train", input_size: tuple[int, int] | None = None, **options: Any
) -> SyntheticDataset:
    """Outdoor street scenes; ``root`` is ignored (nothing to read)."""
    return SyntheticDataset(OUTDOOR, outdoor_scene, 1, split=split, input_size=input_size, **options)
