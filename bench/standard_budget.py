"""The standard study's cost: per-step time of every training configuration it runs, and its projected total.

``probe study --budget standard`` must finish in 45 minutes on a 2-core CPU.
This script measures, on the current machine, the CPU time of one step of
every configuration the standard budget trains (the six experiments of the
seed's matrix, with the gradient/noise/collapse probes riding along inside the
runs of the analysed models, the fit step's runs on their first N images, each
autoencoder of the matched-size sweep), of rendering and scoring the
synthetic images, and of the fixed steps (complexity, properties,
attribution), then multiplies by the budget's steps and seeds:

    python3 bench/standard_budget.py --out bench_standard_budget.json
    python3 bench/standard_budget.py --learn --seeds 0,1,2 --out bench_standard_learn.json

Times are process CPU seconds with one torch thread, which other processes on
a shared machine inflate far less than wall time.  The projection for a
2-core machine assumes the study runs two single-threaded workers side by side
(seeds in parallel), i.e. wall = CPU / 2 / ``--parallel-efficiency``.

``--learn`` also trains every experiment of the matrix for the budget's steps
on each seed and scores it on held-out images against the per-image-median
constant predictor (:mod:`probe.heldout`): the evidence that every model of
the matrix learns at this budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402

from probe.budgets import STANDARD, Budget  # noqa: E402
from probe.data import dataset_info, get_dataset  # noqa: E402
from probe.device import device_description  # noqa: E402
from probe.experiments import seed_study_experiments  # noqa: E402
from probe.io import write_json  # noqa: E402
from probe.limits import MAX_EPOCHS  # noqa: E402
from probe.losses import build_loss, dataset_loss_options  # noqa: E402
from probe.models import build_model, dataset_model_options  # noqa: E402
from probe.options import parse_size  # noqa: E402
from probe.runs import provenance  # noqa: E402
from probe.training.loop import StepSetup, train_step  # noqa: E402

BUDGET_MINUTES = 45.0


def cpu_seconds_per_call(fn: Callable[[], Any], calls: int, warmup: int = 1) -> float:
    """Median process CPU seconds of ``fn()`` over ``calls`` calls after ``warmup`` (one torch thread)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def synthetic_batch(size: tuple[int, int], batch: int, split: str = "train") -> dict[str, Any]:
    ds = get_dataset("synthetic", split=split, input_size=size, length=batch)
    return default_collate([ds[i] for i in range(batch)])


def training_step_seconds(model_name: str, options: dict[str, Any], budget: Budget, calls: int) -> float:
    """CPU seconds of one ``train_step`` (forward, the finest-scale loss, backward, Adam) of the study's config."""
    info = dataset_info("synthetic")
    torch.manual_seed(0)
    model = build_model(model_name, width=budget.width, **{**dataset_model_options(model_name, info), **options})
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=budget.lr)
    loss_fn = partial(
        build_loss("densedepth", **dataset_loss_options("densedepth", info)),
        output_space=model.output_space,
        max_depth=info.max_depth,
        scales=budget.loss_scales,
    )
    setup = StepSetup(module=model, device=torch.device("cpu"))
    batch = synthetic_batch(budget.input_size, budget.batch_size)
    counter = iter(range(1, 10**9))
    return cpu_seconds_per_call(
        lambda: train_step(model, batch, loss_fn, optimizer, setup, step=next(counter), epoch=0), calls
    )


def render_seconds_per_image(size: tuple[int, int], count: int = 16) -> float:
    ds = get_dataset("synthetic", input_size=size, length=count)
    start = time.process_time()
    for i in range(count):
        ds[i]
    return (time.process_time() - start) / count


def held_out_seconds_per_image(model_name: str, options: dict[str, Any], budget: Budget) -> float:
    from probe.heldout import held_out_score

    info = dataset_info("synthetic")
    model = build_model(model_name, width=budget.width, **{**dataset_model_options(model_name, info), **options})
    dataset = get_dataset("synthetic", split="test", input_size=budget.input_size, length=8)
    items = [dataset[i] for i in range(len(dataset))]  # rendered once, outside the timing

    class Cached(torch.utils.data.Dataset):
        info = dataset.info
        split = "test"

        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return items[i]

    return cpu_seconds_per_call(lambda: held_out_score(model, Cached(), batch_size=8, resamples=200), 2) / len(items)


