"""PyTorch parity for test/E2E/Inputs/conv.nn (conv2d with padding "same",
explicit padding, stride, dilation and groups; conv1d; max and average
pooling; global average pooling): init CKPT | check CKPT GRADS, as in
parity.py. nnc's weights use PyTorch's layouts ([O, C/groups, KH, KW]
and [O, C/groups, K]), so they are passed through unchanged."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

SHAPES = {"c1.w": (6, 1, 3, 3), "c1.b": (6,), "c2.w": (8, 3, 2, 3), "c2.b": (8,), "c3.w": (4, 6, 3, 3),
          "s.w": (4, 8, 3), "s.b": (4,), "logits.w": (164, 10), "logits.b": (10,)}


def init(path):
    parity.random_init(path, SHAPES, seed=5, scale=0.4)


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads)
    x, y = parity.batch(g)
    n = x.shape[0]
    img = x.reshape(n, 1, 8, 8)
    c1 = F.relu(F.conv2d(img, w["c1.w"], w["c1.b"], padding="same"))
    p1 = F.max_pool2d(c1, 2)
    c2 = torch.tanh(F.conv2d(p1, w["c2.w"], w["c2.b"], stride=(1, 2), padding=1, groups=2))
    p2 = F.avg_pool2d(c2, 2, stride=1, padding=1)
    c3 = F.conv2d(c1, w["c3.w"], None, dilation=2, padding="same")
    m3 = F.max_pool2d(c3, 3, stride=2, padding=1)
    s = F.relu(F.conv1d(x.reshape(n, 8, 8), w["s.w"], w["s.b"], stride=2, padding=1))
    feats = torch.cat([p2.flatten(1), m3.mean((2, 3)), s.flatten(1)], 1)
    logits = feats @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return parity.report(parity.loss_and_grads(g, loss, w, SHAPES))


if __name__ == "__main__":
    parity.main(init, check)
