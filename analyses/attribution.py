"""Which input pixels does a depth prediction use?  Captum attribution and effective receptive fields.

Two measurements per model:

* **Attribution** (captum, ``METHODS`` registry): the target is the model's *raw
  output* (channel 0, in its ``output_space``, e.g. inverse depth in 1/m for
  PackNet, DenseDepth's ``max_depth / depth``), summed over a pixel or a region
  of the *output* grid, attributed to the input pixels of each image.
* **Effective receptive field** (Luo et al., NeurIPS 2016): the input-gradient of
  the centre output pixel, absolute value summed over colour channels and
  averaged over a few images.  Its radius is the smallest Chebyshev (square)
  distance from the input location of that output pixel that holds 50% / 95% of
  the gradient mass; ``support`` is the distance of the farthest pixel with a
  non-zero gradient (the theoretical receptive field actually reached).

Coordinates are ``(y, x)`` in output pixels; a region ``Y0,X0,Y1,X1`` is
half-open like a Python slice.  An output pixel ``(y, x)`` of a model whose
output is ``s`` times the input resolution sits at input location
``((y + 0.5) / s - 0.5, (x + 0.5) / s - 0.5)``.

>>> from analyses.attribution import AttributionConfig, run
>>> result = run(AttributionConfig(models=["packnet_b", "densedepth"], width=0.0625,
...                                input_size=(64, 64)))         # doctest: +SKIP
>>> result.models[0].erf.radius_95                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch
import torch.nn as nn

from probe.data.images import check_data_file
from probe.data.samples import load_first_samples
from probe.device import resolve_device
from probe.errors import ProbeError
from probe.image_quality import to_uint8_rgb
from probe.limits import MAX_HELD_OUT_IMAGES, MAX_METHOD_STEPS, check_count, check_input_size, check_width
from probe.memory import check_training_fits
from probe.models import build_model, list_models
from probe.models.common import finest_scale
from probe.options import (
    data_root_option,
    dataset_option,
    device_option,
    input_size_option,
    model_options_option,
    option,
    parse_int_tuple,
    seed_option,
    width_option,
)
from probe.registry import Registry
from probe.report.collect import Results
from probe.report.document import Block, Paragraph, Section, Table
from probe.report.sections import SECTIONS, embedded_figures
from probe.results import Result, register_result
from probe.roles import ModelSelection, Roles, baselines_option, roles_for
from probe.schema import transient
from probe.seeding import check_seed, seed_everything

# -- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A half-open box ``[y0, y1) x [x0, x1)`` of the output grid; a pixel is a 1x1 box."""

    y0: int
    x0: int
    y1: int
    x1: int
    kind: str = "region"

    @staticmethod
    def pixel(y: int, x: int) -> "Target":
        return Target(y, x, y + 1, x + 1, "pixel")

    def check(self, out_size: tuple[int, int], flag: str) -> "Target":
        h, w = out_size
        if not (0 <= self.y0 < self.y1 <= h and 0 <= self.x0 < self.x1 <= w):
            raise ProbeError(
                f"{flag}: {self.describe()} lies outside the {h}x{w} output (y in 0..{h - 1}, x in 0..{w - 1})"
            )
        return self

    def describe(self) -> str:
        if self.kind == "pixel":
            return f"pixel ({self.y0},{self.x0})"
        return f"region y {self.y0}..{self.y1 - 1}, x {self.x0}..{self.x1 - 1}"

    def centre(self) -> tuple[float, float]:
        """Centre in output coordinates."""
        return (self.y0 + self.y1 - 1) / 2.0, (self.x0 + self.x1 - 1) / 2.0


def parse_pixel(text: str) -> Target:
    """``"12,40"`` -> the output pixel (12, 40)."""
    y, x = parse_int_tuple(text, 2, "--pixel", "12,40")
    return Target.pixel(y, x)


