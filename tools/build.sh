#!/usr/bin/env bash
# Configures (Release, Ninja, ccache when present) and builds nnc into build/.
# Usage: tools/build.sh [targets...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${NNC_BUILD_DIR:-$root/build}"
type="${NNC_BUILD_TYPE:-Release}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="$type" ${NNC_CMAKE_ARGS:-}
fi
ninja -C "$build" -j "${NNC_JOBS:-$(nproc)}" "$@"
