"""probe's MATLAB v5 reader reads what SciPy writes, exactly, and refuses what it must not read."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from probe.data.images import read_mat
from probe.errors import DataError

DTYPES = [np.float64, np.float32, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@settings(max_examples=min(settings.default.max_examples, 100), deadline=None)
@given(array=st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(
           dtype, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))),
       compressed=st.booleans())
def test_the_reader_matches_scipy_on_every_numeric_class_shape_and_compression(tmp_path_factory, array, compressed):
    path = tmp_path_factory.mktemp("mat") / "x.mat"
    scipy.io.savemat(str(path), {"note": "text first", "x": array}, do_compression=compressed)
    expected = scipy.io.loadmat(str(path))["x"]
    got = read_mat(path, ["x"])["x"]
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("value, message", [
    ("abc", "MATLAB class 'char'"), (np.array([1 + 2j]), "complex values"), (np.zeros((0, 0)), "no empty axis"),
    (np.array([True, False]), "MATLAB class 'logical'"), ({"a": 1}, "MATLAB class 'struct'"),
])
def test_text_complex_empty_logical_and_struct_variables_are_refused_by_name(tmp_path, value, message):
    path = tmp_path / "v.mat"
    scipy.io.savemat(str(path), {"v": value})
    with pytest.raises(DataError, match=rf"v.mat: variable 'v' .*{message}"):
        read_mat(path, ["v"])


def test_a_truncated_file_is_a_named_error_where_scipy_would_crash_the_interpreter(tmp_path):
    path = tmp_path / "grid.mat"
    scipy.io.savemat(str(path), {"Position3DGrid": np.ones((5, 7, 4))})
    path.write_bytes(path.read_bytes()[:-239])  # scipy.io.loadmat: segmentation fault on this file
    with pytest.raises(DataError, match=r"grid.mat: cannot read MATLAB v5 file \(corrupt: element at byte 128 claims"):
        read_mat(path, ["Position3DGrid"])
