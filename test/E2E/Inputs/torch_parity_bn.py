"""PyTorch parity for test/E2E/Inputs/batchnorm.nn: in training mode, the
loss, every gradient and the updated running statistics (torch's BatchNorm
semantics: biased batch variance to normalize, unbiased in the running
variance, running = (1 - momentum) running + momentum batch).
init CKPT | check CKPT GRADS, as in torch_parity.py."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_parity import read_safetensors, report, write_safetensors  # noqa: E402

PARAMS = {"h.w": (64, 32), "h.b": (32,), "h_2.scale": (32,), "h_2.shift": (32,), "logits.w": (32, 10),
          "logits.b": (10,)}


def init(path):
    rng = np.random.default_rng(5)
    t = {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in PARAMS.items()}
    t["h_2.running_mean"] = (rng.standard_normal(32) * 0.1).astype(np.float32)
    t["h_2.running_var"] = (1 + rng.random(32)).astype(np.float32)
    write_safetensors(path, t)


def check(ckpt, grads):
    raw = read_safetensors(ckpt)
    w = {k: torch.tensor(raw[k], dtype=torch.float64, requires_grad=True) for k in PARAMS}
    run_mean = torch.tensor(raw["h_2.running_mean"], dtype=torch.float64)
    run_var = torch.tensor(raw["h_2.running_var"], dtype=torch.float64)
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"], dtype=torch.float64)
    y = torch.tensor(g["batch.y"])
    h = x @ w["h.w"] + w["h.b"]
    h = F.batch_norm(h, run_mean, run_var, w["h_2.scale"], w["h_2.shift"], training=True, momentum=0.2, eps=1e-5)
    logits = torch.relu(h) @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    # A bias right before batch_norm cancels in the mean: its true gradient is
    # zero, and both sides give rounding noise (float32 here, float64 there),
    # so it is compared against the scale of the other gradients.
    floor = {"h.b": 1e-3}
    return report([("loss", g["loss"], loss.detach().numpy())] +
                  [("grad." + k, g["grad." + k], w[k].grad.numpy(), floor.get(k, 1e-12)) for k in PARAMS] +
                  [("new.h_2.running_mean", g["new.h_2.running_mean"], run_mean.numpy()),
                   ("new.h_2.running_var", g["new.h_2.running_var"], run_var.numpy())])


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
