"""The GPU check: one run, within a time budget (8 minutes), of everything that needs a GPU to be known.

Run it through ``bench/gpu_check.sh``.  Phases, in priority order (``REQUIRED`` ones always
run; the others run while the budget, after each one's estimate, allows; what is skipped
is recorded with its estimate and the time that was left):

1. ``environment``: GPU, driver, torch, cuDNN, the peak FLOP/s MFU is measured against;
2. ``physical_bound``: PackNet01-A's MACs per 480x640 image by probe's counter, against the
   issue's 3 x 513.6 GMAC per training image, and what one NYU epoch costs at peak;
3. ``targets``: PackNet01-A at 480x640, batch 16: probe's default GPU step against the
   eager fp32 step (target >= 3x), its MFU (target >= 30%), the default step with activation
   checkpointing within a 16 GB GPU (target: peak reserved <= 15,500 MiB, leaving the CUDA
   context room on a 16,160 MiB V100), and the default step with the conv2d packing conv;
4. ``depth_conv``: ``bench/depth_conv.py`` on this GPU, which decides ``DEFAULT_IMPL["cuda"]``;
5. ``cuda_tests``: ``pytest -m cuda tests/cuda`` (outcome of every test; at most 4 minutes);
6. ``sweep_480``, then ``seed_study`` (``probe experiment seed-study --full`` at a reduced step
   count), then ``sweep_240``: ``bench/train_step.py`` rows for packnet_a, packnet_slim_b and
   densedepth at batches 4, 8, 16, default (bf16) and eager fp32, plus activation
   checkpointing at 480x640 where the 16 GB target is concerned; each row is its own item;
7. ``compile``: the target configuration with ``torch.compile``.

Writes ``<out-dir>/gpu-<device>.json`` after every phase (a killed run keeps what it had) and
``<out-dir>/gpu-<device>.md``, the summary the README's performance section is filled from
(``--out-dir`` defaults to ``bench/results``; for a dry run, to its scratch folder).

``--dry-run`` runs the same phases on the CPU at tiny sizes (width 1/16, 32x64 and 64x96
images, batches 1/2/4, one timed step; the quick seed study with 2 steps), to check
everything but CUDA; the CUDA tests are collected and reported skipped.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the budget counts the interpreter's imports too

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import xml.etree.ElementTree as ElementTree  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import depth_conv as depth_conv_bench  # noqa: E402
import torch  # noqa: E402
import train_step as step_bench  # noqa: E402

from probe.device import device_description  # noqa: E402
from probe.io import atomic_write, write_json  # noqa: E402
from probe.runs import provenance  # noqa: E402

BUDGET_S = 480.0
DRY_RUN_BUDGET_S = 60.0
MARGIN_S = 15.0
NYU_TRAIN_IMAGES = 50_688
ISSUE_GMAC_PER_IMAGE = 513.6
TARGET_SPEEDUP = 3.0
TARGET_MFU = 0.30
TARGET_RESERVED_MIB = 15_500.0
MODELS = ("packnet_a", "packnet_slim_b", "densedepth")
SIZES = ((480, 640), (240, 320))
BATCHES = (4, 8, 16)


@dataclass(frozen=True)
class Scale:
    """Sizes and step counts: the real GPU check, or the CPU dry run's tiny stand-ins."""

    device: str
    width: float
    sizes: dict[tuple[int, int], tuple[int, int]]
    batches: dict[int, int]
    warmup: int
    steps: int
    sweep_warmup: int
    sweep_steps: int
    seed_study_flags: tuple[str, ...]
    step_rate: dict[str, float]  # assumed training FLOP/s per precision before any measurement
    row_overhead_s: float  # model build, first-step autotuning, flop count
    phase_estimates_s: dict[str, float]


