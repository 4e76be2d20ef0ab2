#!/usr/bin/env bash
# run.sh — nnc's benchmark: times nnc's compiled train and inference steps and
# its GEMM against PyTorch (eager and torch.compile), JAX and ONNX Runtime,
# and writes the tables of bench/results/latest.md (see bench/README.md).
#
#   bash bench/run.sh [--quick] [--no-peers] [--only SUBSTRING] [--rounds R]
#
#   --quick      short measurements (0.3 s each; the peers' smoke-test mode)
#   --rounds R   measure everything R times over (default 2; 1 with --quick),
#                nnc and peers taking turns; the report keeps each figure's
#                best round, so a noisy minute on a shared VM spoils a figure
#                only if it spoils every round
#   --no-peers   time nnc only: no Python environment, no peers
#   --only S     only the workloads whose name contains S (e.g. mlp, gemm)
#
# Steps: build nnc and nnc-gemm-bench if missing; set up the peers' venv
# (bench/setup_peers.sh); measure the FMA peak (bench/peak.cpp); time every
# nnc workload at 1 and 2 threads, each measurement in its own process; time
# the peers (bench/peers.py); collect every JSON line in
# bench/results/latest.jsonl; write bench/results/latest.md (bench/report.py).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

quick=0
peers=1
only=""
rounds=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-peers) peers=0 ;;
    --only)
      [[ $# -ge 2 ]] || { echo "run.sh: --only needs a SUBSTRING" >&2; exit 2; }
      only="$2"; shift ;;
    --only=*) only="${1#--only=}" ;;
    --rounds)
      [[ $# -ge 2 && $2 =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --rounds needs a positive count" >&2; exit 2; }
      rounds="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "bench: $*" >&2; }
died=0
die() { echo "bench: error: $*" >&2; died=1; exit 1; }
# Any other failing command (set -e) is named too.
trap 'rc=$?; [[ $rc == 0 || $died == 1 ]] || echo "bench: failed (exit $rc): $BASH_COMMAND" >&2' EXIT

nnc="$root/build/tools/nnc"
gemm="$root/build/bench/nnc-gemm-bench"
seconds=2
[[ $quick == 1 ]] && seconds=0.3
[[ -n $rounds ]] || rounds=$([[ $quick == 1 ]] && echo 1 || echo 2)
threads_list=(1 2)

selected() { [[ -z $only || $1 == *"$only"* ]]; }

# --- 1. binaries ---------------------------------------------------------------------
if [[ ! -x $nnc || ! -x $gemm ]]; then
  log "building nnc (tools/build.sh)"
  bash tools/build.sh >&2 || die "tools/build.sh failed"
  if [[ ! -x $gemm ]]; then
    # tools/build.sh builds the default target, which includes nnc-gemm-bench
    # unless the build directory was configured without it.
    log "building nnc-gemm-bench"
    ninja -C build nnc-gemm-bench >&2 || die "ninja -C build nnc-gemm-bench failed"
  fi
  [[ -x $nnc ]] || die "$nnc missing after the build"
  [[ -x $gemm ]] || die "$gemm missing after the build"
fi

# --- 2. peers' environment ------------------------------------------------------------
if [[ $peers == 1 ]]; then
  log "setting up the peers' environment (bench/setup_peers.sh)"
  bash bench/setup_peers.sh >&2 || die "bench/setup_peers.sh failed"
fi

# --- results file -----------------------------------------------------------------------
mkdir -p bench/results
out="bench/results/latest.jsonl"
partial="$out.partial"
: >"$partial"
emit() { echo "$1" >>"$partial"; }

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
[[ -n $cpu ]] || cpu="unknown"
ncpu="$(nproc)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain --untracked-files=no 2>/dev/null | head -c1 || true)"
emit "$(python3 -c 'import json, sys
print(json.dumps({"peer": "machine", "date": sys.argv[1], "cpu": sys.argv[2], "nproc": int(sys.argv[3]),
                  "commit": sys.argv[4], "dirty": sys.argv[5] == "1", "quick": sys.argv[6] == "1",
                  "seconds": float(sys.argv[7]), "rounds": int(sys.argv[8])}))' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$cpu" "$ncpu" "$commit" "$([[ -n $dirty ]] && echo 1 || echo 0)" \
  "$quick" "$seconds" "$rounds")"
log "machine: $cpu, nproc $ncpu, nnc $commit${dirty:+ (uncommitted changes)}"

# --- 3. FMA peak ------------------------------------------------------------------------
log "compiling bench/peak.cpp"
g++ -O2 -march=native -std=c++17 -pthread bench/peak.cpp -o build/bench/peak \
  || die "compiling bench/peak.cpp failed"
log "measuring the FMA peak"
peak_out="$(build/bench/peak)" || die "build/bench/peak failed"
while IFS= read -r line; do
  [[ $line == "{"* ]] && emit "$line"
done <<<"$peak_out"
echo "$peak_out" >&2

# --- 4. nnc ---------------------------------------------------------------------------
# tag WORKLOAD FILE: adds "workload" (and "file") to the JSON object on stdin.
tag() {
  python3 -c 'import json, sys
text = sys.stdin.read().strip()
try:
    obj = json.loads(text.splitlines()[-1])
except (IndexError, ValueError):
    sys.exit("not a JSON line: " + text[:300])
out = {"peer": obj.pop("peer", "nnc"), "workload": sys.argv[1]}
if sys.argv[2]:
    out["file"] = sys.argv[2]
out.update(obj)
print(json.dumps(out))' "$1" "$2"
}

# nnc_step WORKLOAD FILE FUNCTION [BATCH]: one measurement per thread count.
nnc_step() {
  local wl="$1" file="$2" fn="$3" batch="${4:-}" t res
  selected "$wl" || return 0
  for t in "${threads_list[@]}"; do
    local cmd=("$nnc" bench "$file" --function "$fn" --threads "$t" --seconds "$seconds" --json)
    [[ -n $batch ]] && cmd+=(--batch "$batch")
    log "nnc $wl batch ${batch:-default} at $t thread(s)"
    # Compile times are measured cold: no compile cache.
    res="$(NNC_CACHE=off "${cmd[@]}")" || die "nnc bench failed: ${cmd[*]}"
    res="$(tag "$wl" "$file" <<<"$res")" || die "unexpected output of: ${cmd[*]}"
    emit "$res"
  done
}

# aot_step WORKLOAD FILE PREFIX BATCH: predict through the library nnc compile
# writes for FILE at BATCH (bench/aot_bench.c), one measurement per thread
# count, with the compile time and the library's size.
aot_step() {
  local wl="$1" file="$2" prefix="$3" batch="$4" t res dir="build/bench/aot/$3-$4"
  selected "$wl" || return 0
  rm -rf "$dir" && mkdir -p "$dir"
  log "nnc compile $file --batch $batch"
  local start end
  start=$(date +%s.%N)
  NNC_CACHE=off "$nnc" compile "$file" --batch "$batch" -o "$dir" >/dev/null || die "nnc compile failed: $file"
  end=$(date +%s.%N)
  local upper="${prefix^^}"
  cc -O2 -include "$dir/$prefix.h" -DPREFIX="${prefix}_" -DUPREFIX="${upper}_" bench/aot_bench.c -I "$dir" \
    -L "$dir" -l"$prefix" -Wl,-rpath,"$root/$dir" -o "$dir/aot-bench" || die "compiling bench/aot_bench.c failed"
  for t in "${threads_list[@]}"; do
    log "nnc library $wl batch $batch at $t thread(s)"
    res="$("$dir/aot-bench" "$wl" "$t" "$seconds")" || die "$dir/aot-bench failed"
    res="$(python3 -c 'import json, sys
r = json.loads(sys.argv[1]); r["file"] = sys.argv[2]
r["compile_seconds"] = round(float(sys.argv[4]) - float(sys.argv[3]), 3); r["library_bytes"] = int(sys.argv[5])
print(json.dumps(r))' "$res" "$file" "$start" "$end" "$(stat -c %s "$dir/lib$prefix.so")")"
    emit "$res"
  done
}

for round in $(seq 1 "$rounds"); do
log "round $round of $rounds"
for b in 1 32 256; do nnc_step mlp-train-sgd bench/mlp_sgd.nn train_step "$b"; done
for b in 1 32 256; do nnc_step mlp-train-adam examples/fashion_mlp.nn train_step "$b"; done
for b in 1 256; do nnc_step mlp-infer examples/fashion_mlp.nn predict "$b"; done
for b in 1 256; do nnc_step cnn-infer examples/fashion_cnn.nn predict "$b"; done
for b in 1 256; do nnc_step vit-infer examples/fashion_vit.nn predict "$b"; done
for b in 1 256; do aot_step mlp-infer examples/fashion_mlp.nn fashionmlp "$b"; done
for b in 1 256; do aot_step cnn-infer examples/fashion_cnn.nn fashioncnn "$b"; done
for b in 1 256; do aot_step vit-infer examples/fashion_vit.nn fashionvit "$b"; done
nnc_step cnn-train examples/fashion_cnn.nn train_step
nnc_step lstm-train examples/fashion_lstm.nn train_step
nnc_step vit-train examples/fashion_vit.nn train_step
nnc_step gan-ring examples/gan_ring.nn train_step
nnc_step wgan-gp-ring examples/wgan_gp_ring.nn train_step

if selected gemm; then
  for t in "${threads_list[@]}"; do
    for n in 64 128 256 512 1024 2048; do
      log "nnc gemm n=$n at $t thread(s)"
      res="$("$gemm" --threads "$t" --seconds "$seconds" "$n")" \
        || die "nnc-gemm-bench failed: $gemm --threads $t --seconds $seconds $n"
      emit "$res"
    done
  done
fi

# --- 5. peers -------------------------------------------------------------------------
if [[ $peers == 1 ]]; then
  args=()
  [[ $quick == 1 ]] && args+=(--quick)
  [[ -n $only ]] && args+=(--only "$only")
  log "timing the peers (bench/peers.py ${args[*]:-}); this takes a while"
  # A failed measurement is a line with an "error" field (kept, reported);
  # only a crash of peers.py itself stops the run.
  bench/.venv/bin/python bench/peers.py "${args[@]}" >>"$partial" || die "bench/peers.py failed"
fi
done

mv "$partial" "$out"
log "results: $out ($(wc -l <"$out") lines)"

# --- 6. report --------------------------------------------------------------------------
python3 bench/report.py "$out" || die "bench/report.py failed"
log "report: bench/results/latest.md"
