"""Entry point for torchrun: ``torchrun --nproc-per-node N -m probe.training.launch [probe train flags]``.

Each process parses the same ``probe train`` flags (or, from the
``probe train --nproc-per-node`` shortcut, ``--config FILE`` holding a resolved
TrainConfig as JSON) and calls :func:`probe.training.train`, which joins the
DDP job from torchrun's environment variables.
"""

from __future__ import annotations

import sys

from probe.errors import ProbeError
from probe.io import read_json


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["--config"]:
        import cli

        cli.main(["train", *args])
        return
    from probe.training.config import TrainConfig
    from probe.training.loop import train

    try:
        if len(args) != 2:
            raise ProbeError("probe.training.launch: expected --config FILE or `probe train` flags")
        train(TrainConfig.from_json(read_json(args[1])))
    except ProbeError as exc:
        print(f"probe: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
