"""PyTorch parity for test/E2E/Inputs/attention.nn (dense over sequences,
sinusoidal and learned positional encodings, causal multi-head
self-attention, single-head attention, layer_norm, gelu): init CKPT | check
CKPT GRADS, as in parity.py. The reference masks with -inf
(masked_fill), nnc adds -1e9: the same softmax to float precision."""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

SHAPES = {"e.w": (8, 16), "e.b": (16,), "p.pos": (8, 16)}
for part in "qkvo":
    SHAPES[f"a.{part}.w"] = (16, 16)
    SHAPES[f"a.{part}.b"] = (16,)
SHAPES.update({"n.scale": (16,), "n.shift": (16,), "q.w": (16, 8), "q.b": (8,), "f.w": (16, 32), "f.b": (32,),
               "f_2.w": (32, 16), "f_2.b": (16,), "logits.w": (16, 10), "logits.b": (10,)})


def init(path):
    parity.random_init(path, SHAPES, seed=7, scale=0.3)


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
    w, g = parity.load(ckpt, grads)
    x, y = parity.batch(g)
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
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES, floor))


if __name__ == "__main__":
    parity.main(init, check)
