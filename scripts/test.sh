#!/usr/bin/env bash
# The README's test command: installs what is missing, builds (CPU, plus CUDA when a toolkit is found),
# and runs the whole test suite through ctest. .ci/run runs exactly this.
#   THAW_BUILD_DIR (default build), THAW_CMAKE_ARGS (extra configure flags, e.g. -DTHAW_CUDA=OFF)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${THAW_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${THAW_CMAKE_ARGS:-}
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