def parse_region(text: str) -> Target:
    """``"10,20,30,60"`` -> rows 10..29, columns 20..59 (half-open, like a slice)."""
    y0, x0, y1, x1 = parse_int_tuple(text, 4, "--region", "10,20,30,60")
    if y1 <= y0 or x1 <= x0:
        raise ProbeError(f"--region: expected Y0,X0,Y1,X1 with Y1 > Y0 and X1 > X0 (half-open), got {text!r}")
    return Target(y0, x0, y1, x1, "region")


def input_location(out_yx: tuple[float, float], scale: tuple[float, float]) -> tuple[float, float]:
    """Input-pixel coordinates of an output location for an output ``scale`` x the input resolution."""
    return (out_yx[0] + 0.5) / scale[0] - 0.5, (out_yx[1] + 0.5) / scale[1] - 0.5


class TargetOutput(nn.Module):
    """Channel 0 of the model's eval output summed over the target box: ``[B,3,H,W] -> [B]``."""

    def __init__(self, model: nn.Module, target: Target) -> None:
        super().__init__()
        self.model, self.target = model, target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.target
        return finest_scale(self.model(x))[:, 0, t.y0 : t.y1, t.x0 : t.x1].sum(dim=(1, 2))


# -- attribution methods ------------------------------------------------------------------------

Attribute = Callable[[nn.Module, torch.Tensor, int], torch.Tensor]
METHODS: Registry[Attribute] = Registry("attribution method")


@METHODS.register(
    "integrated_gradients", description="path integral of gradients from a black image", completeness=True
)
def _integrated_gradients(module: nn.Module, inputs: torch.Tensor, steps: int) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    return IntegratedGradients(module).attribute(
        inputs, baselines=torch.zeros_like(inputs), n_steps=steps, internal_batch_size=max(1, inputs.shape[0])
    )


@METHODS.register("saliency", description="absolute input gradient", completeness=False)
def _saliency(module: nn.Module, inputs: torch.Tensor, steps: int) -> torch.Tensor:
    from captum.attr import Saliency

    return Saliency(module).attribute(inputs, abs=True)


@METHODS.register("input_x_gradient", description="input times gradient", completeness=False)
def _input_x_gradient(module: nn.Module, inputs: torch.Tensor, steps: int) -> torch.Tensor:
    from captum.attr import InputXGradient

    return InputXGradient(module).attribute(inputs)


@METHODS.register(
    "guided_backprop",
    description="gradient with ReLU back-passes clipped at 0 (ELU layers: plain gradient)",
    completeness=False,
)
def _guided_backprop(module: nn.Module, inputs: torch.Tensor, steps: int) -> torch.Tensor:
    from captum.attr import GuidedBackprop

    return GuidedBackprop(module).attribute(inputs)


@METHODS.register(
    "gradient_shap", description="expected gradients against black and white baselines", completeness=False
)
def _gradient_shap(module: nn.Module, inputs: torch.Tensor, steps: int) -> torch.Tensor:
    from captum.attr import GradientShap

    baselines = torch.stack([torch.zeros_like(inputs[0]), torch.ones_like(inputs[0])])
    return GradientShap(module).attribute(inputs, baselines=baselines, n_samples=steps, stdevs=0.0)


def attribute(model: nn.Module, images: torch.Tensor, target: Target, method: str, steps: int = 32) -> torch.Tensor:
    """Attribution of the target's summed raw output to each input value: ``[N,3,H,W] -> [N,3,H,W]``.

    >>> attr = attribute(model.eval(), images, Target.pixel(10, 20), "saliency")   # doctest: +SKIP
    """
    fn = METHODS.get(method)
    module = TargetOutput(model, target).eval()
    return fn(module, images.clone().requires_grad_(True), steps).detach()


# -- receptive fields ---------------------------------------------------------------------------


def chebyshev_distances(size: tuple[int, int], centre: tuple[float, float]) -> torch.Tensor:
    """``[H,W]`` map of ``max(|y - cy|, |x - cx|)``."""
    ys = torch.arange(size[0], dtype=torch.float64)[:, None]
    xs = torch.arange(size[1], dtype=torch.float64)[None, :]
    return torch.maximum((ys - centre[0]).abs(), (xs - centre[1]).abs())


