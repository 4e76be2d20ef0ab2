"""Compares arrays by name: floats with allclose (rtol RTOL, atol ATOL,
defaults 1e-5 and 1e-6), integers exactly. Prints a line per expected array
('NAME DTYPE[SHAPE]: max abs diff D, max rel diff R equal', or DIFFERENT,
or what is missing) and exits 1 on a difference.

    compare_npz.py EXPECTED.npz GOT.npz [RTOL [ATOL]]

onnx_parity.py uses compare() on ONNX Runtime's outputs.
"""
import sys

import numpy as np


def compare(expected, got, rtol=1e-5, atol=1e-6, where="the second file"):
    """expected, got: name -> array. True when every expected array is in got and matches."""
    ok = True
    for name in expected:
        e = np.asarray(expected[name])
        if name not in got:
            print(f"{name}: missing from {where}")
            ok = False
            continue
        g = np.asarray(got[name])
        if e.shape != g.shape:
            print(f"{name}: shape {list(g.shape)} in {where}, expected {list(e.shape)}")
            ok = False
            continue
        if e.dtype.kind in "iu":
            same = bool(np.array_equal(e, g))
            print(f"{name} {e.dtype}{list(e.shape)}: {'equal' if same else 'DIFFERENT'}")
        else:
            diff = np.abs(e.astype(np.float64) - g.astype(np.float64))
            worst = float(diff.max()) if e.size else 0.0
            rel = float(np.max(diff / np.maximum(np.abs(e), 1e-30))) if e.size else 0.0
            same = bool(np.allclose(g, e, rtol=rtol, atol=atol))
            print(f"{name} {e.dtype}{list(e.shape)}: max abs diff {worst:.3g}, max rel diff {rel:.3g} "
                  f"{'equal' if same else 'DIFFERENT'}")
        ok &= same
    return ok


def main(expected, got, rtol="1e-5", atol="1e-6"):
    e, g = np.load(expected), np.load(got)
    return 0 if compare({n: e[n] for n in e.files}, {n: g[n] for n in g.files}, float(rtol), float(atol),
                        got) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
