"""Results built by the real Result classes (and the analyses' own statistics), for the schema and report tests.

Every builder goes through the code that produces the numbers in a real run where that
code is cheap (the gradient rule, collapse statistics, the noise estimator, ERF radii);
only what needs a trained network (PSNRs, losses, latencies) is given as a parameter.
:data:`EXAMPLES` holds one instance of every Result class (tests check it stays complete).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch

from analyses.attribution import (AttributionConfig, AttributionResult, AttributionStats, ModelAttribution, Target,
                                  mass_radii)
from analyses.autoencoder import AutoencoderConfig, AutoencoderResult, AutoencoderRun, ModelCost
from analyses.collapse import CollapseResult, ModelCollapse, measure_prediction
from analyses.complexity import (BlockCost, ComplexityConfig, ComplexityResult, Latency, ModelComplexity,
                                 TrainingMemory)
from analyses.gradients import GradientsResult, LayerGradients, ModelGradients
from analyses.noise import ModelNoise, NoiseResult, NoiseScaleEstimator
from probe.data.samples import Samples
from probe.evaluate import EvalResult
from probe.evaluate_scale import ScaleEvaluation, ratio_summary
from probe.experiments import ExperimentEval, ExperimentRow, SeedStudyConfig, SeedStudyResult
from probe.jobs import Launch
from probe.image_quality import ImageQuality
from probe.io import write_json
from probe.laws import LawResult, PropertiesResult
from probe.results import Result
from probe.evaluate_pose import PoseEvaluation
from probe.roles import assign_roles
from probe.self_supervised_study import (NoiseLevel, SelfSupervisedRun, SelfSupervisedStudyConfig,
                                         SelfSupervisedStudyResult, summarise)
from probe.study import StepRecord, StudyLog
from probe.training.summary import BadItems, TrainSummary, summarise_metrics


def write(result: Result, folder: Path) -> Path:
    """The result's JSON exactly as ``save`` writes it (figures left out: the report reads JSON only)."""
    return write_json(folder / f"{result.name}.json", result.to_json())


# -- gradients: layers given by their median gradient norm, judged by the real rule ---------------

def model_gradients(name: str, medians: list[float], steps: int = 3) -> ModelGradients:
    layers = [LayerGradients.of(f"l{i}", "Conv2d", i, 100, [g] * steps, [1.0] * steps, [1e-4] * steps)
              for i, g in enumerate(medians)]
    return ModelGradients.of(name, list(range(1, steps + 1)), layers)


def roles(names: list[str], baselines: tuple[str, ...] = ()):
    """probe.roles' rules on ``names``: ``baselines`` given, the others are under study; else the defaults."""
    return assign_roles([n for n in names if n not in baselines], list(baselines))


def gradients(medians_by_model: dict[str, list[float]], baselines: tuple[str, ...] = ()) -> GradientsResult:
    return GradientsResult(models=[model_gradients(n, m) for n, m in medians_by_model.items()],
                           roles=roles(list(medians_by_model), baselines),
                           config={"models": list(medians_by_model), "steps": 3})


# -- collapse: per image, the prediction keeps `factor` of the ground truth's variation -------------

def model_collapse(name: str, factors: list[float], steps: tuple[int, ...] = (0, 10)) -> ModelCollapse:
    """``pred = mean(gt) + factor * (gt - mean(gt))`` per image: factor 0 is the image-mean predictor."""
    gen = torch.Generator().manual_seed(0)
    n = len(factors)
    gt = 1.0 + 4.0 * torch.rand(n, 1, 8, 12, generator=gen)
    valid = torch.ones_like(gt, dtype=torch.bool)
    batch = Samples(torch.rand(n, 3, 8, 12, generator=gen), gt, valid, [f"img{i}" for i in range(n)], 10.0)
    mean = gt.mean(dim=(2, 3), keepdim=True)
    scale = torch.tensor(factors, dtype=gt.dtype).view(n, 1, 1, 1)
    flat = mean.expand_as(gt)
    measurements = [measure_prediction(flat if step == steps[0] else mean + scale * (gt - mean), batch, step)
                    for step in steps]
    return ModelCollapse.of(name, "example", batch, measurements)


def collapse(factors_by_model: dict[str, list[float]], baselines: tuple[str, ...] = ()) -> CollapseResult:
    return CollapseResult(models=[model_collapse(n, f) for n, f in factors_by_model.items()],
                          roles=roles(list(factors_by_model), baselines), config={"every": 10})


