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

from analyses.attribution import (
    AttributionConfig,
    AttributionResult,
    AttributionStats,
    ModelAttribution,
    Target,
    mass_radii,
)
from analyses.autoencoder import AutoencoderConfig, AutoencoderResult, AutoencoderRun, ModelCost
from analyses.collapse import CollapseResult, ImageFade, LayerShare, ModelCollapse, fades_at, measure_prediction
from analyses.fit import FitResult, FitRun
from analyses.complexity import BlockCost, ComplexityConfig, ComplexityResult, Latency, ModelComplexity, TrainingMemory
from analyses.gradients import GradientsResult, LayerGradients, ModelGradients
from analyses.noise import ModelNoise, NoiseResult, NoiseScaleEstimator
from probe.data.samples import Samples
from probe.evaluate import EvalResult
from probe.evaluate_consistency import ConsistencyEvaluation
from probe.evaluate_scale import DepthBin, ScaleEvaluation, ratio_summary
from probe.observability import Observability
from probe.experiments import Experiment, ExperimentRun, SeedStudyConfig, SeedStudyResult, experiment_row
from probe.heldout import HeldOutSummary, image_verdict, learned_verdict, structure_verdict
from probe.image_quality import ImageQuality
from probe.io import write_json
from probe.jobs import Launch
from probe.laws import LawResult, PropertiesResult
from probe.results import Result
from probe.evaluate_pose import PoseEvaluation
from probe.roles import assign_roles
from probe.rules import IGNORES_IMAGE_BELOW
from probe.self_supervised_study import (
    NoiseLevel,
    SelfSupervisedRun,
    SelfSupervisedStudyConfig,
    SelfSupervisedStudyResult,
    summarise,
)
from probe.stats import paired_bootstrap_ratio
from probe.study import StepRecord, StudyLog
from probe.training.summary import BadItems, TrainSummary, summarise_metrics


def write(result: Result, folder: Path) -> Path:
    """The result's JSON exactly as ``save`` writes it (figures left out: the report reads JSON only)."""
    return write_json(folder / f"{result.name}.json", result.to_json())


# -- held-out scores: a model at `ratio` x the constant predictor's abs_rel, by the real rule --------------

def held_out(ratio: float = 0.4, scale_matched: float | None = None, seed: int = 0, n: int = 12) -> HeldOutSummary:
    """Per-image abs_rel of the constant predictor around 0.3 and of the model ``ratio`` times it (a few percent of
    scatter that depends on ``seed``), scored by :func:`probe.heldout.learned_verdict`."""
    constant = [0.25 + 0.1 * ((7 * i) % 5) / 5 for i in range(n)]
    jitter = [1 + 0.04 * (((3 * i + seed) % 3) - 1) for i in range(n)]
    model = [c * ratio * j for c, j in zip(constant, jitter)]
    scaled = [c * (ratio if scale_matched is None else scale_matched) * j for c, j in zip(constant, reversed(jitter))]
    ratio_estimate, learned = learned_verdict(model, constant, resamples=200, seed=seed)
    scale_estimate = paired_bootstrap_ratio(scaled, constant, resamples=200, seed=seed)
    blind = [0.9 * c for c in constant]  # the training split's mean depth map: a little better than the constant
    image_estimate = paired_bootstrap_ratio(scaled, blind, resamples=200, seed=seed)
    return HeldOutSummary(n_images=n, loss=0.2 * ratio, abs_rel=sum(model) / n, delta1=0.5,
                          constant_abs_rel=sum(constant) / n, ratio=ratio_estimate,
                          scale_matched_ratio=scale_estimate, learned=learned,
                          structure_learned=structure_verdict(scale_estimate),
                          per_image_loss=[0.2 * ratio * j for j in jitter], per_image_abs_rel=model,
                          mean_map_abs_rel=sum(blind) / n, image_ratio=image_estimate,
                          reads_image=image_verdict(image_estimate))


# -- gradients: layers given by their median gradient norm, judged by the real rule ---------------

