"""probe.geometry: hand-computed rotations, pose algebra, the pixel-centre convention and inverse warping."""

from __future__ import annotations

import math

import pytest
import torch

from probe.errors import ShapeError
from probe.geometry import (backproject, euler_to_matrix, inverse_warp, invert_pose, matrix_to_pose_vec,
                            pose_vec_to_matrix, project, scale_intrinsics)

K = torch.tensor([[[20.0, 0.0, 7.5], [0.0, 20.0, 5.5], [0.0, 0.0, 1.0]]], dtype=torch.float64)  # 12 x 16 image


def test_euler_angles_rotate_about_x_then_y_then_z_as_packnet_sfm():
    quarter = math.pi / 2
    Rz = euler_to_matrix(torch.tensor([[0.0, 0.0, quarter]], dtype=torch.float64))[0]
    torch.testing.assert_close(Rz @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
                               torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    angles = torch.tensor([[0.3, -0.2, 0.7]], dtype=torch.float64)
    single = [euler_to_matrix(torch.tensor([[a if k == i else 0.0 for k in range(3)]], dtype=torch.float64))[0]
              for i, a in enumerate(angles[0].tolist())]
    torch.testing.assert_close(euler_to_matrix(angles)[0], single[0] @ single[1] @ single[2])


def test_pose_vectors_put_the_translation_first_and_invert_exactly():
    T = pose_vec_to_matrix(torch.tensor([[1.0, 2.0, 3.0, 0.1, 0.2, 0.3]], dtype=torch.float64))
    assert T[0, :3, 3].tolist() == [1.0, 2.0, 3.0] and T[0, 3].tolist() == [0.0, 0.0, 0.0, 1.0]
    torch.testing.assert_close(invert_pose(T) @ T, torch.eye(4, dtype=torch.float64)[None])
    torch.testing.assert_close(invert_pose(T), torch.linalg.inv(T))


def test_resizing_maps_pixel_centres_to_pixel_centres():
    point = torch.tensor([[0.3], [-0.2], [2.0]], dtype=torch.float64)
    big = scale_intrinsics(K, 4.0, 4.0)  # 48 x 64
    u_small = (K[0] @ point / point[2])[0, 0]
    u_big = (big[0] @ point / point[2])[0, 0]
    assert float(u_big) == pytest.approx((float(u_small) + 0.5) * 4 - 0.5)
    assert float(big[0, 0, 2]) == pytest.approx(31.5)  # the centre of a 64-pixel row


def test_backprojected_points_project_back_to_their_pixels_at_their_depth():
    depth = torch.rand(1, 1, 12, 16, dtype=torch.float64) * 5 + 0.5
    points = backproject(depth, K)
    torch.testing.assert_close(points[:, 2:], depth)
    uv, in_front = project(points, K)
    v, u = torch.meshgrid(torch.arange(12.0), torch.arange(16.0), indexing="ij")
    torch.testing.assert_close(uv[0], torch.stack([u, v], dim=-1).double())
    assert bool(in_front.all())


def test_identity_motion_warps_a_source_onto_itself():
    source = torch.rand(2, 3, 12, 16, dtype=torch.float64)
    depth = torch.rand(2, 1, 12, 16, dtype=torch.float64) + 1.0
    warped, inside = inverse_warp(source, depth, torch.eye(4, dtype=torch.float64).expand(2, 4, 4), K.expand(2, 3, 3))
    torch.testing.assert_close(warped, source)
    assert bool(inside.all())


def test_a_sideways_step_shifts_a_fronto_parallel_wall_by_fx_times_t_over_z():
    # wall at z = 5, the source camera 0.5 m to the left: X_s = X_t + (0.5, 0, 0), u_s = u_t + 20 * 0.5 / 5 = u_t + 2
    source = torch.rand(1, 3, 12, 16, dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)[None].clone()
    T[0, 0, 3] = 0.5
    warped, inside = inverse_warp(source, torch.full((1, 1, 12, 16), 5.0, dtype=torch.float64), T, K)
    torch.testing.assert_close(warped[..., :14], source[..., 2:])
    assert bool(inside[..., :14].all()) and not bool(inside[..., 14:].any())
    assert float(warped[..., 14:].abs().max()) == 0.0  # zero padding outside, as packnet-sfm


def test_points_behind_the_source_camera_are_outside():
    T = torch.eye(4, dtype=torch.float64)[None].clone()
    T[0, 2, 3] = -10.0  # the source camera 10 m ahead of a wall 5 m away
    _, inside = inverse_warp(torch.rand(1, 3, 12, 16, dtype=torch.float64),
                             torch.full((1, 1, 12, 16), 5.0, dtype=torch.float64), T, K)
    assert not bool(inside.any())


def test_shape_errors_state_the_contract():
    with pytest.raises(ShapeError, match=r"\[B,1,H,W\]"):
        backproject(torch.rand(1, 12, 16), K)
    with pytest.raises(ShapeError, match=r"\[B,4,4\]"):
        inverse_warp(torch.rand(1, 3, 12, 16), torch.rand(1, 1, 12, 16), torch.eye(4), K.float())


def test_pose_vectors_and_matrices_invert_each_other():
    torch.manual_seed(0)
    vec = torch.cat([torch.randn(8, 3), (torch.rand(8, 3) - 0.5) * 2.0], dim=1).double()  # angles up to 1 rad
    torch.testing.assert_close(matrix_to_pose_vec(pose_vec_to_matrix(vec)), vec)
    with pytest.raises(ShapeError, match=r"\[B,4,4\]"):
        matrix_to_pose_vec(torch.eye(4))
