#!/usr/bin/env bash
# The GPU check (issue 15): CUDA tests, training-step speed and memory, the packing conv, the
# physical bound and the seed study's matrix at a reduced step count, within 8 minutes on one
# H100/H200. Writes bench/results/gpu-<device>.json and .md (see bench/gpu_check.py).
#
#   bash bench/gpu_check.sh             # on a GPU machine
#   bash bench/gpu_check.sh --dry-run   # anywhere: the same phases on the CPU at tiny sizes (< 60 s)
#
# Python packages the GPU image lacks (fvcore and its needs) may travel as wheels in .whl/
# (bench/gpu_wheels.sh makes them); they are installed into a scratch folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --root-user-action=ignore --disable-pip-version-check --no-index --no-deps \
        --no-compile --no-cache-dir --upgrade --target /tmp/probe-site .whl/*.whl
    export PYTHONPATH="/tmp/probe-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# The budget logic keeps to 8 minutes; the hard stop only guards against a hung phase
# (results are written after every phase, so a stopped run keeps what it measured).
exec timeout --signal=INT --kill-after=15 540 python3 bench/gpu_check.py "$@"
