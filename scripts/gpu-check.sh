#!/usr/bin/env bash
# The one command for a GPU machine (docs/building.md "CUDA tests"; the project's developers run it on a lent
# H100/H200 with Ubuntu 24.04, CUDA 13, no network): builds thaw with CUDA there, runs every GPU test, runs the op tests again under compute-sanitizer memcheck,
# runs the ResNet speed benchmark beside PyTorch, and prints a summary table last. Logs go to $OUT (the
# device tool brings that folder back), or to gpu-check-logs/ when OUT is unset.
#
# A machine without stb and toml++ and without network gets Debian's packages carried in. Here, once:
#   mkdir -p .deps && (cd .deps && apt-get download libstb-dev libstb0 libtomlplusplus-dev)
# (.deps/ is in .gitignore), then through the device tool:
#   scripts/gpu-check.sh        (with .deps/ copied along to the GPU machine)
# Stages: THAW_GPU_STAGES="build tests data precision bench parity memcheck kernels worklog demo precision-demo
# pipeline weights" (default: all, in that order; together they take longer than one device call, so pick: for the
# tensor-core kernels and the device transforms THAW_GPU_STAGES="build tests data", then on the still-warm
# machine, whose build-gpu/ stays, THAW_GPU_STAGES="precision"; each about 10 minutes at most). The pipeline stage needs real JPEGs carried along: scripts/gpu-data.sh PETS_MINI_DIR makes
# .gpu-data/pets (ignored by git); carry .gpu-data with the call.
# Each stage has a time limit so that the summary prints inside the device call; each summary line is also
# printed as soon as it is known, so a call cut short still shows how far it got.
set -uo pipefail
cd "$(dirname "$0")/.."

out=${OUT:-gpu-check-logs}
mkdir -p "$out"
stages=${THAW_GPU_STAGES:-build tests data precision bench parity memcheck kernels worklog demo precision-demo pipeline weights}
build=build-gpu
jobs=$(nproc)
summary=()
started=$(date +%s)

