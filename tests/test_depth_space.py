"""Laws of the output spaces: each converter inverts its definition, and metres and DepthNorm agree."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from probe.depth_space import (MODEL_RANGE_SPACES, OUTPUT_SPACES, disparity_to_inverse, output_spaces, to_depth,
                               to_depthnorm)

CAP = 10.0

#: What a perfect model in each space emits for ``depth`` metres (the definitions, written independently).
DEFINITIONS = {
    "inverse": lambda d: 1.0 / d,
    "direct": lambda d: d / CAP,
    "depthnorm": lambda d: CAP / d,
    "metric": lambda d: d,
    "log_depth": lambda d: torch.log(d),
}

depths = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)


def test_every_converter_has_a_definition_and_every_space_is_declarable():
    assert set(OUTPUT_SPACES) == set(DEFINITIONS)
    assert output_spaces() == [*OUTPUT_SPACES, "disparity"]


@pytest.mark.parametrize("space", sorted(DEFINITIONS))
@given(depth=depths)
def test_to_depth_inverts_the_space_definition(space, depth):
    d = torch.tensor([depth], dtype=torch.float64)
    assert torch.allclose(to_depth(DEFINITIONS[space](d), space, CAP), d, rtol=1e-9)


@pytest.mark.parametrize("space", sorted(DEFINITIONS))
@given(depth=depths)
def test_to_depthnorm_is_cap_over_metres(space, depth):
    out = DEFINITIONS[space](torch.tensor([depth], dtype=torch.float64))
    assert torch.allclose(to_depthnorm(out, space, CAP), CAP / to_depth(out, space, CAP), rtol=1e-9)


def test_log_depth_is_natural_log_of_metres():
    assert to_depth(torch.tensor([0.0, 1.0]), "log_depth", CAP).tolist() == pytest.approx([1.0, math.e])


def test_log_depth_stays_finite_for_huge_outputs():
    depth = to_depth(torch.tensor([-1e4, 1e4]), "log_depth", CAP)
    assert torch.isfinite(depth).all() and depth[0] > 0


def test_disparity_endpoints_are_the_model_range():
    """Monodepth2's disp_to_depth: s = 0 is max_depth, s = 1 is min_depth (here 0.1..100 m)."""
    inverse = disparity_to_inverse(torch.tensor([0.0, 1.0], dtype=torch.float64), 0.1, 100.0)
    assert to_depth(inverse, "inverse", CAP).tolist() == pytest.approx([100.0, 0.1])


@given(s=st.floats(0.0, 1.0), low=st.floats(0.01, 1.0), span=st.floats(1.5, 1000.0))
def test_disparity_is_affine_in_inverse_depth_between_the_range_ends(s, low, span):
    high = low * span
    inverse = disparity_to_inverse(torch.tensor([s], dtype=torch.float64), low, high).item()
    assert inverse == pytest.approx((1 - s) / high + s / low, rel=1e-12)
    assert low * (1 - 1e-12) <= 1.0 / inverse <= high * (1 + 1e-12)


def test_disparity_maps_to_a_converter_space():
    assert MODEL_RANGE_SPACES["disparity"][0] in OUTPUT_SPACES
