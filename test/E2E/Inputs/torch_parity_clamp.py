"""PyTorch parity for test/E2E/Inputs/clamp.nn (clamp with both bounds, a lower
bound, and a tensor upper bound): init CKPT | check CKPT GRADS, as in parity.py."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

SHAPES = {"h.w": (64, 16), "h.b": (16,), "logits.w": (16, 10), "logits.b": (10,)}


def init(path):
    parity.random_init(path, SHAPES, seed=13, scale=0.3)


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads)
    x, y = parity.batch(g)
    h = x @ w["h.w"] + w["h.b"]
    c = torch.clamp(h, -0.5, 0.5) + torch.clamp(h, min=0.2) + torch.clamp(h, max=w["h.b"])
    logits = c @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    inside = ((h > -0.5) & (h < 0.5)).double().mean().item()
    print(f"inside (-0.5, 0.5): {inside:.2f}")
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES))


if __name__ == "__main__":
    parity.main(init, check)
