"""Run folders holding result files written by the real Result classes (tests/result_examples.py)."""

from __future__ import annotations

from pathlib import Path

from probe.runs import prepare_run_dir
from probe.training import StepStats
from probe.io import append_jsonl
from tests import result_examples as ex

# the numbers each question is asked about in a full run
GRADIENTS = {"packnet_b": [1e-4, 1e-6, 1e-6, 1.0], "densedepth": [1.0, 1.0, 1.0, 1.0]}
COLLAPSE = {"packnet_b": [0.0] * 8, "densedepth": [1.0] * 8}  # every PackNet image flat
NOISE = {"packnet_b": ex.jittered_losses(0.5, 0.2), "densedepth": ex.jittered_losses(0.5, 0.05)}
PACK_PSNR, POOL_PSNR = [30.0, 25.0], [24.0, 20.0]
FIT = {"packnet_b": {64: 0.95}, "densedepth": {64: 0.3}}  # PackNet cannot fit its 64 images, DenseDepth can


def full_run(root: Path) -> Path:
    """A study folder with every analysis, the experiment matrix, a training run and its evaluation."""
    for result in (ex.gradients(GRADIENTS), ex.collapse(COLLAPSE), ex.autoencoder(PACK_PSNR, POOL_PSNR),
                   ex.noise(NOISE), ex.complexity(), ex.experiments(), ex.properties(), ex.attribution(),
                   ex.self_supervised(), ex.fit(FIT, seeds=(0, 1, 2))):
        ex.write(result, root)
    prepare_run_dir(root, "study", {"quick": True}, seed=0)
    train_run(root / "densedepth")
    return root


def train_run(folder: Path) -> Path:
    """A training run's folder: metrics.jsonl, train.json, config.json and its evaluation in eval/."""
    summary = ex.train_summary()
    for step, loss in enumerate(summary.loss_curve, start=1):
        append_jsonl(folder / "metrics.jsonl", StepStats(step, 0, loss, seconds=0.5, images_per_s=8.0).to_record())
    ex.write(summary, folder)
    ex.write(ex.evaluation(), folder)
    prepare_run_dir(folder, "train", {"model": summary.model}, seed=0)
    return folder
