#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, and train
# the Fashion-MNIST MLP on the real data set, printing progress per epoch and
# the final test accuracy. Extra arguments go to `nnc train`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
NNC_NO_TORCH=1 bash "$root/tools/setup.sh"
bash "$root/tools/build.sh" nnc
exec "$root/build/tools/nnc" train "$root/examples/fashion_mlp.nn" "$@"
