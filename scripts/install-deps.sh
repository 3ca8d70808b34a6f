#!/usr/bin/env bash
# Installs what thaw needs to build and test, from the distribution's packages only (Debian 12 / Ubuntu 24.04).
# Idempotent: packages already present are not touched, and apt-get runs only when something is missing.
# Uses sudo when not run as root. Set THAW_SKIP_DEPS=1 to skip entirely (e.g. on a machine you manage yourself).
set -euo pipefail

if [[ "${THAW_SKIP_DEPS:-0}" == 1 ]]; then
  echo "install-deps: THAW_SKIP_DEPS=1, not checking packages"
  exit 0
fi

packages=(
  build-essential cmake pkg-config
  libhdf5-dev libfmt-dev catch2 libstb-dev libopenblas-openmp-dev libcli11-dev libtomlplusplus-dev
  nlohmann-json3-dev libjpeg-dev time
  python3-torch python3-torchvision python3-pil python3-h5py python3-numpy
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
