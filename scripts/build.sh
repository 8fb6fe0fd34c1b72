#!/usr/bin/env bash
# Configures and builds tapegrad (Release) in build/, after installing what is missing.
# Two parallel jobs: the heavy xtensor templates need memory and the machine has 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "${TAPEGRAD_JOBS:-2}"
