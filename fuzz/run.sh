#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) in build-fuzz/ and
# runs them. Usage:
#   fuzz/run.sh TARGET|all [libFuzzer options...]
#   fuzz/run.sh all -runs=20000          # what tools/test.sh does: a short run of each
#   fuzz/run.sh --list                   # the target names
#   fuzz/run.sh Frontend -max_total_time=3600 -jobs=2   # a long run
# TARGET is one of: Frontend IRParser Safetensors IDX CSV NPY ONNX. Each run starts
# from the committed seeds (fuzz/corpus/TARGET) plus the test inputs, and
# keeps what it learns in build-fuzz/corpus/TARGET. Crashes are written to
# build-fuzz/crashes/; turn each into a regression test (see fuzz/README.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
targets=(Frontend IRParser Safetensors IDX CSV NPY ONNX)
which="${1:-all}"
shift || true
if [ "$which" = --list ]; then # the targets, for tools/test.sh
  echo "${targets[@]}"
  exit 0
fi

if [ ! -f "$build/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNNC_FUZZ=ON >/dev/null
fi
ninja -C "$build" -j "${NNC_JOBS:-$(nproc)}" $(for t in "${targets[@]}"; do echo "nnc-fuzz-$t"; done) >/dev/null

seeds() { # the committed seeds and the test inputs of one target
  case "$1" in
    Frontend) echo "$root/fuzz/corpus/Frontend $root/examples $root/test/Frontend $root/test/E2E/Inputs $root/test/GAN/Inputs" ;;
    IRParser) echo "$root/fuzz/corpus/IRParser $root/test/IR $root/test/Transforms" ;;
    *) echo "$root/fuzz/corpus/$1" ;;
  esac
}
dict() {
  case "$1" in
    Frontend) echo "-dict=$root/fuzz/nn.dict" ;;
    IRParser) echo "-dict=$root/fuzz/nnir.dict" ;;
  esac
}

[ "$which" = all ] && run=("${targets[@]}") || run=("$which")
status=0
for t in "${run[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus" "$build/crashes"
  dirs=()
  for d in $(seeds "$t"); do [ -d "$d" ] && dirs+=("$d"); done
  echo "== fuzz $t $*"
  if ! "$build/fuzz/nnc-fuzz-$t" $(dict "$t") -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 \
      "$@" "$corpus" "${dirs[@]}" 2>"$build/$t.log"; then
    status=1
    tail -40 "$build/$t.log"
  fi
  grep -E "^stat::number_of_executed_units|^Done|ERROR" "$build/$t.log" || true
done
exit $status
