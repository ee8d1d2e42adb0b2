"""The training configuration: one dataclass, resolved once, recorded in ``config.json``.

Defaults are the seed study's protocol (Adam, lr 1e-4, batch size 4, one epoch,
the DenseDepth loss on the finest output).  Device-dependent defaults (precision,
channels_last) are left as ``None`` and filled in by :meth:`TrainConfig.resolved`,
as are the model options the dataset protocol implies (PackNet's ``min_depth``,
:func:`probe.models.dataset_model_options`), so that the recorded config says
what actually ran.
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from probe.errors import ProbeError
from probe.limits import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_ITEMS,
    MAX_STEPS,
    check_count,
    check_input_size,
    check_optional_count,
    check_positive_float,
    check_width,
    check_workers,
)
from probe.losses import DEFAULT_LOSS_SCALES, check_loss_scales
from probe.models import list_models, model_task
from probe.models.posenet import INPUTS as POSE_INPUTS
from probe.options import (
    data_root_option,
    dataset_option,
    device_option,
    input_size_option,
    model_options_option,
    option,
    out_option,
    parse_data_options,
    seed_option,
    width_option,
)
from probe.schema import SchemaError, decode
from probe.seeding import check_seed
from probe.training.objective import OBJECTIVES

#: Where the self-supervised warp's poses come from (``--pose-source``): PoseNet, or the dataset's exact poses.
POSE_SOURCES = ("posenet", "exact")

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

#: optimizer name -> factory(params, lr); Adam with PyTorch's defaults (betas 0.9/0.999) is the seed's choice
OPTIMIZERS: dict[str, Callable[[Any, float], torch.optim.Optimizer]] = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr)
}

#: Learning-rate schedules: name -> factor(step, total_steps, decay_every), the multiple of each parameter group's
#: own learning rate (``--lr``, ``--pose-lr``) used for optimizer step ``step`` (1 .. total_steps).  A pure function
#: of the step, so ``--resume`` continues the schedule exactly.
LR_SCHEDULES: dict[str, Callable[[int, int, int | None], float]] = {
    "constant": lambda step, total, every: 1.0,
    # half a cosine from 1 at the first step to 1% at the last (a floor keeps the last steps moving)
    "cosine": lambda step, total, every: 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / max(1, total - 1))),
    # packnet-sfm's StepLR: halved after every ``decay_every`` steps
    "step": lambda step, total, every: 0.5 ** ((step - 1) // every) if every else 1.0,
}


@dataclass
class TrainConfig:
    """Everything one training run needs.

    >>> cfg = TrainConfig(model="packnet_slim_b", width=0.0625, dataset="synthetic",
    ...                   input_size=(32, 64), max_steps=4, out=Path("runs/x"))
    >>> cfg.resolved(torch.device("cpu")).precision
    'fp32'
    """

    model: str = option("packnet_slim_b", help="model name (see `probe models`)")
    model_options: dict[str, Any] = model_options_option()
    width: float = width_option()
    dataset: str = dataset_option()
    data_root: Path | None = data_root_option()
    input_size: tuple[int, int] | None = input_size_option()
    split: str = "train"
    dataset_length: int | None = option(None, help="number of generated samples (synthetic data)")
    augment: bool = option(True, flag="--augment/--no-augment", help="the seed's flip + channel-swap augmentation")
    skip_bad: bool = option(
        False, flag="--skip-bad", help="skip unreadable items and list them at the end instead of stopping"
    )
    dataset_options: dict[str, Any] = option(
        default_factory=dict,
        flag="--data-option",
        parse=parse_data_options,
        help="dataset reader option KEY=VALUE (repeatable), e.g. split_file=eigen.txt",
    )
    # None: as many passes as --max-steps needs (the analyses' training runs: exactly the steps they record)
    epochs: int | None = option(1, help="passes over the training split")
    max_steps: int | None = option(None, help="stop after this many optimizer steps")
    batch_size: int = option(4, help="images per step (per process under DDP)")
    lr: float = option(1e-4, help="Adam learning rate")
    optimizer: str = "adam"
    loss: str = option("densedepth", help="densedepth|l1_inverse|silog|berhu (the supervised objective's loss)")
    loss_scales: str = option(
        DEFAULT_LOSS_SCALES,
        help="finest (one objective for every model, the seed's) | all (mean over PackNet's output scales)",
    )
    objective: str = option(
        "supervised", help="supervised|self_supervised (video datasets: frames, PoseNet, no depth labels)"
    )
    velocity_weight: float = option(0.0, help="self-supervised: weight of the velocity loss (packnet-sfm: 0.1)")
    smoothness_weight: float = option(1e-3, help="self-supervised: edge-aware smoothness weight (packnet-sfm: 0.001)")
    pose_width: float = option(1.0, help="self-supervised: PoseNet channel multiplier")
    pose_lr: float | None = option(None, help="self-supervised: PoseNet learning rate (default: --lr)")
    pose_translation_scale: float = option(
        0.01,
        help="self-supervised: factor on PoseNet's translation outputs (packnet-sfm: 0.01, as the rotations'); "
        "larger learns a varying speed sooner, from the same initial motion",
    )
    pose_inputs: str = option(
        "stack",
        help="self-supervised: PoseNet input: stack (packnet-sfm: target and sources on the channels) | pairs "
        "(monodepth2: one earlier-later pair per source through one network)",
    )
    pose_source: str = option(
        "posenet",
        help="self-supervised: the warp's poses: posenet (learnt with the depth, packnet-sfm) | exact (the "
        "dataset's exact poses, a control in which only the depth learns)",
    )
    automask_after: int = option(
        0,
        help="self-supervised: auto-mask static pixels only after N steps (before: every pixel reads the warped "
        "sources; 0: from the first step, packnet-sfm)",
    )
    source_average_steps: int = option(
        0,
        help="self-supervised: average the photometric error over the source frames for the first N steps, then "
        "the per-pixel minimum (0: the minimum from the start, packnet-sfm)",
    )
    device: str = device_option()
    seed: int = seed_option()
    # Loading overlaps the step in 2 worker processes, as `probe train` always did: GPU-first, and on a CPU
    # the synthetic renderer or a dataset archive is read beside the step instead of before it.
    workers: int = option(2, help="data-loading worker processes (0: main process)")
    precision: str | None = option(None, help="bf16|fp16|fp32 (default: bf16 on CUDA, fp32 on CPU)")
    compile: bool = option(False, flag="--compile", help="torch.compile the model")
    channels_last: bool | None = option(
        None, flag="--channels-last/--no-channels-last", help="NHWC memory format (default: on for CUDA)"
    )
    activation_checkpointing: bool = option(
        False,
        flag="--activation-checkpointing",
        help="recompute the model's stages in backward: less memory, about one more forward of time",
    )
    lr_schedule: str = option(
        "constant",
        help="constant | cosine (half a cosine down to 0.01 x each group's lr at the last step) | step (halved every "
        "--lr-decay-every steps, packnet-sfm's StepLR)",
    )
    lr_decay_every: int | None = option(None, help="with --lr-schedule step: halve the learning rate every N steps")
    grad_clip: float | None = option(None, help="clip the total gradient norm to this value")
    checkpoint_every: int | None = option(None, help="also keep checkpoints/step_N every N steps")
    resume: bool = option(False, flag="--resume", help="continue the run in --out from its last checkpoint")
    deterministic: bool = option(
        False, flag="--deterministic", help="deterministic kernels (bitwise-reproducible on CPU)"
    )
    tensorboard: bool = option(
        False, flag="--tensorboard", help="also log to DIR/tensorboard (needs probe[tensorboard])"
    )
    out: Path = out_option(Path("runs/train"))

    def validate(self) -> None:
        """Raise a ProbeError naming the flag for any value outside its domain (limits: :mod:`probe.limits`)."""
        if self.epochs is None:
            if self.max_steps is None:
                raise ProbeError("--epochs: give a number of passes, or --max-steps to train exactly that many steps")
        else:
            check_count("--epochs", self.epochs, MAX_EPOCHS)
        check_count("--batch-size", self.batch_size, MAX_BATCH_SIZE)
        check_optional_count("--max-steps", self.max_steps, MAX_STEPS)
        check_optional_count("--checkpoint-every", self.checkpoint_every, MAX_STEPS)
        check_optional_count("--dataset-length", self.dataset_length, MAX_ITEMS)
        check_positive_float("--lr", self.lr, what="a positive learning rate")
        if self.grad_clip is not None:
            check_positive_float("--grad-clip", self.grad_clip, what="a positive max norm")
        check_workers(self.workers)
        check_width(self.width)
        check_input_size(self.input_size)
        self._validate_objective()
        check_seed(self.seed)
        check_loss_scales(self.loss_scales)
        if "width" in self.model_options:
            raise ProbeError("--model-option width: set the channel multiplier with --width")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ProbeError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ProbeError(f"--lr-schedule: expected one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if (self.lr_schedule == "step") != (self.lr_decay_every is not None):
            raise ProbeError("--lr-decay-every: give it (a number of steps) exactly when --lr-schedule is step")
        if self.lr_decay_every is not None:
            check_count("--lr-decay-every", self.lr_decay_every, MAX_STEPS)
        if self.optimizer not in OPTIMIZERS:
            raise ProbeError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")

    def _validate_objective(self) -> None:
        if model_task(self.model) != "depth":
            raise ProbeError(
                f"--model {self.model}: a {model_task(self.model)} model; train a depth model "
                f"({', '.join(list_models())})"
            )
        OBJECTIVES.entry(self.objective)
        if not (isinstance(self.velocity_weight, (int, float)) and self.velocity_weight >= 0):
            raise ProbeError(f"--velocity-weight: expected a weight >= 0, got {self.velocity_weight}")
        if self.velocity_weight > 0 and self.objective != "self_supervised":
            raise ProbeError("--velocity-weight: only with --objective self_supervised")
        if not (isinstance(self.smoothness_weight, (int, float)) and self.smoothness_weight >= 0):
            raise ProbeError(f"--smoothness-weight: expected a weight >= 0, got {self.smoothness_weight}")
        if not (isinstance(self.pose_width, (int, float)) and self.pose_width > 0):
            raise ProbeError(f"--pose-width: expected a positive channel multiplier, got {self.pose_width}")
        if self.pose_lr is not None and not self.pose_lr > 0:
            raise ProbeError(f"--pose-lr: expected a positive learning rate, got {self.pose_lr}")
        if not (
            isinstance(self.pose_translation_scale, (int, float))
            and math.isfinite(self.pose_translation_scale)
            and self.pose_translation_scale > 0
        ):
            raise ProbeError(f"--pose-translation-scale: expected a positive factor, got {self.pose_translation_scale}")
        if self.pose_translation_scale != 0.01 and self.objective != "self_supervised":
            raise ProbeError("--pose-translation-scale: only with --objective self_supervised")
        if self.pose_inputs not in POSE_INPUTS:
            raise ProbeError(f"--pose-inputs: expected one of {', '.join(POSE_INPUTS)}, got {self.pose_inputs!r}")
        if self.pose_inputs != "stack" and self.objective != "self_supervised":
            raise ProbeError("--pose-inputs: only with --objective self_supervised")
        if self.pose_source not in POSE_SOURCES:
            raise ProbeError(f"--pose-source: expected one of {', '.join(POSE_SOURCES)}, got {self.pose_source!r}")
        if self.pose_source != "posenet" and self.objective != "self_supervised":
            raise ProbeError("--pose-source: only with --objective self_supervised")
        check_optional_count("--source-average-steps", self.source_average_steps or None, MAX_STEPS)
        if self.source_average_steps and self.objective != "self_supervised":
            raise ProbeError("--source-average-steps: only with --objective self_supervised")
        check_optional_count("--automask-after", self.automask_after or None, MAX_STEPS)
        if self.automask_after and self.objective != "self_supervised":
            raise ProbeError("--automask-after: only with --objective self_supervised")

    def resolved(self, device: torch.device) -> "TrainConfig":
        """Fill the defaults: bf16 and channels_last on CUDA, fp32 on CPU; model options from the dataset protocol."""
        from probe.data import dataset_info
        from probe.models import dataset_model_options

        self.validate()
        on_cuda = device.type == "cuda"
        implied = dataset_model_options(self.model, dataset_info(self.dataset))
        return replace(
            self,
            precision=self.precision or ("bf16" if on_cuda else "fp32"),
            channels_last=on_cuda if self.channels_last is None else self.channels_last,
            out=Path(self.out),
            data_root=Path(self.data_root) if self.data_root is not None else None,
            input_size=(int(self.input_size[0]), int(self.input_size[1])) if self.input_size is not None else None,
            model_options={**implied, **self.model_options},
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> "TrainConfig":
        """Rebuild a config from its ``to_json`` form: unknown keys and values of the wrong type are errors
        naming the key; a missing key takes its default (configs written before the field existed)."""
        if not isinstance(data, dict):
            raise SchemaError(f"train config: expected a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        unknown = sorted(set(data) - set(hints))
        if unknown:
            raise ProbeError(f"train config: unknown field(s) {', '.join(unknown)}")
        return cls(**{key: decode(hints[key], value, key) for key, value in data.items()})