# -- noise: the real estimator on given measurements and per-batch losses -----------------------

def jittered_losses(mean: float, jitter: float, trend: float = 0.0, steps: int = 40) -> list[float]:
    """``mean + trend * (1 - t/steps) +- jitter``, alternating: a scatter of ``jitter`` around a falling line."""
    return [mean + trend * (1 - t / steps) + jitter * (-1) ** t for t in range(steps)]


def model_noise(name: str, losses: list[float], small_sq: float = 3.0, big_sq: float = 1.5) -> ModelNoise:
    est = NoiseScaleEstimator(2, 8)
    for i in range(4):
        est.update(small_sq * (1 + 0.01 * i), big_sq)
    return ModelNoise.of(name, 4, est, [1, 2, 3, 4], list(range(1, len(losses) + 1)), losses)


def noise(losses_by_model: dict[str, list[float]], baselines: tuple[str, ...] = ()) -> NoiseResult:
    return NoiseResult(models=[model_noise(n, losses) for n, losses in losses_by_model.items()],
                       roles=roles(list(losses_by_model), baselines), config={"small_batch": 2, "big_batch": 8})


# -- autoencoder: PSNR per level for a packing and a max-pool autoencoder ------------------------

def autoencoder_run(arch: str, levels: int, psnr: float, params: int = 1000) -> AutoencoderRun:
    quality = ImageQuality(mse=10 ** (-psnr / 10) if math.isfinite(psnr) else 0.0, psnr=psnr, ssim=0.9, images=4)
    return AutoencoderRun.of(arch, levels, ModelCost(params, 10 * params), (16, 4, 4), 0.25, quality, 10, 1.5, 0.01)


def autoencoder(pack_psnr: list[float], pool_psnr: list[float]) -> AutoencoderResult:
    runs = []
    for level, (p, q) in enumerate(zip(pack_psnr, pool_psnr), start=1):
        runs += [autoencoder_run("pack3d", level, p), autoencoder_run("maxpool", level, q)]
    config = AutoencoderConfig(archs=["pack3d", "maxpool"], levels=list(range(1, len(pack_psnr) + 1)))
    return AutoencoderResult(config=config, device="cpu", input_size=(32, 32), metrics_on="synthetic test split",
                             architectures={"pack3d": "packing", "maxpool": "max-pool"}, runs=runs, roles=roles([]))


# -- complexity, experiments: the published parameter counts, latencies given ------------------

