"""Synthetic video: a camera moving through the generated rooms and streets, with exact depth, poses and speed.

Two datasets are registered (no files, no root), built on the still-image ray
caster of :mod:`probe.data.synthetic`:

- ``synthetic_video`` (indoor): a camera carried round a furnished room at
  0.4-1.2 m/s, 1.0-1.8 m above the floor, along a rounded rectangle inset
  0.6-1.3 m from the walls (straight stretches, then turns of 0.6-1.2 m
  radius).  It looks 15-40 degrees into the room from its direction of
  travel and 8-25 degrees down, as a hand-held camera would: looking straight
  ahead at eye level it would mostly face the nearby end wall, a plane at one
  depth, which leaves depth nothing to learn.  Its yaw is averaged over 2 m of
  path, so it turns gradually, and the speed is lowered where needed so that
  it turns at most 0.5 rad/s (under 3 degrees between frames at 10 frames/s:
  photometric losses cannot follow much larger rotations).  Furniture keeps
  0.5 m from the whole path.  Depth cap 10 m, eval protocol ``nyu``.
- ``synthetic_video_outdoor`` (streets): a car driving down the street at
  5-15 m/s, weaving smoothly across its lane (amplitude up to 1 m, wavelength
  40-120 m), camera 1.5-1.8 m high.  Buildings, parked cars and trees keep
  1 m from the path; the street extends 130 m beyond the last frame.  Sky
  invalid, cap 80 m, eval protocol ``kitti``.

Every item is a window of frames around a target frame ``t`` (default context
``t-1, t+1``) with the item keys of :mod:`probe.data.sequence`: RGB, exact
z-depth and validity of every frame, the intrinsics ``K``, the exact poses
``T_target_to_source`` (``X_s = T X_t``, OpenCV camera frames, metres), the
speed at ``t`` (m/s) and the frame interval ``dt`` (s).  Depth is rendered at
the input resolution (``depth_scale`` 1.0): it is the caster's exact ray
parameter at every pixel centre, so reprojecting with it is exact up to the
bilinear resampling of the image.

Motion.  The camera walks a dense planar polyline (2 cm steps) at constant
speed by arc length; its yaw follows the path's tangent, its pitch and roll
are fixed per sequence.  Hence the distance between two camera centres never
exceeds ``speed * |time difference|`` and falls short of it only on turns, by
at most a factor ``cos(max turn / 2)`` over the interval (the chord of an
arc): under 0.5 % between neighbouring frames at the default speeds and
10 frames/s.

Shading is view-independent (Lambertian surfaces lit by a fixed light,
textures fixed to the surfaces, no specular term), so a static surface point
has the same colour in every frame: the reprojection law the tests check.

Options (``get_dataset(name, **options)`` or ``--data-option KEY=VALUE``):

==================  ==========================================================================
``length``          items (default 2000 train / 200 test)
``seed``            scene stream; every item is a pure function of (seed, split, index)
``context``         frame offsets of the source frames, default ``-1,1``
``fps``             frames per second (default 10, KITTI's rate); ``dt = 1 / fps``
``speed``           metres per second; default drawn per sequence from the ranges above
``sequence_length`` consecutive items sharing one scene and trajectory (default 1: every
                    item is a new scene; N: items ``kN .. kN+N-1`` are frames ``0 .. N-1``)
``moving_objects``  independently moving objects per scene (default 0, a static world):
                    rolling boxes and balls indoors, driving cars outdoors; item ``moving``
                    marks the target pixels that show them
``velocity_noise``  std of additive Gaussian noise on the *reported* speed (m/s, default 0)
``velocity_bias``   constant added to the reported speed (m/s, default 0)
``velocity_dropout`` probability that the reading is missing (``speed_valid`` False)
==================  ==========================================================================

Noise acts on the reported ``speed`` only; the poses, depths and
``speed_true`` stay exact.  It is drawn from its own generator seeded by
(seed, split, index), so the same scenes come with or without noise and a
reading is the same in every epoch (a logged sensor).  A noisy speed is
clipped at 0 (a speed is a norm).

    >>> ds = get_dataset("synthetic_video", input_size=(48, 64), length=4)     # doctest: +SKIP
    >>> item = ds[0]; item["context"].shape, item["poses"].shape                  # doctest: +SKIP
    (torch.Size([2, 3, 48, 64]), torch.Size([2, 4, 4]))
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from probe.data.base import DatasetInfo, register_dataset
from probe.data.sequence import RawWindow, SequenceDataset, parse_offsets
from probe.data.synthetic import (
    CLEARANCE,
    INDOOR_HFOV_DEG,
    NO_SURFACE,
    OUTDOOR_HFOV_DEG,
    SPLIT_STREAM,
    Box,
    Cylinder,
    GroundPlane,
    Material,
    PinholeCamera,
    PointLight,
    Room,
    Scene,
    Shape,
    Sphere,
    SunLight,
    Vec3,
    _colour,
    _furniture,
    _material,
    cast,
    retain_freed_memory,
    shade,
)
from probe.errors import ProbeError

PATH_STEP = 0.02  # metres between polyline vertices
COARSE = 10  # clearance checks use every 10th vertex (20 cm apart) and allow for the gap
INDOOR_SPEED = (0.4, 1.2)  # m/s: a walking robot
INDOOR_LOOK_IN_DEG = (15.0, 40.0)  # the indoor camera looks this far into the room from its direction of travel
INDOOR_PITCH_DEG = (-25.0, -8.0)  # and down at the floor, so the view spans near floor to far wall
INDOOR_YAW_WINDOW = 2.0  # metres of path over which the indoor camera's yaw is averaged: it turns gradually
INDOOR_MAX_TURN_RATE = 0.5  # rad/s: the drawn indoor speed is lowered so the camera turns no faster
OUTDOOR_SPEED = (5.0, 15.0)  # m/s: 18-54 km/h
OUTDOOR_CLEARANCE = 1.0  # metres between the car's path and anything standing
OUTDOOR_MAX_TRAVEL = 240.0  # metres a street sequence may cover: longer streets overflow the uint8 face ids
DEFAULT_FPS = 10.0
DEFAULT_CONTEXT = (-1, 1)
DEFAULT_LENGTH = {"train": 2000, "test": 200}
NOISE_STREAM = 7  # entropy word of the velocity-noise generator (the scene generators use 0..3)


# ---------------------------------------------------------------------------------------------
# trajectories
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanarPath:
    """A path in the floor plane, walked by arc length: vertices ``xz [n,2]``, arc length ``s [n]``, yaw ``[n]``.

    ``yaw`` is the unwrapped direction of travel, ``atan2(dx, dz)`` (the yaw of
    :meth:`PinholeCamera.looking`).  A closed path repeats after ``s[-1]``.
    """

    xz: np.ndarray
    s: np.ndarray
    yaw: np.ndarray
    closed: bool

    @classmethod
    def through(cls, points: np.ndarray, closed: bool) -> "PlanarPath":
        """Resample the polyline ``points [m,2]`` to PATH_STEP spacing; yaw from central differences."""
        pts = np.vstack([points, points[:1]]) if closed else np.asarray(points, dtype=float)
        s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
        n = max(2, int(math.ceil(s[-1] / PATH_STEP)) + 1)
        even = np.linspace(0.0, s[-1], n)
        xz = np.stack([np.interp(even, s, pts[:, 0]), np.interp(even, s, pts[:, 1])], axis=1)
        if closed:  # neighbours across the seam: the last vertex repeats the first
            ahead, behind = np.roll(xz[:-1], -1, axis=0), np.roll(xz[:-1], 1, axis=0)
            step = np.vstack([ahead - behind, (ahead - behind)[:1]])
        else:
            step = np.gradient(xz, axis=0)
        yaw = np.unwrap(np.arctan2(step[:, 0], step[:, 1]))
        return cls(xz, even, yaw, closed)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def with_smooth_yaw(self, window: float) -> "PlanarPath":
        """The same path with its yaw averaged over ``window`` metres of arc length (a camera turning gradually).

        On a closed path the average wraps round the loop (the yaw's winding of
        2 pi per lap is taken out first and put back after).
        """
        count = int(round(window / (self.s[1] - self.s[0]))) // 2 * 2 + 1
        if count < 3:
            return self
        kernel = np.full(count, 1.0 / count)
        half = count // 2
        if self.closed:
            m = len(self.yaw) - 1
            winding = self.yaw[-1] - self.yaw[0]
            trend = winding * np.arange(m) / m
            periodic = self.yaw[:-1] - trend
            padded = (
                np.concatenate([periodic[-half:], periodic, periodic[:half]]) if half <= m else np.resize(periodic, m)
            )
            smooth = (
                np.convolve(padded, kernel, mode="valid") + trend if half <= m else np.full(m, periodic.mean()) + trend
            )
            yaw = np.concatenate([smooth, smooth[:1] + winding])
        else:
            padded = np.concatenate([np.full(half, self.yaw[0]), self.yaw, np.full(half, self.yaw[-1])])
            yaw = np.convolve(padded, kernel, mode="valid")
        return PlanarPath(self.xz, self.s, yaw, self.closed)

    def max_yaw_rate(self) -> float:
        """Largest ``|d yaw / d s|`` of the camera's yaw (1/m); speed times it bounds the camera's turn rate."""
        return float(np.max(np.abs(np.diff(self.yaw))) / (self.s[1] - self.s[0]))

    def at(self, s: float) -> tuple[float, float, float]:
        """``(x, z, yaw)`` at arc length ``s`` (wrapped on a closed path, clamped to the ends otherwise)."""
        if self.closed:
            laps, s = divmod(s, self.length)
            turn = laps * (self.yaw[-1] - self.yaw[0])  # the heading keeps winding lap after lap
        else:
            turn = 0.0
        return (
            float(np.interp(s, self.s, self.xz[:, 0])),
            float(np.interp(s, self.s, self.xz[:, 1])),
            float(np.interp(s, self.s, self.yaw) + turn),
        )

    def max_curvature(self) -> float:
        """Largest turn of the direction of travel per metre (1/m), between consecutive polyline segments.

        Speed times it bounds the rate at which the heading of the motion turns.
        """
        step = np.diff(self.xz, axis=0)
        if self.closed:
            step = np.vstack([step, step[:1]])
        heading = np.unwrap(np.arctan2(step[:, 0], step[:, 1]))
        return float(np.max(np.abs(np.diff(heading))) / (self.s[1] - self.s[0])) if len(heading) > 1 else 0.0

    def distance_to_rectangles(self, rects: np.ndarray) -> np.ndarray:
        """A lower bound on the floor-plane distance from the path to rectangles ``[k,4]`` (x0, x1, z0, z1): ``[k]``.

        Measured to every COARSE-th vertex and lowered by half their spacing,
        so it never overstates the distance to any point of the path.
        """
        coarse = self.xz[::COARSE]
        x, z = coarse[None, :, 0], coarse[None, :, 1]
        dx = np.maximum(np.maximum(rects[:, :1] - x, x - rects[:, 1:2]), 0.0)
        dz = np.maximum(np.maximum(rects[:, 2:3] - z, z - rects[:, 3:4]), 0.0)
        return np.hypot(dx, dz).min(axis=1) - 0.5 * COARSE * PATH_STEP


@dataclass(frozen=True)
class Trajectory:
    """A camera at fixed height, pitch and roll walking ``path`` at ``speed`` m/s, at arc length ``start`` at time 0.

    The camera looks ``yaw_offset`` radians away from the direction of travel (0: straight ahead).
    """

    path: PlanarPath
    speed: float
    start: float
    height: float
    pitch: float
    roll: float
    hfov_deg: float
    yaw_offset: float = 0.0

    def camera(self, time: float) -> PinholeCamera:
        x, z, yaw = self.path.at(self.start + self.speed * time)
        return PinholeCamera.looking((x, self.height, z), yaw + self.yaw_offset, self.pitch, self.roll, self.hfov_deg)

    def max_turn_rate(self) -> float:
        """rad/s: the speed times the path's largest curvature (how fast the direction of motion turns)."""
        return self.speed * self.path.max_curvature()

    def max_camera_turn_rate(self) -> float:
        """rad/s: the speed times the largest change of the camera's yaw per metre."""
        return self.speed * self.path.max_yaw_rate()


