"""PyTorch parity for test/E2E/Inputs/activations.nn (gelu, leaky_relu, elu,
softplus, layer_norm, bce_with_logits, huber): init CKPT | check CKPT GRADS, as in
torch_parity.py."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_parity import read_safetensors, report, write_safetensors  # noqa: E402

SHAPES = {"h.w": (64, 16), "h.b": (16,), "a.scale": (16,), "a.shift": (16,), "logits.w": (16, 10),
          "logits.b": (10,), "t.w": (64, 10), "t.b": (10,)}


def init(path):
    rng = np.random.default_rng(11)
    write_safetensors(path, {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in SHAPES.items()})


def check(ckpt, grads):
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in read_safetensors(ckpt).items()}
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"], dtype=torch.float64)
    y = torch.tensor(g["batch.y"])
    h = x @ w["h.w"] + w["h.b"]
    a = F.layer_norm(F.gelu(h) + F.leaky_relu(h, 0.1) + F.elu(h, 0.7) + F.softplus(h), (16,),
                     w["a.scale"], w["a.shift"], eps=1e-5)
    logits = a @ w["logits.w"] + w["logits.b"]
    t = torch.sigmoid(x @ w["t.w"] + w["t.b"])
    loss = (F.cross_entropy(logits, y) + 0.5 * F.binary_cross_entropy_with_logits(logits, t)
            + 0.25 * F.huber_loss(logits, 3 * t, delta=0.5))
    loss.backward()
    return report([("loss", g["loss"], loss.detach().numpy())] +
                  [("grad." + k, g["grad." + k], w[k].grad.numpy()) for k in SHAPES])


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