def model_complexity(name: str, params: int, macs: int, forward_backward_ms: float) -> ModelComplexity:
    return ModelComplexity(
        name=name, input_size=[192, 640], options={"width": 1.0}, params=params, trainable_params=params, macs=macs,
        macs_by_operator={"conv": macs}, unsupported_ops={"aten::elu": 3}, flops_torch=2 * macs,
        by_module=[BlockCost("encoder", params // 2, macs // 2), BlockCost("decoder", params - params // 2,
                                                                           macs - macs // 2)],
        activation_count=10**6, latency=Latency("cpu", forward_backward_ms / 3, forward_backward_ms, 1, 0, 1),
        peak_memory_bytes=None, peak_memory_forward_bytes=None, peak_memory_reason="not measured on cpu",
        training_memory=TrainingMemory(
            batch_size=1, precision="fp32", activation_checkpointing=False, parameters=params,
            weight_bytes=4 * params, gradient_bytes=4 * params, optimizer_bytes=8 * params,
            activation_bytes=3 * 2**30, activation_bytes_per_image=3.0 * 2**30, input_bytes=4 * 3 * 192 * 640,
            total_bytes=16 * params + 3 * 2**30 + 4 * 3 * 192 * 640,
            total_gb=(16 * params + 3 * 2**30 + 4 * 3 * 192 * 640) / 2**30, peak_over_estimate=None),
        measure_seconds=1.0)


def complexity() -> ComplexityResult:
    return ComplexityResult(config=ComplexityConfig(models=["packnet_b", "densedepth"]), device="cpu",
                            device_name="cpu", models=[model_complexity("packnet_b", 124164580, 200_000_000_000, 30.0),
                                                       model_complexity("densedepth", 42657689, 50_000_000_000, 12.0)],
                            roles=roles(["packnet_b", "densedepth"]))


def experiment_row(id: str, model: str, curve: list[float], seed_mean_loss: float | None = None,
                   evaluated: bool = True) -> ExperimentRow:
    metrics = summarise_metrics([{"step": i + 1, "epoch": 0, "loss": v, "seconds": 0.5, "images_per_s": 8.0}
                                 for i, v in enumerate(curve)])
    scores = ExperimentEval("nyu", 2, {"abs_rel": 0.3, "rmse": 1.2, "delta1": 0.5}) if evaluated else None
    return ExperimentRow(id=id, title=f"{model} experiment", seed_experiment=None if model == "densedepth" else 1,
                         model=model, options={}, params=100, steps=metrics.steps,
                         mean_epoch_loss=metrics.mean_epoch_loss, batch_loss_std=metrics.batch_loss_std,
                         first100_mean_loss=metrics.first100_mean_loss, final_loss=metrics.final_loss,
                         seconds_per_epoch=metrics.seconds_per_epoch, images_per_s=metrics.images_per_s,
                         loss_curve=curve, seed_mean_loss=seed_mean_loss, seed_note="", run_dir=f"runs/{id}",
                         eval=scores)


def experiments() -> SeedStudyResult:
    return SeedStudyResult(config=SeedStudyConfig(quick=True), experiments=[
        experiment_row("densedepth", "densedepth", [0.9, 0.6, 0.5, 0.4], seed_mean_loss=0.401),
        experiment_row("exp1_packnet_b", "packnet_slim_b", [0.9, 0.7, 0.65, 0.6], evaluated=False)],
        roles=roles(["densedepth", "packnet_slim_b"]), launch=Launch(parallel=2, threads=1))


# -- the rest: attribution, properties, eval, train, study ---------------------------------------

def model_attribution(name: str) -> ModelAttribution:
    mass = torch.arange(64, dtype=torch.float64).reshape(8, 8) % 5
    radii = mass_radii(mass, (3.5, 3.5))
    stats = AttributionStats("saliency", 12.0, -1.5, (3, 4), 0.5)
    return ModelAttribution(name, "zoo (random init)", "inverse", (8, 8), (1.0, 1.0), 1234, radii,
                            Target.pixel(4, 4), stats, radii)


def attribution() -> AttributionResult:
    return AttributionResult(config=AttributionConfig(models=["packnet_b", "densedepth"], method="saliency"),
                             device="cpu", method="saliency", method_description="absolute input gradient",
                             target="centre pixel of each model's output", images=["img0"], input_size=(8, 8),
                             models=[model_attribution("packnet_b"), model_attribution("densedepth")],
                             roles=roles(["packnet_b", "densedepth"]))


def properties(passed: bool = True) -> PropertiesResult:
    laws = [LawResult("unpack_inverts_pack", "unpack(pack(x)) == x", 200, True, None, 0.1234),
            LawResult("pack_is_a_permutation", "pack permutes", 200, passed, None if passed else "x=...", 0.2)]
    return PropertiesResult.of(laws, max_examples=200, seed=0)


def evaluation() -> EvalResult:
    metrics = {"abs_rel": 0.25, "rmse": 1.1, "delta1": 0.6}
    return EvalResult(dataset="synthetic", split="test", protocol="nyu", protocol_description="Eigen crop",
                      model="packnet_slim_b", output_space="inverse", max_depth=10.0, n_images=2,
                      n_images_without_pixels=0, n_pixels=1000, metrics=metrics, metrics_image_mean=metrics,
                      options={"flip_tta": False}, protocol_choices={"crop": "eigen", "clamp_m": [0.001, 10.0]},
                      median_ratio=None,
                      per_image=[{"name": "a", "n_pixels": 500, "median_ratio": None, "abs_rel": 0.2},
                                 {"name": "b", "n_pixels": 0, "median_ratio": None, "abs_rel": None}],
                      seconds=1.0, checkpoint="runs/x")


def train_summary(curve: tuple[float, ...] = (0.9, 0.7, 0.6)) -> TrainSummary:
    records = [{"step": i + 1, "epoch": 0, "loss": v, "seconds": 0.5, "images_per_s": 8.0}
               for i, v in enumerate(curve)]
    return TrainSummary(**vars(summarise_metrics(records)), model="packnet_slim_b", model_options={}, width=0.0625,
                        params=100, dataset="synthetic", loss="densedepth", loss_scales="finest", objective="supervised", velocity_weight=0.0,
                        objective_params=0, batch_size=4, precision="fp32", device="cpu",
                        resumed_from_step=None, bad_items=BadItems(0, [], ""), world_size=1,
                        replica_weights_sha256=["abc"], replicas_identical=True)


# -- self-supervised: scale evaluations with a NaN ratio, summarised over seeds by the real code ----

def scale_evaluation(scale: float = 2.0, abs_rel_scaled: float = 0.1) -> ScaleEvaluation:
    """A model off by ``scale``: per-image ratios ``median(gt)/median(pred)`` near ``1/scale``, one image empty."""
    ratios = [1 / scale, 1.02 / scale, float("nan"), 0.98 / scale]
    return ScaleEvaluation(dataset="synthetic_video", split="test", protocol="none", model="densedepth", n_images=4,
                           metrics={"abs_rel": abs(scale - 1), "delta1": 0.0},
                           metrics_median_scaled={"abs_rel": abs_rel_scaled, "delta1": 0.9},
                           constant_median_scaled={"abs_rel": 0.3, "delta1": 0.5}, ratio=ratio_summary(ratios),
                           per_image_ratio=ratios, options={"max_depth": 10.0, "flip_tta": False, "batch_size": 4})


def self_supervised_run(seed: int, velocity_weight: float, noise: NoiseLevel, scale: float) -> SelfSupervisedRun:
    label = f"velocity_{noise.label}" if velocity_weight > 0 else "no_velocity"
    return SelfSupervisedRun(id=f"densedepth_{label}_seed{seed}", model="densedepth", seed=seed,
                             velocity_weight=velocity_weight, noise=noise, params=100, steps=2, seconds=1.0,
                             reprojection_first=0.3, reprojection_last=0.2,
                             pose_scale_last=None if velocity_weight == 0 else 1.1, scale=scale_evaluation(scale),
                             run_dir=f"runs/ssl/densedepth_{label}_seed{seed}",
                             pose=None if velocity_weight == 0 else PoseEvaluation(
                                 offsets=[-1, 1], n_windows=4,
                                 per_source=[{"translation_ratio": 1.02, "translation_angle_deg": 3.5,
                                              "rotation_error_deg": 0.4, "rotation_deg": 1.2},
                                             {"translation_ratio": 0.97, "translation_angle_deg": 141.0,
                                              "rotation_error_deg": 0.6, "rotation_deg": 1.2}]))


def self_supervised() -> SelfSupervisedStudyResult:
    """Two seeds without velocity (off by 3x), one seed with velocity under noise (a spread of NaN)."""
    noisy = NoiseLevel(std=0.2)
    config = SelfSupervisedStudyConfig(models=("densedepth",), seeds=(0, 1), noise_levels=(noisy,), width=0.0625)
    runs = [self_supervised_run(0, 0.0, NoiseLevel(), 3.0), self_supervised_run(1, 0.0, NoiseLevel(), 2.8),
            self_supervised_run(0, 0.1, noisy, 1.05)]
    return SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs))


