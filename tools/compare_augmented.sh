#!/usr/bin/env bash
# Trains examples/fashion_mlp.nn (plain: Adam, constant rate, early
# stopping) and examples/fashion_mlp_aug.nn (horizontal flips, AdamW without
# decay on biases, cosine schedule with warm-up) on Fashion-MNIST, and writes
# their test accuracies into README.md between the `augmented:begin` and
# `augmented:end` markers (and to stdout), with the augmented run's training
# curves as docs/fashion_mlp_aug_curves.svg. About two minutes on 2 cores.
# Logs, metrics and checkpoints stay in build/augmented/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
nnc="$root/build/tools/nnc"
[ -x "$nnc" ] || bash "$root/tools/build.sh"
out="$root/build/augmented"
mkdir -p "$out"
for ex in fashion_mlp fashion_mlp_aug; do
  echo "== $ex" >&2
  "$nnc" train "$root/examples/$ex.nn" --quiet --metrics-json "$out/$ex.json" --log "$out/$ex.csv" \
    --save "$out/$ex.safetensors" >"$out/$ex.out"
  cat "$out/$ex.out" >&2
done
"$nnc" plot "$out/fashion_mlp_aug.csv" -o "$root/docs/fashion_mlp_aug_curves.svg" \
  --title "fashion_mlp_aug.nn: hflip, AdamW, cosine with warm-up" >&2
table="$(python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = ["| Run | Training | Epochs (best) | Test accuracy | Test loss |", "|---|---|---:|---:|---:|"]
what = {"fashion_mlp": "Adam 1e-3, constant rate, early stopping (patience 3)",
        "fashion_mlp_aug": "hflip; AdamW 1e-3, weight decay 0.05 (not on biases); cosine, 1 warm-up epoch"}
acc = {}
for name in ("fashion_mlp", "fashion_mlp_aug"):
    m = json.load(open(os.path.join(out, name + ".json")))
    acc[name] = m["test_accuracy"]
    rows.append(f"| `examples/{name}.nn` | {what[name]} | {m['epochs']} ({m['best_epoch']}) | "
                f"{m['test_accuracy']:.4f} | {m['test_loss']:.4f} |")
diff = acc["fashion_mlp_aug"] - acc["fashion_mlp"]
rows.append("")
rows.append(f"The augmented run's test accuracy is {100 * diff:+.2f} points against the plain run's "
            f"(same network, same seed, same data).")
print("\n".join(rows))
PY
)"
echo "$table"
python3 - "$root/README.md" "$table" <<'PY'
import re, sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- augmented:begin -->", "<!-- augmented:end -->"
if begin not in text or end not in text:
    sys.exit(f"{path}: no {begin} ... {end} markers")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + table + "\n" + end + tail)
PY
