"""Does PoseNet learn the camera motion, and does the depth scale follow it? Self-supervised training on CPU, with
the pose or the depth optionally replaced by the exact one, scored on held-out windows every few steps.

The velocity loss fixes the *length* of PoseNet's translation; the photometric loss must find its *direction*.
This bench trains a depth model and PoseNet on synthetic video and prints, every ``--every`` steps:

- per source frame (t-1, t+1): PoseNet's translation angle to the exact one, its length over the exact
  distance, its rotation error, and the share of the motion's variation across windows it follows (translation;
  rotation: 1 every window's motion, 0 one motion for all) (:func:`probe.evaluate_pose.evaluate_pose`);
- the depth's scale factor median(gt) / median(pred) and its median-scaled abs_rel against the median-scaled
  constant predictor (:func:`probe.evaluate_scale.evaluate_scale`).

``--exact-pose`` warps with the exact poses (the depth learns alone: can the photometric loss make it metric?);
``--exact-depth`` gives the loss the exact depth (PoseNet learns alone: can it find the motion at all?).
``--supervised-pose`` drops the photometric loss: PoseNet regresses the exact motion directly (L1, rotation in
centiradians), so what it then follows is what this network can learn from its frames at this input size in so
many steps, whatever the photometric loss teaches (the depth is neither trained nor scored).

    python3 bench/pose_learning.py --dataset synthetic_video --exact-depth --steps 600 --out runs/pose-indoor.json
    python3 bench/pose_learning.py --dataset synthetic_video_outdoor --pose-lr 3e-3 --steps 800
    python3 bench/pose_learning.py --dataset synthetic_video_outdoor --supervised-pose --batch-size 8 --steps 4800
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from rich.table import Table  # noqa: E402
from torch import nn  # noqa: E402

from bench.record import finish  # noqa: E402
from probe.data import get_dataset  # noqa: E402
from probe.evaluate_pose import evaluate_pose  # noqa: E402
from probe.evaluate_scale import evaluate_scale  # noqa: E402
from probe.geometry import matrix_to_pose_vec  # noqa: E402
from probe.losses import LossOutput  # noqa: E402
from probe.models import build_model  # noqa: E402
from probe.models.posenet import PoseNet  # noqa: E402
from probe.options import parse_key_values, parse_size  # noqa: E402
from probe.self_supervised_losses import DEFAULT_WEIGHTS, SelfSupervisedLoss  # noqa: E402
from probe.training.loader import make_loader  # noqa: E402
from probe.training.loop import StepSetup, train_step  # noqa: E402
from probe.training.objective import Forward  # noqa: E402
from probe.training.self_supervised import SelfSupervisedObjective  # noqa: E402

#: exact depth (metres) -> what a model of each output space emits for it
FROM_METRES = {"inverse": lambda d, cap: 1.0 / d, "depthnorm": lambda d, cap: cap / d, "metric": lambda d, cap: d}


#: per pose-vector entry (tx, ty, tz in metres; rx, ry, rz in radians): rotations in centiradians, so that a
#: 0.01 rad (0.57 degree) error weighs like a 1 cm one
SUPERVISED_WEIGHTS = (1.0, 1.0, 1.0, 100.0, 100.0, 100.0)


def supervised_pose_loss(pose_net: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """Mean L1 between ``pose_net``'s ``[B,S,6]`` output and the exact poses' vectors, weighted by
    :data:`SUPERVISED_WEIGHTS` (frames stacked as PoseNet takes them: target, then the sources)."""
    frames = torch.cat([batch["image"], batch["context"].flatten(1, 2)], dim=1)
    exact = batch["poses"]
    target = matrix_to_pose_vec(exact.flatten(0, 1).double()).float().view(*exact.shape[:2], 6)
    weights = torch.tensor(SUPERVISED_WEIGHTS, dtype=target.dtype)
    return ((pose_net(frames) - target) * weights).abs().mean()


class OracleObjective(SelfSupervisedObjective):
    """The self-supervised objective with PoseNet's output or the depth model's replaced by the exact values."""

    def __init__(self, *args: Any, exact_pose: bool, exact_depth: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exact_pose, self.exact_depth = exact_pose, exact_depth

    def __call__(self, model: nn.Module, batch: dict[str, Any], forward: Forward) -> LossOutput:
        def routed(module: nn.Module, *inputs: torch.Tensor) -> Any:
            if self.exact_pose and module is self.pose_forward:
                poses = batch["poses"]
                return matrix_to_pose_vec(poses.flatten(0, 1).double()).float().view(*poses.shape[:2], 6)
            if self.exact_depth and module is model:
                depth = torch.where(batch["valid"], batch["depth"], torch.full_like(batch["depth"], self.max_depth))
                return [FROM_METRES[self.output_space](depth, self.max_depth)]
            return forward(module, *inputs)

        return super().__call__(model, batch, routed)


def score(model: nn.Module | None, pose_net: PoseNet, test: Any, step: int) -> dict[str, Any]:
    """PoseNet and depth on the held-out windows (both networks back in training mode afterwards; no depth scores
    without a depth model)."""
    pose = evaluate_pose(pose_net, test)
    scale = evaluate_scale(model, test) if model is not None else None
    if model is not None:
        model.train()
    pose_net.train()
    nan = float("nan")
    return {
        "step": step,
        "translation_angle_deg": [s["translation_angle_deg"] for s in pose.per_source],
        "translation_ratio": [s["translation_ratio"] for s in pose.per_source],
        "rotation_error_deg": [s["rotation_error_deg"] for s in pose.per_source],
        "rotation_deg": [s["rotation_deg"] for s in pose.per_source],
        "translation_explained": [s["translation_explained"] for s in pose.per_source],
        "rotation_explained": [s["rotation_explained"] for s in pose.per_source],
        "scale_factor": scale.ratio["median"] if scale else nan,
        "abs_rel_median_scaled": scale.metrics_median_scaled["abs_rel"] if scale else nan,
        "constant_abs_rel": scale.constant_median_scaled["abs_rel"] if scale else nan,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic_video")
    parser.add_argument("--data-option", action="append", default=[], help="dataset option KEY=VALUE (repeatable)")
    parser.add_argument("--model", default="packnet_b")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--pose-width", type=float, default=0.5)
    parser.add_argument("--size", default="64x96")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pose-lr", type=float, default=1e-3)
    parser.add_argument("--velocity-weight", type=float, default=0.1)
    parser.add_argument("--smoothness-weight", type=float, default=0.01)
    parser.add_argument("--exact-pose", action="store_true", help="warp with the exact poses (depth learns alone)")
    parser.add_argument("--exact-depth", action="store_true", help="warp with the exact depth (PoseNet learns alone)")
    parser.add_argument(
        "--supervised-pose", action="store_true", help="no photometric loss: PoseNet regresses the exact motion"
    )
    parser.add_argument("--pose-inputs", choices=("stack", "pairs"), default="stack")
    parser.add_argument(
        "--pose-translation-scale", type=float, default=0.01, help="PoseNet's translation output factor"
    )
    parser.add_argument("--eval-length", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    size, options = parse_size(args.size), parse_key_values(args.data_option, "--data-option", "fps=5")
    data = get_dataset(
        args.dataset, input_size=size, length=args.steps * args.batch_size, seed=args.seed, augment=True, **options
    )
    test = get_dataset(args.dataset, split="test", input_size=size, length=args.eval_length, **options)
    model = build_model(args.model, width=args.width).train()
    offsets = tuple(int(o) for o in data.context_offsets)
    pose_net = PoseNet(
        n_sources=len(offsets),
        width=args.pose_width,
        inputs=args.pose_inputs,
        offsets=offsets,
        translation_scale=args.pose_translation_scale,
    )
    weights = {**DEFAULT_WEIGHTS, "velocity": args.velocity_weight, "smoothness": args.smoothness_weight}
    objective = OracleObjective(
        pose_net,
        SelfSupervisedLoss(weights),
        output_space=model.output_space,
        max_depth=data.info.max_depth,
        exact_pose=args.exact_pose,
        exact_depth=args.exact_depth,
    )
    groups = [{"params": list(pose_net.parameters()), "lr": args.pose_lr}]
    if not args.supervised_pose:
        groups.insert(0, {"params": list(model.parameters())})
    optimizer = torch.optim.Adam(groups, lr=args.lr)
    setup = StepSetup(module=model, device=torch.device("cpu"))
    loader = make_loader(data, args.batch_size, seed=args.seed, workers=0, shuffle=True)
    loader.set_epoch(0)
    load_before, start = os.getloadavg(), time.time()
    rows = []
    for step, batch in enumerate(loader, 1):
        if args.supervised_pose:
            optimizer.zero_grad(set_to_none=True)
            supervised_pose_loss(pose_net, batch).backward()
            optimizer.step()
        else:
            train_step(model, batch, objective, optimizer, setup, step=step, epoch=0)
        if step % args.every == 0 or step == args.steps:
            rows.append(score(None if args.supervised_pose else model, pose_net, test, step))
            r = rows[-1]
            print(
                f"step {step}: translation angle {[round(a, 1) for a in r['translation_angle_deg']]} deg, length "
                f"{[round(x, 2) for x in r['translation_ratio']]}, followed "
                f"{[(round(t, 2), round(x, 2)) for t, x in zip(r['translation_explained'], r['rotation_explained'])]}"
                f", scale factor {r['scale_factor']:.3f}",
                flush=True,
            )

    modes = {
        "supervised_pose": "PoseNet supervised by the exact poses",
        "exact_pose": "exact pose",
        "exact_depth": "exact depth",
    }
    mode = next((text for flag, text in modes.items() if getattr(args, flag)), "both learnt")
    table = Table(title=f"{args.dataset} {args.size}, {args.model} {args.width:g}, {mode}, seed {args.seed}")
    for column in (
        "step",
        "t angle (deg) per source",
        "|t| / distance",
        "rotation error (deg)",
        "motion followed (t; rot)",
        "scale factor",
        "abs_rel scaled",
        "constant",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["step"]),
            ", ".join(f"{a:.1f}" for a in r["translation_angle_deg"]),
            ", ".join(f"{x:.2f}" for x in r["translation_ratio"]),
            ", ".join(f"{x:.2f}" for x in r["rotation_error_deg"]),
            ", ".join(f"{t:.2f}; {x:.2f}" for t, x in zip(r["translation_explained"], r["rotation_explained"])),
            *(
                "n/a" if math.isnan(r[k]) else f"{r[k]:.3f}"
                for k in ("scale_factor", "abs_rel_median_scaled", "constant_abs_rel")
            ),
        )
    finish(table, "pose_learning", args.out, argv, load_before, start, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
