"""ONNX Runtime against nnc on one exported model.

    onnx_parity.py NNC FILE.nn CHECKPOINT OUT [--low L] [--high H] [--int-high K] [--rows R]

Exports FILE's model with the checkpoint's weights to OUT/model.onnx, runs
onnx.checker.check_model(full_check=True) on it, draws R rows of raw inputs
(f32 uniform in [L, H), i64 uniform in [0, K)) for every graph input, predicts
them with `nnc predict -o OUT/nnc.npz` and with ONNX Runtime, and compares
every output with compare_npz.compare: allclose with rtol 1e-5 and atol 1e-6
(i64 outputs equal).
Prints a line per output and 'parity ok' or what differs; exit 1 on a
difference. Runs in the tests' Python environment (tools/pyenv.sh).
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

from compare_npz import compare


def main():
    p = argparse.ArgumentParser()
    p.add_argument("nnc")
    p.add_argument("file")
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--low", type=float, default=0.0)
    p.add_argument("--high", type=float, default=1.0)
    p.add_argument("--int-high", type=int, default=2)
    p.add_argument("--rows", type=int, default=7)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "model.onnx")
    r = subprocess.run([a.nnc, "export", a.file, "--load", a.checkpoint, "-o", path], capture_output=True, text=True)
    if r.returncode:
        print("nnc export failed:", r.stderr.strip())
        return 1
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    print(f"checker ok: opset {model.opset_import[0].version}, {len(model.graph.node)} nodes")
    print("ops:", " ".join(sorted({n.op_type for n in model.graph.node})))

    rng = np.random.default_rng(7)
    feeds = {}
    for i in model.graph.input:
        t = i.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else a.rows for d in t.shape.dim]
        if t.elem_type == onnx.TensorProto.FLOAT:
            feeds[i.name] = rng.uniform(a.low, a.high, size=shape).astype(np.float32)
        else:
            feeds[i.name] = rng.integers(0, a.int_high, size=shape, dtype=np.int64)
    inputs = os.path.join(a.out, "inputs.npz")
    np.savez(inputs, **feeds)
    mine = os.path.join(a.out, "nnc.npz")
    r = subprocess.run([a.nnc, "predict", a.file, "--load", a.checkpoint, "--input", inputs, "-o", mine],
                       capture_output=True, text=True)
    if r.returncode:
        print("nnc predict failed:", r.stderr.strip())
        return 1
    expected = np.load(mine)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(names, feeds)))
    # Every output of the ONNX graph must be one of nnc's, equal.
    ok = compare({n: expected[n] for n in names if n in expected.files}, got, where="ONNX Runtime's outputs")
    missing = [n for n in names if n not in expected.files]
    for n in missing:
        print(f"{n}: an output nnc predict does not have")
    ok &= not missing
    print("parity ok" if ok else "parity FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