def model_gradients(name: str, medians: list[float], steps: int = 3, seed: int = 0,
                    learned: float | None = 0.4) -> ModelGradients:
    """Layers with ``medians`` as |g| (|w| = 1), a few percent apart per seed; held out at ``learned`` x the
    constant predictor (None: not measured)."""
    wobble = 1 + 0.05 * seed
    layers = [LayerGradients.of(f"l{i}", "Conv2d", i, 100, [g * wobble ** (i % 2)] * steps, [1.0] * steps,
                                [1e-4] * steps) for i, g in enumerate(medians)]
    score = held_out(learned, seed=seed) if learned is not None else None
    return ModelGradients.of(name, list(range(1, steps + 1)), layers, [], seed, score)


def roles(names: list[str], baselines: tuple[str, ...] = ()):
    """probe.roles' rules on ``names``: ``baselines`` given, the others are under study; else the defaults."""
    return assign_roles([n for n in names if n not in baselines], list(baselines))


def gradients(medians_by_model: dict[str, list[float]], seeds: tuple[int, ...] = (0, 1, 2),
              learned: dict[str, float | None] | None = None, baselines: tuple[str, ...] = ()) -> GradientsResult:
    learned = learned or {}
    models = [model_gradients(n, m, seed=s, learned=learned.get(n, 0.4))
              for n, m in medians_by_model.items() for s in seeds]
    return GradientsResult.of(models, roles(list(medians_by_model), baselines),
                              config={"models": list(medians_by_model), "steps": 3})


# -- collapse: per image, the prediction keeps `factor` of the ground truth's variation -------------

def model_collapse(name: str, factors: list[float], steps: tuple[int, ...] = (0, 10), seed: int = 0,
                   learned: float | None = 0.4, scale: float = 1.0, fixed_map: bool = False) -> ModelCollapse:
    """``pred = scale * (mean(gt) + factor * (gt - mean(gt)))`` per image: factor 0 is the image-mean predictor.

    The images' scenes differ in size (each image's depth is scaled by 1 to 2.5), as real ones do.  With
    ``fixed_map`` the last prediction is one map for every image (the per-pixel geometric mean of the ground truth):
    a model that ignores the image.  The fade is a profile through two blocks ending at the prediction's share.
    """
    gen = torch.Generator().manual_seed(seed)
    n = len(factors)
    sizes = torch.tensor([1.0 + 0.5 * (i % 4) for i in range(n)]).view(n, 1, 1, 1)
    gt = sizes * (1.0 + 4.0 * torch.rand(n, 1, 8, 12, generator=gen))
    valid = torch.ones_like(gt, dtype=torch.bool)
    batch = Samples(torch.rand(n, 3, 8, 12, generator=gen), gt, valid, [f"img{i}" for i in range(n)], 10.0)
    mean = gt.mean(dim=(2, 3), keepdim=True)
    weights = torch.tensor(factors, dtype=gt.dtype).view(n, 1, 1, 1)
    flat = mean.expand_as(gt)
    last = gt.log().mean(0, keepdim=True).exp().expand_as(gt) if fixed_map else mean + weights * (gt - mean)
    measurements = [measure_prediction(flat if step == steps[0] else scale * last, batch, step) for step in steps]
    depth_share = measurements[-1].stats.image_dependence.pred_image_share
    profile = [("image", 0.95), ("encoder", 0.6 if not fixed_map else 0.3), ("decoder", 0.5 if not fixed_map else 1e-3),
               ("depth", depth_share if math.isfinite(depth_share) else 0.0)]
    layers = [LayerShare(block, "Conv2d", [4, 8, 12], share) for block, share in profile]
    fade = ImageFade(steps[-1], layers, IGNORES_IMAGE_BELOW * 0.95, fades_at(layers[1:], IGNORES_IMAGE_BELOW * 0.95))
    return ModelCollapse.of(name, "example", batch, measurements, seed,
                            held_out(learned, seed=seed) if learned is not None else None, fade)