GPU_SCALE = Scale(
    device="cuda",
    width=1.0,
    sizes={s: s for s in SIZES},
    batches={b: b for b in BATCHES},
    warmup=3,
    steps=5,
    sweep_warmup=2,
    sweep_steps=3,
    seed_study_flags=(
        "--full",
        "--max-steps",
        "20",
        "--input-size",
        "240x320",
        "--batch-size",
        "8",
        "--workers",
        "4",
        "--device",
        "cuda",
    ),
    step_rate={"bf16": 150e12, "fp16": 150e12, "fp32": 50e12},
    row_overhead_s=8.0,
    phase_estimates_s={
        "environment": 5,
        "physical_bound": 15,
        "cuda_tests": 180,
        "depth_conv": 30,
        "seed_study": 150,
        "compile": 180,
    },
)
DRY_SCALE = Scale(
    device="cpu",
    width=0.0625,
    sizes={(480, 640): (64, 96), (240, 320): (32, 64)},
    batches={4: 1, 8: 2, 16: 4},
    warmup=1,
    steps=1,
    sweep_warmup=1,
    sweep_steps=1,
    seed_study_flags=("--quick", "--max-steps", "2", "--workers", "0", "--device", "cpu"),
    step_rate={"bf16": 2e9, "fp16": 2e9, "fp32": 2e9},
    row_overhead_s=0.3,
    # compiling PackNet with inductor on a CPU takes many minutes: the dry run always skips it
    phase_estimates_s={
        "environment": 1,
        "physical_bound": 3,
        "cuda_tests": 10,
        "depth_conv": 3,
        "seed_study": 20,
        "compile": 900,
    },
)


@dataclass(frozen=True)
class Phase:
    name: str
    required: bool
    estimate_s: Callable[[], float]
    run: Callable[[], Any]


@dataclass
class Budget:
    """Wall-clock budget of the whole check: ``fits(estimate)`` says whether an optional item may start."""

    total_s: float
    margin_s: float = MARGIN_S
    started: float = STARTED

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return self.total_s - self.elapsed()

    def fits(self, estimate_s: float) -> bool:
        return estimate_s <= self.remaining() - self.margin_s