def noise_measurement_seconds(model_name: str, budget: Budget) -> float:
    """One gradient-noise measurement: a big batch and big/small chunks, forward and backward each."""
    from analyses.noise import measure_gradient_norms

    info = dataset_info("synthetic")
    model = build_model(model_name, width=budget.width, **dataset_model_options(model_name, info)).train()
    loss = partial(
        build_loss("densedepth"), output_space=model.output_space, max_depth=info.max_depth, scales=budget.loss_scales
    )
    small, big = budget.noise_batches
    batch = synthetic_batch(budget.input_size, big)

    def batch_loss(m: torch.nn.Module, b: dict) -> torch.Tensor:
        return loss(m(b["image"]), b["depth"], b["valid"]).total

    return cpu_seconds_per_call(lambda: measure_gradient_norms(model, batch_loss, batch, small), 2)


def autoencoder_step_seconds(arch: str, levels: int, width: float, budget: Budget) -> tuple[float, int]:
    from analyses.autoencoder import build_autoencoder
    from analyses.autoencoder import train_step as ae_step

    torch.manual_seed(0)
    model = build_autoencoder(arch, levels, width)
    optimizer = torch.optim.Adam(model.parameters(), lr=budget.autoencoder_lr)
    images = torch.rand(budget.autoencoder_batch, 3, *budget.autoencoder_input)
    return cpu_seconds_per_call(lambda: ae_step(model, optimizer, images), 3), sum(
        p.numel() for p in model.parameters()
    )


def fixed_step_seconds(budget: Budget) -> dict[str, float]:
    """CPU seconds of the steps that do not train: complexity, properties, attribution (at random init)."""
    from analyses import attribution, complexity
    from probe import laws

    out: dict[str, float] = {}
    start = time.process_time()
    complexity.run(
        complexity.ComplexityConfig(
            models=list(budget.complexity_models),
            input_size=budget.complexity_input,
            width=1.0,
            device="cpu",
            repeats=1,
            warmup=0,
        )
    )
    out["complexity"] = time.process_time() - start
    start = time.process_time()
    laws.run_laws(max_examples=budget.property_examples, seed=0)
    out["properties"] = time.process_time() - start
    start = time.process_time()
    attribution.run(
        attribution.AttributionConfig(
            models=list(dict.fromkeys(e.model for e in seed_study_experiments())),
            width=budget.width,
            input_size=budget.input_size,
            images=budget.attribution_images,
            device="cpu",
        )
    )
    out["attribution"] = time.process_time() - start
    return out


def project(budget: Budget, calls: int, measure_fixed: bool) -> dict[str, Any]:
    """Measure every configuration; return the line items (count x seconds) and the totals."""
    items: list[dict[str, Any]] = []

    def add(section: str, what: str, count: float, seconds: float, **extra: Any) -> None:
        items.append(
            {
                "section": section,
                "what": what,
                "count": count,
                "seconds_each": seconds,
                "cpu_seconds": count * seconds,
                **extra,
            }
        )

    render = render_seconds_per_image(budget.input_size)
    step_of: dict[str, float] = {}
    for e in seed_study_experiments(True):
        step_of[e.id] = training_step_seconds(e.model, e.options, budget, calls)
        add(
            "experiments",
            f"{e.id} train step (batch {budget.batch_size})",
            budget.seeds * budget.experiment_steps,
            step_of[e.id] + render * budget.batch_size,
            model=e.model,
        )
        add(
            "experiments",
            f"{e.id} held-out score",
            budget.seeds * budget.eval_images,
            held_out_seconds_per_image(e.model, e.options, budget) + render,
            model=e.model,
        )
    by_model = {
        e.model: e.id for e in seed_study_experiments(True) if e.id in ("densedepth", "exp1_packnet_b", "exp5_no_skips")
    }
    runs = budget.seeds * budget.experiment_steps
    for model in budget.analysed_models:  # the probes ride along inside the experiment runs of these models
        step = step_of[by_model[model]]
        add(
            "gradients",
            f"{model} per-layer recording (every {budget.gradient_every}; +10% of a step)",
            runs / budget.gradient_every,
            0.1 * step,
            model=model,
        )
        add(
            "noise",
            f"{model} gradient-noise measurement (every {budget.noise_every})",
            runs / budget.noise_every,
            noise_measurement_seconds(model, budget) + render * budget.noise_batches[1],
            model=model,
        )
        add(
            "collapse",
            f"{model} measurement (every {budget.collapse_every}, {budget.collapse_images} images)",
            budget.seeds * (budget.experiment_steps / budget.collapse_every + 1) * budget.collapse_images,
            held_out_seconds_per_image(model, {"output_scale": "half"} if "packnet" in model else {}, budget),
            model=model,
        )
    for model in budget.fit_models:  # the fit step: each model as the zoo builds it, on its first N images
        fit_step = training_step_seconds(model, {}, budget, calls)
        for n in budget.fit_images:
            add(
                "fit",
                f"{model} on {n} images, train step (batch {min(budget.batch_size, n)})",
                budget.seeds * budget.fit_steps,
                fit_step,  # the N images are rendered once and kept
                model=model,
            )
            add(
                "fit",
                f"{model} on {n} images, scored on them and {budget.fit_test_images} test images",
                budget.seeds * (2 * n + budget.fit_test_images),  # the N images rendered and scored, the test ones
                held_out_seconds_per_image(model, {}, budget) + render,
                model=model,
            )
    for arch, width in budget.autoencoder_runs:
        for levels in budget.autoencoder_levels:
            seconds, params = autoencoder_step_seconds(arch, levels, width, budget)
            add(
                "autoencoder",
                f"{arch}@{levels} width {width:g} ({params:,} params) step",
                budget.seeds * budget.autoencoder_steps,
                seconds,
            )
    add(
        "autoencoder",
        "rendering the train and test images",
        1,
        render_seconds_per_image(budget.autoencoder_input) * (256 + 32),
    )
    if measure_fixed:
        for name, seconds in fixed_step_seconds(budget).items():
            add(name, f"{name} (once)", 1, seconds)
    cpu_total = sum(i["cpu_seconds"] for i in items)
    return {"items": items, "cpu_seconds": cpu_total}


