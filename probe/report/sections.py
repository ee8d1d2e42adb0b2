"""Report sections: each registered builder turns loaded results into blocks, or None if not run.

Adding a section means registering a function here; the generator loops over the
registry and never changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from probe.plotting import plt, sns
from probe.registry import Registry
from probe.report.answers import QUESTIONS, _autoencoder_rows, _models, is_packnet
from probe.report.collect import Results, read_metrics_log
from probe.report.document import AnswerBlock, Figure, Paragraph, Section, Table, figure_from_matplotlib

Builder = Callable[[Results], "Section | None"]
SECTIONS: Registry[Builder] = Registry("report section")


def _embedded(results: Results, analysis: str, pattern: str, caption: str) -> list[Figure]:
    """PNG figures the analysis itself wrote next to its JSON (read, never regenerated)."""
    figs = []
    for found in results.all(analysis):
        for png in sorted(Path(found.path).parent.glob(pattern)):
            figs.append(Figure(png.read_bytes(), f"{caption} ({png.name})", png.stem))
    return figs


def _answer_section(key: str, title: str, results: Results, extra: list[Any]) -> Section | None:
    answer = QUESTIONS.get(key)(results)
    if answer is None:
        return None
    return Section(key, title, [AnswerBlock(answer), *extra])


# -- models ---------------------------------------------------------------------------------

@SECTIONS.register("models", description="The models: parameters, MACs, latency, memory", needs=("complexity",))
def models_section(results: Results) -> Section | None:
    models = _models(results.first("complexity"))
    if not models:
        return None
    rows = []
    for m in models:
        lat = m.get("latency") if isinstance(m.get("latency"), dict) else {}
        rows.append({
            "model": m.get("name"), "input (HxW)": "x".join(str(v) for v in m.get("input_size") or []),
            "params": m.get("params"), "MACs (G)": (m.get("macs") or 0) / 1e9,
            "FLOPs torch (G)": (m.get("flops_torch") or 0) / 1e9,
            "activations (M)": (m.get("activation_count") or 0) / 1e6,
            "forward (ms)": lat.get("forward_ms", m.get("forward_ms")),
            "fwd+bwd (ms)": lat.get("forward_backward_ms", m.get("forward_backward_ms")),
            "peak memory (MiB)": (m["peak_memory_bytes"] / 2**20) if m.get("peak_memory_bytes") else None,
            **_training_memory(m.get("training_memory")),
        })
    df = pd.DataFrame({"model": [r["model"] for r in rows],
                       "parameters (millions)": [(r["params"] or 0) / 1e6 for r in rows],
                       "GMACs per image": [r["MACs (G)"] for r in rows]})
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    sns.barplot(df, x="model", y="parameters (millions)", ax=axes[0])
    sns.barplot(df, x="model", y="GMACs per image", ax=axes[1])
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Model size and compute")
    blocks: list[Any] = [Table(rows, "complexity.json"),
                         figure_from_matplotlib(fig, "Parameters (millions) and multiply-accumulates (G) per model", "size")]
    blocks += _embedded(results, "complexity", "complexity_*.png", "Per-block MACs and parameters")
    return Section("models", "The models", blocks)


def _training_memory(estimate: Any) -> dict[str, Any]:
    """The estimated training memory column, headed by what it assumed (complexity.json's ``training_memory``)."""
    if not isinstance(estimate, dict) or estimate.get("total_gb") is None:
        return {}
    assumed = f"batch {estimate.get('batch_size')}, {estimate.get('precision')}" + (
        ", checkpointed" if estimate.get("activation_checkpointing") else "")
    return {f"est. training memory (GB; {assumed})": estimate["total_gb"]}


# -- experiment matrix ----------------------------------------------------------------------

def _last(value: Any) -> Any:
    """Per-epoch lists report their last epoch; scalars pass through."""
    return value[-1] if isinstance(value, list) and value else (None if isinstance(value, list) else value)


def _curve(e: dict[str, Any]) -> list[float]:
    curve = e.get("loss_curve") or e.get("losses") or []
    return [float(v) for v in curve if v is not None]


@SECTIONS.register("experiments", description="The seed's five experiments side by side", needs=("experiments",))
def experiments_section(results: Results) -> Section | None:
    doc = results.first("experiments")
    exps = [e for e in (doc or {}).get("experiments", []) if isinstance(e, dict)] if isinstance(doc, dict) else []
    if not exps:
        return None
    rows = []
    for e in exps:
        metrics = e.get("eval") or e.get("eval_metrics") or {}
        rows.append({
            "experiment": e.get("id"), "title": e.get("title"), "model": e.get("model"),
            "params": e.get("params"), "mean epoch loss": _last(e.get("mean_epoch_loss")),
            "seed reported (NYU, 1 epoch)": e.get("seed_mean_loss") if e.get("seed_mean_loss") is not None
            else e.get("seed_note"),
            "per-batch loss std": e.get("batch_loss_std"),
            "first-100-batch loss": e.get("first100_mean_loss"),
            "time/epoch (s)": _last(e.get("seconds_per_epoch")),
            "abs_rel": metrics.get("abs_rel"), "rmse": metrics.get("rmse"), "delta1": metrics.get("delta1"),
        })
    blocks: list[Any] = [Table(rows, "experiments.json")]
    frames = []
    for e in exps:
        curve = _curve(e)
        if curve:
            s = pd.Series(curve)
            frames.append(pd.DataFrame({"step": range(1, len(curve) + 1), "loss": s,
                                        "smoothed loss": s.rolling(max(1, len(curve) // 20), min_periods=1).mean(),
                                        "experiment": str(e.get("id"))}))
    if frames:
        df = pd.concat(frames)
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
        sns.lineplot(df, x="step", y="smoothed loss", hue="experiment", ax=axes[0])
        axes[0].set(xlabel="training step (batches)", ylabel="training loss (smoothed)")
        axes[0].legend(title="experiment (see table)", fontsize="small")
        std = df.groupby("experiment", sort=False)["loss"].std().reset_index()
        sns.barplot(std, x="loss", y="experiment", hue="experiment", legend=False, ax=axes[1])
        axes[1].set(xlabel="per-batch loss standard deviation", ylabel="")
        fig.tight_layout()
        blocks.append(figure_from_matplotlib(fig, "Loss curves and per-batch loss spread per experiment "
                                                  "(ids as in the table above)", "curves"))
    return Section("experiments", "The experiment matrix", blocks)


# -- the seed's questions -------------------------------------------------------------------

@SECTIONS.register("gradients", description="Do PackNet's gradients vanish?", needs=("gradients",))
def gradients_section(results: Results) -> Section | None:
    frames = []
    for m in _models(results.first("gradients")):
        for layer in m.get("layers") or []:
            g = layer.get("grad_norm") or {}
            med = g.get("median") if isinstance(g, dict) else None
            if med is not None and med > 0:
                frames.append({"model": m.get("name"), "depth": layer.get("depth"), "median gradient L2 norm": med})
    extra: list[Any] = []
    if frames:
        fig, ax = plt.subplots(figsize=(9, 4))
        sns.lineplot(pd.DataFrame(frames), x="depth", y="median gradient L2 norm", hue="model", marker="o", ax=ax)
        ax.set_yscale("log")
        ax.set(xlabel="layer depth (0 = input side)", ylabel="median gradient L2 norm (log scale)")
        extra.append(figure_from_matplotlib(fig, "Median gradient norm per layer, input to output", "depth"))
    extra += _embedded(results, "gradients", "gradients_heatmap_*.png", "Gradient norm per layer and step")
    return _answer_section("gradients", "Do PackNet's gradients vanish?", results, extra)


@SECTIONS.register("collapse", description="Does the prediction collapse to the mean?", needs=("collapse",))
def collapse_section(results: Results) -> Section | None:
    rows = []
    for m in _models(results.first("collapse")):
        for h in m.get("history") or []:
            if isinstance(h, dict) and h.get("step") is not None:
                rows.append({"model": m.get("name"), "step": h.get("step"),
                             "median std ratio": h.get("median_std_ratio"), "collapsed share": h.get("collapsed_share")})
    extra: list[Any] = []
    if rows:
        df = pd.DataFrame(rows)
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        sns.lineplot(df, x="step", y="median std ratio", hue="model", marker="o", ax=axes[0])
        axes[0].axhline(0.1, ls="--", c="grey")
        axes[0].set(xlabel="training step", ylabel="prediction std / ground-truth std")
        sns.lineplot(df, x="step", y="collapsed share", hue="model", marker="o", ax=axes[1])
        axes[1].set(xlabel="training step", ylabel="share of collapsed images", ylim=(-0.05, 1.05))
        extra.append(figure_from_matplotlib(fig, "Collapse statistics over training (dashed: collapse threshold)", "steps"))
    extra += _embedded(results, "collapse", "collapse_*.png", "Collapse analysis figure")
    return _answer_section("collapse", "Does the prediction collapse to the mean?", results, extra)


@SECTIONS.register("packing", description="Does packing preserve information?", needs=("autoencoder",))
def packing_section(results: Results) -> Section | None:
    rows = _autoencoder_rows(results.first("autoencoder"))
    extra: list[Any] = []
    pts = [{"architecture": r.get("arch", r.get("name")), "levels": r.get("levels", r.get("level")),
            "PSNR (dB)": r.get("psnr")} for r in rows if r.get("psnr") is not None]
    if pts:
        fig, ax = plt.subplots(figsize=(8, 4))
        sns.lineplot(pd.DataFrame(pts), x="levels", y="PSNR (dB)", hue="architecture", marker="o", ax=ax)
        ax.set(xlabel="downsampling levels (bottleneck = input / 2^levels per side)", ylabel="held-out PSNR (dB)")
        extra.append(figure_from_matplotlib(fig, "Autoencoder reconstruction PSNR against depth of the bottleneck", "psnr"))
    if rows:
        extra.append(Table([{k: r.get(k) for k in ("arch", "levels", "params", "macs", "mse", "psnr", "ssim", "steps")}
                            for r in rows], "autoencoder.json"))
    extra += _embedded(results, "autoencoder", "autoencoder_reconstructions*.png", "Reconstructions next to originals")
    return _answer_section("packing", "Does packing preserve information?", results, extra)


@SECTIONS.register("noise", description="How noisy are the batches?", needs=("noise",))
def noise_section(results: Results) -> Section | None:
    extra = _embedded(results, "noise", "noise*.png", "Gradient noise scale and per-batch loss")
    return _answer_section("noise", "How noisy are the batches?", results, extra)


@SECTIONS.register("cost", description="What does the extra capacity cost?", needs=("complexity",))
def cost_section(results: Results) -> Section | None:
    return _answer_section("cost", "What does the extra capacity cost?", results, [])


# -- attribution ----------------------------------------------------------------------------

@SECTIONS.register("attribution", description="Attribution and receptive fields", needs=("attribution",))
def attribution_section(results: Results) -> Section | None:
    doc = results.first("attribution")
    models = _models(doc)
    if not models:
        return None
    rows = []
    for m in models:
        erf = m.get("erf") if isinstance(m.get("erf"), dict) else m
        rows.append({"model": m.get("name"), "ERF radius 50% (px)": erf.get("radius_50"),
                     "ERF radius 95% (px)": erf.get("radius_95"), "method": (doc or {}).get("method")})
    blocks: list[Any] = [Paragraph("Effective receptive field: the input-gradient of the centre output pixel; "
                                   "the radius holds the stated share of its absolute mass."),
                         Table(rows, "attribution.json")]
    blocks += _embedded(results, "attribution", "attribution_*.png", "Attribution")
    return Section("attribution", "Attribution and receptive fields", blocks)


# -- properties, evaluations, provenance ----------------------------------------------------

@SECTIONS.register("properties", description="pack/unpack properties", needs=("properties",))
def properties_section(results: Results) -> Section | None:
    doc = results.first("properties")
    laws = (doc or {}).get("laws") if isinstance(doc, dict) else None
    if not laws:
        return None
    rows = [{"law": l.get("name"), "statement": l.get("statement"), "examples": l.get("examples"),
             "holds": "yes" if l.get("passed") else "NO"} for l in laws]
    failed = sum(1 for l in laws if not l.get("passed"))
    text = (f"All {len(laws)} laws held on every generated example." if not failed
            else f"{failed} of {len(laws)} laws failed; see the counterexamples in properties.json.")
    return Section("properties", "pack/unpack properties", [Paragraph(text), Table(rows, "properties.json")])


@SECTIONS.register("evaluation", description="Evaluation metrics and training runs", needs=("eval", "train"))
def evaluation_section(results: Results) -> Section | None:
    blocks: list[Any] = []
    evals = []
    for found in results.all("eval"):
        d = found.data if isinstance(found.data, dict) else {}
        metrics = d.get("metrics") or {}
        evals.append({"run": found.path.parent.name, "dataset": d.get("dataset"), "protocol": d.get("protocol"),
                      "images": d.get("n_images"), **{k: metrics.get(k) for k in
                                                      ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10",
                                                       "delta1", "delta2", "delta3")}})
    if evals:
        blocks.append(Table(evals, "eval.json"))
    trains = []
    for found in results.all("train"):
        d = found.data if isinstance(found.data, dict) else {}
        trains.append({"run": found.path.parent.name, "model": d.get("model"), "steps": d.get("steps"),
                       "mean epoch loss": _last(d.get("mean_epoch_loss")), "per-batch loss std": d.get("batch_loss_std"),
                       "images/s": d.get("images_per_s")})
    if trains:
        blocks.append(Table(trains, "train.json"))
    if results.metrics_logs:
        frames = []
        for log in results.metrics_logs:
            rows = read_metrics_log(log)
            if rows:
                frames.append(pd.DataFrame({"step": [r.get("step") for r in rows], "loss": [r.get("loss") for r in rows],
                                            "run": log.parent.name}))
        if frames:
            fig, ax = plt.subplots(figsize=(9, 4))
            sns.lineplot(pd.concat(frames), x="step", y="loss", hue="run", ax=ax)
            ax.set(xlabel="training step", ylabel="training loss")
            blocks.append(figure_from_matplotlib(fig, "Training loss per step (metrics.jsonl)", "training"))
    return Section("evaluation", "Training runs and evaluation", blocks) if blocks else None


@SECTIONS.register("provenance", description="Run provenance", needs=())
def provenance_section(results: Results) -> Section | None:
    rows = []
    for found in results.configs:
        if not isinstance(found.data, dict):
            continue
        for command, entry in found.data.items():
            prov = (entry or {}).get("provenance") or {}
            rows.append({"folder": str(found.path.parent), "command": command,
                         "commit": (prov.get("git_commit") or "")[:10], "probe": prov.get("probe_version"),
                         "torch": prov.get("torch"), "device": prov.get("device_name") or prov.get("device"),
                         "seed": prov.get("seed"), "time (UTC)": prov.get("time_utc")})
    if not rows:
        return None
    return Section("provenance", "Run provenance", [Table(rows, "config.json of every run folder")])
