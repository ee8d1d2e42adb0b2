"""End to end on a CPU: self-supervised training on synthetic video, with and without the velocity loss.

Runs :func:`probe.self_supervised_study.run_self_supervised_study` with a
small budget and answers, with numbers:

1. does the photometric (reprojection) loss fall during training?
2. after median scaling, does the learnt depth beat the constant predictor
   (every pixel at the image's median ground truth)?
3. with the velocity loss on clean speeds, is the median scale factor
   ``median(gt) / median(pred)`` within 10 % of 1 (metric depth)?
4. how does that scale factor degrade with noise on the reported speed
   (Gaussian std, bias)?

Each run is an ordinary training run folder under ``--out``; the table is
printed and ``--json`` (default ``<out>/bench_self_supervised.json``) holds
every number.  With one seed the table shows single runs; pass
``--seeds 0,1,2`` for spreads over seeds.

    python3 bench/self_supervised.py --out runs/ssl-bench            # the default budget (see --help)
    python3 bench/self_supervised.py --steps 100 --noise 0            # a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.record import write_bench_record  # noqa: E402
from probe.options import parse_key_values, parse_size  # noqa: E402
from probe.self_supervised_study import (  # noqa: E402
    QUICK,
    SelfSupervisedRun,
    SelfSupervisedStudyConfig,
    parse_noise_levels,
    run_self_supervised_study,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=SelfSupervisedStudyConfig().dataset)
    parser.add_argument("--data-option", action="append", default=[], help="dataset option KEY=VALUE (repeatable)")
    parser.add_argument("--models", default="packnet_b", help="comma-separated depth models")
    parser.add_argument("--seeds", default="0")
    parser.add_argument(
        "--noise",
        default="0,0.1,b0.1",
        help="velocity noise levels: std (m/s), bB for a bias, dP for dropout; '' for none",
    )
    parser.add_argument(
        "--no-velocity-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train without the velocity loss (per model and seed)",
    )
    parser.add_argument("--velocity-weight", type=float, default=0.1, help="packnet-sfm's 0.1")
    parser.add_argument(
        "--smoothness-weight",
        type=float,
        default=QUICK["smoothness_weight"],
        help="packnet-sfm's is 0.001; the CPU recipe's larger weight holds back texture copying in a short run",
    )
    parser.add_argument("--width", type=float, default=QUICK["width"])
    parser.add_argument("--pose-width", type=float, default=QUICK["pose_width"])
    parser.add_argument("--size", default="x".join(str(v) for v in QUICK["input_size"]))
    parser.add_argument("--steps", type=int, default=QUICK["max_steps"])
    parser.add_argument("--batch-size", type=int, default=QUICK["batch_size"])
    parser.add_argument("--lr", type=float, default=QUICK["lr"])
    parser.add_argument("--pose-lr", type=float, default=QUICK["pose_lr"])
    parser.add_argument("--eval-length", type=int, default=QUICK["eval_length"])
    parser.add_argument(
        "--automask-after",
        type=int,
        default=QUICK["automask_after"],
        help="auto-masking joins after N steps (0: from the first, packnet-sfm)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ssl-bench"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    options = parse_key_values(args.data_option, "--data-option", "fps=5")
    config = SelfSupervisedStudyConfig(
        models=tuple(m.strip() for m in args.models.split(",")),
        seeds=tuple(int(s) for s in args.seeds.split(",")),
        velocity_weight=args.velocity_weight,
        include_no_velocity=args.no_velocity_run,
        smoothness_weight=args.smoothness_weight,
        noise_levels=parse_noise_levels(args.noise, "--noise"),
        dataset=args.dataset,
        dataset_options=options,
        width=args.width,
        pose_width=args.pose_width,
        input_size=parse_size(args.size),
        dataset_length=args.steps * args.batch_size,
        eval_length=args.eval_length,
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        pose_lr=args.pose_lr,
        automask_after=args.automask_after,
        device="cpu",
        workers=0,
        out=args.out,
    )
    load_before, start = os.getloadavg(), time.time()

    def progress(run: SelfSupervisedRun) -> None:
        s = run.scale
        print(
            f"{run.id}: {run.steps} steps, {run.seconds:.0f} s; reprojection {run.reprojection_first:.4f} -> "
            f"{run.reprojection_last:.4f}; scale ratio {s.ratio['median']:.3f}; abs_rel median-scaled "
            f"{s.metrics_median_scaled['abs_rel']:.3f} vs constant {s.constant_median_scaled['abs_rel']:.3f}",
            flush=True,
        )

    result = run_self_supervised_study(config, on_run=progress)
    seconds, load_after = time.time() - start, os.getloadavg()

    table = Table(
        title=f"self-supervised {args.dataset} {args.size}, {args.steps} steps, width {args.width:g}, "
        f"seeds {args.seeds}"
    )
    for column in (
        "run",
        "reproj first",
        "reproj last",
        "scale ratio [q25, q75]",
        "within 10%",
        "abs_rel scaled",
        "constant",
        "beats constant",
        "abs_rel metric",
    ):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in result.runs:
        s = run.scale
        table.add_row(
            run.id,
            f"{run.reprojection_first:.4f}",
            f"{run.reprojection_last:.4f}",
            f"{s.ratio['median']:.3f} [{s.ratio['q25']:.2f}, {s.ratio['q75']:.2f}]",
            f"{s.ratio['within_10_percent']:.2f}",
            f"{s.metrics_median_scaled['abs_rel']:.3f}",
            f"{s.constant_median_scaled['abs_rel']:.3f}",
            "yes" if s.beats_constant else "NO",
            f"{s.metrics['abs_rel']:.3f}",
        )
    Console(width=160).print(table)
    print(
        f"{seconds / 60:.1f} min; load average before/after {load_before[0]:.1f} / {load_after[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    out = args.json or args.out / "bench_self_supervised.json"
    write_bench_record(out, "self_supervised", argv, load_before, seconds=seconds, study=result.to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