def print_projection(result: dict[str, Any], budget: Budget, efficiency: float) -> None:
    table = Table(
        title=f"standard study: CPU seconds (1 thread) per line item; budget {BUDGET_MINUTES:g} min on 2 cores"
    )
    for column in ("section", "what", "count", "s each", "CPU s"):
        table.add_column(column, justify="left" if column in ("section", "what") else "right")
    for item in result["items"]:
        table.add_row(
            item["section"],
            item["what"],
            f"{item['count']:,.0f}",
            f"{item['seconds_each']:.4f}",
            f"{item['cpu_seconds']:,.0f}",
        )
    sections: dict[str, float] = {}
    for item in result["items"]:
        sections[item["section"]] = sections.get(item["section"], 0.0) + item["cpu_seconds"]
    for name, seconds in sections.items():
        table.add_row(f"[b]{name}[/b]", "total", "", "", f"{seconds:,.0f}")
    console = Console(width=max(140, Console().width))
    console.print(table)
    wall = result["cpu_seconds"] / 2 / efficiency
    console.print(
        f"total CPU {result['cpu_seconds'] / 60:.1f} min; projected on 2 cores (two single-threaded workers, "
        f"efficiency {efficiency:g}): {wall / 60:.1f} min of {BUDGET_MINUTES:g}"
    )


def learning_curve_hook(test: Any, every: int, seed: int) -> Any:
    """A TrainHook scoring the model on ``test`` every ``every`` steps: -> ``hook.points`` (step, both ratios)."""
    from probe.heldout import held_out_score
    from probe.training import TrainHook

    class Curve(TrainHook):
        points: list[dict[str, float]] = []

        def after_step(self, step: int, model: torch.nn.Module, stats: Any) -> None:
            if step % every:
                return
            was_training = model.training
            score = held_out_score(model, test, resamples=200, seed=seed)
            model.train(was_training)
            self.points.append(
                {
                    "step": step,
                    "abs_rel_ratio": score.ratio.mean,
                    "scale_matched_ratio": score.scale_matched_ratio.mean,
                    "loss": score.model.loss,
                    "cpu_seconds": time.process_time(),
                }
            )

    hook = Curve()
    hook.points = []
    return hook


def learn(
    budget: Budget, seeds: list[int], workdir: Path, curve_every: int = 0, only: list[str] | None = None
) -> list[dict[str, Any]]:
    """Train every experiment on each seed at the budget and score it against the constant predictor."""
    from probe.heldout import held_out_score, learned_over_seeds
    from probe.training import TrainConfig, train

    test = get_dataset("synthetic", split="test", input_size=budget.input_size, length=budget.eval_images)
    rows = []
    for e in seed_study_experiments(True, only):
        per_seed = []
        for seed in seeds:
            start = time.process_time()
            hooks = [learning_curve_hook(test, curve_every, seed)] if curve_every else []
            result = train(
                TrainConfig(
                    model=e.model,
                    model_options=dict(e.options),
                    width=budget.width,
                    input_size=budget.input_size,
                    dataset_length=budget.experiment_length,
                    max_steps=budget.experiment_steps,
                    epochs=MAX_EPOCHS,  # max_steps ends the run; TrainConfig refuses more epochs
                    batch_size=budget.batch_size,
                    lr=budget.lr,
                    loss_scales=budget.loss_scales,
                    device="cpu",
                    seed=seed,
                    out=workdir / f"{e.id}_seed{seed}",
                ),
                hooks=hooks,
            )
            score = held_out_score(result.model, test, seed=seed)
            per_seed.append(
                {
                    "seed": seed,
                    "cpu_seconds": time.process_time() - start,
                    "curve": hooks[0].points if hooks else [],
                    **score.to_json(),
                }
            )
        ratios = [s["abs_rel_ratio"]["mean"] for s in per_seed]
        scaled = [s["scale_matched_abs_rel_ratio"]["mean"] for s in per_seed]
        rows.append(
            {
                "id": e.id,
                "model": e.model,
                "options": e.options,
                "seeds": per_seed,
                "learned_over_seeds": learned_over_seeds(ratios).to_json() if len(ratios) > 1 else None,
                "structure_over_seeds": learned_over_seeds(scaled).to_json() if len(scaled) > 1 else None,
            }
        )
    return rows


