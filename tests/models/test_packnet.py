"""PackNet01 / PackNetSlim01: published parameter counts, options, shapes and the version-C skip cut."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.errors import ProbeError, ShapeError
from probe.laws import single_thread
from probe.models import MODELS, build_model, count_parameters, list_models
from probe.models.packnet import PackNet, ResidualConv
from probe.models.weights import IgnoredWeightsWarning
from tests.models.checkpoint_files import save_malicious_pickle, save_packnet_sfm_checkpoint

PACKNETS = [name for name in list_models() if MODELS.entry(name).meta["family"] == "packnet"]
TINY = 0.03125  # every channel count hits the floor of 4: milliseconds per forward
PUBLISHED = {
    "packnet_a": 128_294_020,
    "packnet_b": 124_164_580,
    "packnet_c": 124_164_580,
    "packnet_slim_a": 76_997_796,
    "packnet_slim_b": 71_899_908,   # default slim_b_fix="unpack": unpack2 emits 32 channels, not 64
    "packnet_slim_c": 71_899_908,
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


def _meta(name: str, **options) -> PackNet:
    with torch.device("meta"):
        return build_model(name, **options)


def _seeded(name: str, seed: int = 0, **options) -> PackNet:
    torch.manual_seed(seed)
    return build_model(name, width=TINY, **options)


def test_all_six_packnets_are_registered_with_the_packnet_family():
    assert set(PACKNETS) == set(PUBLISHED)


@pytest.mark.parametrize("name", PACKNETS)
def test_published_parameter_counts_at_width_one(name):
    model = _meta(name)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert count_parameters(model) == PUBLISHED[name]
    # Published widths are multiples of 32, so every GroupNorm keeps the published 16 groups.
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and all(m.num_groups == 16 for m in norms)


@pytest.mark.parametrize("name", [name for name in PACKNETS if not name.endswith("_c")])
def test_published_widths_run_end_to_end_on_the_meta_device(name):
    # Shapes only, no arithmetic: proves every version-B addition matches at width 1.0.
    model = _meta(name).eval()
    with torch.device("meta"):
        out = model(torch.empty(1, 3, 64, 96))
    assert out.shape == (1, 1, 64, 96)


def test_slim_b_fix_sizes_unpack2_to_the_32_channel_skip():
    model = _meta("packnet_slim_b").eval()
    seen: dict[str, torch.Size] = {}
    model.unpack2.register_forward_hook(lambda m, i, o: seen.update(unpack2=o.shape))
    model.pack1.register_forward_hook(lambda m, i, o: seen.update(skip2=o.shape))
    with torch.device("meta"):
        model(torch.empty(1, 3, 64, 64))
    assert seen["unpack2"] == seen["skip2"] == (1, 32, 32, 32)
    assert model.iconv2.conv_base.in_channels == 32 + 1


def test_versions_a_and_b_differ_in_parameters_and_c_shares_b_state_dict():
    a, b, c = _meta("packnet_a"), _meta("packnet_b"), _meta("packnet_c")
    assert count_parameters(a) - count_parameters(b) == 128_294_020 - 124_164_580
    assert {k: v.shape for k, v in b.state_dict().items()} == {k: v.shape for k, v in c.state_dict().items()}
    assert (a.version, b.version, c.version) == ("A", "B", "B") and not c.skips and b.skips


def test_width_shrinks_models_and_keeps_group_norm_valid():
    counts = {w: count_parameters(_meta("packnet_b", width=w)) for w in (1.0, 0.25, 0.0625)}
    assert counts[1.0] > counts[0.25] > counts[0.0625]
    for w in (0.25, 0.0625, TINY, 0.01):
        for module in _meta("packnet_slim_a", width=w).modules():
            if isinstance(module, nn.GroupNorm):
                assert module.num_channels % module.num_groups == 0
                assert module.num_channels // module.num_groups >= 2


def test_contract_attributes():
    model = _seeded("packnet_slim_b")
    assert model.output_space == "inverse" and model.min_depth == 0.5
    assert model.output_scale == 1.0 and model.input_multiple == 32
    assert model.family == "packnet" and model.model_name == "packnet_slim_b"
    half = _seeded("packnet_a", output_scale="half", target="direct", min_depth=0.1)
    assert half.output_scale == 0.5 and half.output_space == "direct" and half.min_depth == 0.1


OPTION_GRID = list(itertools.product(["sigmoid", "leaky_relu"], ["inverse", "direct"], ["full", "half"],
                                     [True, False], [True, False]))


@pytest.mark.parametrize(("activation", "target", "output_scale", "residual", "skips"), OPTION_GRID)
def test_every_option_combination_gives_documented_shapes(activation, target, output_scale, residual, skips):
    name = "packnet_a" if residual else "packnet_slim_b"  # both versions and both families across the grid
    model = _seeded(name, activation=activation, target=target, output_scale=output_scale,
                    residual=residual, skips=skips)
    s = model.output_scale
    x = torch.rand(2, 3, 32, 96)
    with torch.no_grad():
        out = model.eval()(x)
        scales = model.train()(x)
    assert out.shape == (2, 1, 32 * s, 96 * s)
    expected = [(2, 1, int(32 * s / 2**i), int(96 * s / 2**i)) for i in range(4 if s == 1.0 else 3)]
    assert [tuple(t.shape) for t in scales] == expected
    assert all(torch.isfinite(t).all() for t in scales)


@pytest.mark.parametrize("name", PACKNETS)
@pytest.mark.parametrize(("h", "w"), [(70, 90), (33, 47), (64, 64)])
def test_any_input_size_is_padded_and_cropped_back(name, h, w):
    model = _seeded(name).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, h, w)).shape == (1, 1, h, w)
    half = _seeded(name, output_scale="half").eval()
    with torch.no_grad():
        assert half(torch.rand(1, 3, h, w)).shape == (1, 1, round(h / 2), round(w / 2))


def test_out_channels_and_dropout_options():
    model = _seeded("packnet_b", out_channels=2, dropout=0.2)
    assert any(isinstance(m, nn.Dropout2d) for m in model.modules())
    assert model.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)


def test_half_output_builds_no_last_stage():
    full, half = _meta("packnet_a"), _meta("packnet_a", output_scale="half")
    for name in ("unpack1", "iconv1", "disp1_layer"):
        assert hasattr(full, name) and not hasattr(half, name)
    last_stage = sum(count_parameters(getattr(full, n)) for n in ("unpack1", "iconv1", "disp1_layer"))
    assert count_parameters(full) - count_parameters(half) == last_stage


def test_half_output_is_the_second_to_last_scale_of_the_full_model():
    full = _seeded("packnet_b", seed=3).train()
    half = _seeded("packnet_b", seed=3, output_scale="half").train()
    half.load_state_dict(full.state_dict(), strict=False)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        full_scales, half_scales = full(x), half(x)
    for f, h in zip(full_scales[1:], half_scales):
        torch.testing.assert_close(f, h)


def _bottleneck_swap_output(model: PackNet, image: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``image`` but with the bottleneck (pack5 output) computed from ``donor``."""
    stored = {}
    handle = model.pack5.register_forward_hook(lambda m, i, o: stored.setdefault("x5p", o))
    with torch.no_grad():
        model(donor)
    handle.remove()
    handle = model.pack5.register_forward_hook(lambda m, i, o: stored["x5p"])
    with torch.no_grad():
        out = model(image)
    handle.remove()
    return out


