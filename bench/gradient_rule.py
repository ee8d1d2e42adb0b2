"""Calibration of the gradient rule: the controls and the zoo models under the old and the new rule.

For each network this trains a short run with ``analyses.gradients.GradientRecorder``
attached and prints how the per-layer gradient-to-weight ratios spread, how far
the extreme layers sit from the model's median, and how many layers each rule
flags:

- ``old``: median gradient norm / sqrt(parameters) below 1e-3 of the largest layer's
  (``analyses.gradients.RULE``, the rule the first quick study used);
- ``new``: :data:`probe.rules.GRADIENT_RULE` (|g|/|w| below 1e-4 of the model's median).

The controls (:mod:`probe.controls`) must come out "vanishing" (plain sigmoid CNN)
and "healthy" (residual GroupNorm CNN); DenseDepth and PackNet must not be flagged
merely for being deep or wide.

    python3 bench/gradient_rule.py --width 0.25 --input-size 64x96 --steps 100 --lr 1e-3 --out bench_gradient_rule.json
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from analyses.gradients import GradientRecorder  # noqa: E402
from probe.controls import fit_regression, plain_sigmoid_cnn, regression_task, residual_norm_cnn  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.rules import gradient_weight_ratio, vanishing_gradients  # noqa: E402
from probe.training import TrainConfig, train  # noqa: E402

ZOO = {"densedepth": {}, "packnet_slim_b": {"output_scale": "half"}, "packnet_slim_c": {"output_scale": "half"}}


def control_layers(name: str, steps: int) -> list[Any]:
    torch.manual_seed(0)
    model = plain_sigmoid_cnn() if name == "sigmoid control" else residual_norm_cnn()
    recorder = GradientRecorder()
    recorder.on_start(model, SimpleNamespace(model=name))
    x, y = regression_task()
    fit_regression(
        model,
        x,
        y,
        steps=steps,
        after_backward=recorder.after_backward,
        after_step=lambda step, m: recorder.after_step(step, m, None),
    )
    return recorder.result()


def zoo_layers(model: str, options: dict[str, Any], args: argparse.Namespace, workdir: Path) -> Any:
    recorder = GradientRecorder()
    train(
        TrainConfig(
            model=model,
            model_options=options,
            width=args.width,
            input_size=parse_size(args.input_size),
            dataset_length=args.steps * args.batch_size,
            max_steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            device="cpu",
            out=workdir / model,
        ),
        hooks=[recorder],
    )
    return recorder.result()


def old_rule_vanishing(layers: list[Any]) -> int:
    """Layers the replaced rule flagged: median gradient norm per sqrt(parameter) below 1e-3 of the largest
    (the rule before issue 10; kept here only to show what the new one changed)."""
    norm = np.array([layer.median_grad / math.sqrt(max(1, layer.params)) for layer in layers], dtype=np.float64)
    finite = norm[np.isfinite(norm)]
    return int((finite < 1e-3 * finite.max()).sum()) if finite.size else 0


def row(name: str, gradients: Any) -> dict[str, Any]:
    ratios = np.array([gradient_weight_ratio(layer) for layer in gradients.layers])
    finite = ratios[np.isfinite(ratios) & (ratios > 0)]
    median = float(np.median(finite))
    new = vanishing_gradients(gradients.layers)
    return {
        "model": name,
        "layers": len(gradients.layers),
        "spread_decades": new.spread_decades,
        "min_over_median": float(finite.min() / median),
        "max_over_median": float(finite.max() / median),
        "old_rule_vanishing": old_rule_vanishing(gradients.layers),
        "new_rule_vanishing": len(new.vanishing),
        "new_rule_exploding": len(new.exploding),
        "new_verdict": new.verdict,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--input-size", default="64x96")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--control-steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", default="bench_gradient_rule.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [row(name, control_layers(name, args.control_steps)) for name in ("sigmoid control", "residual control")]
    with tempfile.TemporaryDirectory(prefix="gradient-rule-") as tmp:
        rows += [row(model, zoo_layers(model, options, args, Path(tmp))) for model, options in ZOO.items()]
    table = Table(
        title=f"gradient rule calibration (zoo: width {args.width:g}, {args.input_size}, {args.steps} steps, "
        f"batch {args.batch_size}, lr {args.lr:g})"
    )
    for column in (
        "model",
        "layers",
        "|g|/|w| spread (decades)",
        "min / median",
        "max / median",
        "old rule: vanishing",
        "new rule: vanishing",
        "new rule: exploding",
        "new verdict",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in rows:
        table.add_row(
            r["model"],
            str(r["layers"]),
            f"{r['spread_decades']:.1f}",
            f"{r['min_over_median']:.1e}",
            f"{r['max_over_median']:.1e}",
            str(r["old_rule_vanishing"]),
            str(r["new_rule_vanishing"]),
            str(r["new_rule_exploding"]),
            r["new_verdict"],
        )
    Console(width=max(160, Console().width)).print(table)
    write_json(args.out, {"benchmark": "gradient_rule", "config": vars(args), "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
