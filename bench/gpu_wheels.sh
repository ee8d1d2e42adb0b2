#!/usr/bin/env bash
# Wheels of what probe needs for bench/gpu_check.sh that the GPU machine's image lacks (fvcore and the
# packages it needs; all pure Python), built here into .whl/ (git-ignored) so that the device tool can
# carry them: run this once, then pass carry [".whl"] with `bash bench/gpu_check.sh`, which installs
# them into a scratch folder before it starts. Nothing on the GPU machine can reach a package index.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
mkdir -p .whl
python3 -m pip wheel -q --no-deps --wheel-dir .whl \
    fvcore==0.1.5.post20221221 iopath==0.1.10 yacs==0.1.8 termcolor==3.3.0
ls -1 .whl