def collapse(factors_by_model: dict[str, list[float]], seeds: tuple[int, ...] = (0,),
             learned: dict[str, float | None] | None = None, scale: dict[str, float] | None = None,
             baselines: tuple[str, ...] = (), fixed: tuple[str, ...] = ()) -> CollapseResult:
    """Models named in ``fixed`` predict one map for every image (they ignore the image)."""
    learned, scale = learned or {}, scale or {}
    models = [model_collapse(n, f, seed=s, learned=learned.get(n, 0.4), scale=scale.get(n, 1.0), fixed_map=n in fixed)
              for n, f in factors_by_model.items() for s in seeds]
    return CollapseResult.of(models, roles(list(factors_by_model), baselines), config={"every": 10})


# -- noise: the real estimator on given measurements and per-batch losses -----------------------

def jittered_losses(mean: float, jitter: float, trend: float = 0.0, steps: int = 40) -> list[float]:
    """``mean + trend * (1 - t/steps) +- jitter``, alternating: a scatter of ``jitter`` around a falling line."""
    return [mean + trend * (1 - t / steps) + jitter * (-1) ** t for t in range(steps)]


def model_noise(name: str, losses: list[float], small_sq: float = 3.0, big_sq: float = 1.5, seed: int = 0,
                learned: float | None = 0.4) -> ModelNoise:
    est = NoiseScaleEstimator(2, 8)
    for i in range(4):
        est.update(small_sq * (1 + 0.01 * i + 0.02 * seed), big_sq)
    return ModelNoise.of(name, 4, est, [1, 2, 3, 4], list(range(1, len(losses) + 1)), losses, seed,
                         held_out(learned, seed=seed) if learned is not None else None)


def noise(losses_by_model: dict[str, list[float]], seeds: tuple[int, ...] = (0, 1, 2),
          learned: dict[str, float | None] | None = None, baselines: tuple[str, ...] = ()) -> NoiseResult:
    """Each seed's losses are the given ones with the scatter a few percent larger per seed."""
    learned = learned or {}
    models = [model_noise(n, [losses[0] + (v - losses[0]) * (1 + 0.03 * s) for v in losses], seed=s,
                          learned=learned.get(n, 0.4))
              for n, losses in losses_by_model.items() for s in seeds]
    return NoiseResult.of(models, roles(list(losses_by_model), baselines), config={"small_batch": 2, "big_batch": 8})


# -- autoencoder: PSNR per level for a packing and a max-pool autoencoder ------------------------

CONVERGED = [0.01 + 0.0001 * (-1) ** t for t in range(40)]  # flat: plateaued
FALLING = [1.0 / (1 + t) for t in range(40)]  # still falling: not converged


def autoencoder_run(arch: str, levels: int, psnr: float, params: int = 1000, seed: int = 0, width: float = 0.25,
                    converged: bool = True) -> AutoencoderRun:
    quality = ImageQuality(mse=10 ** (-psnr / 10) if math.isfinite(psnr) else 0.0, psnr=psnr, ssim=0.9, images=4)
    return AutoencoderRun.of(arch, levels, ModelCost(params, 10 * params), (16, 4, 4), 0.25, quality, 40, 1.5,
                             CONVERGED if converged else FALLING, width, seed)


def autoencoder(pack_psnr: list[float], pool_psnr: list[float], seeds: tuple[int, ...] = (0, 1, 2),
                pack_params: int = 1000, pool_params: int = 1000, converged: bool = True) -> AutoencoderResult:
    """Packing and max-pool at each level (PSNR per level, 0.1 dB apart per seed), of the given sizes."""
    runs = []
    for level, (p, q) in enumerate(zip(pack_psnr, pool_psnr), start=1):
        for s in seeds:
            runs += [autoencoder_run("pack3d", level, p + 0.1 * s, pack_params, s, converged=converged),
                     autoencoder_run("maxpool", level, q + 0.1 * ((2 * s) % 3), pool_params, s)]
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


def experiment_run(id: str, curve: list[float], seed: int = 0, learned: float | None = 0.4) -> ExperimentRun:
    metrics = summarise_metrics([{"step": i + 1, "epoch": 0, "loss": v, "seconds": 0.5, "images_per_s": 8.0}
                                 for i, v in enumerate(curve)])
    return ExperimentRun(seed=seed, run_dir=f"runs/{id}/seed_{seed}", steps=metrics.steps,
                         mean_epoch_loss=metrics.mean_epoch_loss, batch_loss_std=metrics.batch_loss_std,
                         first100_mean_loss=metrics.first100_mean_loss, final_loss=metrics.final_loss,
                         seconds_per_epoch=metrics.seconds_per_epoch, images_per_s=metrics.images_per_s,
                         loss_curve=curve, held_out=held_out(learned, seed=seed) if learned is not None else None,
                         probes=[])


