"""DenseDepth and its DenseNet-169 encoder: published size, shapes, skips, weight loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from probe.errors import ProbeError, ShapeError
from probe.models import MODELS, build_model, count_parameters
from probe.models.densedepth import ENCODER_TAPS, VARIANTS, DenseDepth, keras_layer_table
from probe.models.densenet import densenet169
from probe.models.weights import IgnoredWeightsWarning
from tests.models.checkpoint_files import save_keras_h5

TINY = 0.0625


def tiny(**options) -> DenseDepth:
    torch.manual_seed(0)
    return build_model("densedepth", width=TINY, **options).eval()


def test_densedepth_default_has_the_pytorch_port_parameter_count():
    with torch.device("meta"):
        model = build_model("densedepth")
    assert count_parameters(model) == 42_657_689
    assert count_parameters(model.encoder) == 12_484_480  # torchvision densenet169().features


def test_densenet169_channels_follow_growth_32_and_blocks_6_12_32_32():
    with torch.device("meta"):
        net = densenet169()
    assert net.channels == {
        "conv0": 64, "norm0": 64, "relu0": 64, "pool0": 64,
        "denseblock1": 256, "transition1": 128, "denseblock2": 512, "transition2": 256,
        "denseblock3": 1280, "transition3": 640, "denseblock4": 1664, "norm5": 1664,
    }
    assert [len(getattr(net.features, f"denseblock{i}")) for i in range(1, 5)] == [6, 12, 32, 32]


def test_densenet_uses_torchvision_state_dict_names():
    with torch.device("meta"):
        keys = set(densenet169().state_dict())
    for key in ("features.conv0.weight", "features.norm0.running_var",
                "features.denseblock1.denselayer1.norm1.weight", "features.denseblock1.denselayer1.conv1.weight",
                "features.denseblock1.denselayer6.conv2.weight", "features.transition1.conv.weight",
                "features.transition3.norm.bias", "features.denseblock4.denselayer32.conv2.weight",
                "features.norm5.num_batches_tracked"):
        assert key in keys
    assert not any(k.startswith("classifier") for k in keys)


def test_densedepth_is_registered_with_its_family():
    entry = MODELS.entry("densedepth")
    assert entry.meta["family"] == "densedepth"
    model = tiny()
    assert (model.output_space, model.output_scale, model.input_multiple) == ("depthnorm", 0.5, 32)
    assert (model.family, model.model_name) == ("densedepth", "densedepth")
    assert model.min_depth > 0


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (33, 47), (7, 5)])
def test_eval_output_is_half_resolution_for_any_input_size(size):
    model = tiny(out_channels=2)
    h, w = size
    out = model(torch.rand(2, 3, h, w))
    assert out.shape == (2, 2, round(h * 0.5) or 1, round(w * 0.5) or 1)
    assert torch.isfinite(out).all()


def test_training_mode_returns_a_one_element_list():
    model = tiny().train()
    out = model(torch.rand(2, 3, 64, 64))
    assert isinstance(out, list) and len(out) == 1 and out[0].shape == (2, 1, 32, 32)


def test_decoder_sees_the_encoder_skips_at_their_resolutions():
    model = tiny()
    taps = model.encoder.forward_taps(torch.rand(1, 3, 64, 128), ENCODER_TAPS)
    assert [t.shape[-2:] for t in taps] == [(32, 64), (16, 32), (8, 16), (4, 8), (2, 4)]
    assert [t.shape[1] for t in taps] == [model.encoder.channels[n] for n in ENCODER_TAPS]


@pytest.mark.parametrize("bad", [torch.rand(1, 1, 32, 32), torch.rand(3, 32, 32), torch.ones(1, 3, 32, 32, dtype=torch.long)])
def test_bad_input_raises_shape_error_stating_the_contract(bad):
    with pytest.raises(ShapeError, match=r"\[B,3,H,W\]"):
        tiny()(bad)


def _replace_skips(model: DenseDepth, generator: torch.Generator) -> None:
    """Make the encoder return random skips (same shapes) but its true bottleneck."""
    original = model.encoder.forward_taps

    def forward_taps(x, taps):
        *skips, bottleneck = original(x, taps)
        return [torch.randn(s.shape, generator=generator) for s in skips] + [bottleneck]

    model.encoder.forward_taps = forward_taps


@pytest.mark.parametrize("skips", [False, True])
def test_without_skips_the_output_ignores_the_encoder_skips(skips):
    model = tiny(skips=skips)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        _replace_skips(model, torch.Generator().manual_seed(1))
        perturbed = model(x)
    assert torch.equal(reference, perturbed) is (not skips)


def test_without_skips_the_parameters_are_kept():
    assert count_parameters(tiny(skips=False)) == count_parameters(tiny(skips=True))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_round_trip_gives_identical_outputs(tmp_path: Path, suffix: str):
    source = tiny()
    path = tmp_path / f"dd{suffix}"
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    torch.manual_seed(123)
    loaded = build_model("densedepth", width=TINY, weights=str(path)).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))
        torch.manual_seed(123)
        fresh = build_model("densedepth", width=TINY).eval()
        assert not torch.equal(source(x), fresh(x))


def _reference_layout(model: DenseDepth, prefix: str = "") -> dict[str, torch.Tensor]:
    """``model``'s weights as the PyTorch port's state dict: encoder.original_model.* + classifier, decoder.*."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("encoder."):
            state[prefix + "encoder.original_model." + key.removeprefix("encoder.")] = value
        else:
            state[prefix + "decoder." + key] = value
    features = model.encoder.num_features
    state[prefix + "encoder.original_model.classifier.weight"] = torch.randn(1000, features)
    state[prefix + "encoder.original_model.classifier.bias"] = torch.randn(1000)
    return state