@dataclass(frozen=True)
class MassRadii:
    """Radii (input pixels, Chebyshev) around ``centre_yx`` holding 50% / 95% / all of a non-negative map."""

    centre_yx: tuple[float, float]
    radius_50: float
    radius_95: float
    support: float
    curve: list[tuple[float, float]]  # (radius, share of mass within it)


def mass_radii(mass: torch.Tensor, centre: tuple[float, float]) -> MassRadii:
    """Smallest radius whose square around ``centre`` holds 50% / 95% of ``mass [H,W]`` (>= 0).

    ``support`` is the distance of the farthest pixel above 1e-12 of the peak.
    A map with no mass at all raises :class:`ProbeError` (the output ignores its input).
    """
    mass = mass.double().cpu()
    total = float(mass.sum())
    if not total > 0:
        raise ProbeError(
            "receptive field: the input gradient is zero everywhere (the output does not depend on the input)"
        )
    dist = chebyshev_distances((int(mass.shape[0]), int(mass.shape[1])), centre).flatten()
    order = torch.argsort(dist, stable=True)
    d_sorted, cum = dist[order], torch.cumsum(mass.flatten()[order], 0) / total
    radii, last = torch.unique_consecutive(d_sorted, return_counts=True)
    ends = torch.cumsum(last, 0) - 1
    shares = cum[ends]

    def radius_for(q: float) -> float:
        idx = int(torch.searchsorted(shares, torch.tensor(q - 1e-12, dtype=torch.float64)))
        return float(radii[min(idx, len(radii) - 1)])

    nonzero = mass.flatten() > 1e-12 * float(mass.max())
    curve = [(float(r), float(s)) for r, s in zip(radii, shares)]
    return MassRadii(centre, radius_for(0.5), radius_for(0.95), float(dist[nonzero].max()), curve)


