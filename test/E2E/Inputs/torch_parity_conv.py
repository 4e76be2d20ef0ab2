"""PyTorch parity for test/E2E/Inputs/conv.nn (conv2d with padding "same",
explicit padding, stride, dilation and groups; conv1d; max and average
pooling; global average pooling): init CKPT | check CKPT GRADS, as in
torch_parity.py. nnc's weights use PyTorch's layouts ([O, C/groups, KH, KW]
and [O, C/groups, K]), so they are passed through unchanged."""
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_parity import read_safetensors, report, write_safetensors  # noqa: E402

SHAPES = {"c1.w": (6, 1, 3, 3), "c1.b": (6,), "c2.w": (8, 3, 2, 3), "c2.b": (8,), "c3.w": (4, 6, 3, 3),
          "s.w": (4, 8, 3), "s.b": (4,), "logits.w": (164, 10), "logits.b": (10,)}


def init(path):
    rng = np.random.default_rng(5)
    write_safetensors(path, {k: (rng.standard_normal(s) * 0.4).astype(np.float32) for k, s in SHAPES.items()})


def check(ckpt, grads):
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in read_safetensors(ckpt).items()}
    g = read_safetensors(grads)
    x = torch.tensor(g["batch.x"], dtype=torch.float64)
    y = torch.tensor(g["batch.y"])
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
    return report([("loss", g["loss"], loss.detach().numpy())] +
                  [("grad." + k, g["grad." + k], w[k].grad.numpy()) for k in SHAPES])


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2], sys.argv[3]))
