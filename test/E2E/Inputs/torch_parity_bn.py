"""PyTorch parity for test/E2E/Inputs/batchnorm.nn: in training mode, the
loss, every gradient and the updated running statistics (torch's BatchNorm
semantics: biased batch variance to normalize, unbiased in the running
variance, running = (1 - momentum) running + momentum batch).
init CKPT | check CKPT GRADS, as in parity.py."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402

PARAMS = {"h.w": (64, 32), "h.b": (32,), "h_2.scale": (32,), "h_2.shift": (32,), "logits.w": (32, 10),
          "logits.b": (10,)}


def init(path):
    rng = np.random.default_rng(5)
    t = parity.random_weights(rng, PARAMS, 0.3)
    t["h_2.running_mean"] = (rng.standard_normal(32) * 0.1).astype(np.float32)
    t["h_2.running_var"] = (1 + rng.random(32)).astype(np.float32)
    parity.write_safetensors(path, t)


def check(ckpt, grads):
    w, g = parity.load(ckpt, grads, requires_grad=PARAMS)  # not the running statistics
    x, y = parity.batch(g)
    stats = ["h_2.running_mean", "h_2.running_var"]
    run_mean, run_var = (w[k] for k in stats)
    h = x @ w["h.w"] + w["h.b"]
    h = F.batch_norm(h, run_mean, run_var, w["h_2.scale"], w["h_2.shift"], training=True, momentum=0.2, eps=1e-5)
    logits = torch.relu(h) @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    # A bias right before batch_norm cancels in the mean: its true gradient is
    # zero, and both sides give rounding noise (float32 here, float64 there),
    # so it is compared against the scale of the other gradients.
    floor = {"h.b": 1e-3}
    return parity.report(parity.loss_and_grads(g, loss, w, PARAMS, floor) +
                         [("new." + k, g["new." + k], w[k].numpy()) for k in stats])


if __name__ == "__main__":
    parity.main(init, check)
