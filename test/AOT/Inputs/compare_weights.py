"""Compares the f32 tensors two safetensors files share, with the standard
library alone: prints each tensor's largest difference relative to its
largest magnitude, then SAME (all within TOL), or DIFFERENT and exit 1.
Tensors only one file holds are listed and make it DIFFERENT.

    compare_weights.py A.safetensors B.safetensors [TOL]
"""
import json
import struct
import sys
from array import array


def read(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        a = array("f")
        a.frombytes(blob[8 + n + begin:8 + n + end])
        out[name] = a
    return out


def main(a_path, b_path, tol=1e-6):
    a, b = read(a_path), read(b_path)
    same = True
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"{name}: only in {a_path if name in a else b_path}")
            same = False
            continue
        x, y = a[name], b[name]
        scale = max(max((abs(v) for v in y), default=0.0), 1e-30)
        rel = max((abs(p - q) for p, q in zip(x, y)), default=0.0) / scale
        ok = len(x) == len(y) and rel <= tol
        same &= ok
        print(f"{name}: rel diff {rel:.2e}{'' if ok else ' TOO LARGE'}")
    print("SAME" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1e-6))