def study_log() -> StudyLog:
    return StudyLog([StepRecord("complexity", "ran", 1.5, ["runs/study/complexity.json"]),
                     StepRecord("properties", "reused", 0.0, [])])


#: one instance of every Result class, with NaN, +inf and None values where the schema allows them
EXAMPLES: dict[type[Result], Callable[[], Result]] = {
    GradientsResult: lambda: gradients({"packnet_b": [1e-4, 1e-6, float("nan"), 1.0], "densedepth": [1.0] * 4}),
    CollapseResult: lambda: collapse({"packnet_b": [0.0, 0.0, 0.0, 1.0], "densedepth": [1.0, 1.0, 1.0, 1.0]}),
    NoiseResult: lambda: noise({"packnet_b": jittered_losses(0.5, 0.2), "densedepth": jittered_losses(0.4, 0.05)}),
    AutoencoderResult: lambda: autoencoder([30.0, float("inf")], [24.0, 20.0]),
    ComplexityResult: complexity,
    SeedStudyResult: experiments,
    AttributionResult: attribution,
    PropertiesResult: lambda: properties(passed=False),
    EvalResult: evaluation,
    TrainSummary: train_summary,
    StudyLog: study_log,
    ScaleEvaluation: scale_evaluation,
    SelfSupervisedStudyResult: self_supervised,
}
