"""PyTorch parity for test/E2E/Inputs/activations.nn (gelu, leaky_relu, elu,
softplus, layer_norm, bce_with_logits, huber): init CKPT | check CKPT GRADS, as in
parity.py."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

SHAPES = {"h.w": (64, 16), "h.b": (16,), "a.scale": (16,), "a.shift": (16,), "logits.w": (16, 10),
          "logits.b": (10,), "t.w": (64, 10), "t.b": (10,)}


def init(path):
    parity.random_init(path, SHAPES, seed=11, scale=0.3)


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads)
    x, y = parity.batch(g)
    h = x @ w["h.w"] + w["h.b"]
    a = F.layer_norm(F.gelu(h) + F.leaky_relu(h, 0.1) + F.elu(h, 0.7) + F.softplus(h), (16,),
                     w["a.scale"], w["a.shift"], eps=1e-5)
    logits = a @ w["logits.w"] + w["logits.b"]
    t = torch.sigmoid(x @ w["t.w"] + w["t.b"])
    loss = (F.cross_entropy(logits, y) + 0.5 * F.binary_cross_entropy_with_logits(logits, t)
            + 0.25 * F.huber_loss(logits, 3 * t, delta=0.5))
    loss.backward()
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES))


if __name__ == "__main__":
    parity.main(init, check)