@pytest.mark.parametrize("prefix", ["", "module."])
def test_pytorch_port_state_dict_loads_strictly_and_reports_its_classifier(tmp_path: Path, prefix: str):
    source = tiny()
    torch.save(_reference_layout(source, prefix), tmp_path / "reference.pth")
    with pytest.warns(IgnoredWeightsWarning, match=rf"ignored 2 tensor\(s\) \[{prefix}encoder\.original_model\.classifier\.weight"):
        loaded = build_model("densedepth", width=TINY, weights=tmp_path / "reference.pth").eval()
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))


def _old_torchvision_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Spell ``denselayerN.norm1`` as ``denselayerN.norm.1`` (torchvision's released files) and drop the counters."""
    import re

    return {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()
            if not k.endswith("num_batches_tracked")}


def test_pretrained_loads_torchvision_densenet_with_old_key_spelling_into_the_encoder_only(tmp_path: Path):
    source = tiny()
    encoder = _old_torchvision_keys(dict(source.encoder.state_dict()))
    assert "features.denseblock1.denselayer1.norm.1.weight" in encoder
    encoder["classifier.weight"] = torch.zeros(1000, source.encoder.num_features)
    encoder["classifier.bias"] = torch.zeros(1000)
    torch.save(encoder, tmp_path / "densenet169.pth")
    torch.manual_seed(7)
    with pytest.warns(IgnoredWeightsWarning, match="classifier"):
        other = build_model("densedepth", width=TINY, pretrained=tmp_path / "densenet169.pth")
    loaded = other.encoder.state_dict()
    for key, value in source.encoder.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], value), key
    assert not torch.equal(other.conv3.weight, source.conv3.weight)


def test_an_encoder_file_given_as_weights_points_at_pretrained(tmp_path: Path):
    torch.save(dict(tiny().encoder.state_dict()), tmp_path / "densenet169.pth")
    with pytest.raises(ProbeError, match="pretrained=PATH"):
        build_model("densedepth", width=TINY, weights=tmp_path / "densenet169.pth")


