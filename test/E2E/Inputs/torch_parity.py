"""PyTorch parity for examples/digits_mlp.nn: init CKPT | check CKPT GRADS, as
described in parity.py.

nnc's dense weights are [in, out] (x @ W), the reference computes x @ W too,
so the weights are used as stored.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

SHAPES = {"h.w": (64, 128), "h.b": (128,), "logits.w": (128, 10), "logits.b": (10,)}


def init(path):
    parity.random_init(path, SHAPES, seed=7, scale={"h.w": 0.2, "h.b": 0.1, "logits.w": 0.2, "logits.b": 0.1})


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads)
    x, y = parity.batch(g)
    # The model of examples/digits_mlp.nn, in float64 as the reference.
    h = torch.relu(x @ w["h.w"] + w["h.b"])
    logits = h @ w["logits.w"] + w["logits.b"]
    loss = torch.nn.functional.cross_entropy(logits, y) + 1e-4 * ((w["h.w"] ** 2).sum() + (w["logits.w"] ** 2).sum())
    loss.backward()
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES))


if __name__ == "__main__":
    parity.main(init, check)
