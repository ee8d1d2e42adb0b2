"""check_model: every clause passes on conforming models and fails, with its fix, on the one it is about."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from analyses.model_check import run
from probe.errors import ProbeError
from probe.models import build_model
from probe.models.check import CheckConfig, ContractReport, check_model

ROOT = Path(__file__).resolve().parents[2]
USER = Path(__file__).resolve().parent / "user_models.py"
UNET = f"{ROOT}/examples/unet.py:build"
DICT = f"{ROOT}/examples/dict_model.py:build"
CLAUSES = ["build", "declaration", "eval output", "odd input size", "output range", "eval determinism",
           "train output", "gradients", "parameters"]


def check(spec: str, **overrides) -> ContractReport:
    return check_model(CheckConfig(spec, **{"width": 0.0625, "device": "cpu", **overrides}))


def statuses(report: ContractReport) -> dict[str, str]:
    return {c.name: c.status for c in report.clauses}


@pytest.mark.parametrize("spec, options", [(UNET, {}), (DICT, {"output_key": "disp,*"}), ("packnet_slim_b", {})],
                         ids=["unet", "dict_model", "packnet_slim_b"])
def test_conforming_models_pass_every_clause(spec, options):
    report = run(CheckConfig(spec, options=options, width=0.0625, device="cpu"))
    assert report.passed, report.lines()
    assert [c.name for c in report.clauses] == [*CLAUSES, "MACs"]
    assert "GMACs" in report.clause("MACs").detail


def test_the_broken_model_fails_exactly_its_four_broken_clauses():
    report = check(f"{USER}:broken")
    assert {c.name for c in report.failed} == {"odd input size", "output range", "eval determinism", "gradients"}
    assert statuses(report)["eval output"] == statuses(report)["train output"] == "passed"
    assert "--model-option input_multiple=2" in report.clause("odd input size").fix
    assert "unused.weight" in report.clause("gradients").detail
    assert "outputs are <= 0" in report.clause("output range").detail
    assert "dropout or sampling" in report.clause("eval determinism").detail
    for line in (c.line(report.spec) for c in report.failed):
        assert line.startswith(f"FAILED {USER}:broken: ") and "; fix: " in line and "\n" not in line


def test_an_unused_scale_head_is_caught_by_the_gradient_clause():
    """Monodepth2-style dict with only ('disp', 0) trained: the other heads get no gradient (DDP would fail)."""
    report = check(DICT, options={"output_key": "disp,0"})
    assert [c.name for c in report.failed] == ["gradients"]
    assert "net.heads.1.weight" in report.clause("gradients").detail and "output_key=PART,*" in report.clause("gradients").fix


def test_a_wrong_output_shape_fails_both_shape_clauses_and_skips_what_depends_on_them():
    report = check(f"{USER}:plain", options={"shape": "two_channels"})
    assert [c.name for c in report.failed] == ["eval output", "train output"]
    assert {n for n, s in statuses(report).items() if s == "skipped"} == {"odd input size", "output range",
                                                                         "eval determinism", "gradients"}


def test_an_undeclared_space_fails_the_declaration_and_skips_the_range():
    report = check(f"{USER}:plain", options={"output_space": None})
    assert [c.name for c in report.failed] == ["declaration"]
    assert "--model-option output_space=NAME" in report.clause("declaration").detail
    assert statuses(report)["output range"] == "skipped" and statuses(report)["gradients"] == "passed"


def test_depths_outside_the_declared_range_fail_the_range_clause():
    """The plain net emits metric depths 1..2.1 m: inside 0.1..10 m, outside 3..10 m."""
    assert statuses(check(f"{USER}:plain"))["output range"] == "passed"
    report = check(f"{USER}:plain", options={"min_depth": 3.0})
    assert [c.name for c in report.failed] == ["output range"]
    assert "outside the declared range 3..10 m" in report.clause("output range").detail


def test_the_zoo_densedepth_head_emits_non_positive_depthnorm_at_random_init():
    """A plain conv head: a real finding, not a false alarm (metres clamp those pixels)."""
    report = check("densedepth")
    assert [c.name for c in report.failed] == ["output range"]


def test_a_spec_that_does_not_build_is_one_failed_clause():
    report = check(f"{USER}:not_a_module", width=1.0)
    assert [(c.name, c.status) for c in report.clauses] == [("build", "failed")]
    assert "returned a str, not an nn.Module" in report.clauses[0].line(report.spec)


def test_weights_are_checked_as_a_clause(tmp_path):
    good, bad = tmp_path / "good.safetensors", tmp_path / "bad.safetensors"
    save_file(build_model(f"{USER}:plain").net.state_dict(), str(good))
    save_file({"nope": torch.zeros(1)}, str(bad))
    assert statuses(check(f"{USER}:plain", options={"weights": str(good)}))["weights"] == "passed"
    report = check(f"{USER}:plain", options={"weights": str(bad)})
    assert [c.name for c in report.failed] == ["weights"] and "missing keys [body.weight" in report.clause("weights").detail


def test_the_report_round_trips_through_json():
    report = check(f"{USER}:broken")
    assert ContractReport.from_json(report.to_json()) == report


@pytest.mark.parametrize("overrides, flag", [({"input_size": (8, 64)}, "--input-size"), ({"batch_size": 1}, "--batch-size"),
                                             ({"width": 0}, "--width"), ({"options": {"width": 2}}, "--model-option width"),
                                             ({"max_depth": -1.0}, "--max-depth"), ({"seed": -1}, "--seed")])
def test_bad_check_configs_are_one_line_naming_the_flag(overrides, flag):
    with pytest.raises(ProbeError, match=flag):
        check(f"{USER}:plain", **overrides)