@pytest.mark.parametrize(("with_skips", "without_skips"),
                         [("packnet_b", "packnet_c"), ("packnet_slim_b", "packnet_slim_c")])
def test_version_c_output_depends_on_the_encoder_only_through_the_bottleneck(with_skips, without_skips):
    b = _seeded(with_skips, seed=1).eval()
    c = _seeded(without_skips, seed=2).eval()
    c.load_state_dict(b.state_dict())
    image, donor = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        c_donor, b_donor = c(donor), b(donor)
    # C sees the image's skips but the donor's bottleneck and answers exactly as for the donor...
    torch.testing.assert_close(_bottleneck_swap_output(c, image, donor), c_donor, rtol=0, atol=0)
    # ...whereas B's answer changes with the image's skip activations.
    assert not torch.allclose(_bottleneck_swap_output(b, image, donor), b_donor)


def _skip_path_gradient(model: PackNet) -> torch.Tensor:
    """Gradient of the output w.r.t. the pre_calc features with the bottleneck detached.

    With pack5's output cut from the graph, the only routes from the encoder to the output
    are the skips (skip1 directly, skip2..skip5 through the encoder stages).
    """
    leaf = {}
    model.pre_calc.register_forward_hook(lambda m, i, o: leaf.setdefault("x", o.detach().requires_grad_()))
    model.pack5.register_forward_hook(lambda m, i, o: o.detach())
    model(torch.rand(1, 3, 32, 32)).sum().backward()
    return leaf["x"].grad