def output_scale(model: nn.Module, images: torch.Tensor) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output grid size and its scale relative to the input, measured by one forward pass."""
    with torch.no_grad():
        out = finest_scale(model(images[:1]))
    h, w = int(out.shape[-2]), int(out.shape[-1])
    return (h, w), (h / images.shape[-2], w / images.shape[-1])


def effective_receptive_field(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, MassRadii]:
    """Luo et al.'s ERF: mean over images of ``sum_c |d out[0, h/2, w/2] / d x_c|``: ``[N,3,H,W] -> [H,W]``.

    One backward pass serves every image: in eval mode images do not interact, so
    the gradient of the summed centre outputs is each image's own gradient.
    """
    model.eval()
    (h, w), scale = output_scale(model, images)
    centre = Target.pixel(h // 2, w // 2)
    x = images.clone().requires_grad_(True)
    TargetOutput(model, centre)(x).sum().backward()
    if x.grad is None:
        raise ProbeError("receptive field: the output does not depend on the input (no input gradient)")
    grad_map = x.grad.detach().abs().sum(dim=1).mean(dim=0)
    return grad_map, mass_radii(grad_map, input_location(centre.centre(), scale))


# -- models and inputs --------------------------------------------------------------------------


@dataclass
class LoadedModel:
    name: str  # as the result names it: the model, or "model (run folder)" for a checkpoint
    source: str
    model: nn.Module
    input_size: tuple[int, int] | None = None
    spec: str = ""  # the zoo name or SPEC it was built from


def load_models(config: "AttributionConfig", device: torch.device) -> list[LoadedModel]:
    """Models at seeded random init (``--model``, ``--baseline``: zoo names or SPECs) and runs (``--checkpoint``)."""
    from probe.training import load_checkpoint

    loaded = []
    for name in config.compared():
        seed_everything(config.seed)
        model = build_model(name, width=config.width, **config.options_for(name)).to(device).eval()
        source = f"random init (width {config.width}, seed {config.seed})"
        loaded.append(LoadedModel(name, source, model, spec=name))
    for path in config.checkpoints:
        model, run_config = load_checkpoint(path, device)
        size = run_config.get("input_size")
        loaded.append(
            LoadedModel(
                f"{run_config['model']} ({_run_label(Path(path))})",
                f"checkpoint {path}",
                model.eval(),
                tuple(size) if size else None,
                spec=str(run_config["model"]),
            )
        )
    if not loaded:
        raise ProbeError("attribution: expected at least one --model or --checkpoint")
    return loaded


def load_inputs(
    image: Path | None, dataset: str, data_root: Path | None, input_size: tuple[int, int] | None, count: int
) -> tuple[torch.Tensor, list[str]]:
    """``--image FILE`` (one image) or the first ``count`` test images of ``dataset``: ``[N,3,H,W]`` in [0,1]."""
    if image is not None:
        from probe.data.images import read_rgb
        from probe.data.transforms import image_to_tensor, resize_image

        tensor = image_to_tensor(read_rgb(Path(image)))
        if input_size is not None:
            tensor = resize_image(tensor, input_size)
        return tensor[None], [Path(image).name]
    samples = load_first_samples(dataset, data_root, split="test", input_size=input_size, count=count)
    return samples.image, samples.names


# -- the analysis -------------------------------------------------------------------------------


@dataclass
class AttributionConfig(ModelSelection):
    """Models (zoo names or SPECs at random init, and/or trained runs), inputs, target and method.

    ``checkpoint_baselines``: the models (as their runs name them) whose checkpoints are baselines,
    every other checkpoint's model being under study (empty: probe.roles' default rules).
    """

    models: list[str] = option(
        default_factory=list, flag="--model", help="model under study at random init: a zoo name or SPEC (repeat)"
    )
    baselines: list[str] = baselines_option()
    model_options: dict[str, Any] = model_options_option(scoped=True)
    checkpoints: list[Path] = option(
        default_factory=list, flag="--checkpoint", help="trained run folder or .safetensors (repeat)"
    )
    checkpoint_baselines: list[str] = field(default_factory=list)
    image: Path | None = option(None, help="one RGB image file (instead of --dataset)")
    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    pixel: str | None = option(None, help="target output pixel Y,X (default: centre)")
    region: str | None = option(None, help="target output region Y0,X0,Y1,X1 (half-open)")
    method: str = option(
        "integrated_gradients", help="integrated_gradients|saliency|input_x_gradient|guided_backprop|gradient_shap"
    )
    steps: int = option(32, help="integration steps / samples of the method")
    images: int = option(4, help="test images averaged for the receptive field")
    width: float = width_option(0.25)
    input_size: tuple[int, int] | None = input_size_option()
    device: str = device_option()
    seed: int = seed_option()

    def validate(self) -> None:
        METHODS.entry(self.method)
        if self.pixel and self.region:
            raise ProbeError("--pixel and --region: give one target, not both")
        if self.pixel:
            parse_pixel(self.pixel)
        if self.region:
            parse_region(self.region)
        check_count("--steps", self.steps, MAX_METHOD_STEPS)
        check_count("--images", self.images, MAX_HELD_OUT_IMAGES, "attributed together as one batch")
        check_width(self.width)
        check_input_size(self.input_size)
        check_seed(self.seed)
        if not self.models and not self.checkpoints:
            raise ProbeError("attribution: expected at least one --model or --checkpoint")
        if self.baselines and not self.models:
            raise ProbeError("--baseline: compares the --model(s) under study with it; give --model too")
        self.validate_models()
        if self.image is not None:  # stat only: opening a FIFO or a device would block or never end
            check_data_file(Path(self.image), f"--image {self.image}")
        self.check_memory()

    def check_memory(self) -> None:
        """Refuse a zoo model whose backward pass over the images cannot fit the free memory.

        The attribution methods take gradients of the output with respect to the input for the
        --images images at once, in evaluation mode: a training step's activations without the
        optimizer's states.  Checkpoints are rebuilt from their run's config and checked when loaded.
        """
        from probe.data import dataset_info

        device = resolve_device(self.device)
        size = self.input_size or dataset_info(self.dataset).input_size
        batch = 1 if self.image is not None else self.images
        for name in (m for m in self.models if m in list_models()):
            check_training_fits(
                name, input_size=size, batch_size=batch, width=self.width, device=device, optimizer=False
            )

    def target(self, out_size: tuple[int, int]) -> Target:
        """The requested target checked against the output grid (default: its centre pixel)."""
        if self.region:
            return parse_region(self.region).check(out_size, "--region")
        if self.pixel:
            return parse_pixel(self.pixel).check(out_size, "--pixel")
        return Target.pixel(out_size[0] // 2, out_size[1] // 2)


@dataclass
class AttributionStats:
    """How the target's attribution is spread over the input: sums, peak, and (for methods with the
    completeness property) how far the attributions' sum is from ``output(input) - output(baseline)``."""

    method: str
    abs_sum: float
    signed_sum: float
    peak_yx_first_image: tuple[int, int]
    peak_distance_first_image: float
    completeness_error: float | None = None
    output_minus_baseline: float | None = None