note() {
  summary+=("$(printf '%-34s %s' "$1" "$2")")
  echo "[gpu-check] ${summary[-1]}"
}
has_stage() { [[ " $stages " == *" $1 "* ]]; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

# Header-only packages carried as .deb files, unpacked beside the system (never into /).
deps=/tmp/thaw-deps
if compgen -G ".deps/*.deb" >/dev/null; then
  for f in .deps/*.deb; do dpkg -x "$f" "$deps"; done
fi

note "GPU" "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)"

if has_stage build; then
  t0=$(date +%s)
  python=$(command -v python3)
  if cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTHAW_CUDA=ON -DCMAKE_PREFIX_PATH="$deps/usr" \
      -DTHAW_TORCH_PYTHON="$python" >"$out/build.log" 2>&1 &&
    timeout 300 cmake --build "$build" -j"$jobs" --target thaw test_cuda_parity test_parity_resnet \
      test_data_loader test_device_transforms test_tensor test_train test_feature_cache test_conv_bn_fold \
      conv_worklog_v1_naive conv_worklog_v2_shared_tiles conv_worklog_v3_register_tiles \
      conv_worklog_v4_double_buffer >>"$out/build.log" 2>&1; then
    note "build (CUDA, sm_90)" "ok in $(elapsed "$t0")"
  else
    note "build (CUDA, sm_90)" "FAILED in $(elapsed "$t0"): see build.log"
    tail -40 "$out/build.log"
    stages=""
  fi
fi

# Runs one Catch2 binary with a filter and a time limit; records pass/fail and the assertion counts.
run_tests() {
  local label=$1 limit=$2 log=$3
  shift 3
  local t0 status
  t0=$(date +%s)
  timeout "$limit" "$@" >>"$log" 2>&1
  status=$?
  local counts
  counts=$(grep -E "^(All tests passed|test cases:)" "$log" | tail -1)
  if [ $status -eq 0 ]; then
    note "$label" "passed in $(elapsed "$t0"): $counts"
  elif [ $status -eq 124 ]; then
    note "$label" "TIMED OUT after ${limit} s: $counts"
  else
    note "$label" "FAILED (exit $status) in $(elapsed "$t0"): $counts"
  fi
}

if has_stage tests; then
  log="$out/tests.log"
  : >"$log"
  run_tests "CUDA op parity (test_cuda_parity)" 200 "$log" "$build/tests/test_cuda_parity" "[cuda]"
  run_tests "loader batches on CUDA" 30 "$log" "$build/tests/test_data_loader" \
    "loader: batches on a CUDA device equal the CPU's"
  run_tests "tensor tests (CUDA copies)" 30 "$log" "$build/tests/test_tensor"
  run_tests "training run on CUDA vs CPU" 90 "$log" "$build/tests/test_train" "[cuda]"
  run_tests "feature cache on CUDA" 60 "$log" "$build/tests/test_feature_cache" "[cuda]"
  run_tests "conv + BatchNorm folded on CUDA" 60 "$log" "$build/tests/test_conv_bn_fold" "[cuda]"
fi

# The device transforms (data/device_transforms.h): the loader's CUDA batches against the CPU loader's, bit
# for bit; training runs with and without them; memcheck and initcheck (no byte read unwritten) on the kernels.
if has_stage data; then
  log="$out/data.log"
  : >"$log"
  # Real JPEGs for the loader test on pets images, when scripts/gpu-data.sh's subset was carried along.
  [ -d .gpu-data/pets/images ] && export THAW_TEST_JPEGS="$PWD/.gpu-data/pets/images"
  run_tests "device transforms vs the CPU loader" 60 "$log" "$build/tests/test_data_loader" \
    "loader: device transforms*"
  run_tests "device transforms: training runs" 90 "$log" "$build/tests/test_train" "*device_transforms*"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for tool in memcheck initcheck; do  # no shared memory in these kernels: racecheck has nothing to check
    run_tests "$tool: device transforms" 120 "$log" "$sanitizer" --tool "$tool" --error-exitcode 3 \
      "$build/tests/test_data_loader" "loader: device transforms on a CUDA device*"
  done
fi

# Runs one benchmark script with a time limit, its output in $out/LOG; records ok or failed.
run_bench() {
  local label=$1 limit=$2 log=$3
  shift 3
  local t0
  t0=$(date +%s)
  if PYTHONUNBUFFERED=1 timeout "$limit" python3 "$@" >"$out/$log" 2>&1; then
    note "$label" "ok in $(elapsed "$t0")"
  else
    note "$label" "FAILED or timed out in $(elapsed "$t0"): see $log"
  fi
}

# The tensor-core convolutions (docs/precision.md): HMMA instructions in the SASS, racecheck on them, the
# conv rows of bench kernels against cuDNN TF32, and the ResNet steps against PyTorch in tf32 and bf16.
if has_stage precision; then
  cuobjdump=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
  if [ -x "$cuobjdump" ]; then
    sass=$(for f in "$build"/kernels/CMakeFiles/thaw_kernels.dir/cuda/conv2d_*.cu.o; do
      "$cuobjdump" -sass "$f"; done 2>/dev/null | grep -oE "HMMA\.[0-9A-Z.]+" | sort | uniq -c | tr -s ' ' |
      paste -sd, -)
    note "conv SASS tensor-core instructions" "${sass:-NONE: see cuobjdump}"
  else
    note "conv SASS tensor-core instructions" "not checked: no cuobjdump here"
  fi
  log="$out/precision.log"
  : >"$log"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  run_tests "racecheck: conv in tf32 and bf16" 150 "$log" "$sanitizer" --tool racecheck --error-exitcode 3 \
    "$build/tests/test_cuda_parity" "CUDA conv2d in tf32 and bf16*"
  run_tests "kernels vs cuDNN TF32 (conv rows)" 200 "$log" "$build/thaw" bench kernels --precision tf32 \
    --filter conv2d --model resnet18,resnet50 --batch 64 --repeat 5 --out "$out/kernels-tf32"
  note "kernels tf32: verdicts" "$(grep -E '^verdicts:' "$log" | tail -1 | sed 's/^verdicts: //')"
  for p in tf32 bf16; do
    run_bench "ResNet bench, thaw $p" 150 "bench-$p.log" bench/resnet_gpu.py --thaw "$build/thaw" \
      --precision "$p" --repeat 5
  done
fi

if has_stage bench; then
  run_bench "ResNet bench (bench/resnet_gpu.py)" 200 bench.log bench/resnet_gpu.py --thaw "$build/thaw" \
    --json-out /tmp/thaw-bench.json
fi

if has_stage parity; then
  log="$out/parity.log"
  : >"$log"
  run_tests "ResNet parity on CUDA (14 cases)" 270 "$log" "$build/tests/test_parity_resnet" "[cuda]"
  # Catch2 wraps the WARN lines: join each message back into one line.
  awk '/warning:$/ {getline; line=$0; while ((getline nxt) > 0 && nxt ~ /^  /) line = line " " nxt; print line}' \
    "$log" | grep "on cuda:0: float32" | sed 's/^ *//; s/  */ /g' >/tmp/thaw-parity-cuda.txt
fi

if has_stage memcheck; then
  log="$out/memcheck.log"
  : >"$log"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  # --report-api-errors no: the allocator test provokes an out-of-memory cudaMalloc on purpose.
  run_tests "memcheck: CUDA op parity" 180 "$log" "$sanitizer" --tool memcheck --report-api-errors no \
    --error-exitcode 3 "$build/tests/test_cuda_parity" "[cuda]"
  note "memcheck" "$(grep -E 'ERROR SUMMARY' "$log" | tail -1 | sed 's/^=* *//')"
fi

# thaw bench kernels: every op of a ResNet18/50 training step checked against cuDNN, then timed beside it
# (docs/benchmarks.md). Its program, thaw-bench-kernels, is built with thaw (a dependency of it).
if has_stage kernels; then
  log="$out/kernels.log"
  : >"$log"
  run_tests "kernels vs cuDNN (bench kernels)" 240 "$log" "$build/thaw" bench kernels \
    --model resnet18,resnet50 --batch 64 --repeat 5 --out "$out/kernels"
  verdicts=$(grep -E '^verdicts:' "$log" | tail -1 | sed 's/^verdicts: //')
  note "kernels: verdicts" "${verdicts:-none: see kernels.log}"
fi

# thaw demo on CUDA: the whole training path (pretrain, save, load, four fine-tunings) on the GPU.
# The convolution worklog (docs/kernel-worklog.md): each step checked and timed, then thaw's kernel in fp32 and
# tf32 beside cuDNN on the same shape.
if has_stage worklog; then
  t0=$(date +%s)
  if timeout 180 bench/conv_worklog/run.sh "$build" >"$out/worklog.log" 2>&1; then
    note "conv worklog (bench/conv_worklog)" "ok in $(elapsed "$t0")"
  else
    note "conv worklog (bench/conv_worklog)" "FAILED or timed out in $(elapsed "$t0"): see worklog.log"
  fi
fi

if has_stage demo; then
  log="$out/demo.log"
  t0=$(date +%s)
  if timeout 180 "$build/thaw" demo --device cuda --out /tmp/thaw-demo-cuda >"$log" 2>&1; then
    note "demo on CUDA (thaw demo)" "passed in $(elapsed "$t0")"
  else
    note "demo on CUDA (thaw demo)" "FAILED or timed out in $(elapsed "$t0"): see demo.log"
  fi
fi

# thaw demo in tf32 and bf16: the accuracy beside fp32's (the demo stage) within the demo's run-to-run noise.
if has_stage precision-demo; then
  for p in tf32 bf16; do
    t0=$(date +%s)
    if timeout 180 "$build/thaw" demo --device cuda --precision "$p" --out "/tmp/thaw-demo-$p" \
      >"$out/demo-$p.log" 2>&1; then
      note "demo on CUDA in $p" "passed in $(elapsed "$t0")"
    else
      note "demo on CUDA in $p" "FAILED or timed out in $(elapsed "$t0"): see demo-$p.log"
    fi
  done
fi

# The data path on the GPU (docs/data.md, "A whole pipeline"): thaw bench train on real JPEGs beside the
# report's PyTorch loop (DataLoader with 0 and 16 workers), ResNet18 l = 3 with the report's augmentation at
# 224; then the head-only run with the feature cache (train/feature_cache.h), 10 epochs.
if has_stage pipeline; then
  if [ -f .gpu-data/pets/annotations/trainval.txt ]; then
    run_bench "pipeline: thaw vs the report's DataLoader loop" 240 pipeline.log bench/train_pipeline.py \
      --thaw "$build/thaw" --data .gpu-data/pets --device cuda --threads 16 --workers 0 16 --epochs 2 \
      --cycle-to 3680
    run_bench "pipeline: thaw device transforms vs DataLoader" 240 pipeline-device.log bench/train_pipeline.py \
      --thaw "$build/thaw" --data .gpu-data/pets --device cuda --threads 16 --workers 0 16 --epochs 2 \
      --cycle-to 3680 --device-transforms --cache-on-device
    t0=$(date +%s)
    if timeout 120 "$build/thaw" bench train --data .gpu-data/pets --weights none --device cuda --threads 16 \
      --bn-mode frozen --epochs 10 >"$out/feature-cache.log" 2>&1; then
      note "head only, feature cache, 10 epochs" "passed in $(elapsed "$t0")"
    else
      note "head only, feature cache, 10 epochs" "FAILED or timed out in $(elapsed "$t0"): see feature-cache.log"
    fi
  else
    note "pipeline" "skipped: no .gpu-data/pets (scripts/gpu-data.sh PETS_MINI_DIR, and carry .gpu-data)"
  fi
fi

# Are torchvision's pretrained weights on this machine (it has no network)? They are what `thaw reproduce`
# needs besides the full dataset.
if has_stage weights; then
  found=$(timeout 20 find / -xdev \( -name 'resnet18-*.pth' -o -name 'resnet50-*.pth' \) 2>/dev/null | head -3)
  note "torchvision ResNet weights" "${found:-none found on this machine}"
fi

for log in "$out/tests.log" "$out/data.log" "$out/precision.log" "$out/parity.log" "$out/memcheck.log"; do
  if [ -f "$log" ] && grep -q "FAILED:" "$log"; then
    echo "---- first failures in $(basename "$log") ----"
    grep -B3 -A14 "FAILED:" "$log" | cut -c1-200 | head -90
  fi
done
echo
echo "==== thaw gpu-check ($(elapsed "$started") in all) ===="
printf '%s\n' "${summary[@]}"
if [ -s /tmp/thaw-parity-cuda.txt ]; then
  echo "---- ResNet parity on CUDA: how much of its allowance each case's worst tensor used ----"
  cat /tmp/thaw-parity-cuda.txt
fi
if [ -s "$out/bench.log" ]; then
  echo "---- bench/resnet_gpu.py ----"
  cat "$out/bench.log"
fi
if [ -s "$out/worklog.log" ]; then
  echo "---- the convolution worklog ----"
  cat "$out/worklog.log"
fi
if [ -s "$out/pipeline.log" ]; then
  echo "---- bench/train_pipeline.py on CUDA ----"
  tail -16 "$out/pipeline.log"
fi
if [ -s "$out/pipeline-device.log" ]; then
  echo "---- bench/train_pipeline.py on CUDA, thaw with device transforms ----"
  tail -16 "$out/pipeline-device.log"
fi
if [ -s "$out/feature-cache.log" ]; then
  echo "---- thaw bench train, head only with the feature cache ----"
  grep -vE "^epoch [0-9]+/" "$out/feature-cache.log" | tail -18
fi
for p in tf32 bf16; do
  if [ -s "$out/bench-$p.log" ]; then
    echo "---- bench/resnet_gpu.py --precision $p ----"
    cat "$out/bench-$p.log"
  fi
done
if [ -s "$out/kernels-tf32/report.txt" ]; then
  echo "---- bench kernels --precision tf32: conv totals ----"
  grep -iE "total|conv2d" "$out/kernels-tf32/report.txt" | tail -12
fi
for p in tf32 bf16; do
  if [ -s "$out/demo-$p.log" ]; then
    echo "---- thaw demo --device cuda --precision $p ----"
    sed -n '/^| run/,$p' "$out/demo-$p.log" | head -8
  fi
done
if [ -s "$out/demo.log" ]; then
  echo "---- thaw demo --device cuda ----"
  sed -n '/^| run/,$p' "$out/demo.log" | head -20
fi
if [ -s "$out/kernels.log" ]; then
  echo "---- thaw bench kernels: totals and worst rows (every row: kernels/report.md) ----"
  grep -E "^(NVIDIA|measured peaks|thaw bench kernels:)" "$out/kernels.log" | head -3
  sed -n '/^one training step per network/,/^verdicts:/p' "$out/kernels.log"
  grep -E " (incorrect|unsupported) " "$out/kernels.log" | cut -c1-220 | head -20
  tail -3 "$out/kernels.log" | grep -E "error|Error" || true
fi
