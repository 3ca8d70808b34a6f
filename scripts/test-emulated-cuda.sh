#!/usr/bin/env bash
# The CUDA backend's tests without a GPU: builds thaw with -DTHAW_CUDA=EMULATE, where every .cu file is
# compiled as C++ that runs on the CPU (tests/cuda_emulation/: each GPU thread a fiber, tensor-core mma.sync
# emulated from PTX's fragment layouts), and runs every test case that exercises the CUDA device: the op
# parity tables in every precision, folding, the feature cache, training runs, the loader's CUDA target and
# device transforms. It checks the kernels' logic (indices, tiles, edges, barriers, warp exchanges,
# fragments), not their speed, races or the hardware's rounding inside an mma: scripts/gpu-check.sh does
# that on a GPU. scripts/test.sh runs it after the main suite; on its own:
#   scripts/test-emulated-cuda.sh            (THAW_EMULATED_BUILD_DIR, default build-emulated)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${THAW_EMULATED_BUILD_DIR:-build-emulated}
tests='CUDA|cuda'  # the ctest entries whose names say they run on the device
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTHAW_CUDA=EMULATE
cmake --build "$build" -j"$(nproc)" --target thaw \
  test_cuda_parity test_conv_bn_fold test_feature_cache test_train test_data_loader test_parity_resnet
junit="$build/ctest-junit.xml"
rm -f "$junit"
status=0
ctest --test-dir "$build" -R "$tests" --no-tests=error --output-on-failure -j"$(nproc)" \
  --output-junit "$PWD/$junit" || status=$?
# No CUDA skip is allowed here: the emulated device is always present.
python3 scripts/check_test_run.py --build-dir "$build" --junit "$junit" --tests "$tests" \
  --allow-skip "pets-mini not found" || status=1
exit "$status"