def camera_to_world(camera: PinholeCamera) -> np.ndarray:
    """4x4 float64 ``[[R, c], [0, 1]]``: OpenCV camera frame -> world (the caster's ``rotation`` is camera->world)."""
    pose = np.eye(4)
    pose[:3, :3] = camera.rotation
    pose[:3, 3] = camera.position
    return pose


def relative_pose(source: PinholeCamera, target: PinholeCamera) -> np.ndarray:
    """``T_target_to_source`` (4x4 float64): maps target-camera points into the source camera's frame."""
    return np.linalg.inv(camera_to_world(source)) @ camera_to_world(target)


# ---------------------------------------------------------------------------------------------
# scenes that move
# ---------------------------------------------------------------------------------------------

_TRANSLATE: dict[type, Callable[[Any, np.ndarray], Shape]] = {
    Box: lambda s, o: Box(tuple(np.add(s.lo, o)), tuple(np.add(s.hi, o))),
    Sphere: lambda s, o: Sphere(tuple(np.add(s.centre, o)), s.radius),
    Cylinder: lambda s, o: dataclasses.replace(
        s, centre_xz=(s.centre_xz[0] + o[0], s.centre_xz[1] + o[2]), base=s.base + o[1]
    ),
}


@dataclass(frozen=True)
class Mover:
    """A shape moving at constant ``velocity`` (m/s); ``shape`` is where it is at time 0."""

    shape: Shape
    velocity: Vec3
    material: Material

    def at(self, time: float) -> Shape:
        return _TRANSLATE[type(self.shape)](self.shape, np.asarray(self.velocity) * time)


