"""The generator reads run folders and writes a self-contained report."""

from __future__ import annotations

import base64
import json
import re

import pytest

from probe.errors import ProbeError
from probe.report.build import build_report
from tests import result_examples as ex
from tests.report import fixtures as fx

QUESTION_TITLES = ("Do PackNet&#x27;s gradients vanish?", "Does the prediction collapse to the mean?",
                   "Does packing preserve information?", "How noisy are the batches?",
                   "What does the extra capacity cost?", "Does the velocity loss recover metric scale?",
                   "Does PackNet beat DenseDepth in its own regime?")


def test_full_run_fills_every_question_section(tmp_path):
    run = fx.full_run(tmp_path / "run")
    html = build_report([run], tmp_path / "report.html").read_text()
    for question in QUESTION_TITLES:
        assert f"<h2>{question}</h2>" in html
    for title in ("The experiment matrix", "pack/unpack properties", "The models", "Attribution and receptive fields",
                  "Training runs and evaluation", "Run provenance"):
        assert f"<h2>{title}</h2>" in html
    assert 'id="not-run"' not in html


def test_report_is_self_contained(tmp_path):
    run = fx.full_run(tmp_path / "run")
    html = build_report([run], tmp_path / "report.html").read_text()
    srcs = re.findall(r'src="([^"]+)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_missing_analyses_are_listed_as_not_run(tmp_path):
    ex.write(ex.complexity(), tmp_path / "run")
    html = build_report([tmp_path / "run"], tmp_path / "r.html").read_text()
    not_run = html.split('id="not-run"')[1]
    assert "Do PackNet&#x27;s gradients vanish? (needs gradients.json)" in not_run
    assert "Does packing preserve information? (needs autoencoder.json)" in not_run
    assert "<h2>The models</h2>" in html


def test_answers_change_with_the_numbers(tmp_path):
    run = fx.full_run(tmp_path / "run")
    first = build_report([run], tmp_path / "a.html").read_text()
    ex.write(ex.collapse({"packnet_b": [1.0] * 8, "densedepth": [1.0] * 8}), run)
    second = build_report([run], tmp_path / "b.html").read_text()
    assert "Yes: packnet_b collapsed (share of collapsed images 1" in first
    assert "No: packnet_b not collapsed (share of collapsed images 0" in second


def test_markdown_writes_figures_beside_it(tmp_path):
    run = fx.full_run(tmp_path / "run")
    md = build_report([run], tmp_path / "report.md", fmt="md").read_text()
    links = re.findall(r"\]\((report_figures/[^)]+\.png)\)", md)
    assert links and all((tmp_path / link).is_file() for link in links)


def test_bad_inputs_raise_one_line_errors(tmp_path):
    with pytest.raises(ProbeError, match="not a directory"):
        build_report([tmp_path / "nope"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProbeError, match="no result files found"):
        build_report([tmp_path / "empty"], tmp_path / "r.html")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "gradients.json").write_text("{not json")
    with pytest.raises(ProbeError, match="gradients.json: not valid JSON"):  # nothing readable: nothing to report
        build_report([tmp_path / "bad"], tmp_path / "r.html")


def test_a_malformed_file_is_one_line_naming_file_and_key_and_the_rest_renders(tmp_path):
    run = fx.full_run(tmp_path / "run")
    doc = json.loads((run / "gradients.json").read_text())
    doc["models"][1]["layers"][3]["grad_norm"]["per_step"] = "big"
    (run / "gradients.json").write_text(json.dumps(doc))
    html = build_report([run], tmp_path / "r.html").read_text()
    not_run = html.split('id="not-run"')[1]
    assert f"{run / 'gradients.json'}: models[1].layers[3].grad_norm.per_step: expected a list of numbers" in not_run
    assert "<h2>Do PackNet&#x27;s gradients vanish?</h2>" not in html
    for question in QUESTION_TITLES[1:]:
        assert f"<h2>{question}</h2>" in html


def test_cli_report_exits_2_on_bad_format(run_cli, tmp_path):
    run = fx.full_run(tmp_path / "run")
    res = run_cli("report", run, "-o", tmp_path / "r.html", "--format", "pdf")
    assert res.code == 2 and res.err.count("\n") == 1 and "--format" in res.err
    ok = run_cli("report", run, "-o", tmp_path / "r.html")
    assert ok.code == 0 and (tmp_path / "r.html").is_file()
