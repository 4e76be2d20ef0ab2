"""Predicts digits with the library `nnc compile examples/digits_mlp.nn` wrote,
from Python through ctypes and numpy alone.

    python3 predict.py DIR/libdigits.so examples/data/digits.csv [WEIGHTS.safetensors]
"""
import ctypes
import sys

import numpy as np


def main(lib_path, csv_path, weights=None):
    lib = ctypes.CDLL(lib_path)
    i64, f32p = ctypes.c_int64, np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    lib.digits_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p]
    lib.digits_context_create.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.digits_predict.argtypes = [ctypes.c_void_p, i64, f32p, f32p]
    lib.digits_last_error.restype = ctypes.c_char_p
    lib.digits_context_destroy.argtypes = [ctypes.c_void_p]
    lib.digits_close.argtypes = [ctypes.c_void_p]

    data = np.loadtxt(csv_path, delimiter=",", dtype=np.float32)
    x, y = np.ascontiguousarray(data[:, :64]), data[:, 64].astype(np.int64)
    model, ctx = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.digits_open(ctypes.byref(model), weights.encode() if weights else None) or lib.digits_context_create(model, ctypes.byref(ctx)):
        sys.exit("error: " + lib.digits_last_error().decode())
    probs = np.zeros((len(x), 10), dtype=np.float32)
    if lib.digits_predict(ctx, len(x), x, probs):
        sys.exit("error: " + lib.digits_last_error().decode())
    print(f"accuracy {np.mean(probs.argmax(axis=1) == y):.4f} on {len(x)} rows")
    lib.digits_context_destroy(ctx)
    lib.digits_close(model)


if __name__ == "__main__":
    main(*sys.argv[1:4])
