#!/usr/bin/env bash
# Copies a subset of pets-mini that fits the device tool's 64 MiB of carried files into .gpu-data/pets
# (ignored by git), for scripts/gpu-check.sh's pipeline stage: real JPEGs on the GPU machine, which has no
# dataset. Every N-th image of trainval.txt and of test.txt is kept (N = 2 by default: about 45 MB), with
# list.txt, trainval.txt and test.txt filtered to match, in the official layout.
#   scripts/gpu-data.sh PETS_MINI_DIR [N]
# then carry .gpu-data with the device tool's call of scripts/gpu-check.sh.
set -euo pipefail
export LC_ALL=C  # sort and join agree on the order
src=${1:?usage: scripts/gpu-data.sh PETS_MINI_DIR [N]}
every=${2:-2}
dst=.gpu-data/pets
rm -rf "$dst"
mkdir -p "$dst/images" "$dst/annotations"
for list in trainval test; do
  awk -v n="$every" '!/^#/ && NF { if (i++ % n == 0) print }' "$src/annotations/$list.txt" >"$dst/annotations/$list.txt"
done
cat "$dst/annotations/trainval.txt" "$dst/annotations/test.txt" | awk '{print $1}' | sort >/tmp/thaw-gpu-data-names
{
  grep '^#' "$src/annotations/list.txt"
  grep -v '^#' "$src/annotations/list.txt" | sort | join - /tmp/thaw-gpu-data-names
} >"$dst/annotations/list.txt"
while read -r name; do
  cp "$src/images/$name.jpg" "$dst/images/"
done </tmp/thaw-gpu-data-names
echo "$dst: $(ls "$dst/images" | wc -l) images, $(du -sh "$dst" | cut -f1)"
