#!/usr/bin/env bash
# Runs every step of the convolution worklog (docs/kernel-worklog.md) on one GPU, then thaw's own kernel in
# float32 and tf32 on the same shape beside cuDNN (thaw bench kernels), and prints the lines to compare.
#   bench/conv_worklog/run.sh [BUILD_DIR]      (default build; the steps are BUILD_DIR/conv-worklog/v*)
# The shape is ResNet18's layer2 3x3 convolution at batch 64 (64x128x28x28, k128, 3x3/1), the default of
# every step and the bench kernels row of layer2.0.conv2.
set -euo pipefail
build=${1:-build}
for step in "$build"/conv-worklog/v*; do
  "$step"
done
echo
for precision in fp32 tf32; do
  echo "thaw's kernel in $precision, beside cuDNN (thaw bench kernels, conv2d_forward row):"
  "$build/thaw" bench kernels --model resnet18 --batch 64 --filter layer2.0.conv2 --precision "$precision" \
    --repeat 20 | grep -E "^(op |conv2d_forward )"
done