@dataclass
class ModelAttribution:
    """One model's receptive field and attribution of the target."""

    name: str
    source: str
    output_space: str | None
    output_size: tuple[int, int]
    output_scale: tuple[float, float]
    params: int
    erf: MassRadii
    target: Target
    attribution: AttributionStats
    attribution_radii: MassRadii
    erf_map: np.ndarray | None = transient()  # [H,W] mean |input gradient| of the centre output pixel
    attribution_map: np.ndarray | None = transient()  # [H,W] |attribution| summed over channels, first image


TARGET_SPACE = "raw model output (channel 0, in the model's output_space), summed over the target box"
ERF_DEFINITION = (
    "mean over images of sum over colour channels of |d output(centre pixel) / d input|; "
    "radius = smallest Chebyshev distance (input pixels) from the centre's input location "
    "holding the share of that mass; support = farthest non-zero gradient"
)


@register_result
@dataclass
class AttributionResult(Result):
    """Per-model ERF radii and attribution statistics, plus maps for the figures."""

    name: ClassVar[str] = "attribution"
    schema_version: ClassVar[int] = 2
    config: AttributionConfig
    device: str
    method: str
    method_description: str
    target: str  # the requested target, as the flags said
    images: list[str]  # the names of the attributed images
    input_size: tuple[int, int]
    models: list[ModelAttribution]
    roles: Roles  # which models are under study and which are baselines
    target_space: str = TARGET_SPACE
    erf_definition: str = ERF_DEFINITION
    pixels: np.ndarray | None = transient()  # uint8 [N,H,W,3], the images themselves

    def figures(self, out_dir: Path) -> list[Path]:
        erf_maps = [m.erf_map for m in self.models if m.erf_map is not None]
        attribution_maps = [m.attribution_map for m in self.models if m.attribution_map is not None]
        if self.pixels is None or len(erf_maps) != len(attribution_maps) or len(erf_maps) != len(self.models):
            return []  # read back from JSON: the images and maps are not stored
        return [
            overlay_figure(self, self.pixels, attribution_maps, out_dir / "attribution_overlay.png"),
            erf_figure(self, erf_maps, out_dir / "attribution_erf.png"),
        ]


