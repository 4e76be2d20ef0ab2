"""PyTorch parity for test/E2E/Inputs/attention.nn (dense over sequences,
sinusoidal and learned positional encodings, causal multi-head
self-attention, single-head attention, layer_norm, gelu): init CKPT | check
CKPT GRADS, as in torch_parity.py. The reference masks with -inf
(masked_fill), nnc adds -1e9: the same softmax to float precision."""
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_parity import read_safetensors, report, write_safetensors  # noqa: E402

SHAPES = {"e.w": (8, 16), "e.b": (16,), "p.pos": (8, 16)}
for part in "qkvo":
    SHAPES[f"a.{part}.w"] = (16, 16)
    SHAPES[f"a.{part}.b"] = (16,)
SHAPES.update({"n.scale": (16,), "n.shift": (16,), "q.w": (16, 8), "q.b": (8,), "f.w": (16, 32), "f.b": (32,),
               "f_2.w": (32, 16), "f_2.b": (16,), "logits.w": (16, 10), "logits.b": (10,)})


def init(path):
    rng = np.random.default_rng(7)
    write_safetensors(path, {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in SHAPES.items()})


def sinusoid(t, d):
    pe = torch.zeros(t, d, dtype=torch.float64)
    pos = torch.arange(t, dtype=torch.float64)[:, None]
    freq = torch.pow(10000.0, -torch.arange(0, d, 2, dtype=torch.float64) / d)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def attend(q, k, v, causal):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        t = scores.shape[-1]
        scores = scores.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf"))
    return torch.softmax(scores, -1) @ v


def check(ckpt, grads):
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in read_safetensors(ckpt).items()}
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"], dtype=torch.float64)
    y = torch.tensor(g["batch.y"])
    n = x.shape[0]
    tokens = x.reshape(n, 8, 8)
    e = tokens @ w["e.w"] + w["e.b"] + sinusoid(8, 16)
    p = e + w["p.pos"]
    heads = [(p @ w[f"a.{c}.w"] + w[f"a.{c}.b"]).reshape(n, 8, 2, 8).permute(0, 2, 1, 3) for c in "qkv"]
    mha = attend(*heads, causal=True).permute(0, 2, 1, 3).reshape(n, 8, 16) @ w["a.o.w"] + w["a.o.b"]
    a = p + mha
    nn_ = F.layer_norm(a, (16,), w["n.scale"], w["n.shift"], eps=1e-5)
    q = nn_ @ w["q.w"] + w["q.b"]
    s = attend(q, q, nn_, causal=False)
    f = F.gelu(s @ w["f.w"] + w["f.b"]) @ w["f_2.w"] + w["f_2.b"]
    logits = (nn_ + f).mean(1) @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    # The key bias shifts every score of a query by the same amount, which
    # softmax ignores: its true gradient is zero, so its error is measured
    # against the key weights' gradient scale.
    floor = {"a.k.b": float(w["a.k.w"].grad.abs().max())}
    return report([("loss", g["loss"], loss.detach().numpy())] +
                  [("grad." + k, g["grad." + k], w[k].grad.numpy(), floor.get(k, 1e-12)) for k in SHAPES])


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