def test_weights_and_pretrained_together_are_refused(tmp_path: Path):
    with pytest.raises(ProbeError, match="not both"):
        build_model("densedepth", width=TINY, weights=tmp_path / "a.pth", pretrained=tmp_path / "b.pth")


def test_missing_weights_file_names_the_file(tmp_path: Path):
    with pytest.raises(ProbeError, match=r"nowhere\.pth: file not found"):
        build_model("densedepth", width=TINY, weights=tmp_path / "nowhere.pth")


def test_mismatched_weights_list_first_missing_unexpected_and_shape_conflicts_in_one_line(tmp_path: Path):
    state = tiny().state_dict()
    state["decoder_extra.weight"] = torch.zeros(1)
    del state["conv3.bias"]
    state["conv3.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ProbeError) as info:
        build_model("densedepth", width=TINY, weights=tmp_path / "bad.pth")
    message = str(info.value)
    assert "\n" not in message and "bad.pth" in message
    assert "1 missing keys [conv3.bias]" in message and "1 unexpected keys [decoder_extra.weight]" in message
    assert "1 shape conflicts [conv3.weight file (1, 1, 1, 1) vs model" in message

    torch.save(tiny().state_dict(), tmp_path / "narrow.pth")
    with pytest.raises(ProbeError, match=r"narrow\.pth.*shape conflicts \[encoder\.features\.conv0\.weight.*\(\+\d+ more\)"):
        build_model("densedepth", width=2 * TINY, weights=tmp_path / "narrow.pth")


def test_weights_of_the_other_variant_name_the_variant_that_fits(tmp_path: Path):
    torch.save(tiny(variant="keras").state_dict(), tmp_path / "keras_variant.pth")
    with pytest.raises(ProbeError, match="use variant=keras"):
        build_model("densedepth", width=TINY, weights=tmp_path / "keras_variant.pth")


def test_corrupt_weights_file_is_a_probe_error(tmp_path: Path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ProbeError, match=r"garbage\.safetensors: cannot read"):
        build_model("densedepth", width=TINY, weights=path)


# -- the two published variants ---------------------------------------------------------------

@pytest.mark.parametrize("variant, params, widths", [
    ("pytorch", 42_657_689, [1664, 832, 416, 208, 104]),
    ("keras", 21_365_405, [832, 416, 208, 104, 52]),
])
def test_variants_have_their_published_decoder_widths_and_parameter_counts(variant, params, widths):
    with torch.device("meta"):
        model = build_model("densedepth", variant=variant)
    assert count_parameters(model) == params
    assert [model.conv2.out_channels] + [getattr(model, f"up{k}").convB.out_channels for k in range(1, 5)] == widths


def test_default_variant_is_the_pytorch_port():
    assert tiny().variant == "pytorch"


@pytest.mark.parametrize("variant, align_corners, eps, leaky_a", [
    ("pytorch", True, 1e-5, False),
    ("keras", False, 1.001e-5, True),
])
def test_variants_differ_in_upsampling_activation_and_batchnorm_epsilon(variant, align_corners, eps, leaky_a):
    model = tiny(variant=variant)
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {m.eps for m in norms} == {eps}
    for k in range(1, 5):
        block = getattr(model, f"up{k}")
        assert block.align_corners is align_corners
        assert isinstance(block.leakyreluA, torch.nn.LeakyReLU) is leaky_a
    assert tiny(variant=variant, align_corners=not align_corners).up1.align_corners is (not align_corners)


def _up_block_without_last_activation(block, x, skip):
    saved = block.leakyreluB
    block.leakyreluB = torch.nn.Identity()
    try:
        return block(x, skip)
    finally:
        block.leakyreluB = saved


@pytest.mark.parametrize("variant, affine", [("pytorch", True), ("keras", False)])
def test_only_the_keras_up_block_has_an_activation_between_its_convolutions(variant, affine):
    # Without its final LeakyReLU, the port's up-block is convB(convA(.)): affine in its input.
    block = tiny(variant=variant).up2.double()
    g = torch.Generator().manual_seed(0)
    skip = torch.randn(1, block.convA.in_channels - 2 * block.convB.out_channels, 8, 8, generator=g, dtype=torch.float64)
    x_channels = block.convA.in_channels - skip.shape[1]
    a, b = (torch.randn(1, x_channels, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    zero = torch.zeros_like(a)
    with torch.no_grad():
        f = lambda x, s: _up_block_without_last_activation(block, x, s)  # noqa: E731
        lhs = f(a + b, 2 * skip) - f(b, skip)
        rhs = f(a, skip) - f(zero, 0 * skip)
    assert torch.allclose(lhs, rhs, atol=1e-10) is affine


def test_unknown_variant_is_one_line_error():
    with pytest.raises(ProbeError, match="variant expected one of pytorch, keras"):
        build_model("densedepth", width=TINY, variant="tf")


# -- Keras HDF5 -------------------------------------------------------------------------------

def test_keras_layer_table_maps_onto_every_tensor_of_both_variants():
    table = keras_layer_table()
    for variant in VARIANTS:
        with torch.device("meta"):
            model = build_model("densedepth", variant=variant)
        keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
        mapped = {f"{module}.{name}" for module in table.values()
                  for name in ("weight", "bias", "running_mean", "running_var")}
        assert keys <= mapped
        assert {k.rsplit(".", 1)[0] for k in keys} == set(table.values())


def _keras_layers(model: DenseDepth) -> dict[str, dict[str, np.ndarray]]:
    """``model``'s weights as Keras would store them: Keras layer names and weight names, kernels HWIO."""
    state = model.state_dict()
    names = {"weight": "kernel", "bias": "bias"}
    bn_names = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
    layers: dict[str, dict[str, np.ndarray]] = {"input_1": {}, "zero_padding2d": {}}
    for keras, ours in keras_layer_table().items():
        is_bn = isinstance(model.get_submodule(ours), torch.nn.BatchNorm2d)
        layer = {}
        for torch_name, keras_name in (bn_names if is_bn else names).items():
            if f"{ours}.{torch_name}" in state:
                value = state[f"{ours}.{torch_name}"].numpy()
                layer[keras_name] = value.transpose(2, 3, 1, 0) if keras_name == "kernel" else value
        layers[keras] = layer
        if keras == "conv1/bn":
            layers["conv1/relu"] = {}  # weightless layers are listed too, with empty weight_names
    return layers


@pytest.mark.parametrize("saved_model", [True, False])
def test_keras_h5_laid_out_like_keras_loads_into_the_keras_variant(tmp_path: Path, saved_model: bool):
    torch.manual_seed(3)
    source = tiny(variant="keras")
    with torch.no_grad():  # random BatchNorm statistics, so eval-mode BN is not the identity
        for m in source.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    path = save_keras_h5(tmp_path / "nyu.h5", _keras_layers(source), saved_model=saved_model)
    torch.manual_seed(4)
    loaded = build_model("densedepth", width=TINY, variant="keras", weights=path).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))


def test_keras_h5_with_an_unknown_layer_is_refused_naming_it(tmp_path: Path):
    layers = _keras_layers(tiny(variant="keras"))
    layers["extra_dense"] = {"kernel": np.zeros((2, 3), dtype=np.float32)}
    path = save_keras_h5(tmp_path / "odd.h5", layers)
    with pytest.raises(ProbeError, match=r"unexpected keys \[keras:extra_dense/kernel\]"):
        build_model("densedepth", width=TINY, variant="keras", weights=path)


def test_a_non_keras_hdf5_file_is_refused(tmp_path: Path):
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ProbeError, match="not a Keras weights file"):
        build_model("densedepth", width=TINY, variant="keras", weights=tmp_path / "plain.h5")