def experiment(id: str, model: str, curve: list[float], seed_mean_loss: float | None = None,
               learned: float | None = 0.4, seeds: tuple[int, ...] = (0, 1, 2)):
    """One row through the real summary over seeds; the curve is a little lower per seed."""
    runs = [experiment_run(id, [v * (1 - 0.02 * s) for v in curve], s, learned) for s in seeds]
    spec = Experiment(id, f"{model} experiment", None if model == "densedepth" else 1, model, {}, seed_mean_loss, "")
    return experiment_row(spec, 100, "supervised densedepth loss on the finest output", runs)


def experiments(learned: dict[str, float | None] | None = None) -> SeedStudyResult:
    learned = learned or {}
    return SeedStudyResult(config=SeedStudyConfig(quick=True), experiments=[
        experiment("densedepth", "densedepth", [0.9, 0.6, 0.5, 0.4], seed_mean_loss=0.401,
                   learned=learned.get("densedepth", 0.4)),
        experiment("exp1_packnet_b", "packnet_slim_b", [0.9, 0.7, 0.65, 0.6],
                   learned=learned.get("exp1_packnet_b", 0.5))],
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
    slopes = [0.9, 0.95, float("nan"), 0.85]  # a slightly compressed range, whatever the scale
    return ScaleEvaluation(dataset="synthetic_video", split="test", protocol="none", model="densedepth", n_images=4,
                           metrics={"abs_rel": abs(scale - 1), "delta1": 0.0},
                           metrics_median_scaled={"abs_rel": abs_rel_scaled, "delta1": 0.9},
                           constant_median_scaled={"abs_rel": 0.3, "delta1": 0.5}, ratio=ratio_summary(ratios),
                           per_image_ratio=ratios, ratio_uncropped=ratio_summary(ratios[::-1]),
                           per_image_ratio_uncropped=ratios[::-1], range_slope=ratio_summary(slopes),
                           per_image_range_slope=slopes,
                           ratio_by_depth=[DepthBin(0.0, 5.0, 3, 1.2), DepthBin(5.0, 10.0, 0, float("nan"))],
                           options={"max_depth": 10.0, "flip_tta": False, "batch_size": 4})


def consistency(best: float = 0.8) -> ConsistencyEvaluation:
    """A depth-multiplier scan whose lowest loss lies at ``best`` (a parabola in log s)."""
    grid = [0.5, 0.71, 1.0, 1.41, 2.0]
    losses = [0.05 + 0.02 * (math.log(s) - math.log(best)) ** 2 for s in grid]
    return ConsistencyEvaluation(dataset="synthetic_video", n_windows=4, multipliers=grid, losses=losses,
                                 best_multiplier=best, loss_at_one=losses[2], loss_at_best=min(losses),
                                 exponents=[0.5, 1.0, 1.5], range_losses=[0.06, 0.05, 0.055], best_exponent=1.1,
                                 range_losses_exact=[0.07, 0.05, 0.045], best_exponent_exact=1.4,
                                 options={"batch_size": 4, "automask": True, "sources": "min", "scale": "finest"})


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
                                              "rotation_error_deg": 0.4, "rotation_deg": 1.2,
                                              "translation_explained": 0.62, "rotation_explained": 0.05,
                                              "pitch_bias_deg": 0.05, "yaw_bias_deg": -0.02,
                                              "roll_bias_deg": 0.01},
                                             {"translation_ratio": 0.97, "translation_angle_deg": 141.0,
                                              "rotation_error_deg": 0.6, "rotation_deg": 1.2,
                                              "translation_explained": -0.3, "rotation_explained": -0.8,
                                              "pitch_bias_deg": -0.44, "yaw_bias_deg": 0.1,
                                              "roll_bias_deg": -0.02}]),
                             consistency=None if velocity_weight == 0 else consistency(1 / scale))


