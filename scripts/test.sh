#!/usr/bin/env bash
# The README's test command: installs what is missing, builds (CPU, plus CUDA when a toolkit is found),
# runs the whole test suite through ctest, then scripts/check_test_run.py, which checks that ctest ran every
# Catch2 test case and that every skip has an allowed reason (no CUDA device, no pets-mini), and prints the
# summary last. .ci/run runs exactly this.
#   THAW_BUILD_DIR (default build), THAW_CMAKE_ARGS (extra configure flags, e.g. -DTHAW_CUDA=OFF)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
build=${THAW_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${THAW_CMAKE_ARGS:-}
cmake --build "$build" -j"$(nproc)"
junit="$build/ctest-junit.xml"
rm -f "$junit"
status=0
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --output-junit "$PWD/$junit" || status=$?
python3 scripts/check_test_run.py --build-dir "$build" --junit "$junit" || status=1
exit "$status"
