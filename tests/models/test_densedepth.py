"""DenseDepth and its DenseNet-169 encoder: published size, shapes, skips, weight loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from probe.errors import ProbeError, ShapeError
from probe.models import MODELS, build_model, count_parameters
from probe.models.densedepth import ENCODER_TAPS, DenseDepth
from probe.models.densenet import densenet169

TINY = 0.0625


def tiny(**options) -> DenseDepth:
    torch.manual_seed(0)
    return build_model("densedepth", width=TINY, **options).eval()


def test_densedepth_has_the_published_parameter_count():
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


def test_reference_and_torchvision_key_spellings_load(tmp_path: Path):
    source = tiny()
    reference = {}
    for key, value in source.state_dict().items():
        if key.startswith("encoder."):
            reference["module.encoder.original_model." + key.removeprefix("encoder.")] = value
        else:
            reference["module.decoder." + key] = value
    torch.save({"state_dict": reference}, tmp_path / "reference.pth")
    loaded = build_model("densedepth", width=TINY, weights=tmp_path / "reference.pth").eval()
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))

    encoder_only = dict(source.encoder.state_dict())
    encoder_only["classifier.weight"] = torch.zeros(1000, source.encoder.num_features)
    encoder_only["classifier.bias"] = torch.zeros(1000)
    torch.save(encoder_only, tmp_path / "densenet169.pth")
    torch.manual_seed(7)
    other = build_model("densedepth", width=TINY, weights=tmp_path / "densenet169.pth")
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(other.encoder.state_dict()[key], value)
    assert not torch.equal(other.conv3.weight, source.conv3.weight)


def test_missing_weights_file_names_the_file(tmp_path: Path):
    with pytest.raises(ProbeError, match=r"nowhere\.pth: file not found"):
        build_model("densedepth", width=TINY, weights=tmp_path / "nowhere.pth")


def test_mismatched_weights_name_the_file_and_first_keys(tmp_path: Path):
    state = tiny().state_dict()
    state["decoder_extra.weight"] = torch.zeros(1)
    del state["conv3.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ProbeError, match=r"bad\.pth.*missing keys \['conv3\.bias'\].*unexpected keys \['decoder_extra\.weight'\]"):
        build_model("densedepth", width=TINY, weights=tmp_path / "bad.pth")

    torch.save(tiny().state_dict(), tmp_path / "narrow.pth")
    with pytest.raises(ProbeError, match=r"narrow\.pth.*shape mismatches.*encoder\.features\.conv0\.weight"):
        build_model("densedepth", width=2 * TINY, weights=tmp_path / "narrow.pth")


def test_corrupt_weights_file_is_a_probe_error(tmp_path: Path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ProbeError, match=r"garbage\.safetensors: cannot read"):
        build_model("densedepth", width=TINY, weights=path)
