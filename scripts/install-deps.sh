#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages tapegrad needs to build, test and run, if any is missing.
# Extra packages can be named as arguments (scripts/fuzz.sh asks for clang this way).
# Uses apt-get as root, sudo otherwise, and says what to do when neither is possible.
set -euo pipefail

packages=(
  g++ cmake make
  libxtensor-dev libopenblas-dev
  libxtensor-blas-dev   # SVD for tapegrad::linalg (nn/positions/measures.hpp), on OpenBLAS's LAPACK
  libdnnl-dev libfftw3-dev libsentencepiece-dev libtbb-dev libboost-test-dev libbenchmark-dev libcli11-dev libutfcpp-dev nlohmann-json3-dev
  curl ca-certificates unzip gzip   # scripts/get-data.sh downloads and unpacks the data sets
  python3-numpy   # a test checks that numpy opens tapegrad's checkpoints
  libopenmpi-dev openmpi-bin   # data-parallel training (optional at build time; the tests use it)
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "tapegrad: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "tapegrad: cannot install packages (not root and no sudo). Please install:" >&2
  echo "  apt-get install ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tapegrad: apt-get not found; on a non-Debian system install the equivalents of:" >&2
  echo "  ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