class GpuCheck:
    """Runs the phases in order, keeping to the budget, and writes the results after each one."""

    def __init__(self, scale: Scale, budget: Budget, out_dir: Path, work_dir: Path, dry_run: bool) -> None:
        self.scale, self.budget, self.out_dir, self.work_dir, self.dry_run = scale, budget, out_dir, work_dir, dry_run
        self.device = torch.device(scale.device)
        self.rate = dict(scale.step_rate)
        self.row_overhead_s = scale.row_overhead_s
        self.rows: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {
            "benchmark": "gpu_check",
            "dry_run": dry_run,
            "device": device_description(self.device),
            "budget_s": budget.total_s,
            "scale": describe(scale),
            "phases": {},
            "skipped": [],
            "rows": self.rows,
        }
        self.name = "cpu-dry-run" if dry_run else _slug(torch.cuda.get_device_name(self.device))
        self.json_path = out_dir / f"gpu-{self.name}.json"
        self.md_path = out_dir / f"gpu-{self.name}.md"

    # -- running ------------------------------------------------------------------------------------
    def run(self, phases: list[Phase]) -> dict[str, Any]:
        for phase in phases:
            self.run_phase(phase)
        self.results["elapsed_s"] = self.budget.elapsed()
        self.results["targets"] = self.targets()
        self.results["comparisons"] = step_bench.compare(self.rows)
        self.write()
        return self.results

    def run_phase(self, phase: Phase) -> None:
        estimate = phase.estimate_s()
        if not phase.required and not self.budget.fits(estimate):
            self.skip(phase.name, estimate)
            return
        start = time.monotonic()
        record: dict[str, Any] = {"required": phase.required, "estimate_s": estimate}
        try:
            record.update(status="ok", result=phase.run())
        except Exception as exc:  # a failing phase is recorded; the others still run
            record.update(status=f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        record["seconds"] = time.monotonic() - start
        self.results["phases"][phase.name] = record
        self.results["elapsed_s"] = self.budget.elapsed()
        self.write()

    def skip(self, what: str, estimate_s: float) -> None:
        self.results["skipped"].append({"what": what, "estimate_s": estimate_s, "remaining_s": self.budget.remaining()})

    def write(self) -> None:
        self.results["provenance"] = provenance(self.device)
        write_json(self.json_path, self.results)
        atomic_write(self.md_path, summary_markdown(json.loads(self.json_path.read_text())))

    # -- train_step rows ----------------------------------------------------------------------------
    def row_estimate_s(
        self, model: str, size: tuple[int, int], batch: int, mode: step_bench.StepMode, warmup: int, steps: int
    ) -> float:
        options = step_bench.step_options(model, step_bench.model_options(model), mode)
        flops = step_bench.forward_flops_per_image(model, tuple(sorted(options.items())), self.scale.width, size)
        step_s = 3.0 * flops * batch / self.rate[mode.precision] * (4 / 3 if mode.activation_checkpointing else 1)
        return self.row_overhead_s + (warmup + steps) * step_s

    def measure(
        self,
        model: str,
        size: tuple[int, int],
        batch: int,
        mode: step_bench.StepMode,
        warmup: int,
        steps: int,
        optional: bool,
    ) -> dict[str, Any] | None:
        """One train_step row (skipped, and recorded so, when optional and over budget); calibrates the estimates."""
        label = f"train_step {model} {size[0]}x{size[1]} b{batch} {mode.name}"
        estimate = self.row_estimate_s(model, size, batch, mode, warmup, steps)
        if optional and not self.budget.fits(estimate):
            self.skip(label, estimate)
            return None
        start = time.monotonic()
        row = step_bench.measure(
            model, step_bench.model_options(model), self.scale.width, size, batch, mode, self.device, steps, warmup
        )
        row.update(wall_s=time.monotonic() - start, estimate_s=estimate)
        self.rows.append(row)
        if row["status"] == "ok":
            step_s = row["step_ms"] / 1e3
            work = 3.0 * row["forward_flops_per_image"] * batch * (4 / 3 if mode.activation_checkpointing else 1)
            self.rate[mode.precision] = work / step_s
            self.row_overhead_s = max(0.0, row["wall_s"] - (warmup + steps) * step_s)
        self.write()
        return row

    def mode(self, name: str, **overrides: Any) -> step_bench.StepMode:
        if name == "eager_fp32":
            return step_bench.EAGER_FP32
        return replace(step_bench.default_mode(self.device, **overrides), name=name)

    # -- phases -------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        s = self.scale
        target_size, target_batch = s.sizes[(480, 640)], s.batches[16]
        target_modes = [
            self.mode("default"),
            self.mode("eager_fp32"),
            self.mode("default_ac", activation_checkpointing=True),
            self.mode("default_conv2d", depth_conv="conv2d"),
        ]
        sweep = {size: self.sweep_items(size) for size in SIZES}
        compile_mode = self.mode("default_compile", compile=True)

        def rows_estimate(items: list[tuple]) -> float:
            return sum(self.row_estimate_s(*item) for item in items)

        target_items = [("packnet_a", target_size, target_batch, m, s.warmup, s.steps) for m in target_modes]
        return [
            Phase("environment", True, lambda: s.phase_estimates_s["environment"], self.environment),
            Phase("physical_bound", True, lambda: s.phase_estimates_s["physical_bound"], self.physical_bound),
            Phase(
                "targets",
                True,
                lambda: rows_estimate(target_items),
                lambda: [self.measure(*item, optional=False) for item in target_items],
            ),
            Phase("depth_conv", True, lambda: s.phase_estimates_s["depth_conv"], self.depth_conv),
            Phase("cuda_tests", True, lambda: s.phase_estimates_s["cuda_tests"], self.cuda_tests),
            Phase("sweep_480", False, lambda: self.row_overhead_s, lambda: self.sweep(sweep[(480, 640)])),
            Phase("seed_study", False, lambda: s.phase_estimates_s["seed_study"], self.seed_study),
            Phase("sweep_240", False, lambda: self.row_overhead_s, lambda: self.sweep(sweep[(240, 320)])),
            Phase(
                "compile",
                False,
                lambda: s.phase_estimates_s["compile"],
                lambda: self.measure(
                    "packnet_a", target_size, target_batch, compile_mode, s.warmup, s.steps, optional=False
                ),
            ),
        ]

    def sweep_items(self, size: tuple[int, int]) -> list[tuple]:
        """Rows of the grid at ``size`` not already measured as targets; 16 GB-relevant checkpointing rows first."""
        s = self.scale
        tiny = s.sizes[size]
        items = []
        if size == (480, 640):
            ac = self.mode("default_ac", activation_checkpointing=True)
            items += [
                (m, tiny, s.batches[b], ac, s.sweep_warmup, s.sweep_steps)
                for m, b in (("packnet_slim_b", 16), ("densedepth", 16), ("packnet_a", 8), ("packnet_slim_b", 8))
            ]
        for model in MODELS:
            for batch in BATCHES:
                for mode in (self.mode("default"), self.mode("eager_fp32")):
                    if (model, size, batch) != ("packnet_a", (480, 640), 16):
                        items.append((model, tiny, s.batches[batch], mode, s.sweep_warmup, s.sweep_steps))
        return items

    def sweep(self, items: list[tuple]) -> dict[str, int]:
        measured = [self.measure(*item, optional=True) for item in items]
        return {"measured": sum(r is not None for r in measured), "skipped": sum(r is None for r in measured)}

    def environment(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "python": platform.python_version(),
            "device": device_description(self.device),
            "tf32_convolutions": torch.backends.cudnn.allow_tf32,
        }
        if self.device.type == "cuda":
            props = torch.cuda.get_device_properties(self.device)
            info.update(
                memory_mib=props.total_memory / 2**20,
                multiprocessors=props.multi_processor_count,
                peak_bf16_tflops=step_bench.peak_flops(self.device, "bf16")[0],
            )
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                check=False,
            )
            info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()[:200]
        return info

    def physical_bound(self) -> dict[str, Any]:
        """Counted on the meta device: the same numbers on any machine, at the published width and size."""
        full = step_bench.forward_flops_per_image("packnet_a", (), 1.0, (480, 640)) / 2
        half = step_bench.forward_flops_per_image("packnet_a", (("output_scale", "half"),), 1.0, (480, 640)) / 2
        epoch_flops = 2 * 3 * full * NYU_TRAIN_IMAGES
        peak = step_bench.peak_flops(self.device, "bf16")[0] if self.device.type == "cuda" else None
        h100 = dict(step_bench.PEAK_TFLOPS)["H100"]["bf16"] * 1e12
        return {
            "model": "packnet_a",
            "input_size": [480, 640],
            "counter": "torch.utils.flop_counter (conv + matmul)",
            "gmac_per_image_full_output": full / 1e9,
            "gmac_per_image_half_output": half / 1e9,
            "issue_gmac_per_image": ISSUE_GMAC_PER_IMAGE,
            "relative_difference": full / 1e9 / ISSUE_GMAC_PER_IMAGE - 1,
            "training_gmac_per_image": 3 * full / 1e9,
            "nyu_epoch_pflop": epoch_flops / 1e15,
            "nyu_epoch_s_at_h100_bf16_peak": epoch_flops / h100,
            "nyu_epoch_s_at_this_device_peak": epoch_flops / peak if peak else None,
        }

    def cuda_tests(self) -> dict[str, Any]:
        report = self.work_dir / "cuda_tests.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "cuda",
            "-rs",
            "--timeout",
            "150",
            str(ROOT / "tests" / "cuda"),
            f"--junitxml={report}",
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=240)
        return {"returncode": done.returncode, "tests": junit_outcomes(report), "tail": done.stdout[-1500:]}

    def depth_conv(self) -> dict[str, Any]:
        s = self.scale
        precision = "bf16" if self.device.type == "cuda" else "fp32"
        report = depth_conv_bench.main(
            [
                "--device",
                s.device,
                "--models",
                "packnet_a,packnet_slim_b",
                "--input-size",
                "x".join(map(str, s.sizes[(480, 640)])),
                "--batch-size",
                str(s.batches[8]),
                "--width",
                str(s.width),
                "--precision",
                precision,
                "--repeats",
                str(max(s.steps, 3)),
                "--out",
                str(self.work_dir / "depth_conv.json"),
            ]
        )
        return {
            "precision": precision,
            "default_impl": report["default_impl"],
            "models": [{"model": m["model"], **m["summary"]} for m in report["models"]],
        }

    def seed_study(self) -> dict[str, Any]:
        out = self.work_dir / "seed-study"
        command = [
            sys.executable,
            "-m",
            "cli",
            "experiment",
            "seed-study",
            *self.scale.seed_study_flags,
            "--out",
            str(out),
        ]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"seed-study exited {done.returncode}: {done.stderr.strip()[-300:]}")
        rows = json.loads((out / "experiments.json").read_text())["experiments"]
        keep = ("steps", "final_loss", "mean_epoch_loss", "images_per_s", "seconds_per_epoch")
        return {
            "flags": list(self.scale.seed_study_flags),
            "experiments": [
                {
                    "id": r["id"],
                    "model": r["model"],
                    **{k: run.get(k) for k in keep},
                    "seed": run.get("seed"),
                    "abs_rel": (run.get("held_out") or {}).get("abs_rel"),
                }
                for r in rows
                for run in r["runs"]
            ],
        }

    # -- verdicts -----------------------------------------------------------------------------------
    def targets(self) -> dict[str, Any]:
        return evaluate_targets(self.rows, self.scale.sizes[(480, 640)], self.scale.batches[16])


