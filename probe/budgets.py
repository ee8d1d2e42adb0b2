"""How big a study is: the three registered budgets, in one place.

``probe study --budget quick|standard|full`` (``probe/study.py``) and the
standard budget's cost projection (``bench/standard_budget.py``) both read
these values, so a re-calibration changes numbers here and nowhere else.

=============  ==============================================================================================
``quick``      a smoke test (minutes on a 2-core CPU): every step runs, on networks too small and too briefly
               trained to have learned; the report says its verdicts describe untrained networks
``standard``   the in-between (issue 10): width 1/16, 64x96 synthetic images, batch 8, Adam 3e-3, 1500 steps
               per experiment, 3 seeds; the gradient, noise and collapse probes ride along inside the
               experiment runs of the analysed models; PackNetSlim B and DenseDepth each fit their first 64
               training images for 600 steps; autoencoders at 32x32 with a matched-size sweep
``full``       the published widths at the dataset protocol's resolution and the seed's protocol (Adam 1e-4,
               batch 4, one epoch), 3 seeds: meant for a GPU
=============  ==============================================================================================

>>> BUDGETS["standard"].experiment_steps, BUDGETS["standard"].seeds
(1500, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.errors import ProbeError

__all__ = ["BUDGETS", "FULL", "QUICK", "STANDARD", "Budget", "get_budget"]


@dataclass(frozen=True)
class Budget:
    """Every size a study's steps need.  ``None`` where noted means "the dataset protocol's" or "every"."""

    name: str
    purpose: str  # one line: what the budget is for (report banner, README)
    smoke: bool  # too small to learn: the report's banner says verdicts describe untrained networks
    # -- the experiment matrix (and the probes riding along inside its runs) --
    width: float
    input_size: tuple[int, int] | None  # None: the dataset protocol's size
    batch_size: int
    lr: float
    loss_scales: str  # "finest": one objective for every model
    seeds: int  # seeds 0 .. seeds-1 (probe study --seeds overrides)
    experiment_steps: int | None  # None: one epoch, the seed's protocol
    experiment_length: int | None  # synthetic training images per epoch (None: the dataset's)
    eval_images: int | None  # held-out images each run is scored on (None: the whole test split)
    analysed_models: tuple[str, ...]  # models whose experiment runs carry the gradient, noise, collapse probes
    gradient_every: int
    noise_batches: tuple[int, int]
    noise_every: int
    collapse_every: int
    collapse_images: int
    # -- the fit check: can each model fit its own first N training images (generated datasets only) --
    fit_models: tuple[str, ...]  # the zoo comparison (a --model is compared with them instead)
    fit_images: tuple[int, ...]  # the training-set sizes N
    fit_steps: int  # steps per (model, N, seed), at the experiment matrix's width, input size, batch and lr
    fit_test_images: int  # held-out images each fit is also scored on
    # -- the autoencoder study --
    autoencoder_input: tuple[int, int]
    autoencoder_levels: tuple[int, ...]
    autoencoder_runs: tuple[tuple[str, float], ...]  # (architecture, width): the matched-size sweep
    autoencoder_steps: int
    autoencoder_batch: int
    autoencoder_lr: float
    autoencoder_train_images: int
    autoencoder_eval_images: int
    # -- the steps that do not train --
    complexity_input: tuple[int, int]
    complexity_models: tuple[str, ...] | None  # None: every registered model
    complexity_repeats: int
    attribution_images: int
    property_examples: int
    slim: bool = True  # PackNetSlim01 (72-77 M parameters at width 1) or the full PackNet01
    workers: int = 0  # data-loading worker processes per training run

    def steps_text(self) -> str:
        return "one epoch" if self.experiment_steps is None else f"{self.experiment_steps:,} steps"


#: Architectures and widths of the matched-size autoencoder sweep (issue 10): max-pool at three widths brackets
#: the packing runs' parameter counts, so packing is compared with max-pool at its own size.
MATCHED_AUTOENCODERS: tuple[tuple[str, float], ...] = (
    ("pack2d", 0.25),
    ("pack3d", 0.125),
    ("maxpool", 0.25),
    ("maxpool", 0.5),
    ("maxpool", 1.0),
)

_ANALYSED = ("packnet_slim_b", "packnet_slim_c", "densedepth")
_FITTED = ("packnet_slim_b", "densedepth")  # the headline pair: can each fit its own images?

