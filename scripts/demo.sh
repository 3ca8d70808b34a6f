#!/usr/bin/env bash
# The README's first command: installs what is missing, builds thaw, and runs its main job.
# (Until `thaw demo` exists, the main job is `thaw smoke`: a small ConvNet trained on the CPU backend.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${THAW_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${THAW_CMAKE_ARGS:-}
cmake --build "$build" -j"$(nproc)" --target thaw_cli
"$build/thaw" smoke "$@"