def describe(scale: Scale) -> dict[str, Any]:
    """The scale as JSON: which size and batch stand for which (the dry run's tiny stand-ins)."""
    return {
        "device": scale.device,
        "width": scale.width,
        "warmup": scale.warmup,
        "steps": scale.steps,
        "sweep_warmup": scale.sweep_warmup,
        "sweep_steps": scale.sweep_steps,
        "sizes": {f"{h}x{w}": "x".join(map(str, v)) for (h, w), v in scale.sizes.items()},
        "batches": {str(k): v for k, v in scale.batches.items()},
        "seed_study_flags": list(scale.seed_study_flags),
    }


def evaluate_targets(rows: list[dict[str, Any]], size: tuple[int, int], batch: int) -> dict[str, Any]:
    """The issue's three targets from the rows of PackNet01-A at ``size``, ``batch`` (None: not measured)."""

    def row(mode: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if r["model"] == "packnet_a"
                and tuple(r["input_size"]) == tuple(size)
                and r["batch_size"] == batch
                and r["mode"] == mode
                and r["status"] == "ok"
            ),
            None,
        )

    default, eager, ac = row("default"), row("eager_fp32"), row("default_ac")
    speedup = eager["step_ms"] / default["step_ms"] if default and eager else None
    mfu = default.get("mfu") if default else None
    reserved = ac.get("peak_reserved_mib") if ac else None

    def verdict(value: float | None, ok: Callable[[float], bool]) -> bool | None:
        return None if value is None else ok(value)

    return {
        "speedup_over_eager_fp32": {
            "value": speedup,
            "target": f">= {TARGET_SPEEDUP}",
            "met": verdict(speedup, lambda v: v >= TARGET_SPEEDUP),
        },
        "mfu_default_step": {
            "value": mfu,
            "target": f">= {TARGET_MFU:.0%}",
            "met": verdict(mfu, lambda v: v >= TARGET_MFU),
        },
        "peak_reserved_mib_with_activation_checkpointing": {
            "value": reserved,
            "target": f"<= {TARGET_RESERVED_MIB:,.0f} MiB (fits a 16 GB GPU)",
            "met": verdict(reserved, lambda v: v <= TARGET_RESERVED_MIB),
        },
    }


