"""The self-supervised objective: depth and pose networks trained from video frames alone (packnet-sfm).

For a batch of windows (``image`` = target frame, ``context`` = source frames,
``K``, and the reported ``speed``/``dt``, see :mod:`probe.data.sequence`):

1. the depth model predicts its scales from the target image (training mode);
   each is converted to metres through the model's ``output_space`` and
   upsampled (nearest) to the input resolution;
2. the pose network (``posenet``, owned by this objective) predicts
   ``T_target_to_source`` for every source from the stacked frames;
3. :class:`probe.self_supervised_losses.SelfSupervisedLoss` weighs the
   reprojection (1), smoothness (``smoothness_weight``, packnet-sfm's 0.001)
   and velocity (``velocity_weight``; packnet-sfm uses 0.1) terms.

``pose_inputs`` is PoseNet's input (:class:`probe.models.posenet.PoseNet`):
``stack`` (packnet-sfm) or ``pairs`` (monodepth2: one shared network per
earlier-later pair, an earlier source's motion inverted).

With ``source_average_steps = N`` the first N steps average the reprojection
error over the source frames instead of taking the per-pixel minimum
(``SelfSupervisedLoss`` with ``{"reprojection": {"sources": "mean"}}``): the
minimum lets the network explain every pixel by one well-posed source and the
identity, so a source whose pose starts the wrong way (PoseNet turning the t-1
translation backwards) gets no gradient to recover.  0 (the default) is
packnet-sfm's minimum from the first step.

With ``automask_after = N`` auto-masking joins only after N steps.  At
initialisation the depth is several times too near, and with the identity
candidates in the minimum the loss falls from zero translation in *both*
directions (a translation pointing backwards explains the pixels the identity
cannot, and leaves the rest to it); which basin PoseNet enters depends on the
seed.  Without auto-masking backwards motion raises the loss from the start.

With ``exact_poses`` (``--pose-source exact``) the warp reads the dataset's exact
``poses`` instead of PoseNet's: a control in which only the depth network learns,
so a shortfall of the learnt poses shows as the difference between the two runs.
PoseNet is then neither run nor trained (its untrained weights still travel in
the checkpoint), and the velocity term compares the exact translations.

Without the velocity term depth and translation are recovered only up to one
unknown scale (evaluate with median scaling); the velocity term ties the
translation, hence the depth, to metres.  Any depth model trains this way.

The pose network's weights travel in the training state (``objective`` entry
of ``checkpoints/*.state.pt``), and its parameters share the depth model's
optimiser (packnet-sfm: Adam, the same learning rate for both).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe.data.sequence import SequenceDataset
from probe.depth_space import to_depth
from probe.errors import ProbeError
from probe.geometry import pose_vec_to_matrix
from probe.losses import LossOutput
from probe.models import build_model
from probe.models.common import output_scales, output_space_of
from probe.self_supervised_losses import DEFAULT_WEIGHTS, SelfSupervisedLoss, ViewSynthesisInputs
from probe.training.objective import OBJECTIVES, Forward, Objective


class SelfSupervisedObjective:
    """Photometric self-supervision of ``model`` with an owned ``pose_net``; see the module docstring."""

    def __init__(
        self,
        pose_net: nn.Module,
        loss: SelfSupervisedLoss,
        *,
        output_space: str,
        max_depth: float,
        phases: Sequence[tuple[int, SelfSupervisedLoss]] = (),
        exact_poses: bool = False,
    ) -> None:
        bounds = [until for until, _ in phases]
        if any(b <= 0 for b in bounds) or bounds != sorted(set(bounds)):
            raise ProbeError(f"self-supervised objective: phase ends must be increasing positive steps, got {bounds}")
        self.pose_net = pose_net
        self.pose_forward: nn.Module = pose_net
        self.loss = loss
        self.phases = list(phases)
        self.steps = 0  # training steps computed so far (checkpointed: a schedule resumes where it stopped)
        self.output_space = output_space
        self.max_depth = max_depth
        self.exact_poses = exact_poses

    def current_loss(self) -> SelfSupervisedLoss:
        """The loss of the first phase whose end lies beyond the steps computed so far, else ``loss``."""
        return next((loss for until, loss in self.phases if self.steps < until), self.loss)

    def __call__(self, model: nn.Module, batch: dict[str, Any], forward: Forward) -> LossOutput:
        loss = self.current_loss()
        self.steps += 1
        image, sources = batch["image"], batch["context"]
        outputs = forward(model, image)
        depths = [
            to_depth(upsample_depth(out.float(), image.shape[-2:]), self.output_space, self.max_depth)
            for out in output_scales(outputs)
        ]
        poses = self._exact_poses(batch) if self.exact_poses else self._predicted_poses(image, sources, forward)
        travelled = batch["speed"][:, None] * batch["context_dt"].abs()
        inputs = ViewSynthesisInputs(
            image.float(), sources.float(), depths, poses, batch["K"].float(), travelled.float(), batch["speed_valid"]
        )
        return loss(inputs)

    def _predicted_poses(self, image: torch.Tensor, sources: torch.Tensor, forward: Forward) -> torch.Tensor:
        """PoseNet's ``T_target_to_source`` from the stacked frames: ``[B,S,4,4]``."""
        vectors = forward(self.pose_forward, torch.cat([image, sources.flatten(1, 2)], dim=1))
        b, s = vectors.shape[:2]
        return pose_vec_to_matrix(vectors.float().reshape(-1, 6)).view(b, s, 4, 4)

    @staticmethod
    def _exact_poses(batch: dict[str, Any]) -> torch.Tensor:
        if "poses" not in batch:
            raise ProbeError("--pose-source exact: the dataset's windows hold no exact poses (synthetic video does)")
        return batch["poses"].float()

    def parameters(self) -> Iterator[nn.Parameter]:
        """The parameters the optimiser trains: PoseNet's, none with exact poses (PoseNet is not run)."""
        return iter(()) if self.exact_poses else self.pose_net.parameters()

    def state_dict(self) -> dict[str, Any]:
        return {"pose_net": self.pose_net.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "pose_net" not in state:
            raise ProbeError("--resume: the checkpoint holds no pose network (was it a supervised run?)")
        if "steps" not in state and self.phases:
            raise ProbeError("--resume: the checkpoint does not record its steps, so the loss schedule cannot resume")
        self.pose_net.load_state_dict(state["pose_net"])
        self.steps = int(state.get("steps", 0))

    def wrap(self, fn: Callable[[nn.Module], nn.Module]) -> None:
        if not self.exact_poses:  # an unused PoseNet under DDP would wait forever for its gradients
            self.pose_forward = fn(self.pose_net)


def upsample_depth(out: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """A depth scale at the input resolution: nearest-neighbour upsampling, as packnet-sfm's ``upsample_depth_maps``."""
    return out if out.shape[-2:] == size else F.interpolate(out, size=tuple(size), mode="nearest")


@OBJECTIVES.register(
    "self_supervised",
    description="photometric reprojection from video context + smoothness "
    "(+ velocity loss with --velocity-weight), with a PoseNet",
)
def _self_supervised(config: Any, model: nn.Module, dataset: Any, device: torch.device) -> Objective:
    if not isinstance(dataset, SequenceDataset):
        raise ProbeError(
            f"--objective self_supervised: dataset {dataset.info.name!r} has no context frames; use a "
            "video dataset (synthetic_video, synthetic_video_outdoor, kitti_raw)"
        )
    if config.pose_source == "exact" and len(dataset) and "poses" not in dataset[0]:
        raise ProbeError(
            f"--pose-source exact: dataset {dataset.info.name!r} gives no exact poses; use synthetic_video or "
            "synthetic_video_outdoor"
        )
    pose_net = build_model(
        "posenet",
        n_sources=len(dataset.context_offsets),
        width=config.pose_width,
        inputs=config.pose_inputs,
        translation_scale=config.pose_translation_scale,
        offsets=tuple(int(o) for o in dataset.context_offsets),
    ).to(device)
    weights = {
        **DEFAULT_WEIGHTS,
        "velocity": float(config.velocity_weight),
        "smoothness": float(config.smoothness_weight),
    }
    return SelfSupervisedObjective(
        pose_net,
        SelfSupervisedLoss(weights),
        output_space=output_space_of(model),
        max_depth=dataset.info.max_depth,
        phases=reprojection_schedule(config, weights),
        exact_poses=config.pose_source == "exact",
    )


def reprojection_schedule(config: Any, weights: dict[str, float]) -> list[tuple[int, SelfSupervisedLoss]]:
    """The early phases ``(end step, loss)`` that ``source_average_steps`` and ``automask_after`` ask for.

    Before step ``source_average_steps`` the reprojection averages the sources; before ``automask_after``
    it has no identity candidates.  None asked (both 0): no phases, packnet-sfm's loss from the first step.
    """
    phases, start = [], 0
    for end in sorted({n for n in (config.source_average_steps, config.automask_after) if n > 0}):
        options = {
            "sources": "mean" if start < config.source_average_steps else "min",
            "automask": start >= config.automask_after,
        }
        phases.append((end, SelfSupervisedLoss(weights, {"reprojection": options})))
        start = end
    return phases
