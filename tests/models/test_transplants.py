"""examples/transplants.py: each cross of PackNet and DenseDepth keeps its donors' parts and the contract."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from analyses.model_check import run
from probe.depth_space import to_depth
from probe.models import build_model
from probe.models.check import CheckConfig
from probe.models.packnet import DepthHead

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "examples" / "transplants.py"
FACTORIES = [
    "packnet_encoder_densedepth_decoder",
    "densedepth_encoder_packnet_decoder",
    "densedepth_encoder_wide_packnet_decoder",
    "densedepth_encoder_packnet_decoder_linear_heads",
    "packnet_linear_heads",
    "densedepth_sigmoid_head",
]
WIDTH = 0.0625


def _module():
    spec = importlib.util.spec_from_file_location("probe_example_transplants", FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


T = _module()


def _shapes(module: torch.nn.Module, prefix: str = "") -> dict[str, tuple[int, ...]]:
    return {f"{prefix}{k}": tuple(v.shape) for k, v in module.state_dict().items()}


# PackNet's sigmoid inverse-depth head is bounded below in metres (min_depth) but not above: at random
# initialisation a fraction of a percent of its pixels can lie beyond the declared 10 m, which the contract's
# output-range clause reports. Every evaluation clips them to the protocol's range, as for every model.
UNBOUNDED_FAR = {"densedepth_encoder_packnet_decoder", "densedepth_encoder_wide_packnet_decoder"}


@pytest.mark.parametrize("name", FACTORIES)
def test_every_transplant_passes_the_model_contract(name):
    report = run(CheckConfig(f"{FILE}:{name}", width=WIDTH, device="cpu"))
    failed = [c for c in report.clauses if c.status != "passed"]
    if name in UNBOUNDED_FAR:
        assert [c.name for c in failed] in ([], ["output range"]), report.lines()
        assert all("outside the declared range" in c.detail for c in failed), report.lines()
    else:
        assert not failed, report.lines()


def test_packnet_encoder_is_packnets_and_decoder_is_densedepths():
    model = T.packnet_encoder_densedepth_decoder(WIDTH)
    packnet = build_model("packnet_slim_b", width=WIDTH)
    donor = {k: v for k, v in _shapes(packnet).items() if k.split(".")[0] in T.ENCODER_STAGES}
    assert _shapes(model.encoder) == donor
    densedepth = build_model("densedepth", width=WIDTH)
    # Every up-block emits DenseDepth's width; only the first inputs differ (PackNet's skips are narrower).
    for k in range(1, 5):
        ours, theirs = model.get_submodule(f"up{k}"), densedepth.get_submodule(f"up{k}")
        assert ours.convB.weight.shape == theirs.convB.weight.shape
    assert model.conv2.out_channels == densedepth.conv2.out_channels
    assert model.output_space == "depthnorm"
    model.eval()
    assert tuple(model(torch.rand(1, 3, 64, 96)).shape) == (1, 1, 32, 48)  # DenseDepth's half resolution


def test_densedepth_encoder_is_densedepths_and_decoder_is_packnets():
    model = T.densedepth_encoder_packnet_decoder(WIDTH)
    densedepth = build_model("densedepth", width=WIDTH)
    assert _shapes(model.encoder) == _shapes(densedepth.encoder)
    packnet = build_model("packnet_slim_b", width=WIDTH)
    for k in range(1, 6):
        assert model.get_submodule(f"iconv{k}").conv_base.out_channels == packnet.get_submodule(
            f"iconv{k}"
        ).conv_base.out_channels
    for k in range(1, 5):
        head = model.get_submodule(f"disp{k}_layer")
        assert isinstance(head, DepthHead) and head.activation == "sigmoid" and head.target == "inverse"
    model.train()
    outputs = model(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape[-2:]) for o in outputs] == [(64, 96), (32, 48), (16, 24), (8, 12)]


def test_wide_decoder_takes_densedepths_widths_rounded_to_even():
    model = T.densedepth_encoder_wide_packnet_decoder(WIDTH)
    # DenseNet-169 at width 1/16 ends in 104 features; DenseDepth's decoder: 104, 52, 26, 13, 6.
    assert [model.get_submodule(f"iconv{k}").conv_base.out_channels for k in range(1, 6)] == [6, 14, 26, 52, 104]


def test_decoder_widths_are_checked():
    with pytest.raises(ValueError, match="five even widths"):
        T.densedepth_encoder_packnet_decoder(WIDTH, stages=(4, 4, 8, 16))
    with pytest.raises(ValueError, match="five even widths"):
        T.densedepth_encoder_packnet_decoder(WIDTH, stages="4,4,8,16,33")
    assert T.densedepth_encoder_packnet_decoder(WIDTH, stages="4,4,8,16,32").iconv5.conv_base.out_channels == 32


@pytest.mark.parametrize("head", ["linear", "sigmoid"])
def test_swapped_heads_start_at_one_metre(head):
    if head == "linear":
        layer = T.LinearHead(4)
        torch.nn.init.zeros_(layer.conv1.weight)
    else:
        layer = T.SigmoidHead(torch.nn.Conv2d(4, 1, 3, padding=1))
        torch.nn.init.zeros_(layer.conv.weight)
    out = layer(torch.randn(2, 4, 8, 8))
    metres = to_depth(out, "depthnorm", T.MAX_DEPTH)
    assert torch.allclose(metres, torch.ones_like(metres))


def test_head_swaps_replace_every_head_and_declare_the_new_space():
    packnet = T.packnet_linear_heads(WIDTH)
    assert packnet.output_space == "depthnorm"
    assert all(isinstance(packnet.get_submodule(f"disp{k}_layer"), T.LinearHead) for k in range(1, 5))
    assert not any(isinstance(m, DepthHead) for m in packnet.modules())
    densedepth = T.densedepth_sigmoid_head(WIDTH)
    assert isinstance(densedepth.conv3, T.SigmoidHead)
    densedepth.eval()
    with torch.no_grad():
        out = densedepth(torch.rand(1, 3, 64, 96))
    assert float(out.min()) > 0 and float(out.max()) < T.MAX_DEPTH / T.MIN_DEPTH


@pytest.mark.parametrize("head, kind", [("sigmoid", DepthHead), ("linear", None)])
def test_transplanted_decoder_heads_start_at_one_metre(head, kind):
    model = T.densedepth_encoder_packnet_decoder(WIDTH, head=head)
    kind = kind or T.LinearHead
    for k in range(1, 5):
        layer = model.get_submodule(f"disp{k}_layer")
        assert isinstance(layer, kind)
        torch.nn.init.zeros_(layer.conv1.weight)
        with torch.no_grad():
            out = layer(torch.randn(1, layer.conv1.in_channels, 4, 4))
        space = "inverse" if head == "sigmoid" else "depthnorm"
        assert model.output_space == space
        metres = to_depth(out, space, T.MAX_DEPTH)
        assert torch.allclose(metres, torch.ones_like(metres), atol=1e-5)


def test_linear_heads_pass_other_options_to_packnet():
    from probe.models.packnet import UnpackLayerConv3d, UpsampleLayer

    model = T.packnet_linear_heads(WIDTH, upsample="nearest")
    assert any(isinstance(m, UpsampleLayer) for m in model.modules())
    assert not any(isinstance(m, UnpackLayerConv3d) for m in model.modules())
    assert isinstance(model.get_submodule("disp1_layer"), T.LinearHead)