def print_learning(rows: list[dict[str, Any]]) -> None:
    table = Table(title="held-out abs_rel as a fraction of the per-image-median constant predictor's")
    for column in (
        "experiment",
        "ratio per seed [95% bootstrap]",
        "scale-matched ratio per seed",
        "model abs_rel",
        "constant abs_rel",
        "learned (over seeds)",
        "structure (over seeds)",
    ):
        table.add_column(column)

    def per_seed(row: dict[str, Any], key: str) -> str:
        return ", ".join(f"{s[key]['mean']:.2f} [{s[key]['low']:.2f}, {s[key]['high']:.2f}]" for s in row["seeds"])

    for row in rows:
        model = ", ".join(f"{s['model']['metrics_image_mean']['abs_rel']:.3f}" for s in row["seeds"])
        const = ", ".join(f"{s['constant_median']['metrics_image_mean']['abs_rel']:.3f}" for s in row["seeds"])
        learned = (row["learned_over_seeds"] or row["seeds"][0]["learned"])["sentence"]
        structure = (row["structure_over_seeds"] or row["seeds"][0]["structure_learned"])["sentence"]
        table.add_row(
            row["id"],
            per_seed(row, "abs_rel_ratio"),
            per_seed(row, "scale_matched_abs_rel_ratio"),
            model,
            const,
            learned,
            structure,
        )
    Console(width=max(160, Console().width)).print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = STANDARD
    parser.add_argument("--width", type=float, default=defaults.width)
    parser.add_argument("--input-size", default="x".join(map(str, defaults.input_size)))
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--experiment-steps", type=int, default=defaults.experiment_steps)
    parser.add_argument("--autoencoder-steps", type=int, default=defaults.autoencoder_steps)
    parser.add_argument("--calls", type=int, default=3, help="timed training steps per configuration")
    parser.add_argument("--parallel-efficiency", type=float, default=0.9)
    parser.add_argument("--no-fixed", action="store_true", help="skip timing complexity, properties and attribution")
    parser.add_argument("--learn", action="store_true", help="also train the matrix and score it (slow)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds for --learn")
    parser.add_argument("--only", default=None, help="comma-separated experiment ids for --learn (default: all)")
    parser.add_argument(
        "--curve-every", type=int, default=0, help="with --learn: score every N steps (learning curves)"
    )
    parser.add_argument("--no-projection", action="store_true", help="with --learn: skip the timing projection")
    parser.add_argument("--out", default="bench_standard_budget.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    budget = replace(
        defaults,
        width=args.width,
        input_size=parse_size(args.input_size),
        batch_size=args.batch_size,
        lr=args.lr,
        experiment_steps=args.experiment_steps,
        autoencoder_steps=args.autoencoder_steps,
    )
    doc: dict[str, Any] = {
        "benchmark": "standard_budget",
        "budget": asdict(budget),
        "device": device_description(torch.device("cpu")),
        "provenance": provenance(torch.device("cpu")),
        "threads": 1,
    }
    if not args.no_projection:
        result = project(budget, args.calls, not args.no_fixed)
        print_projection(result, budget, args.parallel_efficiency)
        doc.update(
            projection=result, projected_minutes_2_cores=result["cpu_seconds"] / 2 / args.parallel_efficiency / 60
        )
    if args.learn:
        with tempfile.TemporaryDirectory(prefix="standard-learn-") as tmp:
            doc["learning"] = learn(
                budget,
                [int(s) for s in args.seeds.split(",")],
                Path(tmp),
                args.curve_every,
                args.only.split(",") if args.only else None,
            )
        print_learning(doc["learning"])
    write_json(args.out, doc)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
