#!/usr/bin/env bash
# Installs every Debian package nnc needs to build, test and run its examples.
# Idempotent: packages already present are skipped, so a second run is quick.
set -euo pipefail

PKGS=(
  # build
  cmake ninja-build g++ ccache pkg-config
  llvm-14-dev llvm-14-tools libclang-rt-14-dev clang-14
  antlr4 libantlr4-runtime-dev uuid-dev
  libfmt-dev libcli11-dev libedit-dev nlohmann-json3-dev zlib1g-dev
  # ONNX export and import (ONNX 1.12's protobuf classes, checker and shape inference)
  libonnx-dev libprotobuf-dev
  # tests
  libgtest-dev python3 python3-venv gzip
  # data for the examples
  dataset-fashion-mnist fortunes
)
# Reference numerics for the PyTorch parity tests (optional there; installed
# unless NNC_NO_TORCH=1 so that CI actually runs them).
if [ "${NNC_NO_TORCH:-0}" != 1 ]; then PKGS+=(python3-torch python3-numpy); fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -o DPkg::Lock::Timeout=600 -qq
$SUDO apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 -qq "${missing[@]}"
