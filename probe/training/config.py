"""The training configuration: one dataclass, resolved once, recorded in ``config.json``.

Defaults are the seed study's protocol (Adam, lr 1e-4, batch size 4, one epoch,
the DenseDepth loss on the finest output).  Device-dependent defaults (precision,
channels_last) are left as ``None`` and filled in by :meth:`TrainConfig.resolved`,
as are the model options the dataset protocol implies (PackNet's ``min_depth``,
:func:`probe.models.dataset_model_options`), so that the recorded config says
what actually ran.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from probe.errors import ProbeError
from probe.limits import (MAX_BATCH_SIZE, MAX_EPOCHS, MAX_ITEMS, MAX_STEPS, check_count, check_input_size,
                          check_optional_count, check_positive_float, check_width, check_workers)
from probe.losses import DEFAULT_LOSS_SCALES, check_loss_scales
from probe.models import list_models, model_task
from probe.registry import Registry
from probe.seeding import check_seed
from probe.training.objective import OBJECTIVES

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainConfig:
    """Everything one training run needs.

    >>> cfg = TrainConfig(model="packnet_slim_b", width=0.0625, dataset="synthetic",
    ...                   input_size=(32, 64), max_steps=4, out=Path("runs/x"))
    >>> cfg.resolved(torch.device("cpu")).precision
    'fp32'
    """

    model: str = "packnet_slim_b"
    model_options: dict[str, Any] = field(default_factory=dict)
    width: float = 1.0
    dataset: str = "synthetic"
    data_root: Path | None = None
    input_size: tuple[int, int] | None = None
    split: str = "train"
    dataset_length: int | None = None
    augment: bool = True
    skip_bad: bool = False  # replace unreadable items and report them at the end instead of stopping
    dataset_options: dict[str, Any] = field(default_factory=dict)  # reader options, e.g. split_file=...
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 4
    lr: float = 1e-4
    optimizer: str = "adam"
    loss: str = "densedepth"  # the supervised objective's loss
    loss_scales: str = DEFAULT_LOSS_SCALES  # "finest" | "all": which output scales the loss charges
    objective: str = "supervised"  # or "self_supervised" (video datasets; probe.training.objective)
    velocity_weight: float = 0.0  # self-supervised: weight of the velocity loss (packnet-sfm: 0.1)
    smoothness_weight: float = 1e-3  # self-supervised: weight of the edge-aware smoothness (packnet-sfm: 0.001)
    pose_width: float = 1.0  # self-supervised: channel multiplier of the pose network
    pose_lr: float | None = None  # self-supervised: the pose network's learning rate (default: --lr, as packnet-sfm)
    device: str = "auto"
    seed: int = 0
    workers: int = 0
    precision: str | None = None
    compile: bool = False
    channels_last: bool | None = None
    activation_checkpointing: bool = False  # recompute the model's checkpoint_stages in backward: less memory
    grad_clip: float | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    deterministic: bool = False
    tensorboard: bool = False
    out: Path = Path("runs/train")

    def validate(self) -> None:
        """Raise a ProbeError naming the flag for any value outside its domain (limits: :mod:`probe.limits`)."""
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
        OPTIMIZERS.entry(self.optimizer)

    def _validate_objective(self) -> None:
        if model_task(self.model) != "depth":
            raise ProbeError(f"--model {self.model}: a {model_task(self.model)} model; train a depth model "
                             f"({', '.join(list_models())})")
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
            input_size=tuple(self.input_size) if self.input_size is not None else None,
            model_options={**implied, **self.model_options},
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild a config from its ``to_json`` form (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProbeError(f"train config: unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        for key in ("out", "data_root"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        if values.get("input_size") is not None:
            values["input_size"] = tuple(values["input_size"])
        return cls(**values)


OPTIMIZERS: Registry = Registry("optimizer")


@OPTIMIZERS.register("adam", description="Adam with PyTorch defaults (betas 0.9/0.999), the seed's choice")
def _adam(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


def parse_option_value(text: str) -> Any:
    """``"true"`` -> True, ``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"none"`` -> None, else the string."""
    lowered = text.strip().lower()
    literals = {"true": True, "false": False, "none": None, "null": None}
    if lowered in literals:
        return literals[lowered]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text.strip()


def parse_model_options(items: list[str] | tuple[str, ...], flag: str = "--model-option",
                        example: str = "activation=leaky_relu") -> dict[str, Any]:
    """``["activation=leaky_relu", "skips=false"]`` -> ``{"activation": "leaky_relu", "skips": False}``.

    >>> parse_model_options(["output_scale=half", "min_depth=0.5"])
    {'output_scale': 'half', 'min_depth': 0.5}
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ProbeError(f"{flag}: expected KEY=VALUE (e.g. {example}), got {item!r}")
        options[key.strip()] = parse_option_value(value)
    return options