def analyse_model(loaded: LoadedModel, images: torch.Tensor, config: AttributionConfig) -> ModelAttribution:
    """ERF radii and target attribution of one model on ``images [N,3,H,W]``."""
    model = loaded.model
    out_size, scale = output_scale(model, images)
    target = config.target(out_size)
    erf_map, erf = effective_receptive_field(model, images)
    attr = attribute(model, images, target, config.method, config.steps)
    mass = attr.abs().sum(dim=1)  # [N,H,W]
    centre = input_location(target.centre(), scale)
    radii = mass_radii(mass.mean(dim=0), centre)
    flat = mass[0].flatten()
    peak = divmod(int(flat.argmax()), mass.shape[-1])
    stats = AttributionStats(
        method=config.method,
        abs_sum=float(mass.sum(dim=(1, 2)).mean()),
        signed_sum=float(attr.sum(dim=(1, 2, 3)).mean()),
        peak_yx_first_image=peak,
        peak_distance_first_image=float(max(abs(peak[0] - centre[0]), abs(peak[1] - centre[1]))),
    )
    if METHODS.entry(config.method).meta.get("completeness"):
        module = TargetOutput(model, target).eval()
        with torch.no_grad():
            gap = module(images) - module(torch.zeros_like(images))
        stats.completeness_error = float((attr.sum(dim=(1, 2, 3)) - gap).abs().mean())
        stats.output_minus_baseline = float(gap.mean())
    return ModelAttribution(
        loaded.name,
        loaded.source,
        getattr(model, "output_space", None),
        out_size,
        scale,
        sum(p.numel() for p in model.parameters()),
        erf,
        target,
        stats,
        radii,
        erf_map=erf_map.cpu().numpy(),
        attribution_map=mass[0].cpu().numpy(),
    )


def run(config: AttributionConfig) -> AttributionResult:
    """Load models and images, then measure each model's ERF and attribute the target."""
    config.validate()
    device = resolve_device(config.device)
    loaded = load_models(config, device)
    size = config.input_size or next((m.input_size for m in loaded if m.input_size), None)
    images, names = load_inputs(config.image, config.dataset, config.data_root, size, config.images)
    images = images.to(device)
    for m in loaded:  # a bad --pixel/--region fails before any model is analysed
        config.target(output_scale(m.model, images)[0])
    results = [analyse_model(m, images, config) for m in loaded]
    pixels = to_uint8_rgb(images)
    target = (
        f"--region {config.region}"
        if config.region
        else f"--pixel {config.pixel}"
        if config.pixel
        else "centre pixel of each model's output"
    )
    return AttributionResult(
        config=config,
        device=str(device),
        method=config.method,
        method_description=METHODS.entry(config.method).description,
        target=target,
        images=names,
        input_size=(int(images.shape[-2]), int(images.shape[-1])),
        models=results,
        roles=attribution_roles(config, loaded),
        pixels=pixels,
    )


def attribution_roles(config: AttributionConfig, loaded: list[LoadedModel]) -> Roles:
    """The built models' roles by --model/--baseline; the checkpoints' by ``checkpoint_baselines`` or the defaults."""
    runs = [(m.name, m.spec) for m in loaded[len(config.compared()) :]]
    options = {spec: config.options_for(spec) for _, spec in runs}
    checkpoints = roles_for(runs, list(config.checkpoint_baselines) or None, options) if runs else Roles()
    return Roles(config.roles().models + checkpoints.models)


# -- figures ------------------------------------------------------------------------------------


def _run_label(path: Path) -> str:
    """A run folder's name; a seed's folder (``<experiment>/seed_<s>``) is named with its experiment."""
    return f"{path.parent.name}, {path.name}" if path.name.startswith("seed_") else path.name


def _square(ax: Any, centre: tuple[float, float], radius: float, color: str, label: str) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle(
            (centre[1] - radius - 0.5, centre[0] - radius - 0.5),
            2 * radius + 1,
            2 * radius + 1,
            fill=False,
            edgecolor=color,
            linewidth=1.2,
            label=label,
        )
    )


