"""Shared helpers of the PyTorch parity scripts (torch_parity*.py).

A parity script checks one model against a PyTorch reference in two steps,
with `nnc grad` between them (see the test/E2E/torch-parity*.test files):

  SCRIPT init CKPT         write the initial weights to CKPT (a safetensors
                           file), under nnc's tensor names and in nnc's
                           layouts, so that `nnc grad MODEL --load CKPT` uses
                           them as they are
  SCRIPT check CKPT GRADS  recompute the loss and every gradient in PyTorch,
                           in float64 as the reference, from the weights in
                           CKPT and the batch in GRADS, and compare them with
                           nnc's: prints one 'NAME: rel err E ok|MISMATCH' line
                           per tensor, then PARITY OK (exit status 0) or
                           PARITY FAILED (exit status 1)

GRADS is what `nnc grad MODEL --load CKPT --out GRADS` writes: the batch it
used (batch.x, or batch.<input> for each of several inputs, and the labels
batch.y), its loss ("loss"), the gradient of every parameter ("grad.<name>")
and, for a model with state such as batch_norm's running statistics, the
updated state ("new.<name>").

A script defines init(path) and check(ckpt, grads) and ends with
`parity.main(init, check)`; most inits are a random_init of a {name: shape}
table, and most checks are

    w, g = parity.load(ckpt, grads)
    x, y = parity.batch(g)
    loss = ...  # the model in PyTorch, over w, x and y
    loss.backward()
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES))

(torch_parity_optim.py is the exception: it runs `nnc train` itself and uses
only the safetensors readers and writers here.)
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = arr.copy()
    return out


def write_safetensors(path, tensors):
    header, offset, chunks = {}, 0, []
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": "F32" if arr.dtype == np.float32 else "I64", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def report(pairs, tol=1e-4):
    """Prints 'name: rel err E ok|MISMATCH' for each (name, ours, reference
    [, floor]) and PARITY OK/FAILED; the error is the largest difference
    relative to the reference's largest magnitude (or to `floor`, for a
    tensor whose true value is zero). Returns the exit status."""
    ok = True
    for name, ours, ref, *floor in pairs:
        ref = np.asarray(ref, dtype=np.float64)
        ours = np.asarray(ours, dtype=np.float64).reshape(ref.shape)
        rel = np.abs(ours - ref).max() / max(np.abs(ref).max(), floor[0] if floor else 1e-12)
        good = rel <= tol
        ok &= bool(good)
        print(f"{name}: rel err {rel:.2e} {'ok' if good else 'MISMATCH'}")
    print("PARITY OK" if ok else "PARITY FAILED")
    return 0 if ok else 1


def random_weights(rng, shapes, scale):
    """{name: float32 standard normal of that shape times scale}, drawn from
    rng in the order of shapes ({name: shape}); scale is one number or
    {name: number}."""
    return {k: (rng.standard_normal(s) * (scale[k] if isinstance(scale, dict) else scale)).astype(np.float32)
            for k, s in shapes.items()}


def random_init(path, shapes, seed, scale):
    """Writes random_weights(np.random.default_rng(seed), shapes, scale) to path."""
    write_safetensors(path, random_weights(np.random.default_rng(seed), shapes, scale))


def as_float64(arrays, requires_grad=True):
    """{name: float64 torch tensor} of {name: array}: leaves that require
    grad if requires_grad is true, or, if it is a collection of names, those
    of these names (the others, e.g. batch_norm's running statistics, are
    state that the reference updates in place)."""
    return {k: torch.tensor(v, dtype=torch.float64,
                            requires_grad=requires_grad if isinstance(requires_grad, bool) else k in requires_grad)
            for k, v in arrays.items()}


def load(ckpt, grads, requires_grad=True):
    """(w, g): every tensor of the checkpoint CKPT as_float64 (requires_grad
    as there), and the arrays of the GRADS file `nnc grad` wrote."""
    return as_float64(read_safetensors(ckpt), requires_grad), read_safetensors(grads)


def batch(g):
    """(x, y), the batch of a GRADS file as torch tensors: batch.x in float64
    (integer ids, for an embedding, stay int64), batch.y as stored."""
    x = g["batch.x"]
    return (torch.tensor(x, dtype=torch.float64) if x.dtype == np.float32 else torch.tensor(x),
            torch.tensor(g["batch.y"]))


def loss_and_grads(g, loss, w, names, floor=None):
    """The pairs for report: the loss, then grad.NAME for each of names, nnc's
    (from GRADS) against w[NAME].grad; floor ({name: number}) gives the floor
    of the tensors whose true gradient is zero."""
    floor = floor or {}
    return [("loss", g["loss"], loss.detach().numpy())] + [
        ("grad." + k, g["grad." + k], w[k].grad.numpy(), *([floor[k]] if k in floor else [])) for k in names]


def main(init, check):
    """The command line of a parity script: init CKPT | check CKPT GRADS."""
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "init":
        init(args[1])
        sys.exit(0)
    if len(args) == 3 and args[0] == "check":
        sys.exit(check(args[1], args[2]))
    sys.exit(f"usage: {sys.argv[0]} init CKPT | check CKPT GRADS")