@dataclass(frozen=True)
class VideoScene:
    """A static world, a camera trajectory through it and independently moving objects."""

    trajectory: Trajectory
    shapes: tuple[Shape, ...]
    materials: tuple[Material, ...]
    light: PointLight | SunLight
    ambient: float
    sky: tuple[Vec3, Vec3] | None = None
    movers: tuple[Mover, ...] = ()

    @property
    def first_moving_face(self) -> int:
        """Global face id of the first moving object (faces of movers follow the static ones)."""
        return len(self.materials)

    def at(self, time: float) -> Scene:
        """The still scene seen at ``time`` seconds: the camera and the movers where they are then."""
        moved = tuple(m.at(time) for m in self.movers)
        materials = self.materials + tuple(m.material for m in self.movers for _ in range(m.shape.n_faces))
        return Scene(self.trajectory.camera(time), self.shapes + moved, materials, self.light, self.ambient, self.sky)


@dataclass(frozen=True)
class Motion:
    """What the scene generator must know about the motion: the time span to keep clear and the speed."""

    t_min: float
    t_max: float
    speed: float | None
    moving_objects: int


def _rounded_rectangle(x0: float, x1: float, z0: float, z1: float, radius: float) -> np.ndarray:
    """Vertices of a rectangle with rounded corners, counter-clockwise in (x, z), corners sampled every 2 degrees."""
    corners = [
        (x1 - radius, z0 + radius, -math.pi / 2),
        (x1 - radius, z1 - radius, 0.0),
        (x0 + radius, z1 - radius, math.pi / 2),
        (x0 + radius, z0 + radius, math.pi),
    ]
    arc = np.linspace(0.0, math.pi / 2, 46)
    return np.concatenate(
        [np.stack([cx + radius * np.cos(a0 + arc), cz + radius * np.sin(a0 + arc)], axis=1) for cx, cz, a0 in corners]
    )


