"""PyTorch parity for test/E2E/Inputs/batchnorm2d.nn: batch_norm of
[N, C, H, W] in training mode against F.batch_norm (BatchNorm2d semantics:
statistics per channel over N, H and W; the running variance unbiased by
n / (n - 1) with n = N*H*W): init CKPT | check CKPT GRADS."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_parity import read_safetensors, report, write_safetensors  # noqa: E402

PARAMS = {"c.w": (4, 1, 3, 3), "n.scale": (4,), "n.shift": (4,), "logits.w": (4, 10), "logits.b": (10,)}


def init(path):
    rng = np.random.default_rng(8)
    t = {k: (rng.standard_normal(s) * 0.5).astype(np.float32) for k, s in PARAMS.items()}
    t["n.running_mean"] = (rng.standard_normal(4) * 0.1).astype(np.float32)
    t["n.running_var"] = (1 + rng.random(4)).astype(np.float32)
    write_safetensors(path, t)


def check(ckpt, grads):
    raw = read_safetensors(ckpt)
    w = {k: torch.tensor(raw[k], dtype=torch.float64, requires_grad=True) for k in PARAMS}
    run_mean = torch.tensor(raw["n.running_mean"], dtype=torch.float64)
    run_var = torch.tensor(raw["n.running_var"], dtype=torch.float64)
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"], dtype=torch.float64)
    y = torch.tensor(g["batch.y"])
    c = F.conv2d(x.reshape(-1, 1, 8, 8), w["c.w"], None, padding="same")
    n = torch.relu(F.batch_norm(c, run_mean, run_var, w["n.scale"], w["n.shift"], training=True, momentum=0.3,
                                eps=1e-5))
    logits = n.mean((2, 3)) @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return report([("loss", g["loss"], loss.detach().numpy())] +
                  [("grad." + k, g["grad." + k], w[k].grad.numpy()) for k in PARAMS] +
                  [("new.n.running_mean", g["new.n.running_mean"], run_mean.numpy()),
                   ("new.n.running_var", g["new.n.running_var"], run_var.numpy())])


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
