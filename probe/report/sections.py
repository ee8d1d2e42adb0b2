"""Report sections: each registered builder turns read results into blocks, or None when there is nothing to show.

A section is registered by the module that produces the results it shows, next to
them (the sections of core results, properties, evaluations and provenance, are here)::

    @SECTIONS.register("gradients", description="Do PackNet's gradients vanish?", needs=(GradientsResult,), order=30)
    def gradients_section(results: Results) -> Section | None: ...

``needs`` names the result classes the section reads: when none of their files was
found the section is listed as not run ("needs gradients.json"), and when they were
found but could not be read, with the reason.  ``order`` places the section in the
report.  The generator loops over the registry and never changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from probe.evaluate import EvalResult
from probe.laws import PropertiesResult
from probe.registry import Registry
from probe.report.answers import QUESTIONS
from probe.report.collect import Results
from probe.report.document import AnswerBlock, Block, Figure, Paragraph, Section, Table, figure_from_matplotlib
from probe.results import Result
from probe.training.summary import TrainSummary, read_loss_curve

Builder = Callable[[Results], "Section | None"]
SECTIONS: Registry[Builder] = Registry("report section")


def embedded_figures(results: Results, cls: type[Result], pattern: str, caption: str) -> list[Block]:
    """PNG figures the analysis itself wrote next to the JSON the section shows (the first found; read, never
    regenerated).  Copies in run folders below it (one per seed, or a probe's) are not repeated."""
    figs: list[Block] = []
    for loaded in results.all(cls)[:1]:
        for png in sorted(Path(loaded.path).parent.glob(pattern)):
            figs.append(Figure(png.read_bytes(), f"{caption} ({png.name})", png.stem))
    return figs


def objective(summary: TrainSummary) -> str:
    """What a run's training loss measures: ``"supervised densedepth (finest)"``."""
    return f"{summary.objective} {summary.loss} ({summary.loss_scales})"


def run_label(path: Path) -> str:
    """The run folder a file sits in, by name; a seed's folder with its experiment (``exp1/seed_0``)."""
    folder = Path(path).parent
    return f"{folder.parent.name}/{folder.name}" if folder.name.startswith("seed_") else folder.name


def answer_section(key: str, title: str, results: Results, extra: list[Block]) -> Section | None:
    """The section of question ``key``: its answer (rule, verdict, evidence) followed by ``extra`` blocks.

    The section is titled by the answer's own question, which names the models under study
    ("Do unet's gradients vanish?"); ``title`` is the registered wording, used when the answer has none.
    """
    answer = QUESTIONS.get(key)(results)
    if answer is None:
        return None
    return Section(key, answer.question or title, [AnswerBlock(answer), *extra])


# -- properties, evaluations, provenance: the sections of core results ----------------------------


@SECTIONS.register("properties", description="pack/unpack properties", needs=(PropertiesResult,), order=90)
def properties_section(results: Results) -> Section | None:
    doc = results.first(PropertiesResult)
    if doc is None or not doc.laws:
        return None
    rows = [
        {"law": law.name, "statement": law.statement, "examples": law.examples, "holds": "yes" if law.passed else "NO"}
        for law in doc.laws
    ]
    failed = sum(1 for law in doc.laws if not law.passed)
    text = (
        f"All {len(doc.laws)} laws held on every generated example."
        if not failed
        else f"{failed} of {len(doc.laws)} laws failed; see the counterexamples in properties.json."
    )
    return Section("properties", "pack/unpack properties", [Paragraph(text), Table(rows, "properties.json")])


@SECTIONS.register(
    "evaluation", description="Evaluation metrics and training runs", needs=(EvalResult, TrainSummary), order=100
)
def evaluation_section(results: Results) -> Section | None:
    import pandas as pd

    from probe.plotting import plt, sns

    blocks: list[Block] = []
    evals: list[dict[str, Any]] = []
    for loaded in results.all(EvalResult):
        d = loaded.result
        evals.append(
            {
                "run": run_label(loaded.path),
                "dataset": d.dataset,
                "protocol": d.protocol,
                "images": d.n_images,
                **{
                    k: d.metrics.get(k)
                    for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")
                },
            }
        )
    if evals:
        blocks.append(Table(evals, "eval.json"))
    trains = [
        {
            "run": run_label(loaded.path),
            "model": s.model,
            "objective": objective(s),
            "steps": s.steps,
            "mean epoch loss": s.mean_epoch_loss,
            "per-batch loss std": s.batch_loss_std,
            "images/s": s.images_per_s,
        }
        for loaded in results.all(TrainSummary)
        for s in [loaded.result]
    ]
    if trains:
        blocks.append(Table(trains, "train.json: a training loss compares only with one of the same objective"))
    frames = []
    for log in results.metrics_logs:
        steps, losses = read_loss_curve(log)
        if steps:
            frames.append(pd.DataFrame({"step": steps, "loss": losses, "run": run_label(log)}))
    if len({row["objective"] for row in trains}) > 1:  # curves of different objectives are not drawn together
        frames = []
        blocks.append(Paragraph("The runs trained on different objectives: their loss curves are not overlaid."))
    if frames:
        fig, ax = plt.subplots(figsize=(9, 4))
        sns.lineplot(pd.concat(frames), x="step", y="loss", hue="run", ax=ax)
        ax.set(xlabel="training step", ylabel="training loss")
        blocks.append(figure_from_matplotlib(fig, "Training loss per step (metrics.jsonl)", "training"))
    return Section("evaluation", "Training runs and evaluation", blocks) if blocks else None


@SECTIONS.register("provenance", description="Run provenance", needs=(), order=110)
def provenance_section(results: Results) -> Section | None:
    rows = []
    for path, records in results.records:
        for command, record in records.items():
            prov = record.provenance
            rows.append(
                {
                    "folder": str(path.parent),
                    "command": command,
                    "commit": (prov.git_commit or "")[:10],
                    "probe": prov.probe_version,
                    "torch": prov.torch,
                    "device": prov.device_name or prov.device,
                    "seed": prov.seed,
                    "time (UTC)": prov.time_utc,
                }
            )
    if not rows:
        return None
    return Section("provenance", "Run provenance", [Table(rows, "config.json of every run folder")])