def _inward(path: PlanarPath, width: float, length: float) -> float:
    """+1 if turning the camera to larger yaw faces the room's centre from the path (a loop keeps one side), else -1."""
    x, z, yaw = path.at(0.0)
    right = (math.cos(yaw), -math.sin(yaw))  # where the view direction moves as the yaw grows
    return 1.0 if right[0] * (width / 2 - x) + right[1] * (length / 2 - z) > 0 else -1.0


def _speed(rng: np.random.Generator, motion: Motion, default: tuple[float, float]) -> float:
    drawn = float(rng.uniform(*default))  # drawn either way, so a fixed speed leaves the scene unchanged
    return drawn if motion.speed is None else float(motion.speed)


def indoor_video_scene(rng: np.random.Generator, motion: Motion) -> VideoScene:
    """A furnished room with the camera going round it along a rounded rectangle (see the module docstring)."""
    width, height, length = rng.uniform(3.0, 8.0), rng.uniform(2.4, 3.2), rng.uniform(3.0, 8.0)
    mx = rng.uniform(CLEARANCE + 0.1, min(CLEARANCE + 0.8, width / 2 - 0.3))
    mz = rng.uniform(CLEARANCE + 0.1, min(CLEARANCE + 0.8, length / 2 - 0.3))
    radius = min(rng.uniform(0.6, 1.2), width / 2 - mx, length / 2 - mz)
    loop = _rounded_rectangle(mx, width - mx, mz, length - mz, radius)
    path = PlanarPath.through(loop if rng.random() < 0.5 else loop[::-1].copy(), closed=True)
    path = path.with_smooth_yaw(INDOOR_YAW_WINDOW)
    # a walker turning at most INDOOR_MAX_TURN_RATE: slower round the corners of small rooms
    speed = (
        min(_speed(rng, motion, INDOOR_SPEED), INDOOR_MAX_TURN_RATE / path.max_yaw_rate())
        if motion.speed is None
        else float(motion.speed)
    )
    trajectory = Trajectory(
        path,
        speed,
        start=float(rng.uniform(0.0, path.length)),
        height=float(rng.uniform(1.0, 1.8)),
        pitch=math.radians(rng.uniform(*INDOOR_PITCH_DEG)),
        roll=math.radians(rng.uniform(-3.0, 3.0)),
        hfov_deg=INDOOR_HFOV_DEG,
        yaw_offset=_inward(path, width, length) * math.radians(rng.uniform(*INDOOR_LOOK_IN_DEG)),
    )
    wall = _material(rng, ("stripes", "noise"), (0.2, 0.4), saturation=(0.05, 0.5), value=(0.55, 0.95))
    floor = _material(rng, ("checkers", "stripes", "noise"), (0.3, 0.5), value=(0.35, 0.85))
    ceiling = Material(_colour(rng, (0.0, 0.1), (0.8, 0.95)), "noise", float(rng.uniform(0.5, 1.5)), 0.1)
    shapes: list[Shape] = [Room((width, height, length))]
    materials: list[Material] = [wall, wall, floor, ceiling, wall, wall]
    wanted = int(rng.integers(3, 10))
    for _ in range(60):
        if len(shapes) - 1 == wanted:
            break
        shape, footprint = _furniture(rng, width, length)
        if path.distance_to_rectangles(np.array([footprint]))[0] < CLEARANCE:
            continue
        shapes.append(shape)
        materials.extend([_material(rng, ("checkers", "stripes", "noise"), (0.08, 0.2))] * shape.n_faces)
    light = PointLight(
        (rng.uniform(0.3, width - 0.3), height - 0.25, rng.uniform(0.3, length - 0.3)),
        power=float(rng.uniform(1.4, 2.2)),
        falloff=float(rng.uniform(2.5, 4.5)),
    )
    movers = _indoor_movers(rng, motion, path, width, length)
    return VideoScene(trajectory, tuple(shapes), tuple(materials), light, float(rng.uniform(0.15, 0.3)), movers=movers)


