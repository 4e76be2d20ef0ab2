"""Compares two .npz files array by array: allclose with rtol RTOL and atol
ATOL (defaults 1e-5, 1e-6). Prints each array's largest difference and
'equal' or 'DIFFERENT'; exit 1 on a difference or a missing array.

    compare_npz.py EXPECTED.npz GOT.npz [RTOL [ATOL]]
"""
import sys

import numpy as np


def main(expected, got, rtol="1e-5", atol="1e-6"):
    e, g = np.load(expected), np.load(got)
    ok = True
    for name in e.files:
        if name not in g.files:
            print(f"{name}: missing from {got}")
            ok = False
            continue
        a, b = e[name], g[name]
        if a.shape != b.shape:
            print(f"{name}: shape {b.shape}, expected {a.shape}")
            ok = False
            continue
        same = bool(np.allclose(b, a, rtol=float(rtol), atol=float(atol)))
        diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        print(f"{name} {list(a.shape)}: max abs diff {diff:.3g} {'equal' if same else 'DIFFERENT'}")
        ok &= same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
