"""The packing layers' 3-D convolution: the conv2d form computes exactly what conv3d computes.

Bitwise equality is tested on integer-valued data, where every product and partial sum is
an exactly representable integer, so any summation order gives the same bits: this checks
that each product lands in the right output element (the whole claim of equivalence).
On real-valued data the two forms sum in different orders (the backend's blocking), so
there the test is a tolerance of a few units in the last place of the result's magnitude.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from probe.errors import ProbeError
from probe.models import build_model
from probe.models import depth_conv
from probe.models.depth_conv import DEPTH_CONVS, DepthConv3d, depth_conv_2d, depth_conv_3d


def _integer_case(b: int, depth: int, h: int, w: int, d: int, k: int, dtype: torch.dtype, seed: int):
    generator = torch.Generator().manual_seed(seed)
    ints = lambda *shape: torch.randint(-3, 4, shape, generator=generator).to(dtype)  # noqa: E731
    return ints(b, depth, h, w), ints(d, 1, k, k, k), ints(d)


@given(b=st.integers(1, 2), depth=st.integers(1, 9), h=st.integers(1, 7), w=st.integers(1, 7),
       d=st.integers(1, 8), k=st.sampled_from([1, 3, 5]), dtype=st.sampled_from([torch.float32, torch.float64]),
       seed=st.integers(0, 2**16))
def test_conv2d_form_equals_conv3d_bitwise_on_integer_data(b, depth, h, w, d, k, dtype, seed):
    x, weight, bias = _integer_case(b, depth, h, w, d, k, dtype, seed)
    expected = depth_conv_3d(x, weight, bias)
    assert expected.shape == (b, d * depth, h, w)
    assert torch.equal(depth_conv_2d(x, weight, bias), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv2d_form_gradients_equal_conv3d_bitwise_on_integer_data(dtype):
    x, weight, bias = _integer_case(2, 12, 6, 5, 8, 3, dtype, seed=1)
    upstream = torch.randint(-2, 3, (2, 96, 6, 5), generator=torch.Generator().manual_seed(2)).to(dtype)
    grads = {}
    for name, fn in DEPTH_CONVS.items():
        inputs = [t.clone().requires_grad_() for t in (x, weight, bias)]
        fn(*inputs).backward(upstream)
        grads[name] = [t.grad for t in inputs]
    assert all(torch.equal(a, b) for a, b in zip(grads["conv2d"], grads["conv3d"]))


@pytest.mark.parametrize("dtype, ulps", [(torch.float64, 64), (torch.float32, 64)])
def test_conv2d_form_matches_conv3d_on_real_data_to_rounding(dtype, ulps):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 9, 11, generator=generator, dtype=dtype)
    weight = torch.randn(8, 1, 3, 3, 3, generator=generator, dtype=dtype)
    bias = torch.randn(8, generator=generator, dtype=dtype)
    expected, got = depth_conv_3d(x, weight, bias), depth_conv_2d(x, weight, bias)
    # 27 products summed in another order: the error is a few ulps of the sum of |products|
    magnitude = depth_conv_3d(x.abs(), weight.abs(), bias.abs())
    assert torch.all((got - expected).abs() <= ulps * torch.finfo(dtype).eps * magnitude)
    assert not torch.equal(x, torch.zeros_like(x))


def test_depth_conv_keeps_the_published_conv3d_parameters():
    published = nn.Conv3d(1, 8, kernel_size=3, stride=1, padding=1)
    layer = DepthConv3d(8, kernel_size=3, impl="conv2d")
    assert {k: v.shape for k, v in layer.state_dict().items()} == {k: v.shape for k, v in published.state_dict().items()}
    layer.load_state_dict(published.state_dict())  # the reference code's 5-D weight loads as it is
    x = torch.randint(-3, 4, (2, 6, 5, 7)).float()
    with torch.no_grad():
        published.weight.copy_(torch.randint(-3, 4, published.weight.shape).float())
        published.bias.copy_(torch.randint(-3, 4, published.bias.shape).float())
        layer.load_state_dict(published.state_dict())
        expected = published(x.unsqueeze(1)).flatten(1, 2)
        assert torch.equal(layer(x), expected)


def test_packnet_state_dict_is_the_same_for_every_depth_conv_form():
    layouts = {}
    for impl in ("conv3d", "conv2d"):
        torch.manual_seed(0)
        model = build_model("packnet_slim_b", width=0.0625, depth_conv=impl)
        layouts[impl] = model.state_dict()
        assert model.pack1.conv3d.weight.dim() == 5
    assert list(layouts["conv3d"]) == list(layouts["conv2d"])
    assert all(torch.equal(layouts["conv3d"][k], layouts["conv2d"][k]) for k in layouts["conv3d"])


def test_packnet_forward_and_gradients_agree_across_depth_conv_forms():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    results = {}
    for impl in ("conv3d", "conv2d"):
        torch.manual_seed(0)
        model = build_model("packnet_b", width=0.0625, depth_conv=impl).double()
        outputs = model(x)
        sum(o.square().mean() for o in outputs).backward()
        results[impl] = (outputs, {n: p.grad for n, p in model.named_parameters()})
    (out3, grad3), (out2, grad2) = results["conv3d"], results["conv2d"]
    assert all(torch.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(out3, out2))
    assert all(torch.allclose(grad3[n], grad2[n], rtol=1e-7, atol=1e-10) for n in grad3)


@pytest.mark.parametrize("impl", ["conv3d", "conv2d"])
def test_auto_runs_the_default_form_of_the_device_type(monkeypatch, impl):
    called = []
    for name, fn in DEPTH_CONVS.items():
        monkeypatch.setitem(DEPTH_CONVS, name, lambda *a, _n=name, _f=fn: called.append(_n) or _f(*a))
    monkeypatch.setitem(depth_conv.DEFAULT_IMPL, "cpu", impl)
    DepthConv3d(4)(torch.rand(1, 3, 4, 4))
    assert called == [impl]


def test_an_explicit_form_overrides_the_device_default(monkeypatch):
    monkeypatch.setitem(depth_conv.DEFAULT_IMPL, "cpu", "conv2d")
    assert depth_conv.resolve_impl("conv3d", torch.device("cpu")) == "conv3d"
    assert depth_conv.resolve_impl("auto", torch.device("meta")) == "conv3d"  # unlisted: the published form


def test_unknown_depth_conv_form_is_a_one_line_error():
    with pytest.raises(ProbeError, match="depth_conv: expected one of auto, conv3d, conv2d, got 'fft'"):
        build_model("packnet_b", width=0.0625, depth_conv="fft")
