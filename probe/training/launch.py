"""The worker entry of ``probe train --nproc-per-node N``: ``torchrun ... -m probe.training.launch --config FILE``.

``probe train --nproc-per-node N`` resolves its flags into a :class:`TrainConfig`,
writes it to ``DIR/launch.json`` and starts torchrun on this module; each process
reads the file and calls :func:`probe.training.train`, which joins the DDP job
from torchrun's environment variables.  To start torchrun yourself with the
ordinary flags (training probes included), run the CLI under it:
``torchrun --nproc-per-node N -m probe train --model packnet_b ...``.
"""

from __future__ import annotations

import sys

from probe.errors import ProbeError, one_line
from probe.io import read_json
from probe.training.config import TrainConfig
from probe.training.loop import train

USAGE = (
    "probe.training.launch: expected --config FILE (written by probe train --nproc-per-node); "
    "to pass train flags run torchrun ... -m probe train FLAGS"
)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) != 2 or args[0] != "--config":
            raise ProbeError(USAGE)
        train(TrainConfig.from_json(read_json(args[1])))
    except ProbeError as exc:
        print(f"probe: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
