"""Rigid motion and pinhole projection in torch: the geometry of view synthesis.

Conventions (shared by the video datasets, the pose network and the self-supervised losses):

- **Camera frame**: OpenCV, metres: x right, y down, z forward (the optical axis).
- **Pixel coordinates** ``(u, v)`` = (column, row) of pixel *centres*: pixel ``(i, j)`` of an
  ``H x W`` image sits at ``u = j``, ``v = i``.  ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``
  maps a camera point ``X`` to ``(u, v, 1) ~ K X``.  ``grid_sample(..., align_corners=True)``
  uses the same convention (``-1`` and ``+1`` are the centres of the first and last pixel).
- **Poses**: ``T_a_to_b`` is a 4x4 SE(3) matrix taking a point in camera ``a``'s frame to
  camera ``b``'s frame, ``X_b = R X_a + t``.  They compose right to left:
  ``T_a_to_c = T_b_to_c @ T_a_to_b``.  The norm of ``t`` is the distance between the two camera
  centres (``t = -R c_b`` in ``a``'s frame, and ``R`` keeps lengths).
- **Resizing** an image by ``(sx, sy)`` maps pixel centres ``u -> (u + 0.5) sx - 0.5``, so
  ``fx -> fx sx`` and ``cx -> (cx + 0.5) sx - 0.5`` (:func:`scale_intrinsics`).

>>> import torch
>>> T = pose_vec_to_matrix(torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]))  # one metre forward
>>> T[0, :3, 3].tolist()
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from probe.errors import ShapeError

__all__ = [
    "backproject",
    "euler_to_matrix",
    "inverse_warp",
    "invert_pose",
    "matrix_to_pose_vec",
    "pixel_grid",
    "pose_vec_to_matrix",
    "project",
    "scale_intrinsics",
]

#: Points nearer than this (metres along the optical axis) do not project (division guard, as packnet-sfm's 1e-5).
MIN_Z = 1e-5


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """``[B,3]`` angles (rx, ry, rz) in radians -> ``[B,3,3]`` rotation ``Rx(rx) @ Ry(ry) @ Rz(rz)``.

    The order of packnet-sfm's ``euler`` rotation mode (inherited from SfMLearner).
    """
    if angles.dim() != 2 or angles.shape[1] != 3:
        raise ShapeError(f"euler_to_matrix: expected [B,3] angles, got {tuple(angles.shape)}")
    zero, one = torch.zeros_like(angles[:, 0]), torch.ones_like(angles[:, 0])

    def rotation(c: torch.Tensor, s: torch.Tensor, axis: int) -> torch.Tensor:
        rows = {
            0: [one, zero, zero, zero, c, -s, zero, s, c],
            1: [c, zero, s, zero, one, zero, -s, zero, c],
            2: [c, -s, zero, s, c, zero, zero, zero, one],
        }[axis]
        return torch.stack(rows, dim=1).view(-1, 3, 3)

    cos, sin = torch.cos(angles), torch.sin(angles)
    return rotation(cos[:, 0], sin[:, 0], 0) @ rotation(cos[:, 1], sin[:, 1], 1) @ rotation(cos[:, 2], sin[:, 2], 2)


def pose_vec_to_matrix(vec: torch.Tensor) -> torch.Tensor:
    """``[B,6]`` (tx, ty, tz, rx, ry, rz) -> ``[B,4,4]`` SE(3): rotation :func:`euler_to_matrix`, translation first."""
    if vec.dim() != 2 or vec.shape[1] != 6:
        raise ShapeError(f"pose_vec_to_matrix: expected [B,6] pose vectors, got {tuple(vec.shape)}")
    top = torch.cat([euler_to_matrix(vec[:, 3:]), vec[:, :3, None]], dim=2)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=vec.dtype, device=vec.device).expand(vec.shape[0], 1, 4)
    return torch.cat([top, bottom], dim=1)


def matrix_to_pose_vec(T: torch.Tensor) -> torch.Tensor:
    """``[B,4,4]`` SE(3) -> ``[B,6]`` (tx, ty, tz, rx, ry, rz): the inverse of :func:`pose_vec_to_matrix`.

    For ``R = Rx(a) Ry(b) Rz(c)``: ``R[0,2] = sin b``, ``R[1,2] = -sin a cos b``,
    ``R[2,2] = cos a cos b``, ``R[0,1] = -cos b sin c``, ``R[0,0] = cos b cos c``;
    exact for ``|b| < pi/2`` (camera motion between video frames is far from that).
    """
    if T.dim() != 3 or tuple(T.shape[1:]) != (4, 4):
        raise ShapeError(f"matrix_to_pose_vec: expected [B,4,4] poses, got {tuple(T.shape)}")
    R = T[:, :3, :3]
    angles = torch.stack(
        [
            torch.atan2(-R[:, 1, 2], R[:, 2, 2]),
            torch.asin(R[:, 0, 2].clamp(-1.0, 1.0)),
            torch.atan2(-R[:, 0, 1], R[:, 0, 0]),
        ],
        dim=1,
    )
    return torch.cat([T[:, :3, 3], angles], dim=1)


def invert_pose(T: torch.Tensor) -> torch.Tensor:
    """``[...,4,4]`` SE(3) -> its inverse ``[[R^T, -R^T t], [0, 1]]`` (exact, no general matrix inverse)."""
    R, t = T[..., :3, :3], T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    top = torch.cat([Rt, -Rt @ t], dim=-1)
    return torch.cat([top, T[..., 3:, :]], dim=-2)


def scale_intrinsics(K: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """``[...,3,3]`` intrinsics of an image resized by ``(sx, sy)`` (pixel-centre convention; a new tensor)."""
    out = K.clone()
    out[..., 0, 0] = K[..., 0, 0] * sx
    out[..., 1, 1] = K[..., 1, 1] * sy
    out[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    out[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return out


def pixel_grid(
    height: int, width: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """``[3,H,W]`` homogeneous pixel-centre coordinates ``(u, v, 1)`` = (column, row, 1)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device), torch.arange(width, dtype=dtype, device=device), indexing="ij"
    )
    return torch.stack([u, v, torch.ones_like(u)])


