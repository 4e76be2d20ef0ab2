"""PyTorch parity for test/E2E/Inputs/embedding.nn (embedding lookup of i64
ids, dense over sequences, cross-entropy per position): init CKPT | check
CKPT GRADS, as in parity.py. The table's gradient is a scatter-add of
the rows' adjoints (rows of unseen ids stay zero), as torch.nn.Embedding's."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

SHAPES = {"e.table": (256, 8), "h.w": (8, 12), "h.b": (12,), "logits.w": (12, 256), "logits.b": (256,)}


def init(path):
    parity.random_init(path, SHAPES, seed=9, scale=0.5)


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads)
    x, y = parity.batch(g)
    e = F.embedding(x, w["e.table"])
    h = torch.tanh(e @ w["h.w"] + w["h.b"])
    logits = h @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
    loss.backward()
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES))


if __name__ == "__main__":
    parity.main(init, check)