def test_version_c_gets_no_gradient_through_the_skip_path():
    assert torch.count_nonzero(_skip_path_gradient(_seeded("packnet_c").eval())) == 0
    assert torch.count_nonzero(_skip_path_gradient(_seeded("packnet_slim_c").eval())) == 0
    assert torch.count_nonzero(_skip_path_gradient(_seeded("packnet_b").eval())) > 0


def _coarsest(model: PackNet, x: torch.Tensor) -> torch.Tensor:
    # disp4 is the one head whose input does not depend on another head's output
    # (finer stages concatenate the upsampled coarser depth), so heads compare exactly there.
    with torch.no_grad():
        return model.train()(x)[-1].double()


def test_direct_target_drops_the_min_depth_scale():
    inverse = _seeded("packnet_b", seed=4, min_depth=0.25)
    direct = _seeded("packnet_b", seed=5, min_depth=0.25, target="direct")
    direct.load_state_dict(inverse.state_dict())
    x = torch.rand(1, 3, 32, 64)
    inv, dep = _coarsest(inverse, x), _coarsest(direct, x)
    torch.testing.assert_close(inv, dep / 0.25)
    assert inverse.output_space == "inverse" and direct.output_space == "direct"
    with torch.no_grad():
        full_direct, full_inverse = direct.eval()(x), inverse.eval()(x)
    assert 0 < full_direct.min() and full_direct.max() < 1           # depth as a fraction of max_depth
    assert 0 < full_inverse.min() and full_inverse.max() < 1 / 0.25  # inverse depth below 1 / min_depth


def test_leaky_relu_heads_apply_leaky_relu_to_the_same_logits():
    sigmoid = _seeded("packnet_a", seed=6)
    leaky = _seeded("packnet_a", seed=7, activation="leaky_relu")
    leaky.load_state_dict(sigmoid.state_dict())
    x = torch.rand(2, 3, 64, 64)
    logits = torch.logit(_coarsest(sigmoid, x) * sigmoid.min_depth)
    out = _coarsest(leaky, x)
    torch.testing.assert_close(out, F.leaky_relu(logits) / leaky.min_depth, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        assert leaky.eval()(x).min() < 0  # unbounded below, unlike the sigmoid head


def test_residual_false_removes_exactly_the_shortcut_convolutions():
    with_shortcut, without = _meta("packnet_b"), _meta("packnet_b", residual=False)
    shortcuts = [m.conv3 for m in with_shortcut.modules() if isinstance(m, ResidualConv)]
    assert len(shortcuts) == 2 + 2 + 3 + 3
    assert all(m.conv3 is None for m in without.modules() if isinstance(m, ResidualConv))
    assert count_parameters(with_shortcut) - count_parameters(without) == sum(map(count_parameters, shortcuts))


def test_every_parameter_gets_a_gradient_in_training_mode():
    for name in ("packnet_a", "packnet_c"):
        model = _seeded(name).train()
        sum(t.mean() for t in model(torch.rand(2, 3, 32, 32))).backward()
        assert all(p.grad is not None for p in model.parameters()), name


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: _seeded("packnet_b").eval()(torch.rand(1, 1, 32, 32)), ShapeError, "expected input [B,3,H,W]"),
        (lambda: _seeded("packnet_b").eval()(torch.rand(3, 32, 32)), ShapeError, "expected input [B,3,H,W]"),
        (lambda: build_model("packnet_b", width=0), ProbeError, "--width"),
        (lambda: build_model("packnet_b", width=TINY, activation="relu"), ProbeError, "leaky_relu"),
        (lambda: build_model("packnet_b", width=TINY, target="log"), ProbeError, "direct"),
        (lambda: build_model("packnet_b", width=TINY, output_scale="quarter"), ProbeError, "output_scale"),
        (lambda: build_model("packnet_c", width=TINY, skips=True), ProbeError, "packnet_c"),
        (lambda: build_model("packnet_b", width=TINY, dropout=0.1, residual=False), ProbeError, "dropout"),
        (lambda: build_model("packnet_b", width=TINY, min_depth=0), ProbeError, "min_depth"),
        (lambda: build_model("packnet_slim_c", width=TINY, colour=True), ProbeError, "unknown option(s) colour"),
        (lambda: build_model("packnet_b", width=TINY, downsample="maxpool"), ProbeError, "downsample"),
        (lambda: build_model("packnet_b", width=TINY, upsample="bilinear"), ProbeError, "upsample"),
    ],
)
def test_bad_input_and_options_raise_one_line_errors(call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value) and "\n" not in str(info.value)


