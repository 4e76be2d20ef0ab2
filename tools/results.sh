#!/usr/bin/env bash
# Trains every Fashion-MNIST example at full length (the epochs its train
# block sets, with early stopping) and writes the table of results into
# README.md between the `results:begin` and `results:end` markers (and to
# stdout), with the language model's loss next to its text's unigram entropy. Usage: tools/results.sh [example names...]; defaults to all.
# Takes about forty minutes on 2 cores. Metrics JSON files and the trained
# checkpoints stay in build/results/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
nnc="$root/build/tools/nnc"
[ -x "$nnc" ] || bash "$root/tools/build.sh"
out="$root/build/results"
mkdir -p "$out"
examples=("$@")
[ ${#examples[@]} -gt 0 ] || examples=(fashion_mlp fashion_cnn fashion_vit char_lm)
for ex in "${examples[@]}"; do
  echo "== $ex" >&2
  "$nnc" train "$root/examples/$ex.nn" --quiet --metrics-json "$out/$ex.json" --save "$out/$ex.safetensors" >&2
done
table="$(python3 - "$out" "$root/examples" <<'PY'
import json, os, platform, sys
out, exdir = sys.argv[1], sys.argv[2]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
import math, re, collections
rows = ["| Example | Parameters | Epochs (best) | Test accuracy | Training time | Samples/s |",
        "|---|---:|---:|---:|---:|---:|"]
lm = ["| Language model | Parameters | Epochs (best) | Validation loss (nats/byte) | Unigram entropy of the text | Training time |",
      "|---|---:|---:|---:|---:|---:|"]
for name in sorted(f[:-5] for f in os.listdir(out) if f.endswith(".json")):
    m = json.load(open(os.path.join(out, name + ".json")))
    if "test_accuracy" in m:
        rows.append(f"| `examples/{name}.nn` | {m['parameters']:,} | {m['epochs']} ({m['best_epoch']}) | "
                    f"{m['test_accuracy']:.4f} | {m['train_seconds']:.0f} s | {m['samples_per_second']:.0f} |")
        continue
    # A next-byte model: compare with the entropy of the text's byte frequencies.
    src = open(os.path.join(exdir, name + ".nn")).read()
    path = re.search(r'text\("([^"]+)"', src).group(1)
    data = open(path, "rb").read()
    counts = collections.Counter(data)
    h = -sum(c / len(data) * math.log(c / len(data)) for c in counts.values())
    lm.append(f"| `examples/{name}.nn` | {m['parameters']:,} | {m['epochs']} ({m['best_epoch']}) | "
              f"{m['val_loss']:.3f} | {h:.3f} | {m['train_seconds']:.0f} s |")
if len(lm) > 2:
    rows += [""] + lm
print("\n".join(rows))
PY
)"
echo "$table"
python3 - "$root/README.md" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- results:begin -->", "<!-- results:end -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    tmp = path + ".tmp"
    open(tmp, "w").write(head + begin + "\n" + table + "\n" + end + tail)
    import os
    os.replace(tmp, path)
PY
