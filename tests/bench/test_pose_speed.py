"""bench/pose_speed.py: one scored row per (translation scale, seed, scoring step), PoseNet built at each scale,
and bad lists refused in one line."""

from __future__ import annotations

import json

import pytest

from bench.pose_speed import main


def test_a_tiny_run_scores_each_scale_and_seed_every_few_steps(tmp_path):
    out = tmp_path / "speed.json"
    assert main(["--size", "32x48", "--train-windows", "4", "--test-windows", "4", "--score-train", "2",
                 "--translation-scales", "0.01,1", "--seeds", "0,1", "--steps", "2", "--every", "1",
                 "--pose-width", "0.25", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["translation_scale"], r["seed"], r["step"]) for r in rows] == [
        (s, seed, step) for s in (0.01, 1.0) for seed in (0, 1) for step in (1, 2)]
    assert all(r["translation_explained"] <= 1 and r["translation_explained_train"] <= 1 for r in rows)
    # the same seed draws the same initial network and batches at either scale, whose initial motion is the same
    first = {(r["translation_scale"], r["seed"]): r["loss"] for r in rows if r["step"] == 1}
    assert first[(0.01, 0)] == pytest.approx(first[(1.0, 0)], rel=1e-5)


@pytest.mark.parametrize("flag,value,match", [
    ("--translation-scales", "0,1", "--translation-scales: expected positive numbers"),
    ("--translation-scales", "a", "--translation-scales: expected comma-separated numbers"),
    ("--seeds", "x", "--seeds: expected comma-separated integers"),
])
def test_bad_lists_are_refused_in_one_line(flag, value, match):
    with pytest.raises(SystemExit, match=match):
        main([flag, value])