def junit_outcomes(path: Path) -> list[dict[str, str]]:
    """Every test case in a pytest JUnit XML report: name, outcome (passed/failed/error/skipped), message."""
    if not path.is_file():
        return []
    outcomes = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (element.get("message") or "").splitlines()[0][:300] if element.get("message") else ""
                break
        outcomes.append(
            {"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome, "message": message}
        )
    return outcomes


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown section holding one table (cells with ``|`` get ``/``)."""
    cells = [[str(c).replace("|", "/") for c in row] for row in rows]
    return [
        "",
        f"## {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *("| " + " | ".join(row) + " |" for row in cells),
    ]


def _result(results: dict[str, Any], phase: str) -> Any:
    return (results["phases"].get(phase) or {}).get("result")


def summary_markdown(results: dict[str, Any]) -> str:
    """The check as Markdown tables: targets, bound, phases, tests, packing conv, train_step rows, seed study,
    skipped."""
    dry = " (CPU dry run: no number here is a GPU figure)" if results["dry_run"] else ""
    lines = [
        f"# GPU check: {results['device']}{dry}",
        "",
        f"Elapsed {results.get('elapsed_s', 0):.0f} s of a {results['budget_s']:.0f} s budget.",
    ]
    lines += _table(
        "Targets (PackNet01-A, 480x640, batch 16)",
        ["target", "value", "goal", "met"],
        [
            [name, _fmt(t["value"], ".1%" if name.startswith("mfu") else ",.2f"), t["target"], _fmt(t["met"])]
            for name, t in (results.get("targets") or {}).items()
        ],
    )
    bound = _result(results, "physical_bound")
    if bound:
        lines += [
            "",
            "## Physical bound",
            "",
            f"PackNet01-A forward at 480x640: {bound['gmac_per_image_full_output']:.1f} GMAC per image "
            f"({bound['counter']}; the issue says {bound['issue_gmac_per_image']}), "
            f"{bound['gmac_per_image_half_output']:.1f} with the seed's half-resolution output. "
            f"One NYU epoch: {bound['nyu_epoch_pflop']:.0f} PFLOP, "
            f"{bound['nyu_epoch_s_at_h100_bf16_peak'] / 60:.1f} min at the H100's bf16 peak.",
        ]
    lines += _table(
        "Phases",
        ["phase", "status", "seconds", "estimate"],
        [[name, p["status"], f"{p['seconds']:.0f}", f"{p['estimate_s']:.0f}"] for name, p in results["phases"].items()],
    )
    tests = (_result(results, "cuda_tests") or {}).get("tests", [])
    lines += _table(
        "CUDA tests", ["test", "outcome", "message"], [[t["test"], t["outcome"], t["message"]] for t in tests]
    )
    conv = _result(results, "depth_conv")
    if conv:
        lines += _table(
            f"Packing conv ({conv['precision']}; default here: {conv['default_impl']})",
            ["model", "conv3d ms", "conv2d ms", "conv3d/conv2d"],
            [
                [
                    m["model"],
                    f"{m['total_ms']['conv3d']:.2f}",
                    f"{m['total_ms']['conv2d']:.2f}",
                    f"{m['speedup_conv2d_over_conv3d']:.2f}",
                ]
                for m in conv["models"]
            ],
        )
    lines += _table(
        "Training steps",
        [
            "model",
            "size",
            "batch",
            "mode",
            "step ms",
            "images/s",
            "MFU",
            "peak alloc MiB",
            "peak reserved MiB",
            "saved MiB",
            "status",
        ],
        [
            [
                r["model"],
                "x".join(map(str, r["input_size"])),
                r["batch_size"],
                r["mode"],
                _fmt(r.get("step_ms"), ".1f"),
                _fmt(r.get("images_per_s"), ".1f"),
                _fmt(r.get("mfu"), ".1%"),
                _fmt(r.get("peak_memory_mib"), ",.0f"),
                _fmt(r.get("peak_reserved_mib"), ",.0f"),
                _fmt(r.get("saved_activation_mib"), ",.1f"),
                r["status"],
            ]
            for r in results["rows"]
        ],
    )
    study = _result(results, "seed_study")
    if study:
        lines += _table(
            f"Seed study ({' '.join(study['flags'])})",
            ["experiment", "model", "steps", "final loss", "images/s", "abs_rel"],
            [
                [
                    e["id"],
                    e["model"],
                    e["steps"],
                    _fmt(e["final_loss"], ".4f"),
                    _fmt(e["images_per_s"], ".1f"),
                    _fmt(e["abs_rel"], ".3f"),
                ]
                for e in study["experiments"]
            ],
        )
    lines += _table(
        "Skipped (over budget)",
        ["what", "estimate s", "remaining s"],
        [[s["what"], f"{s['estimate_s']:.1f}", f"{s['remaining_s']:.1f}"] for s in results["skipped"]],
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same phases on the CPU at tiny sizes")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help=f"wall-clock budget in seconds (default {BUDGET_S:.0f}; dry run {DRY_RUN_BUDGET_S:.0f})",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where gpu-<device>.json/.md go (default: bench/results; a dry run: its work dir)",
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device visible; use --dry-run to check everything but CUDA on this machine",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        torch.set_num_threads(1)
    else:
        torch.backends.cudnn.benchmark = True
    scale = DRY_SCALE if args.dry_run else GPU_SCALE
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="probe-gpu-check-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    out_dir = args.out_dir or (work_dir if args.dry_run else BENCH / "results")  # dry-run results are never GPU figures
    out_dir.mkdir(parents=True, exist_ok=True)
    budget = args.budget_s if args.budget_s is not None else (DRY_RUN_BUDGET_S if args.dry_run else BUDGET_S)
    check = GpuCheck(scale, Budget(budget), out_dir, work_dir, args.dry_run)
    results = check.run(check.phases())
    print(check.md_path.read_text())
    print(f"wrote {check.json_path} and {check.md_path}")
    failed = [name for name, p in results["phases"].items() if p["status"] != "ok"]
    tests = (results["phases"].get("cuda_tests") or {}).get("result") or {}
    return 1 if failed or tests.get("returncode", 0) != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
