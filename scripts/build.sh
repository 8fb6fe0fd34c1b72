#!/usr/bin/env bash
# Configures and builds tapegrad (Release) in build/, after installing what is missing.
#   scripts/build.sh                   everything (the library, tests, examples, benchmarks)
#   scripts/build.sh TARGET...         only these targets and what they need
# Two parallel jobs: the heavy xtensor templates need memory and the machine has 2 cores.
# Warnings are shown; with TAPEGRAD_WERROR=ON in the environment (CI, .ci/run) they are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_WERROR="${TAPEGRAD_WERROR:-OFF}" >/dev/null
if [ $# -gt 0 ]; then
  cmake --build build -j "${TAPEGRAD_JOBS:-2}" --target "$@"
else
  cmake --build build -j "${TAPEGRAD_JOBS:-2}"
fi