def _swept(footprint: tuple[float, float, float, float], velocity: Vec3, motion: Motion) -> np.ndarray:
    """Floor rectangle (x0, x1, z0, z1) covered by a footprint moving at ``velocity`` over the motion's span."""
    x0, x1, z0, z1 = footprint
    ends = [
        (x0 + velocity[0] * t, x1 + velocity[0] * t, z0 + velocity[2] * t, z1 + velocity[2] * t)
        for t in (motion.t_min, motion.t_max)
    ]
    return np.array(
        [min(e[0] for e in ends), max(e[1] for e in ends), min(e[2] for e in ends), max(e[3] for e in ends)]
    )


def _indoor_movers(
    rng: np.random.Generator, motion: Motion, path: PlanarPath, width: float, length: float
) -> tuple[Mover, ...]:
    """Balls and boxes rolling across the floor, clear of the camera's path and inside the room all the time."""
    movers: list[Mover] = []
    for _ in range(30 * motion.moving_objects):
        if len(movers) == motion.moving_objects:
            break
        size = rng.uniform(0.15, 0.4)
        x, z = rng.uniform(size, width - size), rng.uniform(size, length - size)
        heading, speed = rng.uniform(0.0, 2 * math.pi), rng.uniform(0.2, 0.8)
        velocity = (speed * math.sin(heading), 0.0, speed * math.cos(heading))
        swept = _swept((x - size, x + size, z - size, z + size), velocity, motion)
        inside = swept[0] > 0.05 and swept[1] < width - 0.05 and swept[2] > 0.05 and swept[3] < length - 0.05
        if not inside or path.distance_to_rectangles(swept[None])[0] < CLEARANCE:
            continue
        shape: Shape = (
            Sphere((x, size, z), size)
            if rng.random() < 0.5
            else Box((x - size, 0.0, z - size), (x + size, 2 * size, z + size))
        )
        movers.append(Mover(shape, velocity, _material(rng, ("checkers", "noise"), (0.08, 0.2), saturation=(0.5, 0.9))))
    return tuple(movers)


