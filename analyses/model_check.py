"""``probe check-model``: the model contract's clauses (probe.models.check) plus fvcore MACs.

The contract checks live in the core (:func:`probe.models.check.check_model`); this
module adds the one clause that needs an analysis, the MAC count of
:func:`analyses.complexity.count_macs`, so ``check-model`` reports the same number
``probe complexity`` would.

>>> report = run(CheckConfig("examples/unet.py:build", width=0.0625, device="cpu"))  # doctest: +SKIP
>>> report.clause("MACs").detail                                                   # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.nn as nn

from analyses.complexity import count_macs
from probe.errors import one_line
from probe.models.check import CheckConfig, Clause, ContractReport, check_model

__all__ = ["CheckConfig", "macs_clause", "run"]


def macs_clause(model: nn.Module, images: torch.Tensor) -> Clause:
    """fvcore MACs of one eval forward of one image; fails when fvcore cannot trace the model."""
    h, w = images.shape[-2:]
    try:
        macs = count_macs(model.eval(), images[:1])
    except Exception as exc:  # fvcore's tracer raises many types for untraceable forwards
        return Clause(
            "MACs",
            "failed",
            f"fvcore cannot trace the eval forward ({type(exc).__name__}: {one_line(exc)[:200]})",
            "make the eval forward traceable by torch.jit.trace (no Python branches on tensor values); "
            "probe complexity needs it too",
        )
    unsupported = sum(macs.unsupported_ops.values())
    note = (
        f"; {unsupported} call(s) of operators without a MAC rule ({', '.join(macs.unsupported_ops)}) count 0"
        if unsupported
        else ""
    )
    return Clause("MACs", "passed", f"{macs.total / 1e9:.4g} GMACs for one {h}x{w} image (fvcore){note}")


def run(config: CheckConfig) -> ContractReport:
    """Every contract clause of :func:`probe.models.check.check_model`, then MACs."""
    return check_model(config, extra_checks={"MACs": macs_clause})
