#!/usr/bin/env bash
# The README's first command: installs what is missing, builds thaw, and runs its main job, `thaw demo`
# (docs/demo-and-reproduce.md). Arguments go to thaw demo, e.g. scripts/demo.sh --out /tmp/demo.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${THAW_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${THAW_CMAKE_ARGS:-}
cmake --build "$build" -j"$(nproc)" --target thaw
"$build/thaw" demo "$@"