def outdoor_video_scene(rng: np.random.Generator, motion: Motion) -> VideoScene:
    """A street driven along +z by a car weaving across its lane (see the module docstring)."""
    half_width = rng.uniform(6.0, 10.0)
    speed = _speed(rng, motion, OUTDOOR_SPEED)
    near, far = speed * motion.t_min - 10.0, speed * motion.t_max + 10.0
    lane, amplitude = rng.uniform(-2.5, 2.5), rng.uniform(0.0, 1.0)
    wavelength, phase = rng.uniform(40.0, 120.0), rng.uniform(0.0, 2 * math.pi)
    z = np.arange(near, far + PATH_STEP, PATH_STEP)
    path = PlanarPath.through(
        np.stack([lane + amplitude * np.sin(2 * math.pi * z / wavelength + phase), z], axis=1), closed=False
    )
    start = float(np.interp(0.0, path.xz[:, 1], path.s))  # time 0 where the car crosses z = 0
    trajectory = Trajectory(
        path,
        speed,
        start,
        height=float(rng.uniform(1.5, 1.8)),
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
        block = near - rng.uniform(20.0, 40.0)
        while block < far + 130.0:
            span, depth, tall = rng.uniform(12.0, 35.0), rng.uniform(8.0, 20.0), rng.uniform(4.0, 35.0)
            x0, x1 = sorted((side * front, side * (front + depth)))
            add(
                Box((x0, 0.0, block), (x1, tall, block + span)),
                _material(rng, ("checkers", "stripes", "noise"), (1.0, 3.5), saturation=(0.05, 0.4), value=(0.4, 0.9)),
            )
            block += span + rng.uniform(0.0, 8.0)
    for _ in range(int(rng.integers(0, 4))):
        x = rng.choice([-1.0, 1.0]) * rng.uniform(2.5, half_width - 2.5)
        zc = rng.uniform(near + 6.0, far + 60.0)
        if path.distance_to_rectangles(np.array([[x - 0.9, x + 0.9, zc, zc + 4.5]]))[0] >= OUTDOOR_CLEARANCE:
            add(
                Box((x - 0.9, 0.0, zc), (x + 0.9, 1.5, zc + 4.5)),
                _material(rng, ("noise",), (0.5, 1.0), value=(0.2, 0.9)),
            )
    for _ in range(int(rng.integers(0, 5))):
        x = rng.choice([-1.0, 1.0]) * (half_width - rng.uniform(0.5, 1.5))
        zc, trunk, crown = rng.uniform(near + 4.0, far + 80.0), rng.uniform(2.0, 4.0), rng.uniform(1.2, 2.5)
        add(
            Cylinder((x, zc), float(rng.uniform(0.15, 0.3)), trunk),
            _material(rng, ("stripes",), (0.1, 0.3), value=(0.2, 0.4)),
        )
        add(
            Sphere((x, trunk + 0.6 * crown, zc), crown),
            _material(rng, ("noise",), (0.3, 0.8), saturation=(0.4, 0.8), value=(0.25, 0.6), contrast=(0.3, 0.6)),
        )
    elevation, azimuth = math.radians(rng.uniform(25.0, 65.0)), rng.uniform(0.0, 2 * math.pi)
    sun = SunLight(
        (math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)),
        power=float(rng.uniform(0.6, 0.9)),
    )
    horizon = _colour(rng, (0.05, 0.2), (0.85, 0.98))
    zenith = (0.25 + 0.2 * rng.random(), 0.45 + 0.2 * rng.random(), 0.85 + 0.1 * rng.random())
    movers = _outdoor_movers(rng, motion, path, half_width, speed)
    return VideoScene(
        trajectory,
        tuple(shapes),
        tuple(materials),
        sun,
        float(rng.uniform(0.3, 0.45)),
        sky=(horizon, zenith),
        movers=movers,
    )


def _outdoor_movers(
    rng: np.random.Generator, motion: Motion, path: PlanarPath, half_width: float, ego_speed: float
) -> tuple[Mover, ...]:
    """Cars driving along the street in lanes that keep OUTDOOR_CLEARANCE from the camera's path."""
    movers: list[Mover] = []
    lowest, highest = path.xz[:, 0].min(), path.xz[:, 0].max()
    for _ in range(30 * motion.moving_objects):
        if len(movers) == motion.moving_objects:
            break
        x = rng.uniform(-half_width + 1.2, half_width - 1.2)
        if lowest - OUTDOOR_CLEARANCE - 0.9 < x < highest + OUTDOOR_CLEARANCE + 0.9:
            continue
        z = ego_speed * motion.t_min + rng.uniform(5.0, 50.0)
        velocity = (0.0, 0.0, float(rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 15.0)))
        movers.append(
            Mover(
                Box((x - 0.9, 0.0, z), (x + 0.9, 1.5, z + 4.5)),
                velocity,
                _material(rng, ("noise",), (0.5, 1.0), saturation=(0.5, 0.9), value=(0.4, 0.9)),
            )
        )
    return tuple(movers)


