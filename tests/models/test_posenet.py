"""PoseNet: the published layer sizes and parameter count, the 0.01 output scaling, registration as a pose model."""

from __future__ import annotations

import pytest
import torch

from probe.errors import ProbeError, ShapeError
from probe.models import MODELS, build_model, count_parameters, list_models, model_task
from probe.models.posenet import PoseNet


def test_parameter_count_is_the_published_one():
    # packnet-sfm's PoseNet with nb_ref_imgs=2: seven conv+GroupNorm stages and the 1x1 pose head
    with torch.device("meta"):
        assert count_parameters(build_model("posenet")) == 1_592_684
        assert count_parameters(build_model("posenet", n_sources=4)) == 1_592_684 + 6 * 16 * 49 + 12 * 257


def test_layers_are_the_published_stride_2_convolutions_with_group_norm_16():
    net = build_model("posenet")
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in net.encoder if isinstance(m, torch.nn.GroupNorm)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256, 256, 256]
    assert [c.kernel_size[0] for c in convs] == [7, 5, 3, 3, 3, 3, 3]
    assert all(c.stride == (2, 2) and c.padding[0] == (c.kernel_size[0] - 1) // 2 for c in convs)
    assert convs[0].in_channels == 9 and all(n.num_groups == 16 for n in norms)
    assert net.pose_pred.kernel_size == (1, 1) and net.pose_pred.out_channels == 12
    assert all(not c.bias.detach().any() for c in [*convs, net.pose_pred])


def test_output_is_one_hundredth_of_the_spatial_mean_of_the_pose_head():
    net = build_model("posenet", width=0.25).eval()
    frames = torch.rand(2, 9, 64, 96)
    raw = net.pose_pred(net.encoder(frames))
    torch.testing.assert_close(net(frames), 0.01 * raw.mean(dim=(2, 3)).view(2, 2, 6))


def test_the_translation_scale_multiplies_the_translations_alone():
    published = build_model("posenet", width=0.25).eval()
    scaled = build_model("posenet", width=0.25, translation_scale=1.0).eval()
    scaled.load_state_dict(published.state_dict())  # the same weights: only the output factor differs
    frames = torch.rand(2, 9, 32, 48)
    a, b = published(frames), scaled(frames)
    torch.testing.assert_close(b[..., :3], 100.0 * a[..., :3])
    torch.testing.assert_close(b[..., 3:], a[..., 3:])
    assert "output_scales" not in scaled.state_dict()  # checkpoints stay the published network's


@pytest.mark.parametrize("inputs", ["stack", "pairs"])
@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0])
def test_any_translation_scale_starts_from_the_published_initial_motion(inputs, scale):
    frames = torch.rand(2, 9, 32, 48)
    torch.manual_seed(7)
    published = PoseNet(width=0.25, inputs=inputs, offsets=(-1, 1)).eval()
    torch.manual_seed(7)
    scaled = PoseNet(width=0.25, inputs=inputs, offsets=(-1, 1), translation_scale=scale).eval()
    torch.testing.assert_close(scaled(frames), published(frames), rtol=1e-5, atol=1e-7)
    weights = scaled.pose_pred.weight.view(-1, 6, *scaled.pose_pred.weight.shape[1:])
    ratio = (weights[:, :3].abs().sum() / published.pose_pred.weight.view_as(weights)[:, :3].abs().sum()).detach()
    assert float(ratio) == pytest.approx(0.01 / scale)  # the translation rows start smaller, the rotations not
    torch.testing.assert_close(weights[:, 3:], published.pose_pred.weight.view_as(weights)[:, 3:])


def test_poses_are_rigid_motions_near_identity_at_initialisation():
    net = build_model("posenet", width=0.25)
    T = net.poses(torch.rand(3, 3, 32, 48), torch.rand(3, 2, 3, 32, 48))
    assert T.shape == (3, 2, 4, 4)
    R = T[..., :3, :3]
    torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3).expand(3, 2, 3, 3), atol=1e-5, rtol=0)
    assert float(T[..., :3, 3].detach().norm(dim=-1).max()) < 0.2  # 0.01 x O(1) outputs
    torch.testing.assert_close(T[..., 3, :], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(3, 2, 4))


def test_registered_as_a_pose_model_apart_from_the_depth_models():
    assert "posenet" in list_models(task=None) and "posenet" in list_models(task="pose")
    assert "posenet" not in list_models()  # the default lists the depth models every analysis can run
    assert model_task("posenet") == "pose" and model_task("packnet_b") == "depth"
    assert MODELS.entry("posenet").meta["family"] == "pose"


def test_bad_inputs_and_options_are_one_line_errors():
    net = build_model("posenet", width=0.125)
    with pytest.raises(ShapeError, match=r"\[B,9,H,W\]"):
        net(torch.rand(1, 3, 32, 32))
    with pytest.raises(ProbeError, match="n_sources"):
        PoseNet(n_sources=0)
    with pytest.raises(ProbeError, match="unknown option"):
        build_model("posenet", depth=3)
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ProbeError, match="translation_scale must be a positive number"):
            PoseNet(translation_scale=bad)


def test_pairs_run_one_shared_network_per_earlier_later_pair_and_invert_the_earlier_sources():
    from probe.geometry import invert_pose, pose_vec_to_matrix

    torch.manual_seed(0)
    net = build_model("posenet", width=0.25, inputs="pairs", offsets=(-1, 1)).eval()
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].in_channels == 6 and net.pose_pred.out_channels == 6
    a, b, c = (torch.rand(2, 3, 64, 96) for _ in range(3))
    with torch.no_grad():
        window = net(torch.cat([b, a, c], dim=1))  # target b, sources a (t-1) and c (t+1)
        shifted = net(torch.cat([a, c, b], dim=1))  # target a: its t+1 source b is the pair (a, b)
    # the t+1 source of window (a, ...) is the motion a -> b; b's t-1 source is its inverse, b -> a
    torch.testing.assert_close(pose_vec_to_matrix(window[:, 0]), invert_pose(pose_vec_to_matrix(shifted[:, 1])),
                               atol=1e-6, rtol=0)
    stacked = build_model("posenet", width=0.25, offsets=(-1, 1))
    assert stacked.pose_pred.out_channels == 12  # the published stack keeps its own outputs per source


def test_pairs_need_the_sources_offsets():
    with pytest.raises(ProbeError, match="inputs must be one of stack, pairs"):
        PoseNet(inputs="triples")
    with pytest.raises(ProbeError, match="non-zero integer source offsets"):
        PoseNet(inputs="pairs")
    with pytest.raises(ProbeError, match="non-zero integer source offsets"):
        PoseNet(inputs="pairs", offsets=(0, 1))
