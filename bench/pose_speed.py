"""How many steps does PoseNet need to learn the speed? PoseNet regresses the exact motion of fixed synthetic
windows (no photometric loss, no depth), once per translation output scale and seed, scored every few steps.

On the street video the turns are small (radians ~0.002-0.05) and the translations large (0.5-1.5 m per frame at
10 frames/s, varying with each sequence's speed). packnet-sfm multiplies all six outputs by 0.01, so the weights
that carry a window-to-window change of speed must grow a hundred times larger than those of the turns, and under
Adam, which moves every weight by about the learning rate per step, that takes thousands of steps. Until then
PoseNet predicts one typical translation for every window, and the self-supervised depth inherits the error
(README, "PoseNet predicts one motion for every window"). ``--translation-scales`` compares the published
factor with larger ones (:class:`probe.models.posenet.PoseNet` ``translation_scale``, which starts from the
same initial motion).

Printed per scale and step: the share of the translation's and the rotation's variation across the held-out
windows that PoseNet follows (worse source; :func:`probe.evaluate_pose.evaluate_pose`), per seed, and the same
translation share on the first training windows (a network that follows its training windows but not the
held-out ones has memorised them: ``--train-windows 64`` shows it).

    python3 bench/pose_speed.py --out bench/results/pose_speed.json
    python3 bench/pose_speed.py --translation-scales 0.01,1 --train-windows 64 --steps 2400
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import Dataset, Subset  # noqa: E402

from bench.pose_learning import supervised_pose_loss  # noqa: E402
from bench.record import finish  # noqa: E402
from probe.data import get_dataset  # noqa: E402
from probe.errors import ProbeError  # noqa: E402
from probe.evaluate_pose import evaluate_pose  # noqa: E402
from probe.models.posenet import PoseNet  # noqa: E402
from probe.options import parse_key_values, parse_size  # noqa: E402

KEYS = ("image", "context", "poses", "context_offsets")


class Windows(Dataset):
    """A video split's first ``n`` windows, generated once and held in memory (only what PoseNet and its score
    read)."""

    def __init__(self, dataset: Any, n: int) -> None:
        items = [dataset[i] for i in range(n)]
        self.tensors = {k: torch.stack([torch.as_tensor(item[k]) for item in items]) for k in KEYS}

    def __len__(self) -> int:
        return int(self.tensors["image"].shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.tensors.items()}


def shares(pose_net: PoseNet, windows: Dataset) -> tuple[float, float]:
    """(translation, rotation) share of the motion's variation followed, the worse source of each."""
    evaluation = evaluate_pose(pose_net, windows)
    pose_net.train()
    return (
        min(s["translation_explained"] for s in evaluation.per_source),
        min(s["rotation_explained"] for s in evaluation.per_source),
    )


def train_one(
    train: Windows, test: Windows, *, scale: float, seed: int, args: argparse.Namespace, advance: Any
) -> list[dict[str, Any]]:
    """One PoseNet supervised on ``train`` for ``args.steps``; a row per scoring step."""
    torch.manual_seed(seed)
    offsets = tuple(int(o) for o in train.tensors["context_offsets"][0])
    pose_net = PoseNet(
        n_sources=len(offsets), width=args.pose_width, inputs=args.pose_inputs, offsets=offsets, translation_scale=scale
    ).train()
    optimizer = torch.optim.Adam(pose_net.parameters(), lr=args.pose_lr)
    draw = torch.Generator().manual_seed(seed)
    seen = Subset(train, range(min(len(train), args.score_train)))
    rows = []
    for step in range(1, args.steps + 1):
        index = torch.randint(0, len(train), (args.batch_size,), generator=draw)
        loss = supervised_pose_loss(pose_net, {k: v[index] for k, v in train.tensors.items()})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        advance()
        if step % args.every == 0 or step == args.steps:
            translation, rotation = shares(pose_net, test)
            rows.append(
                {
                    "translation_scale": scale,
                    "seed": seed,
                    "step": step,
                    "loss": loss.item(),
                    "translation_explained": translation,
                    "rotation_explained": rotation,
                    "translation_explained_train": shares(pose_net, seen)[0],
                }
            )
    return rows


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ProbeError(f"{flag}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise ProbeError(f"{flag}: expected positive numbers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic_video_outdoor")
    parser.add_argument("--data-option", action="append", default=[], help="dataset option KEY=VALUE (repeatable)")
    parser.add_argument("--size", default="64x96")
    parser.add_argument("--train-windows", type=int, default=4000)
    parser.add_argument("--test-windows", type=int, default=256)
    parser.add_argument("--score-train", type=int, default=256, help="training windows scored (the first N)")
    parser.add_argument("--translation-scales", default="0.01,0.1,1")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pose-lr", type=float, default=1e-3)
    parser.add_argument("--pose-width", type=float, default=0.5)
    parser.add_argument("--pose-inputs", choices=("stack", "pairs"), default="stack")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    try:
        scales = _floats(args.translation_scales, "--translation-scales")
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ProbeError as error:
        raise SystemExit(str(error)) from None
    except ValueError:
        raise SystemExit(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    if not seeds:
        raise SystemExit(f"--seeds: expected comma-separated integers, got {args.seeds!r}")

    torch.set_num_threads(1)
    size, options = parse_size(args.size), parse_key_values(args.data_option, "--data-option", "fps=5")
    load_before, start = os.getloadavg(), time.time()
    train = Windows(
        get_dataset(args.dataset, input_size=size, length=args.train_windows, seed=0, **options), args.train_windows
    )
    test = Windows(
        get_dataset(args.dataset, split="test", input_size=size, length=args.test_windows, **options), args.test_windows
    )
    rows: list[dict[str, Any]] = []
    with Progress() as progress:
        task = progress.add_task("PoseNet supervised", total=len(scales) * len(seeds) * args.steps)
        for scale in scales:
            for seed in seeds:
                rows += train_one(
                    train, test, scale=scale, seed=seed, args=args, advance=lambda: progress.advance(task)
                )

    table = Table(
        title=f"{args.dataset} {args.size}: PoseNet {args.pose_inputs} supervised, "
        f"{args.train_windows} training windows, seeds {args.seeds}"
    )
    for column in (
        "translation scale",
        "step",
        "translation followed (per seed)",
        "mean",
        "rotation followed",
        "training windows' translation",
    ):
        table.add_column(column, justify="right")
    for scale in scales:
        for step in sorted({r["step"] for r in rows}):
            cell = [r for r in rows if r["translation_scale"] == scale and r["step"] == step]
            translation = [r["translation_explained"] for r in cell]
            table.add_row(
                f"{scale:g}",
                str(step),
                ", ".join(f"{x:.2f}" for x in translation),
                f"{statistics.fmean(translation):.2f}",
                ", ".join(f"{r['rotation_explained']:.2f}" for r in cell),
                ", ".join(f"{r['translation_explained_train']:.2f}" for r in cell),
            )
    finish(table, "pose_speed", args.out, argv, load_before, start, rows=rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