# -- ablations: packing and unpacking swapped for pooling and upsampling --------------------------

@pytest.mark.parametrize("downsample, upsample", [("avgpool", "unpack"), ("pack", "nearest"), ("avgpool", "nearest")])
def test_pooling_ablations_keep_every_shape_and_drop_only_the_packing_layers(downsample, upsample):
    published = _seeded("packnet_slim_b").train()
    ablated = _seeded("packnet_slim_b", downsample=downsample, upsample=upsample).train()
    x = torch.rand(2, 3, 64, 96)
    assert [o.shape for o in ablated(x)] == [o.shape for o in published(x)]
    kinds = {type(m).__name__ for m in ablated.modules()}
    assert ("PackLayerConv3d" in kinds) == (downsample == "pack")
    assert ("UnpackLayerConv3d" in kinds) == (upsample == "unpack")
    # Everything but the swapped layers keeps its published shape: the same state dict outside them.
    swapped = {"pack"} if downsample != "pack" else set()
    swapped |= {"unpack"} if upsample != "unpack" else set()

    def kept(model):
        return {k: v.shape for k, v in model.state_dict().items() if k.split(".")[0].rstrip("12345") not in swapped}

    assert kept(ablated) == kept(published)


def test_pool_layer_is_average_pooling_then_its_conv_and_upsample_layer_repeats_each_pixel():
    from probe.models.packnet import PoolLayer, UpsampleLayer

    torch.manual_seed(0)
    x = torch.rand(1, 4, 8, 12)
    pool = PoolLayer(4, 3)
    assert torch.allclose(pool(x), pool.conv(F.avg_pool2d(x, 2)))
    # Constant 2x2 blocks pool to the same image as taking one pixel of each block.
    blocks = x[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert torch.allclose(F.avg_pool2d(blocks, 2), x[..., ::2, ::2])
    up = UpsampleLayer(4, 6, 3)
    out = up(x)
    assert out.shape == (1, 6, 16, 24)
    assert torch.equal(out[..., ::2, ::2], out[..., 1::2, 1::2]) and torch.equal(out[..., ::2, ::2], up.conv(x))


# -- slim B: the two fixes the seed's text allows ------------------------------------------------

@pytest.mark.parametrize("fix, params", [("unpack", 71_899_908), ("skip", 71_955_300)])
def test_slim_b_fixes_have_their_parameter_counts(fix, params):
    assert count_parameters(_meta("packnet_slim_b", slim_b_fix=fix)) == params
    assert count_parameters(_meta("packnet_slim_c", slim_b_fix=fix)) == params


def test_slim_b_skip_fix_takes_skip2_from_conv2_and_keeps_every_published_shape():
    model = _meta("packnet_slim_b", slim_b_fix="skip").eval()
    seen: dict[str, torch.Size] = {}
    model.unpack2.register_forward_hook(lambda m, i, o: seen.update(unpack2=o.shape))
    model.conv2.register_forward_hook(lambda m, i, o: seen.update(conv2=o.shape))
    with torch.device("meta"):
        out = model(torch.empty(1, 3, 64, 64))
    assert out.shape == (1, 1, 64, 64)
    assert seen["unpack2"] == seen["conv2"] == (1, 64, 32, 32)   # published n2o = 64
    assert model.iconv2.conv_base.in_channels == 64 + 1            # published n2i = n2 + no


def test_slim_b_skip_fix_output_depends_on_conv2_through_the_skip():
    # With the skip fix, skip2 is conv2's output: perturbing conv2's output changes the decoder's
    # stage-2 input directly; under the unpack fix skip2 is pack1's output and conv2 reaches stage 2
    # only through the bottleneck path.  Compare the gradient of iconv2's input w.r.t. conv2's output.
    for fix, direct in (("skip", True), ("unpack", False)):
        model = _seeded("packnet_slim_b", slim_b_fix=fix).eval()
        captured = {}

        def keep(m, i, o):
            o.retain_grad()
            captured["conv2"] = o

        model.conv2.register_forward_hook(keep)
        model.unpack2.register_forward_hook(lambda m, i, o: captured.update(unpack2=o))
        model.iconv2.register_forward_hook(lambda m, i, o: captured.update(iconv2_in=i[0]))
        model(torch.rand(1, 3, 64, 64))
        skip_part = captured["iconv2_in"][:, :-1] - captured["unpack2"]  # version B adds the skip
        same = torch.allclose(skip_part, captured["conv2"], atol=1e-6) if skip_part.shape == captured["conv2"].shape else False
        assert same is direct, fix


def test_unknown_slim_b_fix_is_a_one_line_error():
    with pytest.raises(ProbeError, match="slim_b_fix expected one of unpack, skip"):
        build_model("packnet_slim_b", width=TINY, slim_b_fix="pad")
    with pytest.raises(ProbeError, match="unknown option"):
        build_model("packnet_b", width=TINY, slim_b_fix="skip")


# -- weights= : packnet-sfm checkpoints and bare state dicts ------------------------------------

def _same_outputs(a: PackNet, b: PackNet) -> bool:
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_a_packnet_sfm_checkpoint_loads_strictly_and_reports_the_pose_network(tmp_path):
    source = _seeded("packnet_a", seed=1)
    path = save_packnet_sfm_checkpoint(tmp_path / "PackNet01_MR_selfsup_K.ckpt", source.state_dict())
    assert b"yacs.config" in (tmp_path / "PackNet01_MR_selfsup_K.ckpt").read_bytes() or _zip_holds(path, b"yacs.config")
    with pytest.warns(IgnoredWeightsWarning, match=r"ignored 2 tensor\(s\) \[model\.pose_net"):
        loaded = _seeded("packnet_a", seed=2, weights=str(path))
    assert _same_outputs(source, loaded)
    assert not _same_outputs(source, _seeded("packnet_a", seed=2))


def _zip_holds(path, needle: bytes) -> bool:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return any(needle in z.read(n) for n in z.namelist() if n.endswith(".pkl"))


def test_a_bare_depth_net_state_dict_loads(tmp_path):
    source = _seeded("packnet_slim_b", seed=1, slim_b_fix="skip")
    torch.save(source.state_dict(), tmp_path / "depth_net.pth")
    loaded = _seeded("packnet_slim_b", seed=2, slim_b_fix="skip", weights=tmp_path / "depth_net.pth")
    assert _same_outputs(source, loaded)


def test_a_checkpoint_of_another_version_names_its_network_in_one_line(tmp_path):
    path = save_packnet_sfm_checkpoint(tmp_path / "a.ckpt", _seeded("packnet_a").state_dict(), version="1A")
    with pytest.raises(ProbeError) as info:
        _seeded("packnet_b", weights=path)
    message = str(info.value)
    assert "\n" not in message and "shape conflicts" in message
    assert "config names depth_net PackNet01 version 1A" in message


def test_a_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    for torch_format in (True, False):
        path = save_malicious_pickle(tmp_path / f"evil{torch_format}.ckpt", marker, torch_format=torch_format)
        with pytest.raises(ProbeError, match=r"refused to load: the pickle calls builtins\.exec"):
            _seeded("packnet_b", weights=path)
        assert not marker.exists()
    # positive control: the payload is live, plain unpickling runs it
    import pickle

    pickle.loads((tmp_path / "evilFalse.ckpt").read_bytes())
    assert marker.read_text() == "ran"