def self_supervised() -> SelfSupervisedStudyResult:
    """Two seeds without velocity (off by 3x), one seed with velocity under noise (a spread of NaN)."""
    noisy = NoiseLevel(std=0.2)
    config = SelfSupervisedStudyConfig(models=("densedepth",), seeds=(0, 1), noise_levels=(noisy,), width=0.0625)
    runs = [self_supervised_run(0, 0.0, NoiseLevel(), 3.0), self_supervised_run(1, 0.0, NoiseLevel(), 2.8),
            self_supervised_run(0, 0.1, noisy, 1.05)]
    observability = Observability(1.25, 4, (64, 96), [DepthBin(0.0, 5.0, 4, 2.7), DepthBin(5.0, 10.0, 4, 0.3),
                                                      DepthBin(10.0, 20.0, 0, float("nan"))])
    mean_map = scale_evaluation(1.0, 0.12)  # the image-blind baseline: metric by construction
    mean_map.options["training_images"] = 512
    return SelfSupervisedStudyResult(config=config, runs=runs, conditions=summarise(runs), observability=observability,
                                     mean_map=mean_map, test_speeds=[0.4, 0.5, 0.55, 0.6])


def study_log() -> StudyLog:
    return StudyLog([StepRecord("complexity", "ran", 1.5, ["runs/study/complexity.json"]),
                     StepRecord("properties", "reused", 0.0, []),
                     StepRecord("fit", "skipped", 0.0, [], reason="fit trains on a generated training split")])



# -- fit: a model at `ratios[N]` x the constant on its N training images, by the real rule ------------

def fit(ratios_by_model: dict[str, dict[int, float]], seeds: tuple[int, ...] = (0,), test_ratio: float = 0.95,
        baselines: tuple[str, ...] = ()) -> FitResult:
    """Each model at each N: scale-matched ratio ``ratios[N]`` on its N training images, ``test_ratio`` on 12 test
    images (a few percent of scatter per seed), cells and calls by :class:`analyses.fit.FitResult`."""
    runs = [FitRun(name, n, s, 600, f"runs/fit/{name}/images_{n}/seed_{s}",
                   held_out(2.0 * r, scale_matched=r, seed=s, n=max(n, 2)),
                   held_out(2.0 * test_ratio, scale_matched=test_ratio, seed=s))
            for name, ratios in ratios_by_model.items() for n, r in ratios.items() for s in seeds]
    config = {"steps": 600, "images": sorted({n for r in ratios_by_model.values() for n in r})}
    return FitResult.of(runs, roles(list(ratios_by_model), baselines), config)

#: one instance of every Result class, with NaN, +inf and None values where the schema allows them
EXAMPLES: dict[type[Result], Callable[[], Result]] = {
    GradientsResult: lambda: gradients({"packnet_b": [1e-4, 1e-6, float("nan"), 1.0], "densedepth": [1.0] * 4},
                                       seeds=(0, 1), learned={"densedepth": None}),
    CollapseResult: lambda: collapse({"packnet_b": [0.0, 0.0, 0.0, 1.0], "densedepth": [1.0, 1.0, 1.0, 1.0]},
                                     learned={"densedepth": None}),
    NoiseResult: lambda: noise({"packnet_b": jittered_losses(0.5, 0.2), "densedepth": jittered_losses(0.4, 0.05)},
                               seeds=(0, 1)),
    AutoencoderResult: lambda: autoencoder([30.0, float("inf")], [24.0, 20.0], seeds=(0, 1)),
    ComplexityResult: complexity,
    SeedStudyResult: lambda: experiments({"exp1_packnet_b": None}),
    AttributionResult: attribution,
    PropertiesResult: lambda: properties(passed=False),
    EvalResult: evaluation,
    TrainSummary: train_summary,
    StudyLog: study_log,
    ScaleEvaluation: scale_evaluation,
    ConsistencyEvaluation: consistency,
    SelfSupervisedStudyResult: self_supervised,
    FitResult: lambda: fit({"packnet_slim_b": {8: 0.2, 16: 0.75, 64: 1.0}, "densedepth": {8: 0.1, 64: 0.45}},
                           seeds=(0, 1)),
}
