"""``probe properties`` and the law runner: passing laws are reported as such, broken ones are caught."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch.nn.functional as F

import probe.laws as laws
from probe.errors import ProbeError
from probe.laws import (
    LAWS,
    check_law,
    law_pack_adjoint_is_unpack,
    law_unpack_inverts_pack,
    packable,
    run_laws,
)
from probe.ops import unpack
from probe.registry import Registry


def _wrong_unpack(y, r):
    """A plausible-looking inverse with the channel blocks in reverse order."""
    return unpack(y.flip(1), r)


def _transposed_pack(x, r):
    """Space-to-depth with the block offsets in column-major order: a different permutation."""
    return F.pixel_unshuffle(x.transpose(2, 3), r).transpose(2, 3)


def test_properties_command_writes_passing_results(run_cli, tmp_path):
    res = run_cli("properties", "--examples", "20", "--seed", "3", "--out", tmp_path)
    assert res.code == 0, res
    doc = json.loads((tmp_path / "properties.json").read_text())
    assert doc["analysis"] == "properties" and doc["passed"] is True
    assert doc["max_examples"] == 20 and doc["seed"] == 3
    assert [law["name"] for law in doc["laws"]] == LAWS.names()
    for law in doc["laws"]:
        assert law["passed"] is True and law["counterexample"] is None
        assert law["examples"] >= 1 and law["statement"]
    assert "unpack_inverts_pack" in res.out
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["properties"]["config"] == {"examples": 20, "seed": 3}


def test_properties_command_exits_1_and_records_a_broken_law(run_cli, tmp_path, monkeypatch):
    broken: Registry = Registry("law")
    broken.register("unpack_inverts_pack", "unpack(pack(x)) == x", cases=packable)(law_unpack_inverts_pack)
    broken.register("wrong_inverse", "a reversed unpack inverts pack",
                    cases=packable)(partial(law_unpack_inverts_pack, unpack_fn=_wrong_unpack))
    monkeypatch.setattr(laws, "LAWS", broken)
    res = run_cli("properties", "--examples", "50", "--out", tmp_path)
    assert res.code == 1, res
    doc = json.loads((tmp_path / "properties.json").read_text())
    by_name = {law["name"]: law for law in doc["laws"]}
    assert doc["passed"] is False
    assert by_name["unpack_inverts_pack"]["passed"] is True
    assert by_name["wrong_inverse"]["passed"] is False
    assert "tensor(shape=" in by_name["wrong_inverse"]["counterexample"]


@pytest.mark.parametrize(
    ("law", "cases"),
    [
        (partial(law_unpack_inverts_pack, unpack_fn=_wrong_unpack), packable()),
        (partial(law_unpack_inverts_pack, pack_fn=_transposed_pack), packable()),
        (partial(law_pack_adjoint_is_unpack, unpack_fn=_wrong_unpack), laws.adjoint_pairs()),
    ],
    ids=["reversed-unpack", "transposed-pack", "reversed-adjoint"],
)
def test_check_law_reports_a_wrong_inverse_with_a_shrunk_counterexample(law, cases):
    result = check_law("broken", law, cases, "deliberately wrong", max_examples=100, seed=0)
    assert result.passed is False
    assert result.counterexample and "tensor(shape=(1, 1," in result.counterexample
    assert result.examples >= 1


def test_check_law_reports_an_exception_as_a_failure():
    def crashes(x, r):
        raise RuntimeError("boom")

    result = check_law("crash", crashes, packable(), max_examples=5, seed=0)
    assert not result.passed and "RuntimeError: boom" in result.counterexample


def test_run_laws_passes_every_registered_law_and_is_seeded():
    first = run_laws(max_examples=10, seed=1)
    assert [r.name for r in first] == LAWS.names() and all(r.passed for r in first)
    assert [r.examples for r in first] == [r.examples for r in run_laws(max_examples=10, seed=1)]


def test_run_laws_rejects_a_non_positive_example_count():
    with pytest.raises(ProbeError, match="--examples"):
        run_laws(max_examples=0, seed=0)
