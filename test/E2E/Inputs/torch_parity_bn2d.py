"""PyTorch parity for test/E2E/Inputs/batchnorm2d.nn: batch_norm of
[N, C, H, W] in training mode against F.batch_norm (BatchNorm2d semantics:
statistics per channel over N, H and W; the running variance unbiased by
n / (n - 1) with n = N*H*W): init CKPT | check CKPT GRADS."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

PARAMS = {"c.w": (4, 1, 3, 3), "n.scale": (4,), "n.shift": (4,), "logits.w": (4, 10), "logits.b": (10,)}


def init(path):
    rng = np.random.default_rng(8)
    t = parity.random_weights(rng, PARAMS, 0.5)
    t["n.running_mean"] = (rng.standard_normal(4) * 0.1).astype(np.float32)
    t["n.running_var"] = (1 + rng.random(4)).astype(np.float32)
    parity.write_safetensors(path, t)


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads, requires_grad=PARAMS)  # not the running statistics
    x, y = parity.batch(g)
    stats = ["n.running_mean", "n.running_var"]
    run_mean, run_var = (w[k] for k in stats)
    c = F.conv2d(x.reshape(-1, 1, 8, 8), w["c.w"], None, padding="same")
    n = torch.relu(F.batch_norm(c, run_mean, run_var, w["n.scale"], w["n.shift"], training=True, momentum=0.3,
                                eps=1e-5))
    logits = n.mean((2, 3)) @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return parity.report(parity.loss_and_grads(g, loss, w, PARAMS) +
                         [("new." + k, g["new." + k], w[k].numpy()) for k in stats])


if __name__ == "__main__":
    parity.main(init, check)