def _check_depth_and_K(depth: torch.Tensor, K: torch.Tensor, who: str) -> None:
    if depth.dim() != 4 or depth.shape[1] != 1:
        raise ShapeError(f"{who}: depth must be [B,1,H,W], got {tuple(depth.shape)}")
    if tuple(K.shape) != (depth.shape[0], 3, 3):
        raise ShapeError(f"{who}: K must be [B,3,3] with B={depth.shape[0]}, got {tuple(K.shape)}")


def backproject(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Camera-frame points of every pixel: z-depth ``[B,1,H,W]`` + ``K [B,3,3]`` -> ``[B,3,H,W]``.

    ``X = depth * K^-1 (u, v, 1)``: the point on pixel ``(u, v)``'s ray whose z is the depth.
    """
    _check_depth_and_K(depth, K, "backproject")
    b, _, h, w = depth.shape
    rays = torch.linalg.inv(K) @ pixel_grid(h, w, dtype=depth.dtype, device=depth.device).view(1, 3, -1)
    return rays.view(b, 3, h, w) * depth


def project(points: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame points ``[B,3,H,W]`` -> pixel coordinates ``[B,H,W,2]`` (u, v) and ``[B,1,H,W]`` z > MIN_Z."""
    if points.dim() != 4 or points.shape[1] != 3:
        raise ShapeError(f"project: points must be [B,3,H,W], got {tuple(points.shape)}")
    b, _, h, w = points.shape
    pix = (K @ points.reshape(b, 3, -1)).view(b, 3, h, w)
    z = pix[:, 2:3]
    in_front = z > MIN_Z
    uv = pix[:, :2] / z.clamp_min(MIN_Z)
    return uv.permute(0, 2, 3, 1), in_front


def inverse_warp(
    source: torch.Tensor,
    depth: torch.Tensor,
    T_target_to_source: torch.Tensor,
    K: torch.Tensor,
    *,
    padding_mode: str = "zeros",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from a source image: ``[B,C,H,W]`` -> (warped ``[B,C,H,W]``, inside ``[B,1,H,W]``).

    Each target pixel is lifted to 3-D with the target's z-``depth [B,1,H,W]``
    and ``K [B,3,3]`` (:func:`backproject`), moved into the source camera by
    ``T_target_to_source [B,4,4]``, projected with the same ``K`` and the source
    colour there read by bilinear ``grid_sample`` (``align_corners=True``, the
    pixel-centre convention).  ``inside`` marks pixels that land in front of the
    source camera and within its image; outside, ``padding_mode`` decides
    (``zeros`` as packnet-sfm; ``border``, ``reflection``).  Source and depth share
    one resolution; ``K`` belongs to it.
    """
    _check_depth_and_K(depth, K, "inverse_warp")
    if source.dim() != 4 or source.shape[0] != depth.shape[0] or source.shape[-2:] != depth.shape[-2:]:
        raise ShapeError(
            f"inverse_warp: source {tuple(source.shape)} must be [B,C,H,W] matching depth {tuple(depth.shape)}"
        )
    if tuple(T_target_to_source.shape) != (depth.shape[0], 4, 4):
        raise ShapeError(f"inverse_warp: T_target_to_source must be [B,4,4], got {tuple(T_target_to_source.shape)}")
    b, _, h, w = depth.shape
    points = backproject(depth, K).reshape(b, 3, -1)
    moved = T_target_to_source[:, :3, :3] @ points + T_target_to_source[:, :3, 3:]
    uv, in_front = project(moved.view(b, 3, h, w), K)
    u, v = uv[..., 0], uv[..., 1]
    grid = torch.stack([2.0 * u / max(w - 1, 1) - 1.0, 2.0 * v / max(h - 1, 1) - 1.0], dim=-1)
    warped = F.grid_sample(
        source, grid.to(source.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=True
    )
    tol = 1e-3  # pixels: rounding puts exact border hits a hair outside
    inside = in_front & ((u >= -tol) & (u <= w - 1 + tol) & (v >= -tol) & (v <= h - 1 + tol))[:, None]
    return warped, inside
