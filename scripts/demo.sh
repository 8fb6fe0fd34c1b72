#!/usr/bin/env bash
# The main job: installs what is missing, builds, then trains a model and shows what it learned.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build/examples/spiral_mlp "$@"
