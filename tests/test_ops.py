"""Properties of pack/unpack: each test is named after the law it checks.

The laws themselves live in ``probe.laws`` (so ``probe properties`` checks the same
ones); the Hypothesis profile from ``tests/conftest.py`` sets the number of examples
(``ci``: 200 per property, ``HYPOTHESIS_PROFILE=thorough``: 5000).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given

from probe.errors import ShapeError
from probe.laws import (
    adjoint_pairs,
    any_shapes,
    law_non_divisible_shapes_raise,
    law_pack_adjoint_is_unpack,
    law_pack_inverts_unpack,
    law_pack_is_a_permutation,
    law_pack_layers_return_documented_shapes,
    law_pack_matches_pixel_unshuffle,
    law_unpack_inverts_pack,
    layer_cases,
    packable,
    single_thread,
    unpackable,
)
from probe.ops import pack, unpack


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


@given(packable())
def test_unpack_inverts_pack(case):
    assert law_unpack_inverts_pack(*case)


@given(unpackable())
def test_pack_inverts_unpack(case):
    assert law_pack_inverts_unpack(*case)


@given(packable())
def test_pack_is_a_permutation(case):
    assert law_pack_is_a_permutation(*case)


@given(adjoint_pairs())
def test_pack_adjoint_is_unpack(case):
    assert law_pack_adjoint_is_unpack(*case)


@given(packable())
def test_pack_matches_pixel_unshuffle(case):
    assert law_pack_matches_pixel_unshuffle(*case)


@given(any_shapes())
def test_non_divisible_shapes_raise(case):
    assert law_non_divisible_shapes_raise(*case)


@given(layer_cases())
def test_pack_layers_return_documented_shapes(case):
    assert law_pack_layers_return_documented_shapes(*case)


# -- worked examples: the documented channel order and error messages ----------------------


def test_pack_channel_order_is_block_row_major():
    x = torch.arange(2 * 4 * 6).reshape(1, 2, 4, 6)
    packed = pack(x, 2)
    assert packed.shape == (1, 8, 2, 3)
    # channel c*r*r + i*r + j holds pixel (h*r + i, w*r + j) of input channel c
    for c in range(2):
        for i in range(2):
            for j in range(2):
                assert torch.equal(packed[0, c * 4 + i * 2 + j], x[0, c, i::2, j::2])


def test_pack_with_ratio_one_is_identity():
    x = torch.randn(2, 3, 5, 7)
    assert torch.equal(pack(x, 1), x) and torch.equal(unpack(x, 1), x)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: pack(torch.zeros(1, 1, 5, 4), 2), "H and W divisible by r=2"),
        (lambda: pack(torch.zeros(1, 1, 4, 6), 4), "H and W divisible by r=4"),
        (lambda: unpack(torch.zeros(1, 6, 2, 2), 2), "channels divisible by r*r=4"),
        (lambda: pack(torch.zeros(4, 4), 2), "expected a 4-D tensor"),
        (lambda: unpack(torch.zeros(1, 4, 2, 2, 1), 2), "expected a 4-D tensor"),
        (lambda: pack(torch.zeros(1, 1, 4, 4), 0), "integer >= 1"),
        (lambda: pack(torch.zeros(1, 1, 4, 4), 2.0), "integer >= 1"),
        (lambda: unpack(torch.zeros(1, 4, 4, 4), -2), "integer >= 1"),
    ],
)
def test_shape_errors_state_the_contract_on_one_line(call, fragment):
    with pytest.raises(ShapeError) as info:
        call()
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_gradient_of_pack_is_unpack_of_the_upstream_gradient():
    x = torch.randn(2, 3, 4, 6, requires_grad=True)
    y = pack(x, 2)
    (y * torch.arange(y.numel()).reshape(y.shape)).sum().backward()
    assert torch.equal(x.grad, unpack(torch.arange(y.numel(), dtype=x.dtype).reshape(y.shape), 2))