def overlay_figure(result: AttributionResult, pixels: np.ndarray, maps: list[np.ndarray], path: Path) -> Path:
    """The first image (``pixels[0]``) with the target marked, then each model's |attribution| map over it."""
    from probe.plotting import plt, save_figure

    n = len(result.models)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.8 * (n + 1), 3.4), squeeze=False)
    image = pixels[0]
    axes[0][0].imshow(image)
    axes[0][0].set_title(f"input: {result.images[0]}", fontsize=8)
    for i, (m, amap) in enumerate(zip(result.models, maps)):
        ax = axes[0][i + 1]
        ax.imshow(image.mean(axis=2), cmap="gray", alpha=0.6)
        heat = amap / max(float(np.percentile(amap, 99.5)), 1e-30)
        shown = ax.imshow(np.clip(heat, 0, 1), cmap="inferno", alpha=0.65)
        centre = m.attribution_radii.centre_yx
        _square(ax, centre, m.attribution_radii.radius_95, "cyan", "95% of |attribution|")
        ax.plot([centre[1]], [centre[0]], marker="+", color="lime", markersize=10)
        ax.set_title(
            f"{m.name}: output {m.target.describe()}\n95% of |attribution| within "
            f"{m.attribution_radii.radius_95:g} px (cyan)",
            fontsize=8,
        )
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    for row in axes:
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
    fig.suptitle(
        f"{result.config.method}: |attribution| of the raw output (channel 0) at the target (green +), "
        "normalised to its 99.5th percentile",
        fontsize=10,
    )
    return save_figure(fig, path)


def erf_figure(result: AttributionResult, erf_maps: list[np.ndarray], path: Path) -> Path:
    """ERF maps (log scale, with 50%/95% squares) per model and the cumulative mass against radius."""
    from probe.plotting import plt, save_figure, sns

    n = len(result.models)
    fig = plt.figure(figsize=(max(6.0, 3.2 * n), 7.0))
    grid = fig.add_gridspec(2, n, height_ratios=[1.1, 1.0])
    for i, (m, erf_map) in enumerate(zip(result.models, erf_maps)):
        ax = fig.add_subplot(grid[0, i])
        norm = erf_map / max(float(erf_map.max()), 1e-30)
        ax.imshow(np.log10(np.maximum(norm, 1e-6)), cmap="viridis", vmin=-6, vmax=0)
        _square(ax, m.erf.centre_yx, m.erf.radius_50, "white", "50%")
        _square(ax, m.erf.centre_yx, m.erf.radius_95, "red", "95%")
        ax.set_title(f"{m.name}\nr50 {m.erf.radius_50:g} px, r95 {m.erf.radius_95:g} px", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    ax = fig.add_subplot(grid[1, :])
    for m, color in zip(result.models, sns.color_palette(n_colors=max(n, 1))):
        radii, shares = zip(*m.erf.curve)
        ax.plot(radii, shares, label=m.name, color=color)
    for q in (0.5, 0.95):
        ax.axhline(q, color="gray", linestyle=":", linewidth=1)
    ax.set(
        xlabel="radius around the centre output pixel (input pixels, Chebyshev)",
        ylabel="share of |input gradient| mass",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=8)
    fig.suptitle(
        f"Effective receptive fields (log10 of normalised mean |gradient|, {len(result.images)} image(s))", fontsize=10
    )
    return save_figure(fig, path)


# -- the report: the attribution section ------------------------------------------------------------------


@SECTIONS.register("attribution", description="Attribution and receptive fields", needs=(AttributionResult,), order=80)
def attribution_section(results: Results) -> Section | None:
    doc = results.first(AttributionResult)
    if doc is None or not doc.models:
        return None
    rows = [
        {
            "model": m.name,
            **doc.roles.evidence(m.name),
            "ERF radius 50% (px)": m.erf.radius_50,
            "ERF radius 95% (px)": m.erf.radius_95,
            "method": doc.method,
        }
        for m in doc.models
    ]
    blocks: list[Block] = [
        Paragraph(
            "Effective receptive field: the input-gradient of the centre output pixel; "
            "the radius holds the stated share of its absolute mass."
        ),
        Table(rows, "attribution.json"),
    ]
    blocks += embedded_figures(results, AttributionResult, "attribution_*.png", "Attribution")
    return Section("attribution", "Attribution and receptive fields", blocks)