QUICK = Budget(
    name="quick",
    purpose="smoke test: every step runs in minutes on a CPU; the networks are too small and too briefly "
    "trained to learn",
    smoke=True,
    width=0.0625,
    input_size=(64, 96),
    batch_size=8,
    lr=3e-3,
    loss_scales="finest",
    seeds=2,
    experiment_steps=40,
    experiment_length=320,
    eval_images=32,
    analysed_models=_ANALYSED,
    gradient_every=2,
    noise_batches=(2, 8),
    noise_every=10,
    collapse_every=10,
    collapse_images=8,
    fit_models=_FITTED,
    fit_images=(8,),
    fit_steps=40,
    fit_test_images=8,
    autoencoder_input=(32, 32),
    autoencoder_levels=(1, 2),
    autoencoder_runs=MATCHED_AUTOENCODERS,
    autoencoder_steps=150,
    autoencoder_batch=8,
    autoencoder_lr=1e-3,
    autoencoder_train_images=128,
    autoencoder_eval_images=16,
    complexity_input=(96, 320),
    complexity_models=("packnet_b", "packnet_slim_b", "densedepth"),
    complexity_repeats=1,
    attribution_images=2,
    property_examples=200,
)

STANDARD = Budget(
    name="standard",
    purpose="the in-between: small networks on small synthetic images, 3 seeds, aimed at every model of the "
    "matrix beating the constant predictor within 45 minutes on a 2-core CPU; at these numbers the PackNet "
    "variants and DenseDepth do not yet (README, Budgets), so the learned column decides which verdicts stand",
    smoke=False,
    width=0.0625,
    input_size=(64, 96),
    batch_size=8,
    lr=3e-3,
    loss_scales="finest",
    seeds=3,
    experiment_steps=1500,
    experiment_length=12000,  # steps x batch: no training image is seen twice
    eval_images=64,
    analysed_models=_ANALYSED,
    gradient_every=10,
    noise_batches=(2, 8),
    noise_every=25,
    collapse_every=250,
    collapse_images=16,
    fit_models=_FITTED,
    fit_images=(64,),
    fit_steps=600,  # 75 passes over the 64 images: DenseDepth fits them, PackNet does not (README, Budgets)
    fit_test_images=16,
    autoencoder_input=(32, 32),
    autoencoder_levels=(1, 2),
    autoencoder_runs=MATCHED_AUTOENCODERS,
    autoencoder_steps=2000,
    autoencoder_batch=8,
    autoencoder_lr=1e-3,
    autoencoder_train_images=256,
    autoencoder_eval_images=32,
    complexity_input=(96, 320),
    complexity_models=("packnet_b", "packnet_slim_b", "densedepth"),
    complexity_repeats=1,
    attribution_images=2,
    property_examples=200,
)

FULL = Budget(
    name="full",
    purpose="published widths at the dataset protocol's resolution with the seed's protocol (Adam 1e-4, "
    "batch 4, one epoch), 3 seeds: meant for a GPU",
    smoke=False,
    width=1.0,
    input_size=None,
    batch_size=4,
    lr=1e-4,
    loss_scales="finest",
    seeds=3,
    experiment_steps=None,
    experiment_length=None,
    eval_images=None,
    analysed_models=_ANALYSED,
    gradient_every=10,
    noise_batches=(4, 16),
    noise_every=50,
    collapse_every=250,
    collapse_images=16,
    fit_models=_FITTED,
    fit_images=(64,),
    fit_steps=2000,  # at Adam 1e-4 and batch 4: 125 passes over the 64 images (not run yet: meant for a GPU)
    fit_test_images=64,
    autoencoder_input=(128, 128),
    autoencoder_levels=(1, 2, 3, 4, 5),
    autoencoder_runs=(
        ("pack3d", 0.25),
        ("pack2d", 0.25),
        ("strided", 0.25),
        ("maxpool", 0.25),
        ("maxpool", 0.5),
        ("maxpool", 1.0),
        ("maxpool", 2.0),
        ("zoo_packnet", 0.25),
        ("zoo_densedepth", 0.25),
    ),
    autoencoder_steps=2000,
    autoencoder_batch=8,
    autoencoder_lr=1e-3,
    autoencoder_train_images=256,
    autoencoder_eval_images=32,
    complexity_input=(192, 640),
    complexity_models=None,
    complexity_repeats=10,
    attribution_images=8,
    property_examples=2000,
    workers=4,
)

BUDGETS: dict[str, Budget] = {b.name: b for b in (QUICK, STANDARD, FULL)}


def get_budget(name: str) -> Budget:
    """The registered budget ``name``; anything else is a one-line error naming ``--budget``."""
    if name not in BUDGETS:
        raise ProbeError(f"--budget: expected one of {', '.join(BUDGETS)}, got {name!r}")
    return BUDGETS[name]
