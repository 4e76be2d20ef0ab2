"""PyTorch parity for examples/digits_mlp.nn.

  init CKPT          write random weights (nnc's names and layouts) to CKPT
  check CKPT GRADS   recompute the loss and every gradient in PyTorch on the
                     batch stored in GRADS (written by `nnc grad`) and compare

nnc's dense weights are [in, out] (x @ W); torch.nn.functional.linear takes
[out, in], so the weights are transposed on the way in.
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


def init(path):
    rng = np.random.default_rng(7)
    write_safetensors(path, {
        "h.w": (rng.standard_normal((64, 128)) * 0.2).astype(np.float32),
        "h.b": (rng.standard_normal(128) * 0.1).astype(np.float32),
        "logits.w": (rng.standard_normal((128, 10)) * 0.2).astype(np.float32),
        "logits.b": (rng.standard_normal(10) * 0.1).astype(np.float32),
    })


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


def check(ckpt, grads):
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in read_safetensors(ckpt).items()}
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"], dtype=torch.float64)
    y = torch.tensor(g["batch.y"])
    # The model of examples/digits_mlp.nn, in float64 as the reference.
    h = torch.relu(x @ w["h.w"] + w["h.b"])
    logits = h @ w["logits.w"] + w["logits.b"]
    loss = torch.nn.functional.cross_entropy(logits, y) + 1e-4 * ((w["h.w"] ** 2).sum() + (w["logits.w"] ** 2).sum())
    loss.backward()
    return report([("loss", g["loss"], loss.detach().numpy())] +
                  [("grad." + k, g["grad." + k], w[k].grad.numpy()) for k in ["h.w", "h.b", "logits.w", "logits.b"]])


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
