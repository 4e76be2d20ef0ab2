"""Compares two runs' final metrics (--metrics-json) and per-epoch logs
(--log CSV) for equality; timing fields and the resume marker are ignored.

  compare_runs.py A.json B.json A.csv B.csv
"""
import csv
import json
import sys

TIMING = {"seconds", "samples_per_second", "compile_seconds", "train_seconds", "resumed_after_epoch"}


def main():
    a, b = (json.load(open(p)) for p in sys.argv[1:3])
    keys = sorted(k for k in a if k not in TIMING)
    same = all(a[k] == b.get(k) for k in keys)
    if same:
        print("metrics equal: " + " ".join(f"{k}={a[k]}" for k in keys))
    else:
        print("metrics DIFFER: " + ", ".join(f"{k} {a[k]} vs {b.get(k)}" for k in keys if a[k] != b.get(k)))
    la, lb = (list(csv.DictReader(open(p))) for p in sys.argv[3:5])
    cols = [c for c in la[0] if c != "seconds"]
    logs = len(la) == len(lb) and all(ra[c] == rb[c] for ra, rb in zip(la, lb) for c in cols)
    lrs = [float(r["lr"]) for r in la]
    drops = sum(1 for x, y in zip(lrs, lrs[1:]) if y < x)
    print(f"log equal: {len(la)} epochs, lr reduced {drops} times" if logs else f"log DIFFERS: {len(la)} vs {len(lb)} rows")
    print("SAME RESULT" if same and logs else "DIFFERENT RESULT")
    return 0 if same and logs else 1


if __name__ == "__main__":
    sys.exit(main())
