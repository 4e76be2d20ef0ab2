"""PyTorch parity for test/E2E/Inputs/embedding.nn (embedding lookup of i64
ids, dense over sequences, cross-entropy per position): init CKPT | check
CKPT GRADS, as in torch_parity.py. The table's gradient is a scatter-add of
the rows' adjoints (rows of unseen ids stay zero), as torch.nn.Embedding's."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_parity import read_safetensors, report, write_safetensors  # noqa: E402

SHAPES = {"e.table": (256, 8), "h.w": (8, 12), "h.b": (12,), "logits.w": (12, 256), "logits.b": (256,)}


def init(path):
    rng = np.random.default_rng(9)
    write_safetensors(path, {k: (rng.standard_normal(s) * 0.5).astype(np.float32) for k, s in SHAPES.items()})


def check(ckpt, grads):
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in read_safetensors(ckpt).items()}
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"])
    y = torch.tensor(g["batch.y"])
    e = F.embedding(x, w["e.table"])
    h = torch.tanh(e @ w["h.w"] + w["h.b"])
    logits = h @ w["logits.w"] + w["logits.b"]
    loss = F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
    loss.backward()
    return report([("loss", g["loss"], loss.detach().numpy())] +
                  [("grad." + k, g["grad." + k], w[k].grad.numpy()) for k in SHAPES])


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