# ---------------------------------------------------------------------------------------------
# the datasets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoOptions:
    """The motion and sensor options of a synthetic video dataset (see the module docstring)."""

    context: tuple[int, ...] = DEFAULT_CONTEXT
    fps: float = DEFAULT_FPS
    speed: float | None = None
    sequence_length: int = 1
    moving_objects: int = 0
    velocity_noise: float = 0.0
    velocity_bias: float = 0.0
    velocity_dropout: float = 0.0

    @property
    def dt(self) -> float:
        return 1.0 / self.fps

    def validate(self, name: str) -> "VideoOptions":
        """Raise a one-line ProbeError naming the option for an impossible value; returns self."""
        checks = [
            ("fps", _is_number(self.fps) and self.fps > 0, "a positive number of frames per second"),
            ("speed", self.speed is None or (_is_number(self.speed) and self.speed >= 0), "a speed >= 0 m/s"),
            ("sequence_length", _is_int(self.sequence_length) and self.sequence_length >= 1, "an integer >= 1"),
            ("moving_objects", _is_int(self.moving_objects) and 0 <= self.moving_objects <= 8, "an integer 0..8"),
            ("velocity_noise", _is_number(self.velocity_noise) and self.velocity_noise >= 0, "a std >= 0 m/s"),
            ("velocity_bias", _is_number(self.velocity_bias) and math.isfinite(self.velocity_bias), "a finite m/s"),
            (
                "velocity_dropout",
                _is_number(self.velocity_dropout) and 0 <= self.velocity_dropout <= 1,
                "a probability in [0, 1]",
            ),
        ]
        for option, ok, expected in checks:
            if not ok:
                raise ProbeError(f"{name}: option {option} must be {expected}, got {getattr(self, option)!r}")
        return self

    def motion(self) -> Motion:
        """Time span (s) of every frame a sequence needs, relative to its first target frame."""
        first = min(0, *self.context) * self.dt
        last = (self.sequence_length - 1 + max(0, *self.context)) * self.dt
        return Motion(first, last, self.speed, self.moving_objects)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


SceneBuilder = Callable[[np.random.Generator, Motion], VideoScene]


