"""bench/gpu_check.sh: its CPU dry run, its budget, its verdicts; bench/train_step.py's side-by-side comparison."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402
import train_step  # noqa: E402

REQUIRED = ("environment", "physical_bound", "cuda_tests", "targets", "depth_conv")
OPTIONAL = ("sweep_480", "seed_study", "sweep_240", "compile")


def test_dry_run_checks_every_phase_on_the_cpu_and_writes_well_formed_results(tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run", "--out-dir", str(out),
                           "--work-dir", str(tmp_path / "work")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "gpu-cpu-dry-run.json").read_text())
    assert results["dry_run"] is True and results["benchmark"] == "gpu_check"

    phases, skipped = results["phases"], {s["what"] for s in results["skipped"]}
    assert all(phases[name]["status"] == "ok" for name in REQUIRED)
    for name in OPTIONAL:  # each optional phase either ran cleanly or is listed as skipped, with why
        assert (name in phases and phases[name]["status"] == "ok") != (name in skipped), name
    assert "compile" in skipped, "compiling PackNet on a CPU is estimated far over the dry run's budget"
    assert all(s["estimate_s"] >= s["remaining_s"] - gpu_check.MARGIN_S for s in results["skipped"]), results["skipped"]

    tests = phases["cuda_tests"]["result"]["tests"]
    assert tests and all(t["outcome"] == "skipped" for t in tests)
    assert any("needs a CUDA GPU" in t["message"] for t in tests)

    rows = results["rows"]
    targets = [r for r in rows if r["model"] == "packnet_a" and r["input_size"] == [64, 96] and r["batch_size"] == 4]
    assert {r["mode"] for r in targets} == {"default", "eager_fp32", "default_ac", "default_conv2d"}
    assert all(r["status"] == "ok" and r["step_ms"] > 0 and r["saved_activation_mib"] > 0 for r in rows)
    ac = next(r for r in targets if r["mode"] == "default_ac")
    plain = next(r for r in targets if r["mode"] == "default")
    assert ac["saved_activation_mib"] < 0.5 * plain["saved_activation_mib"]
    assert results["targets"]["speedup_over_eager_fp32"]["value"] > 0
    assert results["targets"]["mfu_default_step"]["met"] is None  # a CPU has no peak to measure against

    bound = phases["physical_bound"]["result"]
    assert abs(bound["relative_difference"]) < 0.01  # probe's count against the 513.6 GMAC
    summary = (out / "gpu-cpu-dry-run.md").read_text()
    assert summary.startswith("# GPU check: cpu") and "CPU dry run" in summary and "| packnet_a |" in summary


def _check(tmp_path: Path, total_s: float) -> gpu_check.GpuCheck:
    return gpu_check.GpuCheck(gpu_check.DRY_SCALE, gpu_check.Budget(total_s, margin_s=0.0, started=time.monotonic()),
                              tmp_path, tmp_path, dry_run=True)


def test_budget_skips_optional_phases_that_would_overrun_and_runs_required_ones(tmp_path):
    check = _check(tmp_path, total_s=30.0)
    ran = []
    phases = [gpu_check.Phase("needed", True, lambda: 1000.0, lambda: ran.append("needed")),
              gpu_check.Phase("too_long", False, lambda: 1000.0, lambda: ran.append("too_long")),
              gpu_check.Phase("short", False, lambda: 1.0, lambda: ran.append("short")),
              gpu_check.Phase("broken", False, lambda: 1.0, lambda: 1 / 0)]
    results = check.run(phases)
    assert ran == ["needed", "short"]
    assert [s["what"] for s in results["skipped"]] == ["too_long"]
    assert results["phases"]["broken"]["status"].startswith("error: ZeroDivisionError")
    written = json.loads(check.json_path.read_text())
    assert set(written["phases"]) == {"needed", "short", "broken"}


def _row(mode: str, step_ms: float, **extra) -> dict:
    return {"model": "packnet_a", "input_size": [480, 640], "batch_size": 16, "mode": mode, "status": "ok",
            "step_ms": step_ms, **extra}


@pytest.mark.parametrize("eager_ms, mfu, reserved, met", [
    (350.0, 0.35, 15_000.0, True),    # every target reached
    (250.0, 0.20, 17_000.0, False),   # every target missed
])
def test_targets_are_met_only_by_numbers_that_reach_them(eager_ms, mfu, reserved, met):
    rows = [_row("default", 100.0, mfu=mfu), _row("eager_fp32", eager_ms),
            _row("default_ac", 130.0, peak_reserved_mib=reserved)]
    targets = gpu_check.evaluate_targets(rows, (480, 640), 16)
    assert [t["met"] for t in targets.values()] == [met, met, met]
    assert targets["speedup_over_eager_fp32"]["value"] == pytest.approx(eager_ms / 100.0)


def test_targets_without_measurements_are_unknown_not_missed():
    rows = [_row("default", 100.0, mfu=None), {**_row("eager_fp32", 0.0), "status": "out of memory"}]
    assert all(t["met"] is None and t["value"] is None for t in gpu_check.evaluate_targets(rows, (480, 640), 16).values())


def test_train_step_compares_the_default_step_with_eager_fp32_side_by_side(tmp_path):
    out = tmp_path / "train_step.json"
    code = train_step.main(["--device", "cpu", "--models", "packnet_slim_b", "--width", "0.0625", "--input-size",
                            "32x64", "--batch-sizes", "2", "--steps", "1", "--warmup", "1", "--compare-eager-fp32",
                            "--activation-checkpointing", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    modes = {r["mode"]: r for r in report["rows"]}
    assert set(modes) == {"default", "eager_fp32"}
    assert modes["default"]["mode_activation_checkpointing"] and not modes["eager_fp32"]["mode_activation_checkpointing"]
    assert modes["eager_fp32"]["mode_depth_conv"] == "conv3d" and modes["eager_fp32"]["options"]["depth_conv"] == "conv3d"
    (comparison,) = report["comparisons"]
    assert comparison["speedup"] == pytest.approx(modes["eager_fp32"]["step_ms"] / modes["default"]["step_ms"])
    assert comparison["memory"] == "saved_activation_mib" and comparison["memory_ratio"] < 0.5
    assert report["clock"] == "process CPU time" and modes["default"]["mfu"] is None


def test_the_real_check_without_a_gpu_says_so_in_one_line(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--out-dir", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and not list(tmp_path.iterdir())
    assert done.stderr.strip().splitlines() == [
        "gpu_check: no CUDA device visible; use --dry-run to check everything but CUDA on this machine"]
