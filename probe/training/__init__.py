"""Training: ``train(TrainConfig(...), hooks=[...]) -> TrainResult`` and its parts.

>>> from probe.training import TrainConfig, train, load_checkpoint   # doctest: +SKIP
>>> result = train(TrainConfig(model="packnet_slim_b", width=0.0625, input_size=(32, 64),
...                            dataset_length=16, max_steps=4, out="runs/tiny"))  # doctest: +SKIP
>>> model, run_config = load_checkpoint("runs/tiny")                            # doctest: +SKIP
"""

# the self-supervised objective registers itself in OBJECTIVES (objective.py does not import it: no cycle)
from probe.training import self_supervised as _self_supervised  # noqa: F401
from probe.training.checkpoint import load_checkpoint, save_checkpoint  # noqa: F401
from probe.training.config import TrainConfig  # noqa: F401
from probe.training.hooks import StepStats, TrainHook  # noqa: F401
from probe.training.loader import make_loader  # noqa: F401
from probe.training.loop import StepSetup, TrainResult, train, train_step  # noqa: F401
from probe.training.summary import TrainSummary, read_metrics, summarise_metrics  # noqa: F401