class SyntheticVideo(SequenceDataset):
    """Windows of frames rendered on demand; item ``i`` is a pure function of ``(seed, split, i)`` and the options."""

    OPTIONS = (
        "length",
        "seed",
        "augment",
        "skip_bad",
        "normalize",
        "depth_resolution",
        *(f.name for f in dataclasses.fields(VideoOptions)),
    )

    def __init__(
        self,
        info: DatasetInfo,
        build: SceneBuilder,
        stream: int,
        split: str = "train",
        input_size: tuple[int, int] | None = None,
        length: int | None = None,
        seed: int = 0,
        max_travel: tuple[float, float] | None = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise ProbeError(f"{info.name}: unknown option(s) {', '.join(unknown)}; expected {', '.join(self.OPTIONS)}")
        video = {k: options.pop(k) for k in list(options) if k in VideoOptions.__dataclass_fields__}
        if "context" in video:
            video["context"] = parse_offsets(video["context"], f"{info.name}: option context")
        self.video = VideoOptions(**video).validate(info.name)
        if not _is_int(seed):
            raise ProbeError(f"{info.name}: seed must be an integer, got {seed!r}")
        super().__init__(info, split=split, input_size=input_size, seed=int(seed), **options)
        length = DEFAULT_LENGTH[split] if length is None else length
        if not _is_int(length) or length < 1:
            raise ProbeError(f"{info.name}: length must be a positive integer, got {length!r}")
        self.length = int(length)
        self.build = build
        self.stream = stream
        self.motion = self.video.motion()
        self.context_offsets = self.video.context
        if max_travel is not None:
            top_speed, metres = self.video.speed if self.video.speed is not None else max_travel[0], max_travel[1]
            if (self.motion.t_max - self.motion.t_min) * top_speed > metres:
                raise ProbeError(
                    f"{info.name}: sequence_length, context and fps span "
                    f"{self.motion.t_max - self.motion.t_min:.1f} s, {top_speed:g} m/s covers more than "
                    f"the {metres:g} m a street holds; use fewer frames or a lower speed"
                )

    def __len__(self) -> int:
        return self.length

    def item_name(self, index: int) -> str:
        return f"{self.info.name}/{self.split}/seed{self.seed}/{index}"

    def _entropy(self, *words: int) -> list[int]:
        return [self.seed & 0xFFFFFFFFFFFFFFFF, self.stream, SPLIT_STREAM[self.split], *words]

    def scene(self, index: int) -> VideoScene:
        """The scene of item ``index``'s sequence (shared by ``sequence_length`` consecutive items)."""
        sequence = index // self.video.sequence_length
        return self.build(np.random.default_rng(self._entropy(sequence)), self.motion)

    def frame_time(self, index: int, offset: int = 0) -> float:
        """Seconds since the first target frame of the sequence, of frame ``offset`` of item ``index``."""
        return (index % self.video.sequence_length + offset) * self.video.dt

    def reported_speed(self, index: int, true_speed: float) -> tuple[float, bool]:
        """The speed a faulty sensor reports for item ``index``: (m/s, present?)."""
        v = self.video
        rng = np.random.default_rng(self._entropy(NOISE_STREAM, index))
        noise, dropped = rng.normal(0.0, 1.0), rng.random() < v.velocity_dropout
        return max(0.0, true_speed + v.velocity_bias + v.velocity_noise * noise), not dropped

    def load_raw(self, index: int) -> RawWindow:
        retain_freed_memory()
        scene = self.scene(index)
        size = self.input_size
        offsets = (0, *self.video.context)
        stills = [scene.at(self.frame_time(index, o)) for o in offsets]
        hits = [cast(still, size, size) for still in stills]
        images = [shade(still, h, size) for still, h in zip(stills, hits)]
        poses = np.stack([relative_pose(still.camera, stills[0].camera) for still in stills[1:]])
        surface = hits[0].surface
        assert surface is not None
        moving = (surface >= scene.first_moving_face) & (surface != NO_SURFACE)
        speed_true = scene.trajectory.speed
        speed, present = self.reported_speed(index, speed_true)
        return RawWindow(
            image=images[0],
            depth=hits[0].t,
            name=self.item_name(index),
            context=tuple(images[1:]),
            offsets=self.video.context,
            K=intrinsics(stills[0].camera, size),
            dt=self.video.dt,
            speed=speed,
            speed_valid=present,
            speed_true=speed_true,
            poses=poses,
            context_depth=tuple(h.t for h in hits[1:]),
            moving=moving,
        )


def intrinsics(camera: PinholeCamera, size: tuple[int, int]) -> np.ndarray:
    """3x3 K of the caster's ``size`` grid: square pixels, ``fx = focal W``, principal point at the centre.

    The caster's pixel ``j`` has ``x/z = ((j + 0.5)/W - 0.5)/focal``, so in the
    pixel-centre convention ``u = j``: ``fx = focal W`` and ``cx = W/2 - 0.5``.
    """
    h, w = size
    f = camera.focal * w
    return np.array([[f, 0.0, w / 2 - 0.5], [0.0, f, h / 2 - 0.5], [0.0, 0.0, 1.0]])


INDOOR = DatasetInfo(
    name="synthetic_video",
    description="camera going round procedural rooms: frames, exact depth, poses, speed",
    min_depth=0.3,
    max_depth=10.0,
    input_size=(240, 320),
    depth_scale=1.0,
    eval_protocol="nyu",
    source="built in",
    needs_root=False,
)
OUTDOOR = DatasetInfo(
    name="synthetic_video_outdoor",
    description="car driving procedural streets: frames, exact depth, poses, speed",
    min_depth=1.0,
    max_depth=80.0,
    input_size=(240, 320),
    depth_scale=1.0,
    eval_protocol="kitti",
    source="built in",
    needs_root=False,
)


@register_dataset(INDOOR)
def synthetic_video(
    root: Path | None = None, split: str = "train", input_size: tuple[int, int] | None = None, **options: Any
) -> SyntheticVideo:
    """Indoor video; ``root`` is ignored (nothing to read)."""
    return SyntheticVideo(INDOOR, indoor_video_scene, 2, split=split, input_size=input_size, **options)


@register_dataset(OUTDOOR)
def synthetic_video_outdoor(
    root: Path | None = None, split: str = "train", input_size: tuple[int, int] | None = None, **options: Any
) -> SyntheticVideo:
    """Street video; ``root`` is ignored (nothing to read)."""
    return SyntheticVideo(
        OUTDOOR,
        outdoor_video_scene,
        3,
        split=split,
        input_size=input_size,
        max_travel=(OUTDOOR_SPEED[1], OUTDOOR_MAX_TRAVEL),
        **options,
    )
