"""How faults of the speed sensor move the translation scale the velocity loss teaches (CPU, minutes).

Trains a small depth network and PoseNet self-supervised (reprojection +
smoothness + velocity loss, packnet-sfm's weights unless changed) on
``synthetic_video`` whose *reported* speed carries each noise level, then
measures on held-out windows the learnt translation scale against the
**exact** distance travelled: ``sum ||t_hat|| / sum (v_true |dt|)``.  1 means
metric poses.  A bias ``b`` on a speed ``v`` should pull it to about
``(v + b) / v``; zero-mean Gaussian noise should leave it near 1 (the L1
velocity loss follows the median); dropout only removes readings.

    python3 bench/velocity_noise.py --steps 200 --seeds 0,1 --out runs/velocity-noise.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bench.record import write_bench_record  # noqa: E402
from probe.data import get_dataset  # noqa: E402
from probe.models import build_model  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.self_supervised_losses import DEFAULT_WEIGHTS, SelfSupervisedLoss  # noqa: E402
from probe.training.loader import make_loader  # noqa: E402
from probe.training.loop import StepSetup, train_step  # noqa: E402
from probe.training.self_supervised import SelfSupervisedObjective  # noqa: E402

LEVELS = {
    "clean": {},
    "std 0.05": {"velocity_noise": 0.05},
    "std 0.2": {"velocity_noise": 0.2},
    "bias +0.1": {"velocity_bias": 0.1},
    "bias -0.1": {"velocity_bias": -0.1},
    "dropout 0.5": {"velocity_dropout": 0.5},
}


def true_translation_scale(objective: SelfSupervisedObjective, windows: dict) -> float:
    """``sum ||t_hat|| / sum v_true |dt|`` of the pose network on held-out windows (eval mode)."""
    pose = objective.pose_net.eval()
    with torch.no_grad():
        vectors = pose(torch.cat([windows["image"], windows["context"].flatten(1, 2)], dim=1))
    pose.train()
    predicted = vectors[..., :3].norm(dim=-1)
    travelled = windows["speed_true"][:, None] * windows["context_dt"].abs()
    return float(predicted.sum() / travelled.sum())


def run(level: dict, seed: int, args: argparse.Namespace, held_out: dict) -> dict:
    torch.manual_seed(seed)
    size = parse_size(args.size)
    data = get_dataset("synthetic_video", input_size=size, length=args.steps * args.batch_size, seed=seed, **level)
    model = build_model(args.model, width=args.width).train()
    pose_net = build_model("posenet", width=args.pose_width)
    weights = {**DEFAULT_WEIGHTS, "velocity": args.velocity_weight, "smoothness": args.smoothness_weight}
    objective = SelfSupervisedObjective(
        pose_net, SelfSupervisedLoss(weights), output_space=model.output_space, max_depth=data.info.max_depth
    )
    optimizer = torch.optim.Adam(
        [{"params": list(model.parameters())}, {"params": list(pose_net.parameters()), "lr": args.pose_lr}], lr=args.lr
    )
    setup = StepSetup(module=model, device=torch.device("cpu"))
    loader = make_loader(data, args.batch_size, seed=seed, workers=0, shuffle=True)
    loader.set_epoch(0)
    for step, batch in enumerate(loader, 1):
        train_step(model, batch, objective, optimizer, setup, step=step, epoch=0)
    return {"seed": seed, "scale": true_translation_scale(objective, held_out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="densedepth")
    parser.add_argument("--width", type=float, default=0.0625)
    parser.add_argument("--pose-width", type=float, default=0.5)
    parser.add_argument("--size", default="48x64")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pose-lr", type=float, default=1e-3)
    parser.add_argument("--velocity-weight", type=float, default=0.1)
    parser.add_argument("--smoothness-weight", type=float, default=0.01)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--levels", default=",".join(LEVELS), help=f"comma-separated among: {', '.join(LEVELS)}")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    held_out = next(
        iter(
            DataLoader(
                get_dataset("synthetic_video", split="test", input_size=parse_size(args.size), length=64), batch_size=64
            )
        )
    )
    load_before, start = os.getloadavg(), time.time()
    rows = []
    for name in [n.strip() for n in args.levels.split(",") if n.strip()]:
        runs = [run(LEVELS[name], seed, args, held_out) for seed in seeds]
        scales = [r["scale"] for r in runs]
        rows.append(
            {
                "level": name,
                "options": LEVELS[name],
                "runs": runs,
                "scale_mean": statistics.fmean(scales),
                "scale_std": statistics.stdev(scales) if len(scales) > 1 else None,
            }
        )
        print(f"{name}: translation scale {[round(s, 3) for s in scales]}", flush=True)
    table = Table(
        title=f"learnt translation / true distance after {args.steps} steps ({args.model} {args.width:g}, "
        f"{args.size}, seeds {args.seeds})"
    )
    for column in ("reported speed", "scale mean", "scale std over seeds", "per seed"):
        table.add_column(column, justify="left" if column == "reported speed" else "right")
    for r in rows:
        std = "-" if r["scale_std"] is None else f"{r['scale_std']:.3f}"
        table.add_row(r["level"], f"{r['scale_mean']:.3f}", std, ", ".join(f"{x['scale']:.3f}" for x in r["runs"]))
    Console(width=120).print(table)
    print(
        f"{(time.time() - start) / 60:.1f} min; load average before/after {load_before[0]:.1f} / "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if args.out is not None:
        write_bench_record(args.out, "velocity_noise", argv, load_before, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
